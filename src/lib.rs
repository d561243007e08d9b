//! acronis-reports: declarative, verified billing reports from the Acronis Cyber Protect Cloud API.
//!
//! Data flows one way: [`job`] (the file) → [`plan`] (one request per tenant × period) →
//! [`run`] (create, [`poll`], [`download`], [`checks`] through the [`api`] client; started and
//! aimed by the [`history`] of earlier periods) →
//! [`results`] → [`output`] writers. [`session`] does one `run` command through all of them.

#![warn(missing_docs)]

pub mod api;
pub mod checks;
pub mod ci;
pub mod content;
mod direct_io;
pub(crate) mod discover;
pub mod disk;
pub mod doctor;
pub(crate) mod download;
pub mod duration;
pub mod history;
pub mod job;
pub mod merge;
pub mod output;
pub mod period;
pub mod plan;
pub(crate) mod poll;
pub mod report;
pub mod results;
pub mod retry;
pub mod run;
pub mod secret;
pub mod session;
pub mod shard;
pub(crate) mod state;
pub mod verify;

/// Heap bytes of the current thread, for tests that hold a structure to its bound: memory of a
/// run must follow its concurrency, not its plan, and only a count shows that a change keeps
/// it so (`BENCHMARKS.md`, the scale case).
#[cfg(test)]
pub(crate) mod heap {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    struct Counting;

    #[global_allocator]
    static COUNTING: Counting = Counting;

    thread_local! {
        static LIVE: Cell<isize> = const { Cell::new(0) };
        static PEAK: Cell<isize> = const { Cell::new(0) };
    }

    fn add(bytes: isize) {
        // `try_with`: a thread being torn down frees its last allocations after its locals.
        let _ = LIVE.try_with(|live| {
            let now = live.get() + bytes;
            live.set(now);
            let _ = PEAK.try_with(|peak| peak.set(peak.get().max(now)));
        });
    }

    // SAFETY: every call goes to the system allocator unchanged; only a count is kept beside.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract, passed on.
            let ptr = unsafe { System.alloc(layout) };
            if !ptr.is_null() {
                add(layout.size() as isize);
            }
            ptr
        }

        unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
            // SAFETY: the caller's contract, passed on.
            let ptr = unsafe { System.alloc_zeroed(layout) };
            if !ptr.is_null() {
                add(layout.size() as isize);
            }
            ptr
        }

        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: the caller's contract, passed on.
            unsafe { System.dealloc(ptr, layout) };
            add(-(layout.size() as isize));
        }

        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            // SAFETY: the caller's contract, passed on.
            let moved = unsafe { System.realloc(ptr, layout, new_size) };
            if !moved.is_null() {
                add(new_size as isize - layout.size() as isize);
            }
            moved
        }
    }

    /// `work`'s result, and the most heap it held at once on this thread above what the thread
    /// held before (what it returns included).
    pub fn peak_of<T>(work: impl FnOnce() -> T) -> (T, usize) {
        let before = LIVE.with(Cell::get);
        PEAK.with(|peak| peak.set(before));
        let out = work();
        let peak = PEAK.with(Cell::get);
        (out, usize::try_from(peak - before).unwrap_or(0))
    }
}
