//! Dependency expressions (WSFC's resource dependency expressions): an AND of OR-groups of resources in the same group, e.g.
//! `([ipA] or [ipB]) and [disk]`.
//!
//! ```text
//! expr := part | expr "and" part
//! part := res | "(" or ")"
//! or   := res | or "or" res
//! res  := "[" name "]"
//! ```

use resapi::Status;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

/// The most terms an expression may hold (WSFC refuses "too complex" trees too).
pub const MAX_TERMS: usize = 64;

/// A parsed expression: every inner list needs at least one online member; all lists must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Dependencies {
    /// AND of these OR-groups.
    pub all_of: Vec<Vec<String>>,
}

/// An expression that cannot be accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status}: {message}")]
pub struct DependencyError {
    /// The Win32 code.
    pub status: Status,
    /// What is wrong.
    pub message: String,
}

fn bad(message: impl Into<String>) -> DependencyError {
    DependencyError { status: Status::ERROR_INVALID_PARAMETER, message: message.into() }
}

impl Dependencies {
    /// Parses an expression; the empty string means no dependencies.
    pub fn parse(text: &str) -> Result<Dependencies, DependencyError> {
        let mut p = Parser { s: text.as_bytes(), i: 0, text };
        let mut all_of = Vec::new();
        p.skip_ws();
        if p.done() {
            return Ok(Dependencies::default());
        }
        loop {
            all_of.push(p.part()?);
            p.skip_ws();
            if p.done() {
                break;
            }
            p.keyword("and")?;
        }
        let terms: usize = all_of.iter().map(Vec::len).sum();
        if terms > MAX_TERMS {
            return Err(DependencyError {
                status: Status::ERROR_DEPENDENCY_TREE_TOO_COMPLEX,
                message: format!("{terms} terms; at most {MAX_TERMS} are allowed"),
            });
        }
        Ok(Dependencies { all_of })
    }

    /// Every resource named.
    pub fn names(&self) -> BTreeSet<&str> {
        self.all_of.iter().flatten().map(String::as_str).collect()
    }

    /// Whether the expression holds, given which resources are online.
    pub fn satisfied(&self, online: impl Fn(&str) -> bool) -> bool {
        self.all_of.iter().all(|any| any.iter().any(|n| online(n)))
    }

    /// True when there are no dependencies.
    pub fn is_empty(&self) -> bool {
        self.all_of.is_empty()
    }
}

impl fmt::Display for Dependencies {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .all_of
            .iter()
            .map(|any| {
                let names: Vec<String> = any.iter().map(|n| format!("[{n}]")).collect();
                if names.len() == 1 { names[0].clone() } else { format!("({})", names.join(" or ")) }
            })
            .collect();
        f.write_str(&parts.join(" and "))
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    text: &'a str,
}

impl Parser<'_> {
    fn done(&self) -> bool {
        self.i >= self.s.len()
    }

    fn skip_ws(&mut self) {
        while self.s.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn err(&self, what: &str) -> DependencyError {
        bad(format!("{what} at position {} of {:?}", self.i, self.text))
    }

    fn keyword(&mut self, word: &str) -> Result<(), DependencyError> {
        self.skip_ws();
        let end = self.i + word.len();
        match self.s.get(self.i..end) {
            Some(w) if w.eq_ignore_ascii_case(word.as_bytes()) => {
                self.i = end;
                Ok(())
            }
            _ => Err(self.err(&format!("expected \"{word}\""))),
        }
    }

    fn name(&mut self) -> Result<String, DependencyError> {
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'[') {
            return Err(self.err("expected [name]"));
        }
        let start = self.i + 1;
        let Some(len) = self.s[start..].iter().position(|b| *b == b']') else {
            return Err(self.err("unclosed ["));
        };
        self.i = start + len + 1;
        let name = self.text[start..start + len].trim();
        if name.is_empty() {
            return Err(self.err("empty name"));
        }
        Ok(name.to_string())
    }

    fn part(&mut self) -> Result<Vec<String>, DependencyError> {
        self.skip_ws();
        if self.s.get(self.i) != Some(&b'(') {
            return Ok(vec![self.name()?]);
        }
        self.i += 1;
        let mut any = vec![self.name()?];
        loop {
            self.skip_ws();
            if self.s.get(self.i) == Some(&b')') {
                self.i += 1;
                return Ok(any);
            }
            self.keyword("or")?;
            any.push(self.name()?);
        }
    }
}

