//! # halo-api — the HTTP+JSON API
//!
//! Everything under `/v1`: nodes, resource types, groups, resources, properties, dependencies;
//! online/offline operations answered `202 Accepted` with an operation id where WSFC answers
//! `ERROR_IO_PENDING`, and `GET /v1/operations/{id}?wait=S` to wait for them; `/v1/status` in
//! one read; `/v1/events` as server-sent events; `/v1/openapi.json`. Errors are JSON with the
//! `ERROR_*` name, its number and a message; bodies are limited to [`MAX_BODY`].
//!
//! Every request is authenticated and authorized first ([`auth`]): a bearer token with a role,
//! checked against the cluster database's token records (which this crate reads and the audit
//! log it appends to, directly: credentials are not the engine's business). [`serve`] runs the
//! listener with its limits (connections, timeouts, TLS).
//!
//! This crate translates HTTP to engine calls and back; it must not hold state or policy.

pub mod auth;
mod cluster;
mod security;
pub mod serve;

use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode, Uri, header};
use axum::middleware::Next;
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use halo_engine::core::Target;
use halo_engine::{Engine, EngineError, OpStatus};
use resapi::{ResourceOfflineFlags, ResourceOnlineFlags, Status};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

/// The largest request body accepted.
pub const MAX_BODY: usize = 1024 * 1024;

/// The longest `?wait=` honoured, in seconds.
pub const MAX_WAIT_S: u64 = 300;

/// An API error: the HTTP status, and a body naming the Win32 error.
#[derive(Debug)]
pub struct ApiError {
    http: StatusCode,
    status: Status,
    message: String,
}

impl ApiError {
    fn new(status: Status, message: impl Into<String>) -> Self {
        ApiError { http: http_status(status), status, message: message.into() }
    }
}

/// The HTTP status for a Win32 code.
pub fn http_status(status: Status) -> StatusCode {
    match status {
        Status::ERROR_RESOURCE_NOT_FOUND
        | Status::ERROR_GROUP_NOT_FOUND
        | Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND
        | Status::ERROR_NODE_NOT_AVAILABLE
        | Status::ERROR_FILE_NOT_FOUND => StatusCode::NOT_FOUND,
        Status::ERROR_OBJECT_ALREADY_EXISTS
        | Status::ERROR_CLUSTER_RESOURCE_LOCKED_STATUS
        | Status::ERROR_DEPENDENT_RESOURCE_EXISTS
        | Status::ERROR_RESOURCE_ONLINE
        | Status::ERROR_INVALID_STATE
        | Status::ERROR_RESOURCE_NOT_ONLINE
        | Status::ERROR_CLUSTER_GROUP_BUSY
        | Status::ERROR_CLUSTER_RESOURCE_TYPE_BUSY => StatusCode::CONFLICT,
        Status::ERROR_CLUSTER_NO_QUORUM | Status::ERROR_CLUSTER_SHUTTING_DOWN => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::BAD_REQUEST,
    }
}

impl From<EngineError> for ApiError {
    fn from(e: EngineError) -> Self {
        ApiError::new(e.status, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({
            "error": self.status.name().unwrap_or("ERROR_UNKNOWN"),
            "code": self.status.0,
            "message": self.message,
        });
        (self.http, Json(body)).into_response()
    }
}

/// JSON bodies whose every rejection (malformed, wrong type, too large) is an [`ApiError`].
pub struct Body<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(Body(v)),
            Err(rejection) => {
                // A body of the wrong shape is a bad request like any other (axum would say 422).
                let http = match rejection.status() {
                    s @ (StatusCode::PAYLOAD_TOO_LARGE | StatusCode::UNSUPPORTED_MEDIA_TYPE) => s,
                    _ => StatusCode::BAD_REQUEST,
                };
                let status = if http == StatusCode::PAYLOAD_TOO_LARGE {
                    Status::ERROR_INSUFFICIENT_BUFFER
                } else {
                    Status::ERROR_INVALID_PARAMETER
                };
                let message = match &rejection {
                    JsonRejection::BytesRejection(_) if http == StatusCode::PAYLOAD_TOO_LARGE => {
                        format!("request body is larger than {MAX_BODY} bytes")
                    }
                    JsonRejection::JsonDataError(_) => body_error(&rejection.body_text()),
                    _ => format!("malformed request: {}", rejection.body_text()),
                };
                Err(ApiError { http, status, message })
            }
        }
    }
}

/// The message for a body that is JSON but not what the endpoint takes: an unknown field is
/// named with the fields allowed, other mistakes keep serde's words (which name the field).
fn body_error(text: &str) -> String {
    let text = text.strip_prefix("Failed to deserialize the JSON body into the target type: ").unwrap_or(text);
    let Some((_, rest)) = text.split_once("unknown field `") else {
        return format!("malformed request: {text}");
    };
    let Some((field, rest)) = rest.split_once('`') else {
        return format!("malformed request: {text}");
    };
    // serde lists the allowed fields as "expected one of `a`, `b`" or "expected `a` or `b`".
    let expected = rest.split_once("expected").map_or("", |(_, e)| e);
    let allowed: Vec<&str> = expected.split('`').skip(1).step_by(2).collect();
    if allowed.is_empty() {
        format!("unknown field {field:?} in the request body; this endpoint takes no fields")
    } else {
        format!("unknown field {field:?} in the request body; the allowed fields are {}", allowed.join(", "))
    }
}

