//! Certificates seclab issues itself (OpenSearch's transport, REST and admin ones): a CA
//! kept in the cluster and leaves it signs, with rcgen; and what a stored certificate says
//! about itself, to know when it must be issued again.

use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, GeneralSubtree, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, NameConstraints,
};
use serde::Serialize;
use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

mod request;

pub use request::{CertificateRequest, KeyFormat};

/// How long a new CA is valid.
pub const AUTHORITY_VALIDITY: Duration = Duration::from_secs(10 * 365 * 86_400);
/// How long a new leaf is valid.
pub const LEAF_VALIDITY: Duration = Duration::from_secs(2 * 365 * 86_400);
/// The organization in the subject of every certificate seclab issues.
pub const ORGANIZATION: &str = "seclab";

/// A certificate and its private key, PEM-encoded (the key as its request asks: PKCS#8 or
/// SEC1).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The certificate.
    pub cert_pem: String,
    /// Its private key (never logged or shown).
    pub key_pem: String,
}

/// Why a certificate could not be issued or read: what failed, and its cause.
#[derive(Debug, thiserror::Error)]
#[error("{what}")]
pub struct CertError {
    what: &'static str,
    source: Box<dyn std::error::Error + Send + Sync>,
}

impl CertError {
    /// `what` failed, because of `cause` (a library's error, kept as its message when its type
    /// is not an error of its own).
    fn new(what: &'static str, cause: impl std::fmt::Display) -> Self {
        Self { what, source: cause.to_string().into() }
    }
}

impl From<rcgen::Error> for CertError {
    fn from(error: rcgen::Error) -> Self {
        Self { what: "the certificate cannot be made", source: Box::new(error) }
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
        Self::generate_valid_for(request, AUTHORITY_VALIDITY)
    }

    /// A new self-signed CA valid for `validity` from now.
    pub fn generate_valid_for(request: &CertificateRequest, validity: Duration) -> Result<Self, CertError> {
        let mut params = params(request, &[], validity)?;
        // It signs leaves only: a certificate it signed cannot sign others (path length 0).
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        // And only for the lab's names: its DNS names are the subtrees it may sign for.
        if !request.dns_names.is_empty() {
            params.name_constraints = Some(NameConstraints {
                permitted_subtrees: request.dns_names.iter().cloned().map(GeneralSubtree::DnsName).collect(),
                excluded_subtrees: Vec::new(),
            });
        }
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let key = KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        let issued = Issued { cert_pem: cert.pem(), key_pem: key.serialize_pem() };
        Ok(Self { issuer: Issuer::new(params, key), issued })
    }

    /// The CA stored in a Secret earlier.
    pub fn load(cert_pem: &str, key_pem: &str) -> Result<Self, CertError> {
        let key = KeyPair::from_pem(key_pem).map_err(|e| CertError::new("its CA key cannot be read", e))?;
        let issuer = Issuer::from_ca_cert_pem(cert_pem, key)
            .map_err(|e| CertError::new("its CA certificate cannot be read", e))?;
        let issued = Issued { cert_pem: cert_pem.to_owned(), key_pem: key_pem.to_owned() };
        Ok(Self { issuer, issued })
    }

    /// A leaf for `request`, signed by this CA.
    pub fn issue(&self, request: &CertificateRequest) -> Result<Issued, CertError> {
        self.issue_valid_for(request, LEAF_VALIDITY)
    }

    /// A leaf for `request`, signed by this CA, valid for `validity` from now.
    pub fn issue_valid_for(&self, request: &CertificateRequest, validity: Duration) -> Result<Issued, CertError> {
        let mut params = params(request, &request.dns_names, validity)?;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature, KeyUsagePurpose::KeyEncipherment];
        params.extended_key_usages = if request.client {
            vec![ExtendedKeyUsagePurpose::ClientAuth]
        } else {
            vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth]
        };
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &self.issuer)?;
        Ok(Issued { cert_pem: cert.pem(), key_pem: key_pem(&key, request.key_format)? })
    }
}

