//! The objects the engine keeps in the cluster database — resource types, groups, resources — with
//! their common properties (WSFC's common properties), defaults, ranges, and the rules that tie them together.
//!
//! Property values are kept as the text an operator gave (`"30000"`, `"true"`): the same text
//! becomes a property list for the resource type, and the tables below parse and check it.

use crate::deps::Dependencies;
use halo_host::protocol::{Timeouts, TypeSpec};
use resapi::{ParsedProperties, PropertyItem, PropertyList, PropertyTable, Status, ValueData};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// `0xFFFFFFFF`: "use the type's value" / "never".
pub const UNSET: u32 = u32::MAX;

/// Common properties of a resource, with WSFC's names, defaults and ranges.
pub const RESOURCE_COMMON: PropertyTable = PropertyTable {
    items: &[
        PropertyItem::dword("RestartAction", 2, 0, 2, "0 DontRestart, 1 RestartNoNotify, 2 RestartNotify"),
        PropertyItem::dword("RestartThreshold", 3, 0, UNSET, "restarts tolerated within RestartPeriod"),
        PropertyItem::dword("RestartPeriod", 900_000, 0, UNSET, "sliding window of RestartThreshold, ms"),
        PropertyItem::dword("RestartDelay", 500, 0, UNSET, "wait before a restart, ms"),
        PropertyItem::dword(
            "RetryPeriodOnFailure",
            3_600_000,
            0,
            UNSET,
            "after restarts are exhausted, wait this long and try once more (ms; 0xFFFFFFFF = never)",
        ),
        PropertyItem::dword("PendingTimeout", 180_000, 10, UNSET, "longest gap between pending reports, ms"),
        PropertyItem::dword("LooksAlivePollInterval", UNSET, 10, UNSET, "ms; 0xFFFFFFFF = the type's"),
        PropertyItem::dword("IsAlivePollInterval", UNSET, 10, UNSET, "ms; 0xFFFFFFFF = the type's"),
        PropertyItem::dword("DeadlockTimeout", 300_000, 1000, UNSET, "longest an entry point may run, ms"),
        PropertyItem::boolean("PersistentState", false, "bring online when the node starts"),
        PropertyItem::boolean("SeparateMonitor", false, "run in a host of its own (next offline→online)"),
        PropertyItem::dword("EmbeddedFailureAction", 2, 0, 2, "0 None, 1 LogOnly, 2 Recover"),
        PropertyItem::multi_string("PossibleOwners", "the nodes it may run on (none listed: every node)"),
        PropertyItem::string("Description", Some(""), "free text"),
    ],
};

/// Common properties of a group, with WSFC's names, defaults and ranges.
pub const GROUP_COMMON: PropertyTable = PropertyTable {
    items: &[
        PropertyItem::dword(
            "FailoverThreshold",
            UNSET,
            0,
            UNSET,
            "failovers per FailoverPeriod (0xFFFFFFFF = nodes − 1)",
        ),
        PropertyItem::dword("FailoverPeriod", 6, 0, 1193, "hours"),
        PropertyItem::dword("AutoFailbackType", 0, 0, 1, "0 PreventFailback, 1 AllowFailback"),
        PropertyItem::dword("FailbackWindowStart", UNSET, 0, UNSET, "hour 0..23, 0xFFFFFFFF = no window"),
        PropertyItem::dword("FailbackWindowEnd", UNSET, 0, UNSET, "hour 0..23, 0xFFFFFFFF = no window"),
        PropertyItem::boolean("PersistentState", false, "bring online when the cluster forms"),
        PropertyItem::dword("Priority", 2000, 0, 3000, "0 disabled, 1000 low, 2000 medium, 3000 high"),
        PropertyItem::multi_string("AntiAffinityClassNames", "groups sharing a name avoid one node"),
        PropertyItem::multi_string("PreferredOwners", "nodes in the order the group prefers them"),
        PropertyItem::string("Description", Some(""), "free text"),
    ],
};

