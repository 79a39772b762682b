//! The `api_bodies` fuzz target's invariants as a seeded proptest, so that `cargo test` runs
//! them where cargo-fuzz cannot build. Request bodies, arbitrary or built from valid requests
//! and then damaged (flipped bytes, cuts, JSON values of the wrong type), are decoded into every
//! request type the API takes, as its handlers decode them before any engine call; what the
//! handlers then parse (flags, control codes, an operation's InBuffer, names, paths) is fed on.
//! Nothing panics; what decodes round-trips; a property `Value` is exactly what its JSON says;
//! parsed flags read back.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use axum::http::Method;
use halo_api::{
    ControlRequest, DependencyExpression, GroupProperties, NewGroup, NewResource, NewType, OperationRequest,
    Properties, Value,
};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use resapi::{
    GroupMoveFlags, GroupOfflineFlags, GroupOnlineFlags, PropertyList, ResourceOfflineFlags, ResourceOnlineFlags,
    ValueData,
};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::collections::BTreeMap;

/// Fixed seed and no regression files: CI runs the same cases every time.
fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x4150_4931), failure_persistence: None, ..Config::default() }
}

/// Decodes a body; what decodes must survive a JSON round trip unchanged.
fn body<T: Serialize + DeserializeOwned>(data: &[u8]) -> Result<Option<T>, TestCaseError> {
    let Ok(decoded) = serde_json::from_slice::<T>(data) else { return Ok(None) };
    let json = serde_json::to_value(&decoded).expect("a decoded body serializes");
    let again: T = serde_json::from_value(json.clone()).expect("a re-encoded body decodes");
    prop_assert_eq!(serde_json::to_value(&again).unwrap(), json);
    Ok(Some(decoded))
}

/// A property value is accepted exactly when its JSON is one of the four kinds it can hold.
fn value(json: &serde_json::Value) -> Result<(), TestCaseError> {
    let one_line = |s: &str| !s.is_empty() && !s.contains(['\n', '\r']);
    match (json, serde_json::from_value::<Value>(json.clone())) {
        (serde_json::Value::String(s), Ok(Value::Text(t))) => prop_assert_eq!(s, &t),
        (serde_json::Value::Bool(b), Ok(Value::Bool(v))) => prop_assert_eq!(*b, v),
        (serde_json::Value::Number(n), Ok(Value::Number(v))) => prop_assert_eq!(n.as_u64(), Some(v)),
        (serde_json::Value::Number(n), Err(_)) => prop_assert!(n.as_u64().is_none(), "{} refused", n),
        (serde_json::Value::Array(items), Ok(Value::List(strings))) => {
            prop_assert_eq!(items.len(), strings.len());
            prop_assert!(strings.iter().all(|s| one_line(s)));
        }
        (serde_json::Value::Array(items), Err(_)) => {
            prop_assert!(!items.iter().all(|i| i.as_str().is_some_and(one_line)), "{} refused", json)
        }
        (serde_json::Value::Null | serde_json::Value::Object(_), Err(_)) => {}
        (json, decoded) => prop_assert!(false, "{} decoded as {:?}", json, decoded),
    }
    Ok(())
}

