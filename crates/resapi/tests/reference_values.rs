//! Every number of the contract, written out as literals copied from the Windows SDK headers
//! (`resapi.h`, `clusapi.h`) and Microsoft's documentation of them (where the two disagree, the
//! header wins): if a value in the crate drifts, one of these fails. `docs/wsfc-contract.md`
//! summarises what these numbers mean to halo.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use resapi::control::codes::*;
use resapi::proplist::{format, syntax, value_type};
use resapi::*;

fn bits<F: Copy>(all: &[(&str, F)], f: impl Fn(F) -> u32) -> Vec<(String, u32)> {
    all.iter().map(|(n, v)| (n.to_string(), f(*v))).collect()
}

fn expect(actual: Vec<(String, u32)>, expected: &[(&str, u32)]) {
    let expected: Vec<(String, u32)> = expected.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    assert_eq!(actual, expected);
}

macro_rules! names_of {
    ($t:ty) => {
        <$t>::all().iter_names().map(|(n, f)| (n, f)).collect::<Vec<_>>()
    };
}

#[test]
fn offline_flags() {
    expect(
        bits(&names_of!(OfflineFlags), |f| f.bits()),
        &[
            ("IGNORE_RESOURCE_STATUS", 0x1),
            ("RETURN_TO_SOURCE_NODE_ON_ERROR", 0x2),
            ("QUEUE_ENABLED", 0x4),
            ("RETURNING_TO_SOURCE_NODE_BECAUSE_OF_ERROR", 0x8),
            ("DUE_TO_EMBEDDED_FAILURE", 0x10),
            ("IGNORE_NETWORK_CONNECTIVITY", 0x20),
            ("DO_NOT_UPDATE_PERSISTENT_STATE", 0x40),
        ],
    );
    assert_eq!(OfflineFlags::C_PREFIX, "CLUS_RESDLL_OFFLINE_");
    assert_eq!(OfflineFlags::from_raw(0x80).unwrap_err().status(), Status(87));
}

#[test]
fn online_open_status_flags() {
    expect(
        bits(&names_of!(OnlineFlags), |f| f.bits()),
        &[
            ("RECOVER_MONITOR_STATE", 0x1),
            ("IGNORE_RESOURCE_STATUS", 0x2),
            ("RETURN_TO_SOURCE_NODE_ON_ERROR", 0x4),
            ("RESTORE_ONLINE_STATE", 0x8),
            ("IGNORE_NETWORK_CONNECTIVITY", 0x10),
        ],
    );
    expect(
        bits(&names_of!(OpenFlags), |f| f.bits()),
        &[("RECOVER_MONITOR_STATE", 0x1), ("DONT_DELETE_TEMP_DISK", 0x2)],
    );
    expect(
        bits(&names_of!(StatusFlags), |f| f.bits()),
        &[
            ("OFFLINE_BUSY", 0x1),
            ("OFFLINE_SOURCE_THROTTLED", 0x2),
            ("OFFLINE_DESTINATION_THROTTLED", 0x4),
            ("OFFLINE_DESTINATION_REJECTED", 0x8),
            ("INSUFFICIENT_MEMORY", 0x10),
            ("INSUFFICIENT_PROCESSOR", 0x20),
            ("INSUFFICIENT_OTHER_RESOURCES", 0x40),
            ("INVALID_PARAMETERS", 0x80),
            ("NETWORK_NOT_AVAILABLE", 0x100),
            ("DO_NOT_COLLECT_WER_REPORT", 0x4000_0000),
            ("DUMP_NOW", 0x8000_0000),
        ],
    );
}