/// Common properties of a resource type.
pub const TYPE_COMMON: PropertyTable = PropertyTable {
    items: &[
        PropertyItem::dword("LooksAlivePollInterval", 5_000, 1, UNSET - 1, "ms"),
        PropertyItem::dword("IsAlivePollInterval", 60_000, 1, UNSET - 1, "ms"),
        PropertyItem::string("Description", Some(""), "free text"),
    ],
};

/// An engine error: a Win32 code and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct EngineError {
    /// The code.
    pub status: Status,
    /// The reason, naming the object and what is allowed.
    pub message: String,
}

impl EngineError {
    /// An error with a code and message.
    pub fn new(status: Status, message: impl Into<String>) -> Self {
        EngineError { status, message: message.into() }
    }

    /// ERROR_RESOURCE_NOT_FOUND for `name`.
    pub fn no_resource(name: &str) -> Self {
        Self::new(Status::ERROR_RESOURCE_NOT_FOUND, format!("no resource {name}"))
    }

    /// ERROR_GROUP_NOT_FOUND for `name`.
    pub fn no_group(name: &str) -> Self {
        Self::new(Status::ERROR_GROUP_NOT_FOUND, format!("no group {name}"))
    }
}

/// Checks an object name: 1–128 characters from `A-Z a-z 0-9 . _ -`, starting with a letter or
/// a digit, so that it is safe in URLs (no `.` or `..` path segments), keys and shells (never
/// taken for an option such as `--help`).
pub fn check_name(kind: &str, name: &str) -> Result<(), EngineError> {
    let ok = name.len() <= 128
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(EngineError::new(
            Status::ERROR_INVALID_PARAMETER,
            format!(
                "{kind} name {name:?}: use 1 to 128 characters from A-Z, a-z, 0-9, '.', '_', '-', starting with a letter or a digit"
            ),
        ))
    }
}

/// Text properties as a property list (values as SZ strings).
pub fn to_list(values: &BTreeMap<String, String>) -> PropertyList {
    let mut list = PropertyList::new();
    for (k, v) in values {
        list.set(k, ValueData::Sz(v.clone()));
    }
    list
}

/// Validates text properties against a table.
pub fn verify(
    kind: &str,
    table: &PropertyTable,
    values: &BTreeMap<String, String>,
) -> Result<ParsedProperties, EngineError> {
    table.verify(&to_list(values)).map_err(|e| EngineError::new(e.status, format!("{kind}: {e}")))
}

/// A resource type.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TypeDoc {
    /// The type's name (`dummy`, `process`, …, or a native type's name).
    pub name: String,
    /// Which implementation runs it.
    pub spec: TypeSpec,
    /// Common properties (LooksAlivePollInterval, IsAlivePollInterval, Description).
    pub common: BTreeMap<String, String>,
}

/// The built-in types every node has.
pub fn builtin_types() -> Vec<TypeDoc> {
    [("dummy", TypeSpec::Dummy), ("process", TypeSpec::Process), ("script", TypeSpec::Script), ("ocf", TypeSpec::Ocf)]
        .into_iter()
        .map(|(name, spec)| TypeDoc { name: name.into(), spec, common: BTreeMap::new() })
        .collect()
}

/// A group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GroupDoc {
    /// Its name.
    pub name: String,
    /// Common properties.
    pub common: BTreeMap<String, String>,
}

/// A resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceDoc {
    /// Stable id, used with the host.
    pub id: u64,
    /// Its name.
    pub name: String,
    /// Its group.
    pub group: String,
    /// Its type's name.
    pub type_name: String,
    /// Common properties.
    pub common: BTreeMap<String, String>,
    /// Private properties, for the resource type.
    pub private: BTreeMap<String, String>,
    /// Its dependency expression.
    pub dependencies: Dependencies,
}