/// Path parameters whose rejection (`/v1/operations/abc`) is an [`ApiError`].
pub struct Path<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match axum::extract::Path::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Path(v)) => Ok(Path(v)),
            Err(r) => {
                Err(ApiError::new(Status::ERROR_INVALID_PARAMETER, format!("{}: {}", parts.uri.path(), r.body_text())))
            }
        }
    }
}

/// Query strings whose rejection (`?wait=-1`, an unknown parameter) is an [`ApiError`].
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(v)) => Ok(Query(v)),
            Err(r) => {
                let text = r.body_text();
                let text = text.strip_prefix("Failed to deserialize query string: ").unwrap_or(&text);
                let message = match text.split_once("unknown field `") {
                    Some(_) => body_error(text)
                        .replace("unknown field", "unknown parameter")
                        .replace("in the request body", "in the query string")
                        .replace("fields", "parameters"),
                    None => format!("bad query string: {text}"),
                };
                Err(ApiError::new(Status::ERROR_INVALID_PARAMETER, message))
            }
        }
    }
}

/// Turns every error answer that is not already an error document (a wrong method, a
/// rejection from a layer) into one, so that clients always read `{error, code, message}`.
async fn json_errors(req: Request, next: Next) -> Response {
    let (method, uri): (Method, Uri) = (req.method().clone(), req.uri().clone());
    let response = next.run(req).await;
    let http = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(http.is_client_error() || http.is_server_error()) || is_json {
        return response;
    }
    let allow = response.headers().get(header::ALLOW).cloned();
    let body = axum::body::to_bytes(response.into_body(), 64 * 1024).await.unwrap_or_default();
    let said = String::from_utf8_lossy(&body).trim().to_string();
    let path = uri.path();
    let (status, message) = match http {
        StatusCode::METHOD_NOT_ALLOWED => {
            let allowed = allow
                .as_ref()
                .and_then(|a| a.to_str().ok())
                .map(|a| a.split(',').map(str::trim).filter(|m| !m.is_empty()).collect::<Vec<_>>().join(", "))
                .unwrap_or_default();
            (Status::ERROR_INVALID_FUNCTION, format!("{method} is not allowed on {path}; allowed: {allowed}"))
        }
        StatusCode::NOT_FOUND => {
            (Status::ERROR_INVALID_FUNCTION, format!("no endpoint {method} {path}; see /v1/openapi.json"))
        }
        StatusCode::PAYLOAD_TOO_LARGE => {
            (Status::ERROR_INSUFFICIENT_BUFFER, format!("request body is larger than {MAX_BODY} bytes"))
        }
        h if h.is_server_error() => (Status::ERROR_INVALID_FUNCTION, format!("{method} {path}: {said}")),
        _ => (Status::ERROR_INVALID_PARAMETER, format!("{method} {path}: {said}")),
    };
    let mut response = ApiError { http, status, message }.into_response();
    if let Some(a) = allow {
        response.headers_mut().insert(header::ALLOW, a);
    }
    response
}

type Api = Arc<Engine>;
type Result<T> = std::result::Result<T, ApiError>;

/// The router, ready to serve: every request passes [`auth::guard`] first.
pub fn router(engine: Arc<Engine>, access: Arc<auth::Access>) -> Router {
    let routes = Router::new()
        .route("/v1/whoami", get(security::whoami))
        .route("/v1/tokens", get(security::tokens).post(security::create_token))
        .route("/v1/tokens/{id}", axum::routing::delete(security::delete_token))
        .route("/v1/join-tokens", get(security::join_tokens).post(security::create_join_token))
        .route("/v1/join-tokens/{id}", axum::routing::delete(security::delete_join_token))
        .route("/v1/audit", get(security::audit))
        .route("/v1/cluster/ca", get(security::ca))
        .route("/v1/cluster/certificates", get(security::certificates))
        .route("/v1/cluster/rotate-certs", post(security::rotate_certs))
        .route("/v1/status", get(status))
        .route("/v1/cluster", get(cluster::cluster))
        .route("/v1/cluster/properties", put(cluster::set_cluster_properties).patch(cluster::set_cluster_properties))
        .route("/v1/nodes", get(cluster::nodes))
        .route("/v1/nodes/{name}", get(cluster::node).delete(cluster::evict_node))
        .route("/v1/nodes/{name}/pause", post(cluster::pause_node))
        .route("/v1/nodes/{name}/resume", post(cluster::resume_node))
        .route("/v1/groups/{name}/move", post(cluster::move_group))
        .route("/v1/groups/{name}/cancel", post(cluster::cancel_move))
        .route("/v1/types", get(types).post(create_type))
        .route("/v1/types/{name}", get(type_).delete(delete_type))
        .route("/v1/groups", get(groups).post(create_group))
        .route("/v1/groups/{name}", get(group).delete(delete_group))
        .route("/v1/groups/{name}/properties", put(set_group_properties).patch(set_group_properties))
        .route("/v1/groups/{name}/online", post(online_group))
        .route("/v1/groups/{name}/offline", post(offline_group))
        .route("/v1/resources", get(resources).post(create_resource))
        .route("/v1/resources/{name}", get(resource).delete(delete_resource))
        .route("/v1/resources/{name}/properties", put(set_properties).patch(set_properties))
        .route("/v1/resources/{name}/dependencies", put(set_dependencies))
        .route("/v1/resources/{name}/online", post(online_resource))
        .route("/v1/resources/{name}/offline", post(offline_resource))
        .route("/v1/resources/{name}/fail", post(fail_resource))
        .route("/v1/resources/{name}/control", post(control))
        .route("/v1/operations/{id}", get(operation))
        .route("/v1/events", get(events))
        .route("/v1/openapi.json", get(openapi))
        .fallback(|method: Method, uri: Uri| async move {
            ApiError {
                http: StatusCode::NOT_FOUND,
                status: Status::ERROR_INVALID_FUNCTION,
                message: format!("no endpoint {method} {}; see /v1/openapi.json", uri.path()),
            }
        })
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .layer(axum::Extension(access.clone()))
        .with_state(engine);
    // Around the whole router, so that answers made outside the handlers (a wrong method, with
    // its Allow header) are seen as sent, and nothing is answered before the checks.
    let guarded = Router::new()
        .fallback_service(routes)
        .layer(axum::middleware::from_fn(move |req, next| auth::guard(access.clone(), req, next)));
    guarded.layer(axum::middleware::from_fn(json_errors))
}

