//! What the handler tests share: a handler over the in-memory store with a manual clock, a
//! gateway, dispatcher and metrics that record what they are given, and three functions.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use echo_core::store::ConnectionRecords;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use echo_core::admission::InProcessAdmission;
use echo_core::associations::{Associations, LiveAssociations};
use echo_core::auth::{Claims, Permissions, TokenIssuer, TokenVerifier};
use echo_core::channel::{AppId, ChannelKey, ChannelName, ChannelPattern};
use echo_core::clock::ManualClock;
use echo_core::function::{
    FunctionError, FunctionInput, FunctionInvoker, FunctionOutput, InvokeError, map_text,
};
use echo_core::gateway::{ConnectionInfo, Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use echo_core::limits::Limits;
use echo_core::message::StoredMessage;
use echo_core::metrics::{Metric, Metrics};
use echo_core::presence::Presence;
use echo_core::publish::{DispatchError, Dispatcher, Publisher};
use echo_core::store::{ConnectionRecord, HistoryStore, MemoryStore};
use serde_json::Value;

use crate::deps::Deps;

/// The app every test connection belongs to.
pub const APP: &str = "chat-demo";
/// The time the manual clock starts at, in milliseconds.
pub const NOW_MS: u64 = 1_707_502_324_187;
/// The secret the harness's tokens are signed with.
pub const SECRET: &[u8] = b"harness-secret-harness-secret-harness";

/// A token for `claims`, signed with [`SECRET`].
pub fn token(claims: &Claims) -> String {
    TokenIssuer::new(SECRET).unwrap().issue(claims).unwrap()
}

/// Records what was posted, dispatched and measured.
#[derive(Default)]
pub struct Recorder {
    pub posted: Mutex<Vec<(ConnectionId, String)>>,
    pub closed: Mutex<Vec<ConnectionId>>,
    pub dispatched: Mutex<Vec<(String, u64)>>,
    pub metrics: Mutex<Vec<String>>,
}

impl Metrics for Recorder {
    fn record(&self, m: Metric<'_>) {
        let name = match m {
            Metric::MessagePublished => "published".to_owned(),
            Metric::MessageDropped => "dropped".to_owned(),
            Metric::MessageDuplicate => "duplicate".to_owned(),
            Metric::FunctionPublishRefused { function } => format!("refused:{function}"),
            Metric::FunctionRun { function, ok, .. } => format!("{function}:{ok}"),
            Metric::RateLimited => "rate_limited".to_owned(),
            Metric::AfterPublish { function, ok } => format!("after:{function}:{ok}"),
            Metric::Fanout { delivered, .. } => format!("fanout:{delivered}"),
            Metric::ConnectionRefused { reason } => format!("refused:{reason}"),
            Metric::AppConnect { app, accepted } => format!("connect:{app}:{accepted}"),
        };
        self.metrics.lock().unwrap().push(name);
    }
}

#[async_trait]
impl Gateway for Recorder {
    async fn post(&self, id: &ConnectionId, frame: &Frame) -> Result<(), GatewayError> {
        self.posted
            .lock()
            .unwrap()
            .push((id.clone(), frame.as_str().to_owned()));
        Ok(())
    }
    async fn close(&self, id: &ConnectionId) -> Result<(), GatewayError> {
        self.closed.lock().unwrap().push(id.clone());
        Ok(())
    }
    async fn info(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}

#[async_trait]
impl Dispatcher for Recorder {
    async fn dispatch(&self, key: &ChannelKey, m: &StoredMessage) -> Result<(), DispatchError> {
        self.dispatched.lock().unwrap().push((key.encode(), m.seq));
        Ok(())
    }
}

/// `shout` upper-cases text, `quiet` drops every message, `broken` fails.
pub struct Functions;

#[async_trait]
impl FunctionInvoker for Functions {
    async fn invoke(
        &self,
        name: &str,
        input: &FunctionInput,
    ) -> Result<FunctionOutput, InvokeError> {
        match name {
            "shout" => Ok(FunctionOutput::cont(map_text(
                input.message.data.clone(),
                |t| t.to_uppercase(),
            ))),
            "quiet" => Ok(FunctionOutput::drop("too quiet")),
            "broken" => Err(InvokeError::Failed(FunctionError::new("it broke").0)),
            // An after-publish function: it sees the committed message's seq.
            "audit" if input.message.seq.is_some() => Ok(FunctionOutput::drop("seen")),
            "audit" => Err(InvokeError::Failed("no seq".to_owned())),
            "sleepy" => {
                let ms = input.message.data["sleepMs"].as_u64().unwrap_or(0);
                tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
                Ok(FunctionOutput::cont(input.message.data.clone()))
            }
            other => Err(InvokeError::Unknown(other.to_owned())),
        }
    }

    /// `member-check` admits alice alone, saying why others may not enter.
    async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError> {
        match name {
            "member-check" if input["user"]["sub"] == "alice" => {
                Ok(serde_json::json!({"action": "allow"}))
            }
            "member-check" => Ok(serde_json::json!({
                "action": "deny",
                "reason": format!("{} is not a member of {}", input["user"]["sub"].as_str().unwrap_or_default(), input["channel"].as_str().unwrap_or_default()),
            })),
            "broken" => Err(InvokeError::Failed("it broke".to_owned())),
            other => Err(InvokeError::Unknown(other.to_owned())),
        }
    }

    fn knows(&self, name: &str) -> bool {
        [
            "shout",
            "quiet",
            "broken",
            "sleepy",
            "audit",
            "member-check",
        ]
        .contains(&name)
    }
}

/// Channels `angry` and `loud` (shout), `hushed` (quiet), `fragile` (broken, rejecting),
/// `sleepy` (waits `data.sleepMs`), `audited` (shout, then after publish `audit` and
/// `broken`), `members` (subscribing checked by `member-check`), `open-door` and `closed-door`
/// (subscribing checked by `broken`, under `pass` and `reject`) of [`APP`].
pub const ASSOCIATIONS: &str = r#"{"apps":{"chat-demo":{"channels":{
    "sleepy":{"functions":["sleepy"],"timeoutMs":5000},
    "angry":{"functions":["shout"]},
    "loud":{"functions":["shout"]},
    "hushed":{"functions":["quiet"]},
    "fragile":{"functions":["broken"],"onError":"reject"},
    "audited":{"functions":["shout"],"afterPublish":["audit","broken"]},
    "members":{"onSubscribe":["member-check"]},
    "open-door":{"onSubscribe":["broken"],"onError":"pass"},
    "closed-door":{"onSubscribe":["broken"]}
}}}}"#;