#[test]
fn client_flags() {
    expect(
        bits(&names_of!(GroupMoveFlags), |f| f.bits()),
        &[
            ("IGNORE_RESOURCE_STATUS", 0x1),
            ("RETURN_TO_SOURCE_NODE_ON_ERROR", 0x2),
            ("QUEUE_ENABLED", 0x4),
            ("HIGH_PRIORITY_START", 0x8),
            ("FAILBACK", 0x10),
            ("IGNORE_AFFINITY_RULE", 0x20),
        ],
    );
    expect(
        bits(&names_of!(GroupOnlineFlags), |f| f.bits()),
        &[
            ("IGNORE_RESOURCE_STATUS", 0x1),
            ("SYNCHRONOUS", 0x2),
            ("BEST_POSSIBLE_NODE", 0x4),
            ("IGNORE_AFFINITY_RULE", 0x8),
        ],
    );
    expect(bits(&names_of!(GroupOfflineFlags), |f| f.bits()), &[("IGNORE_RESOURCE_STATUS", 0x1)]);
    expect(
        bits(&names_of!(ResourceOnlineFlags), |f| f.bits()),
        &[
            ("IGNORE_RESOURCE_STATUS", 0x1),
            ("DO_NOT_UPDATE_PERSISTENT_STATE", 0x2),
            ("NECESSARY_FOR_QUORUM", 0x4),
            ("BEST_POSSIBLE_NODE", 0x8),
            ("IGNORE_AFFINITY_RULE", 0x20),
        ],
    );
    expect(
        bits(&names_of!(ResourceOfflineFlags), |f| f.bits()),
        &[("IGNORE_RESOURCE_STATUS", 0x1), ("FORCE_WITH_TERMINATION", 0x2), ("DO_NOT_UPDATE_PERSISTENT_STATE", 0x4)],
    );
    expect(
        bits(&names_of!(OfflineReason), |f| f.bits()),
        &[
            ("UNKNOWN", 0x1),
            ("MOVING", 0x2),
            ("USER_REQUESTED", 0x4),
            ("BEING_DELETED", 0x8),
            ("BEING_RESTARTED", 0x10),
            ("PREEMPTED", 0x20),
            ("SHUTTING_DOWN", 0x40),
        ],
    );
    assert_eq!(Characteristics::QUORUM.bits(), 0x1);
    assert_eq!(Characteristics::NOTIFY_NEW_OWNER.bits(), 0x8000);
    assert_eq!(Characteristics::INFRASTRUCTURE.bits(), 0x20000);
    assert_eq!(Characteristics::all().iter().count(), 18);
    assert_eq!(ResourceFlags::CORE.bits(), 0x1);
    assert_eq!(ResourceStatusInformation::LOCKED_MODE.bits(), 0x1);
    assert_eq!(ResourceStatusInformation::OFFLINE_NOT_LOCAL_DISK_OWNER.bits(), 0x200);
}

fn enum_values<T: Copy + std::fmt::Display>(all: &[T], raw: impl Fn(T) -> i64) -> Vec<(String, i64)> {
    all.iter().map(|v| (v.to_string(), raw(*v))).collect()
}

fn expect_enum(actual: Vec<(String, i64)>, expected: &[(&str, i64)]) {
    let expected: Vec<(String, i64)> = expected.iter().map(|(n, v)| (n.to_string(), *v)).collect();
    assert_eq!(actual, expected);
}

#[test]
fn states_and_enums() {
    expect_enum(
        enum_values(ResourceState::ALL, |s| s.raw().into()),
        &[
            ("Unknown", -1),
            ("Inherited", 0),
            ("Initializing", 1),
            ("Online", 2),
            ("Offline", 3),
            ("Failed", 4),
            ("CannotComeOnlineOnAnyNode", 126),
            ("CannotComeOnlineOnThisNode", 127),
            ("Pending", 128),
            ("OnlinePending", 129),
            ("OfflinePending", 130),
        ],
    );
    expect_enum(
        enum_values(GroupState::ALL, |s| s.raw().into()),
        &[("Unknown", -1), ("Online", 0), ("Offline", 1), ("Failed", 2), ("PartialOnline", 3), ("Pending", 4)],
    );
    expect_enum(
        enum_values(NodeState::ALL, |s| s.raw().into()),
        &[("Unknown", -1), ("Up", 0), ("Down", 1), ("Paused", 2), ("Joining", 3)],
    );
    expect_enum(
        enum_values(RestartAction::ALL, |s| s.raw().into()),
        &[("DontRestart", 0), ("RestartNoNotify", 1), ("RestartNotify", 2)],
    );
    expect_enum(
        enum_values(FailureType::ALL, |s| s.raw().into()),
        &[("General", 0), ("Embedded", 1), ("NetworkLoss", 2)],
    );
    expect_enum(enum_values(ExitState::ALL, |s| s.raw().into()), &[("Continue", 0), ("Terminate", 1), ("Max", 2)]);
    expect_enum(
        enum_values(LogLevel::ALL, |s| s.raw().into()),
        &[("Information", 0), ("Warning", 1), ("Error", 2), ("Severe", 3)],
    );
    expect_enum(
        enum_values(EmbeddedFailureAction::ALL, |s| s.raw().into()),
        &[("None", 0), ("LogOnly", 1), ("Recover", 2)],
    );
    expect_enum(
        enum_values(ApplicationState::ALL, |s| s.raw().into()),
        &[("Unknown", 1), ("OsHeartBeat", 2), ("Ready", 3)],
    );
    assert_eq!(ResourceState::try_from(131).unwrap_err().status(), Status(87));
}

