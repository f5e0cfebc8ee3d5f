//! `robot`: says `data.text` the way a robot would: upper case, one word at a time, framed by
//! beeps.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput, map_text};

pub const NAME: &str = "robot";

pub fn robotize(text: &str) -> String {
    let words: Vec<String> = text
        .split_whitespace()
        .map(|w| {
            w.chars()
                .filter(|c| c.is_alphanumeric() || *c == '\'')
                .collect::<String>()
                .to_uppercase()
        })
        .filter(|w| !w.is_empty())
        .collect();
    if words.is_empty() {
        return "🤖 BEEP BOOP. 🤖".to_owned();
    }
    format!("🤖 BEEP BOOP. {}. END OF LINE. 🤖", words.join(" · "))
}

pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    Ok(FunctionOutput::cont(map_text(input.message.data, robotize)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn speaks_robot() {
        assert_eq!(
            robotize("Hello, world!"),
            "🤖 BEEP BOOP. HELLO · WORLD. END OF LINE. 🤖"
        );
        assert_eq!(robotize("  ?! "), "🤖 BEEP BOOP. 🤖");
    }
}
