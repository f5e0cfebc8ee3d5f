//! App ids, channel names, channel patterns and the key a channel lives under.
//!
//! Names are deliberately narrow so they are safe in URLs, logs, DynamoDB keys and file names:
//!
//! - an **app id** is 1 to 64 characters of `A-Z a-z 0-9 _ - .`;
//! - a **channel name** is 1 to 128 characters of `A-Z a-z 0-9 _ - . : @ =`, or a reserved name
//!   starting with `$`: [`STATUS_CHANNEL`], and `$presence:` followed by a channel name (where
//!   Echo commits that channel's presence events);
//! - a **pattern** is a channel name whose last character is `*`; `*` alone matches every channel
//!   that is not reserved. `room-*` matches `room-1` and `room-` but `room1` matches only `room1`:
//!   there is no accidental prefix matching.

use std::fmt;

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Longest app id, in bytes.
pub const MAX_APP_LEN: usize = 64;
/// Longest channel name, in bytes.
pub const MAX_CHANNEL_LEN: usize = 128;
/// The reserved channel on which admins receive an app's presence events.
pub const STATUS_CHANNEL: &str = "$status";
/// What a channel's presence channel is named: this, then the channel's name.
pub const PRESENCE_PREFIX: &str = "$presence:";

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum NameError {
    #[error("{what} must not be empty")]
    Empty { what: &'static str },
    #[error("{what} is longer than {max} bytes")]
    TooLong { what: &'static str, max: usize },
    #[error("{what} contains {ch:?}; allowed: letters, digits and {allowed}")]
    BadChar {
        what: &'static str,
        ch: char,
        allowed: &'static str,
    },
    #[error("channel {0:?} is reserved: names starting with $ are Echo's own")]
    Reserved(String),
}

fn check(name: &str, what: &'static str, max: usize, extra: &'static str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty { what });
    }
    if name.len() > max {
        return Err(NameError::TooLong { what, max });
    }
    if let Some(ch) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || extra.contains(*c)))
    {
        return Err(NameError::BadChar {
            what,
            ch,
            allowed: extra_description(extra),
        });
    }
    Ok(())
}

