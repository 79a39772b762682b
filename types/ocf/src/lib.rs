//! # halo-type-ocf — OCF resource agents
//!
//! Runs the agents Pacemaker runs (`/usr/lib/ocf/resource.d/<provider>/<agent>`, Debian package
//! `resource-agents`): online → `start`, offline → `stop`, LooksAlive → `monitor` with
//! `OCF_CHECK_LEVEL=0`, IsAlive → `monitor` with `OCF_CHECK_LEVEL=10`, terminate → `stop`.
//! Private properties become `OCF_RESKEY_<name>`; the agent's `meta-data` is read once per agent to
//! check required and unknown parameters and to take each action's default timeout. Exit codes
//! follow the OCF spec; `ocf-exit-reason:` lines are kept in the log. An offline also passes
//! `HALO_DESTINATION_NODE` and `HALO_OFFLINE_FLAGS[_NAMES]`.
//!
//! As in Pacemaker's executor, a daemon an agent starts in the background outlives the action:
//! only an action that times out or is cancelled has its process group killed. Every process of
//! the resource is contained (see `halo_type_exec::contain`) and ends when the resource goes
//! offline or fails, or its host dies.
//!
//! Properties of the type itself: `Agent` (`provider:agent`, required) and `OcfRoot` (default
//! `/usr/lib/ocf`).

use halo_type_exec::{Keep, RunOutput, Scope, epoch, operation_env, run};
use resapi::{
    Callbacks, LogLevel, OfflineFlags, OnlineFlags, OpenRequest, Parameters, PendingWorker, PropertyList, Resource,
    ResourceState, ResourceStatusEx, ResourceType, Status, ValueData,
};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

/// The agent, as `provider:agent`.
pub const AGENT: &str = "Agent";
/// Where agents live.
pub const OCF_ROOT: &str = "OcfRoot";
/// The default `OcfRoot`.
pub const DEFAULT_OCF_ROOT: &str = "/usr/lib/ocf";
/// Pacemaker's timeout for an action the meta-data gives none for.
pub const DEFAULT_ACTION_TIMEOUT: Duration = Duration::from_secs(20);

/// OCF exit codes.
pub mod rc {
    /// Success.
    pub const SUCCESS: i32 = 0;
    /// Generic (soft) error.
    pub const ERR_GENERIC: i32 = 1;
    /// Invalid arguments.
    pub const ERR_ARGS: i32 = 2;
    /// Unimplemented action.
    pub const ERR_UNIMPLEMENTED: i32 = 3;
    /// Insufficient permissions.
    pub const ERR_PERM: i32 = 4;
    /// Something required is not installed.
    pub const ERR_INSTALLED: i32 = 5;
    /// Misconfigured: cannot run anywhere.
    pub const ERR_CONFIGURED: i32 = 6;
    /// Not running.
    pub const NOT_RUNNING: i32 = 7;
    /// Running as promoted.
    pub const RUNNING_PROMOTED: i32 = 8;
    /// Failed as promoted.
    pub const FAILED_PROMOTED: i32 = 9;
    /// Running, degraded.
    pub const DEGRADED: i32 = 190;
    /// Running as promoted, degraded.
    pub const DEGRADED_PROMOTED: i32 = 191;
}

/// The Win32 status an OCF exit code maps to, following the OCF resource-agent API's exit-code
/// classes as Pacemaker applies them (soft: restart or move; hard: not on this node; fatal: on no
/// node).
pub fn status_of(code: i32) -> Status {
    match code {
        rc::SUCCESS => Status::ERROR_SUCCESS,
        rc::ERR_ARGS => Status::ERROR_INVALID_PARAMETER,
        rc::ERR_UNIMPLEMENTED => Status::ERROR_INVALID_FUNCTION,
        rc::ERR_PERM => Status::ERROR_ACCESS_DENIED,
        rc::ERR_INSTALLED => Status::ERROR_FILE_NOT_FOUND,
        rc::ERR_CONFIGURED => Status::ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR,
        rc::NOT_RUNNING => Status::ERROR_RESOURCE_NOT_ONLINE,
        _ => Status::ERROR_RESOURCE_FAILED,
    }
}

/// What a monitor's exit code says about health.
pub fn monitor_alive(code: i32) -> bool {
    matches!(code, rc::SUCCESS | rc::RUNNING_PROMOTED | rc::DEGRADED | rc::DEGRADED_PROMOTED)
}

/// What an agent's meta-data declares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetaData {
    /// Parameter names, and whether each is required.
    pub parameters: Vec<(String, bool)>,
    /// Advisory timeouts per action (`start`, `stop`, `monitor`, …).
    pub timeouts: HashMap<String, Duration>,
    /// The advised interval of the recurring monitor.
    pub monitor_interval: Option<Duration>,
}

