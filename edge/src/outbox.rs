//! A connection's outbound queue: bounded in frames and in bytes, many posters, one writer. The
//! bytes bound what a client that stops reading can pin: at the frame bound alone, 4,096 frames
//! of 127 KB held half a gigabyte for one slow subscriber.
//!
//! Most connections are idle most of the time, so the queue holds no allocation while it is
//! empty: an idle connection costs the size of this struct, where a channel would keep a block
//! of slots allocated for its whole life. The writer drains a burst at a time, so giving the
//! memory back costs one allocation per burst, not per message.

use std::collections::VecDeque;
use std::sync::Mutex;

use axum::extract::ws::Message;
use tokio::sync::Notify;

pub struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    capacity: usize,
    max_bytes: usize,
}

struct State {
    queue: VecDeque<Message>,
    /// The payload bytes of what is queued.
    bytes: usize,
    /// The edge is closing the connection: the writer stops waiting for messages.
    interrupted: bool,
    /// The writer has stopped: nothing more is accepted.
    closed: bool,
}

impl State {
    /// The next message; an emptied queue gives its memory back.
    fn take(&mut self) -> Option<Message> {
        let message = self.queue.pop_front();
        if let Some(m) = &message {
            self.bytes -= size(m);
        }
        if self.queue.is_empty() && self.queue.capacity() > 0 {
            self.queue = VecDeque::new();
        }
        message
    }
}

/// The bytes a message holds while queued.
fn size(m: &Message) -> usize {
    match m {
        Message::Text(t) => t.len(),
        Message::Binary(b) | Message::Ping(b) | Message::Pong(b) => b.len(),
        Message::Close(_) => 0,
    }
}

/// Why a message was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// `capacity` messages, or `max_bytes`, are already waiting.
    Full,
    /// The writer has stopped.
    Closed,
}

impl Outbox {
    /// At most `capacity` messages and `max_bytes` of them; a first message is always taken.
    pub fn new(capacity: usize, max_bytes: usize) -> Self {
        Self {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                bytes: 0,
                interrupted: false,
                closed: false,
            }),
            ready: Notify::new(),
            capacity: capacity.max(1),
            max_bytes,
        }
    }

    /// Whether `count` more messages of `bytes` in all fit.
    fn fits(&self, s: &State, count: usize, bytes: usize) -> bool {
        s.queue.is_empty()
            || (s.queue.len() + count <= self.capacity && s.bytes + bytes <= self.max_bytes)
    }

    /// Queues `message` without waiting.
    pub fn push(&self, message: Message) -> Result<(), PushError> {
        {
            let mut s = self.lock();
            if s.closed {
                return Err(PushError::Closed);
            }
            let bytes = size(&message);
            if !self.fits(&s, 1, bytes) {
                return Err(PushError::Full);
            }
            s.bytes += bytes;
            s.queue.push_back(message);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// Queues all of `messages`, in order, or none of them.
    pub fn push_all(
        &self,
        messages: impl ExactSizeIterator<Item = Message> + Clone,
    ) -> Result<(), PushError> {
        {
            let mut s = self.lock();
            if s.closed {
                return Err(PushError::Closed);
            }
            let bytes: usize = messages.clone().map(|m| size(&m)).sum();
            if !self.fits(&s, messages.len(), bytes) {
                return Err(PushError::Full);
            }
            s.bytes += bytes;
            s.queue.extend(messages);
        }
        self.ready.notify_one();
        Ok(())
    }

    /// The next message, if one is queued.
    pub fn try_pop(&self) -> Option<Message> {
        self.lock().take()
    }

    /// Waits for the next message; `None` once [`interrupt`](Self::interrupt)ed. Only the
    /// connection's writer calls this.
    pub async fn pop(&self) -> Option<Message> {
        loop {
            // A push between this check and the wait leaves a permit, so the wait returns.
            {
                let mut s = self.lock();
                if s.interrupted {
                    return None;
                }
                if let Some(message) = s.take() {
                    return Some(message);
                }
            }
            self.ready.notified().await;
        }
    }

    /// Wakes the writer to stop: the edge is closing the connection. What is queued stays for
    /// [`try_pop`](Self::try_pop).
    pub fn interrupt(&self) {
        self.lock().interrupted = true;
        self.ready.notify_one();
    }

    /// Completes once [`interrupt`](Self::interrupt)ed: for the writer while a write is blocked.
    pub async fn interrupted(&self) {
        while !self.lock().interrupted {
            self.ready.notified().await;
        }
    }

    /// Refuses further messages: the writer has stopped.
    pub fn close(&self) {
        self.lock().closed = true;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Message {
        Message::Text(s.into())
    }

    #[tokio::test]
    async fn delivers_in_order_and_refuses_past_capacity() {
        let outbox = Outbox::new(2, usize::MAX);
        outbox.push(text("a")).unwrap();
        outbox.push(text("b")).unwrap();
        assert_eq!(outbox.push(text("c")), Err(PushError::Full));
        assert_eq!(outbox.pop().await, Some(text("a")));
        outbox.push(text("c")).unwrap();
        assert_eq!(outbox.try_pop(), Some(text("b")));
        assert_eq!(outbox.try_pop(), Some(text("c")));
        assert_eq!(outbox.try_pop(), None);
        outbox.push_all([text("d"), text("e")].into_iter()).unwrap();
        assert_eq!(
            outbox.push_all([text("f")].into_iter()),
            Err(PushError::Full),
            "all or nothing"
        );
        assert_eq!(outbox.try_pop(), Some(text("d")));
        assert_eq!(outbox.try_pop(), Some(text("e")));
        outbox.close();
        assert_eq!(outbox.push(text("d")), Err(PushError::Closed));
    }

    #[test]
    fn the_bytes_queued_are_bounded_too() {
        let outbox = Outbox::new(100, 10);
        outbox.push(text("123456")).unwrap();
        assert_eq!(outbox.push(text("12345")), Err(PushError::Full));
        outbox.push(text("1234")).unwrap();
        assert_eq!(outbox.try_pop(), Some(text("123456")));
        outbox.push(text("12345")).unwrap();
        while outbox.try_pop().is_some() {}
        // An empty queue takes any one message, whatever its size.
        outbox.push(text(&"x".repeat(50))).unwrap();
    }

    #[tokio::test]
    async fn a_waiting_writer_wakes_for_a_push() {
        let outbox = std::sync::Arc::new(Outbox::new(8, usize::MAX));
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move { outbox.pop().await }
        });
        tokio::task::yield_now().await;
        outbox.push(text("x")).unwrap();
        assert_eq!(writer.await.unwrap(), Some(text("x")));
    }

    #[tokio::test]
    async fn an_interrupt_stops_the_writer_and_keeps_the_queue() {
        let outbox = std::sync::Arc::new(Outbox::new(8, usize::MAX));
        let writer = tokio::spawn({
            let outbox = outbox.clone();
            async move {
                outbox.interrupted().await;
                outbox.pop().await
            }
        });
        tokio::task::yield_now().await;
        outbox.push(text("queued")).unwrap();
        outbox.interrupt();
        assert_eq!(writer.await.unwrap(), None);
        assert_eq!(outbox.try_pop(), Some(text("queued")));
    }

    #[test]
    fn an_emptied_queue_gives_back_its_memory() {
        let outbox = Outbox::new(1000, usize::MAX);
        for i in 0..5 {
            outbox.push(text(&i.to_string())).unwrap();
        }
        while outbox.try_pop().is_some() {}
        assert_eq!(outbox.lock().queue.capacity(), 0);
    }
}
