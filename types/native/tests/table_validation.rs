//! Bad plug-in tables are refused with a clear error naming what is wrong; a V1 plug-in works.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{Event, Recorder, compile};
use halo_type_native::{LoadError, NativeLibrary, NativeResourceType};
use resapi::{OfflineFlags, OnlineFlags, OpenFlags, OpenRequest, Parameters, PropertyList, ResourceType, Status};
use std::path::Path;

fn variant(dir: &Path, name: &str, defines: &[&str]) -> NativeResourceType {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/table_variants.c");
    let so = compile(&[src], defines, &dir.join(format!("lib{name}.so")), true);
    NativeResourceType::new(NativeLibrary::load(so).expect("the variant loads"))
}

fn start_error(defines: &[&str]) -> LoadError {
    let dir = tempfile::tempdir().unwrap();
    variant(dir.path(), "bad", defines).start("t").expect_err("startup must be refused")
}

#[test]
fn a_valid_table_starts() {
    let dir = tempfile::tempdir().unwrap();
    let ty = variant(dir.path(), "good", &[]);
    ty.start("t").unwrap();
    assert_eq!(ty.version(), Some(0x200));
}

#[test]
fn unsupported_version_is_a_revision_mismatch() {
    let err = start_error(&["-DTABLE_VERSION=0x300"]);
    assert!(matches!(err, LoadError::RevisionMismatch { version: 0x300, .. }), "{err:?}");
    assert_eq!(err.status(), Status::ERROR_REVISION_MISMATCH);
    assert_eq!(err.status().0, 1306);
    let text = err.to_string();
    assert!(text.contains("0x300") && text.contains("0x100") && text.contains("0x200"), "{text}");
}

#[test]
fn table_size_mismatch_is_refused() {
    let err = start_error(&["-DTABLE_SIZE_DELTA=8"]);
    assert!(matches!(err, LoadError::TableSize { major: 2, table_size: 104, expected: 96, .. }), "{err:?}");
    assert_eq!(err.status(), Status::ERROR_INVALID_DATA);
    assert!(err.to_string().contains("sizeof(CLRES_V2_FUNCTIONS) is 96"), "{err}");
    let err = start_error(&["-DV1_ONLY", "-DTABLE_SIZE_DELTA=-8"]);
    assert!(matches!(err, LoadError::TableSize { major: 1, table_size: 80, expected: 88, .. }), "{err:?}");
}

#[test]
fn null_mandatory_entry_is_named() {
    let err = start_error(&["-DNULL_LOOKS_ALIVE"]);
    assert!(matches!(err, LoadError::NullEntry { entry: "LooksAlive", major: 2, .. }), "{err:?}");
    assert!(err.to_string().contains("LooksAlive is NULL"), "{err}");
    let err = start_error(&["-DV1_ONLY", "-DNULL_LOOKS_ALIVE"]);
    assert!(matches!(err, LoadError::NullEntry { entry: "LooksAlive", major: 1, .. }), "{err:?}");
}

#[test]
fn startup_error_is_passed_through() {
    let err = start_error(&["-DSTARTUP_STATUS=1306"]);
    assert_eq!(err.status(), Status::ERROR_REVISION_MISMATCH);
    assert!(matches!(err, LoadError::StartupFailed { .. }), "{err:?}");
}

#[test]
fn missing_startup_and_missing_file_are_refused() {
    let err = start_error(&["-DNO_STARTUP"]);
    assert!(matches!(err, LoadError::NoStartup { .. }), "{err:?}");
    assert_eq!(err.status(), Status::ERROR_PROC_NOT_FOUND);
    let err = NativeLibrary::load("/nonexistent/libnothing.so").unwrap_err();
    assert_eq!(err.status(), Status::ERROR_MOD_NOT_FOUND);
    assert!(err.to_string().contains("/nonexistent/libnothing.so"), "{err}");
}

#[test]
fn open_before_startup_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let ty = variant(dir.path(), "unstarted", &[]);
    let err = ty
        .open(OpenRequest {
            name: "r".into(),
            parameters: Parameters::default(),
            callbacks: Recorder::new().callbacks(1),
            flags: OpenFlags::empty(),
        })
        .err();
    assert_eq!(err, Some(Status::ERROR_RESMON_INVALID_STATE));
}

#[test]
fn a_v1_plugin_runs_through_startup_and_the_v1_table() {
    let dir = tempfile::tempdir().unwrap();
    let ty = variant(dir.path(), "v1", &["-DV1_ONLY"]);
    ty.startup("t").unwrap();
    assert_eq!(ty.version(), Some(0x100));
    let recorder = Recorder::new();
    let r = ty
        .open(OpenRequest {
            name: "old".into(),
            parameters: Parameters::new(PropertyList::new()),
            callbacks: recorder.callbacks(7),
            flags: OpenFlags::empty(),
        })
        .unwrap();
    // The V1 LogEvent (given to Startup) reaches the monitor, formatted.
    assert!(recorder.events().contains(&Event::Log(resapi::LogLevel::Warning, "v1 open old".into())));
    assert_eq!(r.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_SUCCESS);
    assert!(r.is_alive());
    // V1 has no Cancel: the bridge says so rather than calling a missing entry point.
    assert_eq!(r.cancel(), Status::ERROR_INVALID_FUNCTION);
    assert_eq!(r.offline_v2(Some("ignored-by-v1"), OfflineFlags::QUEUE_ENABLED, &[]), Status::ERROR_SUCCESS);
    assert!(!r.looks_alive());
    // Not quorum-capable: Arbitrate and Release are NULL.
    assert_eq!(r.release(), Status::ERROR_NOT_QUORUM_CAPABLE);
    r.close();
}
