//! Control codes (`CLUSCTL_*`): the 32-bit layout and the named resource and resource-type codes.
//!
//! Layout, high bit first: object (bits 24–31), global (23), modify (22), user-defined (21),
//! internal (20), function (bits 2–19), access (bits 0–1).

use std::fmt;

/// The object a control code addresses (bits 24–31), with the header's numbering.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)]
pub enum ControlObject {
    /// No object (`CLUS_OBJECT_INVALID`).
    Invalid = 0,
    /// A resource.
    Resource = 1,
    /// A resource type.
    ResourceType = 2,
    /// A group.
    Group = 3,
    /// A node.
    Node = 4,
    /// A network.
    Network = 5,
    /// A network interface.
    NetInterface = 6,
    /// The cluster.
    Cluster = 7,
    /// A group set.
    GroupSet = 8,
    /// An affinity rule.
    AffinityRule = 9,
    /// A user-defined object.
    User = 0x80,
}

impl ControlObject {
    fn from_raw(raw: u8) -> Option<Self> {
        Some(match raw {
            0 => Self::Invalid,
            1 => Self::Resource,
            2 => Self::ResourceType,
            3 => Self::Group,
            4 => Self::Node,
            5 => Self::Network,
            6 => Self::NetInterface,
            7 => Self::Cluster,
            8 => Self::GroupSet,
            9 => Self::AffinityRule,
            0x80 => Self::User,
            _ => return None,
        })
    }
}

/// The access a control code needs (bits 0–1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ControlAccess {
    /// `CLUS_ACCESS_ANY` (0).
    Any,
    /// `CLUS_ACCESS_READ` (1).
    Read,
    /// `CLUS_ACCESS_WRITE` (2).
    Write,
    /// Both bits set (3): not defined by the header.
    ReadWrite,
}

/// A control code, as passed to `ResourceControl` / `ResourceTypeControl`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ControlCode(pub u32);

impl ControlCode {
    /// Bit 23: the operation runs on every node.
    pub const GLOBAL_BIT: u32 = 0x0080_0000;
    /// Bit 22: the operation may change the object (and raise a change notification).
    pub const MODIFY_BIT: u32 = 0x0040_0000;
    /// Bit 21: a user-defined code (`CLCTL_USER_BASE`).
    pub const USER_BIT: u32 = 0x0020_0000;
    /// Bit 20: an internal code, sent only by the cluster to resource types.
    pub const INTERNAL_BIT: u32 = 0x0010_0000;
    /// The function field (bits 2–19), in place.
    pub const FUNCTION_MASK: u32 = 0x000F_FFFC;
    /// The access field (bits 0–1).
    pub const ACCESS_MASK: u32 = 0x3;

    /// The object field.
    pub fn object_raw(self) -> u8 {
        (self.0 >> 24) as u8
    }

    /// The object, if the header defines it.
    pub fn object(self) -> Option<ControlObject> {
        ControlObject::from_raw(self.object_raw())
    }

    /// The function number (bits 2–19, shifted down).
    pub fn function(self) -> u32 {
        (self.0 & Self::FUNCTION_MASK) >> 2
    }

    /// The operation code (`CLCTL_*`): bits 0–23, i.e. the code without its object.
    pub fn operation(self) -> u32 {
        self.0 & 0x00FF_FFFF
    }

    /// The access this code needs.
    pub fn access(self) -> ControlAccess {
        match self.0 & Self::ACCESS_MASK {
            0 => ControlAccess::Any,
            1 => ControlAccess::Read,
            2 => ControlAccess::Write,
            _ => ControlAccess::ReadWrite,
        }
    }

    /// Runs on every node.
    pub fn is_global(self) -> bool {
        self.0 & Self::GLOBAL_BIT != 0
    }

    /// May change the object.
    pub fn is_modify(self) -> bool {
        self.0 & Self::MODIFY_BIT != 0
    }

    /// User-defined: built as the SDK's `CLUSCTL_USER_CODE` does, with `CLCTL_USER_BASE` added
    /// to the function before it is shifted, so the mark lands on bit 23 (where the SDK also
    /// keeps the global bit; codes halo names never set it).
    pub fn is_user(self) -> bool {
        self.0 & (Self::USER_BIT << 2) != 0
    }

