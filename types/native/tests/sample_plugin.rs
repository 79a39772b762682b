//! The C sample plug-in (`examples/native/sample_resource.c`), compiled with `cc` and driven
//! through open → online (pending, checkpoints) → offline_v2 with a destination and flags → close.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{Event, Recorder, compile, repo_root};
use halo_type_native::{NativeLibrary, NativeResourceType};
use resapi::control::codes::CLUSCTL_RESOURCE_GET_CHARACTERISTICS;
use resapi::{
    ControlCode, LogLevel, OfflineFlags, OnlineFlags, OpenFlags, OpenRequest, Parameters, PropertyList, ResourceState,
    ResourceType, Status, ValueData,
};
use std::path::Path;

const TYPE_NAME: &str = "halo-sample";

fn sample_type(dir: &Path) -> NativeResourceType {
    let so =
        compile(&[repo_root().join("examples/native/sample_resource.c")], &[], &dir.join("libhalo_sample.so"), true);
    let library = NativeLibrary::load(&so).expect("the sample loads");
    let ty = NativeResourceType::new(library);
    ty.startup(TYPE_NAME).expect("StartupEx accepts halo-sample");
    assert_eq!(ty.version(), Some(0x200));
    ty
}

fn record(path: &Path) -> Vec<String> {
    std::fs::read_to_string(path).unwrap_or_default().lines().map(str::to_string).collect()
}

#[test]
fn sample_lifecycle_sees_exactly_what_halo_passed() {
    let dir = tempfile::tempdir().unwrap();
    let ty = sample_type(dir.path());
    let record_file = dir.path().join("record.txt");
    let params = PropertyList::new()
        .with("RecordFile", ValueData::Sz(record_file.display().to_string()))
        .with("Checkpoints", ValueData::Dword(4));
    let recorder = Recorder::new();
    let resource = ty
        .open(OpenRequest {
            name: "web-1".into(),
            parameters: Parameters::new(params),
            callbacks: recorder.callbacks(1),
            flags: OpenFlags::RECOVER_MONITOR_STATE,
        })
        .expect("open succeeds");
    assert_eq!(record(&record_file), ["open name=web-1 flags=0x1"]);
    assert!(!resource.looks_alive());

    // Online is pending; the worker reports checkpoints 1..=4, then Online at 5.
    let status = resource.online_v2(OnlineFlags::IGNORE_RESOURCE_STATUS, &[1, 2, 3]);
    assert_eq!(status, Status::ERROR_IO_PENDING);
    let events =
        recorder.wait_for(|e| e.iter().any(|e| matches!(e, Event::Status(s) if s.state == ResourceState::Online)));
    let reports: Vec<(ResourceState, u32)> = events
        .iter()
        .filter_map(|e| match e {
            Event::Status(s) => Some((s.state, s.checkpoint)),
            _ => None,
        })
        .collect();
    assert_eq!(
        reports,
        [
            (ResourceState::OnlinePending, 1),
            (ResourceState::OnlinePending, 2),
            (ResourceState::OnlinePending, 3),
            (ResourceState::OnlinePending, 4),
            (ResourceState::Online, 5),
        ]
    );
    assert!(resource.looks_alive() && resource.is_alive());

    // Offline with a destination and flags: the plug-in records exactly those.
    let flags = OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE | OfflineFlags::RETURN_TO_SOURCE_NODE_ON_ERROR;
    assert_eq!(resource.offline_v2(Some("node-b"), flags, &[9; 7]), Status::ERROR_SUCCESS);
    assert!(!resource.is_alive());

    // A user control code returns the destination; a short buffer gets ERROR_MORE_DATA and the size.
    // CLUSCTL_RESOURCE_USER_CODE(1, CLUS_NO_MODIFY): Windows' CLUSCTL_USER_CODE(1, resource) value.
    let code = ControlCode(0x0180_0004);
    let mut small = [0u8; 3];
    let r = resource.resource_control(code, &[], &mut small);
    assert_eq!((r.status, r.bytes_returned), (Status::ERROR_MORE_DATA, 7));
    let mut out = [0u8; 64];
    let r = resource.resource_control(code, &[], &mut out);
    assert_eq!(r.status, Status::ERROR_SUCCESS);
    assert_eq!(&out[..r.bytes_returned], b"node-b\0");
    let r = resource.resource_control(CLUSCTL_RESOURCE_GET_CHARACTERISTICS, &[], &mut out);
    assert_eq!((r.status, r.bytes_returned), (Status::ERROR_SUCCESS, 4));
    // An unknown code asks for the host's default handling.
    let r = resource.resource_control(ControlCode(0x0100_0011), &[], &mut out);
    assert_eq!(r.status, Status::ERROR_INVALID_FUNCTION);

    resource.close();
    assert_eq!(
        record(&record_file),
        [
            "open name=web-1 flags=0x1",
            "online flags=0x2 inbuffer=3 checkpoints=4",
            "offline destination=node-b flags=0x42 inbuffer=7",
            "close",
        ]
    );
    // LogEvent's printf-style format reached the monitor, formatted.
    assert!(recorder.events().contains(&Event::Log(LogLevel::Information, "opened web-1 (open flags 0x1)".into())));
}

