//! `halo apply -f FILE`: declarative TOML. Creates what is missing, changes properties and
//! dependencies that differ, brings online or takes offline what the file says; prints each change
//! first. Applying the same file twice changes nothing the second time. Objects absent from the
//! file are left alone, unless `--prune` is given: then they are deleted (printed first). Several
//! clients may apply the same file at once: an object another one created meanwhile is fine when
//! it matches the file.
//!
//! ```toml
//! [[group]]
//! name = "web"
//! online = true                 # bring the group online (false: take it offline; absent: leave it)
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

use crate::client::{ApiFailure, Client, Output};
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
    /// Bring it online (true), take it offline (false), or leave it as it is (absent).
    #[serde(default)]
    pub online: Option<bool>,
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

/// Reads and applies a file against the node at `endpoint`; with `prune`, deletes the groups and
/// resources the file does not name.
pub async fn apply_file(endpoint: &str, path: &Path, dry_run: bool, prune: bool) -> Result<()> {
    let text_in = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let config: Config =
        toml::from_str(&text_in).with_context(|| format!("{} is not a valid halo configuration", path.display()))?;
    apply(&Client::new(endpoint, Output::Table)?, &config, dry_run, prune).await
}

/// Converges the cluster towards `config`, printing every change.
pub async fn apply(client: &Client, config: &Config, dry_run: bool, prune: bool) -> Result<()> {
    converge(client, config, Mode { dry_run, print: true, prune }).await
}

/// `apply` without printing (benchmarks).
pub async fn apply_quietly(client: &Client, config: &Config) -> Result<()> {
    converge(client, config, Mode { dry_run: false, print: false, prune: false }).await
}

/// How `converge` runs.
#[derive(Clone, Copy)]
struct Mode {
    dry_run: bool,
    print: bool,
    prune: bool,
}

/// How many requests `apply` keeps in flight: the cluster database batches concurrent writes.
const IN_FLIGHT: usize = 32;

/// Whether an object read back matches the file, and if not, why.
type Matches = Box<dyn Fn(&Value) -> Result<()> + Send + Sync>;

/// One change `apply` makes.
enum Change {
    Post(String, Value),
    Put(String, Value),
    Delete(String),
    /// A create; if another client created the object meanwhile, it is read back (from the
    /// path) and must match the file.
    Create {
        path: String,
        body: Value,
        existing: String,
        matches: Matches,
    },
}

/// How often a PUT is sent again when the node found the object changing under it.
const PUT_ATTEMPTS: u32 = 8;

/// PUTs `body`; sent again (it sets the same values each time) while the node answers
/// ERROR_INVALID_STATE because other writers kept changing the objects it checks — as when
/// several clients apply one file at once.
async fn put_retrying(client: &Client, path: &str, body: Value) -> Result<()> {
    let mut attempt = 1;
    loop {
        match client.put(path, body.clone()).await {
            Err(e) if attempt < PUT_ATTEMPTS && ApiFailure::is(&e, "ERROR_INVALID_STATE") => {
                // Back off a little more each time, so that the writers stop colliding.
                tokio::time::sleep(std::time::Duration::from_millis(10 << attempt)).await;
                attempt += 1;
            }
            other => return other.map(drop),
        }
    }
}

