//! Property lists and value lists (`CLUSPROP_*`), the wire format of control-code buffers.
//!
//! A property list is `count: u32` followed, per property, by a NAME entry, one or more value
//! entries and an ENDMARK. Every entry is `syntax: u32` (low word format, high word type),
//! `length: u32`, then `length` bytes padded with zeros to a 4-byte boundary; an ENDMARK is a lone
//! zero `syntax`. Strings are UTF-16LE, NUL-terminated, the terminator counted in `length`.
//!
//! Decoding takes untrusted bytes: it never panics, reads nothing past the input, nests at most
//! [`MAX_DEPTH`] lists deep, and allocates in proportion to the input, never to a count the input
//! claims. One extra ENDMARK after the last property is tolerated (real clusters send it).

use crate::Status;

/// Data formats (`CLUSPROP_FORMAT_*`): the low word of a syntax.
pub mod format {
    /// Unknown.
    pub const UNKNOWN: u16 = 0;
    /// Raw bytes.
    pub const BINARY: u16 = 1;
    /// 32-bit unsigned integer.
    pub const DWORD: u16 = 2;
    /// String.
    pub const SZ: u16 = 3;
    /// String with unexpanded environment references.
    pub const EXPAND_SZ: u16 = 4;
    /// Several strings.
    pub const MULTI_SZ: u16 = 5;
    /// 64-bit unsigned integer.
    pub const ULARGE_INTEGER: u16 = 6;
    /// 32-bit signed integer.
    pub const LONG: u16 = 7;
    /// String with its environment references expanded.
    pub const EXPANDED_SZ: u16 = 8;
    /// A security descriptor (raw bytes).
    pub const SECURITY_DESCRIPTOR: u16 = 9;
    /// 64-bit signed integer.
    pub const LARGE_INTEGER: u16 = 10;
    /// 16-bit unsigned integer.
    pub const WORD: u16 = 11;
    /// A FILETIME (100 ns ticks since 1601), 64 bits.
    pub const FILETIME: u16 = 12;
    /// A nested value list.
    pub const VALUE_LIST: u16 = 13;
    /// A nested property list.
    pub const PROPERTY_LIST: u16 = 14;
    /// The first user-defined format.
    pub const USER: u16 = 0x8000;
}

/// Entry types (`CLUSPROP_TYPE_*`): the high word of a syntax.
pub mod value_type {
    /// End of a list.
    pub const ENDMARK: u16 = 0;
    /// A value in a value list or of a property.
    pub const LIST_VALUE: u16 = 1;
    /// A resource class.
    pub const RESCLASS: u16 = 2;
    /// A property name.
    pub const NAME: u16 = 4;
    /// The first user-defined type.
    pub const USER: u16 = 0x8000;
}

/// Common syntaxes (`CLUSPROP_SYNTAX_*`).
pub mod syntax {
    /// End of a list.
    pub const ENDMARK: u32 = 0;
    /// A property name.
    pub const NAME: u32 = 0x0004_0003;
    /// A DWORD value.
    pub const LIST_VALUE_DWORD: u32 = 0x0001_0002;
    /// A string value.
    pub const LIST_VALUE_SZ: u32 = 0x0001_0003;
    /// A multi-string value.
    pub const LIST_VALUE_MULTI_SZ: u32 = 0x0001_0005;
    /// A binary value.
    pub const LIST_VALUE_BINARY: u32 = 0x0001_0001;
    /// A 64-bit unsigned value.
    pub const LIST_VALUE_ULARGE_INTEGER: u32 = 0x0001_0006;
    /// A FILETIME value.
    pub const LIST_VALUE_FILETIME: u32 = 0x0001_000C;
    /// A resource class.
    pub const RESCLASS: u32 = 0x0002_0002;

    /// Builds a syntax from its type and format.
    pub const fn make(value_type: u16, format: u16) -> u32 {
        ((value_type as u32) << 16) | format as u32
    }
}

/// How deep value and property lists may nest inside each other when decoding or encoding.
pub const MAX_DEPTH: usize = 8;