/// Checks a resource's new dependencies against the others of its group: every name must be a
/// resource of the same group, not the resource itself, and no cycle may form.
/// `group_of` names each existing resource's group; `existing` each resource's dependencies.
pub fn check(
    resource: &str,
    group: &str,
    deps: &Dependencies,
    group_of: &BTreeMap<String, String>,
    existing: &BTreeMap<String, Dependencies>,
) -> Result<(), DependencyError> {
    for name in deps.names() {
        if name == resource {
            return Err(DependencyError {
                status: Status::ERROR_DEPENDENCY_NOT_ALLOWED,
                message: format!("{resource} cannot depend on itself"),
            });
        }
        match group_of.get(name) {
            None => {
                return Err(DependencyError {
                    status: Status::ERROR_RESOURCE_NOT_FOUND,
                    message: format!("{resource} depends on {name}, which does not exist"),
                });
            }
            Some(g) if g != group => {
                return Err(DependencyError {
                    status: Status::ERROR_DEPENDENCY_NOT_ALLOWED,
                    message: format!(
                        "{name} is in group {g}, {resource} in group {group}: dependencies stay within a group"
                    ),
                });
            }
            Some(_) => {}
        }
    }
    // A cycle exists if `resource` is reachable from one of its new dependencies.
    let mut stack: Vec<&str> = deps.names().into_iter().collect();
    let mut seen = BTreeSet::new();
    while let Some(n) = stack.pop() {
        if n == resource {
            return Err(DependencyError {
                status: Status::ERROR_CIRCULAR_DEPENDENCY,
                message: format!("{resource} would depend on itself through {deps}"),
            });
        }
        if seen.insert(n)
            && let Some(d) = existing.get(n)
        {
            stack.extend(d.names());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_grammar() {
        let d = Dependencies::parse(" ([ipA] OR [ipB]) and [disk] ").unwrap();
        assert_eq!(d.all_of, vec![vec!["ipA".to_string(), "ipB".to_string()], vec!["disk".to_string()]]);
        assert_eq!(d.to_string(), "([ipA] or [ipB]) and [disk]");
        assert_eq!(Dependencies::parse("").unwrap(), Dependencies::default());
        for bad in ["ipA", "[a] or [b]", "([a] and [b])", "[a] and", "([a]", "[]", "[a] [b]"] {
            assert!(Dependencies::parse(bad).is_err(), "{bad:?} must be refused");
        }
        let many = (0..=MAX_TERMS).map(|i| format!("[r{i}]")).collect::<Vec<_>>().join(" and ");
        assert_eq!(Dependencies::parse(&many).unwrap_err().status, Status::ERROR_DEPENDENCY_TREE_TOO_COMPLEX);
    }

    #[test]
    fn satisfied_needs_one_of_each_group() {
        let d = Dependencies::parse("([a] or [b]) and [c]").unwrap();
        assert!(d.satisfied(|n| n == "b" || n == "c"));
        assert!(!d.satisfied(|n| n == "a" || n == "b"));
    }

    #[test]
    fn checks_groups_self_and_cycles() {
        let group_of: BTreeMap<String, String> =
            [("a", "g"), ("b", "g"), ("c", "g"), ("x", "other")].map(|(r, g)| (r.to_string(), g.to_string())).into();
        let mut existing = BTreeMap::new();
        existing.insert("b".to_string(), Dependencies::parse("[c]").unwrap());
        existing.insert("c".to_string(), Dependencies::parse("[a]").unwrap());
        let err = check("a", "g", &Dependencies::parse("[b]").unwrap(), &group_of, &existing).unwrap_err();
        assert_eq!(err.status, Status::ERROR_CIRCULAR_DEPENDENCY);
        let err = check("a", "g", &Dependencies::parse("[x]").unwrap(), &group_of, &existing).unwrap_err();
        assert_eq!(err.status, Status::ERROR_DEPENDENCY_NOT_ALLOWED);
        let err = check("a", "g", &Dependencies::parse("[a]").unwrap(), &group_of, &existing).unwrap_err();
        assert_eq!(err.status, Status::ERROR_DEPENDENCY_NOT_ALLOWED);
        let err = check("a", "g", &Dependencies::parse("[zz]").unwrap(), &group_of, &existing).unwrap_err();
        assert_eq!(err.status, Status::ERROR_RESOURCE_NOT_FOUND);
        existing.remove("c");
        assert!(check("a", "g", &Dependencies::parse("[b] and [c]").unwrap(), &group_of, &existing).is_ok());
    }
}
