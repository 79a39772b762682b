//! How log entries and snapshots are stored: a format byte, then JSON in which every byte array
//! (a key's value, a snapshot's data) is one base64 string instead of a list of numbers (which
//! took about seven bytes per byte). Entries written before the format byte existed start with
//! `{` and are still read, numbers and all.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The format byte of entries and snapshots written now: JSON with base64 byte arrays.
pub(crate) const FORMAT_V1: u8 = 1;

/// A stored entry that cannot be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum DecodeError {
    /// Not a format this version knows.
    #[error("unknown storage format {0} (this halo reads formats 0 (plain JSON) and 1)")]
    UnknownFormat(u8),
    /// Empty.
    #[error("empty record")]
    Empty,
    /// The JSON inside did not parse.
    #[error("{0}")]
    Json(#[from] serde_json::Error),
}

/// Encodes with the current format byte.
pub(crate) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, serde_json::Error> {
    let mut out = vec![FORMAT_V1];
    serde_json::to_writer(&mut out, value)?;
    Ok(out)
}

/// Decodes either format.
pub(crate) fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, DecodeError> {
    match bytes.first() {
        None => Err(DecodeError::Empty),
        Some(&FORMAT_V1) => Ok(serde_json::from_slice(&bytes[1..])?),
        // Before the format byte: a JSON document.
        Some(b'{' | b'[' | b' ' | b'\n') => Ok(serde_json::from_slice(bytes)?),
        Some(other) => Err(DecodeError::UnknownFormat(*other)),
    }
}

/// `#[serde(with = "base64_bytes")]`: bytes as one base64 string; a list of numbers (the old
/// form) is still accepted.
pub(crate) mod base64_bytes {
    use super::*;
    use base64::Engine as _;
    use base64::engine::general_purpose::STANDARD;

    pub(crate) fn serialize<S: Serializer>(bytes: &[u8], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&STANDARD.encode(bytes))
    }

    pub(crate) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<u8>, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Form {
            Text(String),
            Numbers(Vec<u8>),
        }
        match Form::deserialize(d)? {
            Form::Text(t) => STANDARD.decode(t.as_bytes()).map_err(serde::de::Error::custom),
            Form::Numbers(n) => Ok(n),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Batch, Op, Record, Request, TypeConfig};
    use openraft::{Entry, EntryPayload, LogId};

    fn entry(value: Vec<u8>) -> Entry<TypeConfig> {
        let request = Request { compare: vec![], ops: vec![Op::Put { key: "resource/r".into(), value }] };
        Entry {
            log_id: LogId::new(openraft::CommittedLeaderId::new(1, 1), 7),
            payload: EntryPayload::Normal(Batch(vec![request])),
        }
    }

    #[test]
    fn a_value_costs_about_four_thirds_of_its_size() {
        let value = vec![0xA5u8; 1024];
        let old = serde_json::to_vec(&serde_json::json!({ "value": value })).unwrap().len();
        let new = encode(&entry(value.clone())).unwrap().len();
        println!("a log entry holding a 1 KiB value: {new} bytes (as numbers: {old} for the value alone)");
        assert!(new < 1024 * 4 / 3 + 200, "{new} bytes for a 1 KiB value (numbers: {old})");
        let back: Entry<TypeConfig> = decode(&encode(&entry(value.clone())).unwrap()).unwrap();
        assert_eq!(back, entry(value));
    }

    #[test]
    fn entries_written_before_the_format_byte_are_still_read() {
        // As the previous version stored them: plain JSON, bytes as numbers.
        let legacy = serde_json::json!({
            "log_id": { "leader_id": { "term": 1, "node_id": 1 }, "index": 7 },
            "payload": { "Normal": [ { "compare": [], "ops": [ { "Put": { "key": "resource/r", "value": [104, 105] } } ] } ] }
        });
        let bytes = serde_json::to_vec(&legacy).unwrap();
        let e: Entry<TypeConfig> = decode(&bytes).unwrap();
        assert_eq!(e, entry(b"hi".to_vec()));
        let r: Record = decode(br#"{"revision": 3, "value": [1, 2]}"#).unwrap();
        assert_eq!(r, Record { revision: 3, value: vec![1, 2] });
        assert!(matches!(decode::<Record>(&[9, b'{']), Err(DecodeError::UnknownFormat(9))));
    }
}
