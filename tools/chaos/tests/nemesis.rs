//! The nemesis in CI: two fixed seeds of 45 s of faults each on a three-node cluster of real
//! `halo` processes, then the checker, which must find nothing. As root (as CI runs) the nodes
//! run in network namespaces and the seeds between them inject every kind of fault but a full
//! disk: isolated nodes, cut pairs, one-way cuts, flapping links, SIGKILL of a daemon, crashes
//! of every process of a node, the leader's death, SIGSTOP, planned stops and a clock jump.
//! Without root the run falls back to loopback with process faults only, and says so.
//!
//! A full disk is left out: a node whose disk filled up cannot start again, its database being
//! refused as damaged ("its last commit does not verify"); `a_node_comes_back_after_a_full_disk`
//! (ignored until that is fixed) shows it.
//!
//! Longer runs: `halo-chaos run --seed N --duration 3600s` (see the README).

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

const CHAOS: &str = env!("CARGO_BIN_EXE_halo-chaos");

/// The `halo` binary: HALO_BIN, or the one `cargo test --workspace` built beside this crate's
/// binary (built here if `cargo test -p halo-chaos` ran alone).
fn halo() -> PathBuf {
    if let Some(h) = std::env::var_os("HALO_BIN").filter(|h| !h.is_empty()) {
        return h.into();
    }
    let beside = Path::new(CHAOS).parent().unwrap().join("halo");
    if !beside.is_file() {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.args(["build", "-p", "halo"]);
        if !cfg!(debug_assertions) {
            build.arg("--release");
        }
        assert!(build.status().unwrap().success(), "building halo failed");
    }
    assert!(beside.is_file(), "{} is missing", beside.display());
    beside
}

fn root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// Runs one seed; returns the checker's summary, failing the test with the runner's output if
/// the run failed or found a violation.
fn run(dir: &Path, seed: u64, duration: &str, extra: &[&str]) -> Value {
    let run_dir = dir.join(format!("seed-{seed}"));
    let started = Instant::now();
    let out = Command::new(CHAOS)
        .args(["run", "--seed", &seed.to_string(), "--duration", duration, "--dir"])
        .arg(&run_dir)
        .arg("--halo")
        .arg(halo())
        .args(extra)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!("seed {seed}: {:.1} s\n{stdout}{stderr}", started.elapsed().as_secs_f64());
    assert!(
        out.status.success(),
        "seed {seed} failed ({}); replay: halo-chaos run --seed {seed} --duration {duration} {}",
        out.status,
        extra.join(" ")
    );
    serde_json::from_slice(&std::fs::read(run_dir.join("summary.json")).unwrap()).unwrap()
}

#[test]
fn fixed_seeds_under_faults_show_no_violation() {
    let dir = tempfile::tempdir().unwrap();
    let mut kinds = std::collections::BTreeSet::new();
    let mut total = 0;
    let mut caps = Value::Null;
    for seed in [22, 13] {
        let summary = run(dir.path(), seed, "45s", &["--skip", "disk_full"]);
        assert_eq!(summary["violation_count"], 0, "seed {seed}: {:#}", summary["violations"]);
        assert_eq!(summary["mode"], if root() { "netns" } else { "loopback" }, "as root the run uses namespaces");
        caps = summary["caps"].clone();
        for (kind, n) in summary["faults"].as_object().unwrap() {
            kinds.insert(kind.clone());
            total += n.as_u64().unwrap();
        }
        // The clients did work, and the witness saw groups come and go.
        assert!(summary["operations"]["write"]["ok"].as_u64().unwrap() > 10, "{summary:#}");
        assert!(summary["onlines"].as_u64().unwrap() > 3, "{summary:#}");
    }
    eprintln!("faults injected: {total}, kinds: {kinds:?}");
    assert!(total >= 10, "only {total} faults were injected");
    let everything = caps["netns"] == true && caps["clock"] == true;
    if everything {
        for kind in
            ["kill", "crash", "stop", "pause", "coordinator_kill", "isolate", "cut", "one_way", "flaky", "clock_jump"]
        {
            assert!(kinds.contains(kind), "no {kind} fault was injected: {kinds:?}");
        }
    } else if root() {
        // Another machine's schedule (no time namespaces): the seeds' faults differ.
        assert!(kinds.len() >= 5, "only {kinds:?}");
        eprintln!("no time namespaces here: no clock jumps, and a different schedule");
    } else {
        eprintln!("not root: loopback only, without partitions, full disks or clock jumps (CI runs as root)");
    }
}

/// The schedule is a function of the seed: printed twice, it is the same; another seed's differs.
#[test]
fn the_same_seed_prints_the_same_schedule() {
    let schedule = |seed: &str| {
        let out = Command::new(CHAOS).args(["run", "--seed", seed, "--duration", "45s", "--dry-run"]).output().unwrap();
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let first = schedule("22");
    assert!(first.contains("fault   0:") && first.contains("client   :"), "{first}");
    assert_eq!(first, schedule("22"));
    assert_ne!(first, schedule("23"));
}

/// A full disk, healed: the node must start again once space is free. It does not yet (its
/// database is refused as damaged after the failed commit), hence ignored; run it with
/// `cargo test -p halo-chaos -- --ignored`.
#[test]
#[ignore = "a node whose disk filled up cannot restart: its database is refused as damaged"]
fn a_node_comes_back_after_a_full_disk() {
    if !root() {
        eprintln!("skipped: a full disk needs root (a tmpfs)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let others = "kill,crash,stop,pause,coordinator_kill,isolate,cut,one_way,flaky,clock_jump";
    let summary = run(dir.path(), 1, "15s", &["--skip", others]);
    assert_eq!(summary["violation_count"], 0, "{:#}", summary["violations"]);
}
