//! The C header and the Rust side agree: struct sizes and offsets (measured by compiling a C
//! probe), and every constant the header shares with the Rust contract.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{compile, repo_root};
use resapi::control::codes;
use resapi::{Characteristics, OfflineFlags, OnlineFlags, OpenFlags, StatusFlags};
use std::collections::HashMap;
use std::process::Command;

#[test]
fn struct_layout_matches_the_header() {
    let dir = tempfile::tempdir().unwrap();
    let probe = compile(
        &[std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/layout_probe.c")],
        &[],
        &dir.path().join("layout_probe"),
        false,
    );
    let out = Command::new(&probe).output().unwrap();
    assert!(out.status.success());
    let c: HashMap<String, usize> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_string(), v.parse().unwrap())))
        .collect();
    let rust = halo_type_native::layout::facts();
    assert_eq!(c.len(), rust.len(), "the probe and the Rust list cover the same facts");
    for (name, value) in rust {
        assert_eq!(c.get(name), Some(&value), "{name}");
    }
}

/// `#define NAME VALUE` lines of the header whose value is a plain number.
fn header_defines() -> HashMap<String, u64> {
    let text = std::fs::read_to_string(repo_root().join("include/halo_resapi.h")).unwrap();
    text.lines()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            (parts.next()? == "#define").then_some(())?;
            let name = parts.next()?;
            let value = parts.next()?.trim_end_matches('L');
            let n = match value.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16).ok()?,
                None => value.parse().ok()?,
            };
            Some((name.to_string(), n))
        })
        .collect()
}

fn expect_all(defines: &HashMap<String, u64>, expected: impl IntoIterator<Item = (String, u64)>) {
    for (name, value) in expected {
        assert_eq!(defines.get(&name), Some(&value), "{name} in include/halo_resapi.h");
    }
}

#[test]
fn header_constants_match_the_contract() {
    let d = header_defines();
    expect_all(&d, resapi::Status::ALL.iter().map(|(n, s)| (n.to_string(), u64::from(s.0))));
    expect_all(&d, codes::ALL.iter().map(|(n, c)| (n.to_string(), u64::from(c.0))));
    macro_rules! flags {
        ($t:ty) => {
            expect_all(
                &d,
                <$t>::all().iter_names().map(|(n, f)| (format!("{}{n}", <$t>::C_PREFIX), u64::from(f.bits()))),
            )
        };
    }
    flags!(OfflineFlags);
    flags!(OnlineFlags);
    flags!(OpenFlags);
    flags!(StatusFlags);
    flags!(Characteristics);
    assert_eq!(d.get("CLRES_VERSION_V1_00"), Some(&0x100));
    assert_eq!(d.get("CLRES_VERSION_V2_00"), Some(&0x200));
    assert_eq!(d.get("CLUSPROP_SYNTAX_NAME"), Some(&0x0004_0003));
    assert_eq!(u64::from(halo_type_native::MAX_VERSION), 0x200);
}

#[test]
fn control_code_macros_are_single_values_in_expressions() {
    let dir = tempfile::tempdir().unwrap();
    let probe = compile(
        &[std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/macro_probe.c")],
        &["-Wno-parentheses"],
        &dir.path().join("macro_probe"),
        false,
    );
    let out = String::from_utf8(Command::new(&probe).output().unwrap().stdout).unwrap();
    let fields: Vec<u64> = out.split_whitespace().map(|f| f.parse().unwrap()).collect();
    let code = fields[2];
    assert_eq!(fields, [0, 2 * code, code], "CLCTL_USER_CODE must expand to one parenthesized value");
    // Windows adds CLCTL_USER_BASE before shifting: the user bit lands on bit 23.
    assert_eq!(code, 0x0080_0004, "CLCTL_USER_CODE(1, 0) has Windows' value");
}