    /// Internal: sent by the cluster only; clients may not send it.
    pub fn is_internal(self) -> bool {
        self.0 & Self::INTERNAL_BIT != 0
    }

    /// Builds an external operation code (`CLCTL_EXTERNAL_CODE`): function, access, modify.
    pub const fn external(function: u32, access: u32, modify: bool) -> u32 {
        ((function << 2) & Self::FUNCTION_MASK)
            | (access & Self::ACCESS_MASK)
            | if modify { Self::MODIFY_BIT } else { 0 }
    }

    /// Builds an internal operation code (`CLCTL_INTERNAL_CODE`).
    pub const fn internal(function: u32, access: u32, modify: bool) -> u32 {
        Self::external(function, access, modify) | Self::INTERNAL_BIT
    }

    /// Builds a user-defined operation code as the SDK's `CLUSCTL_USER_CODE` does: the
    /// function counts from `CLCTL_USER_BASE`, and the sum is shifted into place (so
    /// `user(1, 0, false)` is 0x00800004, and the resource's code 0x01800004).
    pub const fn user(function: u32, access: u32, modify: bool) -> u32 {
        (((Self::USER_BIT + function) << 2) & 0x00FF_FFFC)
            | (access & Self::ACCESS_MASK)
            | if modify { Self::MODIFY_BIT } else { 0 }
    }

    /// Puts an operation code on an object (`CLUSCTL_RESOURCE_CODE` and friends).
    pub const fn for_object(object: ControlObject, operation: u32) -> ControlCode {
        ControlCode(((object as u32) << 24) | (operation & 0x00FF_FFFF))
    }

    /// A resource control code from an operation code.
    pub const fn resource(operation: u32) -> ControlCode {
        Self::for_object(ControlObject::Resource, operation)
    }

    /// A resource-type control code from an operation code.
    pub const fn resource_type(operation: u32) -> ControlCode {
        Self::for_object(ControlObject::ResourceType, operation)
    }

    /// The symbolic name of a resource or resource-type code halo knows.
    pub fn name(self) -> Option<&'static str> {
        codes::ALL.iter().find(|(_, c)| *c == self).map(|(n, _)| *n)
    }
}

impl fmt::Display for ControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(n) => write!(f, "{n} ({:#010x})", self.0),
            None => write!(f, "control code {:#010x}", self.0),
        }
    }
}

impl fmt::Debug for ControlCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Operation codes (`CLCTL_*`), without an object.
pub mod clctl {
    use super::ControlCode;

    const R: u32 = 1;
    const W: u32 = 2;
    const A: u32 = 0;

