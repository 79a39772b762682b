//! Where the CLI finds its endpoint, token and CA, as `kubectl` and `etcdctl` do: flags, then
//! environment variables (`HALO_ENDPOINT`, `HALO_TOKEN`, `HALO_CA`), then the config file
//! (`$XDG_CONFIG_HOME/halo/config.toml`, by default `~/.config/halo/config.toml`), then — for a
//! node on this machine — the node's local credential.
//!
//! Local credentials: every node writes, for each address its API listens on, a file with a
//! token of the admin role (new at every start) into a directory only its user can read:
//! `/run/halo/` for root, `$XDG_RUNTIME_DIR/halo/` (or `/tmp/halo-UID/`) for others. The CLI of
//! the same user finds it by the endpoint's address, so local root needs no setup, and other
//! local users get nothing from it.

use anyhow::{Context, Result, anyhow, bail};
use serde::{Deserialize, Serialize};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The endpoint when nothing says otherwise.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:7480";

/// The config file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// The API endpoint, `http://HOST:PORT` or `https://HOST:PORT`.
    pub endpoint: Option<String>,
    /// An API token (`halo token create`).
    pub token: Option<String>,
    /// The cluster CA certificate (PEM file) to trust for `https://` endpoints.
    pub ca: Option<PathBuf>,
}

/// The config file's path.
pub fn config_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("halo/config.toml"))
}

/// The config file, if there is one.
pub fn config() -> Result<Config> {
    let Some(path) = config_path() else { return Ok(Config::default()) };
    match std::fs::read_to_string(&path) {
        Ok(text) => toml::from_str(&text).with_context(|| format!("reading {}", path.display())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Config::default()),
        Err(e) => Err(anyhow!("reading {}: {e}", path.display())),
    }
}

/// The endpoint: the flag, `HALO_ENDPOINT`, the config file, or the default.
pub fn endpoint(flag: Option<&str>) -> Result<String> {
    if let Some(e) = flag {
        return Ok(e.to_string());
    }
    if let Ok(e) = std::env::var("HALO_ENDPOINT")
        && !e.is_empty()
    {
        return Ok(e);
    }
    Ok(config()?.endpoint.unwrap_or_else(|| DEFAULT_ENDPOINT.to_string()))
}

/// What a client presents and trusts.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The bearer token.
    pub token: Option<String>,
    /// The CA certificate (PEM) for `https://` endpoints.
    pub ca_pem: Option<String>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Credentials(token: {}, ca: {})", self.token.is_some(), self.ca_pem.is_some())
    }
}

impl Credentials {
    /// The credentials for `endpoint`: `HALO_TOKEN` / `HALO_CA`, the config file, then the
    /// local credential of a node on this machine listening there.
    pub fn for_endpoint(endpoint: &str) -> Result<Credentials> {
        let config = config()?;
        let local = read_local(endpoint);
        let token = std::env::var("HALO_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .or(config.token)
            .or_else(|| local.as_ref().map(|l| l.token.clone()));
        let ca_path = std::env::var_os("HALO_CA").map(PathBuf::from).or(config.ca);
        let ca_pem = match ca_path {
            Some(path) => {
                Some(std::fs::read_to_string(&path).with_context(|| format!("reading the CA {}", path.display()))?)
            }
            None => local.and_then(|l| l.ca_pem),
        };
        Ok(Credentials { token, ca_pem })
    }
}

/// A node's local credential file.
#[derive(Serialize, Deserialize)]
pub struct LocalFile {
    /// The endpoint it is for.
    pub endpoint: String,
    /// The token.
    pub token: String,
    /// The CA (PEM), for a TLS endpoint.
    pub ca_pem: Option<String>,
}

/// The directory of local credentials for this user (see [`write_local`], which creates it
/// 0700; one that another user owns, or that others can read, is never used).
pub fn runtime_dir() -> PathBuf {
    let uid = nix::unistd::geteuid();
    if uid.is_root() {
        PathBuf::from("/run/halo")
    } else if let Some(run) = std::env::var_os("XDG_RUNTIME_DIR").filter(|r| !r.is_empty()) {
        PathBuf::from(run).join("halo")
    } else {
        std::env::temp_dir().join(format!("halo-{uid}"))
    }
}

fn check_private_dir(dir: &Path) -> Result<()> {
    let meta = std::fs::symlink_metadata(dir).with_context(|| format!("reading {}", dir.display()))?;
    if !meta.is_dir() || meta.uid() != nix::unistd::geteuid().as_raw() || meta.mode() & 0o077 != 0 {
        bail!("{} is not a directory private to this user (owner and mode 0700 expected)", dir.display());
    }
    Ok(())
}

/// The file name for an endpoint: its address, with `localhost` as 127.0.0.1.
fn local_name(endpoint: &str) -> Option<String> {
    let rest = endpoint.split_once("://").map_or(endpoint, |(_, r)| r);
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let host = if host.eq_ignore_ascii_case("localhost") { "127.0.0.1" } else { host };
    port.parse::<u16>().ok()?;
    Some(format!("api-{host}-{port}.json"))
}

fn read_local(endpoint: &str) -> Option<LocalFile> {
    let dir = runtime_dir();
    check_private_dir(&dir).ok()?;
    let text = std::fs::read(dir.join(local_name(endpoint)?)).ok()?;
    serde_json::from_slice(&text).ok()
}

/// Writes a node's local credential for each of `endpoints`; returns the files written (the
/// node removes them when it stops).
pub fn write_local(endpoints: &[String], token: &str, ca_pem: Option<&str>) -> Result<Vec<PathBuf>> {
    let dir = runtime_dir();
    halo_security::files::private_dir(&dir).map_err(|e| anyhow!("{e}"))?;
    check_private_dir(&dir)?;
    let mut written = Vec::new();
    for endpoint in endpoints {
        let Some(name) = local_name(endpoint) else { continue };
        let file =
            LocalFile { endpoint: endpoint.clone(), token: token.to_string(), ca_pem: ca_pem.map(str::to_string) };
        let path = dir.join(name);
        halo_security::files::write_private(&path, &serde_json::to_vec(&file)?).map_err(|e| anyhow!("{e}"))?;
        written.push(path);
    }
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_names_follow_the_address() {
        assert_eq!(local_name("http://127.0.0.1:7480").as_deref(), Some("api-127.0.0.1-7480.json"));
        assert_eq!(local_name("http://localhost:7480/").as_deref(), Some("api-127.0.0.1-7480.json"));
        assert_eq!(local_name("https://[::1]:9/v1").as_deref(), Some("api-::1-9.json"));
        assert_eq!(local_name("http://host"), None);
    }
}
