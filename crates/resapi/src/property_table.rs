//! Property tables (`RESUTIL_PROPERTY_ITEM`): a resource type declares its private properties
//! once — name, format, default, range, required — and validates a property list against them,
//! getting typed values or an error that names the property and what is allowed.
//!
//! Numbers and booleans may also arrive as strings (`"30"`, `"0x1e"`, `"true"`), as an operator
//! types them.

use crate::{PropertyList, Status, ValueData};
use std::collections::HashMap;
use std::fmt;

/// The format and bounds of one property.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PropertyKind {
    /// A DWORD within `min..=max`.
    Dword {
        /// The value when absent.
        default: u32,
        /// The smallest allowed value.
        min: u32,
        /// The largest allowed value.
        max: u32,
    },
    /// A boolean (a DWORD 0/1, or `true`/`false`/`yes`/`no`/`1`/`0`).
    Bool {
        /// The value when absent.
        default: bool,
    },
    /// A string.
    Sz {
        /// The value when absent (`None`: absent stays absent).
        default: Option<&'static str>,
    },
    /// A list of strings (MULTI_SZ, or a string split on newlines).
    MultiSz,
}

/// One declared property.
#[derive(Debug, Clone, Copy)]
pub struct PropertyItem {
    /// The property's name, matched ignoring ASCII case.
    pub name: &'static str,
    /// Its format, default and bounds.
    pub kind: PropertyKind,
    /// Must be present (`RESUTIL_PROPITEM_REQUIRED`).
    pub required: bool,
    /// One line for documentation and errors.
    pub description: &'static str,
}

impl PropertyItem {
    /// An optional DWORD.
    pub const fn dword(name: &'static str, default: u32, min: u32, max: u32, description: &'static str) -> Self {
        PropertyItem { name, kind: PropertyKind::Dword { default, min, max }, required: false, description }
    }

    /// An optional boolean.
    pub const fn boolean(name: &'static str, default: bool, description: &'static str) -> Self {
        PropertyItem { name, kind: PropertyKind::Bool { default }, required: false, description }
    }

    /// An optional string.
    pub const fn string(name: &'static str, default: Option<&'static str>, description: &'static str) -> Self {
        PropertyItem { name, kind: PropertyKind::Sz { default }, required: false, description }
    }

    /// An optional list of strings.
    pub const fn multi_string(name: &'static str, description: &'static str) -> Self {
        PropertyItem { name, kind: PropertyKind::MultiSz, required: false, description }
    }

    /// The same property, required.
    pub const fn required(mut self) -> Self {
        self.required = true;
        self
    }
}

/// A validated value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// A DWORD.
    Dword(u32),
    /// A boolean.
    Bool(bool),
    /// A string.
    Sz(String),
    /// A list of strings.
    MultiSz(Vec<String>),
}

/// A property that does not fit its declaration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("property {property:?}: {reason}")]
pub struct PropertyError {
    /// The property.
    pub property: String,
    /// What is wrong and what is allowed.
    pub reason: String,
    /// The Win32 code.
    pub status: Status,
}

/// Typed values after validation; absent optional properties hold their defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedProperties {
    values: HashMap<&'static str, Parsed>,
}

impl ParsedProperties {
    /// A DWORD property (its default if absent).
    pub fn dword(&self, name: &str) -> Option<u32> {
        match self.values.get(name) {
            Some(Parsed::Dword(v)) => Some(*v),
            _ => None,
        }
    }

    /// A boolean property.
    pub fn flag(&self, name: &str) -> bool {
        matches!(self.values.get(name), Some(Parsed::Bool(true)))
    }

    /// A string property.
    pub fn string(&self, name: &str) -> Option<&str> {
        match self.values.get(name) {
            Some(Parsed::Sz(v)) => Some(v),
            _ => None,
        }
    }

    /// A MULTI_SZ property (empty if absent).
    pub fn strings(&self, name: &str) -> &[String] {
        match self.values.get(name) {
            Some(Parsed::MultiSz(v)) => v,
            _ => &[],
        }
    }
}

/// A resource type's declared private properties.
#[derive(Debug, Clone, Copy)]
pub struct PropertyTable {
    /// The declarations.
    pub items: &'static [PropertyItem],
}

impl PropertyTable {
    /// Validates `list`: every property must be declared, of its format and in range; every
    /// required one present.
    pub fn verify(&self, list: &PropertyList) -> Result<ParsedProperties, PropertyError> {
        for p in list.iter() {
            if !self.items.iter().any(|i| i.name.eq_ignore_ascii_case(&p.name)) {
                return Err(PropertyError {
                    property: p.name.clone(),
                    reason: format!("unknown property; allowed: {}", self.names()),
                    status: Status::ERROR_INVALID_PARAMETER,
                });
            }
        }
        let mut values = HashMap::new();
        for item in self.items {
            let parsed = match list.get(item.name) {
                Some(v) => Some(parse(item, v)?),
                None if item.required => {
                    return Err(PropertyError {
                        property: item.name.to_string(),
                        reason: format!("required ({})", item.description),
                        status: Status::ERROR_INVALID_PARAMETER,
                    });
                }
                None => match item.kind {
                    PropertyKind::Dword { default, .. } => Some(Parsed::Dword(default)),
                    PropertyKind::Bool { default } => Some(Parsed::Bool(default)),
                    PropertyKind::Sz { default } => default.map(|d| Parsed::Sz(d.to_string())),
                    PropertyKind::MultiSz => None,
                },
            };
            if let Some(p) = parsed {
                values.insert(item.name, p);
            }
        }
        Ok(ParsedProperties { values })
    }

