//! The `halo` command. Kept small: argument parsing and dispatch live in the library modules.

mod apply;
mod bench;
mod bench_all;
mod bench_cluster;
mod cli;
mod client;
mod credentials;
mod demo;
mod local;
mod node;

fn main() -> std::process::ExitCode {
    cli::run()
}
