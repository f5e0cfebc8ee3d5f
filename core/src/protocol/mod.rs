//! The wire protocol: JSON text frames.
//!
//! Client frames carry an `action` (what API Gateway routes on, `$request.body.action`); server
//! frames carry a `type`. Parsing is strict and every refusal is a [`ProtocolError`] with an
//! [`ErrorCode`] and a message that says what to fix; it never closes the connection.
//!
//! - [`client_frame`]: what clients send ([`ClientFrame`]).
//! - [`server_frame`]: what Echo sends ([`ServerFrame`]).
//! - [`error_code`]: [`ErrorCode`], the closed set of error codes.
//! - [`error`]: [`ProtocolError`], a refusal as an `error` frame says it.
//! - [`close_code`]: [`CloseCode`], its ranges and the reconnect rule.
//! - [`codes`]: every code as the JSON fixture the clients are tested against.
//! - [`frame_size`]: the sizes of the frames that carry messages, bounded by the message limit.

pub mod client_frame;
pub mod close_code;
pub mod codes;
pub mod error;
pub mod error_code;
pub mod frame_size;
pub mod server_frame;

pub use client_frame::{
    ACTIONS, ClientFrame, DEFAULT_HISTORY_LIMIT, MAX_CLIENT_ID_LEN, MAX_HISTORY_LIMIT,
    MAX_REPLAY_BYTES,
};
pub use close_code::{
    CloseCode, MAX_CLOSE_REASON_BYTES, RECONNECT_RANGE, TERMINAL_RANGE, close_reason,
    reconnects_after,
};
pub use codes::codes_fixture;
pub use error::ProtocolError;
pub use error_code::ErrorCode;
pub use server_frame::{Ack, ErrorFrame, PresenceChange, PresenceEvent, ServerFrame};
