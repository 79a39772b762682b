//! The cluster's part of the API: nodes (list, pause, resume, evict), moves, and the redirects
//! that send a request about a group to the node that owns it.

use super::{Api, ApiError, Result, optional};
use super::{Path, Query};
use axum::Json;
use axum::extract::Request;
use axum::extract::State;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use halo_engine::Engine;
use resapi::{GroupMoveFlags, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::time::Duration;

/// The API address of node `name`, from the node registry.
fn api_of(e: &Engine, name: &str) -> Option<String> {
    e.nodes().into_iter().find(|(r, _)| r.name == name).map(|(r, _)| r.api_addr)
}

/// The endpoint of a registered API address: nodes serving TLS register `https://ADDR`, plain
/// ones `ADDR`.
pub fn endpoint_of(addr: &str) -> String {
    if addr.contains("://") { addr.to_string() } else { format!("http://{addr}") }
}

/// This node's own API endpoint, where its operations can be followed.
pub(crate) fn own_endpoint(e: &Engine) -> Option<String> {
    api_of(e, e.node()).map(|a| endpoint_of(&a))
}

/// A `307 Temporary Redirect` to the same path on node `owner`'s API: the method and body
/// are kept, so a client that follows redirects talks to the owner as if it had all along.
fn redirect(e: &Engine, owner: &str, what: &str, uri: &Uri) -> Result<Response> {
    let api = api_of(e, owner).ok_or_else(|| {
        ApiError::new(
            Status::ERROR_HOST_NODE_NOT_AVAILABLE,
            format!("{what} is owned by node {owner}, whose API address is unknown"),
        )
    })?;
    let location = format!("{}{}", endpoint_of(&api), uri.path_and_query().map_or(uri.path(), |p| p.as_str()));
    let status = Status::ERROR_HOST_NODE_NOT_GROUP_OWNER;
    let body = json!({
        "error": status.name(),
        "code": status.0,
        "message": format!("{what} is owned by node {owner}; the request goes to {location}"),
        "owner": owner,
        "location": location,
    });
    Ok((StatusCode::TEMPORARY_REDIRECT, [(header::LOCATION, location)], Json(body)).into_response())
}

/// The redirect for a request about group `group`, when another node owns it.
pub(crate) fn group_elsewhere(e: &Engine, group: &str, uri: &Uri) -> Result<Option<Response>> {
    match e.owner_of(group) {
        Ok(owner) if owner != e.node() => redirect(e, &owner, &format!("group {group}"), uri).map(Some),
        _ => Ok(None),
    }
}

/// The redirect for a request about resource `name`, when another node owns its group.
pub(crate) fn resource_elsewhere(e: &Engine, name: &str, uri: &Uri) -> Result<Option<Response>> {
    match e.group_of(name) {
        Ok(group) => group_elsewhere(e, &group, uri),
        Err(_) => Ok(None),
    }
}

/// Query of reads that may be asked to be consistent.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReadQuery {
    /// Read through the leader: the answer reflects every write committed before the request.
    #[serde(default)]
    pub consistent: bool,
}

/// For `?consistent`: the leader confirms its leadership and this node's view catches up with
/// it; a follower sends the reader to the leader.
pub(crate) async fn consistent(e: &Engine, q: &ReadQuery, uri: &Uri) -> Result<Option<Response>> {
    if !q.consistent {
        return Ok(None);
    }
    if !e.leads() {
        let Some(leader) = e.leader_id() else {
            return Err(ApiError::new(
                Status::ERROR_CLUSTER_NO_QUORUM,
                "no leader is known: a consistent read cannot be served",
            ));
        };
        let name = e.nodes().into_iter().find(|(r, _)| r.id == leader).map(|(r, _)| r.name);
        let Some(name) = name else {
            return Err(ApiError::new(
                Status::ERROR_CLUSTER_NO_QUORUM,
                format!("the leader (node id {leader}) is not registered yet"),
            ));
        };
        return redirect(e, &name, "a consistent read", uri).map(Some);
    }
    e.catch_up(Duration::from_secs(5)).await?;
    Ok(None)
}

/// Nodes as the API shows them: the registry's records with their recorded states, joined
/// with the Raft membership (read once for all of them).
fn nodes_of(e: &Engine, nodes: &[(halo_engine::NodeRecord, String)]) -> Vec<serde_json::Value> {
    let members = e.members();
    let leader = e.leader_id();
    nodes.iter().map(|(r, s)| node_json(&members, leader, r, s)).collect()
}

/// One node as the API shows it.
fn node_json(
    members: &std::collections::BTreeMap<u64, (String, bool)>,
    leader: Option<u64>,
    record: &halo_engine::NodeRecord,
    recorded: &str,
) -> serde_json::Value {
    let (state, role) = match members.get(&record.id) {
        None => ("Joining", "none"),
        Some((_, true)) => (recorded, "voter"),
        Some((_, false)) => (recorded, "learner"),
    };
    json!({
        "name": record.name,
        "id": record.id,
        "state": state,
        "role": role,
        "leader": leader == Some(record.id),
        "api": endpoint_of(&record.api_addr),
        "peer": record.peer_addr,
    })
}

