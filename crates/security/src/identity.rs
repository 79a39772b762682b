//! A node's TLS identity on disk, in `<data-dir>/tls/`: `ca.pem` (the cluster CA certificate,
//! the trust anchor) and `node.pem` (the node's certificate followed by its private key, in one
//! file so that a renewal replaces both at once). The directory is 0700, the files 0600.

use crate::tls::{CertInfo, cert_info, pem_certificates};
use crate::{SecurityError, files};
use rustls::pki_types::CertificateDer;
use std::path::{Path, PathBuf};

/// A node's certificate, key and trust anchor.
#[derive(Clone)]
pub struct NodeIdentity {
    /// The cluster CA certificate, PEM.
    pub ca_pem: String,
    /// The node's certificate, PEM.
    pub cert_pem: String,
    /// The node's private key, PEM.
    pub key_pem: String,
}

impl std::fmt::Debug for NodeIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let info = self.info().ok();
        write!(f, "NodeIdentity({:?})", info.map(|i| (i.common_name, i.fingerprint)))
    }
}

/// The directory of a node's TLS files.
pub fn tls_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("tls")
}

impl NodeIdentity {
    /// The identity stored in `data_dir`, if there is one. A directory with half of one (a
    /// crash between the two files of a first enrollment) reads as none.
    pub fn load(data_dir: &Path) -> Result<Option<NodeIdentity>, SecurityError> {
        let dir = tls_dir(data_dir);
        let read = |name: &str| -> Result<Option<String>, SecurityError> {
            let path = dir.join(name);
            match std::fs::read_to_string(&path) {
                Ok(text) => Ok(Some(text)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
                Err(source) => Err(SecurityError::Io { path, source }),
            }
        };
        let (Some(ca_pem), Some(node)) = (read("ca.pem")?, read("node.pem")?) else { return Ok(None) };
        let split = node.find("-----BEGIN PRIVATE KEY-----").or_else(|| node.find("-----BEGIN EC PRIVATE KEY-----"));
        let Some(split) = split else {
            return Err(SecurityError::Certificate(format!("{} holds no private key", dir.join("node.pem").display())));
        };
        let identity = NodeIdentity { ca_pem, cert_pem: node[..split].to_string(), key_pem: node[split..].to_string() };
        identity.check().map_err(|e| SecurityError::Certificate(format!("{}: {e}", dir.display())))?;
        Ok(Some(identity))
    }

    /// Stores the identity in `data_dir` (the CA first: a node certificate is never on disk
    /// without the anchor it chains to).
    pub fn save(&self, data_dir: &Path) -> Result<(), SecurityError> {
        self.check()?;
        let dir = tls_dir(data_dir);
        files::private_dir(&dir)?;
        files::write_private(&dir.join("ca.pem"), self.ca_pem.as_bytes())?;
        files::write_private(&dir.join("node.pem"), format!("{}{}", self.cert_pem, self.key_pem).as_bytes())
    }

    /// Checks that the certificate holds the key and is signed by the CA (building the TLS
    /// settings does both).
    fn check(&self) -> Result<(), SecurityError> {
        crate::tls::peer_server(self)?;
        crate::tls::verify_node_cert(&self.ca_der()?, &self.cert_der()?)?;
        let public = crate::tls::public_key_of(&self.cert_der()?)?;
        let key = rcgen::KeyPair::from_pem(&self.key_pem)
            .map_err(|e| SecurityError::Certificate(format!("the node key: {e}")))?;
        if public != key.public_key_raw() {
            return Err(SecurityError::Certificate("the node key does not belong to the node certificate".into()));
        }
        Ok(())
    }

    /// The CA certificate, DER.
    pub fn ca_der(&self) -> Result<CertificateDer<'static>, SecurityError> {
        pem_certificates(&self.ca_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| SecurityError::Certificate("no CA certificate".into()))
    }

    /// The node certificate, DER.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, SecurityError> {
        pem_certificates(&self.cert_pem)?
            .into_iter()
            .next()
            .ok_or_else(|| SecurityError::Certificate("no node certificate".into()))
    }

    /// What the node certificate says.
    pub fn info(&self) -> Result<CertInfo, SecurityError> {
        cert_info(&self.cert_der()?)
    }

    /// The CA's fingerprint.
    pub fn ca_fingerprint(&self) -> Result<String, SecurityError> {
        Ok(crate::sha256_hex(&self.ca_der()?))
    }

    /// Whether the certificate should be renewed now: less than a third of its life is left,
    /// or it lacks one of the names the node now answers at.
    pub fn needs_renewal(&self, names: &[String]) -> bool {
        let Ok(info) = self.info() else { return true };
        let life = info.not_after.saturating_sub(info.not_before);
        let left = info.not_after.saturating_sub(crate::unix_now());
        left < life / 3 || names.iter().any(|n| !info.names.contains(n))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ClusterCa;

    /// A CA and a node identity it signed.
    pub(crate) fn identity(name: &str) -> (ClusterCa, NodeIdentity) {
        let ca = ClusterCa::generate("t").unwrap();
        let (key_pem, csr) = crate::ca::node_key_and_request(name, &["127.0.0.1".into()]).unwrap();
        let cert = ca.issue(name, &csr).unwrap();
        (ca.clone(), NodeIdentity { ca_pem: ca.cert_pem().into(), cert_pem: cert.pem, key_pem })
    }

    #[test]
    fn an_identity_survives_the_disk_and_a_mismatch_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(NodeIdentity::load(dir.path()).unwrap().is_none());
        let (_, id) = identity("n1");
        id.save(dir.path()).unwrap();
        let back = NodeIdentity::load(dir.path()).unwrap().unwrap();
        assert_eq!(back.info().unwrap().common_name, "n1");
        assert!(!back.needs_renewal(&["127.0.0.1".into()]));
        assert!(back.needs_renewal(&["10.1.1.1".into()]));
        // Another node's key with this certificate: refused, not served.
        let (_, other) = identity("n2");
        let mixed = NodeIdentity { key_pem: other.key_pem, ..id };
        assert!(mixed.save(dir.path()).is_err());
    }
}
