//! Keeping a long-running watch small. seclab ships with mimalloc, whose defaults suit a
//! short command: arenas committed eagerly (so backed by transparent huge pages) and freed
//! memory returned to the OS only after a delay. A watch holds the lab for days, and most of
//! what a pass allocates is freed when it ends, so it asks for the opposite (the binary
//! also commits lazily for every command: it costs a one-shot command nothing measurable).
//! Without mimalloc as the global allocator these calls change nothing.

use std::os::raw::{c_int, c_long};

/// `mi_option_arena_eager_commit` in mimalloc.h (the numbering is stable across versions).
const ARENA_EAGER_COMMIT: c_int = 4;
/// `mi_option_purge_delay` in mimalloc.h.
const PURGE_DELAY: c_int = 15;

/// Commits arenas as they are used. Takes effect only before the first allocation (the
/// binary calls it from a constructor).
pub fn commit_as_used() {
    // SAFETY: sets one of mimalloc's options; 0 is a valid value.
    unsafe { libmimalloc_sys::mi_option_set(ARENA_EAGER_COMMIT, 0 as c_long) };
}

/// Returns freed memory to the OS at once, not after a delay.
pub fn hold_little() {
    // SAFETY: sets one of mimalloc's options; 0 is a valid value.
    unsafe { libmimalloc_sys::mi_option_set(PURGE_DELAY, 0 as c_long) };
}

/// Returns what the last pass freed to the OS.
pub fn release() {
    // SAFETY: a collection may run at any time.
    unsafe { libmimalloc_sys::mi_collect(true) };
}
