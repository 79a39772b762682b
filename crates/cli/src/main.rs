//! The `halo` command. Kept small: argument parsing and dispatch live in the library modules.

mod bench;
mod cli;

fn main() -> std::process::ExitCode {
    cli::run()
}
