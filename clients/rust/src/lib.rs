//! Echo's Rust client, on tokio.
//!
//! ```no_run
//! # async fn demo() -> Result<(), echo_client::Error> {
//! let client = echo_client::Client::builder("ws://127.0.0.1:8080/")
//!     .token("eyJ...")
//!     .connect()
//!     .await?;
//! let mut angry = client.subscribe("angry").await?;
//! client.publish("angry", serde_json::json!({"text": "hello"})).await?;
//! while let Some(message) = angry.recv().await {
//!     println!("{} #{}: {}", message.channel, message.seq, message.data);
//! }
//! # Ok(()) }
//! ```
//!
//! The client keeps one WebSocket and hides its interruptions:
//! - after an unexpected close it reconnects with exponential backoff and full jitter, asking the
//!   token provider for a fresh token each time, and resubscribes every channel with `since` set
//!   to the last seq it delivered, so messages published meanwhile arrive, in order, once;
//! - it de-duplicates by seq and fills gaps (a replay is capped at 1,000 messages) from history;
//! - it pings when it has sent nothing for a while (API Gateway closes idle connections after
//!   10 minutes) and replaces the connection before API Gateway's 2-hour cap, opening the new
//!   one before closing the old.
//!
//! - a subscription made with presence keeps its channel's member list, read again after every
//!   reconnect, and reports users joining and leaving as events.
//!
//! Modules: `client` (the handle callers hold), `subscription`, `presence`, `connection` (the
//! task that owns the socket), `wire` (frames), `token`, `options`, `events` (state and events),
//! `published`, `error`, `error_code` (the codes `error` frames carry), `e2e` (end-to-end
//! encryption).

mod client;
mod connection;
pub mod e2e;
mod error;
mod error_code;
mod events;
mod options;
mod presence;
mod published;
mod subscription;
mod token;
mod wire;

pub use client::{Client, ClientBuilder};
pub use error::Error;
pub use error_code::ErrorCode;
pub use events::{Event, State};
pub use options::Options;
pub use presence::{Member, PresenceList, SubscribeOptions};
pub use published::Published;
pub use subscription::Subscription;
pub use wire::{HistoryPage, Message};
