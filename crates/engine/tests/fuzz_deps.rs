//! The `dependency_expression` fuzz target's invariants as a seeded proptest, so that
//! `cargo test` runs them where cargo-fuzz cannot build. Expressions, arbitrary or made of the
//! grammar's tokens, and valid ones damaged (characters replaced, cuts, tokens inserted), are
//! parsed: parsing never panics; what parses holds at most `MAX_TERMS` non-empty trimmed names
//! and displays as text that parses back to it; refusals carry the codes the API returns.
//! `check` agrees with a plain reachability search on random dependency graphs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use halo_engine::deps::{Dependencies, MAX_TERMS, check};
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::test_runner::{Config, RngSeed};
use resapi::Status;
use std::collections::{BTreeMap, BTreeSet};

/// Fixed seed and no regression files: CI runs the same cases every time.
fn config(cases: u32) -> Config {
    Config { cases, rng_seed: RngSeed::Fixed(0x4445_5053), failure_persistence: None, ..Config::default() }
}

/// Everything the fuzz target checks about one text.
fn parse(text: &str) -> Result<Option<Dependencies>, TestCaseError> {
    let deps = match Dependencies::parse(text) {
        Ok(deps) => deps,
        Err(e) => {
            prop_assert!(
                [Status::ERROR_INVALID_PARAMETER, Status::ERROR_DEPENDENCY_TREE_TOO_COMPLEX].contains(&e.status),
                "{}",
                e
            );
            return Ok(None);
        }
    };
    prop_assert!(deps.all_of.iter().map(Vec::len).sum::<usize>() <= MAX_TERMS);
    prop_assert!(deps.all_of.iter().all(|any| !any.is_empty()));
    for name in deps.all_of.iter().flatten() {
        prop_assert!(!name.is_empty() && name.trim() == name && !name.contains(']'), "{:?}", name);
    }
    let shown = deps.to_string();
    prop_assert_eq!(Dependencies::parse(&shown), Ok(deps.clone()), "{:?} shown as {:?}", text, shown);
    Ok(Some(deps))
}

/// Tokens of the grammar and what sits near it: brackets, keywords in any case, whitespace
/// ASCII and not, separators it does not know.
fn tokens() -> impl Strategy<Value = String> {
    const TOKENS: [&str; 20] = [
        "[",
        "]",
        "(",
        ")",
        " and ",
        " or ",
        "AND",
        "Or",
        " ",
        "\t",
        "\u{a0}",
        "\u{2003}",
        "ip",
        "disk",
        "é",
        "\u{1F600}",
        "[a]",
        "[ b ]",
        "&&",
        "andor",
    ];
    proptest::collection::vec((any::<u8>(), any::<char>()), 0..24).prop_map(|parts| {
        parts
            .into_iter()
            .map(|(k, c)| TOKENS.get(k as usize % 24).map_or_else(|| c.to_string(), |t| t.to_string()))
            .collect()
    })
}

fn name() -> impl Strategy<Value = String> {
    // Trimmed, non-empty, no ']': what `parse` returns; anything else may appear inside.
    proptest::collection::vec(any::<char>().prop_filter("no ]", |c| *c != ']'), 1..6)
        .prop_map(String::from_iter)
        .prop_filter("trimmed and non-empty", |s| !s.trim().is_empty() && s.trim() == s)
}

fn dependencies() -> impl Strategy<Value = Dependencies> {
    proptest::collection::vec(proptest::collection::vec(name(), 1..4), 0..5).prop_map(|all_of| Dependencies { all_of })
}

proptest! {
    #![proptest_config(config(3000))]

    #[test]
    fn arbitrary_text(chars in proptest::collection::vec(any::<char>(), 0..40)) {
        parse(&String::from_iter(chars))?;
    }

    #[test]
    fn token_soup(text in tokens()) {
        parse(&text)?;
    }
}

proptest! {
    #![proptest_config(config(2000))]

    #[test]
    fn valid_expressions_read_back(deps in dependencies()) {
        prop_assert_eq!(parse(&deps.to_string())?, Some(deps));
    }

    #[test]
    fn damaged_expressions(
        deps in dependencies(),
        edits in proptest::collection::vec((any::<Index>(), any::<Option<char>>()), 1..4),
        cut in any::<Index>(),
    ) {
        let mut chars: Vec<char> = deps.to_string().chars().collect();
        for (at, with) in edits {
            let at = at.index(chars.len() + 1);
            match with {
                Some(c) if at < chars.len() => chars[at] = c,
                Some(c) => chars.push(c),
                None if at < chars.len() => { chars.remove(at); }
                None => {}
            }
        }
        parse(&String::from_iter(&chars))?;
        parse(&String::from_iter(&chars[..cut.index(chars.len() + 1)]))?;
    }

    #[test]
    fn check_agrees_with_reachability(
        edges in proptest::collection::vec((0usize..6, 0usize..6), 0..10),
        new in proptest::collection::btree_set(0usize..7, 1..4),
    ) {
        // Resources r0..r5 of one group; r6 does not exist. `r0` gets dependencies `new`.
        let names: Vec<String> = (0..7).map(|i| format!("r{i}")).collect();
        let group_of: BTreeMap<String, String> = names[..6].iter().map(|n| (n.clone(), "g".to_string())).collect();
        let mut existing: BTreeMap<String, Dependencies> = BTreeMap::new();
        for (from, to) in &edges {
            existing.entry(names[*from].clone()).or_default().all_of.push(vec![names[*to].clone()]);
        }
        let deps = Dependencies { all_of: new.iter().map(|i| vec![names[*i].clone()]).collect() };
        let result = check("r0", "g", &deps, &group_of, &existing).map_err(|e| e.status);
        let expected = if new.contains(&0) {
            Err(Status::ERROR_DEPENDENCY_NOT_ALLOWED)
        } else if new.contains(&6) {
            Err(Status::ERROR_RESOURCE_NOT_FOUND)
        } else {
            // Plain search: is r0 reachable from its new dependencies through the existing ones?
            let mut seen = BTreeSet::new();
            let mut todo: Vec<usize> = new.iter().copied().collect();
            while let Some(n) = todo.pop() {
                if seen.insert(n) {
                    todo.extend(edges.iter().filter(|(from, _)| *from == n).map(|(_, to)| *to));
                }
            }
            if seen.contains(&0) { Err(Status::ERROR_CIRCULAR_DEPENDENCY) } else { Ok(()) }
        };
        prop_assert_eq!(result, expected);
    }
}

#[test]
fn expressions_over_the_term_limit_are_too_complex_not_a_panic() {
    let names: Vec<String> = (0..=MAX_TERMS).map(|i| format!("[r{i}]")).collect();
    let text = format!("({})", names.join(" or "));
    assert_eq!(Dependencies::parse(&text).unwrap_err().status, Status::ERROR_DEPENDENCY_TREE_TOO_COMPLEX);
    let deep = "(".repeat(10_000) + "[a]";
    assert_eq!(Dependencies::parse(&deep).unwrap_err().status, Status::ERROR_INVALID_PARAMETER);
}
