//! The operator commands: talk to a node's HTTP API and print tables or JSON.

use anyhow::{Result, anyhow, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Human tables.
    Table,
    /// The API's JSON.
    Json,
}

/// A connection to a node's API, with the caller's credentials.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
    token: Option<String>,
    /// How to print.
    pub output: Output,
}

/// How many redirects a request follows (a group's owner answers; one is the usual).
const MAX_REDIRECTS: usize = 5;

impl Client {
    /// A client for `endpoint` (`http://127.0.0.1:7480`), with the credentials the environment,
    /// the config file or a local node give for it (see [`crate::credentials`]).
    pub fn new(endpoint: &str, output: Output) -> Result<Client> {
        let credentials = crate::credentials::Credentials::for_endpoint(endpoint)?;
        Client::with(endpoint, output, &credentials)
    }

    /// A client for `endpoint` with these credentials.
    pub fn with(endpoint: &str, output: Output, credentials: &crate::credentials::Credentials) -> Result<Client> {
        // Redirects are followed here, not by reqwest: it would drop the token on the way to
        // another node of the same cluster, where it is just as valid.
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(pem) = &credentials.ca_pem {
            builder = builder.add_root_certificate(
                reqwest::Certificate::from_pem(pem.as_bytes()).map_err(|e| anyhow!("the CA certificate: {e}"))?,
            );
        } else if endpoint.starts_with("https://") {
            bail!(
                "{endpoint} is HTTPS, and no CA certificate is known to trust: set HALO_CA or `ca` in {} to the \
                 cluster CA (tls/ca.pem in a node's data directory)",
                crate::credentials::config_path().map_or_else(|| "the config file".into(), |p| p.display().to_string())
            );
        }
        Ok(Client {
            base: endpoint.trim_end_matches('/').to_string(),
            http: builder.build()?,
            token: credentials.token.clone(),
            output,
        })
    }

    /// The same credentials, for another node's endpoint.
    pub fn at(&self, endpoint: &str) -> Client {
        Client { base: endpoint.trim_end_matches('/').to_string(), ..self.clone() }
    }

    /// The endpoint.
    pub fn endpoint(&self) -> &str {
        &self.base
    }

    /// A request with the caller's token, following redirects; the response whatever its
    /// status.
    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<reqwest::Response> {
        let mut url = format!("{}{path}", self.base);
        for _ in 0..=MAX_REDIRECTS {
            let mut req = self.http.request(method.clone(), &url);
            if let Some(token) = &self.token {
                req = req.bearer_auth(token);
            }
            if let Some(body) = body {
                req = req.json(body);
            }
            let resp = req.send().await.map_err(|e| anyhow!("cannot reach halo at {url}: {e}"))?;
            let redirected = matches!(resp.status().as_u16(), 307 | 308);
            match resp.headers().get(reqwest::header::LOCATION).and_then(|l| l.to_str().ok()) {
                Some(location) if redirected => url = location.to_string(),
                _ => return Ok(resp),
            }
        }
        bail!("{url}: more than {MAX_REDIRECTS} redirects")
    }

    async fn send(&self, method: reqwest::Method, path: &str, body: Option<&Value>) -> Result<(u16, Value)> {
        let resp = self.request(method, path, body).await?;
        let status = resp.status();
        let text = resp.text().await?;
        let body: Value =
            if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
        if status.is_client_error() || status.is_server_error() {
            let error = body.get("error").and_then(Value::as_str).map(str::to_string);
            let mut text = error_text(status, &body);
            if status == reqwest::StatusCode::UNAUTHORIZED && self.token.is_none() {
                text.push_str(&format!(
                    "; no token was found for {}: set HALO_TOKEN or `token` in the config file, or run the CLI as \
                     the node's user on the node",
                    self.base
                ));
            }
            return Err(ApiFailure { error, text }.into());
        }
        Ok((status.as_u16(), body))
    }

