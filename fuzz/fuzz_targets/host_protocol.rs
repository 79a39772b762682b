//! The host protocol's frames (`u32` little-endian length, JSON body) as a stream of arbitrary
//! bytes, read the way each side reads them: `ToHost` by the host, `FromHost` by the parent.
//! Invariants: no panic; each frame read consumes exactly its length and body; a length over
//! `MAX_FRAME` is refused and nothing larger than `MAX_FRAME` is allocated for it; the
//! blocking and async readers agree; whatever decodes re-encodes and decodes to the same message.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run host_protocol -- -max_total_time=60`

#![no_main]

use halo_fuzz::{budget, peak_during, ready};
use halo_host::protocol::{FrameError, FromHost, MAX_FRAME, ToHost, encode_frame, read_frame, tokio_io};
use libfuzzer_sys::fuzz_target;
use serde::Serialize;
use serde::de::DeserializeOwned;
use std::fmt::Debug;

fuzz_target!(|data: &[u8]| {
    // The input as it is, and as one body behind its true length: a fuzzer rarely guesses a
    // length that matches, and the JSON decoding behind it is most of the code.
    let framed = [(data.len() as u32).to_le_bytes().as_slice(), data].concat();
    for input in [data, &framed] {
        stream::<ToHost>(input);
        stream::<FromHost>(input);
    }
});

fn stream<T: Serialize + DeserializeOwned + PartialEq + Debug>(data: &[u8]) {
    let mut rest = data;
    loop {
        let before = rest;
        let claimed = before.get(..4).map(|h| u32::from_le_bytes([h[0], h[1], h[2], h[3]]) as usize);
        let (result, peak) = peak_during(|| read_frame::<T>(&mut rest));
        let frame_buffer = claimed.unwrap_or(0).min(MAX_FRAME);
        assert!(peak <= frame_buffer + budget(before.len()), "peak {peak} for {} input bytes", before.len());
        let async_result = ready(tokio_io::read_frame::<T>(&mut &before[..]));
        match result {
            Ok(message) => {
                let len = claimed.expect("a frame read has a length");
                assert_eq!(rest.len(), before.len() - 4 - len, "a frame consumes its length and body exactly");
                assert_eq!(async_result.as_ref().ok(), Some(&message), "both readers read the same message");
                let frame = encode_frame(&message).expect("a decoded message re-encodes");
                let again: T = read_frame(&mut frame.as_slice()).expect("a re-encoded frame decodes");
                assert_eq!(again, message);
            }
            Err(e) => {
                match &e {
                    FrameError::Closed => assert!(before.len() < 4, "closed with {} bytes left", before.len()),
                    FrameError::TooLarge(n) => assert!(*n > MAX_FRAME && claimed == Some(*n)),
                    FrameError::Io(_) | FrameError::Malformed(_) => {}
                }
                assert_eq!(
                    std::mem::discriminant(&e),
                    std::mem::discriminant(&async_result.expect_err("both readers refuse the frame")),
                    "both readers refuse it the same way"
                );
                return;
            }
        }
    }
}
