//! Who may do what: the checks every request passes before a handler sees it, and the audit
//! record of every accepted write after.
//!
//! In order: the `Host` header must name this node (DNS rebinding), a browser's `Origin` must be
//! this node too (CSRF), the client's address must be within its request rate, an
//! `Authorization: Bearer` token must be valid for a [`Role`] that covers the request
//! ([`required_role`]), and a write's body must be `application/json` (a form post cannot be). Refusals are the API's
//! JSON errors: 401 without valid credentials, 403 for a role too low or a foreign host/origin,
//! 415 for another media type, 429 beyond the rate.

use crate::{ApiError, MAX_BODY};
use axum::extract::{ConnectInfo, Request};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use halo_cluster::ClusterDb;
use halo_cluster::access::AuditEntry;
use halo_security::Role;
use halo_security::limit::RateLimiter;
use halo_security::token::{ApiToken, secret_matches};
use resapi::Status;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

/// Requests a second a client address may make (loopback excepted), after a burst.
pub const REQUESTS_PER_SECOND: u32 = 500;
/// See [`REQUESTS_PER_SECOND`].
pub const REQUEST_BURST: u32 = 1000;
/// Refused credentials a second a client address may present, after a burst; beyond it the
/// address gets 429 without its credentials being looked at (guessing tokens is pointless
/// anyway at 192 bits, but it costs lookups).
pub const FAILURES_PER_SECOND: u32 = 5;
/// See [`FAILURES_PER_SECOND`].
pub const FAILURE_BURST: u32 = 20;

/// The node's own credential, for the local administrator: a token whose secret only the node's
/// user can read (see the CLI's `credentials`), valid on this node from the moment it starts.
#[derive(Clone)]
pub struct LocalCredential {
    /// The token's id.
    pub id: String,
    /// The SHA-256 of its secret.
    pub hash: String,
}

/// What the checks need: the credentials (in the cluster database), the names this node
/// answers to, and the rate limits.
pub struct Access {
    db: Arc<ClusterDb>,
    node: String,
    local: Option<LocalCredential>,
    hosts: Vec<String>,
    requests: RateLimiter,
    failures: RateLimiter,
}

impl Access {
    /// Checks against `db`'s tokens and `local`, for requests whose `Host` is one of `hosts`
    /// (`name:port` or `name`, compared without case).
    pub fn new(db: Arc<ClusterDb>, node: &str, local: Option<LocalCredential>, hosts: Vec<String>) -> Access {
        Access {
            db,
            node: node.to_string(),
            local,
            hosts: hosts.into_iter().map(|h| h.to_ascii_lowercase()).collect(),
            requests: RateLimiter::new(REQUESTS_PER_SECOND, REQUEST_BURST),
            failures: RateLimiter::new(FAILURES_PER_SECOND, FAILURE_BURST),
        }
    }

    /// The cluster database (tokens, audit).
    pub fn db(&self) -> &Arc<ClusterDb> {
        &self.db
    }
}

/// Who made a request, as a handler and the audit log see it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The token's holder and id, or the local credential.
    pub who: String,
    /// What it may do.
    pub role: Role,
}

fn refuse(http: StatusCode, status: Status, message: impl Into<String>) -> Response {
    ApiError { http, status, message: message.into() }.into_response()
}

/// The role a request needs: reads are viewer's; running the cluster (online, offline, fail,
/// move, cancel, pause, resume, control codes) is operator's; everything else — configuration,
/// tokens, the audit log — is admin's. Creating or changing resources of the types that run
/// commands (`process`, `script`, `ocf`, `native`) and declaring native types are therefore
/// admin only, like every configuration change.
pub fn required_role(method: &Method, path: &str) -> Role {
    let admin_reads = ["/v1/tokens", "/v1/join-tokens", "/v1/audit"];
    if method == Method::GET || method == Method::HEAD {
        return if admin_reads.iter().any(|p| path == *p || path.starts_with(&format!("{p}/"))) {
            Role::Admin
        } else {
            Role::Viewer
        };
    }
    let segments: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    let operation = match segments.as_slice() {
        ["", "v1", "groups", _, op] => matches!(*op, "online" | "offline" | "move" | "cancel"),
        ["", "v1", "resources", _, op] => matches!(*op, "online" | "offline" | "fail" | "control"),
        ["", "v1", "nodes", _, op] => matches!(*op, "pause" | "resume"),
        _ => false,
    };
    if method == Method::POST && operation { Role::Operator } else { Role::Admin }
}

/// Whether `host` (a `Host` header or URI authority) is one this node answers to.
fn host_allowed(access: &Access, host: &str) -> bool {
    let host = host.to_ascii_lowercase();
    access.hosts.contains(&host)
}

/// The authority of an `Origin` (`scheme://host[:port]`), or None for `null` and the like.
fn origin_authority(origin: &str) -> Option<&str> {
    let (scheme, rest) = origin.split_once("://")?;
    matches!(scheme, "http" | "https").then_some(rest.trim_end_matches('/'))
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then_some(token.trim())
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or("").trim();
        essence.eq_ignore_ascii_case("application/json")
    })
}

fn has_body(headers: &HeaderMap) -> bool {
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
    headers.contains_key(header::TRANSFER_ENCODING) || length.is_some_and(|l| l > 0)
}

