//! The `peer_frame` fuzz target's invariants as a seeded proptest, so that `cargo test` runs
//! them where cargo-fuzz cannot build. Peer-channel frames (4-byte big-endian length, JSON; the
//! TLS around them is not the decoder's business), arbitrary or made of valid messages and
//! replies and then damaged, are read with a member's limit and an anonymous caller's. Reading
//! never panics; a length over the limit is refused before its body is read or a buffer for it
//! allocated; a frame read consumes exactly its length and body; what decodes round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_cluster::access::{EnrollReply, EnrollRequest};
use halo_cluster::peer::{MAX_ANONYMOUS_FRAME, MAX_FRAME, read_frame, write_frame};
use halo_cluster::transport::{PeerMessage, PeerReply, Refusal};
use halo_cluster::{Batch, Compare, JoinRequest, Op, PromoteRequest, Request, Response, TypeConfig};
use openraft::error::{Fatal, RaftError};
use openraft::raft::{
    AppendEntriesRequest, AppendEntriesResponse, InstallSnapshotRequest, InstallSnapshotResponse, VoteRequest,
    VoteResponse,
};
use openraft::{
    BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, Membership, SnapshotMeta, StoredMembership, Vote,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

/// Fixed seed and no regression files: CI runs the same cases every time.
use halo_fuzzkit::{budget, peak_during, ready};

// Counts the bytes each thread holds, for `peak_during`.
#[global_allocator]
static ALLOCATOR: halo_fuzzkit::Counting = halo_fuzzkit::Counting;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x5045_4552), failure_persistence: None, ..Config::default() }
}

const LIMITS: [usize; 2] = [MAX_ANONYMOUS_FRAME, MAX_FRAME];

/// Reads one `T` frame from `data` with `limit`, checking what the fuzz target checks; the
/// message read, as JSON.
fn frame<T: Serialize + DeserializeOwned>(
    data: &[u8],
    limit: usize,
) -> Result<Option<serde_json::Value>, TestCaseError> {
    let claimed = data.get(..4).map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize);
    let mut rest = data;
    let (result, peak) = peak_during(|| ready(read_frame::<_, T>(&mut rest, limit)));
    let frame_buffer = claimed.filter(|c| *c <= limit).unwrap_or(0);
    prop_assert!(peak <= frame_buffer + budget(data.len()), "peak {} for {} bytes", peak, data.len());
    match result {
        Ok(message) => {
            let len = claimed.unwrap();
            prop_assert!(len <= limit);
            prop_assert_eq!(rest.len(), data.len() - 4 - len, "a frame consumes its length and body");
            // openraft's replies are not PartialEq: compare as JSON.
            let json = serde_json::to_value(&message).expect("a decoded message serializes");
            let mut out = Vec::new();
            ready(write_frame(&mut out, &message)).expect("a decoded message re-encodes");
            let again: T = ready(read_frame(&mut out.as_slice(), MAX_FRAME)).expect("a re-encoded frame decodes");
            prop_assert_eq!(serde_json::to_value(&again).unwrap(), json.clone());
            Ok(Some(json))
        }
        Err(e) => {
            if claimed.is_some_and(|c| c > limit) {
                prop_assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                prop_assert_eq!(rest.len(), data.len() - 4, "an over-limit body is not read");
            }
            Ok(None)
        }
    }
}

/// Both message types, both limits.
fn every_way(data: &[u8]) -> Result<(), TestCaseError> {
    for limit in LIMITS {
        frame::<PeerMessage>(data, limit)?;
        frame::<PeerReply>(data, limit)?;
    }
    Ok(())
}

fn text() -> impl Strategy<Value = String> {
    // Any characters, controls and astral ones included: JSON escaping is part of the frame.
    proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

/// The raw material of one message; `message` and `reply` shape it by `kind`. One flat tuple is
/// much cheaper to generate in a debug build than a union of per-variant strategies.
type Seed = (u8, [u64; 4], bool, String, String, Vec<u8>, Vec<u64>);

fn seed() -> impl Strategy<Value = Seed> {
    (any::<u8>(), any::<[u64; 4]>(), any::<bool>(), text(), text(), bytes(), proptest::collection::vec(0u64..8, 0..4))
}

fn log_id(term: u64, index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(term, term % 7), index)
}

fn membership(ids: &[u64], addr: &str) -> Membership<u64, BasicNode> {
    let voters: BTreeSet<u64> = ids.iter().copied().collect();
    let nodes: BTreeMap<u64, BasicNode> = ids.iter().map(|i| (*i, BasicNode { addr: format!("{addr}{i}") })).collect();
    Membership::new(vec![voters], nodes)
}

fn request(a: u64, s: &str, data: &[u8]) -> Request {
    Request {
        compare: vec![Compare { key: s.to_string(), revision: (a % 2 == 0).then_some(a) }],
        ops: vec![Op::Put { key: s.to_string(), value: data.to_vec() }, Op::Delete { key: format!("{s}/x") }],
    }
}

