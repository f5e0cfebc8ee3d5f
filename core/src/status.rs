//! Presence events: who connected, disconnected, subscribed or unsubscribed, published on each
//! app's `$status` channel.

use std::sync::Arc;

use crate::channel::{AppId, ChannelKey, ChannelName};
use crate::ids::ConnectionId;
use crate::message::NewMessage;
use crate::publish::Publisher;

/// A presence event on an app's `$status` channel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusEvent {
    Connected,
    Disconnected,
    Subscribed,
    Unsubscribed,
}

impl StatusEvent {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Connected => "connected",
            Self::Disconnected => "disconnected",
            Self::Subscribed => "subscribed",
            Self::Unsubscribed => "unsubscribed",
        }
    }
}

impl Publisher {
    /// Publishes a presence event to the app's `$status` channel. Failures are logged, not
    /// returned: presence must never make a connect, subscribe or disconnect fail.
    pub async fn status(
        self: &Arc<Self>,
        app: &AppId,
        event: StatusEvent,
        connection: &ConnectionId,
        user: &str,
        channel: Option<&ChannelName>,
        now_ms: u64,
    ) {
        let mut data = serde_json::json!({
            "event": event.as_str(),
            "connectionId": connection.as_str(),
            "user": user,
        });
        if let Some(channel) = channel {
            data["channel"] = serde_json::Value::String(channel.to_string());
        }
        let key = ChannelKey::new(app.clone(), ChannelName::status());
        let message = NewMessage {
            id: crate::ids::random_hex(8),
            data,
            from: crate::message::SYSTEM_SENDER.to_owned(),
            ts: now_ms,
            dedup_window_ms: None,
        };
        if let Err(e) = self.commit(&key, message).await {
            tracing::warn!(app = %app, event = event.as_str(), error = %e, "could not publish status event");
        }
    }
}
