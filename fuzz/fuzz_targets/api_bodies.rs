//! API request bodies as the handlers decode them (serde_json into the request types, before any
//! engine call), the property `Value`'s own Deserialize, and what the handlers then do with the
//! text: flag names, control codes, an operation's InBuffer, new names, the role a path needs.
//! Invariants: no panic; whatever decodes re-encodes and decodes to the same JSON; a `Value` is
//! exactly what its JSON says (text, a u64, a bool, or a list of non-empty one-line strings);
//! parsed flags read back from their number and from their names.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run api_bodies -- -max_total_time=60`

#![no_main]

use halo_api::{
    ControlRequest, DependencyExpression, GroupProperties, NewGroup, NewResource, NewType, OperationRequest,
    Properties, Value,
};
use http::Method;
use libfuzzer_sys::fuzz_target;
use resapi::{
    GroupMoveFlags, GroupOfflineFlags, GroupOnlineFlags, PropertyList, ResourceOfflineFlags, ResourceOnlineFlags,
    ValueData,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

fuzz_target!(|data: &[u8]| {
    body::<NewType>(data);
    body::<NewGroup>(data);
    body::<NewResource>(data);
    body::<GroupProperties>(data);
    body::<Properties>(data);
    body::<DependencyExpression>(data);
    if let Some(op) = body::<OperationRequest>(data) {
        if let Some(text) = op.flags.as_ref().and_then(as_text) {
            flags(&text);
        }
        in_buffer(&op);
    }
    if let Some(c) = body::<ControlRequest>(data) {
        if let Some(text) = as_text(&c.code) {
            let _ = resapi::parse_u32(&text);
        }
        let _ = from_hex(&c.input_hex).map(|bytes| PropertyList::decode(&bytes));
    }
    if let Ok(json) = serde_json::from_slice::<serde_json::Value>(data) {
        value(json);
    }
    if let Ok(text) = std::str::from_utf8(data) {
        flags(text);
        let _ = resapi::parse_u32(text);
        new_name(text);
        for method in [Method::GET, Method::POST, Method::PUT, Method::DELETE] {
            let _ = halo_api::auth::required_role(&method, text);
        }
    }
});

/// Decodes a body; what decodes must survive a JSON round trip unchanged.
fn body<T: Serialize + DeserializeOwned>(data: &[u8]) -> Option<T> {
    let decoded: T = serde_json::from_slice(data).ok()?;
    let json = serde_json::to_value(&decoded).expect("a decoded body serializes");
    let again: T = serde_json::from_value(json.clone()).expect("a re-encoded body decodes");
    assert_eq!(serde_json::to_value(&again).expect("serializes"), json);
    Some(decoded)
}

/// A property value is accepted exactly when its JSON is one of the four kinds it can hold.
fn value(json: serde_json::Value) {
    let decoded = serde_json::from_value::<Value>(json.clone());
    match (&json, decoded) {
        (serde_json::Value::String(s), Ok(Value::Text(t))) => assert_eq!(s, &t),
        (serde_json::Value::Bool(b), Ok(Value::Bool(v))) => assert_eq!(*b, v),
        (serde_json::Value::Number(n), Ok(Value::Number(v))) => assert_eq!(n.as_u64(), Some(v)),
        (serde_json::Value::Number(n), Err(_)) => assert!(n.as_u64().is_none(), "{n} refused"),
        (serde_json::Value::Array(items), Ok(Value::List(strings))) => {
            assert_eq!(items.len(), strings.len());
            assert!(strings.iter().all(|s| !s.is_empty() && !s.contains(['\n', '\r'])));
        }
        (serde_json::Value::Array(items), Err(_)) => {
            assert!(!items.iter().all(|i| i.as_str().is_some_and(|s| !s.is_empty() && !s.contains(['\n', '\r']))))
        }
        (serde_json::Value::Null | serde_json::Value::Object(_), Err(_)) => {}
        (json, decoded) => panic!("{json} decoded as {decoded:?}"),
    }
}

/// The text the API stores or parses for a value (the API's own conversion is private): a list
/// is refused where flags or codes are expected.
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
fn in_buffer(op: &OperationRequest) {
    if let Some(properties) = &op.input {
        let list = properties.iter().fold(PropertyList::new(), |list, (name, value)| {
            let data = match value {
                Value::Text(t) => ValueData::Sz(t.clone()),
                Value::Number(n) => u32::try_from(*n).map_or(ValueData::ULargeInteger(*n), ValueData::Dword),
                Value::Bool(b) => ValueData::Dword(u32::from(*b)),
                Value::List(items) => ValueData::MultiSz(items.clone()),
            };
            list.with(name, data)
        });
        if let Ok(bytes) = list.encode() {
            assert_eq!(PropertyList::decode(&bytes).expect("an encoded InBuffer decodes"), list);
        }
    }
    if let Some(bytes) = op.input_hex.as_deref().and_then(from_hex) {
        let _ = PropertyList::decode(&bytes);
    }
}

fn from_hex(text: &str) -> Option<Vec<u8>> {
    let t = text.trim();
    (t.len() % 2 == 0 && t.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
        (0..t.len()).step_by(2).map(|i| u8::from_str_radix(&t[i..i + 2], 16).expect("two hex digits")).collect()
    })
}

macro_rules! flags_read_back {
    ($text:expr, $($set:ty),+) => {$(
        if let Ok(f) = <$set>::parse($text) {
            assert_eq!(<$set>::parse(&f.bits().to_string()).ok(), Some(f));
            assert_eq!(<$set>::parse(&f.names().join("|")).ok(), Some(f));
        }
    )+};
}

/// Every flag set an operation body can carry.
fn flags(text: &str) {
    flags_read_back!(
        text,
        ResourceOnlineFlags,
        ResourceOfflineFlags,
        GroupOnlineFlags,
        GroupOfflineFlags,
        GroupMoveFlags
    );
}

/// The name grammar: 1 to 128 of `A-Z a-z 0-9 . _ -`, the first a letter or digit.
fn new_name(text: &str) {
    let ok = halo_api::check_new_name("resource", text).is_ok();
    let grammar = (1..=128).contains(&text.len())
        && text.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && text.as_bytes()[0].is_ascii_alphanumeric();
    assert_eq!(ok, grammar, "{text:?}");
}
