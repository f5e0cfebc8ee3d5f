//! Emulation only: the management API's latency as `--manage-latency` sets it, so that the AWS
//! delivery path can be measured against the local edge. Nothing else in the edge uses it.
//!
//! tokio's timer ends a wait on the first whole millisecond after its deadline, and its driver
//! parks with a timeout in whole milliseconds too, so an emulated wait would run long. A
//! [`DelayLine`] keeps every deadline in one heap served by a thread of its own, which sleeps
//! until the earliest with a nanosecond timeout and then wakes each waiter whose deadline has
//! passed. How late each ends is measured in bench/README.md (item 14).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

/// The longest wait: about 30 years.
const FAR_FUTURE: Duration = Duration::from_secs(86_400 * 365 * 30);

/// One waiter: its deadline and how to wake it. Waiters are ordered by deadline alone.
struct Waiter {
    deadline: Instant,
    wake: oneshot::Sender<()>,
}

impl PartialEq for Waiter {
    fn eq(&self, other: &Self) -> bool {
        self.deadline == other.deadline
    }
}

impl Eq for Waiter {}

impl PartialOrd for Waiter {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Waiter {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.deadline.cmp(&other.deadline)
    }
}

#[derive(Default)]
struct Queue {
    waiters: BinaryHeap<Reverse<Waiter>>,
    closed: bool,
}

#[derive(Default)]
struct Shared {
    queue: Mutex<Queue>,
    changed: Condvar,
}

/// Delays served by one thread. Dropping it stops the thread; waits still pending then end at
/// once.
pub struct DelayLine {
    shared: Arc<Shared>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl std::fmt::Debug for DelayLine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DelayLine { .. }")
    }
}

impl DelayLine {
    /// Starts the thread that ends the waits.
    pub fn start() -> std::io::Result<Self> {
        let shared = Arc::new(Shared::default());
        let served = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("echo-delay".into())
            .spawn(move || serve(&served))?;
        Ok(Self {
            shared,
            thread: Some(thread),
        })
    }

    /// Waits until `deadline` (at once if it has passed).
    pub async fn wait_until(&self, deadline: Instant) {
        if let Some(woken) = self.register(deadline) {
            // An error means the line stopped: the wait ends with it.
            let _ = woken.await;
        }
    }

    /// Queues a wake-up at `deadline`; `None` once the line has stopped.
    fn register(&self, deadline: Instant) -> Option<oneshot::Receiver<()>> {
        let (wake, woken) = oneshot::channel();
        let mut q = lock(&self.shared.queue);
        if q.closed {
            return None;
        }
        let earliest = q.waiters.peek().is_none_or(|w| deadline < w.0.deadline);
        q.waiters.push(Reverse(Waiter { deadline, wake }));
        if earliest {
            self.shared.changed.notify_one();
        }
        Some(woken)
    }

    /// Waits `d` from now; a `d` an [`Instant`] cannot hold waits 30 years, as tokio's timer
    /// does.
    pub async fn wait(&self, d: Duration) {
        let now = Instant::now();
        if let Some(deadline) = now.checked_add(d).or_else(|| now.checked_add(FAR_FUTURE)) {
            self.wait_until(deadline).await;
        }
    }
}

impl Drop for DelayLine {
    fn drop(&mut self) {
        lock(&self.shared.queue).closed = true;
        self.shared.changed.notify_one();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn lock(m: &Mutex<Queue>) -> std::sync::MutexGuard<'_, Queue> {
    // Nothing panics while holding it; were it poisoned, the queue is still whole.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The thread: sleeps until the earliest deadline, then wakes every waiter that is due.
fn serve(shared: &Shared) {
    let mut q = lock(&shared.queue);
    let mut due = Vec::new();
    loop {
        if q.closed {
            // Dropping the senders ends the pending waits.
            q.waiters.clear();
            return;
        }
        let now = Instant::now();
        while q.waiters.peek().is_some_and(|w| w.0.deadline <= now) {
            if let Some(Reverse(w)) = q.waiters.pop() {
                due.push(w.wake);
            }
        }
        if !due.is_empty() {
            drop(q);
            for wake in due.drain(..) {
                // The waiter may have gone (its request was dropped): nothing to wake.
                let _ = wake.send(());
            }
            q = lock(&shared.queue);
            continue;
        }
        q = match q
            .waiters
            .peek()
            .map(|w| w.0.deadline.saturating_duration_since(now))
        {
            None => shared
                .changed
                .wait(q)
                .unwrap_or_else(PoisonError::into_inner),
            Some(left) => {
                shared
                    .changed
                    .wait_timeout(q, left)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn waits_end_in_deadline_order_and_not_before() {
        let line = Arc::new(DelayLine::start().unwrap());
        let start = Instant::now();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Registered out of order: the heap, not the order of arrival, decides.
        for ms in [30u64, 10, 20, 10] {
            let line = Arc::clone(&line);
            let tx = tx.clone();
            tokio::spawn(async move {
                let deadline = start + Duration::from_millis(ms);
                line.wait_until(deadline).await;
                let _ = tx.send((ms, Instant::now(), deadline));
            });
        }
        drop(tx);
        let mut ended = Vec::new();
        while let Some((ms, at, deadline)) = rx.recv().await {
            assert!(at >= deadline, "a {ms} ms wait ended before its deadline");
            ended.push(ms);
        }
        assert_eq!(ended, [10, 10, 20, 30]);
    }

    #[tokio::test]
    async fn an_earlier_deadline_wakes_the_thread_sleeping_for_a_later_one() {
        let line = DelayLine::start().unwrap();
        let _later = line.register(Instant::now() + Duration::from_secs(3600));
        // Let the thread go to sleep for the hour.
        tokio::time::sleep(Duration::from_millis(20)).await;
        tokio::time::timeout(Duration::from_secs(5), line.wait(Duration::from_millis(10)))
            .await
            .expect("the thread must wake for the earlier deadline");
    }

    #[tokio::test]
    async fn a_past_deadline_ends_at_once() {
        let line = DelayLine::start().unwrap();
        let past = Instant::now() - Duration::from_secs(1);
        tokio::time::timeout(Duration::from_secs(5), line.wait_until(past))
            .await
            .expect("a deadline in the past must not wait");
    }

    #[tokio::test]
    async fn dropping_the_line_ends_pending_waits() {
        let line = DelayLine::start().unwrap();
        let woken = line
            .register(Instant::now() + Duration::from_secs(3600))
            .unwrap();
        // Dropping joins the thread: it must not wait for the hour.
        drop(line);
        tokio::time::timeout(Duration::from_secs(5), woken)
            .await
            .expect("a pending wait must end when the line stops")
            .expect_err("the wait was ended by the stop, not by its deadline");
    }
}
