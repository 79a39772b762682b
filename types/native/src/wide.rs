//! Wide strings for plug-ins built against `include/compat` (the Windows-style headers).
//!
//! Such a plug-in exports `HaloResApiWideStrings`; its `WCHAR` is the C compiler's `wchar_t`,
//! 4 bytes of UTF-32 in native byte order. halo converts at the boundary: names and the type
//! name become NUL-terminated UTF-32, and control-code buffers that Windows defines as carrying
//! strings are re-encoded between halo's wire form (UTF-16LE strings, as on Windows) and the
//! plug-in's form (the same layout with UTF-32 strings). See `include/compat/resapi.h`.

use std::borrow::Cow;

/// The bytes of one plug-in `WCHAR`.
pub(crate) const WCHAR_SIZE: u32 = 4;

/// Why a buffer could not be converted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed {what} at byte {offset}")]
pub(crate) struct ConvertError {
    what: &'static str,
    offset: usize,
}

/// `s` as a NUL-terminated UTF-32 string. A NUL inside `s` ends the string there, as it would for C.
pub(crate) fn to_wide(s: &str) -> Vec<u32> {
    s.chars().map(u32::from).take_while(|&c| c != 0).chain(std::iter::once(0)).collect()
}

/// Reads a NUL-terminated UTF-32 string; invalid code points become U+FFFD.
///
/// # Safety
/// `p` must be NULL or point to a NUL-terminated array of `u32`.
pub(crate) unsafe fn from_wide_ptr(p: *const u32) -> Option<String> {
    if p.is_null() {
        return None;
    }
    let mut out = String::new();
    let mut i = 0;
    loop {
        // SAFETY: the caller guarantees a terminator, so every index up to it is readable.
        let unit = unsafe { p.add(i).read_unaligned() };
        if unit == 0 {
            return Some(out);
        }
        out.push(char::from_u32(unit).unwrap_or(char::REPLACEMENT_CHARACTER));
        i += 1;
    }
}

/// How a control code's buffer is laid out, for conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    /// A property list (count, then NAME/value/ENDMARK groups).
    PropertyList,
    /// A value list (entries up to the end).
    ValueList,
    /// Strings one after another, each NUL-terminated (MULTI_SZ).
    MultiSz,
    /// One NUL-terminated string.
    Sz,
    /// Anything else: passed byte for byte.
    Opaque,
}

/// The operation part of a resource or resource-type code; `None` for other objects.
fn operation(code: u32) -> Option<u32> {
    matches!(code >> 24, 1 | 2).then_some(code & 0x00FF_FFFF)
}

/// What the input buffer of `code` holds.
pub(crate) fn input_shape(code: u32) -> Shape {
    match operation(code) {
        // SET_/VALIDATE_ COMMON_/PRIVATE_ PROPERTIES.
        Some(0x0040_005E | 0x0000_0061 | 0x0040_0086 | 0x0000_0089) => Shape::PropertyList,
        // SET_NAME; ADD_/DELETE_ REGISTRY_/CRYPTO_ CHECKPOINT.
        Some(0x0050_0026 | 0x0040_00A2 | 0x0040_00A6 | 0x0040_00AE | 0x0040_00B2) => Shape::Sz,
        _ => Shape::Opaque,
    }
}

/// What the output buffer of `code` holds.
pub(crate) fn output_shape(code: u32) -> Shape {
    match operation(code) {
        // GET_(RO_)COMMON/PRIVATE_PROPERTIES, GET_*_PROPERTY_FMTS, GET_*_RESOURCE_PROPERTY_FMTS.
        Some(0x55 | 0x59 | 0x65 | 0x69 | 0x7D | 0x81 | 0x8D | 0x91) => Shape::PropertyList,
        // ENUM_COMMON/PRIVATE_PROPERTIES, GET_REGISTRY/CRYPTO_CHECKPOINTS.
        Some(0x51 | 0x79 | 0xA9 | 0xB5) => Shape::MultiSz,
        // GET_REQUIRED_DEPENDENCIES.
        Some(0x11) => Shape::ValueList,
        // GET_NAME, GET_RESOURCE_TYPE, GET_ID.
        Some(0x29 | 0x2D | 0x39) => Shape::Sz,
        _ => Shape::Opaque,
    }
}

/// Which way a buffer goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From the wire (UTF-16LE, little-endian fields) to the plug-in (UTF-32, native order).
    ToPlugin,
    /// From the plug-in to the wire.
    FromPlugin,
}

