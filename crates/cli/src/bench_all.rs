//! `halo bench all`: every benchmark, one report. Each runs as its own `halo bench …` process (so
//! one's memory and threads do not weigh on the next); their JSON documents are kept whole in
//! `report.json`, beside the machine they ran on, and the figures that matter are summed up
//! against their targets in `report.md`, so runs can be compared from one to the next.

use anyhow::{Context, Result, anyhow, bail};
use serde_json::{Value, json};
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

/// Options of `halo bench all`.
#[derive(Debug, Clone, clap::Args)]
pub struct AllBench {
    /// Where `report.json` and `report.md` go (created).
    #[arg(long, default_value = "bench-report")]
    pub out: PathBuf,
    /// Smaller runs (fewer trials, samples and seconds): a check that everything works, not
    /// figures to compare.
    #[arg(long)]
    pub quick: bool,
}

/// One row of the summary: what, where in the reports, its unit and target.
struct Row {
    what: &'static str,
    bench: &'static str,
    pointer: &'static str,
    unit: &'static str,
    /// The target, and whether a value must be at most it (true) or at least it.
    target: Option<(f64, bool)>,
}

const ROWS: &[Row] = &[
    Row {
        what: "failover after SIGKILL, p50",
        bench: "cluster",
        pointer: "/failover_after_sigkill/p50_ms",
        unit: "ms",
        target: Some((1000.0, true)),
    },
    Row {
        what: "failover after SIGKILL, p99",
        bench: "cluster",
        pointer: "/failover_after_sigkill/p99_ms",
        unit: "ms",
        target: Some((2000.0, true)),
    },
    Row {
        what: "move overhead, p50",
        bench: "cluster",
        pointer: "/move_overhead/p50_ms",
        unit: "ms",
        target: Some((20.0, true)),
    },
    Row {
        what: "false failovers, both cores busy",
        bench: "cluster",
        pointer: "/false_failovers_under_load/ownership_changes",
        unit: "",
        target: Some((0.0, true)),
    },
    Row {
        what: "drain of 100 groups / 1,000 resources",
        bench: "cluster",
        pointer: "/drain/seconds",
        unit: "s",
        target: None,
    },
    Row {
        what: "1,000 dummy resources, apply → online",
        bench: "node",
        pointer: "/dummy/apply_to_all_online_s",
        unit: "s",
        target: Some((1.0, true)),
    },
    Row {
        what: "200 OCF Dummy resources, apply → online",
        bench: "node",
        pointer: "/ocf_heartbeat_dummy/apply_to_all_online_s",
        unit: "s",
        target: Some((3.0, true)),
    },
    Row {
        what: "OCF start+monitor+stop through the host, added p50",
        bench: "host",
        pointer: "/ocf_heartbeat_dummy/added_ms_per_pair/p50",
        unit: "ms",
        target: Some((2.0, true)),
    },
    Row {
        what: "polling CPU of one host (its polled resources)",
        bench: "host",
        pointer: "/polling/host_cpu_percent_of_one_core",
        unit: "% of a core",
        target: Some((2.0, true)),
    },
    Row {
        what: "entry-point round trip, p50",
        bench: "host",
        pointer: "/entry_point_round_trip/p50_us",
        unit: "µs",
        target: None,
    },
    Row {
        what: "daemon + hosts RSS, 1,000 resources online",
        bench: "node",
        pointer: "/memory/daemon_and_hosts_rss_idle_bytes",
        unit: "MiB",
        target: Some((40.0, true)),
    },
    Row {
        what: "host RSS with its polled resources",
        bench: "host",
        pointer: "/polling/host_rss_idle_bytes",
        unit: "MiB",
        target: None,
    },
    Row {
        what: "status reads of 1,000 resources",
        bench: "node",
        pointer: "/status_reads_per_s/reads_per_s",
        unit: "/s",
        target: None,
    },
];