/// The resolved policy of one resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// RestartAction.
    pub restart_action: u32,
    /// RestartThreshold.
    pub restart_threshold: u32,
    /// RestartPeriod, ms.
    pub restart_period_ms: u32,
    /// RestartDelay, ms.
    pub restart_delay_ms: u32,
    /// RetryPeriodOnFailure, ms.
    pub retry_period_ms: u32,
    /// PersistentState.
    pub persistent: bool,
    /// SeparateMonitor.
    pub separate_monitor: bool,
    /// What the host enforces.
    pub timeouts: Timeouts,
}

impl Policy {
    /// The policy of a resource with no common properties set and a type with none either: the
    /// tables' defaults. Used for a stored document that no longer verifies.
    pub const DEFAULT: Policy = Policy {
        restart_action: 2,
        restart_threshold: 3,
        restart_period_ms: 900_000,
        restart_delay_ms: 500,
        retry_period_ms: 3_600_000,
        persistent: false,
        separate_monitor: false,
        timeouts: Timeouts { pending_ms: 180_000, deadlock_ms: 300_000, looks_alive_ms: 5_000, is_alive_ms: 60_000 },
    };
}

impl ResourceDoc {
    /// Checks the common properties (and the rule RetryPeriodOnFailure ≥ RestartPeriod) and
    /// resolves them with the type's poll intervals.
    pub fn policy(&self, ty: &TypeDoc) -> Result<Policy, EngineError> {
        let p = verify(&format!("resource {}", self.name), &RESOURCE_COMMON, &self.common)?;
        let t = verify(&format!("type {}", ty.name), &TYPE_COMMON, &ty.common)?;
        let d = |n: &str| p.dword(n).unwrap_or(0);
        let (period, retry) = (d("RestartPeriod"), d("RetryPeriodOnFailure"));
        if retry != UNSET && retry < period {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS,
                format!(
                    "resource {}: RetryPeriodOnFailure ({retry}) must be at least RestartPeriod ({period}), or 0xFFFFFFFF",
                    self.name
                ),
            ));
        }
        let timeouts = Timeouts::resolve(
            d("PendingTimeout"),
            d("DeadlockTimeout"),
            d("LooksAlivePollInterval"),
            d("IsAlivePollInterval"),
            t.dword("LooksAlivePollInterval").unwrap_or(5_000),
            t.dword("IsAlivePollInterval").unwrap_or(60_000),
        );
        Ok(Policy {
            restart_action: d("RestartAction"),
            restart_threshold: d("RestartThreshold"),
            restart_period_ms: period,
            restart_delay_ms: d("RestartDelay"),
            retry_period_ms: retry,
            persistent: p.flag("PersistentState"),
            separate_monitor: p.flag("SeparateMonitor"),
            timeouts,
        })
    }
}

/// Who runs a group: the ownership record, `owner/<group>`. Its revision is the group's
/// **epoch**: every change of owner (and every move started or ended) writes it, so epochs only
/// grow, and a resource can refuse a caller with an older one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OwnerDoc {
    /// The node that may run the group (while it holds its lease).
    pub node: String,
    /// A move the owner is carrying out: it takes the group offline toward `to`, then writes
    /// the record over to `to`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<MoveDoc>,
    /// OnlineV2 flags (`CLUS_RESDLL_ONLINE_*`) for bringing the group online after it arrived.
    #[serde(default)]
    pub online_flags: u32,
    /// Set when the group arrived by a move with RETURN_TO_SOURCE_NODE_ON_ERROR: where it goes
    /// back if it cannot come online here. Cleared once it is online.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub return_to: Option<String>,
    /// When the group failed over (Unix seconds), within its FailoverPeriod: FailoverThreshold
    /// counts them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failovers: Vec<u64>,
}

impl OwnerDoc {
    /// A group settled on `node`.
    pub fn on(node: &str) -> OwnerDoc {
        OwnerDoc { node: node.to_string(), moving: None, online_flags: 0, return_to: None, failovers: Vec::new() }
    }
}

