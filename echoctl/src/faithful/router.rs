//! The Lambda Invoke API of `echoctl dev --faithful`, where the handler Lambdas find every other
//! Lambda (`AWS_ENDPOINT_URL_LAMBDA`): Echo's own under one `cargo lambda watch`, and the
//! project's functions wherever they run (their own `cargo lambda watch`, the Node.js and Python
//! runners). It holds to what the Lambda service does where the Lambdas can tell:
//!
//! - an unknown function is `404 ResourceNotFoundException`;
//! - a payload over 6 MB (synchronous) or 1 MB (asynchronous) is `413 RequestTooLargeException`;
//! - an asynchronous (`Event`) invocation is answered `202` at once and runs afterwards (after
//!   `--async-invoke-delay`, standing in for its time in Lambda's internal queue); when the
//!   function fails it runs again, twice at most, as Lambda retries (after 1 s and 2 s here,
//!   about 1 and 2 minutes on AWS), and is then dropped with a line on standard error;
//! - `DryRun` is answered `204` without running anything.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Router as Routes;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, HeaderName, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::net::TcpListener;

/// Lambda's largest payloads, in bytes.
const SYNC_PAYLOAD: usize = 6 * 1024 * 1024;
const ASYNC_PAYLOAD: usize = 1024 * 1024;

/// When a failed asynchronous invocation runs again.
const RETRIES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(2)];

/// The request headers a function's server sees, and the response headers its caller sees.
const REQUEST_HEADERS: [&str; 3] = ["content-type", "x-amz-client-context", "x-amz-log-type"];
const RESPONSE_HEADERS: [&str; 6] = [
    "content-type",
    "x-amz-function-error",
    "x-amz-executed-version",
    "x-amz-log-result",
    "x-amzn-errortype",
    "x-amzn-requestid",
];

/// Where each function is served: its name and the Lambda Invoke API endpoint that serves it.
#[derive(Debug, Default, Clone)]
pub struct Table {
    by_name: HashMap<String, String>,
    /// Serves every name not in `by_name` (Echo's checkout: its demo functions).
    rest: Option<String>,
}

impl Table {
    pub fn route(&mut self, name: &str, endpoint: &str) {
        self.by_name.insert(name.to_owned(), endpoint.to_owned());
    }

    pub fn route_rest(&mut self, endpoint: &str) {
        self.rest = Some(endpoint.to_owned());
    }

    fn endpoint(&self, name: &str) -> Option<&str> {
        self.by_name
            .get(name)
            .or(self.rest.as_ref())
            .map(String::as_str)
    }
}

#[derive(Clone)]
struct Shared {
    table: Arc<Table>,
    http: reqwest::Client,
    /// How long an asynchronous invocation waits before it runs.
    queued: Duration,
}

/// The router's socket, bound before the Lambdas start so that they can be told its address.
pub struct Router {
    listener: TcpListener,
    endpoint: String,
}

impl Router {
    pub async fn bind() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let endpoint = format!("http://{}", listener.local_addr()?);
        Ok(Self { listener, endpoint })
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Serves `table` until echoctl stops; an asynchronous invocation runs `queued` after it
    /// was accepted, standing in for Lambda's internal queue.
    pub fn serve(self, table: Table, queued: Duration) {
        let shared = Shared {
            table: Arc::new(table),
            http: reqwest::Client::new(),
            queued,
        };
        let app = Routes::new()
            .route("/2015-03-31/functions/{name}/invocations", post(invoke))
            .layer(DefaultBodyLimit::max(SYNC_PAYLOAD + 1))
            .with_state(shared);
        tokio::spawn(async move {
            let _ = axum::serve(self.listener, app).await;
        });
    }
}

/// A function's name from what the caller gave: a name, an ARN, or either with a qualifier.
fn function_name(given: &str) -> &str {
    let name = given.rsplit_once(":function:").map_or(given, |(_, n)| n);
    name.split_once(':').map_or(name, |(n, _)| n)
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    (
        status,
        [
            ("x-amzn-errortype", kind),
            ("content-type", "application/json"),
        ],
        serde_json::json!({"Type": "User", "message": message}).to_string(),
    )
        .into_response()
}

