//! Tokens: any string given as a token is refused or accepted without panicking; a forged one
//! (this target never has the secret) is never accepted.
#![no_main]

use echo_core::auth::Keyring;
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-secret-fuzz-secret-fuzz-secret!";

fuzz_target!(|data: &[u8]| {
    if let Ok(token) = std::str::from_utf8(data) {
        let verifier = Keyring::instance(SECRET).unwrap();
        assert!(verifier.verify(token, 1_700_000_000).is_err(), "accepted a token it never issued");
    }
});
