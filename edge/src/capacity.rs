//! How many client connections the edge holds at once.
//!
//! Every connection is a socket, and a process may only have so many files open. An edge that
//! ran out would fail in ways no client can read: accepts stall, the management API and function
//! invocations cannot open connections, the store cannot open a file. So the edge raises its soft
//! open-file limit to the hard one at start, holds at most what that leaves room for (less a
//! reserve for everything else), and answers further upgrades with 503.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

/// Raises this process's soft open-file limit as far as its hard limit allows; returns the soft
/// limit now in force, or `None` where the platform has none to read.
pub fn raise_open_files_limit() -> Option<u64> {
    match rlimit::increase_nofile_limit(u64::MAX) {
        // Where the resource is not supported the call returns what it was asked for.
        Ok(u64::MAX) => None,
        Ok(limit) => Some(limit),
        Err(e) => {
            tracing::warn!(error = %e, "could not read or raise the open-file limit");
            None
        }
    }
}

/// Files kept for everything but client connections: listeners, the store, the management API's
/// connections (a fan-out invocation keeps dozens), function invocations, logs.
fn reserve(open_files: u64) -> u64 {
    (open_files / 16).clamp(64, 4096)
}

/// Client connections an open-file limit leaves room for.
pub fn connections_for(open_files: u64) -> usize {
    usize::try_from(open_files.saturating_sub(reserve(open_files))).unwrap_or(usize::MAX)
}

/// The most client connections to hold: the configured number, within what the open-file limit
/// leaves room for.
pub fn max_connections(configured: Option<usize>, open_files: Option<u64>) -> usize {
    let Some(open_files) = open_files else {
        return configured.unwrap_or(usize::MAX);
    };
    let room = connections_for(open_files);
    match configured {
        Some(wanted) if wanted > room => {
            tracing::warn!(
                max_connections = wanted,
                open_files,
                holding = room,
                "max_connections is more than the open-file limit leaves room for: raise the hard limit (ulimit -Hn) to hold more"
            );
            room
        }
        Some(wanted) => wanted,
        None => room,
    }
}

/// Sockets kept beyond the most WebSockets, for requests and upgrades in progress: a sixteenth,
/// between 16 and 1,024.
pub fn handshake_room(websockets: usize) -> usize {
    (websockets / 16).clamp(16, 1024)
}

/// The most WebSockets and the most client sockets to hold: `configured` WebSockets (or what the
/// open-file limit leaves room for), and room for handshakes beside them, all within the
/// open-file limit less its reserve (which keeps the management API, the store and function
/// calls in files).
pub fn limits(configured: Option<usize>, open_files: Option<u64>) -> (usize, usize) {
    let room = open_files.map_or(usize::MAX, connections_for);
    let mut websockets = max_connections(configured, open_files);
    let extra = handshake_room(websockets);
    if websockets.saturating_add(extra) > room {
        websockets = room.saturating_sub(extra).max(room / 2);
    }
    (websockets, websockets.saturating_add(extra).min(room))
}

/// The connections held, against the most allowed.
#[derive(Debug)]
pub struct Capacity {
    max: usize,
    held: AtomicUsize,
    /// Whether the edge was full the last time it refused: one warning per time it fills up.
    full: AtomicBool,
}

/// One connection's place; given back when dropped.
#[derive(Debug)]
pub struct Slot(Arc<Capacity>);

impl Capacity {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            held: AtomicUsize::new(0),
            full: AtomicBool::new(false),
        })
    }

    pub fn max(&self) -> usize {
        self.max
    }

    /// A place for one more connection, or `None` when `max` are held.
    pub fn try_take(self: &Arc<Self>) -> Option<Slot> {
        let taken = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                (held < self.max).then_some(held + 1)
            });
        if taken.is_ok() {
            return Some(Slot(self.clone()));
        }
        if !self.full.swap(true, Ordering::Relaxed) {
            tracing::warn!(
                max = self.max,
                "the edge holds its maximum of connections: further upgrades get 503 (--max-connections, and the open-file limit, set it)"
            );
        }
        None
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.held.fetch_sub(1, Ordering::AcqRel);
        self.0.full.store(false, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holds_at_most_max_and_gives_places_back() {
        let capacity = Capacity::new(2);
        let a = capacity.try_take().unwrap();
        let _b = capacity.try_take().unwrap();
        assert!(capacity.try_take().is_none());
        drop(a);
        let _c = capacity.try_take().unwrap();
        assert!(capacity.try_take().is_none());
    }

    #[test]
    fn sockets_leave_room_for_handshakes_within_the_open_files() {
        assert_eq!(limits(Some(100), Some(20_000)), (100, 116));
        assert_eq!(limits(Some(20_000), Some(20_000)), (17_726, 18_750));
        assert_eq!(limits(None, Some(20_000)), (17_726, 18_750));
        assert_eq!(limits(Some(5), None), (5, 21));
    }

    #[test]
    fn the_reserve_grows_with_the_limit_within_bounds() {
        assert_eq!(connections_for(1024), 960);
        assert_eq!(connections_for(20_000), 18_750);
        assert_eq!(connections_for(1 << 20), (1 << 20) - 4096);
        assert_eq!(connections_for(10), 0);
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (_, hard) = rlimit::Resource::NOFILE.get().unwrap();
        // Lowered first (any process may), so that there is something to raise; the other tests
        // in this process need far fewer files than this.
        rlimit::Resource::NOFILE.set(512.min(hard), hard).unwrap();
        let raised = raise_open_files_limit();
        let (soft, _) = rlimit::Resource::NOFILE.get().unwrap();
        assert_eq!(raised, Some(soft));
        // macOS caps the soft limit below an unlimited hard one.
        assert!(soft == hard || cfg!(target_os = "macos"), "{soft} < {hard}");
    }

    #[test]
    fn a_configured_maximum_holds_within_what_the_open_file_limit_allows() {
        let room = connections_for(20_000);
        assert_eq!(max_connections(Some(100), Some(20_000)), 100);
        assert_eq!(max_connections(Some(50_000), Some(20_000)), room);
        assert_eq!(max_connections(None, Some(20_000)), room);
        assert_eq!(max_connections(Some(50_000), None), 50_000);
        assert_eq!(max_connections(None, None), usize::MAX);
    }
}
