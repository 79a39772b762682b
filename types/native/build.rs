//! Compiles the C half of the callback table: `LogEvent` is variadic, which stable Rust cannot
//! define, so a few lines of C format the message and hand it to Rust.

fn main() {
    println!("cargo:rerun-if-changed=src/log_event.c");
    println!("cargo:rerun-if-changed=../../include/halo_resapi.h");
    cc::Build::new().file("src/log_event.c").include("../../include").warnings(true).compile("halo_native_log_event");
}