/// Parses an OCF duration: `20s`, `20`, `500ms`, `2m`, `1h`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let t = text.trim();
    let (number, unit) = t.find(|c: char| !c.is_ascii_digit()).map_or((t, ""), |i| t.split_at(i));
    let n: u64 = number.parse().ok()?;
    Some(match unit.trim() {
        "" | "s" | "sec" => Duration::from_secs(n),
        "ms" | "msec" => Duration::from_millis(n),
        "m" | "min" => Duration::from_secs(n * 60),
        "h" | "hr" => Duration::from_secs(n * 3600),
        _ => return None,
    })
}

impl MetaData {
    /// Parses `<resource-agent>` meta-data XML.
    pub fn parse(xml: &str) -> Result<MetaData, String> {
        // heartbeat agents still emit a DOCTYPE.
        let options = roxmltree::ParsingOptions { allow_dtd: true, ..Default::default() };
        let doc =
            roxmltree::Document::parse_with_options(xml, options).map_err(|e| format!("meta-data is not XML: {e}"))?;
        let root = doc.root_element();
        if root.tag_name().name() != "resource-agent" {
            return Err(format!("meta-data root is <{}>, not <resource-agent>", root.tag_name().name()));
        }
        let mut meta = MetaData::default();
        for node in root.descendants() {
            match node.tag_name().name() {
                "parameter" => {
                    if let Some(name) = node.attribute("name") {
                        let required = matches!(node.attribute("required"), Some("1" | "true"));
                        meta.parameters.push((name.to_string(), required));
                    }
                }
                "action" => {
                    if node.attribute("name") == Some("monitor") && meta.monitor_interval.is_none() {
                        meta.monitor_interval =
                            node.attribute("interval").and_then(parse_duration).filter(|d| !d.is_zero());
                    }
                    if let (Some(name), Some(t)) =
                        (node.attribute("name"), node.attribute("timeout").and_then(parse_duration))
                    {
                        meta.timeouts.entry(name.to_string()).or_insert(t);
                    }
                }
                _ => {}
            }
        }
        Ok(meta)
    }

    fn timeout(&self, action: &str) -> Duration {
        self.timeouts.get(action).copied().unwrap_or(DEFAULT_ACTION_TIMEOUT)
    }
}

/// The `ocf` resource type. Meta-data is read once per agent and kept.
#[derive(Debug, Default)]
pub struct OcfType {
    cache: Arc<MetaCache>,
}

/// Agents' meta-data, read once each; shared by the type and its resources.
#[derive(Debug, Default)]
struct MetaCache {
    meta: Mutex<HashMap<PathBuf, Arc<MetaData>>>,
}