/// Bytes that are not a valid property or value list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed property list at byte {offset}: {reason}")]
pub struct DecodeError {
    /// Where in the input the problem was found.
    pub offset: usize,
    /// What was wrong.
    pub reason: String,
}

impl DecodeError {
    /// The Win32 code this error maps to: `ERROR_INVALID_DATA` (13).
    pub fn status(&self) -> Status {
        Status::ERROR_INVALID_DATA
    }
}

/// A value that cannot be put on the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A string holds a NUL character, which would end it early.
    #[error("property {property:?}: string contains a NUL character")]
    NulInString {
        /// The property (or `""` inside a bare value list).
        property: String,
    },
    /// A MULTI_SZ holds an empty string, which would end the list early.
    #[error("property {property:?}: MULTI_SZ cannot contain an empty string")]
    EmptyInMultiSz {
        /// The property.
        property: String,
    },
    /// A property has no value.
    #[error("property {property:?} has no value")]
    NoValue {
        /// The property.
        property: String,
    },
    /// Lists nest deeper than [`MAX_DEPTH`].
    #[error("lists nest deeper than {MAX_DEPTH}")]
    TooDeep,
    /// A value whose type and format are both 0 would read back as an ENDMARK.
    #[error("property {property:?}: a value with type 0 and format 0 is an ENDMARK")]
    EndmarkSyntax {
        /// The property.
        property: String,
    },
    /// An entry is longer than 4 GiB.
    #[error("an entry is longer than a u32 length can say")]
    TooLong,
}

impl EncodeError {
    /// The Win32 code this error maps to: `ERROR_INVALID_PARAMETER` (87).
    pub fn status(&self) -> Status {
        Status::ERROR_INVALID_PARAMETER
    }
}

/// The data of one value entry, by format.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ValueData {
    /// `BINARY`.
    Binary(Vec<u8>),
    /// `DWORD`.
    Dword(u32),
    /// `SZ`.
    Sz(String),
    /// `EXPAND_SZ`.
    ExpandSz(String),
    /// `MULTI_SZ`: no string may be empty.
    MultiSz(Vec<String>),
    /// `ULARGE_INTEGER`.
    ULargeInteger(u64),
    /// `LONG`.
    Long(i32),
    /// `EXPANDED_SZ`.
    ExpandedSz(String),
    /// `SECURITY_DESCRIPTOR`, as raw bytes.
    SecurityDescriptor(Vec<u8>),
    /// `LARGE_INTEGER`.
    LargeInteger(i64),
    /// `WORD`.
    Word(u16),
    /// `FILETIME`, as 100 ns ticks since 1601-01-01.
    FileTime(u64),
    /// `VALUE_LIST`: a nested value list.
    ValueList(Vec<Value>),
    /// `PROPERTY_LIST`: a nested property list.
    PropertyList(PropertyList),
    /// `UNKNOWN`, a `USER` format, or a format halo does not define: kept as raw bytes so that
    /// it survives a round trip.
    Other {
        /// The format word.
        format: u16,
        /// The raw data.
        data: Vec<u8>,
    },
}

impl ValueData {
    /// The format word of this data.
    pub fn format(&self) -> u16 {
        match self {
            ValueData::Binary(_) => format::BINARY,
            ValueData::Dword(_) => format::DWORD,
            ValueData::Sz(_) => format::SZ,
            ValueData::ExpandSz(_) => format::EXPAND_SZ,
            ValueData::MultiSz(_) => format::MULTI_SZ,
            ValueData::ULargeInteger(_) => format::ULARGE_INTEGER,
            ValueData::Long(_) => format::LONG,
            ValueData::ExpandedSz(_) => format::EXPANDED_SZ,
            ValueData::SecurityDescriptor(_) => format::SECURITY_DESCRIPTOR,
            ValueData::LargeInteger(_) => format::LARGE_INTEGER,
            ValueData::Word(_) => format::WORD,
            ValueData::FileTime(_) => format::FILETIME,
            ValueData::ValueList(_) => format::VALUE_LIST,
            ValueData::PropertyList(_) => format::PROPERTY_LIST,
            ValueData::Other { format, .. } => *format,
        }
    }

