//! # halo-fuzzkit — dev-only
//!
//! What the fuzz targets (`fuzz/`) and their proptest equivalents (the `fuzz_*` tests) share: a
//! counting allocator, to check that a length field the input claims never drives an allocation
//! past the decoder's limit, and a poller for the async frame readers, which never wait when they
//! read from a byte slice. It must not be a dependency of anything that ships.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::future::Future;
use std::task::{Context, Poll, Waker};

/// Counts the bytes each thread holds; declare it as the binary's allocator:
/// `#[global_allocator] static ALLOCATOR: halo_fuzzkit::Counting = halo_fuzzkit::Counting;`
pub struct Counting;

thread_local! {
    // Signed: a thread may free what another allocated.
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

fn grow(by: isize) {
    let _ = CURRENT.try_with(|c| {
        c.set(c.get() + by);
        let _ = PEAK.try_with(|p| p.set(p.get().max(c.get())));
    });
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        grow(layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    // Forwarded rather than left to the default, which would write every zero of a large frame
    // buffer that calloc gets from the kernel already zeroed.
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        grow(layout.size() as isize);
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        grow(new_size as isize - layout.size() as isize);
        // SAFETY: `ptr` came from this allocator with `layout`; forwarded unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        grow(-(layout.size() as isize));
        // SAFETY: `ptr` came from this allocator with `layout`.
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// Runs `f`; returns its result and the peak bytes this thread held meanwhile above what it
/// held before.
pub fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    let result = f();
    let peak = (PEAK.with(Cell::get) - base).max(0) as usize;
    (result, peak)
}

/// What a decoder may allocate for `input_len` bytes of input, besides a frame buffer: a fixed
/// overhead plus a constant factor (JSON maps and sets cost a node per few input bytes).
pub fn budget(input_len: usize) -> usize {
    64 * 1024 + 256 * input_len
}

/// Polls `f` once: async readers over a byte slice are ready at once, never pending.
pub fn ready<F: Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    match f.as_mut().poll(&mut Context::from_waker(Waker::noop())) {
        Poll::Ready(v) => v,
        Poll::Pending => panic!("a reader over a byte slice never waits"),
    }
}
