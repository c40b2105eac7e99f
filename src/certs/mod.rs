//! Certificates seclab issues itself (OpenSearch's transport, REST and admin ones): a CA
//! kept in the cluster and leaves it signs, with rcgen. Existing certificates are reused.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose,
};

use crate::render::CertificateRequest;

/// How long a new CA is valid, in years.
const AUTHORITY_YEARS: i16 = 10;
/// How long a new leaf is valid, in years.
const LEAF_YEARS: i16 = 2;

/// A certificate and its private key, PEM-encoded.
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (never logged or shown).
    pub key_pem: String,
}

/// Why a certificate could not be issued or loaded.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CertError(String);

impl From<rcgen::Error> for CertError {
    fn from(error: rcgen::Error) -> Self {
        Self(error.to_string())
    }
}

/// A certificate authority that can sign leaves.
pub struct Authority {
    issuer: Issuer<'static, KeyPair>,
    /// The CA's own certificate and key.
    pub issued: Issued,
}

impl Authority {
    /// A new self-signed CA.
    pub fn generate(request: &CertificateRequest) -> Result<Self, CertError> {
        let mut params = params(request, AUTHORITY_YEARS)?;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let issued = Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        Ok(Self { issuer: Issuer::new(params, key), issued })
    }

    /// The CA stored in a Secret earlier.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CertError(format!("its CA key cannot be read: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| CertError(format!("its CA certificate cannot be read: {e}")))?;
        let issued = Issued { cert_pem: cert_pem.to_owned(), key_pem: key_pem.to_owned() };
        Ok(Self { issuer, issued })
    }

    /// A leaf for `request`, signed by this CA.
    pub fn issue(&self, request: &CertificateRequest) -> Result<Issued, CertError> {
        let mut params = params(request, LEAF_YEARS)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = if request.client {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        };
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }
}

fn params(request: &CertificateRequest, years: i16) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(request.dns_names.clone())?;
    params.distinguished_name.push(DnType::CommonName, request.common_name.as_str());
    let today = jiff::Zoned::now().date();
    let date = |d: jiff::civil::Date| rcgen::date_time_ymd(i32::from(d.year()), d.month() as u8, d.day() as u8);
    params.not_before = date(today.yesterday().unwrap_or(today));
    params.not_after = date(today.saturating_add(jiff::Span::new().years(years)));
    Ok(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reloaded_authority_signs_leaves() {
        let ca = CertificateRequest { common_name: "lab CA".into(), dns_names: vec![], authority: None, client: false };
        let authority = Authority::generate(&ca).unwrap();
        assert!(authority.issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let reloaded = Authority::load(&authority.issued.cert_pem, &authority.issued.key_pem).unwrap();
        let server = CertificateRequest {
            common_name: "opensearch".into(),
            dns_names: vec!["opensearch".into(), "*.opensearch.cortex.svc.cluster.local".into()],
            authority: Some("opensearch-ca-certs".into()),
            client: false,
        };
        let leaf = reloaded.issue(&server).unwrap();
        assert!(leaf.key_pem.contains("PRIVATE KEY"));
        assert!(Authority::load("not a certificate", &authority.issued.key_pem).is_err());
    }
}