    /// The value as a string, for the string formats.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ValueData::Sz(s) | ValueData::ExpandSz(s) | ValueData::ExpandedSz(s) => Some(s),
            _ => None,
        }
    }

    /// The value as a DWORD, for DWORD and WORD.
    pub fn as_dword(&self) -> Option<u32> {
        match self {
            ValueData::Dword(v) => Some(*v),
            ValueData::Word(v) => Some(u32::from(*v)),
            _ => None,
        }
    }

    /// The value as text, as an operator would type it: strings as they are, numbers in
    /// decimal, MULTI_SZ joined with newlines; `None` for binary and nested data.
    pub fn to_text(&self) -> Option<String> {
        Some(match self {
            ValueData::Sz(s) | ValueData::ExpandSz(s) | ValueData::ExpandedSz(s) => s.clone(),
            ValueData::MultiSz(v) => v.join("\n"),
            ValueData::Dword(v) => v.to_string(),
            ValueData::Word(v) => v.to_string(),
            ValueData::Long(v) => v.to_string(),
            ValueData::ULargeInteger(v) | ValueData::FileTime(v) => v.to_string(),
            ValueData::LargeInteger(v) => v.to_string(),
            _ => return None,
        })
    }
}

/// One value entry: a type (normally `LIST_VALUE`) and its data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Value {
    /// The type word (`value_type::LIST_VALUE` for property values).
    pub value_type: u16,
    /// The data, which also gives the format word.
    pub data: ValueData,
}

impl Value {
    /// A `LIST_VALUE` entry.
    pub fn new(data: ValueData) -> Self {
        Value { value_type: value_type::LIST_VALUE, data }
    }

    /// The full syntax word.
    pub fn syntax(&self) -> u32 {
        syntax::make(self.value_type, self.data.format())
    }
}

/// One property: a name and one or more values.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Property {
    /// The property name.
    pub name: String,
    /// Its values; the first is "the" value, later ones carry extra information.
    pub values: Vec<Value>,
}

impl Property {
    /// The first value's data.
    pub fn value(&self) -> Option<&ValueData> {
        self.values.first().map(|v| &v.data)
    }
}

/// A property list, in wire order. Names are matched ignoring ASCII case, as the cluster does.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PropertyList {
    properties: Vec<Property>,
}

impl PropertyList {
    /// An empty list.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds or replaces a single-valued property, builder style.
    pub fn with(mut self, name: &str, data: ValueData) -> Self {
        self.set(name, data);
        self
    }

    /// Sets a property to one value, replacing it if present (keeping its position).
    pub fn set(&mut self, name: &str, data: ValueData) {
        let values = vec![Value::new(data)];
        match self.find_mut(name) {
            Some(p) => p.values = values,
            None => self.properties.push(Property { name: name.to_string(), values }),
        }
    }

    /// Appends a property as it is, even if one of that name exists.
    pub fn push(&mut self, property: Property) {
        self.properties.push(property);
    }

    /// Removes a property; returns it if it was there.
    pub fn remove(&mut self, name: &str) -> Option<Property> {
        let i = self.properties.iter().position(|p| p.name.eq_ignore_ascii_case(name))?;
        Some(self.properties.remove(i))
    }

    /// The property of that name.
    pub fn property(&self, name: &str) -> Option<&Property> {
        self.properties.iter().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    fn find_mut(&mut self, name: &str) -> Option<&mut Property> {
        self.properties.iter_mut().find(|p| p.name.eq_ignore_ascii_case(name))
    }

    /// The first value of the property of that name.
    pub fn get(&self, name: &str) -> Option<&ValueData> {
        self.property(name).and_then(Property::value)
    }

    /// A DWORD (or WORD) property.
    pub fn get_dword(&self, name: &str) -> Option<u32> {
        self.get(name).and_then(ValueData::as_dword)
    }

    /// A string property (SZ, EXPAND_SZ, EXPANDED_SZ).
    pub fn get_str(&self, name: &str) -> Option<&str> {
        self.get(name).and_then(ValueData::as_str)
    }

    /// A MULTI_SZ property.
    pub fn get_multi_sz(&self, name: &str) -> Option<&[String]> {
        match self.get(name) {
            Some(ValueData::MultiSz(v)) => Some(v),
            _ => None,
        }
    }

    /// The properties, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Property> {
        self.properties.iter()
    }

