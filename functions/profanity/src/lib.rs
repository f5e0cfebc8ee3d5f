//! `profanity`: masks listed words in `data.text`, keeping their first letter (`darn` becomes
//! `d***`). Matching ignores case and only masks whole words, so `class` is left alone.

use echo_core::function::{FunctionError, FunctionInput, FunctionOutput, map_text};

pub const NAME: &str = "profanity";

/// The words masked. A real deployment would load its own list.
pub const WORDS: &[&str] = &[
    "darn", "heck", "crap", "damn", "shoot", "frak", "bloody", "ass",
];

pub fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if WORDS.iter().any(|w| w.eq_ignore_ascii_case(word)) {
            let mut chars = word.chars();
            if let Some(first) = chars.next() {
                out.push(first);
                out.extend(chars.map(|_| '*'));
            }
        } else {
            out.push_str(word);
        }
        word.clear();
    };
    for c in text.chars() {
        if c.is_alphanumeric() {
            word.push(c);
        } else {
            flush(&mut word, &mut out);
            out.push(c);
        }
    }
    flush(&mut word, &mut out);
    out
}

pub fn transform(input: FunctionInput) -> Result<FunctionOutput, FunctionError> {
    Ok(FunctionOutput::cont(map_text(input.message.data, mask)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_whole_words_only() {
        assert_eq!(mask("Darn it, what the heck!"), "D*** it, what the h***!");
        assert_eq!(mask("class assignment"), "class assignment");
        assert_eq!(mask("ass"), "a**");
        assert_eq!(mask(""), "");
    }
}