async fn status(State(e): State<Api>, Query(q): Query<cluster::ReadQuery>, uri: Uri) -> Result<Response> {
    if let Some(r) = cluster::consistent(&e, &q, &uri).await? {
        return Ok(r);
    }
    Ok(Json(json!({
        "node": e.node(),
        "nodes": cluster::nodes_json(&e),
        "groups": e.groups(),
        "resources": e.resources(),
        "event_seq": e.events().last_seq(),
    }))
    .into_response())
}

async fn types(State(e): State<Api>) -> Json<serde_json::Value> {
    Json(json!(e.types()))
}

async fn type_(State(e): State<Api>, Path(name): Path<String>) -> Result<Json<serde_json::Value>> {
    e.types()
        .into_iter()
        .find(|t| t.name == name)
        .map(|t| Json(json!(t)))
        .ok_or_else(|| ApiError::new(Status::ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND, format!("no resource type {name}")))
}

/// `POST /v1/types`: a native plug-in type.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewType {
    /// Its name.
    pub name: String,
    /// The plug-in's absolute path.
    pub path: String,
    /// The name its Startup expects (default: `name`).
    #[serde(default)]
    pub type_name: Option<String>,
    /// Common properties (LooksAlivePollInterval, IsAlivePollInterval, Description).
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

async fn create_type(State(e): State<Api>, Body(t): Body<NewType>) -> Result<(StatusCode, Json<serde_json::Value>)> {
    check_new_name("resource type", &t.name)?;
    e.create_native_type(&t.name, &t.path, t.type_name.as_deref(), text(t.properties)?).await?;
    let created = e.types().into_iter().find(|x| x.name == t.name);
    Ok((StatusCode::CREATED, Json(json!(created))))
}

