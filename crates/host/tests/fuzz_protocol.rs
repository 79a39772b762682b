//! The `host_protocol` fuzz target's invariants as a seeded proptest, so that `cargo test` runs
//! them where cargo-fuzz cannot build. Streams of frames, arbitrary or made of valid messages
//! and then damaged (flipped bytes, cuts, oversized or wrong length fields, JSON values of the
//! wrong type), are read the way each side reads them. Reading never panics; a frame read
//! consumes exactly its length and body; a length over `MAX_FRAME` is refused and never costs
//! more than `MAX_FRAME`; the blocking and async readers agree; what decodes round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_host::protocol::{
    Cause, FrameError, FromHost, MAX_FRAME, Timeouts, ToHost, TypeSpec, encode_frame, read_frame, tokio_io,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::fmt::Debug;

/// Fixed seed and no regression files: CI runs the same cases every time.
use halo_fuzzkit::{budget, peak_during, ready};

// Counts the bytes each thread holds, for `peak_during`.
#[global_allocator]
static ALLOCATOR: halo_fuzzkit::Counting = halo_fuzzkit::Counting;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x484f_5354), failure_persistence: None, ..Config::default() }
}

/// Reads `data` as a stream of `T` frames, checking every frame; returns the messages read.
fn stream<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) -> Result<Vec<T>, TestCaseError> {
    let mut rest = data;
    let mut read = Vec::new();
    loop {
        let before = rest;
        let claimed = before.get(..4).map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let (result, peak) = peak_during(|| read_frame::<T>(&mut rest));
        let frame_buffer = claimed.unwrap_or(0).min(MAX_FRAME);
        prop_assert!(peak <= frame_buffer + budget(before.len()), "peak {} for {} bytes", peak, before.len());
        let async_result = ready(tokio_io::read_frame::<T>(&mut &before[..]));
        match result {
            Ok(message) => {
                let len = claimed.unwrap();
                prop_assert_eq!(rest.len(), before.len() - 4 - len, "a frame consumes its length and body");
                prop_assert_eq!(async_result.as_ref().ok(), Some(&message), "both readers read the same");
                let frame = encode_frame(&message).expect("a decoded message re-encodes");
                prop_assert_eq!(&read_frame::<T>(&mut frame.as_slice()).expect("re-encoded frame decodes"), &message);
                read.push(message);
            }
            Err(e) => {
                match &e {
                    FrameError::Closed => prop_assert!(before.len() < 4, "closed with {} bytes left", before.len()),
                    FrameError::TooLarge(n) => prop_assert!(*n > MAX_FRAME && claimed == Some(*n)),
                    FrameError::Io(_) | FrameError::Malformed(_) => {}
                }
                let async_err = async_result.expect_err("both readers refuse the frame");
                prop_assert_eq!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(&async_err),
                    "{} / {}",
                    e,
                    async_err
                );
                return Ok(read);
            }
        }
    }
}

fn text() -> impl Strategy<Value = String> {
    // Any characters, controls and astral ones included: JSON escaping is part of the frame.
    proptest::collection::vec(any::<char>(), 0..8).prop_map(String::from_iter)
}

fn bytes() -> impl Strategy<Value = Vec<u8>> {
    proptest::collection::vec(any::<u8>(), 0..12)
}

/// The raw material of one message; `to_host` and `from_host` shape it by `kind`. One flat
/// tuple is much cheaper to generate in a debug build than a union of per-variant strategies.
type Seed = (u8, u64, u64, [u32; 4], i32, bool, Option<String>, String, Vec<u8>);

fn seed() -> impl Strategy<Value = Seed> {
    (
        any::<u8>(),
        any::<u64>(),
        any::<u64>(),
        any::<[u32; 4]>(),
        any::<i32>(),
        any::<bool>(),
        proptest::option::of(text()),
        text(),
        bytes(),
    )
}