pub(crate) fn nodes_json(e: &Engine) -> serde_json::Value {
    json!(nodes_of(e, &e.nodes()))
}

pub(crate) async fn nodes(State(e): State<Api>, Query(q): Query<ReadQuery>, uri: Uri) -> Result<Response> {
    if let Some(r) = consistent(&e, &q, &uri).await? {
        return Ok(r);
    }
    Ok(Json(nodes_json(&e)).into_response())
}

fn no_node(name: &str) -> ApiError {
    ApiError::new(Status::ERROR_CLUSTER_NODE_NOT_FOUND, format!("no node named {name} is in the cluster"))
}

pub(crate) async fn node(State(e): State<Api>, Path(name): Path<String>) -> Result<Json<serde_json::Value>> {
    let one: Vec<_> = e.nodes().into_iter().filter(|(r, _)| r.name == name).collect();
    let node = nodes_of(&e, &one).pop().ok_or_else(|| no_node(&name))?;
    Ok(Json(node))
}

pub(crate) async fn evict_node(State(e): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    e.evict_node(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/nodes/{name}/pause`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct PauseRequest {
    /// Move every group the node owns to other nodes.
    #[serde(default)]
    pub drain: bool,
}

pub(crate) async fn pause_node(
    State(e): State<Api>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<serde_json::Value>> {
    let body: PauseRequest = optional(req).await?;
    e.pause_node(&name, body.drain).await?;
    node(State(e), Path(name)).await
}

/// `POST /v1/nodes/{name}/resume`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ResumeRequest {
    /// Bring back the groups that prefer this node (their PreferredOwners list it before their
    /// current owner).
    #[serde(default)]
    pub failback: bool,
}

pub(crate) async fn resume_node(
    State(e): State<Api>,
    Path(name): Path<String>,
    req: Request,
) -> Result<Json<serde_json::Value>> {
    let body: ResumeRequest = optional(req).await?;
    e.resume_node(&name, body.failback).await?;
    node(State(e), Path(name)).await
}

/// `POST /v1/groups/{name}/move` (MoveClusterGroupEx).
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct MoveRequest {
    /// The destination; absent: the node placement picks.
    #[serde(default)]
    pub node: Option<String>,
    /// `CLUSAPI_GROUP_MOVE_*` flags: names joined with `|`, or a number.
    #[serde(default)]
    pub flags: Option<super::Value>,
}

pub(crate) async fn move_group(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = group_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let request: MoveRequest = optional(req).await?;
    let flags = match request.flags {
        None => GroupMoveFlags::empty(),
        Some(super::Value::List(_)) => {
            return Err(ApiError::new(
                Status::ERROR_INVALID_PARAMETER,
                "flags must be text (names joined with '|') or a number",
            ));
        }
        Some(v) => GroupMoveFlags::parse(&v.into_text()).map_err(|f| ApiError::new(f.status(), f.to_string()))?,
    };
    if let Some(n) = &request.node {
        halo_engine::model::check_name("node", n)?;
    }
    e.move_group(&name, request.node.as_deref(), flags, "move").await?;
    let pending = Status::ERROR_IO_PENDING;
    let group = e.group(&name)?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "status": "accepted", "code": pending.0, "error": pending.name(), "group": group })),
    )
        .into_response())
}

pub(crate) async fn cancel_move(State(e): State<Api>, Path(name): Path<String>, uri: Uri) -> Result<Response> {
    if let Some(r) = group_elsewhere(&e, &name, &uri)? {
        return Ok(r);
    }
    e.cancel_move(&name).await?;
    Ok(Json(json!(e.group(&name)?)).into_response())
}

fn cluster_json(e: &Engine) -> serde_json::Value {
    let p = e.cluster_properties();
    json!({
        "properties": { "HeartbeatInterval": p.heartbeat_interval, "HeartbeatThreshold": p.heartbeat_threshold },
        "lease_ms": p.lease().as_millis() as u64,
        "leader": e.leader_id().and_then(|id| e.nodes().into_iter().find(|(r, _)| r.id == id).map(|(r, _)| r.name)),
    })
}

pub(crate) async fn cluster(State(e): State<Api>) -> Json<serde_json::Value> {
    Json(cluster_json(&e))
}

pub(crate) async fn set_cluster_properties(
    State(e): State<Api>,
    super::Body(p): super::Body<super::GroupProperties>,
) -> Result<Json<serde_json::Value>> {
    e.set_cluster_properties(super::text(p.common)?).await?;
    Ok(Json(cluster_json(&e)))
}
