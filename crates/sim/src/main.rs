//! `halo-sim`: replays one seed with its trace (`--seed N`), or runs many (`--seeds N`, from 0)
//! and prints a JSON summary with the rate in schedules per minute.

use halo_sim::{SimConfig, run};
use std::process::ExitCode;
use std::time::Instant;

const USAGE: &str = "usage: halo-sim --seed N | --seeds N";

enum Mode {
    One(u64),
    Many(u64),
}

fn parse(args: &[String]) -> Result<Mode, String> {
    let number = |v: Option<&String>| -> Result<u64, String> {
        let v = v.ok_or_else(|| USAGE.to_string())?;
        v.parse().map_err(|e| format!("{v:?}: {e}\n{USAGE}"))
    };
    match args.first().map(String::as_str) {
        Some("--seed") => Ok(Mode::One(number(args.get(1))?)),
        Some("--seeds") => Ok(Mode::Many(number(args.get(1))?)),
        _ => Err(USAGE.to_string()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = match parse(&args) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match mode {
        Mode::One(seed) => {
            let config = SimConfig { trace: true, ..SimConfig::default() };
            match run(seed, &config) {
                Ok(summary) => {
                    for line in &summary.trace {
                        println!("{line}");
                    }
                    println!(
                        "seed {seed} passed: {summary:?}",
                        summary = halo_sim::Summary { trace: Vec::new(), ..summary }
                    );
                    ExitCode::SUCCESS
                }
                Err(v) => {
                    // A traced run's violation carries the whole trace.
                    eprintln!("{v}");
                    ExitCode::FAILURE
                }
            }
        }
        Mode::Many(n) => {
            let config = SimConfig::default();
            let started = Instant::now();
            let mut failures = Vec::new();
            let (mut steps, mut commands, mut faults, mut restarts, mut onlines) = (0u64, 0u64, 0u64, 0u64, 0u64);
            for seed in 0..n {
                match run(seed, &config) {
                    Ok(s) => {
                        steps += s.steps;
                        commands += s.commands;
                        faults += s.faults;
                        restarts += s.restarts;
                        onlines += s.onlines;
                    }
                    Err(v) => {
                        eprintln!("{v}\n");
                        failures.push(seed);
                    }
                }
            }
            let secs = started.elapsed().as_secs_f64();
            let per_minute = if secs > 0.0 { n as f64 * 60.0 / secs } else { 0.0 };
            let summary = serde_json::json!({
                "seeds": n,
                "failed": failures,
                "seconds": secs,
                "schedules_per_minute": per_minute.round(),
                "steps": steps,
                "commands": commands,
                "faults": faults,
                "restarts": restarts,
                "onlines": onlines,
            });
            println!("{summary}");
            if failures.is_empty() { ExitCode::SUCCESS } else { ExitCode::FAILURE }
        }
    }
}
