//! Security records in the cluster database, and the leader's side of enrollment.
//!
//! - `security/ca`, `security/ca-key`: the cluster CA (certificate public, key secret). The
//!   node that forms the cluster makes it; the leader signs node certificates with it.
//! - `security/node-cert/<name>`: the certificates issued to a node ([`NodeCertRecord`]); only a
//!   node with one may join or rejoin. Evicting the node deletes it and revokes its certificates.
//! - `security/revoked/<fingerprint>`: certificates refused from then on, by every member.
//! - `security/join-token/<id>`, `security/api-token/<id>`: tokens, stored as hashes.
//! - `security/rotation`: the certificate generation `halo cluster rotate-certs` asks for.
//! - `audit/<time>-<node>-<n>`: the audit log, bounded to [`AUDIT_KEEP`] entries.
//!
//! Secrets (the CA key, token secrets) never leave this module except as the one-time answer
//! to whoever created a token; nothing here logs them.

use crate::peer::PeerService;
use crate::{ClusterDb, ClusterError, Compare, Op, Request, Response};
use halo_security::token::{ApiToken, JoinToken, hash_secret, secret_matches};
use halo_security::{ClusterCa, NodeIdentity, Role, unix_now};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};

/// The CA certificate (PEM).
pub const CA_CERT: &str = "security/ca";
/// The CA private key (PEM).
pub const CA_KEY: &str = "security/ca-key";
/// Certificates issued to each node.
pub const NODE_CERTS: &str = "security/node-cert/";
/// Revoked certificates, by fingerprint.
pub const REVOKED: &str = "security/revoked/";
/// Join tokens.
pub const JOIN_TOKENS: &str = "security/join-token/";
/// API tokens.
pub const API_TOKENS: &str = "security/api-token/";
/// The certificate generation asked for.
pub const ROTATION: &str = "security/rotation";
/// The audit log.
pub const AUDIT: &str = "audit/";
/// How many audit entries are kept (the oldest go first).
pub const AUDIT_KEEP: usize = 10_000;
/// The longest a join token may live.
pub const MAX_JOIN_TOKEN_TTL_S: u64 = 7 * 24 * 3600;

/// The certificates issued to one node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeCertRecord {
    /// Fingerprints of its certificates that have not expired, newest last.
    pub fingerprints: Vec<(String, u64)>,
    /// The certificate generation of the newest ([`ROTATION`]).
    pub generation: u64,
}

impl NodeCertRecord {
    /// The newest certificate's fingerprint and expiry.
    pub fn current(&self) -> Option<&(String, u64)> {
        self.fingerprints.last()
    }
}

/// A stored join token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JoinTokenRecord {
    /// Its id.
    pub id: String,
    /// The SHA-256 of its secret.
    pub hash: String,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// When it stops working, Unix seconds.
    pub expires_at: u64,
    /// How many more nodes may join with it.
    pub uses_left: u32,
    /// Who made it.
    pub created_by: String,
}

/// A stored API token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiTokenRecord {
    /// Its id.
    pub id: String,
    /// Whose it is (a person or a program).
    pub name: String,
    /// What it allows.
    pub role: Role,
    /// The SHA-256 of its secret.
    pub hash: String,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// When it stops working, Unix seconds (none: until deleted).
    pub expires_at: Option<u64>,
    /// Who made it.
    pub created_by: String,
}

/// A token as listed: everything but the hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenInfo {
    /// Its id.
    pub id: String,
    /// Whose it is (API tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// What it allows (API tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    /// When it was made, Unix seconds.
    pub created_at: u64,
    /// When it stops working, Unix seconds.
    pub expires_at: Option<u64>,
    /// How many more joins it allows (join tokens).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uses_left: Option<u32>,
    /// Who made it.
    pub created_by: String,
}

impl From<&ApiTokenRecord> for TokenInfo {
    fn from(r: &ApiTokenRecord) -> TokenInfo {
        TokenInfo {
            id: r.id.clone(),
            name: Some(r.name.clone()),
            role: Some(r.role),
            created_at: r.created_at,
            expires_at: r.expires_at,
            uses_left: None,
            created_by: r.created_by.clone(),
        }
    }
}

