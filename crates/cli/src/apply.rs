//! `halo apply -f FILE`: declarative TOML. Creates what is missing, changes what differs, brings
//! online what the file asks for; prints each change first. Applying the same file twice changes
//! nothing the second time. Objects absent from the file are left alone.
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
    let mut changes = 0;
    let mut say = |line: String| {
        changes += 1;
        println!("{line}");
    };
    let groups = client.get("/v1/groups").await?;
    let find = |list: &Value, name: &str| list.as_array().and_then(|a| a.iter().find(|o| o["name"] == name).cloned());
    for g in &config.groups {
        let props = text(&g.properties)?;
        if find(&groups, &g.name).is_none() {
            say(format!("+ group {}", g.name));
            if !dry_run {
                client.post("/v1/groups", json!({ "name": g.name, "properties": props })).await?;
            }
        }
    }
    let resources = client.get("/v1/resources").await?;
    for r in &config.resources {
        let (common, private) = (text(&r.properties)?, text(&r.private)?);
        match find(&resources, &r.name) {
            None => {
                say(format!("+ resource {} ({} in {})", r.name, r.type_name, r.group));
                if !dry_run {
                    let body = json!({ "name": r.name, "group": r.group, "type": r.type_name, "properties": common, "private": private, "dependencies": r.depends });
                    client.post("/v1/resources", body).await?;
                }
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
                    say(format!("~ resource {}: {k} = {v:?}", r.name));
                }
                if !dry_run && (!c.is_empty() || !p.is_empty()) {
                    client
                        .put(&format!("/v1/resources/{}/properties", r.name), json!({ "common": c, "private": p }))
                        .await?;
                }
                let normalized = halo_engine::deps::Dependencies::parse(&r.depends)
                    .map(|d| d.to_string())
                    .unwrap_or(r.depends.clone());
                if current["dependencies"].as_str() != Some(normalized.as_str()) {
                    say(format!("~ resource {}: depends on {normalized:?}", r.name));
                    if !dry_run {
                        client
                            .put(&format!("/v1/resources/{}/dependencies", r.name), json!({ "expression": r.depends }))
                            .await?;
                    }
                }
            }
        }
    }
    for g in config.groups.iter().filter(|g| g.online) {
        let state = if dry_run {
            String::new()
        } else {
            client.get(&format!("/v1/groups/{}", g.name)).await?["state"].as_str().unwrap_or("").to_string()
        };
        if state != "Online" {
            say(format!("> online group {}", g.name));
            if !dry_run {
                client.post(&format!("/v1/groups/{}/online", g.name), json!({})).await?;
            }
        }
    }
    if changes == 0 {
        println!("no changes");
    }
    Ok(())
}
