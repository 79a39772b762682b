//! Seeded random schedules: what the operator does and what goes wrong, at which simulated
//! instant. The schedule is drawn up front from its own random stream, so it does not depend on
//! how the run unfolds; commands name objects from small fixed pools, so that many of them meet
//! (and some name nothing that exists, or something invalid — the engine must refuse those).

use crate::host::Behaviour;
use crate::rng::SimRng;
use halo_engine::core::{Command, Target};
use resapi::control::codes;
use resapi::{OfflineFlags, PropertyList, ValueData};
use std::collections::BTreeMap;
use std::time::Duration;

/// Group names the schedule uses.
pub const GROUPS: [&str; 3] = ["g0", "g1", "g2"];
/// Resource names the schedule uses.
pub const RESOURCES: [&str; 6] = ["r0", "r1", "r2", "r3", "r4", "r5"];

/// One thing that happens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// The operator sends a command.
    Command(Command),
    /// A host process dies: the shared one, or the first dedicated one if `shared` is false and
    /// there is one.
    HostCrash {
        /// Which host.
        shared: bool,
    },
    /// IsAlive fails for a resource, if it is online.
    HealthFail {
        /// Its name.
        resource: String,
    },
    /// The node daemon restarts: the core and every host process go, a new core loads the
    /// database.
    Restart,
}

impl Action {
    /// Whether this is a fault (not an operator's command).
    pub fn is_fault(&self) -> bool {
        !matches!(self, Action::Command(_))
    }
}

/// A run's plan.
#[derive(Debug, Clone)]
pub struct Schedule {
    /// Actions in time order.
    pub actions: Vec<(Duration, Action)>,
    /// How resource code behaves until the quiet phase.
    pub behaviour: Behaviour,
}

/// Draws the schedule of `seed`: `actions` actions spread over `chaos`.
pub fn generate(seed: u64, actions: usize, chaos: Duration) -> Schedule {
    let mut rng = SimRng::new(seed, 1);
    let behaviour = Behaviour {
        open_fail: pick_prob(&mut rng, 0.08),
        fail: pick_prob(&mut rng, 0.15),
        hang: pick_prob(&mut rng, 0.06),
        slow: pick_prob(&mut rng, 0.1),
        pending: 0.3 + pick_prob(&mut rng, 0.4),
        report_failed: pick_prob(&mut rng, 0.1),
    };
    let chaos_ms = u64::try_from(chaos.as_millis()).unwrap_or(u64::MAX);
    let mut times: Vec<u64> = (0..actions).map(|_| rng.between(0, chaos_ms)).collect();
    times.sort_unstable();
    let mut out = Vec::with_capacity(actions + GROUPS.len());
    // Most groups exist early, so that creates and operations meet something.
    for g in GROUPS {
        if rng.chance(0.8) {
            let create = Command::CreateGroup { name: g.to_string(), common: BTreeMap::new() };
            out.push((rng.ms(0, 500), Action::Command(create)));
        }
    }
    out.sort_by_key(|(t, _)| *t);
    for (i, t) in times.into_iter().enumerate() {
        let t = t.max(500);
        // The first quarter mostly builds things, so that the rest has something to act on.
        let building = i < actions / 4;
        out.push((Duration::from_millis(t), action(&mut rng, building)));
    }
    Schedule { actions: out, behaviour }
}

/// A probability in `0..=max`, zero a quarter of the time (some runs have no such fault).
fn pick_prob(rng: &mut SimRng, max: f64) -> f64 {
    if rng.chance(0.25) { 0.0 } else { max * rng.between(0, 1000) as f64 / 1000.0 }
}

fn group(rng: &mut SimRng) -> String {
    rng.pick(&GROUPS).copied().unwrap_or("g0").to_string()
}

fn resource(rng: &mut SimRng) -> String {
    rng.pick(&RESOURCES).copied().unwrap_or("r0").to_string()
}

