//! The `halo` command. Kept small: argument parsing and dispatch live in the library modules.

mod apply;
mod bench;
mod cli;
mod client;
mod node;

fn main() -> std::process::ExitCode {
    cli::run()
}