/// The text the API parses for a value (its own conversion is private): a list is refused where
/// flags or codes are expected.
fn as_text(v: &Value) -> Option<String> {
    match v {
        Value::Text(t) => Some(t.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::List(_) => None,
    }
}

/// An operation's InBuffer as the handler builds it (its own conversion is private): a text
/// value is an SZ, a number a DWORD (a ULARGE_INTEGER past 32 bits), a boolean a DWORD, a list a
/// MULTI_SZ. Built lists encode (or refuse a NUL) and decode back; hex input decodes or is refused.
fn in_buffer(op: &OperationRequest) -> Result<(), TestCaseError> {
    if let Some(properties) = &op.input {
        let list = property_list(properties);
        if let Ok(bytes) = list.encode() {
            prop_assert_eq!(PropertyList::decode(&bytes).expect("an encoded InBuffer decodes"), list);
        }
    }
    if let Some(bytes) = op.input_hex.as_deref().and_then(from_hex) {
        let _ = PropertyList::decode(&bytes);
    }
    Ok(())
}

fn property_list(properties: &BTreeMap<String, Value>) -> PropertyList {
    properties.iter().fold(PropertyList::new(), |list, (name, value)| {
        let data = match value {
            Value::Text(t) => ValueData::Sz(t.clone()),
            Value::Number(n) => u32::try_from(*n).map_or(ValueData::ULargeInteger(*n), ValueData::Dword),
            Value::Bool(b) => ValueData::Dword(u32::from(*b)),
            Value::List(items) => ValueData::MultiSz(items.clone()),
        };
        list.with(name, data)
    })
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    (t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| (0..t.len()).step_by(2).map(|i| u8::from_str_radix(&t[i..i + 2], 16).unwrap()).collect())
}

fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

macro_rules! flags_read_back {
    ($text:expr, $($set:ty),+) => {$(
        if let Ok(f) = <$set>::parse($text) {
            prop_assert_eq!(<$set>::parse(&f.bits().to_string()).ok(), Some(f));
            prop_assert_eq!(<$set>::parse(&f.names().join("|")).ok(), Some(f));
        }
    )+};
}

/// Every flag set an operation body can carry.
fn flags(text: &str) -> Result<(), TestCaseError> {
    flags_read_back!(
        text,
        ResourceOnlineFlags,
        ResourceOfflineFlags,
        GroupOnlineFlags,
        GroupOfflineFlags,
        GroupMoveFlags
    );
    Ok(())
}

/// The name grammar: 1 to 128 of `A-Z a-z 0-9 . _ -`, the first a letter or digit.
fn new_name(text: &str) -> Result<(), TestCaseError> {
    let ok = halo_api::check_new_name("resource", text).is_ok();
    let grammar = (1..=128).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && text.as_bytes()[0].is_ascii_alphanumeric();
    prop_assert_eq!(ok, grammar, "{:?}", text);
    Ok(())
}

/// Everything the fuzz target does with one input.
fn check(data: &[u8]) -> Result<(), TestCaseError> {
    body::<NewType>(data)?;
    body::<NewGroup>(data)?;
    body::<NewResource>(data)?;
    body::<GroupProperties>(data)?;
    body::<Properties>(data)?;
    body::<DependencyExpression>(data)?;
    if let Some(op) = body::<OperationRequest>(data)? {
        if let Some(text) = op.flags.as_ref().and_then(as_text) {
            flags(&text)?;
        }
        in_buffer(&op)?;
    }
    if let Some(c) = body::<ControlRequest>(data)? {
        if let Some(text) = as_text(&c.code) {
            let _ = resapi::parse_u32(&text);
        }
        let _ = from_hex(&c.input_hex).map(|bytes| PropertyList::decode(&bytes));
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        value(&json)?;
    }
    if let Ok(text) = std::str::from_utf8(data) {
        text_fields(text)?;
    }
    Ok(())
}

/// What the handlers do with text from a body or a path.
fn text_fields(text: &str) -> Result<(), TestCaseError> {
    flags(text)?;
    let _ = resapi::parse_u32(text);
    new_name(text)?;
    for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
        let _ = halo_api::auth::required_role(&method, text);
    }
    Ok(())
}

fn text() -> impl Strategy<Value = String> {
    // Any characters, controls and astral ones included.
    proptest::collection::vec(any::<char>(), 0..10).prop_map(String::from_iter)
}

/// Words the bodies are made of: flag names, numbers, names, with separators and stray bytes.
fn wordy_text() -> impl Strategy<Value = String> {
    const WORDS: [&str; 14] = [
        "IGNORE_RESOURCE_STATUS",
        "CLUSAPI_RESOURCE_ONLINE_",
        "CLUSAPI_RESOURCE_OFFLINE_FORCE_WITH_TERMINATION",
        "do_not_update_persistent_state",
        "0x",
        "0X1f",
        "4294967296",
        "-1",
        "|",
        ",",
        " ",
        "é",
        "\u{1F600}",
        "ﬃ",
    ];
    proptest::collection::vec((any::<u8>(), any::<char>()), 0..8).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(k, c)| WORDS.get(k as usize % 20).map_or_else(|| c.to_string(), |w| w.to_string()))
            .collect()
    })
}

fn property_value() -> impl Strategy<Value = Value> {
    prop_oneof![
        text().prop_map(Value::Text),
        any::<u64>().prop_map(Value::Number),
        any::<bool>().prop_map(Value::Bool),
        proptest::collection::vec("[^\n\r]{1,6}", 0..3).prop_map(Value::List),
    ]
}

fn properties() -> impl Strategy<Value = BTreeMap<String, Value>> {
    proptest::collection::btree_map(text(), property_value(), 0..3)
}

