//! `angry`: upper-cases `data.text` and adds `!!!`.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput, map_text};

pub const NAME: &str = "angry";

pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    Ok(FunctionOutput::cont(map_text(input.message.data, |t| {
        format!("{}!!!", t.to_uppercase())
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::channel::{AppId, ChannelName};
    use echo_core::function::FunctionMessage;
    use serde_json::{Value, json};

    pub fn input(data: Value) -> FunctionInput {
        FunctionInput {
            app: AppId::new("a").unwrap(),
            channel: ChannelName::new("c").unwrap(),
            message: FunctionMessage {
                id: "1".into(),
                data,
                from: "u".into(),
                ts: 0,
                seq: None,
            },
        }
    }

    #[test]
    fn shouts() {
        assert_eq!(
            transform(input(json!({"text": "hello", "name": "al"}))).unwrap(),
            FunctionOutput::cont(json!({"text": "HELLO!!!", "name": "al"}))
        );
        assert_eq!(
            transform(input(json!(7))).unwrap(),
            FunctionOutput::cont(json!(7))
        );
    }
}
