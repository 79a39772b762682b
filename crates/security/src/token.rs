//! Token formats. A token is an id (public: it names the stored record) and a secret (shown once,
//! stored only as its SHA-256). Secrets are 192 random bits, so a plain hash is as strong as a
//! slow one would be, and checking costs nothing.
//!
//! - API tokens: `halo_<id>_<secret>` (sent as `Authorization: Bearer …`).
//! - Join tokens: `halojoin_<id>_<secret>_<ca-fingerprint>`: the fingerprint (SHA-256 of the
//!   cluster CA certificate, hex) lets the joining node check that it talks to the right cluster
//!   before it sends the secret, as `kubeadm join --discovery-token-ca-cert-hash` does.

use crate::SecurityError;
use base64::Engine as _;
use ring::rand::SecureRandom;

const API_PREFIX: &str = "halo";
const JOIN_PREFIX: &str = "halojoin";

/// Random bytes from the system's generator.
fn random<const N: usize>() -> Result<[u8; N], SecurityError> {
    let mut bytes = [0u8; N];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| SecurityError::Token("the system's random generator failed".into()))?;
    Ok(bytes)
}

/// A fresh token id: 10 hex digits.
pub fn new_id() -> Result<String, SecurityError> {
    Ok(random::<5>()?.iter().map(|b| format!("{b:02x}")).collect())
}

/// A fresh secret: 24 random bytes, URL-safe base64 (32 characters).
pub fn new_secret() -> Result<String, SecurityError> {
    Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(random::<24>()?))
}

/// What is stored of a secret.
pub fn hash_secret(secret: &str) -> String {
    crate::sha256_hex(secret.as_bytes())
}

/// Whether `secret` hashes to `stored`, compared in constant time.
pub fn secret_matches(secret: &str, stored: &str) -> bool {
    let computed = hash_secret(secret);
    let (a, b) = (computed.as_bytes(), stored.as_bytes());
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn is_id(s: &str) -> bool {
    s.len() == 10 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn is_secret(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// An API bearer token.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Its id.
    pub id: String,
    /// Its secret.
    pub secret: String,
}

impl ApiToken {
    /// A new random token.
    pub fn generate() -> Result<ApiToken, SecurityError> {
        Ok(ApiToken { id: new_id()?, secret: new_secret()? })
    }

    /// The token as a client sends it.
    pub fn reveal(&self) -> String {
        format!("{API_PREFIX}_{}_{}", self.id, self.secret)
    }

    /// Reads a token as a client sent it.
    pub fn parse(text: &str) -> Result<ApiToken, SecurityError> {
        let bad = || SecurityError::Token("not a halo API token (expected halo_<id>_<secret>)".into());
        let rest = text.trim().strip_prefix(API_PREFIX).and_then(|r| r.strip_prefix('_')).ok_or_else(bad)?;
        // The secret's alphabet includes '_': split at the first one only.
        let (id, secret) = rest.split_once('_').ok_or_else(bad)?;
        if !is_id(id) || !is_secret(secret) {
            return Err(bad());
        }
        Ok(ApiToken { id: id.to_string(), secret: secret.to_string() })
    }
}

impl std::fmt::Debug for ApiToken {
    // Never the secret, wherever a token gets printed.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ApiToken({})", self.id)
    }
}

/// A join token.
#[derive(Clone, PartialEq, Eq)]
pub struct JoinToken {
    /// Its id.
    pub id: String,
    /// Its secret.
    pub secret: String,
    /// The SHA-256 of the cluster CA certificate (DER), hex.
    pub ca_fingerprint: String,
}

impl JoinToken {
    /// A new random token for the cluster whose CA has `ca_fingerprint`.
    pub fn generate(ca_fingerprint: &str) -> Result<JoinToken, SecurityError> {
        Ok(JoinToken { id: new_id()?, secret: new_secret()?, ca_fingerprint: ca_fingerprint.to_string() })
    }

    /// The token as an operator passes it to `halo node run --token`.
    pub fn reveal(&self) -> String {
        format!("{JOIN_PREFIX}_{}_{}_{}", self.id, self.secret, self.ca_fingerprint)
    }

    /// Reads a token as an operator gave it.
    pub fn parse(text: &str) -> Result<JoinToken, SecurityError> {
        let bad = || {
            SecurityError::Token(
                "not a halo join token (expected halojoin_<id>_<secret>_<ca-fingerprint>, as `halo node token \
                 create` prints it)"
                    .into(),
            )
        };
        let rest = text.trim().strip_prefix(JOIN_PREFIX).and_then(|r| r.strip_prefix('_')).ok_or_else(bad)?;
        let (id, rest) = rest.split_once('_').ok_or_else(bad)?;
        // The fingerprint (hex) is last and never holds '_'; the secret may.
        let (secret, fingerprint) = rest.rsplit_once('_').ok_or_else(bad)?;
        let hex64 = fingerprint.len() == 64 && fingerprint.bytes().all(|b| b.is_ascii_hexdigit());
        if !is_id(id) || !is_secret(secret) || !hex64 {
            return Err(bad());
        }
        Ok(JoinToken {
            id: id.to_string(),
            secret: secret.to_string(),
            ca_fingerprint: fingerprint.to_ascii_lowercase(),
        })
    }
}

impl std::fmt::Debug for JoinToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "JoinToken({}, CA {})", self.id, self.ca_fingerprint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_never_print_their_secret() {
        for _ in 0..50 {
            let t = ApiToken::generate().unwrap();
            assert_eq!(ApiToken::parse(&t.reveal()).unwrap(), t);
            assert!(!format!("{t:?}").contains(&t.secret));
            let j = JoinToken::generate(&"ab".repeat(32)).unwrap();
            assert_eq!(JoinToken::parse(&j.reveal()).unwrap(), j);
            assert!(!format!("{j:?}").contains(&j.secret));
        }
    }

    #[test]
    fn malformed_tokens_are_refused() {
        for bad in ["", "halo_", "halo_zz_abc", "Bearer x", "halojoin_0123456789_x_y", &"halo_".repeat(1000)] {
            assert!(ApiToken::parse(bad).is_err(), "{bad}");
            assert!(JoinToken::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn secrets_match_only_their_hash() {
        let s = new_secret().unwrap();
        let h = hash_secret(&s);
        assert!(secret_matches(&s, &h));
        assert!(!secret_matches(&new_secret().unwrap(), &h));
        assert!(!secret_matches(&s, ""));
    }
}
