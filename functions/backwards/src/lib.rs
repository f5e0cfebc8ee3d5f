//! `backwards`: reverses `data.text` by grapheme clusters, so accents, emoji and flags survive.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput, map_text};
use unicode_segmentation::UnicodeSegmentation;

pub const NAME: &str = "backwards";

pub fn reverse(text: &str) -> String {
    text.graphemes(true).rev().collect()
}

pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    Ok(FunctionOutput::cont(map_text(input.message.data, reverse)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverses_graphemes() {
        assert_eq!(reverse("abc"), "cba");
        assert_eq!(reverse("noe\u{301}l"), "le\u{301}on");
        assert_eq!(reverse("hi 👍🏽🇫🇷"), "🇫🇷👍🏽 ih");
        assert_eq!(reverse(""), "");
    }
}