/// FailoverThreshold within FailoverPeriod: whether `group` may fail over once more at `now`
/// (Unix seconds) given its earlier failovers, and the failovers to record if it does. The
/// threshold 0xFFFFFFFF means the number of nodes minus one, as in WSFC.
pub fn failover_allowed(group: &GroupDoc, earlier: &[u64], now: u64, nodes: usize) -> (bool, Vec<u64>) {
    let p = verify(&format!("group {}", group.name), &GROUP_COMMON, &group.common).ok();
    let threshold = p.as_ref().and_then(|p| p.dword("FailoverThreshold")).unwrap_or(UNSET);
    let threshold = if threshold == UNSET { nodes.saturating_sub(1).max(1) } else { threshold as usize };
    let period = u64::from(p.as_ref().and_then(|p| p.dword("FailoverPeriod")).unwrap_or(6)) * 3600;
    let mut kept: Vec<u64> = earlier.iter().copied().filter(|t| now.saturating_sub(*t) < period).collect();
    if kept.len() >= threshold {
        return (false, kept);
    }
    kept.push(now);
    (true, kept)
}

/// A move in progress (MoveClusterGroupEx, a failover, a drain).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MoveDoc {
    /// The destination.
    pub to: String,
    /// OfflineV2 flags (`CLUS_RESDLL_OFFLINE_*`) the source passes, besides
    /// DO_NOT_UPDATE_PERSISTENT_STATE which every move passes.
    pub offline_flags: u32,
    /// OnlineV2 flags the destination passes.
    pub online_flags: u32,
    /// RETURN_TO_SOURCE_NODE_ON_ERROR: come back if the group cannot come online there.
    #[serde(default)]
    pub return_on_error: bool,
    /// Why: `move`, `failover`, `drain`, `return`.
    pub reason: String,
}

/// A node's state as the coordinator last recorded it (`node-state/<name>`), and whether an
/// operator paused it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStateDoc {
    /// Heard from within the heartbeat threshold.
    pub up: bool,
    /// Paused: takes no groups.
    #[serde(default)]
    pub paused: bool,
    /// Paused with a drain: the node moves every group it owns to the nodes placement picks.
    #[serde(default)]
    pub drain: bool,
    /// Resumed with failback: groups that prefer this node come back to it.
    #[serde(default)]
    pub failback: bool,
}

/// The cluster's own properties (`cluster/properties`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ClusterProperties {
    /// How often every node sends the coordinator a heartbeat, ms.
    pub heartbeat_interval: u32,
    /// Missed heartbeats after which a node is Down; the ownership lease lasts
    /// `heartbeat_interval × heartbeat_threshold`.
    pub heartbeat_threshold: u32,
}

impl Default for ClusterProperties {
    fn default() -> Self {
        ClusterProperties { heartbeat_interval: 200, heartbeat_threshold: 4 }
    }
}

impl ClusterProperties {
    /// The ownership lease.
    pub fn lease(&self) -> std::time::Duration {
        std::time::Duration::from_millis(u64::from(self.heartbeat_interval) * u64::from(self.heartbeat_threshold))
    }

    /// Checks the ranges: interval 50–10,000 ms, threshold 2–120.
    pub fn check(&self) -> Result<(), EngineError> {
        if !(50..=10_000).contains(&self.heartbeat_interval) || !(2..=120).contains(&self.heartbeat_threshold) {
            return Err(EngineError::new(
                Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS,
                format!(
                    "HeartbeatInterval must be 50..10000 ms and HeartbeatThreshold 2..120 (got {} and {})",
                    self.heartbeat_interval, self.heartbeat_threshold
                ),
            ));
        }
        Ok(())
    }
}

/// The names in a multi-string property (stored one per line).
pub fn names_in(value: Option<&String>) -> Vec<String> {
    value.map(|v| v.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()).unwrap_or_default()
}

