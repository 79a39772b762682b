//! The fuzz targets' shared helpers: halo-fuzzkit's, with its counting allocator installed.

pub use halo_fuzzkit::{budget, peak_during, ready};

#[global_allocator]
static ALLOCATOR: halo_fuzzkit::Counting = halo_fuzzkit::Counting;