async fn delete_type(State(e): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    e.delete_type(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/groups`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewGroup {
    /// Its name.
    pub name: String,
    /// Common properties.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
}

/// A property value as JSON gives it: text, a whole number, a boolean, or a list of strings (a
/// MULTI_SZ, stored one string per line as `halo apply` stores a TOML array).
#[derive(Debug, Clone, Serialize)]
#[serde(untagged)]
pub enum Value {
    /// Text.
    Text(String),
    /// A number.
    Number(u64),
    /// A boolean.
    Bool(bool),
    /// Strings: a MULTI_SZ.
    List(Vec<String>),
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        use serde::de::Error;
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(Value::Text(s)),
            serde_json::Value::Bool(b) => Ok(Value::Bool(b)),
            serde_json::Value::Number(n) => n.as_u64().map(Value::Number).ok_or_else(|| {
                D::Error::custom(format!(
                    "{n} is not a number a property can hold: use a whole number from 0 to {}, or text",
                    u64::MAX
                ))
            }),
            serde_json::Value::Array(items) => items
                .into_iter()
                .map(|item| match item {
                    serde_json::Value::String(s) if s.is_empty() => {
                        Err(D::Error::custom("a list value cannot hold an empty string"))
                    }
                    serde_json::Value::String(s) if s.contains(['\n', '\r']) => Err(D::Error::custom(format!(
                        "{s:?}: a list value's strings cannot contain a line break (each string is one line of the MULTI_SZ)"
                    ))),
                    serde_json::Value::String(s) => Ok(s),
                    other => Err(D::Error::custom(format!("a list value must hold only strings, not {other}"))),
                })
                .collect::<std::result::Result<_, _>>()
                .map(Value::List),
            other => Err(D::Error::custom(format!(
                "{other} is not a property value: use text, a whole number, true or false, or a list of strings"
            ))),
        }
    }
}

impl Value {
    /// The value as the text the engine stores.
    fn into_text(self) -> String {
        match self {
            Value::Text(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::List(items) => items.join("\n"),
        }
    }
}

/// `text` without a '+' and the spaces around it, when that is a number (decimal, negative or
/// `0x` hexadecimal); None when `text` is not a number written that way.
fn sloppy_number(text: &str) -> Option<&str> {
    let trimmed = text.trim();
    let bare = trimmed.strip_prefix('+').unwrap_or(trimmed);
    let digits = bare.strip_prefix('-').unwrap_or(bare);
    let is_number = match digits.strip_prefix("0x").or_else(|| digits.strip_prefix("0X")) {
        Some(hex) => !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()),
        None => !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()),
    };
    (is_number && bare != text).then_some(bare)
}

/// Property values as the text the engine stores. The API does not know the properties' types,
/// so a number written with spaces around it or a leading '+' (`" 5"`, `"+5"`) is refused rather
/// than stored as typed; other text is kept exactly.
fn text(values: BTreeMap<String, Value>) -> Result<BTreeMap<String, String>> {
    values
        .into_iter()
        .map(|(k, v)| match &v {
            Value::Text(t) => match sloppy_number(t) {
                Some(bare) => Err(ApiError::new(
                    Status::ERROR_INVALID_PARAMETER,
                    format!("property {k}: {t:?} is a number written with spaces or a '+'; write {bare:?}"),
                )),
                None => Ok((k, v.into_text())),
            },
            _ => Ok((k, v.into_text())),
        })
        .collect()
}

/// The grammar of the names of new groups, resources and types: 1 to 128 characters from
/// `A-Z a-z 0-9 . _ -`, the first a letter or digit — so no name is `.`, `..` or looks like an
/// option (`-x`, `--help`).
pub fn check_new_name(kind: &str, name: &str) -> Result<()> {
    let ok = (1..=128).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric());
    if ok {
        Ok(())
    } else {
        Err(ApiError::new(
            Status::ERROR_INVALID_PARAMETER,
            format!(
                "{kind} name {name:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or digit"
            ),
        ))
    }
}

async fn groups(State(e): State<Api>) -> Json<serde_json::Value> {
    Json(json!(e.groups()))
}

async fn group(State(e): State<Api>, Path(name): Path<String>) -> Result<Json<serde_json::Value>> {
    Ok(Json(json!(e.group(&name)?)))
}

async fn create_group(State(e): State<Api>, Body(g): Body<NewGroup>) -> Result<(StatusCode, Json<serde_json::Value>)> {
    check_new_name("group", &g.name)?;
    e.create_group(&g.name, text(g.properties)?).await?;
    Ok((StatusCode::CREATED, Json(json!(e.group(&g.name)?))))
}

/// `PUT /v1/groups/{name}/properties`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct GroupProperties {
    /// Common properties to set.
    #[serde(default)]
    pub common: BTreeMap<String, Value>,
}

async fn set_group_properties(
    State(e): State<Api>,
    Path(name): Path<String>,
    Body(p): Body<GroupProperties>,
) -> Result<Json<serde_json::Value>> {
    e.set_group_properties(&name, text(p.common)?).await?;
    Ok(Json(json!(e.group(&name)?)))
}

async fn delete_group(State(e): State<Api>, Path(name): Path<String>) -> Result<StatusCode> {
    e.delete_group(&name).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/resources`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct NewResource {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Common properties.
    #[serde(default)]
    pub properties: BTreeMap<String, Value>,
    /// Private properties.
    #[serde(default)]
    pub private: BTreeMap<String, Value>,
    /// A dependency expression.
    #[serde(default)]
    pub dependencies: Option<String>,
}

async fn resources(State(e): State<Api>) -> Json<serde_json::Value> {
    Json(json!(e.resources()))
}

async fn resource(State(e): State<Api>, Path(name): Path<String>) -> Result<Json<serde_json::Value>> {
    Ok(Json(json!(e.resource(&name)?)))
}

async fn create_resource(
    State(e): State<Api>,
    Body(r): Body<NewResource>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    check_new_name("resource", &r.name)?;
    let deps = r.dependencies.unwrap_or_default();
    e.create_resource_with(&r.name, &r.group, &r.type_name, text(r.properties)?, text(r.private)?, &deps).await?;
    Ok((StatusCode::CREATED, Json(json!(e.resource(&r.name)?))))
}

/// Query of `DELETE /v1/resources/{name}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeleteQuery {
    /// Delete even if the resource is in locked mode.
    #[serde(default)]
    pub force: bool,
}

async fn delete_resource(
    State(e): State<Api>,
    Path(name): Path<String>,
    Query(q): Query<DeleteQuery>,
) -> Result<StatusCode> {
    e.delete_resource(&name, q.force).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `PUT /v1/resources/{name}/properties`.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Properties {
    /// Common properties to set.
    #[serde(default)]
    pub common: BTreeMap<String, Value>,
    /// Private properties to set.
    #[serde(default)]
    pub private: BTreeMap<String, Value>,
    /// Private properties to remove (the type's defaults apply again).
    #[serde(default)]
    pub unset: Vec<String>,
}

async fn set_properties(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    // The resource's type checks the change where it is open: on its group's owner.
    if let Some(r) = cluster::resource_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let Body(p) = Body::<Properties>::from_request(req, &()).await?;
    e.change_properties(&name, text(p.common)?, text(p.private)?, p.unset).await?;
    Ok(Json(json!(e.resource(&name)?)).into_response())
}

/// `PUT /v1/resources/{name}/dependencies`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyExpression {
    /// The expression, e.g. `([ipA] or [ipB]) and [disk]`; empty removes every dependency.
    pub expression: String,
}

async fn set_dependencies(
    State(e): State<Api>,
    Path(name): Path<String>,
    Body(d): Body<DependencyExpression>,
) -> Result<Json<serde_json::Value>> {
    e.set_dependencies(&name, &d.expression).await?;
    Ok(Json(json!(e.resource(&name)?)))
}

/// Body of online/offline: the client flags (`CLUSAPI_RESOURCE_*` / `CLUSAPI_GROUP_*`), as names
/// (`"IGNORE_RESOURCE_STATUS|DO_NOT_UPDATE_PERSISTENT_STATE"`) or a number; and the InBuffer
/// of OnlineClusterResourceEx / OfflineClusterResourceEx, for OnlineV2 / OfflineV2.
#[derive(Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct OperationRequest {
    /// The flags.
    #[serde(default)]
    pub flags: Option<Value>,
    /// The InBuffer as properties: text is CLUSPROP_FORMAT_SZ, a whole number DWORD (or
    /// ULARGE_INTEGER above 32 bits), a boolean DWORD 0/1, a list of strings MULTI_SZ.
    #[serde(default)]
    pub input: Option<BTreeMap<String, Value>>,
    /// The InBuffer as the property list's bytes, hexadecimal (it must decode as one).
    #[serde(default)]
    pub input_hex: Option<String>,
}

