//! API Gateway WebSocket events, built the way API Gateway builds them, so the handlers get
//! exactly what they get on AWS. `tests/fixtures/` holds real events these are checked against.

use aws_lambda_events::apigw::{
    ApiGatewayWebsocketProxyRequest, ApiGatewayWebsocketProxyRequestContext,
};
use axum::http::{HeaderMap, HeaderValue};
use echo_core::ids::{ConnectionId, random_hex};
use echo_core::protocol::ACTIONS;
use serde::Deserialize;

/// What stays the same across a connection's events.
#[derive(Debug, Clone)]
pub struct ConnectionContext {
    pub connection_id: ConnectionId,
    pub connected_at: u64,
    pub source_ip: String,
    pub user_agent: String,
    pub domain_name: String,
    pub stage: String,
}

/// The stage name the local edge reports.
pub const STAGE: &str = "local";
/// The API id the local edge reports.
pub const API_ID: &str = "echolocal";

/// API Gateway's `requestTime`: `09/Feb/2024:18:11:43 +0000`.
pub fn request_time(ms: u64) -> String {
    let iso = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms),
    )
    .to_string(); // 2024-02-09T18:11:43Z
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = iso
        .get(5..7)
        .and_then(|m| m.parse::<usize>().ok())
        .and_then(|m| MONTHS.get(m.wrapping_sub(1)))
        .unwrap_or(&"Jan");
    format!(
        "{}/{}/{}:{} +0000",
        iso.get(8..10).unwrap_or("01"),
        month,
        iso.get(0..4).unwrap_or("1970"),
        iso.get(11..19).unwrap_or("00:00:00")
    )
}

fn base(
    ctx: &ConnectionContext,
    route_key: &str,
    event_type: &str,
    now_ms: u64,
) -> ApiGatewayWebsocketProxyRequest {
    let mut rc = ApiGatewayWebsocketProxyRequestContext::default();
    let request_id = random_hex(8);
    rc.route_key = Some(route_key.to_owned());
    rc.event_type = Some(event_type.to_owned());
    rc.extended_request_id = Some(request_id.clone());
    rc.request_id = Some(request_id);
    rc.request_time = Some(request_time(now_ms));
    rc.message_direction = Some("IN".to_owned());
    rc.stage = Some(ctx.stage.clone());
    rc.connected_at = ctx.connected_at as i64;
    rc.request_time_epoch = now_ms as i64;
    rc.identity.source_ip = Some(ctx.source_ip.clone());
    rc.identity.user_agent = Some(ctx.user_agent.clone());
    rc.domain_name = Some(ctx.domain_name.clone());
    rc.connection_id = Some(ctx.connection_id.to_string());
    rc.apiid = Some(API_ID.to_owned());
    let mut event = ApiGatewayWebsocketProxyRequest::default();
    event.request_context = rc;
    event
}

/// The `$connect` event for an upgrade request.
pub fn connect(
    ctx: &ConnectionContext,
    headers: &HeaderMap,
    query: Option<&str>,
    now_ms: u64,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base(ctx, "$connect", "CONNECT", now_ms);
    let mut headers = headers.clone();
    if let Ok(v) = HeaderValue::from_str(&ctx.source_ip) {
        headers.insert("x-forwarded-for", v);
    }
    event.multi_value_headers = headers.clone();
    event.headers = headers;
    if let Some(q) = query
        && let Ok(map) = q.parse()
    {
        event.multi_value_query_string_parameters = q.parse().unwrap_or_default();
        event.query_string_parameters = map;
    }
    event
}

/// A `MESSAGE` event for a client frame. The route key is the frame's `action` when that names
/// a route, `$default` otherwise, as with `$request.body.action`.
pub fn message(
    ctx: &ConnectionContext,
    body: String,
    is_base64: bool,
    now_ms: u64,
) -> ApiGatewayWebsocketProxyRequest {
    let route = if is_base64 {
        "$default".to_owned()
    } else {
        route_key(&body)
    };
    let mut event = base(ctx, &route, "MESSAGE", now_ms);
    event.request_context.message_id = Some(random_hex(8));
    event.body = Some(body);
    event.is_base64_encoded = is_base64;
    event
}