/// Keys in the cluster database.
pub mod keys {
    /// The ownership record of a group.
    pub fn owner(group: &str) -> String {
        format!("owner/{group}")
    }
    /// A node's recorded state.
    pub fn node_state(node: &str) -> String {
        format!("node-state/{node}")
    }
    /// A node's registry record (kept by the cluster database).
    pub fn node(node: &str) -> String {
        halo_cluster::membership::node_key(node)
    }
    /// The cluster's properties.
    pub const CLUSTER_PROPERTIES: &str = "cluster/properties";
    /// A resource type.
    pub fn type_(name: &str) -> String {
        format!("type/{name}")
    }
    /// A group.
    pub fn group(name: &str) -> String {
        format!("group/{name}")
    }
    /// A resource.
    pub fn resource(name: &str) -> String {
        format!("resource/{name}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(common: &[(&str, &str)]) -> ResourceDoc {
        ResourceDoc {
            id: 1,
            name: "r".into(),
            group: "g".into(),
            type_name: "dummy".into(),
            common: common.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
            private: BTreeMap::new(),
            dependencies: Dependencies::default(),
        }
    }

    #[test]
    fn defaults_and_type_intervals() {
        let ty = &builtin_types()[0];
        let p = doc(&[]).policy(ty).unwrap();
        assert_eq!(
            (p.restart_action, p.restart_threshold, p.restart_period_ms, p.restart_delay_ms),
            (2, 3, 900_000, 500)
        );
        assert_eq!((p.timeouts.looks_alive_ms, p.timeouts.is_alive_ms), (5_000, 60_000));
        let p = doc(&[("LooksAlivePollInterval", "250")]).policy(ty).unwrap();
        assert_eq!(p.timeouts.looks_alive_ms, 250);
    }

    #[test]
    fn failover_threshold_counts_failovers_within_the_period() {
        let group = |common: &[(&str, &str)]| GroupDoc {
            name: "g".into(),
            common: common.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect(),
        };
        let hour = 3600;
        // Default: nodes - 1 failovers per 6 hours.
        assert_eq!(failover_allowed(&group(&[]), &[], 10 * hour, 3), (true, vec![10 * hour]));
        assert!(failover_allowed(&group(&[]), &[9 * hour], 10 * hour, 3).0);
        assert!(!failover_allowed(&group(&[]), &[8 * hour, 9 * hour], 10 * hour, 3).0);
        // Older than FailoverPeriod no longer counts.
        let g = group(&[("FailoverThreshold", "1"), ("FailoverPeriod", "1")]);
        assert!(!failover_allowed(&g, &[10 * hour - 60], 10 * hour, 3).0);
        assert_eq!(failover_allowed(&g, &[8 * hour], 10 * hour, 3), (true, vec![10 * hour]));
    }

    #[test]
    fn the_default_policy_is_the_tables_defaults() {
        assert_eq!(doc(&[]).policy(&builtin_types()[0]).unwrap(), Policy::DEFAULT);
    }

    #[test]
    fn violations_name_their_error() {
        let ty = &builtin_types()[0];
        let err = doc(&[("RestartAction", "3")]).policy(ty).unwrap_err();
        assert_eq!(err.status, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS);
        assert!(err.message.contains("RestartAction"), "{err}");
        let err = doc(&[("PendingTimeout", "5")]).policy(ty).unwrap_err();
        assert_eq!(err.status, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS);
        let err = doc(&[("RestartPeriod", "10000"), ("RetryPeriodOnFailure", "5000")]).policy(ty).unwrap_err();
        assert!(err.message.contains("RetryPeriodOnFailure"), "{err}");
        let err = doc(&[("Colour", "1")]).policy(ty).unwrap_err();
        assert_eq!(err.status, Status::ERROR_INVALID_PARAMETER);
        assert!(check_name("group", "web-1.a_b").is_ok());
        assert!(check_name("group", "no spaces").is_err());
        assert!(check_name("group", "").is_err());
        for bad in [".", "..", "-", "--help", "_x", ".hidden"] {
            assert!(check_name("group", bad).is_err(), "{bad:?} must be refused");
        }
        assert!(check_name("group", "9lives").is_ok());
    }
}
