//! Associations documents: any text is parsed or refused with an error that names a place,
//! without panicking.
#![no_main]

use echo_core::associations::Associations;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        match Associations::parse(text, &|name| name.len() % 2 == 0) {
            Ok(a) => {
                let _ = a.function_names();
            }
            Err(e) => assert!(!e.to_string().is_empty()),
        }
    }
});
