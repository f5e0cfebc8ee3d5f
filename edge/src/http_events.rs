//! API Gateway HTTP API events (payload format 2.0), built the way API Gateway builds them for
//! the HTTP API's `ANY /v1/{proxy+}` route, so that in faithful mode the `http-api` Lambda gets
//! exactly what it gets on AWS. `tests/fixtures/apigw-http-v2-publish.json` holds the event
//! these are checked against.

use aws_lambda_events::apigw::{
    ApiGatewayV2httpRequest, ApiGatewayV2httpRequestContext,
    ApiGatewayV2httpRequestContextHttpDescription,
};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method};
use echo_core::ids::random_hex;

use crate::events::{API_ID, request_time};

/// The route key of the HTTP API's one route, as `template.yaml` declares it.
pub const ROUTE_KEY: &str = "ANY /v1/{proxy+}";
/// The HTTP API's stage, as SAM creates it.
pub const STAGE: &str = "$default";

/// The event for a request to `/v1/...` from `source_ip`.
pub fn request(
    parts: &Parts,
    body: &[u8],
    source_ip: &str,
    now_ms: u64,
) -> ApiGatewayV2httpRequest {
    let path = parts.uri.path().to_owned();
    let query = parts.uri.query().unwrap_or_default().to_owned();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut http = ApiGatewayV2httpRequestContextHttpDescription::default();
    http.method = parts.method.clone();
    http.path = Some(path.clone());
    http.protocol = Some("HTTP/1.1".to_owned());
    http.source_ip = Some(source_ip.to_owned());
    http.user_agent = header("user-agent");
    let mut rc = ApiGatewayV2httpRequestContext::default();
    let domain = header("host").unwrap_or_default();
    rc.route_key = Some(ROUTE_KEY.to_owned());
    rc.account_id = Some("000000000000".to_owned());
    rc.stage = Some(STAGE.to_owned());
    rc.request_id = Some(random_hex(8));
    rc.apiid = Some(API_ID.to_owned());
    rc.domain_prefix = domain.split('.').next().map(str::to_owned);
    rc.domain_name = Some(domain);
    rc.time = Some(request_time(now_ms));
    rc.time_epoch = now_ms as i64;
    rc.http = http;
    let mut event = ApiGatewayV2httpRequest::default();
    event.version = Some("2.0".to_owned());
    event.route_key = Some(ROUTE_KEY.to_owned());
    event.raw_path = Some(path.clone());
    event.raw_query_string = Some(query.clone());
    let mut headers = parts.headers.clone();
    if let Ok(v) = HeaderValue::from_str(source_ip) {
        headers.insert("x-forwarded-for", v);
    }
    event.headers = headers;
    event.query_string_parameters = query.parse().unwrap_or_default();
    if let Some(proxy) = path.strip_prefix("/v1/") {
        event
            .path_parameters
            .insert("proxy".to_owned(), proxy.to_owned());
    }
    event.request_context = rc;
    // A GET has no body; API Gateway passes other bodies as text when they are UTF-8.
    if parts.method != Method::GET || !body.is_empty() {
        match std::str::from_utf8(body) {
            Ok(text) => event.body = Some(text.to_owned()),
            Err(_) => {
                use base64::Engine as _;
                event.body = Some(base64::engine::general_purpose::STANDARD.encode(body));
                event.is_base64_encoded = true;
            }
        }
    }
    event
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use serde_json::Value;

    use super::*;

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    }

    #[test]
    fn events_match_a_real_http_api_event() {
        let path = format!(
            "{}/../tests/fixtures/apigw-http-v2-publish.json",
            env!("CARGO_MANIFEST_DIR")
        );
        let real: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        let body = r#"{"data":{"text":"shipped"},"id":"order-1"}"#;
        let request = axum::http::Request::post("/v1/apps/chat-demo/channels/news/messages")
            .header("host", "127.0.0.1:8080")
            .header("user-agent", "curl/8.5.0")
            .header("authorization", "Bearer ${TOKEN}")
            .body(())
            .unwrap();
        let (parts, ()) = request.into_parts();
        let ours = serde_json::to_value(request_event(&parts, body)).unwrap();
        for (a, b, what) in [
            (&real, &ours, "event"),
            (
                &real["requestContext"],
                &ours["requestContext"],
                "requestContext",
            ),
            (
                &real["requestContext"]["http"],
                &ours["requestContext"]["http"],
                "http",
            ),
        ] {
            let missing: Vec<_> = keys(a).difference(&keys(b)).cloned().collect();
            assert!(missing.is_empty(), "{what} lacks {missing:?}");
            for k in keys(a) {
                assert_eq!(
                    std::mem::discriminant(&a[&k]),
                    std::mem::discriminant(&b[&k]),
                    "{what}.{k} is {} here, {} in the real event",
                    b[&k],
                    a[&k]
                );
            }
        }
        for pointer in [
            "/version",
            "/routeKey",
            "/rawPath",
            "/rawQueryString",
            "/body",
            "/isBase64Encoded",
            "/pathParameters",
            "/headers/authorization",
            "/requestContext/routeKey",
            "/requestContext/stage",
            "/requestContext/http/method",
            "/requestContext/http/path",
            "/requestContext/http/protocol",
        ] {
            assert_eq!(ours.pointer(pointer), real.pointer(pointer), "{pointer}");
        }
    }

    fn request_event(parts: &Parts, body: &str) -> ApiGatewayV2httpRequest {
        request(parts, body.as_bytes(), "203.0.113.7", 1_796_418_000_000)
    }
}