/// The InBuffer an operation's body gives (empty: none).
fn operation_input(body: &OperationRequest) -> Result<Vec<u8>> {
    match (&body.input, &body.input_hex) {
        (Some(_), Some(_)) => {
            Err(ApiError::new(Status::ERROR_INVALID_PARAMETER, "give the InBuffer as input or as input_hex, not both"))
        }
        (Some(properties), None) => {
            let mut list = resapi::PropertyList::new();
            for (name, value) in properties {
                let data = match value {
                    Value::Text(t) => resapi::ValueData::Sz(t.clone()),
                    Value::Number(n) => match u32::try_from(*n) {
                        Ok(d) => resapi::ValueData::Dword(d),
                        Err(_) => resapi::ValueData::ULargeInteger(*n),
                    },
                    Value::Bool(b) => resapi::ValueData::Dword(u32::from(*b)),
                    Value::List(items) => resapi::ValueData::MultiSz(items.clone()),
                };
                list = list.with(name, data);
            }
            list.encode().map_err(|e| ApiError::new(Status::ERROR_INVALID_PARAMETER, format!("input: {e}")))
        }
        (None, Some(hex)) => {
            let bytes = from_hex(hex)?;
            resapi::PropertyList::decode(&bytes).map_err(|e| {
                ApiError::new(Status::ERROR_INVALID_PARAMETER, format!("input_hex is not a property list: {e}"))
            })?;
            Ok(bytes)
        }
        (None, None) => Ok(Vec::new()),
    }
}

/// The flags of an operation's (optional) body, parsed strictly by `parse`, and its InBuffer.
async fn operation_flags<F>(
    req: Request,
    parse: impl Fn(&str) -> std::result::Result<F, resapi::FlagsError>,
) -> Result<(F, Vec<u8>)> {
    let body = optional_body(req).await?;
    let input = operation_input(&body)?;
    let text = match body.flags {
        Some(Value::List(_)) => {
            return Err(ApiError::new(
                Status::ERROR_INVALID_PARAMETER,
                "flags must be text (names joined with '|') or a number, not a list",
            ));
        }
        flags => flags.map(Value::into_text).unwrap_or_default(),
    };
    Ok((parse(&text).map_err(|f| ApiError::new(f.status(), f.to_string()))?, input))
}

/// `202 Accepted` for an operation: its id, and where to follow it (operations live on the node
/// that runs them, which may not be the node first asked).
fn accepted(e: &Engine, op: u64) -> Response {
    let pending = Status::ERROR_IO_PENDING;
    let endpoint = cluster::own_endpoint(e);
    (
        StatusCode::ACCEPTED,
        Json(json!({
            "operation": op,
            "status": "pending",
            "code": pending.0,
            "error": pending.name(),
            "node": e.node(),
            "endpoint": endpoint,
            "wait": format!("{}/v1/operations/{op}?wait=60", endpoint.as_deref().unwrap_or("")),
        })),
    )
        .into_response()
}

/// Optional body: an empty POST means "no flags".
async fn optional_body(req: Request) -> Result<OperationRequest> {
    optional(req).await
}

