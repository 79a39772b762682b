//! Roles: what a token allows, each including the one before.

use serde::{Deserialize, Serialize};

/// What a client may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads: status, objects, events, operations.
    Viewer,
    /// Runs the cluster: online, offline, fail, move, cancel, pause, resume.
    Operator,
    /// Changes configuration: types, groups, resources, properties, dependencies, nodes, tokens.
    Admin,
}

impl Role {
    /// Every role, lowest first.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Role {
    type Err = crate::SecurityError;

    fn from_str(s: &str) -> Result<Role, Self::Err> {
        Role::ALL.into_iter().find(|r| r.name() == s).ok_or_else(|| {
            crate::SecurityError::Token(format!("unknown role {s:?}; the roles are viewer, operator and admin"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_order_and_parse() {
        assert!(Role::Viewer < Role::Operator && Role::Operator < Role::Admin);
        assert_eq!("operator".parse::<Role>().unwrap(), Role::Operator);
        let err = "root".parse::<Role>().unwrap_err().to_string();
        assert!(err.contains("viewer, operator and admin"), "{err}");
    }
}