fn action(rng: &mut SimRng, building: bool) -> Action {
    let weights: &[u32] = if building {
        &[6, 12, 0, 0, 2, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0]
    } else {
        //   grp res set dep on  onG off offG fail del delG ctl crash health restart
        &[1, 4, 4, 3, 6, 3, 4, 2, 2, 2, 1, 2, 2, 2, 1]
    };
    match rng.weighted(weights) {
        0 => Action::Command(Command::CreateGroup {
            name: if rng.chance(0.05) { "bad name".into() } else { group(rng) },
            common: BTreeMap::new(),
        }),
        1 => {
            let name = resource(rng);
            Action::Command(Command::CreateResource {
                dependencies: dependencies(rng, &name),
                name,
                group: group(rng),
                type_name: if rng.chance(0.05) { "no-such-type".into() } else { "dummy".into() },
                common: policy(rng),
                private: BTreeMap::new(),
            })
        }
        2 => {
            let mut common = policy(rng);
            if rng.chance(0.2) {
                common.insert("PersistentState".into(), if rng.chance(0.5) { "true" } else { "false" }.into());
            }
            // A property the dummy type declares (an unknown one is refused when written).
            let mut private = BTreeMap::new();
            let mut unset = Vec::new();
            if rng.chance(0.3) {
                private.insert("OnlineDelayMs".into(), rng.between(0, 9).to_string());
            } else if rng.chance(0.1) {
                unset.push("OnlineDelayMs".to_string());
            }
            Action::Command(Command::SetProperties { name: resource(rng), common, private, unset })
        }
        3 => {
            let name = resource(rng);
            Action::Command(Command::SetDependencies { expression: dependencies(rng, &name), name })
        }
        4 => Action::Command(Command::Online {
            target: Target::Resource(resource(rng)),
            update_persistent: rng.chance(0.7),
            input: vec![],
        }),
        5 => Action::Command(Command::Online {
            target: Target::Group(group(rng)),
            update_persistent: rng.chance(0.7),
            input: vec![],
        }),
        6 | 7 => {
            let target = if rng.chance(0.5) { Target::Resource(resource(rng)) } else { Target::Group(group(rng)) };
            // FORCE_WITH_TERMINATION applies to one resource.
            let terminate = matches!(target, Target::Resource(_)) && rng.chance(0.3);
            let flags =
                if terminate || rng.chance(0.2) { OfflineFlags::IGNORE_RESOURCE_STATUS } else { OfflineFlags::empty() };
            Action::Command(Command::Offline {
                target,
                flags,
                update_persistent: rng.chance(0.6),
                terminate,
                input: vec![],
            })
        }
        8 => Action::Command(Command::Fail { name: resource(rng) }),
        9 => Action::Command(Command::DeleteResource { name: resource(rng), force: rng.chance(0.3) }),
        10 => Action::Command(Command::DeleteGroup { name: group(rng) }),
        11 => control(rng),
        12 => Action::HostCrash { shared: rng.chance(0.7) },
        13 => Action::HealthFail { resource: resource(rng) },
        _ => Action::Restart,
    }
}

/// A dependency expression over the pool: mostly valid ones (AND of ORs), sometimes a syntax
/// error or a self-reference.
fn dependencies(rng: &mut SimRng, me: &str) -> String {
    match rng.weighted(&[30, 60, 5, 5]) {
        0 => String::new(),
        1 => {
            let others: Vec<&str> = RESOURCES.iter().copied().filter(|r| *r != me).collect();
            let parts: Vec<String> = (0..rng.between(1, 2))
                .map(|_| {
                    let names: Vec<String> =
                        (0..rng.between(1, 2)).filter_map(|_| rng.pick(&others)).map(|n| format!("[{n}]")).collect();
                    if names.len() == 1 { names.join("") } else { format!("({})", names.join(" or ")) }
                })
                .collect();
            parts.join(" and ")
        }
        2 => format!("[{me}]"),
        _ => "([r1] or".into(),
    }
}

