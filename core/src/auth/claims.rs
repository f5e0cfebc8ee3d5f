//! Echo's claims, and what they allow.
//!
//! A token carries the app it belongs to (`app`), the user (`sub`), a [`Role`], an expiry (`exp`,
//! required) and optionally `nbf` and channel [`Permissions`]. Tokens of a trusted OIDC issuer
//! are mapped to the same claims ([`super::oidc`]).

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::{AppId, ChannelName, ChannelPattern};

/// Clock skew tolerated on `exp` and `nbf`, in seconds.
pub const LEEWAY_SECS: u64 = 5;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    #[default]
    User,
    /// May subscribe to `$status` and to any channel of its app regardless of permissions.
    Admin,
}

/// Channel patterns a token may subscribe or publish to. A missing list allows every
/// non-reserved channel; an empty list allows none.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Permissions {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subscribe: Option<Vec<ChannelPattern>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publish: Option<Vec<ChannelPattern>>,
}

/// The claims of an Echo token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub app: AppId,
    pub sub: String,
    #[serde(default)]
    pub role: Role,
    /// Expiry, seconds since the Unix epoch. Required: Echo does not accept tokens that never expire.
    pub exp: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nbf: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iat: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub channels: Option<Permissions>,
}

/// User ids starting with this are Echo's own: [`SYSTEM_SENDER`](crate::message::SYSTEM_SENDER)
/// (`$echo`) is the sender of system events, and no token may speak as it.
pub const RESERVED_SUB_PREFIX: char = '$';

/// Whether `sub` may be a token's user id: 1 to 256 bytes, not starting with
/// [`RESERVED_SUB_PREFIX`]. The error says what is wrong.
pub fn check_sub(sub: &str) -> Result<(), String> {
    if sub.is_empty() || sub.len() > 256 {
        return Err("sub must be 1 to 256 bytes".into());
    }
    if sub.starts_with(RESERVED_SUB_PREFIX) {
        return Err(format!(
            "sub {sub:?} is reserved: user ids starting with {RESERVED_SUB_PREFIX} are Echo's own"
        ));
    }
    Ok(())
}

impl Claims {
    /// Whether the token has expired at `now_secs`, with the same tolerance for clock skew as
    /// at connect.
    pub fn expired_at(&self, now_secs: u64) -> bool {
        self.exp + LEEWAY_SECS <= now_secs
    }

    /// A user token's claims for `sub` in `app`, valid until `exp`, with no channel limits.
    pub fn new(app: AppId, sub: impl Into<String>, exp: u64) -> Self {
        Self {
            app,
            sub: sub.into(),
            role: Role::User,
            exp,
            nbf: None,
            iat: None,
            channels: None,
        }
    }

    pub fn with_role(mut self, role: Role) -> Self {
        self.role = role;
        self
    }

    pub fn issued_at(mut self, iat: u64) -> Self {
        self.iat = Some(iat);
        self
    }

    pub fn is_admin(&self) -> bool {
        self.role == Role::Admin
    }

    /// Whether this token may subscribe to `channel` of its own app.
    pub fn authorize_subscribe(&self, channel: &ChannelName) -> Result<(), Forbidden> {
        if channel.is_reserved() {
            return if self.is_admin() {
                Ok(())
            } else {
                Err(forbidden(format!(
                    "only admin tokens may subscribe to {channel}"
                )))
            };
        }
        self.allowed(
            channel,
            self.channels.as_ref().and_then(|p| p.subscribe.as_ref()),
            "subscribe",
        )
    }

    /// Whether this token may publish to `channel` of its own app. Nobody publishes to reserved
    /// channels.
    pub fn authorize_publish(&self, channel: &ChannelName) -> Result<(), Forbidden> {
        if channel.is_reserved() {
            return Err(forbidden(format!(
                "{channel} is reserved: Echo publishes there, clients do not"
            )));
        }
        self.allowed(
            channel,
            self.channels.as_ref().and_then(|p| p.publish.as_ref()),
            "publish",
        )
    }

    fn allowed(
        &self,
        channel: &ChannelName,
        patterns: Option<&Vec<ChannelPattern>>,
        what: &str,
    ) -> Result<(), Forbidden> {
        match patterns {
            Some(patterns) if !self.is_admin() && !patterns.iter().any(|p| p.matches(channel)) => {
                Err(forbidden(format!(
                    "this token may not {what} to channel {channel}"
                )))
            }
            _ => Ok(()),
        }
    }
}

/// What a token does not allow, and why; a client hears it as a `forbidden` error.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{0}")]
pub struct Forbidden(pub String);

fn forbidden(message: String) -> Forbidden {
    Forbidden(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims::new(AppId::new("chat").unwrap(), "alice", exp)
    }

    #[test]
    fn user_ids() {
        for sub in ["$echo", "$anything", "", &"x".repeat(257)] {
            assert!(check_sub(sub).is_err(), "{sub:?}");
        }
        assert_eq!(check_sub("a$b"), Ok(()), "only a leading $ is reserved");
        assert!(check_sub(crate::message::SYSTEM_SENDER).is_err());
    }

    #[test]
    fn permissions() {
        let mut c = claims(1);
        let room = ChannelName::new("room-1").unwrap();
        let lobby = ChannelName::new("lobby").unwrap();
        let status = ChannelName::status();
        assert!(c.authorize_subscribe(&room).is_ok());
        assert_eq!(
            crate::protocol::ProtocolError::from(c.authorize_subscribe(&status).unwrap_err()).code,
            crate::protocol::ErrorCode::Forbidden
        );
        c.channels = Some(Permissions {
            subscribe: Some(vec![ChannelPattern::new("room-*").unwrap()]),
            publish: Some(vec![]),
        });
        assert!(c.authorize_subscribe(&room).is_ok());
        assert!(c.authorize_subscribe(&lobby).is_err());
        assert!(c.authorize_publish(&room).is_err());
        c.role = Role::Admin;
        assert!(c.authorize_subscribe(&status).is_ok());
        assert!(c.authorize_publish(&status).is_err());
    }
}
