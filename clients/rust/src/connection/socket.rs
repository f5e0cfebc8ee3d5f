//! Opening the WebSocket: the token in the query, a bound on the handshake, TLS for `wss://`.

use std::time::Duration;

use tokio_tungstenite::tungstenite::{self, protocol::WebSocketConfig};

use super::Ws;
use crate::error::Error;
use crate::token::Token;

/// Opens the WebSocket with a token from `token`; returns it with the token's expiry, when the
/// token says.
pub(super) async fn open(
    url: &str,
    token: &Token,
    timeout: Duration,
) -> Result<(Ws, Option<u64>), Error> {
    let token = token.get().await?;
    let url = crate::token::url_with_token(url, &token);
    match tokio::time::timeout(timeout, connect(url)).await {
        Err(_) => Err(Error::Connect(format!("no answer within {timeout:?}"))),
        Ok(Err(tungstenite::Error::Http(response))) if response.status() == 401 => {
            Err(Error::Unauthorized)
        }
        Ok(Err(tungstenite::Error::Http(response))) if response.status() == 403 => {
            // `{"type":"error","code":"forbidden","message":REASON}`
            let reason = response
                .body()
                .as_deref()
                .and_then(|b| serde_json::from_slice::<serde_json::Value>(b).ok())
                .and_then(|v| v["message"].as_str().map(str::to_owned))
                .unwrap_or_else(|| "refused (HTTP 403)".to_owned());
            Err(Error::Denied(reason))
        }
        Ok(Err(e)) => Err(Error::Connect(e.to_string())),
        Ok(Ok(ws)) => Ok((ws, crate::token::expiry(&token))),
    }
}

/// Bytes read from the socket at once. tungstenite zero-fills its read buffer up to this size
/// before every read; its default, 128 KiB, costs more than the read itself when a read brings a
/// few small frames.
const READ_BUFFER: usize = 16 * 1024;

fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default().read_buffer_size(READ_BUFFER)
}

#[cfg(feature = "tls")]
async fn connect(url: String) -> Result<Ws, tungstenite::Error> {
    let connector = if url.starts_with("wss:") {
        Some(tokio_tungstenite::Connector::Rustls(tls_config()?))
    } else {
        None
    };
    let (ws, _) =
        tokio_tungstenite::connect_async_tls_with_config(url, Some(ws_config()), true, connector)
            .await?;
    Ok(ws)
}

#[cfg(not(feature = "tls"))]
async fn connect(url: String) -> Result<Ws, tungstenite::Error> {
    let (ws, _) =
        tokio_tungstenite::connect_async_with_config(url, Some(ws_config()), true).await?;
    Ok(ws)
}

/// TLS with the platform's root certificates and the `ring` provider, chosen explicitly so that
/// other crates' rustls providers in the same program do not make the choice ambiguous.
#[cfg(feature = "tls")]
fn tls_config() -> Result<std::sync::Arc<rustls::ClientConfig>, tungstenite::Error> {
    let mut roots = rustls::RootCertStore::empty();
    let found = rustls_native_certs::load_native_certs();
    let (added, _) = roots.add_parsable_certificates(found.certs);
    if added == 0 {
        return Err(tungstenite::Error::Io(std::io::Error::other(
            "no root certificates found on this system",
        )));
    }
    let config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| tungstenite::Error::Io(std::io::Error::other(e)))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    Ok(std::sync::Arc::new(config))
}