    /// GET.
    pub async fn get(&self, path: &str) -> Result<Value> {
        Ok(self.send(reqwest::Method::GET, path, None).await?.1)
    }

    /// POST with a JSON body.
    pub async fn post(&self, path: &str, body: Value) -> Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, Some(&body)).await
    }

    /// PUT with a JSON body.
    pub async fn put(&self, path: &str, body: Value) -> Result<Value> {
        Ok(self.send(reqwest::Method::PUT, path, Some(&body)).await?.1)
    }

    /// DELETE.
    pub async fn delete(&self, path: &str) -> Result<()> {
        self.send(reqwest::Method::DELETE, path, None).await.map(drop)
    }

    /// Prints a value as JSON, or with `table` for humans.
    pub fn print(&self, value: &Value, table: impl Fn(&Value) -> String) {
        match self.output {
            Output::Json => println!("{}", serde_json::to_string_pretty(value).unwrap_or_default()),
            Output::Table => print!("{}", table(value)),
        }
    }

    /// Starts an operation (`body`: its flags and InBuffer); with `wait`, follows it to its
    /// end showing progress on stderr, for at most that long ([`StillPending`] then).
    pub async fn operation(&self, path: &str, body: Value, wait: Option<Duration>, watch: &[String]) -> Result<()> {
        let (_, accepted) = self.post(path, body).await?;
        let op = accepted
            .get("operation")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("no operation id in {accepted}"))?;
        // The operation lives on the node that runs the group (the request may have been
        // redirected there): it is followed there.
        let owner = match accepted.get("endpoint").and_then(Value::as_str) {
            Some(endpoint) if endpoint.trim_end_matches('/') != self.base => self.at(endpoint),
            _ => self.clone(),
        };
        let this = &owner;
        let Some(limit) = wait else {
            self.print(&accepted, |_| format!("operation {op} accepted (ERROR_IO_PENDING); follow it with --wait\n"));
            return Ok(());
        };
        let started = Instant::now();
        let mut last = String::new();
        loop {
            let left = limit.saturating_sub(started.elapsed());
            if left.is_zero() {
                return Err(StillPending { op, after: limit }.into());
            }
            // A second at a time, to show progress; the limit is overshot by less than that.
            let result = this.get(&format!("/v1/operations/{op}?wait=1")).await?;
            let status = result.pointer("/result/status").and_then(Value::as_str).unwrap_or("pending").to_string();
            let progress = this.progress(watch).await.unwrap_or_default();
            if progress != last {
                eprintln!("[{:>5.1}s] {progress}", started.elapsed().as_secs_f64());
                last = progress;
            }
            match status.as_str() {
                "succeeded" => {
                    self.print(&result, |_| format!("operation {op} succeeded\n"));
                    return Ok(());
                }
                "failed" => {
                    let message = result.pointer("/result/message").and_then(Value::as_str).unwrap_or("failed");
                    let code = result.pointer("/result/code").and_then(Value::as_u64).unwrap_or(0);
                    let name = resapi::Status(u32::try_from(code).unwrap_or(u32::MAX));
                    bail!("{}: {message}", name.name().unwrap_or("ERROR"));
                }
                _ => {}
            }
        }
    }

    /// Waits until `group` is owned by `to`, no longer moving, and settled there (not pending).
    pub async fn wait_moved(&self, group: &str, to: &str, limit: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            if started.elapsed() > limit {
                bail!("group {group} has not settled on {to} after {limit:?}; the move goes on");
            }
            let g = self.get(&format!("/v1/groups/{group}")).await?;
            let owner = g["owner"].as_str().unwrap_or("");
            if owner == to && g["moving_to"].is_null() {
                let nodes = self.get("/v1/nodes").await?;
                let api = nodes
                    .as_array()
                    .into_iter()
                    .flatten()
                    .find(|n| n["name"].as_str() == Some(to))
                    .and_then(|n| n["api"].as_str())
                    .ok_or_else(|| anyhow!("node {to} has no API address"))?
                    .to_string();
                // Settled: every resource is where it should be (or Failed) on the new owner.
                let there = self.at(&api);
                let resources = there.get("/v1/resources").await?;
                let settled = resources.as_array().into_iter().flatten().filter(|r| r["group"] == group).all(|r| {
                    let want = if r["desired"] == "online" { "Online" } else { "Offline" };
                    r["state"] == want || r["state"] == "Failed"
                });
                if settled {
                    let state = there.get(&format!("/v1/groups/{group}")).await?["state"].clone();
                    eprintln!("[{:>5.1}s] group {group} is {} on {to}", started.elapsed().as_secs_f64(), state);
                    return Ok(());
                }
            }
            // Nothing to subscribe to across nodes yet: look again shortly.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until every node's certificate is of `generation` or newer.
    pub async fn wait_rotated(&self, generation: u64, limit: Duration) -> Result<()> {
        let started = Instant::now();
        loop {
            let v = self.get("/v1/cluster/certificates").await?;
            let behind: Vec<String> = v["nodes"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|n| n["generation"].as_u64().unwrap_or(0) < generation)
                .map(|n| s(n, "node"))
                .collect();
            if behind.is_empty() {
                return Ok(());
            }
            if started.elapsed() > limit {
                bail!("after {limit:?}, still renewing: {}", behind.join(", "));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `/v1/status` of the whole cluster: every node's list from the endpoint, and each group
    /// and resource as its owner sees it (the owner runs it; other nodes know only who owns it).
    pub async fn cluster_status(&self) -> Result<Value> {
        let mut status = self.get("/v1/status").await?;
        let here = status["node"].as_str().unwrap_or("").to_string();
        let nodes: Vec<(String, String)> = status["nodes"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|n| matches!(n["state"].as_str(), Some("Up" | "Paused")))
            .filter_map(|n| Some((n["name"].as_str()?.to_string(), n["api"].as_str()?.to_string())))
            .filter(|(name, _)| *name != here)
            .collect();
        for (name, api) in nodes {
            let other = self.at(&api);
            let Ok(Ok(theirs)) = tokio::time::timeout(Duration::from_secs(2), other.get("/v1/status")).await else {
                continue;
            };
            for kind in ["groups", "resources"] {
                let Some(list) = status[kind].as_array_mut() else { continue };
                for item in list.iter_mut() {
                    if item["owner"].as_str() != Some(name.as_str()) {
                        continue;
                    }
                    let found = theirs[kind].as_array().into_iter().flatten().find(|t| t["name"] == item["name"]);
                    if let Some(t) = found {
                        *item = t.clone();
                    }
                }
            }
        }
        Ok(status)
    }

    async fn progress(&self, names: &[String]) -> Result<String> {
        let resources = self.get("/v1/resources").await?;
        let items: Vec<String> = resources
            .as_array()
            .into_iter()
            .flatten()
            .filter(|r| names.is_empty() || r["name"].as_str().is_some_and(|n| names.iter().any(|w| w == n)))
            .map(|r| format!("{}={}", r["name"].as_str().unwrap_or("?"), r["state"].as_str().unwrap_or("?")))
            .collect();
        Ok(items.join(" "))
    }
}

/// `--wait` gave up: the operation goes on without the client.
#[derive(Debug)]
pub struct StillPending {
    /// The operation.
    pub op: u64,
    /// How long the client waited.
    pub after: Duration,
}

impl std::fmt::Display for StillPending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "operation {} is still pending after {:?}; it goes on (GET /v1/operations/{} shows it)",
            self.op, self.after, self.op
        )
    }
}

