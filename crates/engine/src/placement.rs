//! Where a group goes (WSFC's placement, §8.1 of its model): the first node of its preferred
//! owners that can take it, else the least loaded node that can; a node can take a group when it
//! is Up, not paused, a possible owner of every member, and not excluded (the node it leaves).
//! Anti-affinity is best effort: a node already running a group that shares an
//! `AntiAffinityClassNames` entry is passed over, unless every candidate is such a node.
//! Pure: the caller gathers the facts.

use crate::model::{GroupDoc, NodeStateDoc, names_in};
use std::collections::{BTreeMap, BTreeSet};

/// The node for `group`, or `None` when no node can take it.
///
/// `nodes`: every registered node and its state; `placed`: every other group as (name, the node
/// it is on or moving to, its anti-affinity classes); `possible`: the nodes every member may run
/// on (`None`: any).
pub fn choose(
    group: &GroupDoc,
    possible: Option<&BTreeSet<String>>,
    nodes: &BTreeMap<String, NodeStateDoc>,
    placed: &[(String, String, Vec<String>)],
    exclude: &[&str],
) -> Option<String> {
    let can_take = |n: &str| {
        nodes.get(n).is_some_and(|s| s.up && !s.paused)
            && possible.is_none_or(|p| p.contains(n))
            && !exclude.contains(&n)
    };
    let mut load: BTreeMap<&str, usize> = BTreeMap::new();
    for (_, node, _) in placed {
        *load.entry(node.as_str()).or_default() += 1;
    }
    // Preferred owners first, in their order; then the rest, least loaded first.
    let preferred = names_in(group.common.get("PreferredOwners"));
    let mut order: Vec<String> = preferred.iter().filter(|n| can_take(n)).cloned().collect();
    let mut rest: Vec<&String> = nodes.keys().filter(|n| can_take(n) && !preferred.contains(n)).collect();
    rest.sort_by_key(|n| (load.get(n.as_str()).copied().unwrap_or(0), (*n).clone()));
    order.extend(rest.into_iter().cloned());
    let classes: BTreeSet<String> = names_in(group.common.get("AntiAffinityClassNames")).into_iter().collect();
    let clashes =
        |n: &str| placed.iter().any(|(_, node, other)| node == n && other.iter().any(|c| classes.contains(c)));
    order.iter().find(|n| !clashes(n)).or(order.first()).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(common: &[(&str, &str)]) -> GroupDoc {
        GroupDoc { name: "g".into(), common: common.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect() }
    }

    fn nodes(states: &[(&str, bool, bool)]) -> BTreeMap<String, NodeStateDoc> {
        states
            .iter()
            .map(|(n, up, paused)| {
                (n.to_string(), NodeStateDoc { up: *up, paused: *paused, ..NodeStateDoc::default() })
            })
            .collect()
    }

    fn placed(list: &[(&str, &str, &[&str])]) -> Vec<(String, String, Vec<String>)> {
        list.iter().map(|(g, n, c)| (g.to_string(), n.to_string(), c.iter().map(|s| s.to_string()).collect())).collect()
    }

    #[test]
    fn preferred_owners_in_order_then_least_loaded() {
        let all = nodes(&[("a", true, false), ("b", true, false), ("c", true, false)]);
        let busy = placed(&[("x", "a", &[]), ("y", "a", &[]), ("z", "b", &[])]);
        assert_eq!(choose(&group(&[]), None, &all, &busy, &[]).as_deref(), Some("c"));
        let g = group(&[("PreferredOwners", "b\na")]);
        assert_eq!(choose(&g, None, &all, &busy, &[]).as_deref(), Some("b"));
        assert_eq!(choose(&g, None, &all, &busy, &["b"]).as_deref(), Some("a"));
    }

    #[test]
    fn down_paused_impossible_and_excluded_nodes_take_nothing() {
        let all = nodes(&[("a", false, false), ("b", true, true), ("c", true, false), ("d", true, false)]);
        let possible: BTreeSet<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
        assert_eq!(choose(&group(&[]), Some(&possible), &all, &[], &[]).as_deref(), Some("c"));
        assert_eq!(choose(&group(&[]), Some(&possible), &all, &[], &["c"]), None);
    }

    #[test]
    fn anti_affinity_is_best_effort() {
        let all = nodes(&[("a", true, false), ("b", true, false)]);
        let g = group(&[("PreferredOwners", "a\nb"), ("AntiAffinityClassNames", "sql")]);
        let one = placed(&[("other", "a", &["sql"])]);
        assert_eq!(choose(&g, None, &all, &one, &[]).as_deref(), Some("b"));
        let both = placed(&[("o1", "a", &["sql"]), ("o2", "b", &["sql"])]);
        assert_eq!(choose(&g, None, &all, &both, &[]).as_deref(), Some("a"));
    }
}
