//! Replays the fuzz targets' seeds and every input kept in `fuzz/regressions/` (crashes found by
//! `scripts/fuzz.sh`, once fixed) through the same checks as the targets, on stable Rust.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use echo_core::associations::Associations;
use echo_core::auth::Keyring;
use echo_core::protocol::ClientFrame;

fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz");
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            out.push((e.path(), std::fs::read(e.path()).unwrap()));
        }
    }
    assert!(!out.is_empty(), "no inputs for {target}");
    out
}

#[test]
fn frames() {
    for (path, data) in inputs("frame") {
        let Ok(text) = std::str::from_utf8(&data) else {
            continue;
        };
        match ClientFrame::parse(text) {
            Ok(frame) => assert!(!frame.action().is_empty(), "{}", path.display()),
            Err(e) => {
                let _ = e.to_frame().to_json();
            }
        }
        let _ = ClientFrame::request_id(text);
    }
}

#[test]
fn tokens() {
    let verifier = Keyring::instance(b"fuzz-secret-fuzz-secret-fuzz-secret!").unwrap();
    for (path, data) in inputs("token") {
        if let Ok(token) = std::str::from_utf8(&data) {
            assert!(
                verifier.verify(token, 1_700_000_000).is_err(),
                "{}",
                path.display()
            );
        }
    }
}

#[test]
fn associations() {
    for (path, data) in inputs("associations") {
        if let Ok(text) = std::str::from_utf8(&data) {
            match Associations::parse(text, &|name| name.len() % 2 == 0) {
                Ok(a) => {
                    let _ = a.function_names();
                }
                Err(e) => assert!(!e.to_string().is_empty(), "{}", path.display()),
            }
        }
    }
}