async fn invoke(
    State(shared): State<Shared>,
    Path(given): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let name = function_name(&given).to_owned();
    let Some(endpoint) = shared.table.endpoint(&name).map(str::to_owned) else {
        return error(
            StatusCode::NOT_FOUND,
            "ResourceNotFoundException",
            &format!("Function not found: arn:aws:lambda:us-east-1:000000000000:function:{name}"),
        );
    };
    let kind = headers
        .get("x-amz-invocation-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("RequestResponse");
    let limit = match kind {
        "Event" => ASYNC_PAYLOAD,
        _ => SYNC_PAYLOAD,
    };
    if body.len() > limit {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            "RequestTooLargeException",
            &format!(
                "{} byte payload is too large for the {kind} invocation type (limit {limit} bytes)",
                body.len()
            ),
        );
    }
    match kind {
        "RequestResponse" => forward(&shared.http, &endpoint, &name, &headers, body)
            .await
            .unwrap_or_else(|e| {
                error(
                    StatusCode::BAD_GATEWAY,
                    "ServiceException",
                    &format!("{name} is not answering at {endpoint}: {e}"),
                )
            }),
        "Event" => {
            tokio::spawn(run_event(shared, endpoint, name, headers, body));
            StatusCode::ACCEPTED.into_response()
        }
        "DryRun" => StatusCode::NO_CONTENT.into_response(),
        other => error(
            StatusCode::BAD_REQUEST,
            "InvalidParameterValueException",
            &format!("unknown invocation type {other:?}"),
        ),
    }
}

/// One synchronous invocation at `endpoint`, answered as it answers.
async fn forward(
    http: &reqwest::Client,
    endpoint: &str,
    name: &str,
    headers: &HeaderMap,
    body: Bytes,
) -> Result<Response, reqwest::Error> {
    let mut request = http.post(format!(
        "{endpoint}/2015-03-31/functions/{name}/invocations"
    ));
    for header in REQUEST_HEADERS {
        if let Some(v) = headers.get(header) {
            request = request.header(header, v.as_bytes());
        }
    }
    let answer = request.body(body).send().await?;
    let status = StatusCode::from_u16(answer.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut out = HeaderMap::new();
    for header in RESPONSE_HEADERS {
        if let Some(v) = answer.headers().get(header)
            && let Ok(v) = axum::http::HeaderValue::from_bytes(v.as_bytes())
        {
            out.insert(HeaderName::from_static(header), v);
        }
    }
    let body = answer.bytes().await?;
    Ok((status, out, body).into_response())
}

/// An asynchronous invocation: run, and run again after a failure, as Lambda does.
async fn run_event(
    shared: Shared,
    endpoint: String,
    name: String,
    headers: HeaderMap,
    body: Bytes,
) {
    tokio::time::sleep(shared.queued).await;
    for attempt in 0..=RETRIES.len() {
        let failure = match forward(&shared.http, &endpoint, &name, &headers, body.clone()).await {
            Ok(r)
                if r.status().is_success() && !r.headers().contains_key("x-amz-function-error") =>
            {
                return;
            }
            Ok(r) => format!("it answered {}", r.status()),
            Err(e) => e.to_string(),
        };
        match RETRIES.get(attempt) {
            Some(delay) => {
                eprintln!(
                    "[lambda] asynchronous invocation of {name} failed ({failure}); it runs again in {} s",
                    delay.as_secs()
                );
                tokio::time::sleep(*delay).await;
            }
            None => eprintln!(
                "[lambda] asynchronous invocation of {name} failed ({failure}) {} times; the event is dropped, as Lambda drops it with no failure destination",
                RETRIES.len() + 1
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_arns_and_qualifiers_name_the_function() {
        for (given, name) in [
            ("angry", "angry"),
            ("angry:live", "angry"),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:angry",
                "angry",
            ),
            (
                "arn:aws:lambda:us-east-1:123456789012:function:angry:3",
                "angry",
            ),
        ] {
            assert_eq!(function_name(given), name, "{given}");
        }
    }
}
