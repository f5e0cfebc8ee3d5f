//! The Lambda's side: an API Gateway HTTP API event (payload format 2.0, as committed in
//! `tests/fixtures/`), turned into a request by `lambda_http` exactly as the Lambda's runtime does,
//! answered by the handler over in-memory ports.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use async_trait::async_trait;
use echo_core::associations::{Associations, LiveAssociations};
use echo_core::auth::{Claims, Role, TokenIssuer, TokenVerifier};
use echo_core::channel::{AppId, ChannelKey};
use echo_core::clock::{Clock, SystemClock};
use echo_core::function::{FunctionInput, FunctionInvoker, FunctionOutput, InvokeError};
use echo_core::gateway::{ConnectionInfo, Frame, Gateway, GatewayError};
use echo_core::ids::ConnectionId;
use echo_core::message::StoredMessage;
use echo_core::publish::{DispatchError, Dispatcher, Publisher};
use echo_core::store::memory::MemoryStore;
use lambda_http::request::LambdaRequest;
use serde_json::{Value, json};

const SECRET: &[u8] = b"http-api-test-secret-http-api-test-secret";

struct Nothing;

#[async_trait]
impl Dispatcher for Nothing {
    async fn dispatch(&self, _: &ChannelKey, _: &StoredMessage) -> Result<(), DispatchError> {
        Ok(())
    }
}

#[async_trait]
impl Gateway for Nothing {
    async fn post(&self, _: &ConnectionId, _: &Frame) -> Result<(), GatewayError> {
        Err(GatewayError::Gone)
    }
    async fn close(&self, _: &ConnectionId) -> Result<(), GatewayError> {
        Err(GatewayError::Gone)
    }
    async fn info(&self, _: &ConnectionId) -> Result<ConnectionInfo, GatewayError> {
        Err(GatewayError::Gone)
    }
}

#[async_trait]
impl FunctionInvoker for Nothing {
    async fn invoke(&self, name: &str, _: &FunctionInput) -> Result<FunctionOutput, InvokeError> {
        Err(InvokeError::Unknown(name.to_owned()))
    }
    async fn call(
        &self,
        name: &str,
        _: &serde_json::Value,
    ) -> Result<serde_json::Value, InvokeError> {
        Err(InvokeError::Unknown(name.to_owned()))
    }
    fn knows(&self, _: &str) -> bool {
        false
    }
}

fn deps(store: &Arc<MemoryStore>) -> message_handler::Deps {
    let publisher = Arc::new(Publisher::new(store.clone(), Arc::new(Nothing)));
    message_handler::Deps {
        connections: store.clone(),
        presence: Arc::new(echo_core::presence::Presence::new(
            store.clone(),
            publisher.clone(),
        )),
        publisher,
        associations: Arc::new(LiveAssociations::new(Associations::empty())),
        invoker: Arc::new(Nothing),
        gateway: Arc::new(Nothing),
        clock: Arc::new(SystemClock),
        limits: echo_core::limits::Limits::default(),
        metrics: Arc::new(echo_core::metrics::NoMetrics),
        admission: Arc::new(echo_core::admission::InStoreAdmission::new(
            store.clone(),
            None,
        )),
        verifier: TokenVerifier::new(SECRET).unwrap(),
        after_publish: message_handler::AfterPublish::BeforeReply,
    }
}

/// The committed event with `token` in its Authorization header, as `lambda_http` hands it over.
fn request(token: &str) -> http::Request<bytes::Bytes> {
    let text =
        include_str!("../../tests/fixtures/apigw-http-v2-publish.json").replace("${TOKEN}", token);
    let event: LambdaRequest = serde_json::from_str(&text).unwrap();
    let request: lambda_http::Request = event.into();
    let (parts, body) = request.into_parts();
    http::Request::from_parts(parts, bytes::Bytes::copy_from_slice(body.as_ref()))
}

fn token(role: Role) -> String {
    let mut claims = Claims::new(
        AppId::new("chat-demo").unwrap(),
        "orders-service",
        SystemClock.now_secs() + 600,
    );
    claims.role = role;
    TokenIssuer::new(SECRET).unwrap().issue(&claims).unwrap()
}

#[tokio::test]
async fn the_http_api_event_publishes_and_refuses_as_the_edge_does() {
    let store = Arc::new(MemoryStore::new());
    let deps = deps(&store);
    let response = http_api::handle(&deps, request(&token(Role::Admin))).await;
    assert_eq!(response.status(), 200, "{}", response.body());
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body, json!({"channel": "news", "seq": 1, "id": "order-1"}));
    assert_eq!(response.headers()["content-type"], "application/json");

    let response = http_api::handle(&deps, request(&token(Role::User))).await;
    assert_eq!(response.status(), 403);
    let body: Value = serde_json::from_str(response.body()).unwrap();
    assert_eq!(body["code"], "forbidden");
}