/// A message handler over the in-memory store, with a manual clock.
pub struct Harness {
    pub deps: Deps,
    pub store: Arc<MemoryStore>,
    pub recorder: Arc<Recorder>,
    pub clock: ManualClock,
}

impl Harness {
    pub fn new() -> Self {
        Self::with(Limits::default(), 0, 0)
    }

    /// A handler whose connections may send `rate` counted frames per second, `burst` at once
    /// (`rate` 0: no limit), counted in process as on the local edge.
    pub fn with(limits: Limits, rate: u32, burst: u32) -> Self {
        let clock = ManualClock::new(NOW_MS);
        let store = Arc::new(MemoryStore::with_clock(Arc::new(clock.clone())));
        let recorder = Arc::new(Recorder::default());
        let associations = Associations::parse(ASSOCIATIONS, &|n| Functions.knows(n)).unwrap();
        let publisher = Arc::new(Publisher::new(store.clone(), recorder.clone()));
        let deps = Deps {
            connections: store.clone(),
            presence: Arc::new(Presence::new(store.clone(), publisher.clone())),
            publisher,
            associations: Arc::new(LiveAssociations::new(associations)),
            invoker: Arc::new(Functions),
            gateway: recorder.clone(),
            clock: Arc::new(clock.clone()),
            limits,
            metrics: recorder.clone(),
            admission: Arc::new(InProcessAdmission::new(store.clone(), rate, burst)),
            verifier: TokenVerifier::new(SECRET).unwrap(),
            after_publish: crate::AfterPublish::BeforeReply,
        };
        Self {
            deps,
            store,
            recorder,
            clock,
        }
    }

