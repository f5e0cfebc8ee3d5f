//! Hook functions as `functions new --hook` writes them: for each hook, a sample input and a
//! first decision, in JavaScript, Python and Rust (`echo_core::hook` has the contract).

use clap::ValueEnum;

/// The moments a hook function acts at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Hook {
    /// `onConnect`: allow (maybe with permissions) or deny a connection.
    Connect,
    /// `onSubscribe`: allow or deny a subscription.
    Subscribe,
    /// `schedules`: run every so often, publishing messages.
    Schedule,
    /// `afterPresence`: each join and leave of a channel.
    Presence,
}

impl Hook {
    /// The association key that names it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Connect => "onConnect",
            Self::Subscribe => "onSubscribe",
            Self::Schedule => "schedules",
            Self::Presence => "afterPresence",
        }
    }

    /// An input such as Echo sends, for `functions test`.
    pub fn sample(self) -> &'static str {
        match self {
            Self::Connect => {
                r#"{"hook": "connect", "app": "my-app", "user": {"sub": "mallory", "claims": {"app": "my-app", "sub": "mallory", "exp": 4000000000}}, "sourceIp": "203.0.113.7"}
"#
            }
            Self::Subscribe => {
                r#"{"hook": "subscribe", "app": "my-app", "channel": "room-bob", "user": {"sub": "alice", "claims": {"app": "my-app", "sub": "alice", "exp": 4000000000}}, "connectionId": "c1", "presence": false}
"#
            }
            Self::Schedule => {
                r#"{"hook": "schedule", "app": "my-app", "at": 1795459560000}
"#
            }
            Self::Presence => {
                r#"{"hook": "presence", "app": "my-app", "channel": "room-alice", "event": {"type": "join", "sub": "alice", "ts": 1795459560000, "seq": 1}}
"#
            }
        }
    }

    /// The JavaScript handler's body: what it decides, from `event`.
    pub fn js(self) -> &'static str {
        match self {
            Self::Connect => {
                r#"// onConnect: let everyone in but the blocked (their token's permissions apply), or answer
// {action: 'allow', channels: {subscribe: [...], publish: [...]}} to give the connection its own.
const BLOCKED = ['mallory'];

export async function handler(event) {
  if (BLOCKED.includes(event.user.sub)) {
    return { action: 'deny', reason: `${event.user.sub} may not connect` };
  }
  return { action: 'allow' };
}
"#
            }
            Self::Subscribe => {
                r#"// onSubscribe: each user may enter only their own room, room-<sub>.
export async function handler(event) {
  if (event.channel === `room-${event.user.sub}`) return { action: 'allow' };
  return { action: 'deny', reason: `${event.channel} is not ${event.user.sub}'s room` };
}
"#
            }
            Self::Schedule => {
                r#"// A schedule: each run publishes the time to the `clock` channel (answer {} for nothing).
export async function handler(event) {
  return { publish: [{ channel: 'clock', data: { text: `tick at ${event.at}` } }] };
}
"#
            }
            Self::Presence => {
                r#"// afterPresence: sees each join and leave once committed; its answer is ignored.
export async function handler(event) {
  console.error(`${event.event.sub} ${event.event.type === 'join' ? 'joined' : 'left'} ${event.channel}`);
  return {};
}
"#
            }
        }
    }

    /// The JavaScript unit test of [`js`](Self::js), on [`sample`](Self::sample).
    pub fn js_test(self) -> &'static str {
        match self {
            Self::Connect => "{ action: 'deny', reason: 'mallory may not connect' }",
            Self::Subscribe => "{ action: 'deny', reason: \"room-bob is not alice's room\" }",
            Self::Schedule => {
                "{ publish: [{ channel: 'clock', data: { text: 'tick at 1795459560000' } }] }"
            }
            Self::Presence => "{}",
        }
    }

    /// The Python module: what it decides, from `event`.
    pub fn py(self) -> &'static str {
        match self {
            Self::Connect => {
                r#"# onConnect: let everyone in but the blocked (their token's permissions apply), or answer
# {"action": "allow", "channels": {"subscribe": [...], "publish": [...]}} to give the connection
# its own.
BLOCKED = {"mallory"}


def handler(event, context):
    user = event["user"]["sub"]
    if user in BLOCKED:
        return {"action": "deny", "reason": f"{user} may not connect"}
    return {"action": "allow"}
"#
            }
            Self::Subscribe => {
                r#"# onSubscribe: each user may enter only their own room, room-<sub>.


def handler(event, context):
    user, channel = event["user"]["sub"], event["channel"]
    if channel == f"room-{user}":
        return {"action": "allow"}
    return {"action": "deny", "reason": f"{channel} is not {user}'s room"}
"#
            }
            Self::Schedule => {
                r#"# A schedule: each run publishes the time to the `clock` channel (answer {} for nothing).


def handler(event, context):
    return {"publish": [{"channel": "clock", "data": {"text": f"tick at {event['at']}"}}]}
"#
            }
            Self::Presence => {
                r#"# afterPresence: sees each join and leave once committed; its answer is ignored.


def handler(event, context):
    e = event["event"]
    print(f"{e['sub']} {'joined' if e['type'] == 'join' else 'left'} {event['channel']}")
    return {}
"#
            }
        }
    }

    /// What the Python function answers to [`sample`](Self::sample), for its unit test.
    pub fn py_test(self) -> &'static str {
        match self {
            Self::Connect => r#"{"action": "deny", "reason": "mallory may not connect"}"#,
            Self::Subscribe => r#"{"action": "deny", "reason": "room-bob is not alice's room"}"#,
            Self::Schedule => {
                r#"{"publish": [{"channel": "clock", "data": {"text": "tick at 1795459560000"}}]}"#
            }
            Self::Presence => "{}",
        }
    }

    /// The Rust `decide` function's body, from `input` (a `serde_json::Value`).
    pub fn rust(self) -> &'static str {
        match self {
            Self::Connect => {
                r#"    // onConnect: let everyone in but the blocked (their token's permissions apply), or answer
    // {"action":"allow","channels":{...}} to give the connection its own.
    const BLOCKED: [&str; 1] = ["mallory"];
    let user = input["user"]["sub"].as_str().unwrap_or_default();
    if BLOCKED.contains(&user) {
        return Ok(json!({"action": "deny", "reason": format!("{user} may not connect")}));
    }
    Ok(json!({"action": "allow"}))"#
            }
            Self::Subscribe => {
                r#"    // onSubscribe: each user may enter only their own room, room-<sub>.
    let user = input["user"]["sub"].as_str().unwrap_or_default();
    let channel = input["channel"].as_str().unwrap_or_default();
    if channel == format!("room-{user}") {
        return Ok(json!({"action": "allow"}));
    }
    Ok(json!({"action": "deny", "reason": format!("{channel} is not {user}'s room")}))"#
            }
            Self::Schedule => {
                r#"    // A schedule: each run publishes the time to the `clock` channel (answer {} for nothing).
    let at = input["at"].as_u64().unwrap_or_default();
    Ok(json!({"publish": [{"channel": "clock", "data": {"text": format!("tick at {at}")}}]}))"#
            }
            Self::Presence => {
                r#"    // afterPresence: sees each join and leave once committed; its answer is ignored.
    let event = &input["event"];
    eprintln!("{} {} {}", event["sub"], event["type"], input["channel"]);
    Ok(json!({}))"#
            }
        }
    }

    /// What the Rust function answers to [`sample`](Self::sample), for its unit test.
    pub fn rust_test(self) -> &'static str {
        match self {
            Self::Connect => r#"json!({"action": "deny", "reason": "mallory may not connect"})"#,
            Self::Subscribe => {
                r#"json!({"action": "deny", "reason": "room-bob is not alice's room"})"#
            }
            Self::Schedule => {
                r#"json!({"publish": [{"channel": "clock", "data": {"text": "tick at 1795459560000"}}]})"#
            }
            Self::Presence => "json!({})",
        }
    }
}
