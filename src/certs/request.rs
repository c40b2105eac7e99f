//! What a certificate Secret must hold, as rendering asks for it and issuing reads it.

use serde::Serialize;

/// What a certificate Secret must hold: the CA itself, or a leaf it signs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CertificateRequest {
    /// The subject's common name.
    pub common_name: String,
    /// DNS names a server certificate is valid for.
    pub dns_names: Vec<String>,
    /// The Secret of the CA that signs it; `None` for the CA itself.
    pub authority: Option<String>,
    /// A client certificate (for the admin user) rather than a server one.
    pub client: bool,
    /// How its private key is written, for the program that reads it.
    pub key_format: KeyFormat,
    /// Issue it again this long before it expires (`certificates.renewBefore`).
    #[serde(skip)]
    pub renew_before: std::time::Duration,
    /// Issue it again now, due or not (`seclab certs rotate`).
    #[serde(skip)]
    pub reissue: bool,
}

impl CertificateRequest {
    /// A CA's own certificate.
    pub fn authority(common_name: String, renew_before: std::time::Duration) -> Self {
        Self { common_name, renew_before, ..Self::default() }
    }

    /// A server certificate for `dns_names`, signed by the CA in the Secret `authority`.
    pub fn server(
        common_name: &str,
        dns_names: Vec<String>,
        authority: &str,
        renew_before: std::time::Duration,
    ) -> Self {
        Self {
            common_name: common_name.into(),
            dns_names,
            authority: Some(authority.into()),
            renew_before,
            ..Self::default()
        }
    }

    /// A client certificate, signed by the CA in the Secret `authority`.
    pub fn client(common_name: &str, authority: &str, renew_before: std::time::Duration) -> Self {
        Self {
            common_name: common_name.into(),
            authority: Some(authority.into()),
            client: true,
            renew_before,
            ..Self::default()
        }
    }
}

/// How a private key is written in its Secret (`tls.key`): each consumer reads only some.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum KeyFormat {
    /// PKCS#8 (`BEGIN PRIVATE KEY`): what OpenSearch's security plugin reads.
    #[default]
    Pkcs8,
    /// SEC1 (`BEGIN EC PRIVATE KEY`), with its curve named: ECK reads PKCS#8 for RSA keys only
    /// (cloud-on-k8s v2.16.1, pkg/controller/common/certificates/pem.go, ParsePEMPrivateKey).
    Sec1,
}
