//! The peer channel's frames (`u32` big-endian length, JSON body; inside TLS, which is not
//! fuzzed here) read as a server reads `PeerMessage`s and a sender reads `PeerReply`s, with a
//! member's limit and an anonymous caller's.
//! Invariants: no panic; a length over the limit is refused before the body is read or a buffer
//! for it allocated; a frame read consumes exactly its length and body; whatever decodes
//! re-encodes and decodes to the same JSON.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run peer_frame -- -max_total_time=60`

#![no_main]

use halo_cluster::peer::{MAX_ANONYMOUS_FRAME, MAX_FRAME, read_frame, write_frame};
use halo_cluster::transport::{PeerMessage, PeerReply};
use halo_fuzz::{budget, peak_during, ready};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    // The input as it is, and as a body behind its true length: a fuzzer rarely guesses a
    // big-endian length that matches, and the JSON decoding behind it is most of the code.
    let framed = [(data.len() as u32).to_be_bytes().as_slice(), data].concat();
    for limit in [MAX_ANONYMOUS_FRAME, MAX_FRAME] {
        frame::<PeerMessage>(data, limit);
        frame::<PeerReply>(data, limit);
        frame::<PeerMessage>(&framed, limit);
        frame::<PeerReply>(&framed, limit);
    }
});

fn frame<T: Serialize + DeserializeOwned>(data: &[u8], limit: usize) {
    let claimed = data.get(..4).map(|h| u32::from_be_bytes([h[0], h[1], h[2], h[3]]) as usize);
    let mut rest = data;
    let (result, peak) = peak_during(|| ready(read_frame::<_, T>(&mut rest, limit)));
    let frame_buffer = claimed.filter(|c| *c <= limit).unwrap_or(0);
    assert!(peak <= frame_buffer + budget(data.len()), "peak {peak} for {} input bytes", data.len());
    match result {
        Ok(message) => {
            let len = claimed.expect("a frame read has a length");
            assert!(len <= limit);
            assert_eq!(rest.len(), data.len() - 4 - len, "a frame consumes its length and body exactly");
            // Not every message type is PartialEq (openraft's replies): compare as JSON.
            let json = serde_json::to_value(&message).expect("a decoded message serializes");
            let mut out = Vec::new();
            ready(write_frame(&mut out, &message)).expect("a decoded message re-encodes");
            let again: T = ready(read_frame(&mut out.as_slice(), MAX_FRAME)).expect("a re-encoded frame decodes");
            assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
        }
        Err(e) => {
            if claimed.is_some_and(|c| c > limit) {
                assert_eq!(e.kind(), std::io::ErrorKind::InvalidData);
                assert_eq!(rest.len(), data.len() - 4, "an over-limit body is not read");
            }
        }
    }
}