#[test]
fn win32_and_cluster_status_codes() {
    let table: &[(&str, u32)] = &[
        ("ERROR_SUCCESS", 0),
        ("ERROR_INVALID_FUNCTION", 1),
        ("ERROR_NOT_ENOUGH_MEMORY", 8),
        ("ERROR_INVALID_DATA", 13),
        ("ERROR_INVALID_PARAMETER", 87),
        ("ERROR_DISK_FULL", 112),
        ("ERROR_MORE_DATA", 234),
        ("ERROR_OPERATION_ABORTED", 995),
        ("ERROR_IO_PENDING", 997),
        ("ERROR_REVISION_MISMATCH", 1306),
        ("ERROR_DEPENDENT_RESOURCE_EXISTS", 5001),
        ("ERROR_DEPENDENCY_NOT_FOUND", 5002),
        ("ERROR_DEPENDENCY_ALREADY_EXISTS", 5003),
        ("ERROR_RESOURCE_NOT_ONLINE", 5004),
        ("ERROR_HOST_NODE_NOT_AVAILABLE", 5005),
        ("ERROR_RESOURCE_NOT_AVAILABLE", 5006),
        ("ERROR_RESOURCE_NOT_FOUND", 5007),
        ("ERROR_GROUP_NOT_AVAILABLE", 5012),
        ("ERROR_GROUP_NOT_FOUND", 5013),
        ("ERROR_GROUP_NOT_ONLINE", 5014),
        ("ERROR_RESMON_CREATE_FAILED", 5017),
        ("ERROR_RESMON_ONLINE_FAILED", 5018),
        ("ERROR_RESOURCE_ONLINE", 5019),
        ("ERROR_QUORUM_RESOURCE", 5020),
        ("ERROR_NOT_QUORUM_CAPABLE", 5021),
        ("ERROR_CLUSTER_SHUTTING_DOWN", 5022),
        ("ERROR_INVALID_STATE", 5023),
        ("ERROR_RESOURCE_PROPERTIES_STORED", 5024),
        ("ERROR_CORE_RESOURCE", 5026),
        ("ERROR_NODE_NOT_AVAILABLE", 5036),
        ("ERROR_ALL_NODES_NOT_AVAILABLE", 5037),
        ("ERROR_RESOURCE_FAILED", 5038),
        ("ERROR_CLUSTER_NODE_DOWN", 5050),
        ("ERROR_CLUSTER_NODE_NOT_FOUND", 5042),
        ("ERROR_HOST_NODE_NOT_GROUP_OWNER", 5016),
        ("ERROR_CIRCULAR_DEPENDENCY", 1059),
        ("ERROR_DEPENDENCY_NOT_ALLOWED", 5069),
        ("ERROR_CLUSTER_NODE_PAUSED", 5070),
        ("ERROR_NODE_CANT_HOST_RESOURCE", 5071),
        ("ERROR_CLUSTER_RESOURCE_TYPE_NOT_FOUND", 5078),
        ("ERROR_CLUSTER_RESTYPE_NOT_SUPPORTED", 5079),
        ("ERROR_CLUSTER_RESNAME_NOT_FOUND", 5080),
        ("ERROR_CLUSTER_OWNER_NOT_IN_PREFLIST", 5082),
        ("ERROR_RESMON_INVALID_STATE", 5084),
        ("ERROR_RESOURCE_PROPERTY_UNCHANGEABLE", 5089),
        ("ERROR_CLUSTER_GROUP_MOVING", 5908),
        ("ERROR_CLUSTER_RESOURCE_TYPE_BUSY", 5909),
        ("ERROR_RESOURCE_CALL_TIMED_OUT", 5910),
        ("ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS", 5913),
        ("ERROR_CLUSTER_NO_QUORUM", 5925),
        ("ERROR_DEPENDENCY_TREE_TOO_COMPLEX", 5929),
        ("ERROR_EXCEPTION_IN_RESOURCE_CALL", 5930),
        ("ERROR_CLUSTER_RHS_FAILED_INITIALIZATION", 5931),
        ("ERROR_CLUSTER_RESOURCE_PROVIDER_FAILED", 5942),
        ("ERROR_CLUSTER_RESOURCE_CONFIGURATION_ERROR", 5943),
        ("ERROR_CLUSTER_GROUP_BUSY", 5944),
        ("ERROR_CLUSTER_RESOURCE_VETOED_MOVE_INCOMPATIBLE_NODES", 5953),
        ("ERROR_CLUSTER_RESOURCE_VETOED_CALL", 5955),
        ("ERROR_RESMON_SYSTEM_RESOURCES_LACKING", 5956),
        ("ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_DESTINATION", 5957),
        ("ERROR_CLUSTER_RESOURCE_VETOED_MOVE_NOT_ENOUGH_RESOURCES_ON_SOURCE", 5958),
        ("ERROR_CLUSTER_GROUP_QUEUED", 5959),
        ("ERROR_CLUSTER_RESOURCE_LOCKED_STATUS", 5960),
        ("ERROR_CLUSTER_NODE_DRAIN_IN_PROGRESS", 5962),
        ("ERROR_CLUSTER_RESOURCE_IS_IN_MAINTENANCE_MODE", 5970),
        ("ERROR_CLUSTER_AFFINITY_CONFLICT", 5971),
    ];
    for (name, code) in table {
        assert_eq!(Status::from_name(name), Some(Status(*code)), "{name}");
        assert_eq!(Status(*code).name(), Some(*name));
        assert_eq!(Status(*code).to_string(), format!("{name} ({code})"));
    }
    assert_eq!(Status::ERROR_IO_PENDING.0, 0x3E5);
}