impl From<&JoinTokenRecord> for TokenInfo {
    fn from(r: &JoinTokenRecord) -> TokenInfo {
        TokenInfo {
            id: r.id.clone(),
            name: None,
            role: None,
            created_at: r.created_at,
            expires_at: Some(r.expires_at),
            uses_left: Some(r.uses_left),
            created_by: r.created_by.clone(),
        }
    }
}

/// One accepted write, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// When, Unix milliseconds.
    pub at_ms: u64,
    /// The node that accepted it.
    pub node: String,
    /// Who: the token's name (and id), or the local credential.
    pub who: String,
    /// With what role.
    pub role: Role,
    /// From where (the client's address).
    pub client: String,
    /// What: the method and path.
    pub action: String,
    /// The HTTP status of the answer.
    pub status: u16,
}

/// A joining node's request for a certificate.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollRequest {
    /// The join token's id.
    pub token_id: String,
    /// The join token's secret.
    pub token_secret: String,
    /// The node's name.
    pub name: String,
    /// Its certificate signing request (PEM).
    pub csr_pem: String,
}

impl std::fmt::Debug for EnrollRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EnrollRequest(token {}, node {})", self.token_id, self.name)
    }
}

/// What enrollment gives a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnrollReply {
    /// Its certificate (PEM).
    pub cert_pem: String,
    /// The cluster CA certificate (PEM).
    pub ca_pem: String,
}

/// Why a credential was refused.
fn denied(message: impl Into<String>) -> ClusterError {
    ClusterError::Denied(message.into())
}