fn to_host((kind, id, n, [a, b, c, d], _, flag, maybe, s, data): Seed) -> ToHost {
    let timeouts = Timeouts { pending_ms: a, deadlock_ms: b, looks_alive_ms: c, is_alive_ms: d };
    let type_spec = match a % 5 {
        0 => TypeSpec::Dummy,
        1 => TypeSpec::Process,
        2 => TypeSpec::Script,
        3 => TypeSpec::Ocf,
        _ => TypeSpec::Native { path: s.clone(), type_name: maybe.clone().unwrap_or_default() },
    };
    match kind % 11 {
        0 => ToHost::Hello { version: a, cgroup: maybe },
        1 => ToHost::Open { id, name: s, type_spec, properties: data, flags: b, timeouts },
        2 => ToHost::Online { id, flags: a, input: data },
        3 => ToHost::Offline { id, destination: maybe, flags: a, input: data },
        4 => ToHost::Terminate { id },
        5 => ToHost::Control { id, call: n, code: a, input: data, output_size: b },
        6 => ToHost::Check { id, is_alive: flag },
        7 => ToHost::Cancel { id },
        8 => ToHost::Update { id, properties: data, timeouts },
        9 => ToHost::Close { id },
        _ => ToHost::Lease { duration_ms: n },
    }
}

fn from_host((kind, id, n, [a, b, c, d], state, flag, _, s, data): Seed) -> FromHost {
    let causes = [
        Cause::Resource,
        Cause::CallFailed,
        Cause::PendingTimeout,
        Cause::HealthCheck,
        Cause::LeaseExpired,
        Cause::Terminated,
        Cause::HostDied,
    ];
    match kind % 15 {
        0 => FromHost::Hello { version: a, pid: b },
        1 => FromHost::Opened { id, status: a, message: s },
        2 => FromHost::State {
            id,
            state,
            checkpoint: a,
            status: b,
            application_code: c,
            flags: d,
            cause: causes[a as usize % causes.len()],
        },
        3 => FromHost::Unhealthy { id, check: s },
        4 => FromHost::Checked { id, check: s, alive: flag },
        5 => FromHost::Log { id, level: a, message: s },
        6 => FromHost::LockedMode { id, locked: flag, reason: a },
        7 => FromHost::FailureSignal { id, failure_type: a, code: b },
        8 => FromHost::ControlDone { call: n, status: a, output: data, bytes_returned: b },
        9 => FromHost::Closed { id },
        10 => FromHost::Deadlock { id, entry_point: s, elapsed_ms: n },
        11 => FromHost::Crashed { id, entry_point: s },
        12 => FromHost::Heartbeat,
        13 => FromHost::ProcessGroup { id, pgid: a },
        _ => FromHost::Rejected { id, status: a, message: s },
    }
}

/// Frames for `messages`, back to back, and where each frame starts.
fn frames<T: Serialize>(messages: &[T]) -> (Vec<u8>, Vec<usize>) {
    let mut out = Vec::new();
    let mut starts = Vec::new();
    for m in messages {
        starts.push(out.len());
        out.extend_from_slice(&encode_frame(m).unwrap());
    }
    (out, starts)
}

/// What a fuzzer does to a valid stream.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte.
    Flip(Index, u8),
    /// Replace one frame's length with a value near a limit or off by a little.
    Length(Index, LengthKind),
    /// Cut the stream short.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
}

