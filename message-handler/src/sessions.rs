//! Ending a user's sessions (the HTTP API's `DELETE /v1/apps/{app}/users/{sub}/connections`):
//! each of the user's connections is told why (`session_ended`) and closed with
//! [`CloseCode::SessionEnded`], after which the clients do not reconnect. The `$disconnect`
//! that follows each close removes its record and ends its presence, as any close does.

use echo_core::channel::AppId;
use echo_core::gateway::{Frame, GatewayError};
use echo_core::protocol::{CloseCode, ErrorCode, ErrorFrame, ProtocolError, ServerFrame};

use crate::deps::Deps;

/// The most connections one request ends: more than any user holds, fewer than would let one
/// request run past API Gateway's 29 s.
pub const MAX_ENDED: usize = 1000;

const REASON: &str = "the app ended this user's sessions";

/// Ends every live connection of `sub` in `app`; how many were ended.
pub async fn end_user_sessions(
    deps: &Deps,
    app: &AppId,
    sub: &str,
) -> Result<usize, ProtocolError> {
    let ids = deps
        .connections
        .user_connections(app, sub, MAX_ENDED)
        .await
        .map_err(|e| {
            tracing::error!(app = %app, error = %e, "could not list the user's connections");
            ProtocolError::new(ErrorCode::Internal, "could not list the user's connections")
        })?;
    let frame = Frame::text(
        ServerFrame::Error(ErrorFrame {
            code: ErrorCode::SessionEnded,
            message: REASON.to_owned(),
            id: None,
            channel: None,
        })
        .to_json(),
    );
    let mut ended = 0;
    for id in &ids {
        // Told first: on AWS the close itself carries no code a client can read.
        match deps.gateway.post(id, &frame).await {
            Ok(()) | Err(GatewayError::Gone) => {}
            Err(e) => {
                tracing::info!(connection_id = %id, error = %e, "could not tell the connection its session ended")
            }
        }
        match deps.gateway.end(id, CloseCode::SessionEnded, REASON).await {
            Ok(()) => ended += 1,
            Err(GatewayError::Gone) => {}
            Err(e) => {
                tracing::error!(connection_id = %id, error = %e, "could not end the connection");
                return Err(ProtocolError::new(
                    ErrorCode::Internal,
                    format!("ended {ended} of the user's connections, then could not close one"),
                ));
            }
        }
    }
    tracing::info!(app = %app, ended, "ended a user's sessions");
    Ok(ended)
}
