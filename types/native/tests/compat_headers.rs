//! The Windows-style headers (`include/compat`): a Windows-style source compiles with `-Werror`,
//! every control code and shared constant has Windows' value, the macros are single values in
//! expressions, the structures have the loader's layouts, and the inline helpers behave.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

mod common;

use common::{compile_compat, repo_root};
use halo_type_native::NativeLibrary;
use resapi::Status;
use resapi::control::codes;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;

/// Compiles `body` (a C `main` body) against the compat headers and returns its "name value" lines.
fn probe(dir: &Path, body: &str) -> BTreeMap<String, String> {
    let source = dir.join("probe.c");
    let program = format!(
        "#include <windows.h>\n#include <clusapi.h>\n#include <resapi.h>\n#include <stdio.h>\n\
         #define SHOW(name, value) printf(\"%s %llu\\n\", name, (unsigned long long)(value))\n\
         int main(void) {{\n{body}\nreturn 0;\n}}\n"
    );
    std::fs::write(&source, program).unwrap();
    let exe = compile_compat(&[source], &dir.join("probe"), false);
    let out = Command::new(&exe).output().unwrap();
    assert!(out.status.success(), "the probe runs");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .filter_map(|l| l.rsplit_once(' ').map(|(k, v)| (k.to_string(), v.to_string())))
        .collect()
}

fn show(body: &mut String, name: &str, expr: &str) {
    writeln!(body, "SHOW(\"{name}\", {expr});").unwrap();
}

#[test]
fn the_windows_style_sample_compiles_with_werror_and_exports_the_wide_marker() {
    let dir = tempfile::tempdir().unwrap();
    let so = compile_compat(
        &[repo_root().join("examples/windows-style/demo_service.c")],
        &dir.path().join("libdemo.so"),
        true,
    );
    let library = NativeLibrary::load(&so).unwrap();
    assert!(library.is_wide(), "HaloResApiWideStrings marks it wide");
    // A plug-in for halo's own header stays narrow.
    let narrow = common::compile(
        &[repo_root().join("examples/native/sample_resource.c")],
        &[],
        &dir.path().join("libnarrow.so"),
        true,
    );
    assert!(!NativeLibrary::load(narrow).unwrap().is_wide());
}

