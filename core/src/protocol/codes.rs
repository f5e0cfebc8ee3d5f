//! The protocol's codes as one JSON document, the fixture both clients' tests read.

use serde_json::Value;

use super::{
    CloseCode, ErrorCode, MAX_CLOSE_REASON_BYTES, RECONNECT_RANGE, TERMINAL_RANGE, reconnects_after,
};

/// The protocol's codes as JSON: `tests/fixtures/protocol-codes.json`, which a core test keeps
/// equal to this and both clients' tests read.
pub fn codes_fixture() -> Value {
    serde_json::json!({
        "errorCodes": ErrorCode::ALL.map(ErrorCode::as_str),
        "closeCodes": CloseCode::ALL.map(|c| serde_json::json!({
            "name": c.name(),
            "code": c.code(),
            "reconnect": reconnects_after(c.code()),
        })),
        "closeRanges": {
            "reconnect": [RECONNECT_RANGE.start(), RECONNECT_RANGE.end()],
            "terminal": [TERMINAL_RANGE.start(), TERMINAL_RANGE.end()],
        },
        "maxCloseReasonBytes": MAX_CLOSE_REASON_BYTES,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Run with `ECHO_WRITE_FIXTURES=1` to write the fixture after changing a code.
    #[test]
    fn the_codes_fixture_is_written_from_the_enums() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../tests/fixtures/protocol-codes.json"
        );
        let want = format!("{:#}\n", codes_fixture());
        if std::env::var_os("ECHO_WRITE_FIXTURES").is_some() {
            std::fs::write(path, &want).unwrap();
        }
        let have = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            have, want,
            "{path} differs from core's codes: run ECHO_WRITE_FIXTURES=1 cargo test -p echo-core codes_fixture"
        );
    }
}