#[test]
fn control_codes_and_their_layout() {
    let table: &[(ControlCode, u32)] = &[
        (CLUSCTL_RESOURCE_UNKNOWN, 0x0100_0000),
        (CLUSCTL_RESOURCE_GET_CHARACTERISTICS, 0x0100_0005),
        (CLUSCTL_RESOURCE_GET_FLAGS, 0x0100_0009),
        (CLUSCTL_RESOURCE_GET_CLASS_INFO, 0x0100_000D),
        (CLUSCTL_RESOURCE_GET_REQUIRED_DEPENDENCIES, 0x0100_0011),
        (CLUSCTL_RESOURCE_GET_FAILURE_INFO, 0x0100_0019),
        (CLUSCTL_RESOURCE_GET_NAME, 0x0100_0029),
        (CLUSCTL_RESOURCE_GET_RESOURCE_TYPE, 0x0100_002D),
        (CLUSCTL_RESOURCE_GET_ID, 0x0100_0039),
        (CLUSCTL_RESOURCE_ENUM_COMMON_PROPERTIES, 0x0100_0051),
        (CLUSCTL_RESOURCE_GET_RO_COMMON_PROPERTIES, 0x0100_0055),
        (CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES, 0x0100_0059),
        (CLUSCTL_RESOURCE_SET_COMMON_PROPERTIES, 0x0140_005E),
        (CLUSCTL_RESOURCE_VALIDATE_COMMON_PROPERTIES, 0x0100_0061),
        (CLUSCTL_RESOURCE_GET_COMMON_PROPERTY_FMTS, 0x0100_0065),
        (CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES, 0x0100_0079),
        (CLUSCTL_RESOURCE_GET_RO_PRIVATE_PROPERTIES, 0x0100_007D),
        (CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES, 0x0100_0081),
        (CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES, 0x0140_0086),
        (CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES, 0x0100_0089),
        (CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS, 0x0100_008D),
        (CLUSCTL_RESOURCE_ADD_REGISTRY_CHECKPOINT, 0x0140_00A2),
        (CLUSCTL_RESOURCE_DELETE_REGISTRY_CHECKPOINT, 0x0140_00A6),
        (CLUSCTL_RESOURCE_GET_REGISTRY_CHECKPOINTS, 0x0100_00A9),
        (CLUSCTL_RESOURCE_QUERY_DELETE, 0x0100_01B9),
        (CLUSCTL_RESOURCE_DELETE, 0x0150_0006),
        (CLUSCTL_RESOURCE_INSTALL_NODE, 0x0150_000A),
        (CLUSCTL_RESOURCE_EVICT_NODE, 0x0150_000E),
        (CLUSCTL_RESOURCE_ADD_DEPENDENCY, 0x0150_0012),
        (CLUSCTL_RESOURCE_REMOVE_DEPENDENCY, 0x0150_0016),
        (CLUSCTL_RESOURCE_ADD_OWNER, 0x0150_001A),
        (CLUSCTL_RESOURCE_REMOVE_OWNER, 0x0150_001E),
        (CLUSCTL_RESOURCE_SET_NAME, 0x0150_0026),
        (CLUSCTL_RESOURCE_CLUSTER_NAME_CHANGED, 0x0150_002A),
        (CLUSCTL_RESOURCE_CLUSTER_VERSION_CHANGED, 0x0150_002E),
        (CLUSCTL_RESOURCE_FORCE_QUORUM, 0x0150_0046),
        (CLUSCTL_RESOURCE_INITIALIZE, 0x0150_004A),
        (CLUSCTL_RESOURCE_STATE_CHANGE_REASON, 0x0150_004E),
        (CLUSCTL_RESOURCE_PROVIDER_STATE_CHANGE, 0x0150_0052),
        (CLUSCTL_RESOURCE_LEAVING_GROUP, 0x0150_0056),
        (CLUSCTL_RESOURCE_JOINING_GROUP, 0x0150_005A),
        (CLUSCTL_RESOURCE_TYPE_GET_ARB_TIMEOUT, 0x0200_0015),
        (CLUSCTL_RESOURCE_TYPE_GET_COMMON_PROPERTIES, 0x0200_0059),
        (CLUSCTL_RESOURCE_TYPE_SET_PRIVATE_PROPERTIES, 0x0240_0086),
        (CLUSCTL_RESOURCE_TYPE_INSTALL_NODE, 0x0250_000A),
        (CLUSCTL_RESOURCE_TYPE_EVICT_NODE, 0x0250_000E),
        (CLUSCTL_RESOURCE_TYPE_CLUSTER_VERSION_CHANGED, 0x0250_002E),
        (CLUSCTL_RESOURCE_TYPE_STARTING_PHASE1, 0x0250_0036),
        (CLUSCTL_RESOURCE_TYPE_STARTING_PHASE2, 0x0250_003A),
        (CLUSCTL_RESOURCE_TYPE_NOTIFY_MONITOR_SHUTTING_DOWN, 0x0210_0081),
    ];
    for (code, raw) in table {
        assert_eq!(code.0, *raw, "{code}");
    }
    assert_eq!(ControlCode::GLOBAL_BIT, 0x80_0000);
    assert_eq!(ControlCode::MODIFY_BIT, 0x40_0000);
    assert_eq!(ControlCode::USER_BIT, 0x20_0000);
    assert_eq!(ControlCode::INTERNAL_BIT, 0x10_0000);
    // The node object is 4, as in clusapi.h and in real codes (CLUSCTL_NODE_GET_FLAGS is
    // 0x04000009); Microsoft's "Control Code Architecture" page lists it as 0x08, which is wrong.
    assert_eq!(ControlCode(0x0400_0009).object(), Some(ControlObject::Node));
    assert_eq!(ControlCode(0x0400_0009).access(), ControlAccess::Read);
}