/// An optional JSON body: an empty one is the type's default.
async fn optional<T: serde::de::DeserializeOwned + Default>(req: Request) -> Result<T> {
    let bytes = axum::body::to_bytes(req.into_body(), MAX_BODY).await.map_err(|_| ApiError {
        http: StatusCode::PAYLOAD_TOO_LARGE,
        status: Status::ERROR_INSUFFICIENT_BUFFER,
        message: format!("request body is larger than {MAX_BODY} bytes"),
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::new(Status::ERROR_INVALID_PARAMETER, body_error(&e.to_string())))
}

async fn online_resource(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = cluster::resource_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let (flags, input) = operation_flags(req, ResourceOnlineFlags::parse).await?;
    let update = !flags.contains(ResourceOnlineFlags::DO_NOT_UPDATE_PERSISTENT_STATE);
    Ok(accepted(&e, e.online(Target::Resource(name), update, input).await?))
}

async fn offline_resource(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = cluster::resource_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let (flags, input) = operation_flags(req, ResourceOfflineFlags::parse).await?;
    let update = !flags.contains(ResourceOfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE);
    if flags.contains(ResourceOfflineFlags::FORCE_WITH_TERMINATION) {
        return Ok(accepted(&e, e.terminate_resource(&name, update).await?));
    }
    let mut dll = resapi::OfflineFlags::empty();
    if flags.contains(ResourceOfflineFlags::IGNORE_RESOURCE_STATUS) {
        dll |= resapi::OfflineFlags::IGNORE_RESOURCE_STATUS;
    }
    if !update {
        dll |= resapi::OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE;
    }
    Ok(accepted(&e, e.offline(Target::Resource(name), dll, update, false, input).await?))
}

async fn fail_resource(State(e): State<Api>, Path(name): Path<String>, uri: Uri) -> Result<Response> {
    if let Some(r) = cluster::resource_elsewhere(&e, &name, &uri)? {
        return Ok(r);
    }
    e.fail_resource(&name).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn online_group(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = cluster::group_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    // Validated so that a typo is refused; on one node none of them changes what happens
    // (there is no other node to choose, and locked mode does not block an online).
    let (_, input) = operation_flags(req, resapi::GroupOnlineFlags::parse).await?;
    Ok(accepted(&e, e.online(Target::Group(name), true, input).await?))
}

async fn offline_group(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = cluster::group_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let (flags, input) = operation_flags(req, resapi::GroupOfflineFlags::parse).await?;
    let mut dll = resapi::OfflineFlags::empty();
    if flags.contains(resapi::GroupOfflineFlags::IGNORE_RESOURCE_STATUS) {
        dll |= resapi::OfflineFlags::IGNORE_RESOURCE_STATUS;
    }
    Ok(accepted(&e, e.offline(Target::Group(name), dll, true, false, input).await?))
}

/// `POST /v1/resources/{name}/control`.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ControlRequest {
    /// The control code: a number, or a `CLUSCTL_RESOURCE_*` name.
    pub code: Value,
    /// The input buffer, hexadecimal.
    #[serde(default)]
    pub input_hex: String,
    /// The output buffer's size (default 64 KiB).
    #[serde(default = "default_output_size")]
    pub output_size: u32,
}

fn default_output_size() -> u32 {
    64 * 1024
}

fn from_hex(text: &str) -> Result<Vec<u8>> {
    let t = text.trim();
    if t.len() % 2 != 0 || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(ApiError::new(
            Status::ERROR_INVALID_PARAMETER,
            "input_hex must hold an even number of hexadecimal digits",
        ));
    }
    (0..t.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&t[i..i + 2], 16)
                .map_err(|e| ApiError::new(Status::ERROR_INVALID_PARAMETER, e.to_string()))
        })
        .collect()
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

async fn control(State(e): State<Api>, Path(name): Path<String>, req: Request) -> Result<Response> {
    if let Some(r) = cluster::resource_elsewhere(&e, &name, req.uri())? {
        return Ok(r);
    }
    let caller = req.extensions().get::<auth::Caller>().cloned();
    let Body(c) = Body::<ControlRequest>::from_request(req, &()).await?;
    let code = match &c.code {
        Value::Number(n) => {
            u32::try_from(*n).map_err(|_| ApiError::new(Status::ERROR_INVALID_PARAMETER, "code must fit in 32 bits"))?
        }
        Value::Text(t) => resapi::parse_u32(t)
            .or_else(|| resapi::control::codes::ALL.iter().find(|(n, _)| n.eq_ignore_ascii_case(t)).map(|(_, c)| c.0))
            .ok_or_else(|| ApiError::new(Status::ERROR_INVALID_PARAMETER, format!("{t:?} is not a control code")))?,
        Value::Bool(_) | Value::List(_) => {
            return Err(ApiError::new(Status::ERROR_INVALID_PARAMETER, "code must be a number or a CLUSCTL_* name"));
        }
    };
    // A code with write access changes the resource (properties, state): configuration.
    if resapi::ControlCode(code).access() == resapi::control::ControlAccess::Write
        && caller.as_ref().is_none_or(|c| c.role < halo_security::Role::Admin)
    {
        let who = caller.map_or_else(|| "the caller".to_string(), |c| format!("{} ({})", c.who, c.role));
        return Err(ApiError {
            http: StatusCode::FORBIDDEN,
            status: Status::ERROR_ACCESS_DENIED,
            message: format!("control code {code:#010x} writes (CLUS_ACCESS_WRITE); {who} needs the admin role"),
        });
    }
    if c.output_size as usize > MAX_BODY * 16 {
        return Err(ApiError::new(
            Status::ERROR_INVALID_PARAMETER,
            format!("output_size is limited to {} bytes", MAX_BODY * 16),
        ));
    }
    let out = e.control(&name, code, from_hex(&c.input_hex)?, c.output_size).await?;
    let status = Status(out.status);
    // Property-list answers are also shown decoded, for people.
    let properties = resapi::PropertyList::decode(&out.output).ok().filter(|l| !l.is_empty()).map(|l| {
        l.iter()
            .map(|p| (p.name.clone(), p.value().and_then(resapi::ValueData::to_text).unwrap_or_default()))
            .collect::<BTreeMap<_, _>>()
    });
    Ok(Json(json!({
        "status": status.name(),
        "code": status.0,
        "bytes_returned": out.bytes_returned,
        "output_hex": to_hex(&out.output),
        "properties": properties,
    }))
    .into_response())
}