#[test]
fn control_codes_and_constants_have_windows_values() {
    let dir = tempfile::tempdir().unwrap();
    let table =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/c/windows_codes.txt")).unwrap();
    let mut expected: BTreeMap<String, u64> = table
        .lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (name, value) = l.split_once(' ').unwrap();
            (name.to_string(), value.trim().parse().unwrap())
        })
        .collect();
    // halo's own names must mean the same numbers in the Windows-style headers.
    for (name, code) in codes::ALL {
        expected.insert(name.to_string(), u64::from(code.0));
    }
    for (name, status) in Status::ALL {
        expected.insert(name.to_string(), u64::from(status.0));
    }
    let fixed: &[(&str, u64)] = &[
        ("CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE)", 0x0180_0004),
        ("CLUSCTL_USER_CODE(1, CLUS_OBJECT_RESOURCE_TYPE)", 0x0280_0004),
        ("CLUSCTL_RESOURCE_USER_CODE(1, CLUS_NO_MODIFY)", 0x0180_0004),
        ("CLCTL_USER_CODE(1, 0)", 0x0080_0004),
        ("CLCTL_EXTERNAL_CODE(33, CLUS_ACCESS_WRITE, CLUS_MODIFY)", 0x0040_0086),
        ("CLCTL_INTERNAL_CODE(1, CLUS_ACCESS_WRITE, CLUS_MODIFY)", 0x0050_0006),
        ("CLUSCTL_GET_CONTROL_OBJECT(0x01800004)", 1),
        ("CLUSCTL_GET_CONTROL_FUNCTION(0x01400086)", 0x0000_0086),
        ("CLUSCTL_GET_ACCESS_MODE(0x01400086)", 2),
        ("CLUSCTL_GET_USER(0x01200004)", 1),
        ("CLCTL_USER_BASE", 0x0020_0000),
        ("CLCTL_USER_SHIFT", 21),
        ("CLCTL_MODIFY_SHIFT", 22),
        ("CLCTL_GLOBAL_SHIFT", 23),
        ("CLCTL_INTERNAL_SHIFT", 20),
        ("CLUSCTL_OBJECT_SHIFT", 24),
        ("CLUSCTL_FUNCTION_SHIFT", 2),
        ("CLUS_OBJECT_USER", 128),
        ("CLUSPROP_SYNTAX_NAME", 0x0004_0003),
        ("CLUSPROP_SYNTAX_LIST_VALUE_DWORD", 0x0001_0002),
        ("CLUSPROP_SYNTAX_LIST_VALUE_WORD", 0x0001_000B),
        ("CLUS_CHAR_NOT_PREEMPTABLE", 0x4000),
        ("RESUTIL_PROPITEM_READ_ONLY", 1),
        ("RESUTIL_PROPITEM_REQUIRED", 2),
        ("RESUTIL_PROPITEM_SIGNED", 4),
        ("CLRES_VERSION_V2_00", 0x200),
        ("KEY_READ", 0x0002_0019),
        ("KEY_WRITE", 0x0002_0006),
        ("KEY_ALL_ACCESS", 0x000F_003F),
        ("REG_SZ", 1),
        ("REG_EXPAND_SZ", 2),
        ("REG_BINARY", 3),
        ("REG_DWORD", 4),
        ("REG_MULTI_SZ", 7),
        ("REG_QWORD", 11),
        ("LPTR", 0x40),
        ("LMEM_ZEROINIT", 0x40),
        ("CP_UTF8", 65001),
        ("ERROR_NO_MORE_ITEMS", 259),
        ("WAIT_TIMEOUT", 258),
        ("INFINITE", 0xFFFF_FFFF),
        ("sizeof(WCHAR)", 4),
        ("sizeof(DWORD)", 4),
        ("sizeof(LONG)", 4),
        ("sizeof(ULONG)", 4),
        ("sizeof(WORD)", 2),
        ("sizeof(DWORD_PTR)", 8),
        ("sizeof(RESOURCE_HANDLE)", 8),
        ("sizeof(HKEY)", 8),
        ("sizeof(ULARGE_INTEGER)", 8),
        ("sizeof(CLUSPROP_DWORD)", 12),
        ("sizeof(CLUSPROP_VALUE)", 8),
        ("offsetof(CLUSPROP_ULARGE_INTEGER, li)", 8),
        ("offsetof(CLUSPROP_LIST, PropertyName)", 4),
        ("sizeof(RESUTIL_PROPERTY_ITEM)", 48),
        ("offsetof(RESUTIL_PROPERTY_ITEM, Format)", 16),
        ("offsetof(RESUTIL_PROPERTY_ITEM, Default)", 24),
        ("offsetof(RESUTIL_PROPERTY_ITEM, lpDefault)", 24),
        ("offsetof(RESUTIL_PROPERTY_ITEM, Minimum)", 32),
        ("offsetof(RESUTIL_PROPERTY_ITEM, Flags)", 40),
        ("offsetof(RESUTIL_PROPERTY_ITEM, Offset)", 44),
        // Each macro is one value: `==` and `*` must not bind inside it (the old paren bug).
        ("(0x12345678 == CLCTL_USER_CODE(1,0))", 0),
        ("(0x12345678 == CLUSCTL_USER_CODE(1,1))", 0),
        ("2 * CLCTL_USER_CODE(1, 0)", 2 * 0x0080_0004),
        ("2 * CLUSCTL_RESOURCE_USER_CODE(1, 0)", 2 * 0x0180_0004),
        ("CLUSCTL_GET_CONTROL_OBJECT(0x01000000 | 0x02000000)", 3),
    ];
    let mut body = String::new();
    for name in expected.keys() {
        show(&mut body, name, name);
    }
    for (expr, _) in fixed {
        show(&mut body, expr, expr);
    }
    let got = probe(dir.path(), &body);
    for (name, value) in expected.iter().map(|(n, v)| (n.as_str(), *v)).chain(fixed.iter().copied()) {
        assert_eq!(got.get(name).map(String::as_str), Some(value.to_string().as_str()), "{name}");
    }
}

