//! The Windows-style sample (`examples/windows-style/demo_service.c`), built against
//! `include/compat` with the documented line and driven through the loader: wide names and
//! buffers converted at the boundary, control codes while offline, validation and refusal,
//! properties written through its key, the pending online with a worker, FormatMessage inserts.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{Event, Recorder, compile_compat, repo_root};
use halo_type_native::{NativeLibrary, NativeResourceType};
use resapi::control::codes::{
    CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES, CLUSCTL_RESOURCE_GET_CHARACTERISTICS,
    CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES, CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS,
    CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES, CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTY_FMTS,
    CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES,
};
use resapi::{
    ControlCode, LogLevel, OfflineFlags, OnlineFlags, OpenFlags, OpenRequest, Parameters, PropertyList, Resource,
    ResourceState, ResourceType, Status, ValueData,
};
use std::path::Path;

const TYPE_NAME: &str = "Halo Demo Service";
/// `CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE)`: the sample's status code.
const DEMO_GET_STATUS: ControlCode = ControlCode(0x0180_0004);

fn demo_type(dir: &Path) -> NativeResourceType {
    let so = compile_compat(
        &[repo_root().join("examples/windows-style/demo_service.c")],
        &dir.join("libdemo_service.so"),
        true,
    );
    let ty = NativeResourceType::new(NativeLibrary::load(&so).expect("the sample loads"));
    ty.startup(TYPE_NAME).expect("Startup accepts its type, given as a wide string");
    assert_eq!(ty.version(), Some(0x200));
    ty
}

fn open(
    ty: &NativeResourceType,
    name: &str,
    params: &Parameters,
    recorder: &std::sync::Arc<Recorder>,
) -> Box<dyn Resource> {
    ty.open(OpenRequest {
        name: name.into(),
        parameters: params.clone(),
        callbacks: recorder.callbacks(7),
        flags: OpenFlags::RECOVER_MONITOR_STATE,
    })
    .expect("open succeeds")
}

fn control(resource: &dyn Resource, code: ControlCode, input: &[u8]) -> (Status, Vec<u8>) {
    let mut out = vec![0u8; 4096];
    let r = resource.resource_control(code, input, &mut out);
    out.truncate(if r.status == Status::ERROR_SUCCESS { r.bytes_returned } else { 0 });
    (r.status, out)
}

fn logs(recorder: &Recorder) -> Vec<(LogLevel, String)> {
    recorder
        .events()
        .into_iter()
        .filter_map(|e| match e {
            Event::Log(level, text) => Some((level, text)),
            _ => None,
        })
        .collect()
}

fn utf16z(bytes: &[u8]) -> Vec<String> {
    let units: Vec<u16> = bytes.chunks_exact(2).map(|u| u16::from_le_bytes([u[0], u[1]])).collect();
    units.split(|&u| u == 0).map(String::from_utf16_lossy).collect()
}