/// Common properties for a resource's policy: short periods so that the quiet phase outlasts
/// every retry; sometimes out of range, or breaking RetryPeriodOnFailure ≥ RestartPeriod.
fn policy(rng: &mut SimRng) -> BTreeMap<String, String> {
    let mut p = BTreeMap::new();
    let mut set = |k: &str, v: u64| {
        p.insert(k.to_string(), v.to_string());
    };
    if rng.chance(0.8) {
        let period = rng.between(500, 5000);
        set("RestartPeriod", period);
        let retry = if rng.chance(0.05) { period / 2 } else { period + rng.between(0, 10_000) };
        set("RetryPeriodOnFailure", retry);
    }
    if rng.chance(0.6) {
        set("RestartThreshold", rng.between(0, 3));
    }
    if rng.chance(0.6) {
        set("RestartDelay", rng.between(0, 1500));
    }
    if rng.chance(0.4) {
        set("RestartAction", if rng.chance(0.05) { 7 } else { rng.between(0, 2) });
    }
    if rng.chance(0.6) {
        set("PendingTimeout", rng.between(100, 4000));
    }
    if rng.chance(0.1) {
        p.insert("SeparateMonitor".into(), "true".into());
    }
    p
}

fn control(rng: &mut SimRng) -> Action {
    let choices = [
        codes::CLUSCTL_RESOURCE_GET_FLAGS,
        codes::CLUSCTL_RESOURCE_GET_CHARACTERISTICS,
        codes::CLUSCTL_RESOURCE_GET_COMMON_PROPERTIES,
        codes::CLUSCTL_RESOURCE_GET_PRIVATE_PROPERTIES,
        codes::CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES,
    ];
    let code = rng.pick(&choices).copied().unwrap_or(codes::CLUSCTL_RESOURCE_GET_FLAGS);
    let input = if code == codes::CLUSCTL_RESOURCE_SET_PRIVATE_PROPERTIES {
        let mut list = PropertyList::new();
        list.set("Tag", ValueData::Sz(rng.between(0, 9).to_string()));
        // An unencodable list would be a bug in resapi; an empty input is refused by the engine.
        list.encode().unwrap_or_default()
    } else {
        Vec::new()
    };
    let output_size = if rng.chance(0.3) { 0 } else { 4096 };
    Action::Command(Command::Control { name: resource(rng), code: code.0, input, output_size })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeded_and_ordered() {
        let a = generate(11, 40, Duration::from_secs(60));
        let b = generate(11, 40, Duration::from_secs(60));
        assert_eq!(a.actions, b.actions);
        assert!(a.actions.windows(2).all(|w| w[0].0 <= w[1].0));
        assert!(a.actions.iter().all(|(t, _)| *t <= Duration::from_secs(60)));
        assert_ne!(a.actions, generate(12, 40, Duration::from_secs(60)).actions);
    }

    #[test]
    fn covers_every_kind_over_many_seeds() {
        let mut kinds = std::collections::BTreeSet::new();
        for seed in 0..50 {
            for (_, a) in generate(seed, 40, Duration::from_secs(60)).actions {
                let kind = match a {
                    Action::Command(c) => format!("{c:?}").split([' ', '{']).next().unwrap_or("").to_string(),
                    other => format!("{other:?}").split([' ', '{']).next().unwrap_or("").to_string(),
                };
                kinds.insert(kind);
            }
        }
        for k in [
            "CreateGroup",
            "CreateResource",
            "SetProperties",
            "SetDependencies",
            "Online",
            "Offline",
            "Fail",
            "DeleteResource",
            "DeleteGroup",
            "Control",
            "HostCrash",
            "HealthFail",
            "Restart",
        ] {
            assert!(kinds.contains(k), "{k} never drawn: {kinds:?}");
        }
    }
}
