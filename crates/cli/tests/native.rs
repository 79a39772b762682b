//! The `native` type through a real host: the C sample plug-in, compiled with `cc`, brought
//! online (pending, checkpoints) and offline with a destination and flags.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{compile_sample, manager, spec};
use halo_host::protocol::TypeSpec;
use resapi::ResourceState;

#[tokio::test]
async fn the_c_sample_runs_in_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile_sample(dir.path());
    let record = dir.path().join("record");
    let (m, mut ev) = manager();
    let native = TypeSpec::Native { path: so.clone(), type_name: "halo-sample".into() };
    let props = [("RecordFile", record.to_str().unwrap()), ("Checkpoints", "3")];
    m.open(spec(1, native.clone(), &props)).await.unwrap();
    m.online(1, 0, vec![]).unwrap();
    ev.state(1, ResourceState::Online).await;
    let pending: Vec<u32> =
        ev.states(1).iter().filter(|(s, c)| *s == ResourceState::OnlinePending && *c > 0).map(|(_, c)| *c).collect();
    assert_eq!(pending, [1, 2, 3]);
    m.offline(1, Some("node-b".into()), 0x46, vec![]).unwrap();
    ev.state(1, ResourceState::Offline).await;
    m.close(1).unwrap();
    ev.until("closed", |e| {
        matches!(e, halo_host::client::HostEvent::Fact(halo_host::protocol::FromHost::Closed { id: 1 }))
    })
    .await;
    let lines = std::fs::read_to_string(&record).unwrap();
    assert!(lines.contains("offline destination=node-b flags=0x46 inbuffer=0"), "{lines}");
    assert!(lines.ends_with("close\n"), "{lines}");

    // A type the plug-in does not serve is refused at open with the plug-in's own status.
    let other = TypeSpec::Native { path: so, type_name: "not-mine".into() };
    let err = m.open(spec(2, other, &props)).await.unwrap_err();
    assert_eq!(err.status, resapi::Status::ERROR_CLUSTER_RESNAME_NOT_FOUND);
}