/// Checks the caller's token; the [`Caller`] or a refusal that names what was wrong (never
/// the secret).
fn authenticate(access: &Access, headers: &HeaderMap) -> Result<Caller, String> {
    let Some(text) = bearer(headers) else {
        return Err("this request needs credentials: an `Authorization: Bearer TOKEN` header (the CLI sends the \
                    token of its config file, HALO_TOKEN, or the node's local credential)"
            .into());
    };
    let token = ApiToken::parse(text).map_err(|e| e.to_string())?;
    if let Some(local) = &access.local
        && local.id == token.id
        && secret_matches(&token.secret, &local.hash)
    {
        return Ok(Caller { who: format!("local administrator of {}", access.node), role: Role::Admin });
    }
    match access.db.verify_api_token(text) {
        Ok(record) => Ok(Caller { who: format!("{} (token {})", record.name, record.id), role: record.role }),
        Err(halo_cluster::ClusterError::Denied(reason)) => Err(format!("the token was refused: {reason}")),
        Err(e) => Err(format!("the token could not be checked: {e}")),
    }
}

/// The checks, then the handler, then the audit record of an accepted write.
pub async fn guard(access: Arc<Access>, mut req: Request, next: Next) -> Response {
    let client = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let ip = client.map_or(IpAddr::from([127, 0, 0, 1]), |c| c.ip());
    let headers = req.headers();
    let method = req.method().clone();
    let path = req.uri().path().to_string();

    let host =
        headers.get(header::HOST).and_then(|h| h.to_str().ok()).or_else(|| req.uri().authority().map(|a| a.as_str()));
    match host {
        Some(h) if host_allowed(&access, h) => {}
        Some(h) => {
            return refuse(
                StatusCode::FORBIDDEN,
                Status::ERROR_ACCESS_DENIED,
                format!(
                    "Host {h:?} is not a name of this node; allowed: {} (add names with --api-name)",
                    access.hosts.join(", ")
                ),
            );
        }
        None => {
            return refuse(StatusCode::BAD_REQUEST, Status::ERROR_INVALID_PARAMETER, "the request has no Host header");
        }
    }
    if let Some(origin) = headers.get(header::ORIGIN).and_then(|o| o.to_str().ok())
        && !origin_authority(origin).is_some_and(|a| host_allowed(&access, a))
    {
        return refuse(
            StatusCode::FORBIDDEN,
            Status::ERROR_ACCESS_DENIED,
            format!("requests from the web origin {origin:?} are refused (cross-site requests are not accepted)"),
        );
    }
    if !ip.is_loopback() && !access.requests.allow(ip) {
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            Status::ERROR_RETRY,
            format!("more than {REQUESTS_PER_SECOND} requests a second from {ip}; slow down"),
        );
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        return response;
    }
    if !access.failures.available(ip) {
        let mut response = refuse(
            StatusCode::TOO_MANY_REQUESTS,
            Status::ERROR_RETRY,
            format!("too many refused credentials from {ip}; wait before trying again"),
        );
        let wait = access.failures.retry_after(ip).as_secs().max(1);
        if let Ok(v) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, v);
        }
        return response;
    }
    let caller = match authenticate(&access, headers) {
        Ok(c) => c,
        Err(message) => {
            access.failures.allow(ip);
            tracing::info!(client = %ip, %method, %path, "refused credentials");
            let mut response = refuse(StatusCode::UNAUTHORIZED, Status::ERROR_NOT_AUTHENTICATED, message);
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"halo\""));
            return response;
        }
    };
    let needed = required_role(&method, &path);
    if caller.role < needed {
        return refuse(
            StatusCode::FORBIDDEN,
            Status::ERROR_ACCESS_DENIED,
            format!("{} has the role {}; {method} {path} needs {needed}", caller.who, caller.role),
        );
    }
    let writes = !(method == Method::GET || method == Method::HEAD || method == Method::OPTIONS);
    if writes && (headers.contains_key(header::CONTENT_TYPE) || has_body(headers)) && !is_json(headers) {
        let given = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("none");
        return refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Status::ERROR_INVALID_PARAMETER,
            format!("a request body must be Content-Type: application/json (at most {MAX_BODY} bytes), not {given}"),
        );
    }
    req.extensions_mut().insert(caller.clone());
    let response = next.run(req).await;
    if writes && response.status().is_success() {
        let entry = AuditEntry {
            at_ms: halo_security::unix_ms(),
            node: access.node.clone(),
            who: caller.who,
            role: caller.role,
            client: client.map_or_else(String::new, |c| c.to_string()),
            action: format!("{method} {path}"),
            status: response.status().as_u16(),
        };
        if let Err(e) = access.db.audit(&entry).await {
            tracing::warn!(error = %e, action = %entry.action, "the audit log could not record an accepted write");
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_follow_the_request() {
        let cases = [
            (Method::GET, "/v1/status", Role::Viewer),
            (Method::GET, "/v1/tokens", Role::Admin),
            (Method::GET, "/v1/audit", Role::Admin),
            (Method::POST, "/v1/groups/g/online", Role::Operator),
            (Method::POST, "/v1/groups/g/move", Role::Operator),
            (Method::POST, "/v1/resources/r/fail", Role::Operator),
            (Method::POST, "/v1/nodes/n/pause", Role::Operator),
            (Method::POST, "/v1/resources", Role::Admin),
            (Method::PUT, "/v1/resources/r/properties", Role::Admin),
            (Method::POST, "/v1/types", Role::Admin),
            (Method::DELETE, "/v1/nodes/n", Role::Admin),
            (Method::POST, "/v1/groups/online/online", Role::Operator),
            (Method::DELETE, "/v1/groups/g/online", Role::Admin),
        ];
        for (method, path, role) in cases {
            assert_eq!(required_role(&method, path), role, "{method} {path}");
        }
    }

    #[test]
    fn origins_and_content_types() {
        assert_eq!(origin_authority("https://10.0.0.1:7480"), Some("10.0.0.1:7480"));
        assert_eq!(origin_authority("null"), None);
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
        assert!(is_json(&h));
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        assert!(!is_json(&h));
    }
}