fn extra_description(extra: &'static str) -> &'static str {
    match extra {
        APP_EXTRA => "_ - .",
        _ => "_ - . : @ =",
    }
}

const APP_EXTRA: &str = "_-.";
const CHANNEL_EXTRA: &str = "_-.:@=";

/// The app a token belongs to; channels are scoped to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AppId(String);

impl AppId {
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        check(&name, "app id", MAX_APP_LEN, APP_EXTRA)?;
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for AppId {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<AppId> for String {
    fn from(a: AppId) -> String {
        a.0
    }
}

impl fmt::Display for AppId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel name within an app.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelName(String);

impl ChannelName {
    pub fn new(name: impl Into<String>) -> Result<Self, NameError> {
        let name = name.into();
        if name.starts_with('$') {
            let presence_of = name
                .strip_prefix(PRESENCE_PREFIX)
                .filter(|c| !c.starts_with('$'));
            if name == STATUS_CHANNEL
                || presence_of.is_some_and(|c| check(c, "", MAX_CHANNEL_LEN, CHANNEL_EXTRA).is_ok())
            {
                return Ok(Self(name));
            }
            return Err(NameError::Reserved(name));
        }
        check(&name, "channel name", MAX_CHANNEL_LEN, CHANNEL_EXTRA)?;
        Ok(Self(name))
    }

    /// The `$status` channel.
    pub fn status() -> Self {
        Self(STATUS_CHANNEL.to_owned())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Reserved channels (`$status`, presence channels) are Echo's own: no functions run on
    /// them, users cannot publish.
    pub fn is_reserved(&self) -> bool {
        self.0.starts_with('$')
    }

    /// The channel where this channel's presence events are committed (`$presence:` and the
    /// name); `None` for a reserved channel, which has no presence.
    pub fn presence(&self) -> Option<Self> {
        (!self.is_reserved()).then(|| Self(format!("{PRESENCE_PREFIX}{}", self.0)))
    }

    /// The channel whose presence channel this is.
    pub fn presence_of(&self) -> Option<Self> {
        self.0
            .strip_prefix(PRESENCE_PREFIX)
            .map(|c| Self(c.to_owned()))
    }
}

impl TryFrom<String> for ChannelName {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ChannelName> for String {
    fn from(c: ChannelName) -> String {
        c.0
    }
}

impl fmt::Display for ChannelName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel name or a pattern ending in `*`, as used by associations and token permissions.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ChannelPattern(String);

impl ChannelPattern {
    pub fn new(pattern: impl Into<String>) -> Result<Self, NameError> {
        let pattern = pattern.into();
        match pattern.strip_suffix('*') {
            Some("") => {}
            Some(prefix) => check(
                prefix,
                "channel pattern",
                MAX_CHANNEL_LEN - 1,
                CHANNEL_EXTRA,
            )?,
            None => {
                ChannelName::new(pattern.clone())?;
            }
        }
        Ok(Self(pattern))
    }

    /// The fixed part of the pattern: the whole name for an exact name, the text before `*` otherwise.
    pub fn prefix(&self) -> &str {
        self.0.strip_suffix('*').unwrap_or(&self.0)
    }

    pub fn is_wildcard(&self) -> bool {
        self.0.ends_with('*')
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `channel` is matched. A wildcard never matches a reserved channel: `$status` is
    /// only reachable by naming it.
    pub fn matches(&self, channel: &ChannelName) -> bool {
        match self.0.strip_suffix('*') {
            Some(prefix) => !channel.is_reserved() && channel.as_str().starts_with(prefix),
            None => self.0 == channel.as_str(),
        }
    }
}

impl TryFrom<String> for ChannelPattern {
    type Error = NameError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Self::new(s)
    }
}

impl From<ChannelPattern> for String {
    fn from(p: ChannelPattern) -> String {
        p.0
    }
}

impl fmt::Display for ChannelPattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A channel within an app: what subscriptions, sequences and history are keyed by.
///
/// Two apps never share a key, even for equal channel names: that is what isolates apps.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ChannelKey {
    pub app: AppId,
    pub channel: ChannelName,
}

impl ChannelKey {
    pub fn new(app: AppId, channel: ChannelName) -> Self {
        Self { app, channel }
    }

    /// `app/channel`: unambiguous because neither part may contain `/`.
    pub fn encode(&self) -> String {
        format!("{}/{}", self.app, self.channel)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (app, channel) = s.split_once('/')?;
        Some(Self {
            app: AppId::new(app).ok()?,
            channel: ChannelName::new(channel).ok()?,
        })
    }
}

impl fmt::Display for ChannelKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.app, self.channel)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    #[test]
    fn channel_names_are_checked() {
        assert!(ChannelName::new("room-1:a@b=c.d_e").is_ok());
        assert_eq!(
            ChannelName::new(""),
            Err(NameError::Empty {
                what: "channel name"
            })
        );
        assert!(matches!(
            ChannelName::new("a b"),
            Err(NameError::BadChar { ch: ' ', .. })
        ));
        assert!(matches!(
            ChannelName::new("x".repeat(129)),
            Err(NameError::TooLong { .. })
        ));
        assert!(ChannelName::new("x".repeat(128)).is_ok());
        assert!(matches!(
            ChannelName::new("$secret"),
            Err(NameError::Reserved(_))
        ));
        assert!(ch("$status").is_reserved());
        let presence = ch("room-1").presence().unwrap();
        assert_eq!(presence.as_str(), "$presence:room-1");
        assert!(presence.is_reserved() && presence.presence().is_none());
        assert_eq!(ChannelName::new("$presence:room-1"), Ok(presence.clone()));
        assert_eq!(presence.presence_of(), Some(ch("room-1")));
        assert_eq!(ch("room-1").presence_of(), None);
        for bad in [
            "$presence:",
            "$presence:$status",
            "$presence:a b",
            "$presence:$presence:a",
        ] {
            assert!(ChannelName::new(bad).is_err(), "{bad}");
        }
        assert!(ChannelName::new("a/b").is_err());
        assert!(ChannelName::new("room*").is_err());
    }

    #[test]
    fn patterns_never_match_by_accident() {
        let exact = ChannelPattern::new("room1").unwrap();
        assert!(exact.matches(&ch("room1")));
        assert!(!exact.matches(&ch("room10")));
        let wild = ChannelPattern::new("room-*").unwrap();
        assert!(wild.matches(&ch("room-1")));
        assert!(wild.matches(&ch("room-")));
        assert!(!wild.matches(&ch("room1")));
        let all = ChannelPattern::new("*").unwrap();
        assert!(all.matches(&ch("anything")));
        assert!(!all.matches(&ch("$status")));
        assert!(ChannelPattern::new("a*b").is_err());
        assert!(ChannelPattern::new("**").is_err());
    }

    #[test]
    fn keys_round_trip() {
        let key = ChannelKey::new(AppId::new("chat").unwrap(), ch("$status"));
        assert_eq!(key.encode(), "chat/$status");
        assert_eq!(ChannelKey::decode("chat/$status"), Some(key));
        assert_eq!(ChannelKey::decode("nochannel"), None);
    }
}
