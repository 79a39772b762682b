//! # halo-security — identities and access
//!
//! What a node is (its certificate, signed by the cluster's own CA), whom a node talks to (mutual
//! TLS with certificates of that CA only), what a client may do (bearer tokens with a [`Role`]),
//! and the limits every listener applies (rates, connections, private files).
//!
//! This crate owns the formats and the cryptography: CA and certificate generation ([`ca`]), the
//! node's TLS files ([`identity`]), rustls settings for the peer channel and the API ([`tls`]),
//! token formats and hashing ([`token`]). It holds no cluster state and makes no network
//! connections: the cluster database stores the records, the peer channel and the API apply them.

pub mod ca;
pub mod files;
pub mod identity;
pub mod limit;
pub mod role;
pub mod tls;
pub mod token;

pub use ca::{ClusterCa, IssuedCert};
pub use identity::NodeIdentity;
pub use role::Role;

use std::path::PathBuf;

/// What went wrong with a certificate, a key, a token or a TLS setting.
#[derive(Debug, thiserror::Error)]
pub enum SecurityError {
    /// A certificate could not be made, read or checked.
    #[error("certificate: {0}")]
    Certificate(String),
    /// A certificate signing request is malformed or its signature does not verify.
    #[error("certificate request: {0}")]
    Request(String),
    /// A token is not in the expected form.
    #[error("{0}")]
    Token(String),
    /// TLS settings could not be built from the node's files.
    #[error("TLS: {0}")]
    Tls(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
}

/// The SHA-256 of `bytes`, in lower-case hex: certificate fingerprints and token hashes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    digest.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// Seconds since the Unix epoch, now (0 on a clock set before 1970).
pub fn unix_now() -> u64 {
    since_epoch().as_secs()
}

/// Milliseconds since the Unix epoch, now (0 on a clock set before 1970).
pub fn unix_ms() -> u64 {
    u64::try_from(since_epoch().as_millis()).unwrap_or(u64::MAX)
}

fn since_epoch() -> std::time::Duration {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default()
}
