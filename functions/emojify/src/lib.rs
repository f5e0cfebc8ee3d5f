//! `emojify`: wraps `data.text` in angry emoji.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput, map_text};

pub const NAME: &str = "emojify";

pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    Ok(FunctionOutput::cont(map_text(input.message.data, |t| {
        format!("😡 {t} 😡")
    })))
}

#[cfg(test)]
mod tests {
    use super::*;
    use echo_core::channel::{AppId, ChannelName};
    use echo_core::function::FunctionMessage;
    use serde_json::json;

    #[test]
    fn wraps() {
        let input = FunctionInput {
            app: AppId::new("a").unwrap(),
            channel: ChannelName::new("c").unwrap(),
            message: FunctionMessage {
                id: "1".into(),
                data: json!({"text": "HI"}),
                from: "u".into(),
                ts: 0,
                seq: None,
            },
        };
        assert_eq!(
            transform(input).unwrap(),
            FunctionOutput::cont(json!({"text": "😡 HI 😡"}))
        );
    }
}
