//! Where the messages an `onConnect` function publishes go. A connection's hook runs where
//! `$connect` is handled, away from the publish path (the channels' functions, the store's
//! order, fan-out); the connect handler hands what its functions published to a [`Relay`], which
//! publishes them there: in process on the local edge, through an asynchronous invocation of the
//! message handler on AWS (whose [`Relayed`] event this is).

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::channel::{AppId, ChannelName};
use crate::function::Publication;
use crate::ids::ConnectionId;

/// Publishes messages functions published, as from them, through each target channel's functions.
#[async_trait]
pub trait Relay: Send + Sync {
    /// Publishes `relayed`; failures are the relay's to log and count, never the caller's.
    async fn relay(&self, relayed: Relayed);
}

/// Messages functions published for `app`, while handling connection `origin`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Relayed {
    pub app: AppId,
    pub origin: ConnectionId,
    pub publish: Vec<RelayedPublication>,
}

/// One message, with the function that published it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayedPublication {
    pub function: String,
    pub channel: ChannelName,
    pub data: Value,
}

impl Relayed {
    pub fn new(app: AppId, origin: ConnectionId, published: Vec<(String, Publication)>) -> Self {
        let publish = published
            .into_iter()
            .map(|(function, p)| RelayedPublication {
                function,
                channel: p.channel,
                data: p.data,
            })
            .collect();
        Self {
            app,
            origin,
            publish,
        }
    }

    /// The messages, each with its function, as the publish path takes them.
    pub fn into_publications(self) -> Vec<(String, Publication)> {
        self.publish
            .into_iter()
            .map(|r| {
                (
                    r.function,
                    Publication {
                        channel: r.channel,
                        data: r.data,
                    },
                )
            })
            .collect()
    }
}
