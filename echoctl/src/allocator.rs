//! The system allocator, set up for a long-running edge.
//!
//! glibc serves allocations under its mmap threshold from its heaps and keeps what is freed
//! there; the threshold grows with the large blocks it sees, so after a burst of large frames
//! (history pages, floods of 127 KB messages) the edge held on to what the burst took. With the
//! threshold fixed at 64 KiB, blocks that large are mapped and unmapped on their own and go back
//! when freed. Measured with `echo-bench memory` (`bench/README.md`): eight readers paging 1,000
//! messages of 127 KB peaked at 172 MB and stayed there with glibc's defaults, and peaked at 79
//! MB and went back to 77 MB (the store's page cache included) with this; mimalloc held more
//! (16 MB idle, 170 MB after).

/// Fixes glibc's mmap threshold at 64 KiB. Called once, first thing in `main`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn configure() {
    // SAFETY: mallopt only sets one of the allocator's parameters, and runs before any thread
    // of this process exists.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 * 1024);
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn configure() {}
