//! Where the edge sends its API Gateway events: to the handler libraries in-process (the default),
//! or, in faithful mode, to the real handler Lambdas through the Lambda Invoke API (what
//! `cargo lambda watch` serves), exactly as API Gateway invokes them on AWS.

use aws_lambda_events::apigw::{
    ApiGatewayProxyResponse, ApiGatewayV2httpRequest, ApiGatewayV2httpResponse,
    ApiGatewayWebsocketProxyRequest,
};
use aws_lambda_events::encodings::Body;
use std::future::Future;
use std::pin::Pin;

use echo_core::disconnection::Swept;
use echo_core::ids::ConnectionId;
use echo_core::protocol::{ErrorCode, ProtocolError, ServerFrame};
use message_handler::Reply;

/// The Lambda names the faithful mode invokes: the binaries of the handler crates.
pub const CONNECT_FUNCTION: &str = "connect-handler";
pub const MESSAGE_FUNCTION: &str = "message-handler";
pub const HTTP_API_FUNCTION: &str = "http-api";

/// The handlers' dependencies when they run in-process.
pub struct InProcessHandlers {
    pub connect: connect_handler::Deps,
    pub message: message_handler::Deps,
}

pub enum Handlers {
    InProcess(Box<InProcessHandlers>),
    Lambda {
        endpoint: String,
        client: reqwest::Client,
        /// Frames of a connection are invoked as they come, not one after another.
        concurrent: bool,
    },
}

impl Handlers {
    /// `$connect` and `$disconnect` events.
    pub async fn connect(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        match self {
            Self::InProcess(h) => connect_handler::handle(&h.connect, event).await,
            Self::Lambda {
                endpoint, client, ..
            } => invoke(client, endpoint, CONNECT_FUNCTION, event).await,
        }
    }

