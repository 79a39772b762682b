//! `halo apply -f FILE`: declarative TOML. Creates what is missing, changes properties and
//! dependencies that differ, brings online what the file asks for; prints each change first.
//! Applying the same file twice changes nothing the second time. Objects absent from the file are
//! left alone.
//!
//! ```toml
//! [[group]]
//! name = "web"
//! online = true                 # bring the group online
//! properties = { Priority = 3000 }
//!
//! [[resource]]
//! name = "site"
//! group = "web"
//! type = "process"
//! depends = "[ip]"
//! properties = { RestartThreshold = 5 }     # common properties
//! private = { Command = "python3", Arguments = "-m http.server 8080" }
//! ```

use crate::client::{Client, Output};
use anyhow::{Context, Result, anyhow};
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::Path;

/// A configuration file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Groups.
    #[serde(default, rename = "group")]
    pub groups: Vec<GroupConfig>,
    /// Resources.
    #[serde(default, rename = "resource")]
    pub resources: Vec<ResourceConfig>,
}

/// A group in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupConfig {
    /// Its name.
    pub name: String,
    /// Bring it online.
    #[serde(default)]
    pub online: bool,
    /// Common properties.
    #[serde(default)]
    pub properties: BTreeMap<String, toml::Value>,
}

/// A resource in the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ResourceConfig {
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type.
    #[serde(rename = "type")]
    pub type_name: String,
    /// Dependency expression.
    #[serde(default)]
    pub depends: String,
    /// Common properties.
    #[serde(default)]
    pub properties: BTreeMap<String, toml::Value>,
    /// Private properties.
    #[serde(default)]
    pub private: BTreeMap<String, toml::Value>,
}

fn text(values: &BTreeMap<String, toml::Value>) -> Result<BTreeMap<String, String>> {
    values
        .iter()
        .map(|(k, v)| {
            let t = match v {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                toml::Value::Array(a) => {
                    a.iter().map(|x| x.as_str().map_or(x.to_string(), str::to_string)).collect::<Vec<_>>().join("\n")
                }
                other => return Err(anyhow!("property {k}: {other} is not a string, integer, boolean or list")),
            };
            Ok((k.clone(), t))
        })
        .collect()
}

fn changed(current: &Value, wanted: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    wanted
        .iter()
        .filter(|(k, v)| current.get(k.as_str()).and_then(Value::as_str) != Some(v.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// Reads and applies a file against the node at `endpoint`.
pub async fn apply_file(endpoint: &str, path: &Path, dry_run: bool) -> Result<()> {
    let text_in = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: Config =
        toml::from_str(&text_in).with_context(|| format!("{} is not a valid halo configuration", path.display()))?;
    apply(&Client::new(endpoint, Output::Table)?, &config, dry_run).await
}

/// Converges the cluster towards `config`, printing every change.
pub async fn apply(client: &Client, config: &Config, dry_run: bool) -> Result<()> {
    converge(client, config, dry_run, true).await
}

/// `apply` without printing (benchmarks).
pub async fn apply_quietly(client: &Client, config: &Config) -> Result<()> {
    converge(client, config, false, false).await
}

/// How many requests `apply` keeps in flight: the cluster database batches concurrent writes.
const IN_FLIGHT: usize = 32;

/// One change `apply` makes.
enum Change {
    Post(String, Value),
    Put(String, Value),
}

/// Runs changes concurrently; the first error wins.
async fn run(client: &Client, changes: Vec<Change>) -> Result<()> {
    use futures_util::StreamExt;
    let results: Vec<Result<()>> = futures_util::stream::iter(changes)
        .map(|c| async move {
            match c {
                Change::Post(path, body) => client.post(&path, body).await.map(drop),
                Change::Put(path, body) => client.put(&path, body).await.map(drop),
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

async fn converge(client: &Client, config: &Config, dry_run: bool, print: bool) -> Result<()> {
    let mut lines = Vec::new();
    let (mut groups_new, mut resources_new, mut updates, mut onlines) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let groups = client.get("/v1/groups").await?;
    let resources = client.get("/v1/resources").await?;
    let find = |list: &Value, name: &str| list.as_array().and_then(|a| a.iter().find(|o| o["name"] == name).cloned());
    for g in &config.groups {
        let props = text(&g.properties)?;
        match find(&groups, &g.name) {
            None => {
                lines.push(format!("+ group {}", g.name));
                groups_new.push(Change::Post("/v1/groups".into(), json!({ "name": g.name, "properties": props })));
            }
            Some(current) => {
                let c = changed(&current["common"], &props);
                for (k, v) in &c {
                    lines.push(format!("~ group {}: {k} = {v:?}", g.name));
                }
                if !c.is_empty() {
                    updates.push(Change::Put(format!("/v1/groups/{}/properties", g.name), json!({ "common": c })));
                }
            }
        }
    }
    for r in &config.resources {
        let (common, private) = (text(&r.properties)?, text(&r.private)?);
        let normalized =
            halo_engine::deps::Dependencies::parse(&r.depends).map(|d| d.to_string()).unwrap_or(r.depends.clone());
        let current = find(&resources, &r.name);
        match &current {
            None => {
                lines.push(format!("+ resource {} ({} in {})", r.name, r.type_name, r.group));
                let body = json!({ "name": r.name, "group": r.group, "type": r.type_name, "properties": common, "private": private });
                resources_new.push(Change::Post("/v1/resources".into(), body));
            }
            Some(current) => {
                if current["group"] != r.group.as_str() || current["type_name"] != r.type_name.as_str() {
                    return Err(anyhow!(
                        "resource {} exists as {} in {}; the file says {} in {} (delete it to change either)",
                        r.name,
                        current["type_name"],
                        current["group"],
                        r.type_name,
                        r.group
                    ));
                }
                let (c, p) = (changed(&current["common"], &common), changed(&current["private"], &private));
                for (k, v) in c.iter().chain(p.iter()) {
                    lines.push(format!("~ resource {}: {k} = {v:?}", r.name));
                }
                if !c.is_empty() || !p.is_empty() {
                    updates.push(Change::Put(
                        format!("/v1/resources/{}/properties", r.name),
                        json!({ "common": c, "private": p }),
                    ));
                }
            }
        }
        let current_deps =
            current.as_ref().and_then(|c| c["dependencies"].as_str().map(str::to_string)).unwrap_or_default();
        if current_deps != normalized {
            lines.push(format!("~ resource {}: depends on {normalized:?}", r.name));
            updates.push(Change::Put(
                format!("/v1/resources/{}/dependencies", r.name),
                json!({ "expression": r.depends }),
            ));
        }
    }
    for g in config.groups.iter().filter(|g| g.online) {
        let state = find(&groups, &g.name).and_then(|g| g["state"].as_str().map(str::to_string)).unwrap_or_default();
        if state != "Online" {
            lines.push(format!("> online group {}", g.name));
            onlines.push(Change::Post(format!("/v1/groups/{}/online", g.name), json!({})));
        }
    }
    if print {
        for l in &lines {
            println!("{l}");
        }
        if lines.is_empty() {
            println!("no changes");
        }
    }
    if dry_run {
        return Ok(());
    }
    // Groups before their resources, resources before the dependencies that name them.
    for phase in [groups_new, resources_new, updates, onlines] {
        run(client, phase).await?;
    }
    Ok(())
}
