//! What each hook function receives.

use serde::Serialize;

use crate::auth::Claims;
use crate::channel::{AppId, ChannelName};

/// The user a hook decides about: the token's `sub` and all of its claims.
#[derive(Debug, Clone, Serialize)]
pub struct HookUser<'a> {
    pub sub: &'a str,
    pub claims: &'a Claims,
}

impl<'a> HookUser<'a> {
    pub fn of(claims: &'a Claims) -> Self {
        Self {
            sub: &claims.sub,
            claims,
        }
    }
}

/// `onConnect`: `{"hook":"connect","app":A,"user":{"sub":S,"claims":{...}},"sourceIp":IP}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ConnectInput<'a> {
    pub hook: &'static str,
    pub app: &'a AppId,
    pub user: HookUser<'a>,
    pub source_ip: &'a str,
}

impl<'a> ConnectInput<'a> {
    pub fn new(claims: &'a Claims, source_ip: &'a str) -> Self {
        Self {
            hook: "connect",
            app: &claims.app,
            user: HookUser::of(claims),
            source_ip,
        }
    }
}

/// `onSubscribe`: `{"hook":"subscribe","app":A,"channel":C,"user":{...},"connectionId":ID,
/// "presence":BOOL}`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SubscribeInput<'a> {
    pub hook: &'static str,
    pub app: &'a AppId,
    pub channel: &'a ChannelName,
    pub user: HookUser<'a>,
    pub connection_id: &'a str,
    pub presence: bool,
}

impl<'a> SubscribeInput<'a> {
    pub fn new(
        claims: &'a Claims,
        channel: &'a ChannelName,
        connection_id: &'a str,
        presence: bool,
    ) -> Self {
        Self {
            hook: "subscribe",
            app: &claims.app,
            channel,
            user: HookUser::of(claims),
            connection_id,
            presence,
        }
    }
}

/// A scheduled function's input: `{"hook":"schedule","app":A,"at":MS}`.
#[derive(Debug, Clone, Serialize)]
pub struct ScheduleInput<'a> {
    pub hook: &'static str,
    pub app: &'a AppId,
    /// When the schedule ran, milliseconds since the Unix epoch.
    pub at: u64,
}

impl<'a> ScheduleInput<'a> {
    pub fn new(app: &'a AppId, at: u64) -> Self {
        Self {
            hook: "schedule",
            app,
            at,
        }
    }
}