    /// The declared names, comma-separated.
    pub fn names(&self) -> String {
        self.items.iter().map(|i| i.name).collect::<Vec<_>>().join(", ")
    }
}

impl fmt::Display for PropertyTable {
    /// A Markdown table of the declarations, for documentation.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "| property | format | default | allowed | meaning |")?;
        writeln!(f, "|---|---|---|---|---|")?;
        for i in self.items {
            let (format, default, allowed) = match i.kind {
                PropertyKind::Dword { default, min, max } => ("DWORD", default.to_string(), format!("{min}..={max}")),
                PropertyKind::Bool { default } => ("BOOL", default.to_string(), "true, false".to_string()),
                PropertyKind::Sz { default } => ("SZ", default.unwrap_or("").to_string(), String::new()),
                PropertyKind::MultiSz => ("MULTI_SZ", String::new(), String::new()),
            };
            let default = if i.required { "(required)".to_string() } else { default };
            writeln!(f, "| {} | {format} | {default} | {allowed} | {} |", i.name, i.description)?;
        }
        Ok(())
    }
}

fn parse(item: &PropertyItem, value: &ValueData) -> Result<Parsed, PropertyError> {
    let error = |reason: String, status: Status| PropertyError { property: item.name.to_string(), reason, status };
    match item.kind {
        PropertyKind::Dword { min, max, .. } => {
            let n = value
                .as_dword()
                .or_else(|| value.as_str().and_then(crate::parse_u32))
                .ok_or_else(|| error(format!("expected a number in {min}..={max}"), Status::ERROR_INVALID_PARAMETER))?;
            if n < min || n > max {
                return Err(error(
                    format!("{n} is out of range {min}..={max}"),
                    Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS,
                ));
            }
            Ok(Parsed::Dword(n))
        }
        PropertyKind::Bool { .. } => {
            let b = match value {
                ValueData::Dword(0) => Some(false),
                ValueData::Dword(1) => Some(true),
                other => match other.as_str().map(|s| s.trim().to_ascii_lowercase()).as_deref() {
                    Some("1" | "true" | "yes" | "on") => Some(true),
                    Some("0" | "false" | "no" | "off") => Some(false),
                    _ => None,
                },
            };
            b.map(Parsed::Bool)
                .ok_or_else(|| error("expected true or false (or 1/0)".into(), Status::ERROR_INVALID_PARAMETER))
        }
        PropertyKind::Sz { .. } => value
            .as_str()
            .map(|s| Parsed::Sz(s.to_string()))
            .ok_or_else(|| error("expected a string".into(), Status::ERROR_INVALID_PARAMETER)),
        PropertyKind::MultiSz => match value {
            ValueData::MultiSz(v) => Ok(Parsed::MultiSz(v.clone())),
            other => other
                .as_str()
                .map(|s| Parsed::MultiSz(s.lines().filter(|l| !l.is_empty()).map(str::to_string).collect()))
                .ok_or_else(|| error("expected a list of strings".into(), Status::ERROR_INVALID_PARAMETER)),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: PropertyTable = PropertyTable {
        items: &[
            PropertyItem::dword("Port", 80, 1, 65535, "TCP port"),
            PropertyItem::boolean("Verbose", false, "log more"),
            PropertyItem::string("Command", None, "what to run").required(),
        ],
    };

    #[test]
    fn defaults_strings_and_errors() {
        let list = PropertyList::new().with("command", ValueData::Sz("/bin/true".into()));
        let p = TABLE.verify(&list).unwrap();
        assert_eq!((p.dword("Port"), p.flag("Verbose"), p.string("Command")), (Some(80), false, Some("/bin/true")));

        let list = list.with("Port", ValueData::Sz("0x1F90".into())).with("Verbose", ValueData::Sz("yes".into()));
        let p = TABLE.verify(&list).unwrap();
        assert_eq!((p.dword("Port"), p.flag("Verbose")), (Some(8080), true));

        let err = TABLE.verify(&list.clone().with("Port", ValueData::Dword(70000))).unwrap_err();
        assert_eq!(err.status, Status::ERROR_CLUSTER_PARAMETER_OUT_OF_BOUNDS);
        assert!(err.to_string().contains("70000 is out of range 1..=65535"), "{err}");

        let err = TABLE.verify(&PropertyList::new()).unwrap_err();
        assert_eq!(err.property, "Command");

        let err = TABLE.verify(&list.with("Colour", ValueData::Dword(1))).unwrap_err();
        assert!(err.reason.contains("allowed: Port, Verbose, Command"), "{err}");
    }
}
