//! Property-list and value-list decoding of arbitrary bytes: must never panic, and whatever
//! decodes must survive an encode/decode round trip unchanged.
//!
//! Run: `cargo install cargo-fuzz && cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run proplist_decode`
//! (`RUSTC_BOOTSTRAP=1` lets the stable toolchain build with the sanitizer flags.)

#![no_main]

use libfuzzer_sys::fuzz_target;
use resapi::PropertyList;
use resapi::proplist::{decode_value_list, encode_value_list};

fuzz_target!(|data: &[u8]| {
    if let Ok(list) = PropertyList::decode(data) {
        let bytes = list.encode().expect("a decoded list re-encodes");
        assert_eq!(PropertyList::decode(&bytes).expect("re-encoded bytes decode"), list);
    }
    if let Ok(values) = decode_value_list(data) {
        let bytes = encode_value_list(&values).expect("a decoded value list re-encodes");
        assert_eq!(decode_value_list(&bytes).expect("re-encoded bytes decode"), values);
    }
});
