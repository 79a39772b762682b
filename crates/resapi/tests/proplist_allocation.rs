//! Decoding never allocates more than the input justifies: a list claiming four billion
//! properties, or arbitrary junk, costs memory in proportion to its length, not to its claims.
//! The counting allocator counts per thread, so tests running in parallel do not disturb it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test helpers may panic on setup failures

use proptest::prelude::*;
use resapi::PropertyList;
use resapi::proplist::decode_value_list;
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

struct Counting;

thread_local! {
    // Signed: a thread may free what another allocated.
    static CURRENT: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let size = layout.size() as isize;
        let _ = CURRENT.try_with(|c| {
            c.set(c.get() + size);
            let _ = PEAK.try_with(|p| p.set(p.get().max(c.get())));
        });
        // SAFETY: forwarded unchanged to the system allocator.
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let size = layout.size() as isize;
        let _ = CURRENT.try_with(|c| c.set(c.get() - size));
        // SAFETY: `ptr` came from `alloc` above with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Peak bytes this thread allocated while `f` ran, above what it held before.
fn peak_during(f: impl FnOnce()) -> usize {
    let base = CURRENT.with(Cell::get);
    PEAK.with(|p| p.set(base));
    f();
    (PEAK.with(Cell::get) - base).max(0) as usize
}

/// The budget: a fixed overhead plus a constant factor of the input length.
fn budget(input_len: usize) -> usize {
    4096 + 32 * input_len
}

fn minimal_property() -> Vec<u8> {
    // NAME "" (2 bytes + 2 padding), a BINARY value of 0 bytes, ENDMARK.
    [0x0004_0003u32.to_le_bytes(), 2u32.to_le_bytes(), [0; 4], 0x0001_0001u32.to_le_bytes(), 0u32.to_le_bytes(), [0; 4]]
        .concat()
}

#[test]
fn claimed_count_does_not_drive_allocation() {
    let mut bytes = u32::MAX.to_le_bytes().to_vec();
    for _ in 0..1000 {
        bytes.extend_from_slice(&minimal_property());
    }
    let mut result = None;
    let peak = peak_during(|| result = Some(PropertyList::decode(&bytes)));
    assert!(result.is_some_and(|r| r.is_err()), "the list is short of its claimed count");
    assert!(peak <= budget(bytes.len()), "peak {peak} bytes for {} input bytes", bytes.len());
}

#[test]
fn huge_entry_length_does_not_drive_allocation() {
    // One value claiming a 4 GiB binary.
    let bytes = [0x0001_0001u32.to_le_bytes(), u32::MAX.to_le_bytes()].concat();
    let peak = peak_during(|| assert!(decode_value_list(&bytes).is_err()));
    assert!(peak <= budget(bytes.len()), "peak {peak}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]
    #[test]
    fn arbitrary_input_stays_within_budget(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
        let peak = peak_during(|| { let _ = PropertyList::decode(&bytes); let _ = decode_value_list(&bytes); });
        prop_assert!(peak <= budget(bytes.len()), "peak {} for {} bytes", peak, bytes.len());
    }
}
