//! A small HTTP front for dynalite: it passes every DynamoDB request on, records which operation
//! each was (`x-amz-target`), and can answer DynamoDB's throttling error for the next N requests
//! of one operation. Tests count what a handler asks of DynamoDB, and see what it does when
//! DynamoDB throttles.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub struct Front {
    dynalite: String,
    /// The operation throttled (`UpdateItem`, ...), and how many more times.
    throttle: Mutex<(&'static str, usize)>,
    /// How many requests were throttled.
    pub throttled: AtomicUsize,
    /// The operation of every request passed on, in order.
    seen: Mutex<Vec<String>>,
    http: reqwest::Client,
}

impl Front {
    /// A front for the dynalite at `dynalite`; returns its endpoint.
    pub async fn start(dynalite: &str) -> (String, Arc<Front>) {
        let f = Arc::new(Front {
            dynalite: dynalite.to_owned(),
            throttle: Mutex::new(("", 0)),
            throttled: AtomicUsize::new(0),
            seen: Mutex::new(Vec::new()),
            http: reqwest::Client::new(),
        });
        let app = axum::Router::new()
            .route("/", axum::routing::post(serve))
            .with_state(f.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        (format!("http://{addr}"), f)
    }

    /// Throttles the next `times` requests for `operation`.
    pub fn throttle(&self, operation: &'static str, times: usize) {
        *self.throttle.lock().unwrap() = (operation, times);
    }

    /// How many requests have been passed on so far: a mark for [`counts_since`](Self::counts_since).
    pub fn mark(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    /// Requests passed on since `mark`, by operation.
    pub fn counts_since(&self, mark: usize) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for op in &self.seen.lock().unwrap()[mark..] {
            *counts.entry(op.clone()).or_insert(0) += 1;
        }
        counts
    }
}

async fn serve(State(f): State<Arc<Front>>, headers: HeaderMap, body: Bytes) -> Response {
    let target = headers
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let operation = target.rsplit('.').next().unwrap_or_default().to_owned();
    let throttled = {
        let mut t = f.throttle.lock().unwrap();
        if operation == t.0 && t.1 > 0 {
            t.1 -= 1;
            true
        } else {
            false
        }
    };
    if throttled {
        f.throttled.fetch_add(1, Ordering::SeqCst);
        return (
            StatusCode::BAD_REQUEST,
            [("content-type", "application/x-amz-json-1.0")],
            r#"{"__type":"com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException","message":"The level of configured provisioned throughput for the table was exceeded."}"#,
        )
            .into_response();
    }
    f.seen.lock().unwrap().push(operation);
    let mut forward = f
        .http
        .post(&f.dynalite)
        .header("x-amz-target", target)
        .header("content-type", "application/x-amz-json-1.0");
    for name in ["authorization", "x-amz-date"] {
        if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
            forward = forward.header(name, v);
        }
    }
    let r = forward.body(body).send().await.unwrap();
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap();
    (
        status,
        [("content-type", "application/x-amz-json-1.0")],
        r.bytes().await.unwrap(),
    )
        .into_response()
}