fn message((kind, [a, b, c, d], flag, s, t, data, ids): Seed) -> PeerMessage {
    let vote = Vote::new(a, b % 7);
    match kind % 11 {
        0 => {
            let entry = |i: u64| Entry::<TypeConfig> {
                log_id: log_id(a, c + i),
                payload: match i % 3 {
                    0 => EntryPayload::Blank,
                    1 => EntryPayload::Normal(Batch(vec![request(d, &s, &data)])),
                    _ => EntryPayload::Membership(membership(&ids, &t)),
                },
            };
            PeerMessage::AppendEntries(AppendEntriesRequest {
                vote,
                prev_log_id: flag.then(|| log_id(a, c)),
                entries: (0..d % 4).map(entry).collect(),
                leader_commit: (!flag).then(|| log_id(b, d)),
            })
        }
        1 => PeerMessage::Vote(VoteRequest::new(vote, flag.then(|| log_id(c, d)))),
        2 => PeerMessage::InstallSnapshot(InstallSnapshotRequest {
            vote,
            meta: SnapshotMeta {
                last_log_id: flag.then(|| log_id(c, d)),
                last_membership: StoredMembership::new(Some(log_id(c, d)), membership(&ids, &t)),
                snapshot_id: s,
            },
            offset: c,
            data,
            done: flag,
        }),
        3 => PeerMessage::Write(request(c, &s, &data)),
        4 => PeerMessage::Enroll(EnrollRequest { token_id: s.clone(), token_secret: t.clone(), name: s, csr_pem: t }),
        5 => PeerMessage::Renew { csr_pem: s },
        6 => PeerMessage::Join(JoinRequest { name: s, peer_addr: t.clone(), api_addr: t }),
        7 => PeerMessage::Promote(PromoteRequest {
            id: c,
            node: JoinRequest { name: s, peer_addr: t.clone(), api_addr: t },
        }),
        8 => PeerMessage::Evict { name: s },
        9 => PeerMessage::App(data),
        _ => PeerMessage::Ping,
    }
}

fn reply((kind, [a, b, c, d], flag, s, t, data, _): Seed) -> PeerReply {
    let vote = Vote::new(a, b % 7);
    let refusal =
        if flag { Refusal::NotLeader { leader_id: (c % 2 == 0).then_some(c) } } else { Refusal::Failed(s.clone()) };
    let refuse = d % 3 == 0;
    match kind % 12 {
        0 => PeerReply::AppendEntries(Ok(match c % 4 {
            0 => AppendEntriesResponse::Success,
            1 => AppendEntriesResponse::PartialSuccess(flag.then(|| log_id(a, d))),
            2 => AppendEntriesResponse::Conflict,
            _ => AppendEntriesResponse::HigherVote(vote),
        })),
        1 if refuse => PeerReply::Vote(Err(RaftError::Fatal(Fatal::Stopped))),
        1 => PeerReply::Vote(Ok(VoteResponse::new(vote, flag.then(|| log_id(c, d)), flag))),
        2 => PeerReply::InstallSnapshot(Ok(InstallSnapshotResponse { vote })),
        3 if refuse => PeerReply::Write(Err(refusal)),
        3 => PeerReply::Write(Ok(if flag {
            Response::Applied { revision: c }
        } else {
            Response::Conflict { key: s, expected: Some(c), actual: None }
        })),
        4 if refuse => PeerReply::Enrolled(Err(refusal)),
        4 => PeerReply::Enrolled(Ok(EnrollReply { cert_pem: s, ca_pem: t })),
        5 => PeerReply::Renewed(if refuse { Err(refusal) } else { Ok(t) }),
        6 => PeerReply::Refused(s),
        7 => PeerReply::Joined(if refuse { Err(refusal) } else { Ok(c) }),
        8 => PeerReply::Promoted(if refuse { Err(refusal) } else { Ok(flag) }),
        9 => PeerReply::Evicted(if refuse { Err(refusal) } else { Ok(()) }),
        10 => PeerReply::App(if refuse { Err(refusal) } else { Ok(data) }),
        _ => PeerReply::Pong { leader_heard_ms_ago: flag.then_some(c) },
    }
}

fn encode<T: Serialize>(message: &T) -> Vec<u8> {
    let mut out = Vec::new();
    ready(write_frame(&mut out, message)).unwrap();
    out
}

