//! The `proplist_decode` fuzz target's invariants as a seeded proptest, so that `cargo test`
//! runs them where cargo-fuzz cannot build: arbitrary bytes, streams of plausible words, and
//! valid encodings with flipped bytes, cuts and oversized length fields. Decoding never
//! panics, never allocates for a length or count the input cannot pay for, points its errors
//! inside the input, and whatever decodes round-trips.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use resapi::proplist::{decode_value_list, encode_value_list, syntax};
use resapi::{Property, PropertyList, Status, Value, ValueData};

/// Fixed seed and no regression files: CI runs the same cases every time.
use halo_fuzzkit::peak_during;

// Counts the bytes each thread holds, for `peak_during`.
#[global_allocator]
static ALLOCATOR: halo_fuzzkit::Counting = halo_fuzzkit::Counting;

fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x5052_4f50), failure_persistence: None, ..Config::default() }
}

/// Everything the fuzz target asserts about one input.
fn check(bytes: &[u8]) -> Result<(), TestCaseError> {
    let budget = 4096 + 32 * bytes.len();
    let (list, peak) = peak_during(|| PropertyList::decode(bytes));
    prop_assert!(peak <= budget, "property list: peak {} for {} bytes", peak, bytes.len());
    match list {
        Ok(list) => {
            let again = list.encode().expect("a decoded list re-encodes");
            prop_assert_eq!(PropertyList::decode(&again).expect("re-encoded bytes decode"), list);
        }
        Err(e) => {
            prop_assert!(e.offset <= bytes.len(), "error at {} of {} bytes: {}", e.offset, bytes.len(), e);
            prop_assert_eq!(e.status(), Status::ERROR_INVALID_DATA);
        }
    }
    let (values, peak) = peak_during(|| decode_value_list(bytes));
    prop_assert!(peak <= budget, "value list: peak {} for {} bytes", peak, bytes.len());
    match values {
        Ok(values) => {
            let again = encode_value_list(&values).expect("a decoded value list re-encodes");
            prop_assert_eq!(decode_value_list(&again).expect("re-encoded bytes decode"), values);
        }
        Err(e) => prop_assert!(e.offset <= bytes.len(), "error at {} of {} bytes: {}", e.offset, bytes.len(), e),
    }
    Ok(())
}

fn text() -> impl Strategy<Value = String> {
    "[^\u{0}]{0,8}"
}

fn leaf() -> impl Strategy<Value = ValueData> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..12).prop_map(ValueData::Binary),
        any::<u32>().prop_map(ValueData::Dword),
        text().prop_map(ValueData::Sz),
        proptest::collection::vec("[^\u{0}]{1,5}", 0..3).prop_map(ValueData::MultiSz),
        any::<u64>().prop_map(ValueData::ULargeInteger),
        any::<i64>().prop_map(ValueData::LargeInteger),
        any::<u16>().prop_map(ValueData::Word),
        (15u16..=u16::MAX, proptest::collection::vec(any::<u8>(), 0..7))
            .prop_map(|(format, data)| ValueData::Other { format, data }),
    ]
}

fn value_of(data: impl Strategy<Value = ValueData>) -> impl Strategy<Value = Value> {
    (1u16..=4, data).prop_map(|(value_type, data)| Value { value_type, data })
}

fn list_of(value: BoxedStrategy<Value>) -> impl Strategy<Value = PropertyList> {
    proptest::collection::vec((text(), proptest::collection::vec(value, 1..3)), 0..4)
        .prop_map(|props| props.into_iter().map(|(name, values)| Property { name, values }).collect())
}

fn property_list() -> impl Strategy<Value = PropertyList> {
    let data = leaf().prop_recursive(3, 16, 3, |inner| {
        let value = value_of(inner).boxed();
        prop_oneof![
            proptest::collection::vec(value.clone(), 0..3).prop_map(ValueData::ValueList),
            list_of(value).prop_map(ValueData::PropertyList),
        ]
    });
    list_of(value_of(data).boxed())
}

