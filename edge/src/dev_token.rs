//! `/dev/token`: tokens for any app and user, served in dev mode only, and only to requests that
//! cannot come from a web page elsewhere:
//!
//! - The `Host` must be a loopback name or address (`localhost`, `127.0.0.1`, `[::1]`): a page on
//!   another site that resolves its own name to this machine (DNS rebinding) sends its own name
//!   and is refused.
//! - When the edge listens beyond loopback, only loopback peers get tokens, unless the edge is
//!   started with `dev_tokens_for_network` (`--dev-tokens-for-network`); then a peer on the
//!   network may ask too, with the edge's address as an IP literal in `Host` (never a name).

use std::sync::Arc;

use std::net::IpAddr;

use axum::extract::{ConnectInfo, Query, State as AxState};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use echo_core::auth::{Claims, Role, TokenIssuer};
use echo_core::channel::AppId;
use serde::Deserialize;
use serde_json::json;

use crate::client_socket::Peer;
use crate::state::State;

/// `GET /dev/token?app=&sub=&role=&ttl=`; 404 unless the edge runs in dev mode.
pub fn routes() -> Router<Arc<State>> {
    Router::new().route("/dev/token", get(dev_token))
}

/// Whether a request with `host` from `peer` may be given dev tokens; why not, if not.
fn may_have_tokens(host: Option<&str>, peer: IpAddr, for_network: bool) -> Result<(), String> {
    let host = host.unwrap_or_default();
    let name = host_name(host);
    let loopback_name = name.eq_ignore_ascii_case("localhost")
        || name.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if peer.is_loopback() && loopback_name {
        return Ok(());
    }
    if for_network && name.parse::<IpAddr>().is_ok() {
        return Ok(());
    }
    if !peer.is_loopback() {
        return Err(
            "dev tokens are for this machine only: start the edge with --dev-tokens-for-network to hand them to the network"
                .into(),
        );
    }
    Err(format!(
        "dev tokens are served for Host localhost, 127.0.0.1 or [::1] only, not {host:?}"
    ))
}

/// The name or address in a `Host` header, without the port (and an IPv6 address without its
/// brackets).
fn host_name(host: &str) -> &str {
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or_default();
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[derive(Deserialize)]
struct DevTokenQuery {
    app: Option<String>,
    sub: Option<String>,
    role: Option<Role>,
    /// Seconds.
    ttl: Option<u64>,
}

/// Longest lifetime of a dev token: a day.
const MAX_DEV_TTL: u64 = 24 * 60 * 60;

async fn dev_token(
    AxState(state): AxState<Arc<State>>,
    ConnectInfo(peer): ConnectInfo<Peer>,
    headers: HeaderMap,
    Query(q): Query<DevTokenQuery>,
) -> Response {
    if !state.config.dev_mode {
        return (StatusCode::NOT_FOUND, "not found").into_response();
    }
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    if let Err(why) = may_have_tokens(host, peer.addr.ip(), state.config.dev_tokens_for_network) {
        return (StatusCode::FORBIDDEN, Json(json!({"error": why}))).into_response();
    }
    let app = match AppId::new(q.app.unwrap_or_else(|| "chat-demo".into())) {
        Ok(a) => a,
        Err(e) => {
            return (
                StatusCode::BAD_REQUEST,
                Json(json!({"error": e.to_string()})),
            )
                .into_response();
        }
    };
    let sub = q
        .sub
        .unwrap_or_else(|| format!("guest-{}", echo_core::ids::random_hex(2)));
    if let Err(e) = echo_core::auth::check_sub(&sub) {
        return (StatusCode::BAD_REQUEST, Json(json!({"error": e}))).into_response();
    }
    let ttl = q.ttl.unwrap_or(3600).clamp(1, MAX_DEV_TTL);
    let now = state.clock.now_secs();
    let claims = Claims::new(app.clone(), sub.clone(), now + ttl)
        .with_role(q.role.unwrap_or_default())
        .issued_at(now);
    let issuer = match signer(&state, &app) {
        Ok(issuer) => issuer,
        Err(why) => return (StatusCode::CONFLICT, Json(json!({"error": why}))).into_response(),
    };
    match issuer.issue(&claims) {
        Ok(token) => {
            let host = headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .unwrap_or_else(|| state.config.listen.to_string());
            let url = format!("ws://{host}/?token={token}");
            Json(
                json!({"token": token, "url": url, "app": app, "sub": sub, "expiresAt": now + ttl}),
            )
            .into_response()
        }
        Err(e) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({"error": e.to_string()})),
        )
            .into_response(),
    }
}

fn signer(state: &State, app: &AppId) -> Result<TokenIssuer, String> {
    let path = state.config.data_dir.join(crate::key_file::KEYS_FILE);
    let set = crate::key_file::read(&path).map_err(|e| e.to_string())?;
    crate::key_file::signer(&set, app, state.issuer.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn local() -> IpAddr {
        "127.0.0.1".parse().unwrap()
    }

    fn remote() -> IpAddr {
        "192.168.1.20".parse().unwrap()
    }

    #[test]
    fn only_loopback_hosts_and_peers_unless_asked_for_the_network() {
        for host in [
            "localhost:8080",
            "127.0.0.1:8080",
            "[::1]:8080",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(
                may_have_tokens(Some(host), local(), false).is_ok(),
                "{host}"
            );
        }
        // DNS rebinding: a page elsewhere resolving its name to this machine.
        for host in [
            "evil.example:8080",
            "localhost.evil.example",
            "",
            "192.168.1.5:8080",
        ] {
            assert!(
                may_have_tokens(Some(host), local(), false).is_err(),
                "{host}"
            );
        }
        assert!(may_have_tokens(None, local(), false).is_err());
        // Bound beyond loopback: the network's peers only when asked for, by IP literal only.
        assert!(may_have_tokens(Some("192.168.1.5:8080"), remote(), false).is_err());
        assert!(may_have_tokens(Some("192.168.1.5:8080"), remote(), true).is_ok());
        assert!(may_have_tokens(Some("[fe80::1]:8080"), remote(), true).is_ok());
        assert!(may_have_tokens(Some("devbox.example:8080"), remote(), true).is_err());
    }
}
