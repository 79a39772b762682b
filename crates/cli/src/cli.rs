//! Command-line interface of `halo`.
//!
//! Parses arguments and dispatches. Today it explains halo's contract numbers (`halo explain`);
//! the node daemon, the host and the object commands arrive with their issues. It must not hold
//! cluster logic itself: it calls the layers below.

use clap::{Parser, Subcommand, ValueEnum};
use resapi::{
    ControlCode, GroupMoveFlags, OfflineFlags, OnlineFlags, OpenFlags, ResourceOfflineFlags, ResourceOnlineFlags,
    ResourceState, Status, StatusFlags,
};
use std::process::ExitCode;

/// halo — a failover cluster for Linux with the WSFC resource contract.
#[derive(Debug, Parser)]
#[command(name = "halo", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Measure halo and print the figures as JSON.
    Bench {
        #[command(subcommand)]
        what: BenchWhat,
    },
    /// Run a resource host on stdin/stdout (started by the node daemon, not by hand).
    #[command(hide = true)]
    Host,
    /// Explain a contract number: a status code, a flag set's bits, a state or a control code.
    Explain {
        /// What the value is.
        #[arg(value_enum)]
        kind: ExplainKind,
        /// The value: a number (decimal or 0x hex) or, for codes and flags, a name.
        value: String,
    },
}

#[derive(Debug, Subcommand)]
enum BenchWhat {
    /// The resource host: call round trip, polling CPU and memory, OCF overhead.
    Host(crate::bench::HostBench),
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExplainKind {
    /// A Win32 status code (`997`, `ERROR_IO_PENDING`).
    Status,
    /// `CLUS_RESDLL_OFFLINE_*` bits given to OfflineV2.
    OfflineFlags,
    /// `CLUS_RESDLL_ONLINE_*` bits given to OnlineV2.
    OnlineFlags,
    /// `CLUS_RESDLL_OPEN_*` bits given to OpenV2.
    OpenFlags,
    /// `CLUSRESDLL_STATUS_*` bits of RESOURCE_STATUS_EX.
    StatusFlags,
    /// `CLUSAPI_GROUP_MOVE_*` bits.
    MoveFlags,
    /// `CLUSAPI_RESOURCE_ONLINE_*` bits.
    ResourceOnlineFlags,
    /// `CLUSAPI_RESOURCE_OFFLINE_*` bits.
    ResourceOfflineFlags,
    /// A CLUSTER_RESOURCE_STATE number.
    ResourceState,
    /// A 32-bit control code.
    ControlCode,
}

/// Parses the arguments and runs the command; errors print their reason and exit non-zero.
pub fn run() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        None => {
            use clap::CommandFactory;
            println!("halo {}", env!("CARGO_PKG_VERSION"));
            // Printing help can only fail if stdout is closed; nothing useful to do then.
            let _ = Cli::command().print_help();
            ExitCode::SUCCESS
        }
        Some(Command::Bench { what: BenchWhat::Host(bench) }) => match bench.run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("halo bench host: {e:#}");
                ExitCode::FAILURE
            }
        },
        Some(Command::Host) => {
            let code = match halo_host::server::serve(std::io::stdin().lock(), std::io::stdout()) {
                Ok(()) => 0,
                Err(e) => {
                    eprintln!("halo host: {e}");
                    1
                }
            };
            // Exit at once: threads stuck in hung resource code must not keep the process alive.
            std::process::exit(code)
        }
        Some(Command::Explain { kind, value }) => match explain(kind, &value) {
            Ok(text) => {
                println!("{text}");
                ExitCode::SUCCESS
            }
            Err(message) => {
                eprintln!("halo: {message}");
                ExitCode::from(2)
            }
        },
    }
}

fn explain(kind: ExplainKind, value: &str) -> Result<String, String> {
    let flags = |r: Result<String, resapi::FlagsError>| r.map_err(|e| e.to_string());
    match kind {
        ExplainKind::Status => {
            let status = resapi::parse_u32(value)
                .map(Status)
                .or_else(|| Status::from_name(value))
                .ok_or_else(|| format!("{value:?} is neither a number nor a known ERROR_* name"))?;
            Ok(status.to_string())
        }
        ExplainKind::OfflineFlags => flags(OfflineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::OnlineFlags => flags(OnlineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::OpenFlags => flags(OpenFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::StatusFlags => flags(StatusFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::MoveFlags => flags(GroupMoveFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceOnlineFlags => flags(ResourceOnlineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceOfflineFlags => flags(ResourceOfflineFlags::parse(value).map(|f| f.to_string())),
        ExplainKind::ResourceState => {
            let state = match value.trim().parse::<i32>() {
                Ok(raw) => ResourceState::from_raw(raw).map_err(|e| e.to_string())?,
                Err(_) => {
                    ResourceState::from_name(value).ok_or_else(|| format!("{value:?} is not a resource state"))?
                }
            };
            Ok(format!("{state} ({})", state.raw()))
        }
        ExplainKind::ControlCode => {
            let code = resapi::parse_u32(value)
                .map(ControlCode)
                .ok_or_else(|| format!("{value:?} is not a number (decimal or 0x hex)"))?;
            Ok(format!(
                "{code}: object {}, function {}, access {:?}{}{}{}{}",
                code.object().map_or_else(|| format!("{:#x} (unknown)", code.object_raw()), |o| format!("{o:?}")),
                code.function(),
                code.access(),
                if code.is_global() { ", global" } else { "" },
                if code.is_modify() { ", modify" } else { "" },
                if code.is_user() { ", user-defined" } else { "" },
                if code.is_internal() { ", internal" } else { "" },
            ))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explains_codes_flags_and_states() {
        assert_eq!(explain(ExplainKind::Status, "997").as_deref(), Ok("ERROR_IO_PENDING (997)"));
        assert_eq!(
            explain(ExplainKind::Status, "ERROR_RESOURCE_FAILED").as_deref(),
            Ok("ERROR_RESOURCE_FAILED (5038)")
        );
        assert_eq!(
            explain(ExplainKind::OfflineFlags, "0x41").as_deref(),
            Ok("0x41 (IGNORE_RESOURCE_STATUS|DO_NOT_UPDATE_PERSISTENT_STATE)")
        );
        assert!(explain(ExplainKind::OfflineFlags, "0x80").unwrap_err().contains("unknown bits 0x80"));
        assert_eq!(explain(ExplainKind::ResourceState, "129").as_deref(), Ok("OnlinePending (129)"));
        assert!(explain(ExplainKind::ControlCode, "0x01400086").unwrap().starts_with("CLUSCTL_RESOURCE_SET_PRIVATE"));
    }
}