/// The `$disconnect` event.
pub fn disconnect(
    ctx: &ConnectionContext,
    status_code: u16,
    reason: &str,
    now_ms: u64,
) -> ApiGatewayWebsocketProxyRequest {
    let mut event = base(ctx, "$disconnect", "DISCONNECT", now_ms);
    event.request_context.disconnect_status_code = Some(i64::from(status_code));
    event.request_context.disconnect_reason = Some(reason.to_owned());
    event
}

/// API Gateway's route selection on `$request.body.action`.
pub fn route_key(body: &str) -> String {
    #[derive(Deserialize)]
    struct Route<'a> {
        #[serde(borrow)]
        action: Option<std::borrow::Cow<'a, str>>,
    }
    match serde_json::from_str::<Route>(body) {
        Ok(Route { action: Some(a) }) if ACTIONS.contains(&a.as_ref()) => a.into_owned(),
        _ => "$default".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
    use std::collections::BTreeSet;

    fn fixture(name: &str) -> Value {
        let path = format!("{}/../tests/fixtures/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    }

    fn ctx() -> ConnectionContext {
        ConnectionContext {
            connection_id: ConnectionId::from("TdQ7xdRsDoECFmw="),
            connected_at: 1_707_502_303_419,
            source_ip: "127.0.0.1".into(),
            user_agent: "test".into(),
            domain_name: "127.0.0.1:8080".into(),
            stage: STAGE.into(),
        }
    }

    fn keys(v: &Value) -> BTreeSet<String> {
        v.as_object()
            .unwrap()
            .iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, _)| k.clone())
            .collect()
    }

    /// Every field the real event has, the edge's event has too, with the same JSON type.
    fn assert_shaped_like(ours: &ApiGatewayWebsocketProxyRequest, fixture_name: &str) {
        let real = fixture(fixture_name);
        let ours = serde_json::to_value(ours).unwrap();
        for (a, b, what) in [
            (&real, &ours, "event"),
            (
                &real["requestContext"],
                &ours["requestContext"],
                "requestContext",
            ),
            (
                &real["requestContext"]["identity"],
                &ours["requestContext"]["identity"],
                "identity",
            ),
        ] {
            let missing: Vec<_> = keys(a).difference(&keys(b)).cloned().collect();
            assert!(
                missing.is_empty(),
                "{fixture_name}: {what} lacks {missing:?}"
            );
            for k in keys(a) {
                let same_type = std::mem::discriminant(&a[&k]) == std::mem::discriminant(&b[&k]);
                assert!(
                    same_type,
                    "{fixture_name}: {what}.{k} is {} here, {} in the real event",
                    b[&k], a[&k]
                );
            }
        }
        assert_eq!(
            ours["requestContext"]["routeKey"],
            real["requestContext"]["routeKey"]
        );
        assert_eq!(
            ours["requestContext"]["eventType"],
            real["requestContext"]["eventType"]
        );
    }

    #[test]
    fn events_match_real_api_gateway_events() {
        let mut headers = HeaderMap::new();
        headers.insert("host", HeaderValue::from_static("127.0.0.1:8080"));
        headers.insert("user-agent", HeaderValue::from_static("test"));
        let c = connect(&ctx(), &headers, Some("token=abc"), 1_707_502_303_420);
        assert_shaped_like(&c, "apigw-websocket-connect.json");
        assert_eq!(c.query_string_parameters.first("token"), Some("abc"));
        let m = message(
            &ctx(),
            r#"{"action":"publish","channel":"angry","data":{}}"#.into(),
            false,
            1,
        );
        assert_shaped_like(&m, "apigw-websocket-message.json");
        let d = disconnect(&ctx(), 1005, "Client-side close frame status not set", 2);
        assert_shaped_like(&d, "apigw-websocket-disconnect.json");
        assert_eq!(
            request_time(1_707_502_303_420),
            "09/Feb/2024:18:11:43 +0000"
        );
    }

    #[test]
    fn routes_on_action() {
        assert_eq!(
            route_key(r#"{"action":"publish","data":[1,{"a":2}]}"#),
            "publish"
        );
        assert_eq!(route_key(r#"{"action":"jump"}"#), "$default");
        assert_eq!(route_key("not json"), "$default");
        assert_eq!(route_key(r#"{"data":1}"#), "$default");
    }
}
