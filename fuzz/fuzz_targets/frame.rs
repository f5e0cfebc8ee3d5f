//! Client frames: any text a client sends is parsed without panicking, and a parsed frame's
//! error or action is well formed.
#![no_main]

use echo_core::protocol::ClientFrame;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match ClientFrame::parse(text) {
            Ok(frame) => assert!(!frame.action().is_empty()),
            Err(e) => {
                let _ = e.to_frame().to_json();
            }
        }
        let _ = ClientFrame::request_id(text);
    }
});
