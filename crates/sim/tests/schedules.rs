//! Seeded random schedules against the real core. A failure prints the seed and the command that
//! replays it.

use halo_sim::{SimConfig, run};
use std::time::Instant;

#[test]
fn same_seed_same_run() {
    let config = SimConfig { trace: true, ..SimConfig::default() };
    for seed in [0, 1, 42] {
        let a = run(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        let b = run(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        assert_eq!(a, b, "seed {seed} ran differently twice");
        assert!(a.steps > 0 && !a.trace.is_empty());
    }
    // Different seeds give different runs.
    let a = run(0, &config).unwrap_or_else(|v| panic!("{v}"));
    let b = run(1, &config).unwrap_or_else(|v| panic!("{v}"));
    assert_ne!(a.trace_hash, b.trace_hash);
}

#[test]
fn thousand_schedules() {
    let config = SimConfig::default();
    let started = Instant::now();
    let mut total = halo_sim::Summary::default();
    let seeds = 1000u64;
    for seed in 0..seeds {
        let s = run(seed, &config).unwrap_or_else(|v| panic!("{v}"));
        total.steps += s.steps;
        total.commands += s.commands;
        total.faults += s.faults;
        total.restarts += s.restarts;
        total.onlines += s.onlines;
        total.host_crashes += s.host_crashes;
        total.pending_timeouts += s.pending_timeouts;
        total.conflicts += s.conflicts;
        total.answer_first += s.answer_first;
        total.feed_first += s.feed_first;
        total.replies_err += s.replies_err;
        total.replies_lost += s.replies_lost;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{seeds} schedules in {secs:.1} s: {:.0} schedules per minute; steps {}, commands {} ({} refused, {} lost to restarts), faults {}, restarts {}, onlines {}, host crashes {}, pending timeouts {}, write conflicts {}, answer first {} / feed first {}",
        seeds as f64 * 60.0 / secs,
        total.steps,
        total.commands,
        total.replies_err,
        total.replies_lost,
        total.faults,
        total.restarts,
        total.onlines,
        total.host_crashes,
        total.pending_timeouts,
        total.conflicts,
        total.answer_first,
        total.feed_first,
    );
    // The models must exercise what they claim to.
    assert!(total.onlines > 0 && total.host_crashes > 0 && total.pending_timeouts > 0 && total.restarts > seeds);
    assert!(total.answer_first > 0 && total.feed_first > 0);
}

#[test]
fn replay() {
    let Ok(seed) = std::env::var("HALO_SIM_SEED") else {
        println!("HALO_SIM_SEED is not set: nothing to replay");
        return;
    };
    let seed: u64 = seed.parse().unwrap_or_else(|e| panic!("HALO_SIM_SEED={seed:?}: {e}"));
    let config = SimConfig { trace: true, ..SimConfig::default() };
    match run(seed, &config) {
        Ok(summary) => {
            for line in &summary.trace {
                println!("{line}");
            }
            println!("seed {seed} passed");
        }
        Err(v) => panic!("{v}"),
    }
}