/// `key` as PEM in `format`. rcgen writes PKCS#8; SEC1 is the same key with its curve named
/// (Go's `x509.ParseECPrivateKey`, which ECK uses, needs the curve there).
fn key_pem(key: &KeyPair, format: KeyFormat) -> Result<String, CertError> {
    use pkcs8::der::{Decode, EncodePem, pem::LineEnding};
    match format {
        KeyFormat::Pkcs8 => Ok(key.serialize_pem()),
        KeyFormat::Sec1 => {
            let unreadable = |e: pkcs8::der::Error| CertError::new("the new key cannot be written as SEC1", e);
            let der = key.serialize_der();
            let info = pkcs8::PrivateKeyInfo::from_der(&der)
                .map_err(|e| CertError::new("the new key cannot be read back", e))?;
            let curve = info.algorithm.parameters_oid().map_err(|e| CertError::new("the new key names no curve", e))?;
            let mut sec1 = sec1::EcPrivateKey::from_der(info.private_key).map_err(unreadable)?;
            sec1.parameters = Some(sec1::EcParameters::NamedCurve(curve));
            sec1.to_pem(LineEnding::LF).map_err(unreadable)
        }
    }
}

/// Whether `key_pem` is written as `format` asks (a key stored before the format was asked
/// for is issued again).
pub fn key_in_format(key_pem: &str, format: KeyFormat) -> bool {
    let label = match format {
        KeyFormat::Pkcs8 => "-----BEGIN PRIVATE KEY-----",
        KeyFormat::Sec1 => "-----BEGIN EC PRIVATE KEY-----",
    };
    key_pem.trim_start().starts_with(label)
}

/// The subject seclab gives the certificate for `common_name`, as RFC 4514 writes it (and
/// OpenSearch's `admin_dn` and `nodes_dn` settings compare it).
pub fn subject(common_name: &str) -> String {
    format!("CN={common_name},O={ORGANIZATION}")
}

fn params(
    request: &CertificateRequest,
    dns_names: &[String],
    validity: Duration,
) -> Result<CertificateParams, CertError> {
    let mut params = CertificateParams::new(dns_names.to_vec())?;
    // Encoded from the least specific part: printed (RFC 4514) as `CN=...,O=seclab`. (The
    // default name holds a placeholder common name, first.)
    params.distinguished_name = DistinguishedName::new();
    params.distinguished_name.push(DnType::OrganizationName, ORGANIZATION);
    params.distinguished_name.push(DnType::CommonName, request.common_name.as_str());
    let now = std::time::SystemTime::now();
    // A minute back: a clock slightly behind on another machine still accepts it.
    params.not_before = (now - Duration::from_secs(60)).into();
    params.not_after = (now + validity).into();
    Ok(params)
}

/// A PKCS#12 truststore, protected by `password`, holding the certificate in `ca_pem` as a
/// trusted entry (with the attribute the JDK needs to load it as one).
pub fn truststore(ca_pem: &str, password: &str) -> Result<Vec<u8>, CertError> {
    let der = der(ca_pem)?;
    let certificate = p12_keystore::Certificate::from_der(&der)
        .map_err(|e| CertError::new("the CA certificate cannot go into a truststore", e))?;
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry("ca", p12_keystore::KeyStoreEntry::Certificate(certificate));
    store.writer(password).write().map_err(|e| CertError::new("the truststore cannot be written", e))
}

/// An empty PKCS#12 keystore protected by `password`: Cortex builds its TLS context only when
/// it has a keystore, and one without a key never offers a client certificate.
pub fn empty_keystore(password: &str) -> Result<Vec<u8>, CertError> {
    p12_keystore::KeyStore::new()
        .writer(password)
        .write()
        .map_err(|e| CertError::new("the keystore cannot be written", e))
}

/// The trusted certificates (DER) and the number of entries in the PKCS#12 `store`, when
/// `password` opens it.
pub fn store_contents(store: &[u8], password: &str) -> Option<(Vec<Vec<u8>>, usize)> {
    let store = p12_keystore::KeyStore::from_pkcs12(store, password, p12_keystore::Pkcs12ImportPolicy::Strict).ok()?;
    let trusted = store
        .entries()
        .filter_map(|(_, entry)| match entry {
            p12_keystore::KeyStoreEntry::Certificate(certificate) => Some(certificate.as_der().to_vec()),
            _ => None,
        })
        .collect();
    Some((trusted, store.entries_len()))
}