    /// How many properties.
    pub fn len(&self) -> usize {
        self.properties.len()
    }

    /// No properties.
    pub fn is_empty(&self) -> bool {
        self.properties.is_empty()
    }

    /// Encodes to wire bytes.
    pub fn encode(&self) -> Result<Vec<u8>, EncodeError> {
        let mut out = Vec::new();
        encode_property_list(self, &mut out, 0)?;
        Ok(out)
    }

    /// Decodes wire bytes (tolerating one extra trailing ENDMARK).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader { buf: bytes, pos: 0 };
        let list = decode_property_list(&mut r, 0)?;
        r.finish()?;
        Ok(list)
    }
}

impl FromIterator<Property> for PropertyList {
    fn from_iter<T: IntoIterator<Item = Property>>(iter: T) -> Self {
        PropertyList { properties: iter.into_iter().collect() }
    }
}

/// Encodes a bare value list (entries then ENDMARK), as `GET_REQUIRED_DEPENDENCIES` returns.
pub fn encode_value_list(values: &[Value]) -> Result<Vec<u8>, EncodeError> {
    let mut out = Vec::new();
    encode_values(values, "", &mut out, 0)?;
    Ok(out)
}

/// Decodes a bare value list (tolerating one extra trailing ENDMARK).
pub fn decode_value_list(bytes: &[u8]) -> Result<Vec<Value>, DecodeError> {
    let mut r = Reader { buf: bytes, pos: 0 };
    let values = decode_values(&mut r, 0)?;
    r.finish()?;
    Ok(values)
}

// ---- encoding ----

fn padding(len: usize) -> usize {
    (4 - len % 4) % 4
}

fn put_entry(out: &mut Vec<u8>, syntax: u32, data: &[u8]) -> Result<(), EncodeError> {
    let len = u32::try_from(data.len()).map_err(|_| EncodeError::TooLong)?;
    out.extend_from_slice(&syntax.to_le_bytes());
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(data);
    out.resize(out.len() + padding(data.len()), 0);
    Ok(())
}

fn utf16z(s: &str, property: &str, out: &mut Vec<u8>) -> Result<(), EncodeError> {
    if s.contains('\0') {
        return Err(EncodeError::NulInString { property: property.to_string() });
    }
    for unit in s.encode_utf16().chain(std::iter::once(0)) {
        out.extend_from_slice(&unit.to_le_bytes());
    }
    Ok(())
}

fn encode_property_list(list: &PropertyList, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    let count = u32::try_from(list.properties.len()).map_err(|_| EncodeError::TooLong)?;
    out.extend_from_slice(&count.to_le_bytes());
    for p in &list.properties {
        if p.values.is_empty() {
            return Err(EncodeError::NoValue { property: p.name.clone() });
        }
        let mut name = Vec::new();
        utf16z(&p.name, &p.name, &mut name)?;
        put_entry(out, syntax::NAME, &name)?;
        encode_values(&p.values, &p.name, out, depth)?;
    }
    Ok(())
}