/// Query of `GET /v1/operations/{id}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitQuery {
    /// Seconds to wait for the operation to end (at most [`MAX_WAIT_S`]).
    #[serde(default)]
    pub wait: u64,
}

async fn operation(
    State(e): State<Api>,
    Path(id): Path<u64>,
    Query(q): Query<WaitQuery>,
) -> Result<(StatusCode, Json<serde_json::Value>)> {
    let status = if q.wait > 0 {
        e.wait(id, Duration::from_secs(q.wait.min(MAX_WAIT_S))).await?
    } else {
        e.operation(id).ok_or_else(|| ApiError::new(Status::ERROR_INVALID_PARAMETER, format!("no operation {id}")))?
    };
    let http = if status == OpStatus::Pending { StatusCode::ACCEPTED } else { StatusCode::OK };
    Ok((http, Json(json!({ "operation": id, "result": status }))))
}

/// Query of `GET /v1/events`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Replay events after this sequence number (from the node's recent history).
    #[serde(default)]
    pub after: u64,
}

async fn events(
    State(e): State<Api>,
    Query(q): Query<EventsQuery>,
) -> Sse<impl futures_util::Stream<Item = std::result::Result<SseEvent, Infallible>>> {
    let (past, rx) = e.events().subscribe(q.after);
    use futures_util::StreamExt;
    let stream = event_items(past, rx).map(|item| {
        Ok(match item {
            StreamItem::Event(ev) => {
                let data = serde_json::to_string(&ev).unwrap_or_else(|_| "{}".into());
                SseEvent::default().id(ev.seq.to_string()).data(data)
            }
            StreamItem::Lagged(missed) => {
                let data = json!({
                    "kind": "lagged",
                    "missed": missed,
                    "message": format!("{missed} events were dropped because this client read too slowly; re-read /v1/status to resynchronise"),
                });
                SseEvent::default().event("lagged").data(data.to_string())
            }
        })
    });
    Sse::new(stream).keep_alive(KeepAlive::default())
}

/// What the event stream carries: events, and a notice where a slow client missed some.
#[derive(Debug, Clone, PartialEq, Eq)]
enum StreamItem {
    Event(halo_engine::events::Event),
    Lagged(u64),
}

/// The history after the client's sequence number, then live events; a client too slow for the
/// live ones is told how many it missed (the SSE event `lagged`) instead of silently skipping.
fn event_items(
    past: Vec<halo_engine::events::Event>,
    rx: tokio::sync::broadcast::Receiver<halo_engine::events::Event>,
) -> impl futures_util::Stream<Item = StreamItem> {
    use futures_util::StreamExt;
    let live = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(ev) => Some((StreamItem::Event(ev), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => Some((StreamItem::Lagged(missed), rx)),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => None,
        }
    });
    futures_util::stream::iter(past.into_iter().map(StreamItem::Event)).chain(live)
}

async fn openapi() -> Json<serde_json::Value> {
    Json(openapi_document())
}