#[derive(Debug, Clone, Copy)]
enum LengthKind {
    Max,
    OverLimit,
    AtLimit,
    Plus(u32),
    Minus(u32),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let length = prop_oneof![
        Just(LengthKind::Max),
        Just(LengthKind::OverLimit),
        Just(LengthKind::AtLimit),
        (1u32..64).prop_map(LengthKind::Plus),
        (1u32..64).prop_map(LengthKind::Minus),
    ];
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<Index>(), length).prop_map(|(i, l)| Mutation::Length(i, l)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, starts: &[usize], mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(i, x) if !bytes.is_empty() => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Length(i, kind) if !starts.is_empty() => {
                let at = starts[i.index(starts.len())];
                let Some(header) = bytes.get_mut(at..at + 4) else { continue };
                let len = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
                let new = match kind {
                    LengthKind::Max => u32::MAX,
                    LengthKind::OverLimit => MAX_FRAME as u32 + 1,
                    LengthKind::AtLimit => MAX_FRAME as u32,
                    LengthKind::Plus(n) => len.saturating_add(*n),
                    LengthKind::Minus(n) => len.saturating_sub(*n),
                };
                header.copy_from_slice(&new.to_le_bytes());
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
        Just(json!(u32::MAX as u64 + 1)),
        Just(json!(1.5)),
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!("hello")),
        Just(json!([])),
        Just(json!([0, 255, 256])),
        Just(json!({})),
        Just(json!({"op": "hello", "version": 1})),
        Just(json!({"fact": "heartbeat"})),
    ]
}

/// One message as a frame whose JSON has one node replaced (the length is right).
fn reshaped<T: Serialize>(message: &T, at: Index, with: &serde_json::Value) -> Vec<u8> {
    let mut value = serde_json::to_value(message).unwrap();
    let mut k = at.index(count_nodes(&value));
    replace_node(&mut value, &mut k, with);
    let body = serde_json::to_vec(&value).unwrap();
    [(body.len() as u32).to_le_bytes().as_slice(), &body].concat()
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..256)) {
        stream::<ToHost>(&data)?;
        stream::<FromHost>(&data)?;
    }

    #[test]
    fn arbitrary_bodies_with_their_true_length(body in proptest::collection::vec(any::<u8>(), 0..128)) {
        let data = [(body.len() as u32).to_le_bytes().as_slice(), &body].concat();
        stream::<ToHost>(&data)?;
        stream::<FromHost>(&data)?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn valid_streams_read_back_whole(seeds in proptest::collection::vec(seed(), 1..4)) {
        let down: Vec<ToHost> = seeds.iter().cloned().map(to_host).collect();
        let up: Vec<FromHost> = seeds.into_iter().map(from_host).collect();
        prop_assert_eq!(stream::<ToHost>(&frames(&down).0)?, down);
        prop_assert_eq!(stream::<FromHost>(&frames(&up).0)?, up);
    }

    #[test]
    fn damaged_streams(
        seeds in proptest::collection::vec(seed(), 1..4),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let down: Vec<ToHost> = seeds.iter().cloned().map(to_host).collect();
        let (bytes, starts) = frames(&down);
        stream::<ToHost>(&mutate(bytes, &starts, &mutations))?;
        let up: Vec<FromHost> = seeds.into_iter().map(from_host).collect();
        let (bytes, starts) = frames(&up);
        stream::<FromHost>(&mutate(bytes, &starts, &mutations))?;
    }

    #[test]
    fn frames_of_the_wrong_shape(seed in seed(), at in any::<Index>(), with in wrong_value()) {
        stream::<ToHost>(&reshaped(&to_host(seed.clone()), at, &with))?;
        stream::<FromHost>(&reshaped(&from_host(seed), at, &with))?;
    }
}

#[test]
fn a_length_at_the_limit_costs_the_limit_and_no_more() {
    let data = (MAX_FRAME as u32).to_le_bytes();
    let (result, peak) = peak_during(|| read_frame::<ToHost>(&mut data.as_slice()));
    assert!(matches!(result, Err(FrameError::Io(_))), "{result:?}");
    assert!(peak <= MAX_FRAME + budget(4), "peak {peak}");
    let data = (MAX_FRAME as u32 + 1).to_le_bytes();
    let (result, peak) = peak_during(|| read_frame::<ToHost>(&mut data.as_slice()));
    assert!(matches!(result, Err(FrameError::TooLarge(n)) if n == MAX_FRAME + 1), "{result:?}");
    assert!(peak <= budget(4), "peak {peak}");
}
