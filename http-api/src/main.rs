//! The Lambda behind the HTTP API (API Gateway HTTP API, payload format 2.0): the request as
//! `lambda_http` gives it, answered by the same code as on the local edge.

use echo_aws::lambda::Resources;
use lambda_http::{Body, Error, Request, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    let r = Resources::load(&[
        "ECHO_KEYS_SECRET",
        "ECHO_FANOUT_FUNCTION",
        "ECHO_MANAGEMENT_ENDPOINT",
    ])
    .await?;
    // The HTTP API's stage throttling bounds the request rate; there is no connection record.
    let deps = message_handler::lambda::deps(&r, "http-api", None)?;
    let deps = &deps;
    lambda_http::run(service_fn(move |request: Request| async move {
        let (parts, body) = request.into_parts();
        let body = match body {
            Body::Empty => bytes::Bytes::new(),
            Body::Text(t) => bytes::Bytes::from(t),
            Body::Binary(b) => bytes::Bytes::from(b),
            _ => bytes::Bytes::new(),
        };
        let response = http_api::handle(deps, http::Request::from_parts(parts, body)).await;
        let (parts, body) = response.into_parts();
        Ok::<_, Error>(lambda_http::Response::from_parts(parts, Body::Text(body)))
    }))
    .await
}
