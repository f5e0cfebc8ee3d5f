//! The demo's members-only room. As an `onSubscribe` hook only the users on [`MEMBERS`] may
//! subscribe, and anyone else is told who may. As an `onConnect` hook everyone is let in and a
//! member's arrival is announced in the room. As an `afterPresence` function it keeps the room's
//! register: each join and leave is logged (CloudWatch Logs on AWS).

use echo_core::function::FunctionError;
use serde_json::{Value, json};

/// Who may enter.
pub const MEMBERS: [&str; 3] = ["ada", "grace", "linus"];

/// The room, where arrivals are announced.
pub const ROOM: &str = "members";

/// Answers a subscribe, connect or presence hook.
pub fn decide(input: Value) -> Result<Value, FunctionError> {
    let hook = input["hook"].as_str().unwrap_or_default();
    if hook == "presence" {
        return register(&input);
    }
    let user = input["user"]["sub"]
        .as_str()
        .ok_or_else(|| FunctionError::new("the input has no user.sub"))?;
    match hook {
        "subscribe" if MEMBERS.contains(&user) => Ok(json!({"action": "allow"})),
        "subscribe" => {
            let channel = input["channel"].as_str().unwrap_or("this room");
            Ok(json!({
                "action": "deny",
                "reason": format!("{channel} is for members only ({}); {user} is not one", MEMBERS.join(", ")),
            }))
        }
        "connect" if MEMBERS.contains(&user) => Ok(json!({
            "action": "allow",
            "publish": [{"channel": ROOM, "data": {"text": format!("{user} is here")}}],
        })),
        "connect" => Ok(json!({"action": "allow"})),
        other => Err(FunctionError::new(format!(
            "members decides connects and subscriptions and keeps the register, not {other:?}"
        ))),
    }
}

/// Logs a join or leave; the answer is ignored.
fn register(input: &Value) -> Result<Value, FunctionError> {
    let event = &input["event"];
    let (Some(kind), Some(user), Some(channel)) = (
        event["type"].as_str(),
        event["sub"].as_str(),
        input["channel"].as_str(),
    ) else {
        return Err(FunctionError::new(
            "a presence input has channel, event.type and event.sub",
        ));
    };
    let verb = if kind == "join" { "joined" } else { "left" };
    tracing::info!(
        user,
        channel,
        seq = event["seq"].as_u64(),
        "{user} {verb} {channel}"
    );
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(user: &str) -> Value {
        json!({"hook": "subscribe", "app": "chat-demo", "channel": "members", "user": {"sub": user, "claims": {}}, "connectionId": "c", "presence": false})
    }

    fn connect(user: &str) -> Value {
        json!({"hook": "connect", "app": "chat-demo", "user": {"sub": user, "claims": {}}, "sourceIp": "127.0.0.1"})
    }

    #[test]
    fn members_enter_and_others_are_told_who_may() {
        assert_eq!(
            decide(subscribe("ada")).unwrap(),
            json!({"action": "allow"})
        );
        let denied = decide(subscribe("guest-1")).unwrap();
        assert_eq!(denied["action"], "deny");
        assert_eq!(
            denied["reason"],
            "members is for members only (ada, grace, linus); guest-1 is not one"
        );
        assert!(decide(json!({"hook": "schedule", "at": 1})).is_err());
    }

    #[test]
    fn a_members_arrival_is_announced_and_presence_is_registered() {
        assert_eq!(
            decide(connect("grace")).unwrap(),
            json!({"action": "allow", "publish": [{"channel": "members", "data": {"text": "grace is here"}}]})
        );
        assert_eq!(
            decide(connect("guest")).unwrap(),
            json!({"action": "allow"})
        );
        let join = json!({"hook": "presence", "app": "chat-demo", "channel": "members", "event": {"type": "join", "sub": "ada", "ts": 1, "seq": 1}});
        assert_eq!(decide(join).unwrap(), json!({}));
        assert!(decide(json!({"hook": "presence", "event": {}})).is_err());
    }
}