#[derive(Debug, Clone)]
struct Agent {
    path: PathBuf,
    root: String,
    provider: String,
    kind: String,
    meta: Arc<MetaData>,
    reskeys: Vec<(String, String)>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl MetaCache {
    fn agent(&self, name: &str, list: &PropertyList) -> Result<Agent, (Status, String)> {
        let invalid = |m: String| (Status::ERROR_INVALID_PARAMETER, m);
        let spec = list
            .get_str(AGENT)
            .ok_or_else(|| invalid(format!("property {AGENT:?} is required (provider:agent, e.g. heartbeat:Dummy)")))?;
        let (provider, kind) = spec
            .split_once(':')
            .filter(|(p, k)| !p.is_empty() && !k.is_empty() && !p.contains('/') && !k.contains('/'))
            .ok_or_else(|| invalid(format!("property {AGENT:?}: {spec:?} is not provider:agent")))?;
        let root = list.get_str(OCF_ROOT).unwrap_or(DEFAULT_OCF_ROOT).to_string();
        let path = Path::new(&root).join("resource.d").join(provider).join(kind);
        if !path.is_file() {
            return Err((
                Status::ERROR_FILE_NOT_FOUND,
                format!("no OCF agent {} (is resource-agents installed?)", path.display()),
            ));
        }
        let meta = self.meta_data(&path, &root)?;
        let mut reskeys = Vec::new();
        for p in list.iter() {
            if p.name.eq_ignore_ascii_case(AGENT) || p.name.eq_ignore_ascii_case(OCF_ROOT) {
                continue;
            }
            if !meta.parameters.iter().any(|(n, _)| *n == p.name) {
                let known: Vec<&str> = meta.parameters.iter().map(|(n, _)| n.as_str()).collect();
                return Err(invalid(format!(
                    "{:?} is not a parameter of ocf:{provider}:{kind}; its parameters: {}",
                    p.name,
                    known.join(", ")
                )));
            }
            let text = p
                .value()
                .and_then(ValueData::to_text)
                .ok_or_else(|| invalid(format!("property {:?}: binary values cannot be passed to an agent", p.name)))?;
            reskeys.push((format!("OCF_RESKEY_{}", p.name), text));
        }
        if let Some((missing, _)) =
            meta.parameters.iter().find(|(n, req)| *req && !reskeys.iter().any(|(k, _)| k[11..] == **n))
        {
            return Err(invalid(format!("ocf:{provider}:{kind} requires parameter {missing:?} (for {name})")));
        }
        Ok(Agent { path, root, provider: provider.into(), kind: kind.into(), meta, reskeys })
    }

    fn meta_data(&self, path: &Path, root: &str) -> Result<Arc<MetaData>, (Status, String)> {
        if let Some(m) = lock(&self.meta).get(path) {
            return Ok(m.clone());
        }
        let mut command = Command::new(path);
        command.arg("meta-data").env("OCF_ROOT", root);
        // Not a resource's process: meta-data is read once per agent, for every resource.
        let out = run(Scope::NONE, &mut command, Keep::Both, DEFAULT_ACTION_TIMEOUT, || false)
            .map_err(|e| (halo_type_exec::spawn_status(&e), format!("{} meta-data: {e}", path.display())))?;
        if out.code != Some(0) {
            return Err((
                Status::ERROR_RESOURCE_FAILED,
                format!("{} meta-data exited with {:?}", path.display(), out.code),
            ));
        }
        let meta = Arc::new(
            MetaData::parse(&out.stdout)
                .map_err(|e| (Status::ERROR_INVALID_DATA, format!("{}: {e}", path.display())))?,
        );
        lock(&self.meta).insert(path.to_path_buf(), meta.clone());
        Ok(meta)
    }
}

impl ResourceType for OcfType {
    fn open(&self, request: OpenRequest) -> Result<Box<dyn Resource>, Status> {
        let agent = self.cache.agent(&request.name, &request.parameters.snapshot()).map_err(|(status, message)| {
            request.callbacks.log_event(LogLevel::Error, &format!("ocf {}: {message}", request.name));
            status
        })?;
        Ok(Box::new(Ocf {
            scope: Scope::resource(request.callbacks.handle().0),
            name: request.name,
            callbacks: request.callbacks,
            parameters: request.parameters,
            agent: Mutex::new(agent),
            worker: PendingWorker::default(),
            cache: self.cache.clone(),
        }))
    }
}

struct Ocf {
    /// Where the agent and the daemons it starts run: killed as a whole if the host dies.
    scope: Scope,
    name: String,
    callbacks: Callbacks,
    parameters: Parameters,
    agent: Mutex<Agent>,
    worker: PendingWorker,
    cache: Arc<MetaCache>,
}

impl Agent {
    fn action(
        &self,
        scope: Scope,
        name: &str,
        action: &str,
        extra: &[(String, String)],
        callbacks: &Callbacks,
        cancelled: impl FnMut() -> bool,
    ) -> Option<i32> {
        let timeout = self.meta.timeout(action);
        let mut command = Command::new(&self.path);
        command
            .arg(action)
            .env("OCF_ROOT", &self.root)
            .env("OCF_RA_VERSION_MAJOR", "1")
            .env("OCF_RA_VERSION_MINOR", "1")
            .env("OCF_RESOURCE_INSTANCE", name)
            .env("OCF_RESOURCE_TYPE", &self.kind)
            .env("OCF_RESOURCE_PROVIDER", &self.provider)
            .env("OCF_EXIT_REASON_PREFIX", "ocf-exit-reason:")
            .env("OCF_RESKEY_CRM_meta_timeout", timeout.as_millis().to_string())
            .envs(self.reskeys.iter().cloned())
            .envs(extra.iter().cloned());
        match run(scope, &mut command, Keep::Stderr, timeout, cancelled) {
            Ok(out) => {
                report_output(callbacks, action, &out, timeout);
                out.code
            }
            Err(e) => {
                callbacks.log_event(LogLevel::Error, &format!("cannot run {} {action}: {e}", self.path.display()));
                None
            }
        }
    }
}

fn report_output(callbacks: &Callbacks, action: &str, out: &RunOutput, timeout: Duration) {
    if out.timed_out {
        callbacks.log_event(LogLevel::Error, &format!("{action} did not finish within {timeout:?}; killed"));
    }
    for line in out.stderr.lines() {
        if let Some(reason) = line.strip_prefix("ocf-exit-reason:") {
            callbacks.log_event(LogLevel::Error, &format!("{action}: {reason}"));
        }
    }
}

impl Ocf {
    fn monitor(&self, level: &str) -> bool {
        let agent = lock(&self.agent).clone();
        // A non-zero interval marks a recurring monitor, not a probe (agents report reasons then).
        let interval = agent.meta.monitor_interval.unwrap_or(Duration::from_secs(10));
        let extra = [
            ("OCF_CHECK_LEVEL".to_string(), level.to_string()),
            ("OCF_RESKEY_CRM_meta_interval".to_string(), interval.as_millis().to_string()),
        ];
        agent.action(self.scope, &self.name, "monitor", &extra, &self.callbacks, || false).is_some_and(monitor_alive)
    }

