//! The cluster CA: made by the node that forms the cluster, kept in the cluster database, and
//! used by the leader to sign node certificates from certificate signing requests.

use crate::SecurityError;
use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, SanType, SerialNumber,
};
use std::time::Duration;
use time::OffsetDateTime;

/// How long the cluster CA is valid.
pub const CA_VALIDITY: Duration = Duration::from_secs(10 * 365 * 24 * 3600);

/// How long a node certificate is valid; `halo cluster rotate-certs` (or a node's start, when
/// less than a third is left) renews it.
pub const NODE_CERT_VALIDITY: Duration = Duration::from_secs(365 * 24 * 3600);

/// The name every node certificate carries besides its own, which peers verify: peers are
/// reached by address, and any member may answer at an address (a node's address can change).
/// `.invalid` is reserved, so no real host can hold it.
pub const PEER_SERVER_NAME: &str = "peer.halo.invalid";

/// The cluster CA: its certificate and private key (PEM).
#[derive(Clone)]
pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
}

impl std::fmt::Debug for ClusterCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ClusterCa({})", self.fingerprint().unwrap_or_default())
    }
}

/// A certificate the CA signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssuedCert {
    /// The certificate, PEM.
    pub pem: String,
    /// Its SHA-256 (DER), hex.
    pub fingerprint: String,
    /// When it expires, Unix seconds.
    pub not_after: u64,
}

fn cert_err(e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Certificate(e.to_string())
}

fn random_serial() -> Result<SerialNumber, SecurityError> {
    let mut bytes = crate::token::new_secret()?.into_bytes();
    bytes.truncate(16);
    // Positive and non-zero, as RFC 5280 wants.
    bytes[0] &= 0x7f;
    bytes[0] |= 0x01;
    Ok(SerialNumber::from_slice(&bytes))
}

impl ClusterCa {
    /// A new CA for the cluster named `cluster`.
    pub fn generate(cluster: &str) -> Result<ClusterCa, SecurityError> {
        let key = KeyPair::generate().map_err(cert_err)?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, format!("halo cluster CA ({cluster})"));
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
        params.key_usages =
            vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(300);
        params.not_after = now + CA_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params.self_signed(&key).map_err(cert_err)?;
        Ok(ClusterCa { cert_pem: cert.pem(), key_pem: key.serialize_pem() })
    }

    /// The CA from its stored certificate and key; checks that they belong together.
    pub fn from_pem(cert_pem: &str, key_pem: &str) -> Result<ClusterCa, SecurityError> {
        let ca = ClusterCa { cert_pem: cert_pem.to_string(), key_pem: key_pem.to_string() };
        ca.issuer()?;
        Ok(ca)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, SecurityError> {
        let key = KeyPair::from_pem(&self.key_pem).map_err(|e| cert_err(format!("the CA key: {e}")))?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, key).map_err(|e| cert_err(format!("the CA: {e}")))?;
        let der = crate::tls::pem_certificates(&self.cert_pem)?;
        let public = der.first().map(|c| crate::tls::public_key_of(c)).transpose()?.unwrap_or_default();
        if public != issuer.key().public_key_raw() {
            return Err(cert_err("the CA key does not belong to the CA certificate"));
        }
        Ok(issuer)
    }

    /// The certificate, PEM (public: every node trusts it).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// The private key, PEM (secret).
    pub fn key_pem(&self) -> &str {
        &self.key_pem
    }

    /// The SHA-256 of the certificate (DER), hex: what join tokens pin.
    pub fn fingerprint(&self) -> Result<String, SecurityError> {
        let der = crate::tls::pem_certificates(&self.cert_pem)?;
        der.first().map(|c| crate::sha256_hex(c)).ok_or_else(|| cert_err("the CA certificate is empty"))
    }

    /// Signs a node certificate for `name` from its certificate signing request (PEM). The
    /// request proves the key; the names are the CA's choice: `name` as the subject, the peer
    /// name, and the request's DNS names and IP addresses (where the node's API answers).
    pub fn issue(&self, name: &str, csr_pem: &str) -> Result<IssuedCert, SecurityError> {
        let csr = CertificateSigningRequestParams::from_pem(csr_pem)
            .map_err(|e| SecurityError::Request(format!("{e} (the request must be a PEM CSR signed by its key)")))?;
        let mut params = CertificateParams::default();
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        let mut sans = vec![SanType::DnsName(PEER_SERVER_NAME.try_into().map_err(cert_err)?)];
        for san in csr.params.subject_alt_names {
            if matches!(san, SanType::DnsName(_) | SanType::IpAddress(_)) && !sans.contains(&san) {
                sans.push(san);
            }
        }
        if sans.len() > 64 {
            return Err(SecurityError::Request(format!("{} names requested; at most 64 are signed", sans.len())));
        }
        params.subject_alt_names = sans;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth, ExtendedKeyUsagePurpose::ClientAuth];
        params.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        params.not_before = now - Duration::from_secs(300);
        params.not_after = now + NODE_CERT_VALIDITY;
        params.serial_number = Some(random_serial()?);
        let cert = params.signed_by(&csr.public_key, &self.issuer()?).map_err(cert_err)?;
        Ok(IssuedCert {
            pem: cert.pem(),
            fingerprint: crate::sha256_hex(cert.der()),
            not_after: u64::try_from(params.not_after.unix_timestamp()).unwrap_or(0),
        })
    }
}