#[test]
fn property_list_syntaxes() {
    assert_eq!(syntax::NAME, 0x0004_0003);
    assert_eq!(syntax::LIST_VALUE_DWORD, 0x0001_0002);
    assert_eq!(syntax::LIST_VALUE_SZ, 0x0001_0003);
    assert_eq!(syntax::LIST_VALUE_MULTI_SZ, 0x0001_0005);
    assert_eq!(syntax::LIST_VALUE_BINARY, 0x0001_0001);
    assert_eq!(syntax::LIST_VALUE_ULARGE_INTEGER, 0x0001_0006);
    assert_eq!(syntax::LIST_VALUE_FILETIME, 0x0001_000C);
    assert_eq!(syntax::RESCLASS, 0x0002_0002);
    let formats = [
        format::UNKNOWN,
        format::BINARY,
        format::DWORD,
        format::SZ,
        format::EXPAND_SZ,
        format::MULTI_SZ,
        format::ULARGE_INTEGER,
        format::LONG,
        format::EXPANDED_SZ,
        format::SECURITY_DESCRIPTOR,
        format::LARGE_INTEGER,
        format::WORD,
        format::FILETIME,
        format::VALUE_LIST,
        format::PROPERTY_LIST,
    ];
    assert_eq!(formats, [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14]);
    assert_eq!(format::USER, 0x8000);
    assert_eq!(
        [value_type::ENDMARK, value_type::LIST_VALUE, value_type::RESCLASS, value_type::NAME, value_type::USER],
        [0, 1, 2, 4, 0x8000]
    );
    assert_eq!(USE_TYPE_VALUE, 0xFFFF_FFFF);
}