fn encode_values(values: &[Value], property: &str, out: &mut Vec<u8>, depth: usize) -> Result<(), EncodeError> {
    if depth > MAX_DEPTH {
        return Err(EncodeError::TooDeep);
    }
    for v in values {
        if v.syntax() == syntax::ENDMARK {
            return Err(EncodeError::EndmarkSyntax { property: property.to_string() });
        }
        let mut data = Vec::new();
        match &v.data {
            ValueData::Binary(b) | ValueData::SecurityDescriptor(b) => data.extend_from_slice(b),
            ValueData::Other { data: b, .. } => data.extend_from_slice(b),
            ValueData::Dword(x) => data.extend_from_slice(&x.to_le_bytes()),
            ValueData::Long(x) => data.extend_from_slice(&x.to_le_bytes()),
            ValueData::Word(x) => data.extend_from_slice(&x.to_le_bytes()),
            ValueData::ULargeInteger(x) | ValueData::FileTime(x) => data.extend_from_slice(&x.to_le_bytes()),
            ValueData::LargeInteger(x) => data.extend_from_slice(&x.to_le_bytes()),
            ValueData::Sz(s) | ValueData::ExpandSz(s) | ValueData::ExpandedSz(s) => utf16z(s, property, &mut data)?,
            ValueData::MultiSz(strings) => {
                for s in strings {
                    if s.is_empty() {
                        return Err(EncodeError::EmptyInMultiSz { property: property.to_string() });
                    }
                    utf16z(s, property, &mut data)?;
                }
                data.extend_from_slice(&[0, 0]);
            }
            ValueData::ValueList(inner) => encode_values(inner, property, &mut data, depth + 1)?,
            ValueData::PropertyList(inner) => encode_property_list(inner, &mut data, depth + 1)?,
        }
        put_entry(out, v.syntax(), &data)?;
    }
    out.extend_from_slice(&syntax::ENDMARK.to_le_bytes());
    Ok(())
}

// ---- decoding ----

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn error(&self, reason: impl Into<String>) -> DecodeError {
        DecodeError { offset: self.pos, reason: reason.into() }
    }

    fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    fn u32(&mut self, what: &str) -> Result<u32, DecodeError> {
        let bytes = self.take(4, what)?;
        Ok(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]))
    }

    fn take(&mut self, len: usize, what: &str) -> Result<&'a [u8], DecodeError> {
        if len > self.remaining() {
            return Err(self.error(format!("{what} needs {len} bytes, only {} left", self.remaining())));
        }
        let slice = &self.buf[self.pos..self.pos + len];
        self.pos += len;
        Ok(slice)
    }

    /// Reads `syntax`'s length and data, and skips the padding after it.
    fn entry_data(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u32("entry length")? as usize;
        let data = self.take(len, "entry data")?;
        self.take(padding(len), "entry padding")?;
        Ok(data)
    }

    /// Accepts the end of input, or exactly one extra ENDMARK.
    fn finish(&mut self) -> Result<(), DecodeError> {
        match self.remaining() {
            0 => Ok(()),
            4 if self.buf[self.pos..] == [0, 0, 0, 0] => Ok(()),
            n => Err(self.error(format!("{n} unexpected trailing bytes"))),
        }
    }
}

fn decode_property_list(r: &mut Reader<'_>, depth: usize) -> Result<PropertyList, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.error(format!("lists nest deeper than {MAX_DEPTH}")));
    }
    let count = r.u32("property count")?;
    // No capacity from `count`: the input must pay for every property it claims.
    let mut properties = Vec::new();
    for i in 0..count {
        let at = r.pos;
        let syntax = r
            .u32("property name syntax")
            .map_err(|e| DecodeError { reason: format!("property {i} of {count} missing: {}", e.reason), ..e })?;
        if syntax != syntax::NAME {
            return Err(DecodeError {
                offset: at,
                reason: format!(
                    "expected a property name (syntax {:#010x}), found syntax {syntax:#010x}",
                    syntax::NAME
                ),
            });
        }
        let data = r.entry_data()?;
        let name = utf16_string(data, at)?;
        let values = decode_values(r, depth)?;
        if values.is_empty() {
            return Err(DecodeError { offset: at, reason: format!("property {name:?} has no value") });
        }
        properties.push(Property { name, values });
    }
    Ok(PropertyList { properties })
}

fn decode_values(r: &mut Reader<'_>, depth: usize) -> Result<Vec<Value>, DecodeError> {
    if depth > MAX_DEPTH {
        return Err(r.error(format!("lists nest deeper than {MAX_DEPTH}")));
    }
    let mut values = Vec::new();
    loop {
        let at = r.pos;
        let syntax = r.u32("value syntax or ENDMARK")?;
        if syntax == syntax::ENDMARK {
            return Ok(values);
        }
        let value_type = (syntax >> 16) as u16;
        let fmt = syntax as u16;
        let data = r.entry_data()?;
        let data = decode_data(fmt, data, at, depth)?;
        values.push(Value { value_type, data });
    }
}