    /// Registers connection `id` for user `alice` of [`APP`], as `$connect` does.
    pub async fn connect(&self, id: &str, claims: impl FnOnce(Claims) -> Claims) -> ConnectionId {
        self.connect_as(id, "alice", claims).await
    }

    /// Registers connection `id` for user `sub` of [`APP`].
    pub async fn connect_as(
        &self,
        id: &str,
        sub: &str,
        claims: impl FnOnce(Claims) -> Claims,
    ) -> ConnectionId {
        let id = ConnectionId::from(id);
        let claims = claims(Claims::new(app(), sub, 4_000_000_000));
        self.store
            .put_connection(ConnectionRecord {
                id: id.clone(),
                expires_at: self.deps.limits.record_expiry(NOW_MS, claims.exp),
                claims,
                connected_at: NOW_MS,
            })
            .await
            .unwrap();
        id
    }

    /// Sends `frame` from `id`; the reply as JSON.
    pub async fn send(&self, id: &ConnectionId, frame: Value) -> Option<Value> {
        self.send_text(id, &frame.to_string()).await
    }

    pub async fn send_text(&self, id: &ConnectionId, text: &str) -> Option<Value> {
        crate::handle_frame(&self.deps, id, text, false)
            .await
            .map(|f| serde_json::from_str(&f.to_json()).unwrap())
    }

    /// What was posted to `id` through the gateway so far, as JSON, and forgets it.
    pub fn posted_to(&self, id: &ConnectionId) -> Vec<Value> {
        let mut posted = self.recorder.posted.lock().unwrap();
        let (mine, others) = posted.drain(..).partition(|(to, _)| to == id);
        *posted = others;
        mine.into_iter()
            .map(|(_, text)| serde_json::from_str(&text).unwrap())
            .collect()
    }

    /// The stored messages of `channel`, as `(seq, data)`.
    pub async fn stored(&self, channel: &str) -> Vec<(u64, Value)> {
        self.store
            .range(&key(channel), 0, 1000)
            .await
            .unwrap()
            .into_iter()
            .map(|m| (m.seq, m.data))
            .collect()
    }

    /// The presence events committed for `channel`, as `(seq, "join" | "leave", sub)`.
    pub async fn presence_events(&self, channel: &str) -> Vec<(u64, String, String)> {
        self.stored(&format!("$presence:{channel}"))
            .await
            .into_iter()
            .map(|(seq, data)| {
                let text = |k: &str| data[k].as_str().unwrap().to_owned();
                (seq, text("type"), text("sub"))
            })
            .collect()
    }

    /// The `event` of every `$status` message stored so far.
    pub async fn status_events(&self) -> Vec<String> {
        self.stored("$status")
            .await
            .into_iter()
            .map(|(_, data)| data["event"].as_str().unwrap().to_owned())
            .collect()
    }
}

/// Claims that may subscribe only to channels matching `room-*` (and publish anywhere).
pub fn subscribe_to_rooms_only(mut claims: Claims) -> Claims {
    claims.channels = Some(Permissions {
        subscribe: Some(vec![ChannelPattern::new("room-*").unwrap()]),
        publish: None,
    });
    claims
}

/// Claims that may publish only to channels matching `room-*` (and subscribe anywhere).
pub fn publish_to_rooms_only(mut claims: Claims) -> Claims {
    claims.channels = Some(Permissions {
        subscribe: None,
        publish: Some(vec![ChannelPattern::new("room-*").unwrap()]),
    });
    claims
}

pub fn app() -> AppId {
    AppId::new(APP).unwrap()
}

pub fn key(channel: &str) -> ChannelKey {
    let name = if channel == "$status" {
        ChannelName::status()
    } else {
        ChannelName::new(channel).unwrap()
    };
    ChannelKey::new(app(), name)
}