/// What a fuzzer does to a valid encoding.
#[derive(Debug, Clone)]
enum Mutation {
    /// XOR one byte.
    Flip(Index, u8),
    /// Overwrite one 4-byte-aligned word (every count, syntax and length is one) with a value
    /// near a limit: a count or length larger than the input, or one off.
    Word(Index, u32),
    /// Cut the input short.
    Truncate(Index),
    /// Insert bytes.
    Insert(Index, Vec<u8>),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    let word = prop_oneof![
        Just(u32::MAX),
        Just(u32::MAX - 3),
        Just(0x8000_0000),
        Just(0x7FFF_FFFF),
        0u32..64,
        Just(syntax::NAME),
        Just(syntax::LIST_VALUE_SZ),
        Just(0x0001_000D), // a nested value list
        Just(0x0001_000E), // a nested property list
    ];
    prop_oneof![
        (any::<Index>(), 1u8..=255).prop_map(|(i, x)| Mutation::Flip(i, x)),
        (any::<Index>(), word).prop_map(|(i, w)| Mutation::Word(i, w)),
        any::<Index>().prop_map(Mutation::Truncate),
        (any::<Index>(), proptest::collection::vec(any::<u8>(), 1..9)).prop_map(|(i, b)| Mutation::Insert(i, b)),
    ]
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for m in mutations {
        match m {
            Mutation::Flip(_, _) | Mutation::Word(_, _) if bytes.is_empty() => {}
            Mutation::Flip(i, x) => {
                let i = i.index(bytes.len());
                bytes[i] ^= x;
            }
            Mutation::Word(i, w) => {
                let at = i.index(bytes.len()) / 4 * 4;
                let end = (at + 4).min(bytes.len());
                bytes[at..end].copy_from_slice(&w.to_le_bytes()[..end - at]);
            }
            Mutation::Truncate(i) => bytes.truncate(i.index(bytes.len() + 1)),
            Mutation::Insert(i, b) => {
                let at = i.index(bytes.len() + 1);
                bytes.splice(at..at, b.iter().copied());
            }
        }
    }
    bytes
}

/// Words a property list is made of, in any order: syntaxes, small lengths, UTF-16 text, junk.
fn plausible_words() -> impl Strategy<Value = Vec<u8>> {
    const WORDS: [u32; 10] = [
        0,
        syntax::NAME,
        syntax::LIST_VALUE_DWORD,
        syntax::LIST_VALUE_SZ,
        syntax::LIST_VALUE_MULTI_SZ,
        0x0001_000D, // a nested value list
        0x0001_000E, // a nested property list
        0x0000_0061, // "a\0" as UTF-16
        0xDC00_D800, // a surrogate pair's halves, reversed
        u32::MAX,
    ];
    // Picked by hand from a random byte: far cheaper to generate than a union of strategies.
    let word = (any::<u8>(), any::<u32>()).prop_map(|(pick, random)| match pick % 16 {
        k @ 0..10 => WORDS[k as usize],
        10..13 => random % 24, // a short length or count
        _ => random,
    });
    proptest::collection::vec(word, 0..48).prop_map(|w| w.iter().flat_map(|w| w.to_le_bytes()).collect())
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn arbitrary_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        check(&bytes)?;
    }

    #[test]
    fn plausible_word_streams(bytes in plausible_words()) {
        check(&bytes)?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn mutated_property_lists(list in property_list(), mutations in proptest::collection::vec(mutation(), 1..4)) {
        let bytes = list.encode().unwrap();
        check(&bytes)?;
        check(&mutate(bytes, &mutations))?;
    }

    #[test]
    fn mutated_value_lists(
        values in proptest::collection::vec(value_of(leaf()), 0..6),
        mutations in proptest::collection::vec(mutation(), 1..4),
    ) {
        let bytes = encode_value_list(&values).unwrap();
        check(&bytes)?;
        check(&mutate(bytes, &mutations))?;
    }
}

#[test]
fn a_length_field_claiming_four_gigabytes_is_refused_within_budget() {
    let mut oversized = PropertyList::new().with("Name", ValueData::Sz("value".into())).encode().unwrap();
    // The NAME entry's length is the third word.
    oversized[8..12].copy_from_slice(&u32::MAX.to_le_bytes());
    let (result, peak) = peak_during(|| PropertyList::decode(&oversized));
    let err = result.unwrap_err();
    assert!(err.reason.contains("entry data needs"), "{err}");
    assert!(peak <= 4096 + 32 * oversized.len(), "peak {peak}");
}