fn fixed<const N: usize>(data: &[u8], at: usize, what: &str) -> Result<[u8; N], DecodeError> {
    data.try_into()
        .map_err(|_| DecodeError { offset: at, reason: format!("{what} must be {N} bytes long, is {}", data.len()) })
}

fn decode_data(fmt: u16, data: &[u8], at: usize, depth: usize) -> Result<ValueData, DecodeError> {
    Ok(match fmt {
        format::BINARY => ValueData::Binary(data.to_vec()),
        format::SECURITY_DESCRIPTOR => ValueData::SecurityDescriptor(data.to_vec()),
        format::DWORD => ValueData::Dword(u32::from_le_bytes(fixed(data, at, "a DWORD")?)),
        format::LONG => ValueData::Long(i32::from_le_bytes(fixed(data, at, "a LONG")?)),
        format::WORD => ValueData::Word(u16::from_le_bytes(fixed(data, at, "a WORD")?)),
        format::ULARGE_INTEGER => ValueData::ULargeInteger(u64::from_le_bytes(fixed(data, at, "a ULARGE_INTEGER")?)),
        format::LARGE_INTEGER => ValueData::LargeInteger(i64::from_le_bytes(fixed(data, at, "a LARGE_INTEGER")?)),
        format::FILETIME => ValueData::FileTime(u64::from_le_bytes(fixed(data, at, "a FILETIME")?)),
        format::SZ => ValueData::Sz(utf16_string(data, at)?),
        format::EXPAND_SZ => ValueData::ExpandSz(utf16_string(data, at)?),
        format::EXPANDED_SZ => ValueData::ExpandedSz(utf16_string(data, at)?),
        format::MULTI_SZ => ValueData::MultiSz(utf16_multi(data, at)?),
        format::VALUE_LIST => {
            let mut inner = Reader { buf: data, pos: 0 };
            let values = decode_values(&mut inner, depth + 1).map_err(|e| shift(e, at + 8))?;
            inner.finish().map_err(|e| shift(e, at + 8))?;
            ValueData::ValueList(values)
        }
        format::PROPERTY_LIST => {
            let mut inner = Reader { buf: data, pos: 0 };
            let list = decode_property_list(&mut inner, depth + 1).map_err(|e| shift(e, at + 8))?;
            inner.finish().map_err(|e| shift(e, at + 8))?;
            ValueData::PropertyList(list)
        }
        other => ValueData::Other { format: other, data: data.to_vec() },
    })
}

fn shift(mut e: DecodeError, by: usize) -> DecodeError {
    e.offset += by;
    e
}

fn utf16_units(data: &[u8], at: usize) -> Result<Vec<u16>, DecodeError> {
    if data.len() % 2 != 0 {
        return Err(DecodeError { offset: at, reason: format!("UTF-16 string has odd length {}", data.len()) });
    }
    Ok(data.chunks_exact(2).map(|c| u16::from_le_bytes([c[0], c[1]])).collect())
}

fn utf16_to_string(units: &[u16], at: usize) -> Result<String, DecodeError> {
    String::from_utf16(units).map_err(|_| DecodeError { offset: at, reason: "string is not valid UTF-16".into() })
}

fn utf16_string(data: &[u8], at: usize) -> Result<String, DecodeError> {
    let units = utf16_units(data, at)?;
    match units.split_last() {
        Some((0, body)) if !body.contains(&0) => utf16_to_string(body, at),
        Some((0, _)) => Err(DecodeError { offset: at, reason: "string contains a NUL before its end".into() }),
        _ => Err(DecodeError { offset: at, reason: "string is not NUL-terminated".into() }),
    }
}

