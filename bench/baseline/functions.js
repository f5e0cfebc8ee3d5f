// The demo middleware functions, in-process. Each takes the function input
// `{app, channel, message: {id, data, from, ts}}` and returns
// `{action: "continue", data}` or `{action: "drop", reason}`; a thrown error is a failure.
// Their output is identical to Echo's functions (`functions/*/src/lib.rs`).

const WHITE_SPACE = /\p{White_Space}+/u;
const NOT_ROBOT_CHAR = /[^\p{Alphabetic}\p{N}']/gu;
const ALNUM_RUN = /[\p{Alphabetic}\p{N}]+/gu;
const ASCII = /^[\x00-\x7f]*$/;

// Applies `f` to `data.text` when `data` is an object with a string `text`, leaving everything
// else as it is (`map_text` in `core/src/function.rs`).
export function mapText(data, f) {
  if (data !== null && typeof data === "object" && !Array.isArray(data) && typeof data.text === "string") {
    data.text = f(data.text);
  }
  return data;
}

function cont(data) {
  return { action: "continue", data };
}

// `angry`: upper-cases `data.text` and adds `!!!`.
export function shout(text) {
  return `${text.toUpperCase()}!!!`;
}

// `emojify`: wraps `data.text` in angry emoji.
export function emojify(text) {
  return `😡 ${text} 😡`;
}

const graphemes = new Intl.Segmenter(undefined, { granularity: "grapheme" });

// `backwards`: reverses by grapheme clusters, so accents, emoji and flags survive.
export function reverse(text) {
  const parts = [];
  for (const { segment } of graphemes.segment(text)) parts.push(segment);
  return parts.reverse().join("");
}

// `robot`: upper case, one word at a time, framed by beeps.
export function robotize(text) {
  const words = [];
  for (const w of text.split(WHITE_SPACE)) {
    if (w === "") continue;
    const kept = w.replace(NOT_ROBOT_CHAR, "").toUpperCase();
    if (kept !== "") words.push(kept);
  }
  if (words.length === 0) return "🤖 BEEP BOOP. 🤖";
  return `🤖 BEEP BOOP. ${words.join(" · ")}. END OF LINE. 🤖`;
}

// The words `profanity` masks.
export const WORDS = new Set(["darn", "heck", "crap", "damn", "shoot", "frak", "bloody", "ass"]);

// `profanity`: masks listed words (ASCII case-insensitive, whole words only), keeping their first
// letter.
export function mask(text) {
  return text.replace(ALNUM_RUN, (word) => {
    if (!ASCII.test(word) || !WORDS.has(word.toLowerCase())) return word;
    return word[0] + "*".repeat(word.length - 1);
  });
}

// The demo functions by name, as Echo's local edge registers them.
export function demoFunctions() {
  return new Map([
    ["angry", (input) => cont(mapText(input.message.data, shout))],
    ["emojify", (input) => cont(mapText(input.message.data, emojify))],
    ["backwards", (input) => cont(mapText(input.message.data, reverse))],
    ["robot", (input) => cont(mapText(input.message.data, robotize))],
    ["profanity", (input) => cont(mapText(input.message.data, mask))],
  ]);
}