#[test]
fn a_windows_style_dll_runs_through_the_loader_with_wide_strings() {
    let dir = tempfile::tempdir().unwrap();
    let ty = demo_type(dir.path());
    // halo keeps private properties as text: the DLL reads Port and OnlineSteps as DWORDs.
    let params = Parameters::new(
        PropertyList::new()
            .with("ServiceName", ValueData::Sz("web".into()))
            .with("Port", ValueData::Sz("8080".into()))
            .with("OnlineSteps", ValueData::Sz("3".into())),
    );
    let recorder = Recorder::new();
    let resource = open(&ty, "démo-1", &params, &recorder);

    // The name arrived wide and came back through the inserts (%1 defaults to a wide string).
    let opened = logs(&recorder);
    assert_eq!(opened[0], (LogLevel::Information, "Open request for démo-1 with flags 1.".to_string()));
    assert!(opened[1].1.starts_with("Open: resource 'démo-1' is ready ("), "{opened:?}");

    // Control codes reach the DLL while the resource is offline.
    let (status, out) = control(&*resource, CLUSCTL_RESOURCE_GET_CHARACTERISTICS, &[]);
    assert_eq!((status, out.as_slice()), (Status::ERROR_SUCCESS, &0x4000u32.to_le_bytes()[..]));
    let (status, out) = control(&*resource, CLUSCTL_RESOURCE_ENUM_PRIVATE_PROPERTIES, &[]);
    assert_eq!(status, Status::ERROR_SUCCESS);
    assert_eq!(utf16z(&out), ["ServiceName", "Port", "OnlineSteps", "Tags", "", ""]);
    let (status, out) = control(&*resource, CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTY_FMTS, &[]);
    assert_eq!(status, Status::ERROR_SUCCESS);
    let formats = PropertyList::decode(&out).unwrap();
    assert_eq!(formats.get("Port"), Some(&ValueData::Word(2)));
    assert_eq!(formats.get("Tags"), Some(&ValueData::Word(5)));
    let (status, out) = control(&*resource, CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES, &[]);
    assert_eq!(status, Status::ERROR_SUCCESS);
    let current = PropertyList::decode(&out).unwrap();
    assert_eq!(current.get("ServiceName"), Some(&ValueData::Sz("web".into())));
    assert_eq!(current.get("Port"), Some(&ValueData::Dword(8080)));
    assert_eq!(current.get("OnlineSteps"), Some(&ValueData::Dword(3)));
    assert_eq!(current.get("Tags"), None, "no value and no default");
    // A short buffer gets ERROR_MORE_DATA with the size of the converted (wire) list.
    let mut small = [0u8; 8];
    let r = resource.resource_control(CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES, &[], &mut small);
    assert_eq!((r.status, r.bytes_returned), (Status::ERROR_MORE_DATA, out.len()));
    let type_fmts = ty.type_control(CLUSCTL_RESOURCE_TYPE_GET_PRIVATE_PROPERTY_FMTS, &[], &mut [0u8; 1024]);
    assert_eq!(type_fmts.status, Status::ERROR_SUCCESS);

    // Validation refuses what the table or the DLL's own rule refuses, and stores nothing.
    let list = |p: PropertyList| p.encode().unwrap();
    let (status, _) = control(
        &*resource,
        CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES,
        &list(PropertyList::new().with("Port", ValueData::Dword(70000))),
    );
    assert_eq!(status, Status::ERROR_INVALID_PARAMETER);
    let (status, _) = control(
        &*resource,
        CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES,
        &list(PropertyList::new().with("ServiceName", ValueData::Sz("has space".into()))),
    );
    assert_eq!(status, Status::ERROR_INVALID_PARAMETER);
    assert!(
        logs(&recorder).contains(&(LogLevel::Error, "Validate: the service name 'has space' has a space.".to_string()))
    );
    let (status, _) = control(
        &*resource,
        CLUSCTL_RESOURCE_VALIDATE_PRIVATE_PROPERTIES,
        &list(PropertyList::new().with("Port", ValueData::Dword(9090))),
    );
    assert_eq!(status, Status::ERROR_SUCCESS);
    assert_eq!(params.snapshot().get("Port"), Some(&ValueData::Sz("8080".into())), "validation stores nothing");

    // SET writes through the DLL's key into the host's view of the parameters.
    let (status, _) = control(
        &*resource,
        CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES,
        &list(
            PropertyList::new()
                .with("Port", ValueData::Dword(9090))
                .with("Tags", ValueData::MultiSz(vec!["blue".into(), "grün".into()])),
        ),
    );
    assert_eq!(status, Status::ERROR_SUCCESS);
    let stored = params.snapshot();
    assert_eq!(stored.get("Port"), Some(&ValueData::Dword(9090)));
    assert_eq!(stored.get("Tags"), Some(&ValueData::MultiSz(vec!["blue".into(), "grün".into()])));

    // Online is pending: the worker reports checkpoints 1..=3, then Online at 4.
    let epoch = PropertyList::new().with("Epoch", ValueData::ULargeInteger(42)).encode().unwrap();
    assert_eq!(resource.online_v2(OnlineFlags::empty(), &epoch), Status::ERROR_IO_PENDING);
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
            (ResourceState::Online, 4),
        ]
    );
    assert!(resource.looks_alive() && resource.is_alive());
    let text = logs(&recorder);
    assert!(text.contains(&(LogLevel::Information, "Online: ownership epoch 42.".to_string())), "{text:?}");
    assert!(
        text.contains(&(
            LogLevel::Information,
            "Online: web serves on port 9090 after 3 steps (100% done).".to_string()
        )),
        "{text:?}"
    );

    // While online, SET answers that the properties take effect at the next online.
    let (status, _) = control(
        &*resource,
        CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES,
        &list(PropertyList::new().with("OnlineSteps", ValueData::Dword(5))),
    );
    assert_eq!(status, Status::ERROR_RESOURCE_PROPERTIES_STORED);

    // A user code's buffer passes byte for byte: the DLL's own WCHAR (UTF-32) text.
    let (status, out) = control(&*resource, DEMO_GET_STATUS, &[]);
    assert_eq!(status, Status::ERROR_SUCCESS);
    let units: Vec<u32> = out.chunks_exact(4).map(|u| u32::from_ne_bytes([u[0], u[1], u[2], u[3]])).collect();
    let status_text: String = units.iter().take_while(|&&u| u != 0).filter_map(|&u| char::from_u32(u)).collect();
    assert_eq!(status_text, "web online=1 port=9090 onlines=1");

    // Offline with a destination: it arrives wide, flags as given.
    let flags = OfflineFlags::DO_NOT_UPDATE_PERSISTENT_STATE | OfflineFlags::RETURN_TO_SOURCE_NODE_ON_ERROR;
    assert_eq!(resource.offline_v2(Some("nœud-b"), flags, &[]), Status::ERROR_SUCCESS);
    assert!(!resource.is_alive());
    assert!(logs(&recorder).contains(&(LogLevel::Information, "Offline: destination nœud-b, flags 0x42.".to_string())));
    resource.close();
    assert_eq!(logs(&recorder).last(), Some(&(LogLevel::Information, "Close: démo-1.".to_string())));
}