impl std::error::Error for StillPending {}

/// An error the node answered, for callers that handle some errors (`apply` and an object
/// another client created meanwhile).
#[derive(Debug)]
pub struct ApiFailure {
    /// The `ERROR_*` name, when the answer was the API's error document.
    pub error: Option<String>,
    text: String,
}

impl std::fmt::Display for ApiFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for ApiFailure {}

impl ApiFailure {
    /// Whether `e` is this API error.
    pub fn is(e: &anyhow::Error, name: &str) -> bool {
        e.downcast_ref::<ApiFailure>().and_then(|f| f.error.as_deref()) == Some(name)
    }
}

/// An error answer as one line: `ERROR_NAME (code): message` for the API's error document, and
/// the HTTP status with whatever text came for anything else (a proxy, an empty body).
fn error_text(status: reqwest::StatusCode, body: &Value) -> String {
    let name = body.get("error").and_then(Value::as_str);
    let number = body.get("code").and_then(Value::as_u64);
    let message = body.get("message").and_then(Value::as_str);
    if let (Some(name), Some(number), Some(message)) = (name, number, message) {
        return format!("{name} ({number}): {message}");
    }
    let http = format!("HTTP {} {}", status.as_u16(), status.canonical_reason().unwrap_or("error"));
    match body {
        Value::Null => format!("{http} (no body)"),
        Value::String(s) if s.trim().is_empty() => format!("{http} (no body)"),
        Value::String(s) => format!("{http}: {}", s.trim()),
        other => format!("{http}: {other}"),
    }
}

