//! The security part of the API: API tokens, join tokens, the audit log, certificates.
//! Everything here is admin-only but `GET /v1/cluster/ca` and `GET /v1/whoami` (see
//! [`crate::auth::required_role`]).

use crate::auth::{Access, Caller};
use crate::{ApiError, Body, Path, Query, Result};
use axum::Json;
use axum::extract::Extension;
use axum::http::StatusCode;
use halo_cluster::ClusterError;
use halo_security::Role;
use resapi::Status;
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

type Sec = Extension<Arc<Access>>;

fn cluster_error(e: ClusterError) -> ApiError {
    let status = match &e {
        ClusterError::Denied(_) => Status::ERROR_INVALID_PARAMETER,
        ClusterError::UnknownToken(_) => Status::ERROR_FILE_NOT_FOUND,
        ClusterError::NotLeader { .. } | ClusterError::Raft(_) => Status::ERROR_CLUSTER_NO_QUORUM,
        _ => Status::ERROR_INVALID_DATA,
    };
    ApiError::new(status, e.to_string())
}

/// `GET /v1/whoami`: the caller as the API sees it.
pub(crate) async fn whoami(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({ "who": caller.who, "role": caller.role }))
}

/// `POST /v1/tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewToken {
    /// Whose it is.
    pub name: String,
    /// viewer, operator or admin.
    pub role: Role,
    /// Seconds until it expires (none: until deleted).
    #[serde(default)]
    pub ttl_seconds: Option<u64>,
}

pub(crate) async fn create_token(
    Extension(access): Sec,
    Extension(caller): Extension<Caller>,
    Body(t): Body<NewToken>,
) -> Result<(StatusCode, Json<Value>)> {
    let (token, info) =
        access.db().create_api_token(&t.name, t.role, t.ttl_seconds, &caller.who).await.map_err(cluster_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "info": info }))))
}

pub(crate) async fn tokens(Extension(access): Sec) -> Result<Json<Value>> {
    Ok(Json(json!(access.db().api_tokens().map_err(cluster_error)?)))
}

pub(crate) async fn delete_token(Extension(access): Sec, Path(id): Path<String>) -> Result<StatusCode> {
    access.db().delete_api_token(&id).await.map_err(cluster_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/join-tokens`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewJoinToken {
    /// Seconds it stays valid (default one hour).
    #[serde(default = "default_join_ttl")]
    pub ttl_seconds: u64,
    /// How many nodes may join with it (default 1).
    #[serde(default = "default_uses")]
    pub uses: u32,
}

fn default_join_ttl() -> u64 {
    3600
}

fn default_uses() -> u32 {
    1
}

pub(crate) async fn create_join_token(
    Extension(access): Sec,
    Extension(caller): Extension<Caller>,
    Body(t): Body<NewJoinToken>,
) -> Result<(StatusCode, Json<Value>)> {
    let token = access.db().create_join_token(t.ttl_seconds, t.uses, &caller.who).await.map_err(cluster_error)?;
    Ok((StatusCode::CREATED, Json(json!({ "token": token, "ttl_seconds": t.ttl_seconds, "uses": t.uses }))))
}

pub(crate) async fn join_tokens(Extension(access): Sec) -> Result<Json<Value>> {
    Ok(Json(json!(access.db().join_tokens().map_err(cluster_error)?)))
}

pub(crate) async fn delete_join_token(Extension(access): Sec, Path(id): Path<String>) -> Result<StatusCode> {
    access.db().delete_join_token(&id).await.map_err(cluster_error)?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// How many of the newest entries (default 100, at most the log's bound).
    #[serde(default = "default_limit")]
    pub limit: usize,
}

fn default_limit() -> usize {
    100
}

pub(crate) async fn audit(Extension(access): Sec, Query(q): Query<AuditQuery>) -> Result<Json<Value>> {
    let limit = q.limit.min(halo_cluster::access::AUDIT_KEEP);
    Ok(Json(json!(access.db().audit_log(limit).map_err(cluster_error)?)))
}

/// `GET /v1/cluster/ca`: the CA certificate clients and nodes trust (public).
pub(crate) async fn ca(Extension(access): Sec) -> Result<Json<Value>> {
    let pem = access.db().ca_cert().map_err(cluster_error)?;
    let fingerprint = pem.as_deref().and_then(|p| halo_security::tls::cert_fingerprint(p).ok());
    Ok(Json(json!({ "pem": pem, "sha256": fingerprint })))
}

/// `GET /v1/cluster/certificates`: each node's certificates and the generation asked for.
pub(crate) async fn certificates(Extension(access): Sec) -> Result<Json<Value>> {
    let db = access.db();
    let nodes: Vec<Value> = db
        .node_certs()
        .map_err(cluster_error)?
        .into_iter()
        .map(|(name, record)| {
            let (fingerprint, not_after) = record.current().cloned().unwrap_or_default();
            json!({
                "node": name,
                "generation": record.generation,
                "sha256": fingerprint,
                "not_after": not_after,
                "valid_certificates": record.fingerprints.len(),
            })
        })
        .collect();
    Ok(Json(json!({ "generation": db.rotation_generation().map_err(cluster_error)?, "nodes": nodes })))
}

/// `POST /v1/cluster/rotate-certs`: every node renews its certificate.
pub(crate) async fn rotate_certs(Extension(access): Sec) -> Result<(StatusCode, Json<Value>)> {
    let generation = access.db().rotate_certs().await.map_err(cluster_error)?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "generation": generation }))))
}