/// Runs changes concurrently; the first error wins.
async fn run(client: &Client, changes: Vec<Change>) -> Result<()> {
    use futures_util::StreamExt;
    let results: Vec<Result<()>> = futures_util::stream::iter(changes)
        .map(|c| async move {
            match c {
                Change::Post(path, body) => client.post(&path, body).await.map(drop),
                Change::Put(path, body) => put_retrying(client, &path, body).await,
                Change::Delete(path) => client.delete(&path).await,
                Change::Create { path, body, existing, matches } => match client.post(&path, body).await {
                    Err(e) if ApiFailure::is(&e, "ERROR_OBJECT_ALREADY_EXISTS") => {
                        matches(&client.get(&existing).await?)
                    }
                    other => other.map(drop),
                },
            }
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    results.into_iter().collect()
}

/// Why an existing resource cannot be what the file describes (its group and type are fixed).
fn resource_mismatch(current: &Value, r: &ResourceConfig) -> Option<String> {
    (current["group"] != r.group.as_str() || current["type_name"] != r.type_name.as_str()).then(|| {
        format!(
            "resource {} exists as {} in {}; the file says {} in {} (delete it to change either)",
            r.name, current["type_name"], current["group"], r.type_name, r.group
        )
    })
}

async fn converge(client: &Client, config: &Config, mode: Mode) -> Result<()> {
    let mut lines = Vec::new();
    let (mut groups_new, mut resources_new, mut updates, mut states) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let groups = client.get("/v1/groups").await?;
    let resources = client.get("/v1/resources").await?;
    let find = |list: &Value, name: &str| list.as_array().and_then(|a| a.iter().find(|o| o["name"] == name).cloned());
    for g in &config.groups {
        let props = text(&g.properties)?;
        match find(&groups, &g.name) {
            None => {
                lines.push(format!("+ group {}", g.name));
                let name = g.name.clone();
                let wanted = props.clone();
                groups_new.push(Change::Create {
                    path: "/v1/groups".into(),
                    body: json!({ "name": g.name, "properties": props }),
                    existing: format!("/v1/groups/{}", g.name),
                    matches: Box::new(move |current| {
                        let c = changed(&current["common"], &wanted);
                        if c.is_empty() {
                            Ok(())
                        } else {
                            Err(anyhow!("group {name} was created meanwhile with other properties: {c:?} differ"))
                        }
                    }),
                });
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
                let wanted = ResourceConfig {
                    name: r.name.clone(),
                    group: r.group.clone(),
                    type_name: r.type_name.clone(),
                    depends: String::new(),
                    properties: BTreeMap::new(),
                    private: BTreeMap::new(),
                };
                resources_new.push(Change::Create {
                    path: "/v1/resources".into(),
                    body,
                    existing: format!("/v1/resources/{}", r.name),
                    matches: Box::new(move |current| {
                        if let Some(m) = resource_mismatch(current, &wanted) {
                            return Err(anyhow!("{m}"));
                        }
                        let (c, p) = (changed(&current["common"], &common), changed(&current["private"], &private));
                        if c.is_empty() && p.is_empty() {
                            Ok(())
                        } else {
                            Err(anyhow!(
                                "resource {} was created meanwhile with other properties: {:?} differ",
                                wanted.name,
                                c.keys().chain(p.keys()).collect::<Vec<_>>()
                            ))
                        }
                    }),
                });
            }
            Some(current) => {
                if let Some(m) = resource_mismatch(current, r) {
                    return Err(anyhow!("{m}"));
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
    // With --prune: resources, then groups, that the file does not name. Their dependencies are
    // cleared first, so that they can be deleted in any order.
    let (mut unlinks, mut deletes, mut group_deletes) = (Vec::new(), Vec::new(), Vec::new());
    if mode.prune {
        let in_file = |name: &str| config.resources.iter().any(|r| r.name == name);
        for r in resources.as_array().into_iter().flatten() {
            let name = r["name"].as_str().unwrap_or_default();
            if in_file(name) {
                continue;
            }
            lines.push(format!("- resource {name}"));
            if !r["dependencies"].as_str().unwrap_or_default().is_empty() {
                unlinks.push(Change::Put(format!("/v1/resources/{name}/dependencies"), json!({ "expression": "" })));
            }
            deletes.push(Change::Delete(format!("/v1/resources/{name}")));
        }
        for g in groups.as_array().into_iter().flatten() {
            let name = g["name"].as_str().unwrap_or_default();
            if config.groups.iter().any(|c| c.name == name) {
                continue;
            }
            let kept: Vec<&str> =
                config.resources.iter().filter(|r| r.group == name).map(|r| r.name.as_str()).collect();
            if !kept.is_empty() {
                return Err(anyhow!(
                    "--prune would delete group {name}, which the file does not name, but it holds {}",
                    kept.join(", ")
                ));
            }
            lines.push(format!("- group {name}"));
            group_deletes.push(Change::Delete(format!("/v1/groups/{name}")));
        }
    }
    for g in &config.groups {
        let state = find(&groups, &g.name).and_then(|g| g["state"].as_str().map(str::to_string));
        match (g.online, state.as_deref()) {
            (Some(true), state) if state != Some("Online") => {
                lines.push(format!("> online group {}", g.name));
                states.push(Change::Post(format!("/v1/groups/{}/online", g.name), json!({})));
            }
            // A group being created is offline already.
            (Some(false), Some(state)) if state != "Offline" => {
                lines.push(format!("< offline group {}", g.name));
                states.push(Change::Post(format!("/v1/groups/{}/offline", g.name), json!({})));
            }
            _ => {}
        }
    }
    if mode.print {
        for l in &lines {
            println!("{l}");
        }
        if lines.is_empty() {
            println!("no changes");
        }
    }
    if mode.dry_run {
        return Ok(());
    }
    // Groups before their resources, resources before the dependencies that name them; what is
    // pruned goes once no dependency in the file names it, one at a time (a delete waits for its
    // resource to go offline).
    for phase in [groups_new, resources_new, updates, unlinks] {
        run(client, phase).await?;
    }
    for delete in deletes.into_iter().chain(group_deletes) {
        run(client, vec![delete]).await?;
    }
    run(client, states).await
}