    /// The sweep schedule's event: ends connections whose records expired. In faithful mode it
    /// goes to the connect handler Lambda, as EventBridge sends it on AWS.
    pub async fn sweep(&self) -> Result<Swept, String> {
        match self {
            Self::InProcess(h) => connect_handler::sweep(&h.connect)
                .await
                .map_err(|e| e.to_string()),
            Self::Lambda {
                endpoint, client, ..
            } => {
                let event = serde_json::json!({ "sweep": connect_handler::SweepEvent {} });
                call(client, endpoint, CONNECT_FUNCTION, &event)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// The schedules' minute tick, in faithful mode: to the message handler Lambda, as
    /// EventBridge sends it on AWS.
    pub async fn tick(&self) -> Result<message_handler::schedule::Ticked, String> {
        match self {
            Self::InProcess(_) => Ok(message_handler::schedule::Ticked::default()),
            Self::Lambda {
                endpoint, client, ..
            } => {
                let event = serde_json::json!({ "tick": message_handler::schedule::TickEvent {} });
                call(client, endpoint, MESSAGE_FUNCTION, &event)
                    .await
                    .map_err(|e| e.to_string())
            }
        }
    }

    /// Starts handling a `MESSAGE` event and returns its reply text, to be awaited later. In
    /// process, a publish is handed to the store before this returns and only its ack is left
    /// to wait for: a connection's next frame can start meanwhile, and its messages still get
    /// seqs in the order sent. Lambdas are invoked to completion before the next frame is read,
    /// or, with `concurrent`, the invocation is the pending reply and the next frame goes to
    /// the Lambda at once, as API Gateway may hand them over.
    pub async fn start_message(&self, event: &ApiGatewayWebsocketProxyRequest) -> PendingReply {
        let text = |frame: Option<ServerFrame>| frame.map(|f| f.to_json());
        match self {
            Self::InProcess(h) => {
                let Some(id) = event.request_context.connection_id.as_deref() else {
                    let r = message_handler::handle(&h.message, event).await;
                    return Box::pin(std::future::ready(body_text(r)));
                };
                let id = ConnectionId::from(id);
                let body = event.body.as_deref().unwrap_or_default();
                match message_handler::start_frame(&h.message, &id, body, event.is_base64_encoded)
                    .await
                {
                    Reply::Ready(frame) => Box::pin(std::future::ready(text(frame))),
                    Reply::Pending(pending) => Box::pin(async move { text(pending.await) }),
                }
            }
            Self::Lambda {
                endpoint,
                client,
                concurrent: true,
            } => {
                let (endpoint, client, event) = (endpoint.clone(), client.clone(), event.clone());
                Box::pin(async move {
                    body_text(invoke(&client, &endpoint, MESSAGE_FUNCTION, &event).await)
                })
            }
            Self::Lambda { .. } => {
                let r = self.message(event).await;
                Box::pin(std::future::ready(body_text(r)))
            }
        }
    }

    /// `MESSAGE` events.
    pub async fn message(
        &self,
        event: &ApiGatewayWebsocketProxyRequest,
    ) -> ApiGatewayProxyResponse {
        match self {
            Self::InProcess(h) => message_handler::handle(&h.message, event).await,
            Self::Lambda {
                endpoint, client, ..
            } => invoke(client, endpoint, MESSAGE_FUNCTION, event).await,
        }
    }
}

/// A reply still being worked out (a publish waiting for its commit).
pub type PendingReply = Pin<Box<dyn Future<Output = Option<String>> + Send>>;

/// The response body as text.
fn body_text(r: ApiGatewayProxyResponse) -> Option<String> {
    r.body.map(|b| match b {
        Body::Text(t) => t,
        other => String::from_utf8_lossy(other.as_ref()).into_owned(),
    })
}

/// Invokes `function` with `event` through the Lambda Invoke API and reads its response.
async fn call<E: serde::Serialize, R: serde::de::DeserializeOwned>(
    client: &reqwest::Client,
    endpoint: &str,
    function: &'static str,
    event: &E,
) -> Result<R, InvokeError> {
    let url = format!(
        "{}/2015-03-31/functions/{function}/invocations",
        endpoint.trim_end_matches('/')
    );
    let transport = |source| InvokeError::Transport { function, source };
    let response = client
        .post(&url)
        .json(event)
        .send()
        .await
        .map_err(transport)?;
    let failed =
        !response.status().is_success() || response.headers().contains_key("x-amz-function-error");
    let body = response.bytes().await.map_err(transport)?;
    if failed {
        return Err(InvokeError::Failed {
            function,
            body: String::from_utf8_lossy(&body).chars().take(300).collect(),
        });
    }
    serde_json::from_slice::<R>(&body).map_err(|source| InvokeError::Answer { function, source })
}

/// The `http-api` Lambda's response to an HTTP API event (faithful mode); when it gives none,
/// a 500 as API Gateway answers for a failed integration.
pub async fn invoke_http_api(
    client: &reqwest::Client,
    endpoint: &str,
    event: &ApiGatewayV2httpRequest,
) -> ApiGatewayV2httpResponse {
    call(client, endpoint, HTTP_API_FUNCTION, event)
        .await
        .unwrap_or_else(|e| {
            tracing::error!(function = HTTP_API_FUNCTION, error = %e, "handler invocation failed");
            let mut r = ApiGatewayV2httpResponse::default();
            r.status_code = 500;
            r.body = Some(Body::Text(
                serde_json::json!({"message": "Internal Server Error"}).to_string(),
            ));
            r
        })
}

/// Why a handler Lambda gave no response.
#[derive(Debug, thiserror::Error)]
enum InvokeError {
    #[error("could not invoke {function}: {source}")]
    Transport {
        function: &'static str,
        #[source]
        source: reqwest::Error,
    },
    #[error("{function} failed: {body}")]
    Failed {
        function: &'static str,
        body: String,
    },
    #[error("{function} answered something other than a response: {source}")]
    Answer {
        function: &'static str,
        #[source]
        source: serde_json::Error,
    },
}

async fn invoke(
    client: &reqwest::Client,
    endpoint: &str,
    function: &'static str,
    event: &ApiGatewayWebsocketProxyRequest,
) -> ApiGatewayProxyResponse {
    let result = call(client, endpoint, function, event).await;
    result.unwrap_or_else(|e| {
        // What API Gateway does when an integration fails: the client sees an internal error.
        tracing::error!(function, error = %e, "handler invocation failed");
        let mut r = ApiGatewayProxyResponse::default();
        r.status_code = 500;
        r.body = Some(Body::Text(
            ProtocolError::new(ErrorCode::Internal, "the handler failed")
                .to_frame()
                .to_json(),
        ));
        r
    })
}
