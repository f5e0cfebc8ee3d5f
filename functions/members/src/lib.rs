//! The demo's `onSubscribe` hook: a members-only room. Only the users on [`MEMBERS`] may
//! subscribe; anyone else is told who may.

use echo_core::function::FunctionError;
use serde_json::{Value, json};

/// Who may enter.
pub const MEMBERS: [&str; 3] = ["ada", "grace", "linus"];

/// Allows a listed member, denies anyone else with the reason.
pub fn decide(input: Value) -> Result<Value, FunctionError> {
    if input["hook"] != "subscribe" {
        return Err(FunctionError::new(format!(
            "members decides subscriptions, not {}",
            input["hook"]
        )));
    }
    let user = input["user"]["sub"]
        .as_str()
        .ok_or_else(|| FunctionError::new("the input has no user.sub"))?;
    if MEMBERS.contains(&user) {
        return Ok(json!({"action": "allow"}));
    }
    let channel = input["channel"].as_str().unwrap_or("this room");
    Ok(json!({
        "action": "deny",
        "reason": format!("{channel} is for members only ({}); {user} is not one", MEMBERS.join(", ")),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subscribe(user: &str) -> Value {
        json!({"hook": "subscribe", "app": "chat-demo", "channel": "members", "user": {"sub": user, "claims": {}}, "connectionId": "c", "presence": false})
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
        assert!(decide(json!({"hook": "connect"})).is_err());
    }
}