    /// Unknown.
    pub const UNKNOWN: u32 = ControlCode::external(0, A, false);
    /// Get characteristics (`CLUS_CHAR_*`).
    pub const GET_CHARACTERISTICS: u32 = ControlCode::external(1, R, false);
    /// Get flags (`CLUS_FLAG_*`).
    pub const GET_FLAGS: u32 = ControlCode::external(2, R, false);
    /// Get class info.
    pub const GET_CLASS_INFO: u32 = ControlCode::external(3, R, false);
    /// Get required dependencies.
    pub const GET_REQUIRED_DEPENDENCIES: u32 = ControlCode::external(4, R, false);
    /// Get the arbitration timeout (resource types).
    pub const GET_ARB_TIMEOUT: u32 = ControlCode::external(5, R, false);
    /// Get failure info.
    pub const GET_FAILURE_INFO: u32 = ControlCode::external(6, R, false);
    /// Get the name.
    pub const GET_NAME: u32 = ControlCode::external(10, R, false);
    /// Get the resource type.
    pub const GET_RESOURCE_TYPE: u32 = ControlCode::external(11, R, false);
    /// Get the id.
    pub const GET_ID: u32 = ControlCode::external(14, R, false);
    /// Enumerate common property names.
    pub const ENUM_COMMON_PROPERTIES: u32 = ControlCode::external(20, R, false);
    /// Get read-only common properties.
    pub const GET_RO_COMMON_PROPERTIES: u32 = ControlCode::external(21, R, false);
    /// Get common properties.
    pub const GET_COMMON_PROPERTIES: u32 = ControlCode::external(22, R, false);
    /// Set common properties.
    pub const SET_COMMON_PROPERTIES: u32 = ControlCode::external(23, W, true);
    /// Validate common properties without storing them.
    pub const VALIDATE_COMMON_PROPERTIES: u32 = ControlCode::external(24, R, false);
    /// Get common property formats.
    pub const GET_COMMON_PROPERTY_FMTS: u32 = ControlCode::external(25, R, false);
    /// Enumerate private property names.
    pub const ENUM_PRIVATE_PROPERTIES: u32 = ControlCode::external(30, R, false);
    /// Get read-only private properties.
    pub const GET_RO_PRIVATE_PROPERTIES: u32 = ControlCode::external(31, R, false);
    /// Get private properties.
    pub const GET_PRIVATE_PROPERTIES: u32 = ControlCode::external(32, R, false);
    /// Set private properties.
    pub const SET_PRIVATE_PROPERTIES: u32 = ControlCode::external(33, W, true);
    /// Validate private properties without storing them.
    pub const VALIDATE_PRIVATE_PROPERTIES: u32 = ControlCode::external(34, R, false);
    /// Get private property formats.
    pub const GET_PRIVATE_PROPERTY_FMTS: u32 = ControlCode::external(35, R, false);
    /// Add a registry checkpoint.
    pub const ADD_REGISTRY_CHECKPOINT: u32 = ControlCode::external(40, W, true);
    /// Delete a registry checkpoint.
    pub const DELETE_REGISTRY_CHECKPOINT: u32 = ControlCode::external(41, W, true);
    /// Get registry checkpoints.
    pub const GET_REGISTRY_CHECKPOINTS: u32 = ControlCode::external(42, R, false);
    /// May the resource be deleted?
    pub const QUERY_DELETE: u32 = ControlCode::external(110, R, false);
    /// The base of user-defined codes (`CLCTL_USER_BASE`).
    pub const USER_BASE: u32 = ControlCode::USER_BIT;

    /// Internal: the resource is being deleted.
    pub const DELETE: u32 = ControlCode::internal(1, W, true);
    /// Internal: a node was installed.
    pub const INSTALL_NODE: u32 = ControlCode::internal(2, W, true);
    /// Internal: a node was evicted.
    pub const EVICT_NODE: u32 = ControlCode::internal(3, W, true);
    /// Internal: a dependency was added.
    pub const ADD_DEPENDENCY: u32 = ControlCode::internal(4, W, true);
    /// Internal: a dependency was removed.
    pub const REMOVE_DEPENDENCY: u32 = ControlCode::internal(5, W, true);
    /// Internal: a possible owner was added.
    pub const ADD_OWNER: u32 = ControlCode::internal(6, W, true);
    /// Internal: a possible owner was removed.
    pub const REMOVE_OWNER: u32 = ControlCode::internal(7, W, true);
    /// Internal: the resource was renamed.
    pub const SET_NAME: u32 = ControlCode::internal(9, W, true);
    /// Internal: the cluster was renamed.
    pub const CLUSTER_NAME_CHANGED: u32 = ControlCode::internal(10, W, true);
    /// Internal: the cluster version changed.
    pub const CLUSTER_VERSION_CHANGED: u32 = ControlCode::internal(11, W, true);
    /// Internal: the node is starting (phase 1).
    pub const STARTING_PHASE1: u32 = ControlCode::internal(13, W, true);
    /// Internal: the node is starting (phase 2): the cluster API is now usable.
    pub const STARTING_PHASE2: u32 = ControlCode::internal(14, W, true);
    /// Internal: quorum is being forced.
    pub const FORCE_QUORUM: u32 = ControlCode::internal(17, W, true);
    /// Internal: initialize.
    pub const INITIALIZE: u32 = ControlCode::internal(18, W, true);
    /// Internal: the reason of the coming state change.
    pub const STATE_CHANGE_REASON: u32 = ControlCode::internal(19, W, true);
    /// Internal: the provider's state changed.
    pub const PROVIDER_STATE_CHANGE: u32 = ControlCode::internal(20, W, true);
    /// Internal: the resource is leaving its group.
    pub const LEAVING_GROUP: u32 = ControlCode::internal(21, W, true);
    /// Internal: the resource is joining a group.
    pub const JOINING_GROUP: u32 = ControlCode::internal(22, W, true);
    /// Internal: the monitor is shutting down (resource types).
    pub const NOTIFY_MONITOR_SHUTTING_DOWN: u32 = ControlCode::internal(32, R, false);
}