    fn pending(&self, action: &'static str, extra: Vec<(String, String)>, done: ResourceState) -> Status {
        let agent = match self.cache.agent(&self.name, &self.parameters.snapshot()) {
            Ok(a) => {
                *lock(&self.agent) = a.clone();
                a
            }
            Err((status, message)) => {
                self.callbacks.log_event(LogLevel::Error, &message);
                return status;
            }
        };
        let (name, callbacks, scope) = (self.name.clone(), self.callbacks.clone(), self.scope);
        self.worker.start("ocf-op", move |ctx| {
            let code = agent.action(scope, &name, action, &extra, &callbacks, || ctx.check_terminate());
            if ctx.check_terminate() {
                return 1;
            }
            // A stop of something already stopped is a success.
            let ok = code == Some(rc::SUCCESS) || (action == "stop" && code == Some(rc::NOT_RUNNING));
            let mut status = ResourceStatusEx::new(if ok { done } else { ResourceState::Failed }, 1);
            if !ok {
                status.application_specific_error_code =
                    code.map_or(Status::ERROR_RESOURCE_CALL_TIMED_OUT.0, |c| status_of(c).0);
                callbacks.log_event(LogLevel::Error, &format!("{action} exited with {code:?}"));
            }
            callbacks.set_resource_status_ex(status);
            0
        })
    }
}

impl Resource for Ocf {
    fn online_v2(&self, flags: OnlineFlags, input: &[u8]) -> Status {
        let mut extra = operation_env("ONLINE", None, flags.bits(), &flags.names());
        extra.extend(epoch(input).map(|e| ("HALO_EPOCH".to_string(), e.to_string())));
        self.pending("start", extra, ResourceState::Online)
    }

    fn offline_v2(&self, destination: Option<&str>, flags: OfflineFlags, input: &[u8]) -> Status {
        let mut extra = operation_env("OFFLINE", destination, flags.bits(), &flags.names());
        extra.extend(epoch(input).map(|e| ("HALO_EPOCH".to_string(), e.to_string())));
        self.pending("stop", extra, ResourceState::Offline)
    }

    fn terminate(&self) {
        self.worker.stop();
        let agent = lock(&self.agent).clone();
        let code = agent.action(self.scope, &self.name, "stop", &[], &self.callbacks, || false);
        if !matches!(code, Some(rc::SUCCESS | rc::NOT_RUNNING)) {
            self.callbacks.log_event(LogLevel::Error, &format!("stop during terminate exited with {code:?}"));
        }
    }

    fn looks_alive(&self) -> bool {
        self.monitor("0")
    }

    fn is_alive(&self) -> bool {
        self.monitor("10")
    }

    fn close(&self) {
        self.worker.stop();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_codes() {
        assert_eq!(parse_duration("20s"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("20"), Some(Duration::from_secs(20)));
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("soon"), None);
        assert_eq!(status_of(6), Status::ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR);
        assert!(monitor_alive(190) && monitor_alive(8) && !monitor_alive(7) && !monitor_alive(1));
    }

    #[test]
    fn meta_data_parameters_and_timeouts() {
        let xml = r#"<?xml version="1.0"?><!DOCTYPE resource-agent SYSTEM "ra-api-1.dtd">
<resource-agent name="X" version="1.0"><parameters>
<parameter name="state" unique-group="state"><content type="string"/></parameter>
<parameter name="ip" required="1"><content type="string"/></parameter>
</parameters><actions><action name="start" timeout="20s"/><action name="monitor" timeout="30" interval="10s"/>
<action name="stop" timeout="500ms"/></actions></resource-agent>"#;
        let m = MetaData::parse(xml).unwrap();
        assert_eq!(m.parameters, [("state".to_string(), false), ("ip".to_string(), true)]);
        assert_eq!(m.timeout("stop"), Duration::from_millis(500));
        assert_eq!(m.timeout("monitor"), Duration::from_secs(30));
        assert_eq!(m.timeout("reload"), DEFAULT_ACTION_TIMEOUT);
        assert_eq!(m.monitor_interval, Some(Duration::from_secs(10)));
        assert!(MetaData::parse("<html/>").is_err());
    }
}