impl AllBench {
    /// Runs every benchmark and writes the report.
    pub fn run(&self) -> Result<()> {
        let exe = std::env::current_exe().context("locating the halo binary")?;
        let quick: &[(&str, &[&str])] = &[
            ("host", &["--calls", "300", "--resources", "2000", "--ocf-iterations", "5"]),
            ("node", &[]),
            ("cluster", &["--trials", "3", "--moves", "5", "--load-seconds", "10"]),
        ];
        let mut results = serde_json::Map::new();
        let mut seconds = serde_json::Map::new();
        for (bench, quick_args) in quick {
            eprintln!("== halo bench {bench}");
            let started = Instant::now();
            let mut cmd = Command::new(&exe);
            cmd.args(["bench", bench]);
            if self.quick {
                cmd.args(*quick_args);
            }
            let out = cmd.output().with_context(|| format!("running halo bench {bench}"))?;
            if !out.status.success() {
                bail!("halo bench {bench} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
            let value: Value = serde_json::from_slice(&out.stdout)
                .map_err(|e| anyhow!("halo bench {bench} printed no JSON report: {e}"))?;
            results.insert((*bench).into(), value);
            seconds.insert((*bench).into(), json!(started.elapsed().as_secs_f64()));
        }
        let results = Value::Object(results);
        let summary: Vec<Value> = ROWS.iter().map(|r| row_json(r, &results)).collect();
        let report = json!({
            "halo_version": env!("CARGO_PKG_VERSION"),
            "quick": self.quick,
            "machine": machine(),
            "unix_time": halo_security::unix_now(),
            "seconds": seconds,
            "summary": summary,
            "results": results,
        });
        std::fs::create_dir_all(&self.out).with_context(|| format!("creating {}", self.out.display()))?;
        let json_path = self.out.join("report.json");
        std::fs::write(&json_path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", json_path.display()))?;
        let md_path = self.out.join("report.md");
        let markdown = markdown(&report);
        std::fs::write(&md_path, &markdown).with_context(|| format!("writing {}", md_path.display()))?;
        print!("{markdown}");
        eprintln!("wrote {} and {}", json_path.display(), md_path.display());
        Ok(())
    }
}

/// A row's value in its unit (bytes shown as MiB), or None when its benchmark skipped it.
fn value_of(row: &Row, results: &Value) -> Option<f64> {
    let v = results.get(row.bench)?.pointer(row.pointer)?.as_f64()?;
    Some(if row.unit == "MiB" { v / 1_048_576.0 } else { v })
}

fn row_json(row: &Row, results: &Value) -> Value {
    let value = value_of(row, results);
    let met = match (value, row.target) {
        (Some(v), Some((t, at_most))) => Some(if at_most { v <= t } else { v >= t }),
        _ => None,
    };
    json!({
        "what": row.what,
        "benchmark": row.bench,
        "value": value,
        "unit": row.unit,
        "target": row.target.map(|(t, at_most)| json!({ "value": t, "at_most": at_most })),
        "met": met,
    })
}

fn machine() -> Value {
    let uname = nix::sys::utsname::uname().ok();
    json!({
        "cpus": std::thread::available_parallelism().map(usize::from).unwrap_or(0),
        "kernel": uname.as_ref().map(|u| u.release().to_string_lossy().into_owned()),
        "arch": std::env::consts::ARCH,
    })
}

fn markdown(report: &Value) -> String {
    let mut out = String::from("| what | value | target | met |\n|---|---:|---:|:---:|\n");
    for row in report["summary"].as_array().into_iter().flatten() {
        let unit = row["unit"].as_str().unwrap_or("");
        let value = row["value"].as_f64().map_or_else(|| "skipped".to_string(), |v| format!("{v:.3} {unit}"));
        let target = row["target"].as_object().map_or_else(String::new, |t| {
            let op = if t["at_most"].as_bool() == Some(true) { "≤" } else { "≥" };
            format!("{op} {} {unit}", t["value"])
        });
        let met = match row["met"].as_bool() {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "",
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row["what"].as_str().unwrap_or(""),
            value.trim(),
            target.trim(),
            met
        ));
    }
    out.push_str(&format!(
        "\n{} CPUs, kernel {}, {}{}\n",
        report["machine"]["cpus"],
        report["machine"]["kernel"].as_str().unwrap_or("?"),
        report["machine"]["arch"].as_str().unwrap_or("?"),
        if report["quick"].as_bool() == Some(true) { "; --quick run (not for comparison)" } else { "" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_read_their_figures_and_targets() {
        let results = json!({
            "cluster": { "failover_after_sigkill": { "p50_ms": 800.0, "p99_ms": 2500.0 } },
            "node": { "memory": { "daemon_and_hosts_rss_idle_bytes": 38 * 1_048_576 } },
        });
        let p50 = row_json(&ROWS[0], &results);
        assert_eq!((p50["value"].as_f64(), p50["met"].as_bool()), (Some(800.0), Some(true)));
        assert_eq!(row_json(&ROWS[1], &results)["met"], false);
        let rss = ROWS.iter().find(|r| r.pointer.ends_with("daemon_and_hosts_rss_idle_bytes")).unwrap();
        assert_eq!(row_json(rss, &results)["value"].as_f64(), Some(38.0));
        assert!(row_json(&ROWS[2], &results)["value"].is_null(), "a missing figure is null, not 0");
        let md = markdown(&json!({ "summary": [row_json(&ROWS[1], &results)], "machine": {}, "quick": true }));
        assert!(md.contains("| failover after SIGKILL, p99 | 2500.000 ms | ≤ 2000.0 ms | NO |"), "{md}");
    }
}