/// Named resource (`CLUSCTL_RESOURCE_*`) and resource-type (`CLUSCTL_RESOURCE_TYPE_*`) codes.
pub mod codes {
    use super::{ControlCode, clctl};

    macro_rules! named_codes {
        ($($name:ident = $ctor:ident($op:ident);)*) => {
            $(
                #[doc = concat!("`", stringify!($name), "`")]
                pub const $name: ControlCode = ControlCode::$ctor(clctl::$op);
            )*
            /// Every named code, as `(name, code)`.
            pub const ALL: &[(&str, ControlCode)] = &[$((stringify!($name), $name),)*];
        };
    }

    named_codes! {
        CLUSCTL_RESOURCE_UNKNOWN = resource(UNKNOWN);
        CLUSCTL_RESOURCE_GET_CHARACTERISTICS = resource(GET_CHARACTERISTICS);
        CLUSCTL_RESOURCE_GET_FLAGS = resource(GET_FLAGS);
        CLUSCTL_RESOURCE_GET_CLASS_INFO = resource(GET_CLASS_INFO);
        CLUSCTL_RESOURCE_GET_REQUIRED_DEPENDENCIES = resource(GET_REQUIRED_DEPENDENCIES);
        CLUSCTL_RESOURCE_GET_FAILURE_INFO = resource(GET_FAILURE_INFO);
        CLUSCTL_RESOURCE_GET_NAME = resource(GET_NAME);
        CLUSCTL_RESOURCE_GET_RESOURCE_TYPE = resource(GET_RESOURCE_TYPE);
        CLUSCTL_RESOURCE_GET_ID = resource(GET_ID);
        CLUSCTL_RESOURCE_ENUM_COMMON_PROPERTIES = resource(ENUM_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_GET_RO_COMMON_PROPERTIES = resource(GET_RO_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES = resource(GET_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES = resource(SET_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES = resource(VALIDATE_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_GET_COMMON_PROPERTY_FMTS = resource(GET_COMMON_PROPERTY_FMTS);
        CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES = resource(ENUM_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_GET_RO_PRIVATE_PROPERTIES = resource(GET_RO_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES = resource(GET_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES = resource(SET_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES = resource(VALIDATE_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS = resource(GET_PRIVATE_PROPERTY_FMTS);
        CLUSCTL_RESOURCE_ADD_REGISTRY_CHECKPOINT = resource(ADD_REGISTRY_CHECKPOINT);
        CLUSCTL_RESOURCE_DELETE_REGISTRY_CHECKPOINT = resource(DELETE_REGISTRY_CHECKPOINT);
        CLUSCTL_RESOURCE_GET_REGISTRY_CHECKPOINTS = resource(GET_REGISTRY_CHECKPOINTS);
        CLUSCTL_RESOURCE_QUERY_DELETE = resource(QUERY_DELETE);
        CLUSCTL_RESOURCE_DELETE = resource(DELETE);
        CLUSCTL_RESOURCE_INSTALL_NODE = resource(INSTALL_NODE);
        CLUSCTL_RESOURCE_EVICT_NODE = resource(EVICT_NODE);
        CLUSCTL_RESOURCE_ADD_DEPENDENCY = resource(ADD_DEPENDENCY);
        CLUSCTL_RESOURCE_REMOVE_DEPENDENCY = resource(REMOVE_DEPENDENCY);
        CLUSCTL_RESOURCE_ADD_OWNER = resource(ADD_OWNER);
        CLUSCTL_RESOURCE_REMOVE_OWNER = resource(REMOVE_OWNER);
        CLUSCTL_RESOURCE_SET_NAME = resource(SET_NAME);
        CLUSCTL_RESOURCE_CLUSTER_NAME_CHANGED = resource(CLUSTER_NAME_CHANGED);
        CLUSCTL_RESOURCE_CLUSTER_VERSION_CHANGED = resource(CLUSTER_VERSION_CHANGED);
        CLUSCTL_RESOURCE_FORCE_QUORUM = resource(FORCE_QUORUM);
        CLUSCTL_RESOURCE_INITIALIZE = resource(INITIALIZE);
        CLUSCTL_RESOURCE_STATE_CHANGE_REASON = resource(STATE_CHANGE_REASON);
        CLUSCTL_RESOURCE_PROVIDER_STATE_CHANGE = resource(PROVIDER_STATE_CHANGE);
        CLUSCTL_RESOURCE_LEAVING_GROUP = resource(LEAVING_GROUP);
        CLUSCTL_RESOURCE_JOINING_GROUP = resource(JOINING_GROUP);
        CLUSCTL_RESOURCE_TYPE_UNKNOWN = resource_type(UNKNOWN);
        CLUSCTL_RESOURCE_TYPE_GET_CHARACTERISTICS = resource_type(GET_CHARACTERISTICS);
        CLUSCTL_RESOURCE_TYPE_GET_FLAGS = resource_type(GET_FLAGS);
        CLUSCTL_RESOURCE_TYPE_GET_CLASS_INFO = resource_type(GET_CLASS_INFO);
        CLUSCTL_RESOURCE_TYPE_GET_REQUIRED_DEPENDENCIES = resource_type(GET_REQUIRED_DEPENDENCIES);
        CLUSCTL_RESOURCE_TYPE_GET_ARB_TIMEOUT = resource_type(GET_ARB_TIMEOUT);
        CLUSCTL_RESOURCE_TYPE_ENUM_COMMON_PROPERTIES = resource_type(ENUM_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_RO_COMMON_PROPERTIES = resource_type(GET_RO_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_COMMON_PROPERTIES = resource_type(GET_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_SET_COMMON_PROPERTIES = resource_type(SET_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_VALIDATE_COMMON_PROPERTIES = resource_type(VALIDATE_COMMON_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_COMMON_PROPERTY_FMTS = resource_type(GET_COMMON_PROPERTY_FMTS);
        CLUSCTL_RESOURCE_TYPE_ENUM_PRIVATE_PROPERTIES = resource_type(ENUM_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_RO_PRIVATE_PROPERTIES = resource_type(GET_RO_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTIES = resource_type(GET_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_SET_PRIVATE_PROPERTIES = resource_type(SET_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_VALIDATE_PRIVATE_PROPERTIES = resource_type(VALIDATE_PRIVATE_PROPERTIES);
        CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTY_FMTS = resource_type(GET_PRIVATE_PROPERTY_FMTS);
        CLUSCTL_RESOURCE_TYPE_INSTALL_NODE = resource_type(INSTALL_NODE);
        CLUSCTL_RESOURCE_TYPE_EVICT_NODE = resource_type(EVICT_NODE);
        CLUSCTL_RESOURCE_TYPE_CLUSTER_VERSION_CHANGED = resource_type(CLUSTER_VERSION_CHANGED);
        CLUSCTL_RESOURCE_TYPE_STARTING_PHASE1 = resource_type(STARTING_PHASE1);
        CLUSCTL_RESOURCE_TYPE_STARTING_PHASE2 = resource_type(STARTING_PHASE2);
        CLUSCTL_RESOURCE_TYPE_NOTIFY_MONITOR_SHUTTING_DOWN = resource_type(NOTIFY_MONITOR_SHUTTING_DOWN);
    }
}

#[cfg(test)]
mod tests {
    use super::codes::*;
    use super::*;

    #[test]
    fn layout_accessors() {
        let c = CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES;
        assert_eq!(c.object(), Some(ControlObject::Resource));
        assert!(c.is_modify() && !c.is_internal() && !c.is_global() && !c.is_user());
        assert_eq!(c.access(), ControlAccess::Write);
        assert_eq!(c.function(), 33);
        assert_eq!(c.operation(), 0x0040_0086);
        // CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE), as the Windows SDK computes it.
        let user = ControlCode((1 << 24) | ControlCode::user(1, 0, false));
        assert_eq!(user.0, 0x0180_0004);
        assert!(user.is_user() && !c.is_user());
        let d = CLUSCTL_RESOURCE_DELETE;
        assert!(d.is_internal());
        assert_eq!(ControlCode(0x0A00_0000).object(), None);
        assert_eq!(CLUSCTL_RESOURCE_GET_FLAGS.to_string(), "CLUSCTL_RESOURCE_GET_FLAGS (0x01000009)");
    }
}