/// A valid body of one of the request types, as JSON.
fn valid_body() -> impl Strategy<Value = serde_json::Value> {
    (any::<u8>(), text(), text(), properties(), properties(), proptest::option::of(property_value()), any::<u32>())
        .prop_map(|(kind, a, b, p, q, maybe, n)| match kind % 8 {
            0 => to_json(NewType { name: a, path: b, type_name: None, properties: p }),
            1 => to_json(NewGroup { name: a, properties: p }),
            2 => to_json(NewResource {
                name: a,
                group: b.clone(),
                type_name: b,
                properties: p,
                private: q,
                dependencies: Some(format!("[{}]", n)),
            }),
            3 => to_json(GroupProperties { common: p }),
            4 => to_json(Properties { common: p, private: q, unset: vec![a] }),
            5 => to_json(DependencyExpression { expression: a }),
            6 => to_json(OperationRequest {
                flags: maybe,
                input_hex: (n % 3 == 0).then(|| to_hex(&property_list(&q).encode().unwrap_or_default())),
                input: (n % 2 == 0).then_some(p),
            }),
            _ => {
                to_json(ControlRequest { code: maybe.unwrap_or(Value::Number(n.into())), input_hex: a, output_size: n })
            }
        })
}

fn to_json(body: impl Serialize) -> serde_json::Value {
    serde_json::to_value(body).unwrap()
}

/// Replaces the `at`-th node (in pre-order) of `value` with `with`: a well-formed body of the
/// wrong shape, which byte flips rarely produce.
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
        Just(json!(1e300)),
        Just(json!("")),
        Just(json!(" 5")),
        Just(json!([])),
        Just(json!([""])),
        Just(json!(["a\nb"])),
        Just(json!(["a", 1])),
        Just(json!({})),
        Just(json!({"unknown": 1})),
    ]
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn arbitrary_bytes(data in proptest::collection::vec(any::<u8>(), 0..200)) {
        check(&data)?;
    }

    #[test]
    fn arbitrary_text(text in wordy_text()) {
        text_fields(&text)?;
        check(json!({ "flags": text, "code": text, "expression": text, "name": text }).to_string().as_bytes())?;
    }
}

proptest! {
    #![proptest_config(config(1500))]

    #[test]
    fn valid_bodies(body in valid_body()) {
        let data = serde_json::to_vec(&body).unwrap();
        // Built from a request type, so at least that type decodes it.
        prop_assert!(
            serde_json::from_slice::<NewType>(&data).is_ok()
                || serde_json::from_slice::<NewGroup>(&data).is_ok()
                || serde_json::from_slice::<NewResource>(&data).is_ok()
                || serde_json::from_slice::<GroupProperties>(&data).is_ok()
                || serde_json::from_slice::<Properties>(&data).is_ok()
                || serde_json::from_slice::<DependencyExpression>(&data).is_ok()
                || serde_json::from_slice::<OperationRequest>(&data).is_ok()
                || serde_json::from_slice::<ControlRequest>(&data).is_ok(),
            "{}", body
        );
        check(&data)?;
    }

    #[test]
    fn damaged_bodies(
        body in valid_body(),
        flips in proptest::collection::vec((any::<Index>(), 1u8..=255), 1..4),
        cut in any::<Index>(),
    ) {
        let mut data = serde_json::to_vec(&body).unwrap();
        for (i, x) in flips {
            let i = i.index(data.len());
            data[i] ^= x;
        }
        check(&data)?;
        check(&data[..cut.index(data.len() + 1)])?;
    }

    #[test]
    fn bodies_of_the_wrong_shape(body in valid_body(), at in any::<Index>(), with in wrong_value()) {
        let mut body = body;
        let mut k = at.index(count_nodes(&body));
        replace_node(&mut body, &mut k, &with);
        check(&serde_json::to_vec(&body).unwrap())?;
    }
}

/// A flag name long enough to be compared with the C prefix, with a character that straddles
/// the prefix's length, once panicked (a byte-index slice inside a character).
#[test]
fn flag_names_with_multibyte_characters_are_refused_not_panicked() {
    let cases =
        ["aaaaaaaaaaaaaaaaaaaaaaaé", "aaaaaaaaaaaaaaaaaaaaaaaaé", "CLUSAPI_GROUP_MOVE_\u{1F600}é", "ééééééééééééé"];
    for text in cases {
        let body = json!({ "flags": text }).to_string();
        let op: OperationRequest = serde_json::from_slice(body.as_bytes()).unwrap();
        let text = as_text(&op.flags.unwrap()).unwrap();
        assert!(ResourceOnlineFlags::parse(&text).is_err());
        assert!(ResourceOfflineFlags::parse(&text).is_err());
        assert!(GroupOnlineFlags::parse(&text).is_err());
        assert!(GroupOfflineFlags::parse(&text).is_err());
        assert!(GroupMoveFlags::parse(&text).is_err());
    }
}