fn decode<T: serde::de::DeserializeOwned>(key: &str, bytes: &[u8]) -> Result<T, ClusterError> {
    serde_json::from_slice(bytes).map_err(|e| ClusterError::Read(format!("{key}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ClusterError> {
    serde_json::to_vec(value).map_err(|e| ClusterError::Raft(e.to_string()))
}

/// The certificate generation a [`ROTATION`] record holds (0: never rotated).
fn generation(record: Option<crate::Record>) -> Result<u64, ClusterError> {
    record.map_or(Ok(0), |r| decode(ROTATION, &r.value))
}

fn security(e: halo_security::SecurityError) -> ClusterError {
    ClusterError::Security(e.to_string())
}

/// Keys of audit entries written by this process, to keep them unique within a millisecond.
static AUDIT_SEQ: AtomicU64 = AtomicU64::new(0);

impl ClusterDb {
    /// The cluster CA certificate (PEM), if the cluster has one.
    pub fn ca_cert(&self) -> Result<Option<String>, ClusterError> {
        Ok(self.get(CA_CERT)?.map(|r| String::from_utf8_lossy(&r.value).into_owned()))
    }

    /// Records the CA, if the cluster has none yet (a new cluster, or one from before
    /// certificates), and this node's certificate beside the ones it already has.
    pub(crate) async fn install_ca(
        &self,
        ca: &ClusterCa,
        name: &str,
        identity: &NodeIdentity,
    ) -> Result<(), ClusterError> {
        if self.ca_cert()?.is_none() {
            let request = Request {
                compare: vec![Compare { key: CA_CERT.into(), revision: None }],
                ops: vec![
                    Op::Put { key: CA_CERT.into(), value: ca.cert_pem().as_bytes().to_vec() },
                    Op::Put { key: CA_KEY.into(), value: ca.key_pem().as_bytes().to_vec() },
                ],
            };
            self.write(request).await?;
        }
        let info = identity.info().map_err(security)?;
        let key = format!("{NODE_CERTS}{name}");
        let mut record = match self.get(&key)? {
            Some(r) => decode(&key, &r.value)?,
            None => NodeCertRecord { fingerprints: vec![], generation: self.rotation_generation()? },
        };
        record.fingerprints.push((info.fingerprint, info.not_after));
        self.put(&key, encode(&record)?).await?;
        Ok(())
    }

    /// A new join token, valid for `ttl_s` seconds and `uses` joins; the text to give the
    /// joining node (shown once: only its hash is kept).
    pub async fn create_join_token(&self, ttl_s: u64, uses: u32, created_by: &str) -> Result<String, ClusterError> {
        if ttl_s == 0 || ttl_s > MAX_JOIN_TOKEN_TTL_S {
            return Err(denied(format!("a join token lives 1 to {MAX_JOIN_TOKEN_TTL_S} seconds, not {ttl_s}")));
        }
        if uses == 0 {
            return Err(denied("a join token must allow at least one join"));
        }
        let ca = self.ca_cert()?.ok_or_else(|| denied("this cluster has no CA: it runs without the peer channel"))?;
        let fingerprint = halo_security::tls::cert_fingerprint(&ca).map_err(security)?;
        let token = JoinToken::generate(&fingerprint).map_err(security)?;
        let now = unix_now();
        let record = JoinTokenRecord {
            id: token.id.clone(),
            hash: hash_secret(&token.secret),
            created_at: now,
            expires_at: now + ttl_s,
            uses_left: uses,
            created_by: created_by.to_string(),
        };
        self.put(&format!("{JOIN_TOKENS}{}", token.id), encode(&record)?).await?;
        Ok(token.reveal())
    }

    /// The join tokens still usable (expired ones are listed until removed).
    pub fn join_tokens(&self) -> Result<Vec<TokenInfo>, ClusterError> {
        self.list(JOIN_TOKENS)?
            .iter()
            .map(|(k, r)| decode::<JoinTokenRecord>(k, &r.value).map(|t| TokenInfo::from(&t)))
            .collect()
    }

    /// Deletes a join token.
    pub async fn delete_join_token(&self, id: &str) -> Result<(), ClusterError> {
        self.delete_existing(&format!("{JOIN_TOKENS}{id}"), "join token", id).await
    }

    async fn delete_existing(&self, key: &str, kind: &str, id: &str) -> Result<(), ClusterError> {
        let Some(record) = self.get(key)? else { return Err(ClusterError::UnknownToken(format!("no {kind} {id}"))) };
        let request = Request {
            compare: vec![Compare { key: key.to_string(), revision: Some(record.revision) }],
            ops: vec![Op::Delete { key: key.to_string() }],
        };
        match self.write(request).await? {
            Response::Applied { .. } => Ok(()),
            Response::Conflict { .. } => {
                Err(ClusterError::UnknownToken(format!("{kind} {id} changed meanwhile; retry")))
            }
        }
    }

    /// A new API token; the text to give its holder (shown once: only its hash is kept).
    pub async fn create_api_token(
        &self,
        name: &str,
        role: Role,
        ttl_s: Option<u64>,
        created_by: &str,
    ) -> Result<(String, TokenInfo), ClusterError> {
        let token = ApiToken::generate().map_err(security)?;
        let info = self.store_api_token(&token, name, role, ttl_s, created_by).await?;
        Ok((token.reveal(), info))
    }

    /// Stores `token` (its hash) for `name` with `role`.
    pub async fn store_api_token(
        &self,
        token: &ApiToken,
        name: &str,
        role: Role,
        ttl_s: Option<u64>,
        created_by: &str,
    ) -> Result<TokenInfo, ClusterError> {
        let valid = !name.is_empty() && name.len() <= 128 && !name.chars().any(char::is_control);
        if !valid {
            return Err(denied(format!("token name {name:?}: use 1 to 128 printable characters")));
        }
        let now = unix_now();
        let record = ApiTokenRecord {
            id: token.id.clone(),
            name: name.to_string(),
            role,
            hash: hash_secret(&token.secret),
            created_at: now,
            expires_at: ttl_s.map(|t| now.saturating_add(t)),
            created_by: created_by.to_string(),
        };
        self.put(&format!("{API_TOKENS}{}", token.id), encode(&record)?).await?;
        Ok(TokenInfo::from(&record))
    }

    /// Replaces the tokens named `name` made by `created_by` with `token` (a node's local
    /// credential, new at every start).
    pub async fn replace_api_token(
        &self,
        token: &ApiToken,
        name: &str,
        role: Role,
        created_by: &str,
    ) -> Result<(), ClusterError> {
        let mut ops = Vec::new();
        for (key, record) in self.list(API_TOKENS)? {
            let old: ApiTokenRecord = decode(&key, &record.value)?;
            if old.name == name && old.created_by == created_by && old.id != token.id {
                ops.push(Op::Delete { key });
            }
        }
        if !ops.is_empty() {
            self.write(Request { compare: vec![], ops }).await?;
        }
        self.store_api_token(token, name, role, None, created_by).await.map(drop)
    }

    /// The API tokens.
    pub fn api_tokens(&self) -> Result<Vec<TokenInfo>, ClusterError> {
        self.list(API_TOKENS)?
            .iter()
            .map(|(k, r)| decode::<ApiTokenRecord>(k, &r.value).map(|t| TokenInfo::from(&t)))
            .collect()
    }

    /// Deletes an API token: requests with it are refused from the moment each node applies it.
    pub async fn delete_api_token(&self, id: &str) -> Result<(), ClusterError> {
        self.delete_existing(&format!("{API_TOKENS}{id}"), "API token", id).await
    }

    /// The record of a valid API token (read here, without consensus), or why it is refused.
    pub fn verify_api_token(&self, text: &str) -> Result<ApiTokenRecord, ClusterError> {
        let token = ApiToken::parse(text).map_err(|e| denied(e.to_string()))?;
        let record =
            self.get(&format!("{API_TOKENS}{}", token.id))?.ok_or_else(|| denied("unknown or deleted token"))?;
        let record: ApiTokenRecord = decode(API_TOKENS, &record.value)?;
        if !secret_matches(&token.secret, &record.hash) {
            return Err(denied("unknown or deleted token"));
        }
        if record.expires_at.is_some_and(|at| unix_now() >= at) {
            return Err(denied(format!("token {} has expired", record.id)));
        }
        Ok(record)
    }

    /// Appends to the audit log (through consensus: every node's log is the cluster's), and
    /// trims it to [`AUDIT_KEEP`] entries now and then.
    pub async fn audit(&self, entry: &AuditEntry) -> Result<(), ClusterError> {
        let n = AUDIT_SEQ.fetch_add(1, Ordering::Relaxed);
        let key = format!("{AUDIT}{:015}-{}-{n}", entry.at_ms, entry.node);
        self.put(&key, encode(entry)?).await?;
        if n % 256 == 255 {
            let keys = self.list(AUDIT)?;
            if keys.len() > AUDIT_KEEP {
                let ops = keys[..keys.len() - AUDIT_KEEP].iter().map(|(k, _)| Op::Delete { key: k.clone() }).collect();
                self.write(Request { compare: vec![], ops }).await?;
            }
        }
        Ok(())
    }

    /// The last `limit` audit entries, oldest first.
    pub fn audit_log(&self, limit: usize) -> Result<Vec<AuditEntry>, ClusterError> {
        let all = self.list(AUDIT)?;
        let from = all.len().saturating_sub(limit);
        all[from..].iter().map(|(k, r)| decode(k, &r.value)).collect()
    }

    /// Asks every node to renew its certificate: the next generation. Each node's agent
    /// notices and renews through the leader; old certificates stay valid until they expire, so
    /// connections are never cut.
    pub async fn rotate_certs(&self) -> Result<u64, ClusterError> {
        loop {
            let current = self.get(ROTATION)?;
            let revision = current.as_ref().map(|r| r.revision);
            let next = generation(current)? + 1;
            let request = Request {
                compare: vec![Compare { key: ROTATION.into(), revision }],
                ops: vec![Op::Put { key: ROTATION.into(), value: encode(&next)? }],
            };
            if let Response::Applied { .. } = self.write(request).await? {
                return Ok(next);
            }
        }
    }

    /// The certificate generation asked for.
    pub fn rotation_generation(&self) -> Result<u64, ClusterError> {
        generation(self.get(ROTATION)?)
    }

    /// The certificates issued to each node.
    pub fn node_certs(&self) -> Result<BTreeMap<String, NodeCertRecord>, ClusterError> {
        self.list(NODE_CERTS)?
            .into_iter()
            .map(|(k, r)| {
                let record = decode(&k, &r.value)?;
                Ok((k.trim_start_matches(NODE_CERTS).to_string(), record))
            })
            .collect()
    }

    /// Renews this node's certificate through the leader with a new key; returns the new
    /// identity (the caller stores it and switches to it).
    pub async fn renew_certificate(&self, name: &str, names: &[String]) -> Result<NodeIdentity, ClusterError> {
        let current = self.tls.identity().ok_or_else(|| denied("this node has no certificate to renew"))?;
        let (key_pem, csr_pem) = halo_security::ca::node_key_and_request(name, names).map_err(security)?;
        let service = self.service();
        let cert_pem = self
            .through_leader(
                || async { service.issue_renewal(name, &csr_pem).await },
                crate::transport::PeerMessage::Renew { csr_pem: csr_pem.clone() },
                |reply| match reply {
                    crate::transport::PeerReply::Renewed(r) => Some(r),
                    _ => None,
                },
            )
            .await?;
        let identity = NodeIdentity { ca_pem: current.ca_pem, cert_pem, key_pem };
        identity.info().map_err(security)?;
        Ok(identity)
    }
}

impl PeerService {
    fn read(&self, key: &str) -> Result<Option<crate::Record>, ClusterError> {
        crate::read_key(&*self.database()?, key)
    }

    /// Whether a certificate was revoked, as this node knows.
    pub(crate) fn is_revoked(&self, fingerprint: &str) -> bool {
        // An unreadable database refuses: a member that cannot check does not trust.
        self.read(&format!("{REVOKED}{fingerprint}")).map_or(true, |r| r.is_some())
    }

    /// Whether the cluster uses certificates (has a CA): enforced then.
    pub(crate) fn has_ca(&self) -> Result<bool, ClusterError> {
        Ok(self.read(CA_CERT)?.is_some())
    }

    /// A node may join or rejoin only while it holds an issued, unrevoked certificate.
    pub(crate) fn check_enrolled(&self, name: &str) -> Result<(), ClusterError> {
        if !self.has_ca()? || self.read(&format!("{NODE_CERTS}{name}"))?.is_some() {
            return Ok(());
        }
        Err(denied(format!(
            "node {name} holds no certificate of this cluster (it was evicted, or never enrolled); remove its data \
             directory and join again with a new token"
        )))
    }

    fn ca(&self) -> Result<ClusterCa, ClusterError> {
        let cert = self.read(CA_CERT)?.ok_or_else(|| denied("this cluster has no CA"))?;
        let key = self.read(CA_KEY)?.ok_or_else(|| denied("this cluster's CA key is missing"))?;
        ClusterCa::from_pem(&String::from_utf8_lossy(&cert.value), &String::from_utf8_lossy(&key.value))
            .map_err(security)
    }

    /// The leader's side of enrollment: checks the join token, signs the node's certificate,
    /// and records both in one transaction (a token's last use cannot be spent twice).
    pub(crate) async fn enroll(&self, request: EnrollRequest) -> Result<EnrollReply, ClusterError> {
        crate::leads(&self.raft)?;
        crate::check_node_name(&request.name)?;
        let token_key = format!("{JOIN_TOKENS}{}", request.token_id);
        let cert_key = format!("{NODE_CERTS}{}", request.name);
        loop {
            let stored = self.read(&token_key)?.ok_or_else(|| denied("unknown, used up or deleted join token"))?;
            let mut token: JoinTokenRecord = decode(&token_key, &stored.value)?;
            if !secret_matches(&request.token_secret, &token.hash) {
                return Err(denied("unknown, used up or deleted join token"));
            }
            if unix_now() >= token.expires_at {
                return Err(denied(format!("join token {} has expired; create a new one", token.id)));
            }
            if self.read(&cert_key)?.is_some() || self.read(&crate::membership::node_key(&request.name))?.is_some() {
                return Err(denied(format!(
                    "a node named {} is already in the cluster; evict it first or choose another name",
                    request.name
                )));
            }
            let ca = self.ca()?;
            let issued = ca.issue(&request.name, &request.csr_pem).map_err(security)?;
            let generation = self.read(ROTATION)?.map_or(Ok(0), |r| decode::<u64>(ROTATION, &r.value))?;
            let record =
                NodeCertRecord { fingerprints: vec![(issued.fingerprint.clone(), issued.not_after)], generation };
            token.uses_left = token.uses_left.saturating_sub(1);
            let token_op = if token.uses_left == 0 {
                Op::Delete { key: token_key.clone() }
            } else {
                Op::Put { key: token_key.clone(), value: encode(&token)? }
            };
            let write = Request {
                compare: vec![
                    Compare { key: token_key.clone(), revision: Some(stored.revision) },
                    Compare { key: cert_key.clone(), revision: None },
                ],
                ops: vec![token_op, Op::Put { key: cert_key.clone(), value: encode(&record)? }],
            };
            if let Response::Applied { .. } = self.commit(write).await? {
                tracing::info!(node = %request.name, token = %token.id, "node enrolled: certificate issued");
                return Ok(EnrollReply { cert_pem: issued.pem, ca_pem: ca.cert_pem().to_string() });
            }
        }
    }

    /// The leader's side of a renewal: a new certificate for `name` (a member: its current
    /// certificate says so), recorded beside the ones still valid.
    pub(crate) async fn issue_renewal(&self, name: &str, csr_pem: &str) -> Result<String, ClusterError> {
        crate::leads(&self.raft)?;
        let cert_key = format!("{NODE_CERTS}{name}");
        loop {
            let stored = self.read(&cert_key)?.ok_or_else(|| denied(format!("node {name} holds no certificate")))?;
            let mut record: NodeCertRecord = decode(&cert_key, &stored.value)?;
            let issued = self.ca()?.issue(name, csr_pem).map_err(security)?;
            let now = unix_now();
            record.fingerprints.retain(|(_, not_after)| *not_after > now);
            record.fingerprints.push((issued.fingerprint.clone(), issued.not_after));
            record.generation = generation(self.read(ROTATION)?)?;
            let write = Request {
                compare: vec![Compare { key: cert_key.clone(), revision: Some(stored.revision) }],
                ops: vec![Op::Put { key: cert_key.clone(), value: encode(&record)? }],
            };
            if let Response::Applied { .. } = self.commit(write).await? {
                tracing::info!(node = %name, "certificate renewed");
                return Ok(issued.pem);
            }
        }
    }

    /// Revokes every certificate of `name` and forgets them (part of an eviction).
    pub(crate) async fn revoke_node(&self, name: &str) -> Result<(), ClusterError> {
        let cert_key = format!("{NODE_CERTS}{name}");
        let Some(stored) = self.read(&cert_key)? else { return Ok(()) };
        let record: NodeCertRecord = decode(&cert_key, &stored.value)?;
        let mut ops = vec![Op::Delete { key: cert_key }];
        for (fingerprint, not_after) in record.fingerprints {
            let value = encode(&serde_json::json!({ "node": name, "revoked_at": unix_now(), "not_after": not_after }))?;
            ops.push(Op::Put { key: format!("{REVOKED}{fingerprint}"), value });
        }
        self.commit(Request { compare: vec![], ops }).await?;
        tracing::info!(node = %name, "certificates revoked");
        Ok(())
    }
}

/// How often a node checks whether its certificate needs renewing.
pub const CERT_CHECK_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Keeps this node's certificate current, until the database shuts down: renews it (new key,
/// through the leader) when `halo cluster rotate-certs` asks for a newer generation, when less
/// than a third of its life is left, or when it lacks one of `names`; stores it in `data_dir` and
/// switches the peer channel to it. Connections already open keep the old one, which stays
/// valid until it expires: nothing is cut.
pub fn keep_certificate(
    db: &std::sync::Arc<ClusterDb>,
    data_dir: std::path::PathBuf,
    name: String,
    names: Vec<String>,
) {
    let weak = std::sync::Arc::downgrade(db);
    let mut stop = db.stop_serving.subscribe();
    tokio::spawn(async move {
        let mut delay = CERT_CHECK_EVERY;
        loop {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
            let Some(db) = weak.upgrade() else { return };
            let Some(identity) = db.tls.identity() else { return };
            let wanted = db.rotation_generation().unwrap_or(0);
            let mine = db.node_certs().ok().and_then(|c| c.get(&name).map(|r| r.generation));
            if !identity.needs_renewal(&names) && mine.is_none_or(|g| g >= wanted) {
                delay = CERT_CHECK_EVERY;
                continue;
            }
            let renewed = match db.renew_certificate(&name, &names).await {
                Ok(renewed) => {
                    renewed.save(&data_dir).map_err(security).and_then(|()| db.tls.set(&renewed)).map(|()| renewed)
                }
                Err(e) => Err(e),
            };
            match renewed {
                Ok(renewed) => {
                    let fingerprint = renewed.info().map(|i| i.fingerprint).unwrap_or_default();
                    tracing::info!(%fingerprint, generation = wanted, "this node's certificate was renewed");
                    delay = CERT_CHECK_EVERY;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "renewing this node's certificate failed; retrying");
                    delay = (delay * 2).min(std::time::Duration::from_secs(60));
                }
            }
        }
    });
}