/// How deep value and property lists may nest.
const MAX_DEPTH: usize = 8;

/// Converts `bytes` of `shape` in `direction`. Opaque buffers come back borrowed.
pub(crate) fn convert(shape: Shape, direction: Direction, bytes: &[u8]) -> Result<Cow<'_, [u8]>, ConvertError> {
    let mut c = Converter { direction, input: bytes, pos: 0, out: Vec::with_capacity(bytes.len() * 2) };
    match shape {
        Shape::Opaque => return Ok(Cow::Borrowed(bytes)),
        Shape::PropertyList => c.property_list(bytes.len(), 0)?,
        Shape::ValueList => c.entries(bytes.len(), 0)?,
        Shape::MultiSz | Shape::Sz => c.string(bytes.len())?,
    }
    Ok(Cow::Owned(c.out))
}

struct Converter<'a> {
    direction: Direction,
    input: &'a [u8],
    pos: usize,
    out: Vec<u8>,
}

impl Converter<'_> {
    fn error(&self, what: &'static str) -> ConvertError {
        ConvertError { what, offset: self.pos }
    }

    fn take(&mut self, len: usize, what: &'static str) -> Result<&[u8], ConvertError> {
        let end = self.pos.checked_add(len).filter(|&e| e <= self.input.len()).ok_or_else(|| self.error(what))?;
        let slice = &self.input[self.pos..end];
        self.pos = end;
        Ok(slice)
    }

    /// A list field (syntax, length, count): little-endian on the wire, native in the plug-in.
    fn field(&mut self, what: &'static str) -> Result<u32, ConvertError> {
        let b = self.take(4, what)?;
        let raw = [b[0], b[1], b[2], b[3]];
        let value = match self.direction {
            Direction::ToPlugin => u32::from_le_bytes(raw),
            Direction::FromPlugin => u32::from_ne_bytes(raw),
        };
        self.put_field(value);
        Ok(value)
    }

    fn put_field(&mut self, value: u32) {
        let bytes = match self.direction {
            Direction::ToPlugin => value.to_ne_bytes(),
            Direction::FromPlugin => value.to_le_bytes(),
        };
        self.out.extend_from_slice(&bytes);
    }

    fn property_list(&mut self, end: usize, depth: usize) -> Result<(), ConvertError> {
        self.field("property count")?;
        self.entries(end, depth)
    }

    /// Entries up to `end`: each a syntax, then (unless ENDMARK) a length and padded data.
    fn entries(&mut self, end: usize, depth: usize) -> Result<(), ConvertError> {
        if depth > MAX_DEPTH {
            return Err(self.error("list nested too deep"));
        }
        while self.pos < end {
            let syntax = self.field("entry syntax")?;
            if syntax == 0 {
                continue; // ENDMARK
            }
            let len = self.input_field("entry length")? as usize;
            let padded = len.checked_add(3).map(|l| l & !3).ok_or_else(|| self.error("entry length"))?;
            let data_end = self.pos.checked_add(len).filter(|&e| e <= end).ok_or_else(|| self.error("entry data"))?;
            let len_at = self.out.len();
            self.put_field(0); // patched once the converted length is known
            let data_start = self.out.len();
            match syntax & 0xFFFF {
                // SZ, EXPAND_SZ, MULTI_SZ, EXPANDED_SZ (and NAME, whose format is SZ).
                3 | 4 | 5 | 8 => self.string(data_end)?,
                // A nested value list or property list.
                13 => self.entries(data_end, depth + 1)?,
                14 => self.property_list(data_end, depth + 1)?,
                _ => {
                    let data = self.take(len, "entry data")?.to_vec();
                    self.out.extend_from_slice(&data);
                }
            }
            let new_len = self.out.len() - data_start;
            let new_len32 = u32::try_from(new_len).map_err(|_| self.error("entry length"))?;
            let bytes = match self.direction {
                Direction::ToPlugin => new_len32.to_ne_bytes(),
                Direction::FromPlugin => new_len32.to_le_bytes(),
            };
            self.out[len_at..len_at + 4].copy_from_slice(&bytes);
            self.out.resize(self.out.len() + (4 - new_len % 4) % 4, 0);
            // Skip the input's padding (it may be missing at the very end of a buffer).
            self.pos = (self.pos + (padded - len)).min(end.max(self.pos));
        }
        Ok(())
    }

    /// Reads a field without echoing it (the caller writes the converted value).
    fn input_field(&mut self, what: &'static str) -> Result<u32, ConvertError> {
        let b = self.take(4, what)?;
        let raw = [b[0], b[1], b[2], b[3]];
        Ok(match self.direction {
            Direction::ToPlugin => u32::from_le_bytes(raw),
            Direction::FromPlugin => u32::from_ne_bytes(raw),
        })
    }

    /// Re-encodes the string units from here to `end`, NULs included.
    fn string(&mut self, end: usize) -> Result<(), ConvertError> {
        let len = end.checked_sub(self.pos).ok_or_else(|| self.error("string"))?;
        let data = self.take(len, "string")?.to_vec();
        match self.direction {
            Direction::ToPlugin => {
                if data.len() % 2 != 0 {
                    return Err(self.error("UTF-16 string"));
                }
                let units = data.chunks_exact(2).map(|u| u16::from_le_bytes([u[0], u[1]]));
                for c in char::decode_utf16(units) {
                    let c = c.unwrap_or(char::REPLACEMENT_CHARACTER);
                    self.out.extend_from_slice(&u32::from(c).to_ne_bytes());
                }
            }
            Direction::FromPlugin => {
                if data.len() % 4 != 0 {
                    return Err(self.error("UTF-32 string"));
                }
                let mut buf = [0u16; 2];
                for u in data.chunks_exact(4) {
                    let c = char::from_u32(u32::from_ne_bytes([u[0], u[1], u[2], u[3]]))
                        .unwrap_or(char::REPLACEMENT_CHARACTER);
                    for unit in c.encode_utf16(&mut buf) {
                        self.out.extend_from_slice(&unit.to_le_bytes());
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use resapi::{PropertyList, ValueData};

    #[test]
    fn property_lists_round_trip_through_the_plugin_form() {
        let list = PropertyList::new()
            .with("Name", ValueData::Sz("héllo 𝄞".into()))
            .with("Port", ValueData::Dword(8080))
            .with("Tags", ValueData::MultiSz(vec!["a".into(), "bc".into()]))
            .with("Blob", ValueData::Binary(vec![1, 2, 3]));
        let wire = list.encode().unwrap();
        let plugin = convert(Shape::PropertyList, Direction::ToPlugin, &wire).unwrap().into_owned();
        // The first name, "Name": 5 characters of 4 bytes.
        assert_eq!(u32::from_ne_bytes(plugin[8..12].try_into().unwrap()), 20);
        assert_eq!(u32::from_ne_bytes(plugin[12..16].try_into().unwrap()), u32::from('N'));
        let back = convert(Shape::PropertyList, Direction::FromPlugin, &plugin).unwrap();
        assert_eq!(PropertyList::decode(&back).unwrap(), list);
    }

    #[test]
    fn strings_and_names() {
        assert_eq!(to_wide("ab"), [97, 98, 0]);
        let wide = to_wide("n\u{e9}");
        // SAFETY: `wide` is NUL-terminated.
        assert_eq!(unsafe { from_wide_ptr(wide.as_ptr()) }.as_deref(), Some("n\u{e9}"));
        let plugin: Vec<u8> = [0x41u32, 0, 0x42, 0, 0].iter().flat_map(|u| u.to_ne_bytes()).collect();
        let wire = convert(Shape::MultiSz, Direction::FromPlugin, &plugin).unwrap();
        assert_eq!(&*wire, &[0x41, 0, 0, 0, 0x42, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn malformed_lists_are_refused_and_opaque_buffers_pass() {
        assert!(convert(Shape::PropertyList, Direction::ToPlugin, &[1, 0, 0, 0, 3, 0, 4]).is_err());
        assert!(convert(Shape::PropertyList, Direction::ToPlugin, &[1, 0, 0, 0, 3, 0, 4, 0, 99, 0, 0, 0]).is_err());
        let bytes = [9u8, 8, 7];
        assert!(matches!(convert(Shape::Opaque, Direction::ToPlugin, &bytes), Ok(Cow::Borrowed(b)) if b == bytes));
        assert_eq!(input_shape(0x0140_0086), Shape::PropertyList);
        assert_eq!(output_shape(0x0100_0081), Shape::PropertyList);
        assert_eq!(output_shape(0x0180_0004), Shape::Opaque, "user codes pass unchanged");
    }
}