#[test]
fn shared_structures_have_the_loaders_layout() {
    let dir = tempfile::tempdir().unwrap();
    let mut body = String::new();
    for (name, _) in halo_type_native::layout::facts() {
        show(&mut body, name, name);
    }
    let got = probe(dir.path(), &body);
    for (name, value) in halo_type_native::layout::facts() {
        assert_eq!(got.get(name), Some(&value.to_string()), "{name} in include/compat");
    }
}

#[test]
fn inline_helpers_behave_as_documented() {
    let dir = tempfile::tempdir().unwrap();
    let body = r#"
    WCHAR wide[16];
    char narrow[16];
    int n;
    CLUS_WORKER idle;
    LPWSTR dup;
    /* UTF-8 <-> wchar_t: "né𝄞" is 3 characters, 7 bytes (+ terminator). */
    n = MultiByteToWideChar(CP_UTF8, 0, "n\xc3\xa9\xf0\x9d\x84\x9e", -1, wide, 16);
    SHOW("MultiByteToWideChar", n);
    SHOW("wide[2]", wide[2]);
    n = WideCharToMultiByte(CP_UTF8, 0, wide, -1, NULL, 0, NULL, NULL);
    SHOW("WideCharToMultiByte size", n);
    n = WideCharToMultiByte(CP_UTF8, 0, wide, -1, narrow, 16, NULL, NULL);
    SHOW("WideCharToMultiByte", n == 8 && memcmp(narrow, "n\xc3\xa9\xf0\x9d\x84\x9e", 8) == 0);
    n = WideCharToMultiByte(CP_UTF8, 0, wide, -1, narrow, 3, NULL, NULL);
    SHOW("short buffer", n == 0 && GetLastError() == ERROR_INSUFFICIENT_BUFFER);
    n = MultiByteToWideChar(CP_UTF8, MB_ERR_INVALID_CHARS, "\xff", 1, wide, 16);
    SHOW("invalid", n == 0 && GetLastError() == ERROR_NO_UNICODE_TRANSLATION);
    SetLastError(ERROR_RESOURCE_NOT_FOUND);
    SHOW("GetLastError", GetLastError());
    dup = ResUtilDupString(L"abc");
    SHOW("ResUtilDupString", dup != NULL && wcscmp(dup, L"abc") == 0);
    SHOW("LocalFree", LocalFree(dup) == NULL);
    SHOW("ResUtilResourceTypesEqual", ResUtilResourceTypesEqual(L"Halo Demo", L"halo DEMO"));
    ZeroMemory(&idle, sizeof(idle));
    ClusWorkerTerminate(&idle); /* never created: nothing to wait for */
    SHOW("idle worker", idle.hThread == NULL);
    SHOW("lstrlenW", lstrlenW(L"four"));
    "#;
    let got = probe(dir.path(), body);
    let want = [
        ("MultiByteToWideChar", "4"),
        ("wide[2]", "119070"),
        ("WideCharToMultiByte size", "8"),
        ("WideCharToMultiByte", "1"),
        ("short buffer", "1"),
        ("invalid", "1"),
        ("GetLastError", "5007"),
        ("ResUtilDupString", "1"),
        ("LocalFree", "1"),
        ("ResUtilResourceTypesEqual", "1"),
        ("idle worker", "1"),
        ("lstrlenW", "4"),
    ];
    for (name, value) in want {
        assert_eq!(got.get(name).map(String::as_str), Some(value), "{name}");
    }
}
