//! The demo's scheduled function: each time it runs, it publishes the time to the `clock`
//! channel (`"schedules":[{"function":"ticker","every":"1m"}]`).

use echo_core::function::FunctionError;
use serde_json::{Value, json};

/// Where it publishes.
pub const CHANNEL: &str = "clock";

/// Answers a schedule's run with one message for [`CHANNEL`].
pub fn tick(input: Value) -> Result<Value, FunctionError> {
    if input["hook"] != "schedule" {
        return Err(FunctionError::new(format!(
            "ticker runs on a schedule, not on {}",
            input["hook"]
        )));
    }
    let at = input["at"]
        .as_u64()
        .ok_or_else(|| FunctionError::new("the input has no at"))?;
    Ok(
        json!({"publish": [{"channel": CHANNEL, "data": {"text": format!("tick at {at}"), "at": at}}]}),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publishes_the_time_it_ran() {
        let out = tick(json!({"hook": "schedule", "app": "chat-demo", "at": 60_000})).unwrap();
        assert_eq!(
            out,
            json!({"publish": [{"channel": "clock", "data": {"text": "tick at 60000", "at": 60_000}}]})
        );
        assert!(tick(json!({"hook": "subscribe"})).is_err());
    }
}