/// A new node key and a certificate signing request for it, naming `sans` (DNS names or IP
/// addresses): (key PEM, request PEM).
pub fn node_key_and_request(name: &str, sans: &[String]) -> Result<(String, String), SecurityError> {
    let key = KeyPair::generate().map_err(cert_err)?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.subject_alt_names = sans
        .iter()
        .filter_map(|s| match s.parse::<std::net::IpAddr>() {
            Ok(ip) => Some(SanType::IpAddress(ip)),
            Err(_) => s.clone().try_into().ok().map(SanType::DnsName),
        })
        .collect();
    let csr = params.serialize_request(&key).map_err(cert_err)?;
    Ok((key.serialize_pem(), csr.pem().map_err(cert_err)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ca_signs_what_a_node_requests_under_its_own_name() {
        let ca = ClusterCa::generate("test").unwrap();
        let again = ClusterCa::from_pem(ca.cert_pem(), ca.key_pem()).unwrap();
        assert_eq!(again.fingerprint().unwrap(), ca.fingerprint().unwrap());
        let (_key, csr) = node_key_and_request("ignored", &["10.0.0.5".into(), "db1.example".into()]).unwrap();
        let issued = ca.issue("n1", &csr).unwrap();
        let info = crate::tls::cert_info(&crate::tls::pem_certificates(&issued.pem).unwrap()[0]).unwrap();
        assert_eq!(info.common_name, "n1");
        assert_eq!(info.fingerprint, issued.fingerprint);
        for name in [PEER_SERVER_NAME, "10.0.0.5", "db1.example"] {
            assert!(info.names.iter().any(|n| n == name), "{name} in {:?}", info.names);
        }
        assert!(issued.not_after > crate::unix_now() + 300 * 24 * 3600);
    }

    #[test]
    fn a_key_of_another_ca_and_a_forged_request_are_refused() {
        let (a, b) = (ClusterCa::generate("a").unwrap(), ClusterCa::generate("b").unwrap());
        let err = ClusterCa::from_pem(a.cert_pem(), b.key_pem()).unwrap_err().to_string();
        assert!(err.contains("does not belong"), "{err}");
        let (_key, csr) = node_key_and_request("x", &[]).unwrap();
        // One character of the body changed: the signature no longer verifies (or it no longer
        // parses); either way nothing is signed.
        let mut forged = csr.into_bytes();
        let at = forged.len() / 2;
        forged[at] = if forged[at] == b'A' { b'B' } else { b'A' };
        assert!(a.issue("x", &String::from_utf8(forged).unwrap()).is_err());
        assert!(a.issue("x", "not a request").is_err());
    }
}
