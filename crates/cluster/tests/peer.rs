//! Members over the real TCP peer channel, on loopback: a node forms a cluster, two join through
//! whichever member they are told of, writes made anywhere reach the leader, a restarted member
//! rejoins from its data directory, and an evicted node leaves the membership and the registry.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::transport::{PeerMessage, PeerReply, Transport};
use halo_cluster::{BootOptions, ClusterDb, PeerTls, TcpTransport};
use halo_security::{ClusterCa, NodeIdentity};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;

const WAIT: Duration = Duration::from_secs(10);

fn options(name: &str, join: Option<String>, token: Option<String>) -> BootOptions {
    BootOptions { name: name.into(), api_addr: format!("api-of-{name}"), join, token, tls_names: vec![] }
}

async fn try_boot(dir: &Path, options: BootOptions) -> Result<(ClusterDb, String), halo_cluster::ClusterError> {
    let peers = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = peers.local_addr().unwrap().to_string();
    Ok((ClusterDb::boot(dir, peers, options).await?, addr))
}

/// Boots `name`; a node joining gets a one-use token from `via` first.
async fn boot(dir: &Path, name: &str, join: Option<(String, &ClusterDb)>) -> (ClusterDb, String) {
    let (join, token) = match join {
        Some((addr, via)) => (Some(addr), Some(via.create_join_token(600, 1, "test").await.unwrap())),
        None => (None, None),
    };
    try_boot(dir, options(name, join, token)).await.unwrap()
}

/// A transport presenting `identity`'s certificate.
fn transport_of(identity: &NodeIdentity) -> TcpTransport {
    TcpTransport::new(Arc::new(PeerTls::new(identity).unwrap()))
}

