//! Dependency expressions (`([ipA] or [ipB]) and [disk]`) from arbitrary text, and the checks
//! run on what parses.
//! Invariants: no panic; a parsed expression holds at most `MAX_TERMS` non-empty, trimmed names
//! in non-empty OR-groups; its display parses back to the same expression; refusals carry
//! ERROR_INVALID_PARAMETER or ERROR_DEPENDENCY_TREE_TOO_COMPLEX; `check` finds a missing
//! resource and a cycle through the resource itself.
//!
//! Run: `cd fuzz && RUSTC_BOOTSTRAP=1 cargo fuzz run dependency_expression -- -max_total_time=60`

#![no_main]

use halo_engine::deps::{Dependencies, MAX_TERMS, check};
use libfuzzer_sys::fuzz_target;
use resapi::Status;
use std::collections::BTreeMap;

// No parsed name can hold ']', so this resource is never named by the expression.
const SELF: &str = "self]";

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let deps = match Dependencies::parse(text) {
        Ok(deps) => deps,
        Err(e) => {
            assert!(
                [Status::ERROR_INVALID_PARAMETER, Status::ERROR_DEPENDENCY_TREE_TOO_COMPLEX].contains(&e.status),
                "{e}"
            );
            return;
        }
    };
    assert!(deps.all_of.iter().map(Vec::len).sum::<usize>() <= MAX_TERMS);
    for name in deps.all_of.iter().flatten() {
        assert!(!name.is_empty() && name.trim() == name && !name.contains(']'), "{name:?}");
    }
    assert!(deps.all_of.iter().all(|any| !any.is_empty()));
    let shown = deps.to_string();
    assert_eq!(Dependencies::parse(&shown).as_ref(), Ok(&deps), "{shown:?}");

    let same_group: BTreeMap<String, String> = deps.names().into_iter().map(|n| (n.into(), "g".into())).collect();
    assert_eq!(check(SELF, "g", &deps, &same_group, &BTreeMap::new()), Ok(()));
    if let Some(first) = deps.names().into_iter().next() {
        assert_eq!(
            check(SELF, "g", &deps, &BTreeMap::new(), &BTreeMap::new()).map_err(|e| e.status),
            Err(Status::ERROR_RESOURCE_NOT_FOUND)
        );
        let back = Dependencies { all_of: vec![vec![SELF.to_string()]] };
        let existing = BTreeMap::from([(first.to_string(), back)]);
        assert_eq!(
            check(SELF, "g", &deps, &same_group, &existing).map_err(|e| e.status),
            Err(Status::ERROR_CIRCULAR_DEPENDENCY)
        );
    }
});