/// The DER encoding of the first certificate in `cert_pem`.
pub fn der(cert_pem: &str) -> Result<Vec<u8>, CertError> {
    Ok(pem(cert_pem)?.contents)
}

fn pem(cert_pem: &str) -> Result<x509_parser::pem::Pem, CertError> {
    let (_, pem) = x509_parser::pem::parse_x509_pem(cert_pem.as_bytes())
        .map_err(|e| CertError::new("it is not a PEM certificate", e))?;
    Ok(pem)
}

/// What a stored certificate says about itself (never anything of its key).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inspected {
    /// Its subject, as RFC 4514 writes it (`CN=opensearch,O=seclab`).
    pub subject: String,
    /// Its issuer, the same way.
    pub issuer: String,
    /// The DNS names it is valid for.
    pub dns_names: Vec<String>,
    /// For a CA: the DNS subtrees it may sign for (its name constraints); empty for any name.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub permitted_dns_names: Vec<String>,
    /// Valid from (Unix seconds).
    pub not_before: i64,
    /// Valid until (Unix seconds).
    pub not_after: i64,
    /// SHA-256 of its DER encoding, as colon-separated hex.
    pub fingerprint: String,
}

/// Reads the certificate in `cert_pem` (the first, if it holds a chain).
pub fn inspect(cert_pem: &str) -> Result<Inspected, CertError> {
    let pem = pem(cert_pem)?;
    let cert = pem.parse_x509().map_err(|e| CertError::new("it is not an X.509 certificate", e))?;
    let name = |name: &x509_parser::x509::X509Name<'_>| {
        let parts: Vec<String> = name
            .iter_rdn()
            .flat_map(|rdn| rdn.iter())
            .map(|attribute| {
                let key = x509_parser::objects::oid2abbrev(attribute.attr_type(), x509_parser::objects::oid_registry())
                    .map_or_else(|_| attribute.attr_type().to_id_string(), str::to_owned);
                format!("{key}={}", attribute.as_str().unwrap_or("?"))
            })
            .collect();
        parts.into_iter().rev().collect::<Vec<_>>().join(",")
    };
    let dns_names = match cert.subject_alternative_name() {
        Ok(Some(names)) => names
            .value
            .general_names
            .iter()
            .filter_map(|n| match n {
                GeneralName::DNSName(dns) => Some((*dns).to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let permitted_dns_names = match cert.name_constraints() {
        Ok(Some(constraints)) => constraints
            .value
            .permitted_subtrees
            .iter()
            .flatten()
            .filter_map(|subtree| match subtree.base {
                GeneralName::DNSName(dns) => Some(dns.to_owned()),
                _ => None,
            })
            .collect(),
        _ => Vec::new(),
    };
    let digest = Sha256::digest(&pem.contents);
    Ok(Inspected {
        subject: name(cert.subject()),
        issuer: name(cert.issuer()),
        dns_names,
        permitted_dns_names,
        not_before: cert.validity().not_before.timestamp(),
        not_after: cert.validity().not_after.timestamp(),
        fingerprint: digest.iter().map(|b| format!("{b:02X}")).collect::<Vec<_>>().join(":"),
    })
}

/// Whether a stored certificate can stay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// Valid, as requested, and not due.
    Ok,
    /// Valid, but within `renewBefore` of expiry: issued again on the next apply.
    RenewSoon,
    /// Past its expiry (or not valid yet).
    Expired,
    /// Not what the lab asks for any more (names, subject), or not signed by the current CA.
    Mismatch(String),
}

impl State {
    /// Whether the certificate must be issued again.
    pub fn is_due(&self) -> bool {
        !matches!(self, State::Ok)
    }
}

/// Whether `found` can stay as the certificate for `request`, at `now` (Unix seconds).
pub fn assess(found: &Inspected, request: &CertificateRequest, now: i64, renew_before: Duration) -> State {
    let wanted_subject = subject(&request.common_name);
    if found.subject != wanted_subject {
        return State::Mismatch(format!("its subject is {}, the lab asks for {wanted_subject}", found.subject));
    }
    // A CA's DNS names are the subtrees it may sign for; a leaf's, those it serves.
    let (have, noun, none) = match request.authority {
        None => (&found.permitted_dns_names, "may sign for", "any name"),
        Some(_) => (&found.dns_names, "is for", "no DNS name"),
    };
    let mut have: Vec<&str> = have.iter().map(String::as_str).collect();
    let mut want: Vec<&str> = request.dns_names.iter().map(String::as_str).collect();
    have.sort_unstable();
    want.sort_unstable();
    if have != want {
        return State::Mismatch(format!("it {noun} {}, the lab asks for {}", list(&have, none), list(&want, none)));
    }
    if now >= found.not_after || now < found.not_before {
        return State::Expired;
    }
    let before = i64::try_from(renew_before.as_secs()).unwrap_or(i64::MAX);
    if found.not_after.saturating_sub(now) <= before { State::RenewSoon } else { State::Ok }
}

fn list(names: &[&str], none: &str) -> String {
    if names.is_empty() { none.to_owned() } else { names.join(", ") }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ca() -> CertificateRequest {
        CertificateRequest { common_name: "lab CA".into(), ..CertificateRequest::default() }
    }

    fn server() -> CertificateRequest {
        CertificateRequest {
            common_name: "opensearch".into(),
            dns_names: vec!["opensearch".into(), "*.opensearch.cortex.svc.cluster.local".into()],
            authority: Some("opensearch-ca-certs".into()),
            ..CertificateRequest::default()
        }
    }

    #[test]
    fn a_reloaded_authority_signs_leaves_with_pkcs8_keys() {
        let authority = Authority::generate(&ca()).unwrap();
        assert!(authority.issued.cert_pem.starts_with("-----BEGIN CERTIFICATE-----"));
        let reloaded = Authority::load(&authority.issued.cert_pem, &authority.issued.key_pem).unwrap();
        let leaf = reloaded.issue(&server()).unwrap();
        assert!(leaf.key_pem.starts_with("-----BEGIN PRIVATE KEY-----"), "PKCS#8");
        assert!(Authority::load("not a certificate", &authority.issued.key_pem).is_err());
    }

    #[test]
    fn the_authority_signs_leaves_only() {
        let authority = Authority::generate(&ca()).unwrap();
        let (_, pem) = x509_parser::pem::parse_x509_pem(authority.issued.cert_pem.as_bytes()).unwrap();
        let cert = pem.parse_x509().unwrap();
        let constraints = cert.basic_constraints().unwrap().unwrap().value;
        assert!(constraints.ca);
        assert_eq!(constraints.path_len_constraint, Some(0));
    }

    #[test]
    fn the_authority_signs_for_its_subtrees_and_is_issued_again_when_they_change() {
        let constrained = CertificateRequest { dns_names: vec!["os".into(), "os.n.svc".into()], ..ca() };
        let authority = Authority::generate(&constrained).unwrap();
        let found = inspect(&authority.issued.cert_pem).unwrap();
        assert_eq!(found.permitted_dns_names, constrained.dns_names);
        assert!(found.dns_names.is_empty(), "a CA serves no name");
        let renew = Duration::from_secs(86_400);
        let now = found.not_before + 3600;
        assert_eq!(assess(&found, &constrained, now, renew), State::Ok);
        let moved = CertificateRequest { dns_names: vec!["os".into(), "os.m.svc".into()], ..ca() };
        assert!(
            matches!(assess(&found, &moved, now, renew), State::Mismatch(m) if m.contains("may sign for os, os.n.svc"))
        );
        let earlier = inspect(&Authority::generate(&ca()).unwrap().issued.cert_pem).unwrap();
        let state = assess(&earlier, &constrained, now, renew);
        assert!(matches!(&state, State::Mismatch(m) if m.starts_with("it may sign for any name")), "{state:?}");
    }

    /// ECK reads a SEC1 key with its curve named (cloud-on-k8s v2.16.1, pem.go:
    /// `ParsePEMPrivateKey` takes `EC PRIVATE KEY` to Go's `x509.ParseECPrivateKey`, and PKCS#8
    /// only for RSA keys); it is the key the certificate was issued for.
    #[test]
    fn a_leaf_for_eck_has_a_sec1_key_with_its_curve_named() {
        use pkcs8::der::Decode;
        let authority = Authority::generate(&ca()).unwrap();
        let request = CertificateRequest { key_format: KeyFormat::Sec1, ..server() };
        let leaf = authority.issue(&request).unwrap();
        assert!(leaf.key_pem.starts_with("-----BEGIN EC PRIVATE KEY-----"), "{}", leaf.key_pem.lines().next().unwrap());
        let (_, der) = pkcs8::der::pem::decode_vec(leaf.key_pem.as_bytes()).unwrap();
        let key = sec1::EcPrivateKey::from_der(&der).unwrap();
        let prime256v1 = pkcs8::ObjectIdentifier::new_unwrap("1.2.840.10045.3.1.7");
        assert_eq!(key.parameters.and_then(|p| p.named_curve()), Some(prime256v1));
        let cert = x509_parser::pem::parse_x509_pem(leaf.cert_pem.as_bytes()).unwrap().1;
        let public = cert.parse_x509().unwrap().public_key().subject_public_key.data.to_vec();
        assert_eq!(key.public_key, Some(public.as_slice()), "the certificate's key");
        assert!(key_in_format(&leaf.key_pem, KeyFormat::Sec1) && !key_in_format(&leaf.key_pem, KeyFormat::Pkcs8));
    }

    #[test]
    fn inspection_reads_what_the_certificate_says() {
        let authority = Authority::generate(&ca()).unwrap();
        let leaf = inspect(&authority.issue(&server()).unwrap().cert_pem).unwrap();
        assert_eq!(leaf.subject, "CN=opensearch,O=seclab");
        assert_eq!(leaf.issuer, "CN=lab CA,O=seclab");
        assert_eq!(leaf.dns_names, server().dns_names);
        let now = jiff::Timestamp::now().as_second();
        let two_years = i64::try_from(LEAF_VALIDITY.as_secs()).unwrap();
        assert!((leaf.not_after - now - two_years).abs() < 60, "{leaf:?}");
        assert_eq!(leaf.fingerprint.len(), 32 * 3 - 1);
        assert!(inspect("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n").is_err());
    }

    #[test]
    fn a_certificate_is_due_when_expiring_expired_or_not_as_asked() {
        let authority = Authority::generate(&ca()).unwrap();
        let day = 86_400;
        let month = Duration::from_secs(30 * day as u64);
        let leaf =
            inspect(&authority.issue_valid_for(&server(), Duration::from_secs(40 * day as u64)).unwrap().cert_pem);
        let leaf = leaf.unwrap();
        let now = jiff::Timestamp::now().as_second();
        assert_eq!(assess(&leaf, &server(), now, month), State::Ok);
        assert_eq!(assess(&leaf, &server(), now + 11 * day, month), State::RenewSoon);
        assert_eq!(assess(&leaf, &server(), now + 41 * day, month), State::Expired);
        let mut renamed = server();
        renamed.dns_names[1] = "*.opensearch.cortex.svc.lab.internal".into();
        let State::Mismatch(why) = assess(&leaf, &renamed, now, month) else { panic!("names changed") };
        assert!(why.contains("*.opensearch.cortex.svc.lab.internal"), "{why}");
        let mut admin = server();
        admin.common_name = "admin".into();
        assert!(matches!(assess(&leaf, &admin, now, month), State::Mismatch(_)));
    }

    #[test]
    fn stores_hold_the_authority_and_nothing_else() {
        let authority = Authority::generate(&ca()).unwrap();
        let trust = truststore(&authority.issued.cert_pem, "pw").unwrap();
        let (trusted, entries) = store_contents(&trust, "pw").unwrap();
        assert_eq!((trusted, entries), (vec![der(&authority.issued.cert_pem).unwrap()], 1));
        assert!(store_contents(&trust, "wrong").is_none());
        assert_eq!(store_contents(&empty_keystore("pw").unwrap(), "pw"), Some((vec![], 0)));
    }
}
