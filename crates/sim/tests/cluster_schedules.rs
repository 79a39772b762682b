//! Seeded cluster schedules: three nodes with the real engine and coordinator cores, crashes,
//! freezes, partitions, one-way cuts, message loss and moves; never a group on two nodes at once,
//! epochs never backwards, every group back on its owner once the faults heal.

use halo_sim::cluster::{ClusterConfig, ClusterSummary, run_cluster};
use std::time::Instant;

#[test]
fn cluster_schedules() {
    let seeds: u64 = std::env::var("HALO_SIM_CLUSTER_SEEDS").ok().and_then(|s| s.parse().ok()).unwrap_or(2000);
    let config = ClusterConfig::default();
    let started = Instant::now();
    let mut total = ClusterSummary::default();
    for seed in 0..seeds {
        let s = run_cluster(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        total.faults += s.faults;
        total.moves += s.moves;
        total.owner_changes += s.owner_changes;
        total.elections += s.elections;
        total.onlines += s.onlines;
        total.events += s.events;
    }
    let secs = started.elapsed().as_secs_f64();
    eprintln!(
        "{seeds} cluster schedules in {secs:.1} s ({:.0}/min): {} faults, {} moves, {} ownership changes, {} elections, {} onlines, {} events",
        seeds as f64 * 60.0 / secs,
        total.faults,
        total.moves,
        total.owner_changes,
        total.elections,
        total.onlines,
        total.events
    );
    assert!(total.owner_changes > seeds, "the schedules must move groups around");
}

#[test]
fn same_seed_same_cluster_run() {
    let config = ClusterConfig::default();
    assert_eq!(run_cluster(7, &config).map_err(|v| v.to_string()), run_cluster(7, &config).map_err(|v| v.to_string()));
}

/// `HALO_SIM_CLUSTER_SEED=N cargo test -p halo-sim --test cluster_schedules -- replay_cluster --nocapture`
#[test]
fn replay_cluster() {
    let Some(seed) = std::env::var("HALO_SIM_CLUSTER_SEED").ok().and_then(|s| s.parse().ok()) else { return };
    match run_cluster(seed, &ClusterConfig::default()) {
        Ok(s) => eprintln!("{s:?}"),
        Err(v) => panic!("{v}"),
    }
}