#[test]
fn a_missing_required_property_fails_online_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let ty = demo_type(dir.path());
    let recorder = Recorder::new();
    let resource = open(&ty, "bare", &Parameters::new(PropertyList::new()), &recorder);
    assert_eq!(resource.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_FILE_NOT_FOUND);
    assert!(
        logs(&recorder)
            .contains(&(LogLevel::Error, "Online: unable to read the 'ServiceName' property. Error: 2.".to_string()))
    );
}

#[test]
fn terminate_stops_a_pending_online_worker() {
    let dir = tempfile::tempdir().unwrap();
    let ty = demo_type(dir.path());
    let recorder = Recorder::new();
    // Every status report is answered "terminated": the worker must stop at its first report.
    recorder.terminated.store(true, std::sync::atomic::Ordering::SeqCst);
    let params = Parameters::new(
        PropertyList::new().with("ServiceName", ValueData::Sz("db".into())).with("OnlineSteps", ValueData::Dword(50)),
    );
    let resource = open(&ty, "db", &params, &recorder);
    assert_eq!(resource.online_v2(OnlineFlags::empty(), &[]), Status::ERROR_IO_PENDING);
    resource.terminate();
    let reports = recorder.events().into_iter().filter(|e| matches!(e, Event::Status(_))).count();
    assert!(reports <= 1, "the worker stopped at ExitState::Terminate, made {reports} reports");
    assert!(!resource.is_alive());
}

#[test]
fn startup_refuses_another_type_name() {
    let dir = tempfile::tempdir().unwrap();
    let so =
        compile_compat(&[repo_root().join("examples/windows-style/demo_service.c")], &dir.path().join("d.so"), true);
    let ty = NativeResourceType::new(NativeLibrary::load(&so).unwrap());
    assert_eq!(ty.start("Another Type").unwrap_err().status(), Status::ERROR_CLUSTER_RESNAME_NOT_FOUND);
    // ResUtilResourceTypesEqual ignores case, as on Windows.
    let ty = NativeResourceType::new(NativeLibrary::load(&so).unwrap());
    ty.start("halo demo service").unwrap();
}

#[test]
fn log_event_formats_message_inserts() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile_compat(
        &[Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/wide_log.c")],
        &dir.path().join("libwide_log.so"),
        true,
    );
    let ty = NativeResourceType::new(NativeLibrary::load(&so).unwrap());
    ty.startup("wide-log").expect("StartupEx gets a wide type name");
    let recorder = Recorder::new();
    let _resource = open(&ty, "wé", &Parameters::default(), &recorder);
    assert_eq!(
        logs(&recorder),
        [
            (LogLevel::Information, "name=wé flags=1".to_string()),
            (LogLevel::Warning, "ws=wé s=s hs=narrow S=S ls=l".to_string()),
            (LogLevel::Error, "u=4000000000 d=-7 x=ff X=0000BEEF lu=42 I64=1099511627776 ll=-5".to_string()),
            (LogLevel::Information, "pad=[   42] [7   ] c=ß %\n\t .! end".to_string()),
            (LogLevel::Information, "second before first".to_string()),
            (LogLevel::Information, "keep".to_string()),
            (LogLevel::Information, "star=[    12]".to_string()),
        ]
    );
}