/// What a fuzzer does to a valid frame.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte.
    Flip(Index, u8),
    /// Replace the length with a value near a limit or off by a little.
    Length(LengthKind),
    /// Cut the frame short.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum LengthKind {
    Max,
    OverAnonymous,
    AtAnonymous,
    OverMember,
    AtMember,
    Plus(u32),
    Minus(u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let length = prop_oneof![
        Just(LengthKind::Max),
        Just(LengthKind::OverAnonymous),
        Just(LengthKind::AtAnonymous),
        Just(LengthKind::OverMember),
        Just(LengthKind::AtMember),
        (1u32..64).prop_map(LengthKind::Plus),
        (1u32..64).prop_map(LengthKind::Minus),
    ];
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        length.prop_map(Mutation::Length),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Length(kind) if bytes.len() >= 4 => {
                let len = u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                let new = match kind {
                    LengthKind::Max => u32::MAX,
                    LengthKind::OverAnonymous => MAX_ANONYMOUS_FRAME as u32 + 1,
                    LengthKind::AtAnonymous => MAX_ANONYMOUS_FRAME as u32,
                    LengthKind::OverMember => MAX_FRAME as u32 + 1,
                    LengthKind::AtMember => MAX_FRAME as u32,
                    LengthKind::Plus(n) => len.saturating_add(*n),
                    LengthKind::Minus(n) => len.saturating_sub(*n),
                };
                bytes[..4].copy_from_slice(&new.to_be_bytes());
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Mutation::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
            Mutation::Flip(..) | Mutation::Length(..) => {}
        }
    }
    bytes
}

/// Replaces the `at`-th node (in pre-order) of `value` with `with`: a well-formed JSON document
/// of the wrong shape, which byte flips rarely produce.
fn replace_node(value: &mut serde_json::Value, at: &mut usize, with: &serde_json::Value) -> bool {
    if *at == 0 {
        *value = with.clone();
        return true;
    }
    *at -= 1;
    match value {
        serde_json::Value::Array(items) => items.iter_mut().any(|v| replace_node(v, at, with)),
        serde_json::Value::Object(fields) => fields.values_mut().any(|v| replace_node(v, at, with)),
        _ => false,
    }
}

fn count_nodes(value: &serde_json::Value) -> usize {
    1 + match value {
        serde_json::Value::Array(items) => items.iter().map(count_nodes).sum(),
        serde_json::Value::Object(fields) => fields.values().map(count_nodes).sum(),
        _ => 0,
    }
}

fn wrong_value() -> impl Strategy<Value = serde_json::Value> {
    prop_oneof![
        Just(json!(null)),
        Just(json!(true)),
        Just(json!(-1)),
        Just(json!(u64::MAX)),
        Just(json!(1.5)),
        Just(json!("")),
        Just(json!("AA==")),
        Just(json!("not base64!")),
        Just(json!([])),
        Just(json!([0, 255, 256])),
        Just(json!({})),
        Just(json!("Ping")),
        Just(json!({"Evict": {"name": "n"}})),
        Just(json!({"term": 1, "node_id": 1})),
    ]
}

/// One message as a frame whose JSON has one node replaced (the length is right).
fn reshaped<T: Serialize>(message: &T, at: Index, with: &serde_json::Value) -> Vec<u8> {
    let mut value = serde_json::to_value(message).unwrap();
    let mut k = at.index(count_nodes(&value));
    replace_node(&mut value, &mut k, with);
    let body = serde_json::to_vec(&value).unwrap();
    [(body.len() as u32).to_be_bytes().as_slice(), &body].concat()
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        every_way(&data)?;
    }

    #[test]
    fn arbitrary_bodies_with_their_true_length(body in proptest::collection::vec(any::<u8>(), 0..128)) {
        every_way(&[(body.len() as u32).to_be_bytes().as_slice(), &body].concat())?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn valid_frames_read_back(seed in seed()) {
        let m = message(seed.clone());
        let read = frame::<PeerMessage>(&encode(&m), MAX_FRAME)?;
        prop_assert_eq!(read, Some(serde_json::to_value(&m).unwrap()));
        let r = reply(seed);
        let read = frame::<PeerReply>(&encode(&r), MAX_FRAME)?;
        prop_assert_eq!(read, Some(serde_json::to_value(&r).unwrap()));
    }

    #[test]
    fn damaged_frames(seed in seed(), mutations in proptest::collection::vec(mutation(), 1..4)) {
        every_way(&mutate(encode(&message(seed.clone())), &mutations))?;
        every_way(&mutate(encode(&reply(seed)), &mutations))?;
    }

    #[test]
    fn frames_of_the_wrong_shape(seed in seed(), at in any::<Index>(), with in wrong_value()) {
        every_way(&reshaped(&message(seed.clone()), at, &with))?;
        every_way(&reshaped(&reply(seed), at, &with))?;
    }
}

#[test]
fn lengths_at_and_over_the_limits_cost_at_most_the_limit() {
    for limit in LIMITS {
        let at = (limit as u32).to_be_bytes();
        let (result, peak) = peak_during(|| ready(read_frame::<_, PeerMessage>(&mut at.as_slice(), limit)));
        assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::UnexpectedEof);
        assert!(peak <= limit + budget(4), "peak {peak}");
        let over = (limit as u32 + 1).to_be_bytes();
        let (result, peak) = peak_during(|| ready(read_frame::<_, PeerMessage>(&mut over.as_slice(), limit)));
        assert_eq!(result.unwrap_err().kind(), std::io::ErrorKind::InvalidData);
        assert!(peak <= budget(4), "peak {peak}");
    }
}
