//! rustls settings: the peer channel (TLS 1.3, mutual, this cluster's CA only), a joining node's
//! first connection (the CA pinned by the join token's fingerprint), and the API (server
//! certificate only; clients authenticate with tokens).

use crate::{NodeIdentity, SecurityError};
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use std::sync::Arc;

pub use crate::ca::PEER_SERVER_NAME;

fn tls_err(e: impl std::fmt::Display) -> SecurityError {
    SecurityError::Tls(e.to_string())
}

/// The crypto provider halo uses everywhere (ring).
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The certificates in a PEM text, in order.
pub fn pem_certificates(pem: &str) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    let certs = CertificateDer::pem_slice_iter(pem.as_bytes())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError::Certificate(format!("unreadable PEM: {e}")))?;
    if certs.is_empty() {
        return Err(SecurityError::Certificate("no certificate in the PEM text".into()));
    }
    Ok(certs)
}

/// The SHA-256 (DER, hex) of the first certificate in a PEM text.
pub fn cert_fingerprint(pem: &str) -> Result<String, SecurityError> {
    Ok(pem_certificates(pem)?.first().map(|c| crate::sha256_hex(c)).unwrap_or_default())
}

/// The private key in a PEM text.
pub fn pem_private_key(pem: &str) -> Result<PrivateKeyDer<'static>, SecurityError> {
    PrivateKeyDer::from_pem_slice(pem.as_bytes())
        .map_err(|e| SecurityError::Certificate(format!("no readable private key in the PEM text: {e}")))
}

/// What halo reads out of a certificate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertInfo {
    /// Its subject's common name (a node certificate: the node's name).
    pub common_name: String,
    /// Its SHA-256 (DER), hex.
    pub fingerprint: String,
    /// When it expires, Unix seconds.
    pub not_after: u64,
    /// When it became valid, Unix seconds.
    pub not_before: u64,
    /// Its DNS names and IP addresses.
    pub names: Vec<String>,
}

fn parse(der: &[u8]) -> Result<x509_parser::certificate::X509Certificate<'_>, SecurityError> {
    x509_parser::parse_x509_certificate(der)
        .map(|(_, c)| c)
        .map_err(|e| SecurityError::Certificate(format!("unreadable certificate: {e}")))
}

/// Reads a certificate (DER).
pub fn cert_info(der: &[u8]) -> Result<CertInfo, SecurityError> {
    use x509_parser::extensions::GeneralName;
    let cert = parse(der)?;
    let common_name =
        cert.subject().iter_common_name().next().and_then(|cn| cn.as_str().ok()).unwrap_or_default().to_string();
    let mut names = Vec::new();
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            match name {
                GeneralName::DNSName(d) => names.push((*d).to_string()),
                GeneralName::IPAddress(ip) => match ip.len() {
                    4 => names.push(std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()),
                    16 => {
                        let mut octets = [0u8; 16];
                        octets.copy_from_slice(ip);
                        names.push(std::net::Ipv6Addr::from(octets).to_string());
                    }
                    _ => {}
                },
                _ => {}
            }
        }
    }
    let seconds = |t: i64| u64::try_from(t).unwrap_or(0);
    Ok(CertInfo {
        common_name,
        fingerprint: crate::sha256_hex(der),
        not_after: seconds(cert.validity().not_after.timestamp()),
        not_before: seconds(cert.validity().not_before.timestamp()),
        names,
    })
}

/// A certificate's public key (the raw subjectPublicKey bits).
pub fn public_key_of(der: &[u8]) -> Result<Vec<u8>, SecurityError> {
    Ok(parse(der)?.public_key().subject_public_key.data.to_vec())
}

fn roots(ca: &CertificateDer<'static>) -> Result<Arc<RootCertStore>, SecurityError> {
    let mut roots = RootCertStore::empty();
    roots.add(ca.clone()).map_err(tls_err)?;
    Ok(Arc::new(roots))
}

/// Checks that `cert` is a valid node certificate of the CA `ca`, now.
pub fn verify_node_cert(ca: &CertificateDer<'static>, cert: &CertificateDer<'static>) -> Result<(), SecurityError> {
    let verifier = WebPkiServerVerifier::builder_with_provider(roots(ca)?, provider()).build().map_err(tls_err)?;
    verifier
        .verify_server_cert(cert, &[], &peer_server_name()?, &[], UnixTime::now())
        .map(drop)
        .map_err(|e| SecurityError::Certificate(format!("the node certificate does not verify against the CA: {e}")))
}

/// The node's certificate followed by the CA's (so that a joining node, which knows the CA by
/// fingerprint only, finds it), and its key.
fn chain_and_key(
    identity: &NodeIdentity,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>, CertificateDer<'static>), SecurityError> {
    let ca = identity.ca_der()?;
    let mut chain = pem_certificates(&identity.cert_pem)?;
    chain.push(ca.clone());
    Ok((chain, pem_private_key(&identity.key_pem)?, ca))
}

/// The peer channel's server side: TLS 1.3; a client certificate of this cluster's CA makes the
/// connection a member's, and a connection without one may only enroll (the peer service
/// enforces that). Certificates of any other CA are refused in the handshake.
pub fn peer_server(identity: &NodeIdentity) -> Result<Arc<ServerConfig>, SecurityError> {
    let (chain, key, ca) = chain_and_key(identity)?;
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(&ca)?, provider())
        .allow_unauthenticated()
        .build()
        .map_err(tls_err)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}

/// The peer channel's client side: TLS 1.3, this node's certificate, servers of this CA only.
pub fn peer_client(identity: &NodeIdentity) -> Result<Arc<ClientConfig>, SecurityError> {
    let (chain, key, ca) = chain_and_key(identity)?;
    let config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .with_root_certificates(roots(&ca)?)
        .with_client_auth_cert(chain, key)
        .map_err(tls_err)?;
    Ok(Arc::new(config))
}

/// A joining node's first connection: no client certificate; the server must prove a
/// certificate of the CA whose fingerprint the join token carries.
pub fn enroll_client(ca_fingerprint: &str) -> Result<Arc<ClientConfig>, SecurityError> {
    let provider = provider();
    let verifier = Arc::new(PinnedCa { fingerprint: ca_fingerprint.to_ascii_lowercase(), provider: provider.clone() });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(tls_err)?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The API's server side: the node certificate; TLS 1.2 and 1.3; HTTP/1.1 and HTTP/2.
pub fn api_server(identity: &NodeIdentity) -> Result<Arc<ServerConfig>, SecurityError> {
    let (chain, key, _) = chain_and_key(identity)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(tls_err)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(tls_err)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The name a peer connection verifies.
pub fn peer_server_name() -> Result<ServerName<'static>, SecurityError> {
    ServerName::try_from(PEER_SERVER_NAME).map_err(tls_err)
}

/// Verifies a server against the CA found in its own chain by fingerprint (the join token's).
#[derive(Debug)]
struct PinnedCa {
    fingerprint: String,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for PinnedCa {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let ca = intermediates.iter().find(|c| crate::sha256_hex(c) == self.fingerprint).ok_or_else(|| {
            rustls::Error::General(format!(
                "the server's CA is not the one the join token names (sha256 {})",
                self.fingerprint
            ))
        })?;
        let mut roots = RootCertStore::empty();
        roots.add(ca.clone().into_owned()).map_err(|e| rustls::Error::General(e.to_string()))?;
        let inner = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), self.provider.clone())
            .build()
            .map_err(|e| rustls::Error::General(e.to_string()))?;
        inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}