fn utf16_multi(data: &[u8], at: usize) -> Result<Vec<String>, DecodeError> {
    let units = utf16_units(data, at)?;
    let body = match units.split_last() {
        Some((0, body)) => body,
        _ => return Err(DecodeError { offset: at, reason: "MULTI_SZ is not NUL-terminated".into() }),
    };
    if body.is_empty() {
        return Ok(Vec::new());
    }
    // `body` is "s1\0s2\0…sn\0": each string ends with its own NUL, none is empty.
    let Some((0, strings)) = body.split_last() else {
        return Err(DecodeError { offset: at, reason: "MULTI_SZ does not end with a double NUL".into() });
    };
    strings
        .split(|u| *u == 0)
        .map(|s| {
            if s.is_empty() {
                Err(DecodeError { offset: at, reason: "MULTI_SZ holds an empty string".into() })
            } else {
                utf16_to_string(s, at)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dword_property_bytes_are_exact() {
        let list = PropertyList::new().with("A", ValueData::Dword(7));
        let bytes = list.encode().unwrap();
        let expected: Vec<u8> = [
            1u32.to_le_bytes().as_slice(),
            &syntax::NAME.to_le_bytes(),
            &4u32.to_le_bytes(),
            &[b'A', 0, 0, 0],
            &syntax::LIST_VALUE_DWORD.to_le_bytes(),
            &4u32.to_le_bytes(),
            &7u32.to_le_bytes(),
            &0u32.to_le_bytes(),
        ]
        .concat();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn string_padding_is_zeroed_and_aligned() {
        // "ab" = 6 bytes with its terminator, padded to 8.
        let bytes = PropertyList::new().with("ab", ValueData::Word(0xBEEF)).encode().unwrap();
        assert_eq!(bytes.len() % 4, 0);
        assert_eq!(&bytes[12..20], &[b'a', 0, b'b', 0, 0, 0, 0, 0]);
        // The WORD is 2 bytes of data, padded with 2 zero bytes.
        assert_eq!(&bytes[28..32], &[0xEF, 0xBE, 0, 0]);
    }

    #[test]
    fn multi_sz_layout_and_empty_string_rules() {
        let v = encode_value_list(&[Value::new(ValueData::MultiSz(vec!["a".into(), "b".into()]))]).unwrap();
        assert_eq!(&v[8..16], &[b'a', 0, 0, 0, b'b', 0, 0, 0]);
        assert_eq!(&v[16..20], &[0, 0, 0, 0], "double-NUL end, then padding");
        let err = encode_value_list(&[Value::new(ValueData::MultiSz(vec!["".into()]))]).unwrap_err();
        assert!(matches!(err, EncodeError::EmptyInMultiSz { .. }));
        let empty = encode_value_list(&[Value::new(ValueData::MultiSz(vec![]))]).unwrap();
        assert_eq!(decode_value_list(&empty).unwrap(), vec![Value::new(ValueData::MultiSz(vec![]))]);
    }

    #[test]
    fn trailing_endmark_is_tolerated_once() {
        let mut bytes = PropertyList::new().with("x", ValueData::Sz("y".into())).encode().unwrap();
        bytes.extend_from_slice(&[0; 4]);
        assert!(PropertyList::decode(&bytes).is_ok());
        bytes.extend_from_slice(&[0; 4]);
        let err = PropertyList::decode(&bytes).unwrap_err();
        assert!(err.reason.contains("trailing"), "{err}");
    }

    #[test]
    fn huge_claimed_count_fails_cleanly() {
        let err = PropertyList::decode(&u32::MAX.to_le_bytes()).unwrap_err();
        assert!(err.reason.contains("missing"), "{err}");
        assert_eq!(err.status(), Status::ERROR_INVALID_DATA);
    }

    #[test]
    fn case_insensitive_lookup_and_replace() {
        let mut list = PropertyList::new().with("Port", ValueData::Dword(1));
        list.set("PORT", ValueData::Dword(2));
        assert_eq!(list.len(), 1);
        assert_eq!(list.get_dword("port"), Some(2));
        assert!(list.remove("pOrT").is_some());
        assert!(list.is_empty());
    }
}