#[test]
fn offline_without_destination_passes_null_and_terminate_stops_a_pending_online() {
    let dir = tempfile::tempdir().unwrap();
    let ty = sample_type(dir.path());
    let record_file = dir.path().join("record.txt");
    let recorder = Recorder::new();
    // Every status report is answered "terminated": the worker must stop after its first report.
    recorder.terminated.store(true, std::sync::atomic::Ordering::SeqCst);
    let params = PropertyList::new()
        .with("RecordFile", ValueData::Sz(record_file.display().to_string()))
        .with("Checkpoints", ValueData::Sz("0x10".into()));
    let resource = ty
        .open(OpenRequest {
            name: "db".into(),
            parameters: Parameters::new(params),
            callbacks: recorder.callbacks(2),
            flags: OpenFlags::empty(),
        })
        .unwrap();
    assert_eq!(resource.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_IO_PENDING);
    resource.terminate();
    let reports = recorder.events().into_iter().filter(|e| matches!(e, Event::Status(_))).count();
    assert!(reports <= 1, "the worker stopped at ExitState::Terminate, made {reports} reports");
    assert_eq!(resource.offline_v2(None, OfflineFlags::empty(), &[]), Status::ERROR_SUCCESS);
    drop(resource); // Drop closes.
    assert_eq!(
        record(&record_file),
        [
            "open name=db flags=0x0",
            "online flags=0x0 inbuffer=0 checkpoints=16",
            "terminate",
            "offline destination=(none) flags=0x0 inbuffer=0",
            "close"
        ]
    );
}

#[test]
fn open_failure_reports_the_plugins_last_error() {
    let dir = tempfile::tempdir().unwrap();
    let ty = sample_type(dir.path());
    let recorder = Recorder::new();
    let err = ty
        .open(OpenRequest {
            name: "no-record-file".into(),
            parameters: Parameters::new(PropertyList::new()),
            callbacks: recorder.callbacks(3),
            flags: OpenFlags::empty(),
        })
        .err()
        .expect("open without RecordFile fails");
    assert_eq!(err, Status::ERROR_INVALID_PARAMETER);
    assert!(recorder.events().iter().any(|e| matches!(e, Event::Log(LogLevel::Error, m) if m.contains("RecordFile"))));
}

#[test]
fn startup_refuses_a_type_the_plugin_does_not_serve() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile(&[repo_root().join("examples/native/sample_resource.c")], &[], &dir.path().join("s.so"), true);
    let ty = NativeResourceType::new(NativeLibrary::load(&so).unwrap());
    let err = ty.start("not-mine").unwrap_err();
    assert_eq!(err.status(), Status::ERROR_CLUSTER_RESNAME_NOT_FOUND);
    assert!(err.to_string().contains("not-mine"), "{err}");
}