/// Splits `KEY=VALUE` arguments.
pub fn pairs(args: &[String]) -> Result<BTreeMap<String, String>> {
    args.iter()
        .map(|a| match a.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(anyhow!("{a:?} is not KEY=VALUE")),
        })
        .collect()
}

/// Splits properties into common (declared by the engine) and private (everything else).
pub fn split_common(all: BTreeMap<String, String>) -> (BTreeMap<String, String>, BTreeMap<String, String>) {
    let is_common = |k: &str| halo_engine::model::RESOURCE_COMMON.items.iter().any(|i| i.name.eq_ignore_ascii_case(k));
    all.into_iter().partition(|(k, _)| is_common(k))
}

/// Renders rows as an aligned table.
pub fn table(headers: &[&str], rows: Vec<Vec<String>>) -> String {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.len());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let padded: Vec<String> = cells.iter().enumerate().map(|(i, c)| format!("{c:<w$}", w = widths[i])).collect();
        format!("{}\n", padded.join("  ").trim_end())
    };
    let mut out = line(headers.iter().map(|h| h.to_string()).collect());
    for r in rows {
        out.push_str(&line(r));
    }
    out
}

fn s(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// The `halo status` screen.
pub fn status_table(v: &Value) -> String {
    let groups: Vec<Vec<String>> = v["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let moving = g["moving_to"].as_str().map(|t| format!("-> {t}")).unwrap_or_default();
            vec![
                s(g, "name"),
                s(g, "state"),
                s(g, "owner"),
                g["epoch"].as_u64().map(|e| e.to_string()).unwrap_or_default(),
                moving,
                g["resources"].as_array().map_or(0, Vec::len).to_string(),
            ]
        })
        .collect();
    format!(
        "NODES\n{}\nGROUPS\n{}\nRESOURCES\n{}",
        nodes_table(&v["nodes"]),
        table(&["NAME", "STATE", "OWNER", "EPOCH", "MOVING", "RESOURCES"], groups),
        resources_table(&v["resources"])
    )
}

/// A node list.
pub fn nodes_table(v: &Value) -> String {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| {
            let leader = if n["leader"].as_bool() == Some(true) { "leader" } else { "" };
            vec![s(n, "name"), s(n, "state"), s(n, "role"), leader.to_string(), s(n, "api"), s(n, "peer")]
        })
        .collect();
    table(&["NAME", "STATE", "ROLE", "LEADER", "API", "PEER"], rows)
}