async fn voters(db: &ClusterDb, n: usize) {
    db.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().voter_ids().count() == n, "the voters")
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nodes_form_join_forward_rejoin_and_evict_over_tcp() {
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, a_addr) = boot(dirs[0].path(), "a", None).await;
    assert!(a.is_leader());
    let (b, _) = boot(dirs[1].path(), "b", Some((a_addr.clone(), &a))).await;
    // c knows only b, a follower: b passes the request on to the leader.
    let (b_addr, _) = b.members()[&b.node_id()].clone();
    let (c, _) = boot(dirs[2].path(), "c", Some((b_addr, &b))).await;
    voters(&a, 3).await;
    let mut ids: Vec<(String, u64, String)> =
        a.nodes().unwrap().into_iter().map(|n| (n.name, n.id, n.api_addr)).collect();
    ids.sort();
    assert_eq!(
        ids,
        [("a".into(), 1, "api-of-a".into()), ("b".into(), 2, "api-of-b".into()), ("c".into(), 3, "api-of-c".into())]
    );

    // A write on a follower is committed by the leader and visible on the follower at once.
    let revision = c.put("k", b"v".to_vec()).await.unwrap();
    assert_eq!(c.get("k").unwrap().unwrap().revision, revision);

    // c restarts with its directory (and a new port): it rejoins as itself, with its new address.
    c.shutdown().await.unwrap();
    drop(c);
    let (c, c_addr) = boot(dirs[2].path(), "c", None).await;
    assert_eq!(c.node_id(), 3);
    a.raft()
        .wait(Some(WAIT))
        .metrics(
            |m| m.membership_config.membership().get_node(&3).is_some_and(|n| n.addr == c_addr),
            "c's new address is recorded",
        )
        .await
        .unwrap();
    let revision = a.put("k2", b"v".to_vec()).await.unwrap();
    c.raft().wait(Some(WAIT)).applied_index_at_least(Some(revision), "c catches up").await.unwrap();

    // A directory belongs to its node.
    let peers = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let options = options("x", None, None);
    c.shutdown().await.unwrap();
    drop(c);
    let err = ClusterDb::boot(dirs[2].path(), peers, options).await.err().unwrap();
    assert!(err.to_string().contains("belongs to node \"c\""), "{err}");

    // Evicting c (asked on b, a follower) removes it from the membership and the registry.
    b.evict("c").await.unwrap();
    voters(&a, 2).await;
    a.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_node(&3).is_none(), "c is gone")
        .await
        .unwrap();
    assert!(a.nodes().unwrap().iter().all(|n| n.name != "c"));
    // From then on its certificate is refused by every member, whatever it asks.
    let evicted = NodeIdentity::load(dirs[2].path()).unwrap().unwrap();
    let promote = halo_cluster::PromoteRequest {
        id: 3,
        node: halo_cluster::JoinRequest { name: "c".into(), peer_addr: "x".into(), api_addr: "y".into() },
    };
    for message in [PeerMessage::Ping, PeerMessage::Promote(promote)] {
        match transport_of(&evicted).send(1, &a_addr, message).await.unwrap() {
            PeerReply::Refused(m) => assert!(m.contains("revoked"), "{m}"),
            other => panic!("an evicted node was answered: {other:?}"),
        }
    }
    let err = b.evict("nobody").await.unwrap_err();
    assert_eq!(err.to_string(), "no node named \"nobody\" is in the cluster");
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_node_directory_from_before_clusters_boots_as_node_1() {
    let dir = tempfile::tempdir().unwrap();
    // As an older halo left it: a one-member database, no node.json, no node registry.
    let old = ClusterDb::open(dir.path(), "127.0.0.1:7480").await.unwrap();
    let revision = old.put("group/web", b"{}".to_vec()).await.unwrap();
    old.shutdown().await.unwrap();
    drop(old);
    let (db, addr) = boot(dir.path(), "legacy", None).await;
    assert_eq!(db.node_id(), 1);
    assert_eq!(db.get("group/web").unwrap().map(|r| r.revision), Some(revision));
    // It registers itself and records its peer address once it leads again.
    db.raft()
        .wait(Some(WAIT))
        .metrics(|m| m.membership_config.membership().get_node(&1).is_some_and(|n| n.addr == addr), "the new address")
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + WAIT;
    while db.nodes().unwrap().iter().all(|n| n.name != "legacy") {
        assert!(tokio::time::Instant::now() < deadline, "never registered");
        // The registration is a write the background rejoin makes; the feed says when.
        let mut watch = db.watch(db.snapshot().unwrap().revision).unwrap();
        let _ = tokio::time::timeout(Duration::from_millis(500), watch.next()).await;
    }
    db.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_a_valid_token_or_a_certificate_of_the_cluster_gets_in() {
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let (a, a_addr) = boot(dirs[0].path(), "a", None).await;
    let ca_pem = a.ca_cert().unwrap().unwrap();
    let before = a.snapshot().unwrap().revision;

    // No token: refused before anything is sent.
    let err = try_boot(dirs[1].path(), options("b", Some(a_addr.clone()), None)).await.err().unwrap();
    assert!(err.to_string().contains("needs a join token"), "{err}");

    // A token of the right form with a wrong secret.
    let good = a.create_join_token(600, 1, "test").await.unwrap();
    let parsed = halo_security::token::JoinToken::parse(&good).unwrap();
    let forged =
        halo_security::token::JoinToken { secret: halo_security::token::new_secret().unwrap(), ..parsed.clone() };
    let err = try_boot(dirs[1].path(), options("b", Some(a_addr.clone()), Some(forged.reveal()))).await.err().unwrap();
    assert!(err.to_string().contains("unknown, used up or deleted join token"), "{err}");

    // A token naming another cluster's CA: the handshake fails, the secret is never sent.
    let other_ca = ClusterCa::generate("other").unwrap();
    let elsewhere =
        halo_security::token::JoinToken { ca_fingerprint: other_ca.fingerprint().unwrap(), ..parsed.clone() };
    let err =
        try_boot(dirs[1].path(), options("b", Some(a_addr.clone()), Some(elsewhere.reveal()))).await.err().unwrap();
    assert!(err.to_string().contains("CA"), "{err}");

    // The good token works once; a replay of the same join is refused.
    let (b, _) = try_boot(dirs[1].path(), options("b", Some(a_addr.clone()), Some(good.clone()))).await.unwrap();
    let err = try_boot(dirs[2].path(), options("c", Some(a_addr.clone()), Some(good))).await.err().unwrap();
    assert!(err.to_string().contains("unknown, used up or deleted join token"), "{err}");

    // An expired token.
    let expired = a.create_join_token(600, 1, "test").await.unwrap();
    let id = halo_security::token::JoinToken::parse(&expired).unwrap().id;
    let key = format!("{}{id}", halo_cluster::access::JOIN_TOKENS);
    let mut record: halo_cluster::access::JoinTokenRecord =
        serde_json::from_slice(&a.get(&key).unwrap().unwrap().value).unwrap();
    record.expires_at = halo_security::unix_now() - 1;
    a.put(&key, serde_json::to_vec(&record).unwrap()).await.unwrap();
    let err = try_boot(dirs[2].path(), options("c", Some(a_addr.clone()), Some(expired))).await.err().unwrap();
    assert!(err.to_string().contains("has expired"), "{err}");

    // A certificate of another CA fails the handshake: no message is answered.
    let (key_pem, csr) = halo_security::ca::node_key_and_request("a", &[]).unwrap();
    let stranger =
        NodeIdentity { ca_pem: other_ca.cert_pem().into(), cert_pem: other_ca.issue("a", &csr).unwrap().pem, key_pem };
    assert!(transport_of(&stranger).send(1, &a_addr, PeerMessage::Ping).await.is_err());

    // Without a certificate, only enrollment is answered.
    let fingerprint = halo_security::tls::cert_fingerprint(&ca_pem).unwrap();
    match halo_cluster::peer::send_anonymous(&a_addr, &fingerprint, &PeerMessage::Ping).await.unwrap() {
        PeerReply::Refused(m) => assert!(m.contains("certificate"), "{m}"),
        other => panic!("answered without a certificate: {other:?}"),
    }

    // Garbage where a handshake should be (seeded, so a failure replays): every connection is
    // dropped, and the node goes on serving.
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..200 {
        use tokio::io::AsyncWriteExt;
        let mut bytes = vec![0u8; 1 + (round * 37) % 600];
        for b in &mut bytes {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
        // Some rounds look like the start of a TLS record, so the fuzz reaches past the first byte.
        if round % 2 == 0 {
            bytes[0] = 0x16;
        }
        let mut s = tokio::net::TcpStream::connect(&a_addr).await.unwrap();
        let _ = s.write_all(&bytes).await;
        let _ = s.shutdown().await;
    }
    let revision = b.put("still", b"here".to_vec()).await.unwrap();
    assert!(revision > before);
    assert!(a.nodes().unwrap().iter().all(|n| n.name == "a" || n.name == "b"), "nobody else got in");
    b.shutdown().await.unwrap();
    a.shutdown().await.unwrap();
}