/// The OpenAPI 3.1 description of this API.
pub fn openapi_document() -> serde_json::Value {
    let error = json!({ "$ref": "#/components/schemas/Error" });
    let op = |summary: &str| json!({ "summary": summary, "responses": { "200": { "description": "OK" }, "default": { "description": "error", "content": { "application/json": { "schema": error } } } } });
    let accepted = |summary: &str| json!({ "summary": summary, "requestBody": { "required": false, "content": { "application/json": { "schema": { "type": "object", "properties": { "flags": { "type": ["string", "integer"] } } } } } }, "responses": { "202": { "description": "accepted: ERROR_IO_PENDING with an operation id" }, "default": { "description": "error", "content": { "application/json": { "schema": error } } } } });
    json!({
        "openapi": "3.1.0",
        "info": { "title": "halo", "version": env!("CARGO_PKG_VERSION"), "description": "halo failover cluster API" },
        "paths": {
            "/v1/status": { "get": op("this node's view: nodes, groups and resources in one read; ?consistent=true reads through the leader") },
            "/v1/cluster": { "get": op("the cluster's properties (HeartbeatInterval ms, HeartbeatThreshold), the lease they make, and the leader") },
            "/v1/cluster/properties": { "put": op("set cluster properties: {common: {HeartbeatInterval, HeartbeatThreshold}}") },
            "/v1/nodes": { "get": op("list nodes: name, id, state (Up, Down, Paused, Joining), role (voter, learner), leader, api, peer; ?consistent=true") },
            "/v1/nodes/{name}": { "get": op("one node"), "delete": op("evict the node (EvictClusterNode): it leaves the membership; its groups fail over once its lease has ended") },
            "/v1/nodes/{name}/pause": { "post": op("pause the node (PauseClusterNodeEx): it takes no groups; {drain: true} moves every group it owns away") },
            "/v1/nodes/{name}/resume": { "post": op("resume a paused node") },
            "/v1/groups/{name}/move": { "post": { "summary": "MoveClusterGroupEx: {node?, flags?} with CLUSAPI_GROUP_MOVE_* flags; 202 accepted (ERROR_IO_PENDING) or a rejection that changed nothing; answered 307 by a node that does not own the group", "responses": { "202": { "description": "accepted" }, "307": { "description": "ask the owner (Location)" }, "default": { "description": "error", "content": { "application/json": { "schema": error } } } } } },
            "/v1/groups/{name}/cancel": { "post": op("CancelClusterGroupOperation: stop a move that has not handed the group over yet") },
            "/v1/types": { "get": op("list resource types"), "post": op("declare a native plug-in type: {name, path, type_name, properties}") },
            "/v1/types/{name}": { "get": op("one resource type"), "delete": op("remove a type no resource uses") },
            "/v1/groups": { "get": op("list groups"), "post": op("create a group: {name, properties}") },
            "/v1/groups/{name}": { "get": op("one group"), "delete": op("delete an empty group") },
            "/v1/groups/{name}/properties": { "put": op("set common properties: {common}") },
            "/v1/groups/{name}/online": { "post": accepted("bring a group online") },
            "/v1/groups/{name}/offline": { "post": accepted("take a group offline") },
            "/v1/resources": { "get": op("list resources"), "post": op("create a resource: {name, group, type, properties, private, dependencies}") },
            "/v1/resources/{name}": { "get": op("one resource"), "delete": op("delete an offline resource (?force=true past locked mode)") },
            "/v1/resources/{name}/properties": { "put": op("set common and private properties: {common, private}") },
            "/v1/resources/{name}/dependencies": { "put": op("replace dependencies: {expression}") },
            "/v1/resources/{name}/online": { "post": accepted("bring a resource online: {flags?: CLUSAPI_RESOURCE_ONLINE_*, input?: {name: value} | input_hex?: property list} — the InBuffer reaches OnlineV2 unchanged") },
            "/v1/resources/{name}/offline": { "post": accepted("take a resource offline: {flags?: CLUSAPI_RESOURCE_OFFLINE_*, input? | input_hex?} — the InBuffer reaches OfflineV2 unchanged") },
            "/v1/resources/{name}/fail": { "post": op("fail a resource (FailClusterResource)") },
            "/v1/resources/{name}/control": { "post": op("ResourceControl: {code, input_hex, output_size}; common codes get default handling") },
            "/v1/operations/{id}": { "get": op("an operation's status; ?wait=SECONDS waits for it") },
            "/v1/events": { "get": op("server-sent events; ?after=SEQ replays recent history; a client that reads too slowly gets an event of type lagged saying how many it missed") },
            "/v1/openapi.json": { "get": op("this document") },
            "/v1/whoami": { "get": op("the caller: who and with which role") },
            "/v1/tokens": { "get": op("list API tokens (admin; never their secrets)"), "post": op("create an API token: {name, role: viewer|operator|admin, ttl_seconds?}; the token is shown once") },
            "/v1/tokens/{id}": { "delete": op("delete an API token: refused from then on") },
            "/v1/join-tokens": { "get": op("list join tokens (admin)"), "post": op("create a join token: {ttl_seconds? (3600), uses? (1)}; it carries the CA's fingerprint") },
            "/v1/join-tokens/{id}": { "delete": op("delete a join token") },
            "/v1/audit": { "get": op("the audit log: who wrote what, when (admin); ?limit=N newest entries") },
            "/v1/cluster/ca": { "get": op("the cluster CA certificate (PEM) and its SHA-256") },
            "/v1/cluster/certificates": { "get": op("each node's certificate: fingerprint, expiry, generation") },
            "/v1/cluster/rotate-certs": { "post": op("renew every node's certificate (a new generation), without downtime") },
        },
        "components": { "schemas": { "Error": { "type": "object", "required": ["error", "code", "message"], "properties": {
            "error": { "type": "string", "description": "ERROR_* name" },
            "code": { "type": "integer", "description": "Win32 code" },
            "message": { "type": "string" } } } } },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use halo_engine::events::{Event, EventKind};

    fn event(seq: u64) -> Event {
        Event { seq, time_ms: 0, kind: EventKind::NodeState { node: "n".into(), state: "Up".into() } }
    }

    #[tokio::test]
    async fn a_slow_client_is_told_how_many_events_it_missed() {
        let (tx, rx) = tokio::sync::broadcast::channel(2);
        for seq in 2..=6 {
            tx.send(event(seq)).unwrap();
        }
        drop(tx);
        let items: Vec<StreamItem> = event_items(vec![event(1)], rx).collect().await;
        assert_eq!(
            items,
            [
                StreamItem::Event(event(1)),
                StreamItem::Lagged(3),
                StreamItem::Event(event(5)),
                StreamItem::Event(event(6))
            ]
        );
    }
}
