//! Property-list codec properties: round trips of arbitrary lists, and arbitrary or corrupted
//! bytes never panic the decoder.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use proptest::prelude::*;
use resapi::proplist::{MAX_DEPTH, decode_value_list, encode_value_list};
use resapi::{Property, PropertyList, Value, ValueData};

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,10}"
}

fn leaf() -> impl Strategy<Value = ValueData> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(ValueData::Binary),
        any::<u32>().prop_map(ValueData::Dword),
        text().prop_map(ValueData::Sz),
        text().prop_map(ValueData::ExpandSz),
        proptest::collection::vec("[^\u{0}]{1,6}", 0..4).prop_map(ValueData::MultiSz),
        any::<u64>().prop_map(ValueData::ULargeInteger),
        any::<i32>().prop_map(ValueData::Long),
        text().prop_map(ValueData::ExpandedSz),
        proptest::collection::vec(any::<u8>(), 0..16).prop_map(ValueData::SecurityDescriptor),
        any::<i64>().prop_map(ValueData::LargeInteger),
        any::<u16>().prop_map(ValueData::Word),
        any::<u64>().prop_map(ValueData::FileTime),
        (prop_oneof![Just(0u16), 15u16..=u16::MAX], proptest::collection::vec(any::<u8>(), 0..9))
            .prop_map(|(format, data)| ValueData::Other { format, data }),
    ]
}

fn value_of(data: impl Strategy<Value = ValueData>) -> impl Strategy<Value = Value> {
    (1u16..=u16::MAX, data).prop_map(|(value_type, data)| Value { value_type, data })
}

fn list_of(value: BoxedStrategy<Value>) -> impl Strategy<Value = PropertyList> {
    proptest::collection::vec((text(), proptest::collection::vec(value, 1..3)), 0..4)
        .prop_map(|props| props.into_iter().map(|(name, values)| Property { name, values }).collect())
}

fn data() -> impl Strategy<Value = ValueData> {
    leaf().prop_recursive(3, 24, 4, |inner| {
        let value = value_of(inner).boxed();
        prop_oneof![
            proptest::collection::vec(value.clone(), 0..3).prop_map(ValueData::ValueList),
            list_of(value).prop_map(ValueData::PropertyList),
        ]
    })
}

fn property_list() -> impl Strategy<Value = PropertyList> {
    list_of(value_of(data()).boxed())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn property_lists_round_trip(list in property_list()) {
        let bytes = list.encode().unwrap();
        prop_assert_eq!(bytes.len() % 4, 0, "every entry is padded to 4 bytes");
        prop_assert_eq!(PropertyList::decode(&bytes).unwrap(), list.clone());
        // One extra trailing ENDMARK, as real clusters send, changes nothing.
        let mut with_endmark = bytes.clone();
        with_endmark.extend_from_slice(&[0; 4]);
        prop_assert_eq!(PropertyList::decode(&with_endmark).unwrap(), list);
    }

    #[test]
    fn value_lists_round_trip(values in proptest::collection::vec(value_of(data()), 0..5)) {
        let bytes = encode_value_list(&values).unwrap();
        prop_assert_eq!(decode_value_list(&bytes).unwrap(), values);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        if let Ok(list) = PropertyList::decode(&bytes) {
            // Whatever decodes re-encodes to something that decodes to the same list.
            let again = list.encode().unwrap();
            prop_assert_eq!(PropertyList::decode(&again).unwrap(), list);
        }
        let _ = decode_value_list(&bytes);
    }

    #[test]
    fn corrupted_encodings_never_panic(
        list in property_list(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        cut in any::<prop::sample::Index>(),
    ) {
        let mut bytes = list.encode().unwrap();
        for (at, byte) in flips {
            let i = at.index(bytes.len());
            bytes[i] = byte;
        }
        let _ = PropertyList::decode(&bytes);
        let keep = cut.index(bytes.len() + 1);
        let _ = PropertyList::decode(&bytes[..keep]);
    }
}

#[test]
fn nesting_beyond_max_depth_is_refused_both_ways() {
    let mut data = ValueData::Dword(1);
    for _ in 0..=MAX_DEPTH + 1 {
        data = ValueData::ValueList(vec![Value::new(data)]);
    }
    let deep = vec![Value::new(data)];
    assert!(encode_value_list(&deep).is_err());

    // Hand-build the same nesting on the wire: each level is a VALUE_LIST entry holding the next.
    let mut bytes = [2u32.to_le_bytes(), 4u32.to_le_bytes(), 1u32.to_le_bytes(), 0u32.to_le_bytes()].concat();
    for _ in 0..=MAX_DEPTH + 1 {
        let mut outer = Vec::new();
        outer.extend_from_slice(&0x0001_000Du32.to_le_bytes());
        outer.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        outer.extend_from_slice(&bytes);
        outer.extend_from_slice(&0u32.to_le_bytes());
        bytes = outer;
    }
    let err = decode_value_list(&bytes).unwrap_err();
    assert!(err.reason.contains("nest"), "{err}");
}

#[test]
fn malformed_strings_are_named() {
    // A property name without its NUL terminator.
    let bytes = [1u32.to_le_bytes(), 0x0004_0003u32.to_le_bytes(), 2u32.to_le_bytes(), [b'a', 0, 0, 0]].concat();
    let err = PropertyList::decode(&bytes).unwrap_err();
    assert!(err.reason.contains("NUL-terminated"), "{err}");
    // An odd-length string.
    let bytes = [1u32.to_le_bytes(), 0x0004_0003u32.to_le_bytes(), 3u32.to_le_bytes(), [b'a', 0, 0, 0]].concat();
    let err = PropertyList::decode(&bytes).unwrap_err();
    assert!(err.reason.contains("odd length"), "{err}");
    // A DWORD with 3 bytes.
    let bytes = [0x0001_0002u32.to_le_bytes(), 3u32.to_le_bytes(), [1, 2, 3, 0], 0u32.to_le_bytes()].concat();
    let err = decode_value_list(&bytes).unwrap_err();
    assert!(err.reason.contains("DWORD must be 4 bytes"), "{err}");
}