/// Token lists (API or join tokens).
pub fn tokens_table(v: &Value) -> String {
    let when = |t: &Value| t.as_u64().map_or_else(|| "never".to_string(), |t| format!("{t}"));
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|t| {
            vec![
                s(t, "id"),
                s(t, "name"),
                s(t, "role"),
                t["uses_left"].as_u64().map(|u| u.to_string()).unwrap_or_default(),
                when(&t["expires_at"]),
                s(t, "created_by"),
            ]
        })
        .collect();
    table(&["ID", "NAME", "ROLE", "USES LEFT", "EXPIRES (UNIX)", "CREATED BY"], rows)
}

/// The audit log.
pub fn audit_table(v: &Value) -> String {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            vec![s(e, "at_ms"), s(e, "node"), s(e, "who"), s(e, "role"), s(e, "action"), s(e, "status"), s(e, "client")]
        })
        .collect();
    table(&["AT (UNIX MS)", "NODE", "WHO", "ROLE", "ACTION", "STATUS", "CLIENT"], rows)
}

/// Node certificates.
pub fn certificates_table(v: &Value) -> String {
    let rows = v["nodes"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|n| vec![s(n, "node"), s(n, "generation"), s(n, "sha256"), s(n, "not_after")])
        .collect();
    format!(
        "generation asked for: {}\n{}",
        v["generation"],
        table(&["NODE", "GENERATION", "SHA256", "EXPIRES (UNIX)"], rows)
    )
}

/// A resource list.
pub fn resources_table(v: &Value) -> String {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            vec![s(r, "name"), s(r, "group"), s(r, "type_name"), s(r, "state"), s(r, "owner"), s(r, "dependencies")]
        })
        .collect();
    table(&["NAME", "GROUP", "TYPE", "STATE", "OWNER", "DEPENDS ON"], rows)
}

/// A group list.
pub fn groups_table(v: &Value) -> String {
    let rows = v
        .as_array()
        .into_iter()
        .flatten()
        .map(|g| {
            let members: Vec<&str> =
                g["resources"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
            vec![s(g, "name"), s(g, "state"), s(g, "owner"), members.join(",")]
        })
        .collect();
    table(&["NAME", "STATE", "OWNER", "RESOURCES"], rows)
}

/// One object's fields, one per line.
pub fn object_table(v: &Value) -> String {
    let mut out = String::new();
    if let Some(map) = v.as_object() {
        for (k, val) in map {
            let text = match val {
                Value::String(s) => s.clone(),
                Value::Object(o) if o.is_empty() => String::new(),
                Value::Object(o) => o
                    .iter()
                    .map(|(k, v)| format!("{k}={}", v.as_str().map_or(v.to_string(), str::to_string)))
                    .collect::<Vec<_>>()
                    .join(" "),
                other => other.to_string(),
            };
            out.push_str(&format!("{k:<14} {text}\n"));
        }
    }
    out
}

/// An event as one line.
pub fn event_line(e: &Value) -> String {
    let kind = s(e, "kind");
    let detail = match kind.as_str() {
        "resource_state" => format!(
            "{} ({}) -> {} [{}] {}",
            s(e, "resource"),
            s(e, "group"),
            s(e, "state"),
            resapi::Status(e["status"].as_u64().unwrap_or(0) as u32),
            s(e, "cause")
        ),
        "group_state" => format!("{} -> {}", s(e, "group"), s(e, "state")),
        "added" | "deleted" => format!("{} {}", s(e, "object"), s(e, "name")),
        "property" => format!("{} {}: {}", s(e, "object"), s(e, "name"), e["properties"]),
        "log" => format!("{} {}: {}", s(e, "resource"), s(e, "level"), s(e, "message")),
        "node_state" => format!("{} -> {}", s(e, "node"), s(e, "state")),
        "lagged" => s(e, "message"),
        _ => e.to_string(),
    };
    format!("{:>6} {:<15} {detail}", s(e, "seq"), kind)
}
