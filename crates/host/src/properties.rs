//! What each built-in resource type requires of its private properties, so that a misspelt name,
//! a value out of range or a missing required property is refused when it is written, not at
//! the next online. The check is pure (no file or agent is looked at): what only the running type
//! can tell (an OCF agent's own parameters, a native plug-in's table) is still checked at open.

use crate::protocol::TypeSpec;
use resapi::{PropertyList, Status};

/// A refused set of private properties: the code and what is wrong, naming what is allowed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct PropertyError {
    /// The Win32 code.
    pub status: Status,
    /// The reason.
    pub message: String,
}

/// Checks a resource's private properties (all of them, as they would be stored) for its type.
pub fn check_private(spec: &TypeSpec, list: &PropertyList) -> Result<(), PropertyError> {
    let table = match spec {
        TypeSpec::Dummy => &halo_type_dummy::PROPERTIES,
        TypeSpec::Process => &halo_type_process::PROPERTIES,
        TypeSpec::Script => return require(list, halo_type_script::SCRIPT_PATH, "the executable to run"),
        TypeSpec::Ocf => return require(list, halo_type_ocf::AGENT, "provider:agent, e.g. heartbeat:Dummy"),
        TypeSpec::Native { .. } => return Ok(()),
    };
    table.verify(list).map(|_| ()).map_err(|e| PropertyError { status: e.status, message: e.to_string() })
}

fn require(list: &PropertyList, name: &str, what: &str) -> Result<(), PropertyError> {
    match list.get_str(name) {
        Some(v) if !v.trim().is_empty() => Ok(()),
        _ => Err(PropertyError {
            status: Status::ERROR_INVALID_PARAMETER,
            message: format!("private property {name:?} is required ({what})"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use resapi::ValueData;

    fn list(pairs: &[(&str, &str)]) -> PropertyList {
        let mut l = PropertyList::new();
        for (k, v) in pairs {
            l.set(k, ValueData::Sz(v.to_string()));
        }
        l
    }

    #[test]
    fn tables_and_required_properties() {
        assert!(check_private(&TypeSpec::Dummy, &list(&[("OnlineDelayMs", "5")])).is_ok());
        let e = check_private(&TypeSpec::Dummy, &list(&[("OnlineDelayMS_typo", "5")])).unwrap_err();
        assert!(e.message.contains("OnlineDelayMS_typo"), "{e}");
        let e = check_private(&TypeSpec::Dummy, &list(&[("OnlineDelayMs", "86400001")])).unwrap_err();
        assert_eq!(e.status, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS, "{e}");
        assert!(check_private(&TypeSpec::Process, &list(&[])).is_err(), "Command is required");
        assert!(check_private(&TypeSpec::Process, &list(&[("Command", "/bin/true")])).is_ok());
        assert!(check_private(&TypeSpec::Script, &list(&[])).is_err());
        assert!(check_private(&TypeSpec::Ocf, &list(&[("Agent", "heartbeat:Dummy"), ("anything", "x")])).is_ok());
        let native = TypeSpec::Native { path: "/x.so".into(), type_name: "x".into() };
        assert!(check_private(&native, &list(&[("whatever", "1")])).is_ok());
    }
}
