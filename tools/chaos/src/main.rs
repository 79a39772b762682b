//! `halo-chaos`: halo under faults, with real processes.
//!
//! - `halo-chaos run --seed N --duration 60s` starts a cluster of real `halo node run` processes
//!   (3 or 5; each in its own network namespace as root, on loopback otherwise), creates witness
//!   groups, and for the given time injects a seeded schedule of faults (SIGKILL and restart,
//!   crashes of every process of a node, planned stops, SIGSTOP/SIGCONT, the leader's death,
//!   isolated nodes, cut pairs, one-way cuts, flapping links, a full disk, a clock jump across a
//!   restart) while clients move, drain, resume, online, offline and write configuration. Then
//!   it heals everything, waits for the cluster to settle, and runs the checker. The same seed
//!   gives the same schedule (`--dry-run` prints it).
//! - `halo-chaos check DIR` runs the checker alone on a run directory and prints its summary.
//! - `witness` and `hold` are what the witness resource runs (hidden).

mod check;
mod cluster;
mod disk;
mod history;
mod net;
mod procs;
mod rng;
mod run;
mod schedule;
mod witness;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

/// halo-chaos — halo's nemesis: real processes, seeded faults, an independent checker.
#[derive(Debug, Parser)]
#[command(name = "halo-chaos", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run a cluster under a seeded schedule of faults and check it (exit status 1 on a
    /// violation).
    Run(run::RunArgs),
    /// Check a run directory again and print the summary (exit status 1 on a violation).
    Check {
        /// The run directory (`history.jsonl`, `witness.log`).
        dir: PathBuf,
        /// Also print where each group's witness ran, from when to when.
        #[arg(long)]
        timeline: bool,
    },
    /// The witness resource's script entry (run by `witness.sh`).
    #[command(hide = true)]
    Witness {
        /// The run directory.
        #[arg(long)]
        dir: PathBuf,
        /// The entry point: online, offline, terminate, looks-alive, is-alive, open, close.
        entry: String,
    },
    /// A witness's marker process: waits until killed.
    #[command(hide = true)]
    Hold {
        /// The run, node, group and epoch it stands for.
        #[arg(num_args = 0.., allow_hyphen_values = true, trailing_var_arg = true)]
        what: Vec<String>,
    },
}

/// A duration as `300`, `300s`, `500ms`, `5m` or `1h`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(split);
    let wrong = || format!("{text:?} is not a duration: write a whole number with ms, s, m or h (300s, 5m)");
    let n: u64 = digits.parse().map_err(|_| wrong())?;
    let ms = match unit {
        "ms" => Some(n),
        "" | "s" => n.checked_mul(1000),
        "m" => n.checked_mul(60_000),
        "h" => n.checked_mul(3_600_000),
        _ => None,
    };
    ms.map(std::time::Duration::from_millis).ok_or_else(wrong)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => run::run(&args),
        Command::Check { dir, timeline } => check::check(&dir).and_then(|s| {
            if timeline {
                print!("{}", check::timeline(&dir)?);
            }
            println!("{}", serde_json::to_string_pretty(&s)?);
            Ok(s.violation_count == 0)
        }),
        Command::Witness { dir, entry } => match witness::main(&dir, &entry) {
            Ok(code) => return ExitCode::from(u8::try_from(code).unwrap_or(1)),
            Err(e) => {
                eprintln!("halo-chaos witness {entry}: {e:#}");
                return ExitCode::from(2);
            }
        },
        Command::Hold { .. } => witness::hold(),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => {
            eprintln!("halo-chaos: VIOLATIONS found (see the summary above)");
            ExitCode::from(1)
        }
        Err(e) => {
            eprintln!("halo-chaos: {e:#}");
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_take_units() {
        use std::time::Duration;
        assert_eq!(parse_duration("3600s"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("1h"), Ok(Duration::from_secs(3600)));
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert!(parse_duration("1.5s").is_err() && parse_duration("").is_err());
    }
}
