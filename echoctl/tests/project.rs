//! echoctl's project commands as users run them: help, init, functions, associations, jwt,
//! config layering, and the AWS commands on a machine without AWS.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Child;

use echo_core::auth::Keyring;
use echo_core::clock::{Clock, SystemClock};

mod common;

use common::{echoctl, failed, ok, workspace};

#[test]
fn every_command_has_help() {
    let commands: &[&[&str]] = &[
        &[],
        &["dev"],
        &["serve"],
        &["jwt"],
        &["keys"],
        &["keys", "create"],
        &["keys", "trust"],
        &["publish"],
        &["init"],
        &["functions"],
        &["functions", "new"],
        &["functions", "test"],
        &["associations"],
        &["associations", "validate"],
        &["associations", "push"],
        &["deploy"],
        &["update"],
        &["status"],
        &["teardown"],
        &["config"],
    ];
    for command in commands {
        let mut args = command.to_vec();
        args.push("--help");
        let out = ok(echoctl(&workspace(), &args).output().unwrap());
        assert!(out.contains("Usage: echoctl"), "{command:?}: {out}");
    }
}

#[test]
fn init_scaffolds_a_project_whose_function_builds_and_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(echoctl(tmp.path(), &["init", "proj", "--app", "shop"])
        .output()
        .unwrap());
    assert!(out.contains("functions test tidy"), "{out}");
    let proj = tmp.path().join("proj");
    for f in [
        "echo.toml",
        "associations.json",
        "Cargo.toml",
        "functions/tidy/src/lib.rs",
    ] {
        assert!(proj.join(f).is_file(), "{f}");
    }
    // Nothing is overwritten.
    let err = failed(echoctl(tmp.path(), &["init", "proj"]).output().unwrap());
    assert!(
        err.contains("echo.toml") && err.contains("nothing was written"),
        "{err}"
    );

    let out = ok(
        echoctl(&proj, &["associations", "validate", "associations.json"])
            .output()
            .unwrap(),
    );
    assert!(out.contains("valid (1 app; functions: tidy)"), "{out}");

    let err = failed(
        echoctl(&proj, &["functions", "new", "Bad Name"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("not a valid function name"), "{err}");
    ok(echoctl(
        &proj,
        &["functions", "new", "second", "--hook", "subscribe"],
    )
    .output()
    .unwrap());
    assert!(proj.join("functions/second/src/main.rs").is_file());
    let err = failed(
        echoctl(&proj, &["functions", "new", "second"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("already exists"), "{err}");

    // The scaffolded function builds (as its Lambda binary) and runs on a sample. It builds in
    // the directory `cargo lambda watch` uses in the tests, so their dependencies are built once.
    let target = workspace().join("target/lambda-watch");
    let run = |input: &str| {
        echoctl(&proj, &["functions", "test", "tidy", "--input", input])
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap()
    };
    let out = ok(run("functions/tidy/sample.json"));
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"action": "continue", "data": {"text": "hello from echoctl"}})
    );
    std::fs::write(
        proj.join("blank.json"),
        r#"{"app":"shop","channel":"chat","message":{"id":"m","data":{"text":"   "},"from":"u","ts":1}}"#,
    )
    .unwrap();
    let out = ok(run("blank.json"));
    assert!(out.contains(r#""action": "drop""#), "{out}");
    // The hook function builds, runs on its sample, and its own test passes.
    let out = ok(echoctl(
        &proj,
        &[
            "functions",
            "test",
            "second",
            "--input",
            "functions/second/sample.json",
        ],
    )
    .env("CARGO_TARGET_DIR", &target)
    .output()
    .unwrap());
    let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        answer,
        serde_json::json!({"action": "deny", "reason": "room-bob is not alice's room"})
    );
    ok(
        std::process::Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
            .args(["test", "-q", "-p", "second"])
            .current_dir(&proj)
            .env("CARGO_TARGET_DIR", &target)
            .output()
            .unwrap(),
    );
    let err = failed(
        echoctl(
            &proj,
            &["functions", "test", "missing", "--input", "blank.json"],
        )
        .output()
        .unwrap(),
    );
    assert!(err.contains("echoctl functions new missing"), "{err}");
}

#[test]
fn associations_errors_give_path_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let p = tmp.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_string_lossy().into_owned()
    };
    let unknown = write(
        "unknown.json",
        "{\n  \"apps\": {\n    \"a\": {\"channels\": {\n      \"room-*\": {\"functions\": [\"angry\", \"angri\"]}\n    }}\n  }\n}\n",
    );
    let err = failed(
        echoctl(tmp.path(), &["associations", "validate", &unknown])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains(
            "apps.a.channels.room-*.functions[1]: unknown function \"angri\" (line 4, column 41)"
        ),
        "{err}"
    );
    // Names given on the command line or found as crates count as known.
    ok(echoctl(
        tmp.path(),
        &["associations", "validate", &unknown, "--functions", "angri"],
    )
    .output()
    .unwrap());

    let syntax = write("syntax.json", "{\n  \"apps\": {\n    \"a\": [\n}\n");
    let err = failed(
        echoctl(tmp.path(), &["associations", "validate", &syntax])
            .output()
            .unwrap(),
    );
    assert!(err.contains("line 4"), "{err}");
    let timeout = write(
        "timeout.json",
        r#"{"apps":{"a":{"channels":{"c":{"functions":[],"timeoutMs":0}}}}}"#,
    );
    let err = failed(
        echoctl(tmp.path(), &["associations", "validate", &timeout])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("apps.a.channels.c.timeoutMs: must be 1 to 25000 (line 1, column 59)"),
        "{err}"
    );
}

/// `echoctl dev` on free ports; the child and the management API's port.
fn start_dev(data_dir: &Path) -> (Child, u16) {
    let dev = common::start_dev(data_dir, &[]);
    (dev.child, dev.manage_port)
}

#[test]
fn associations_push_replaces_them_on_a_running_edge() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let (mut edge, port) = start_dev(&data);
    let file = tmp.path().join("robots.json");
    std::fs::write(
        &file,
        r#"{"apps":{"chat-demo":{"channels":{"boring":{"functions":["robot"]}}}}}"#,
    )
    .unwrap();
    let push = |file: &Path| {
        echoctl(tmp.path(), &["associations", "push"])
            .arg(file)
            .args(["--manage-port", &port.to_string(), "--data-dir"])
            .arg(&data)
            .output()
            .unwrap()
    };
    let out = ok(push(&file));
    assert!(out.contains("pushed") && out.contains("robot"), "{out}");
    let token = std::fs::read_to_string(data.join("manage-token")).unwrap();
    let in_force = tokio::runtime::Runtime::new().unwrap().block_on(async {
        reqwest::Client::new()
            .get(format!("http://127.0.0.1:{port}/associations"))
            .bearer_auth(token.trim())
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    });
    assert!(
        in_force.contains("robot") && !in_force.contains("angry"),
        "{in_force}"
    );

    // The edge refuses a function it cannot call, and says where it is.
    let bad = tmp.path().join("bad.json");
    std::fs::write(
        &bad,
        "{\"apps\": {\"chat-demo\": {\"channels\": {\n  \"boring\": {\"functions\": [\"nope\"]}}}}}",
    )
    .unwrap();
    let err = failed(push(&bad));
    assert!(
        err.contains("refused") && err.contains("unknown function \"nope\" (line 2, column 28)"),
        "{err}"
    );
    // Nothing listening: a clear error.
    let err = failed(
        echoctl(tmp.path(), &["associations", "push"])
            .arg(&file)
            .args(["--manage-port", "9", "--data-dir"])
            .arg(&data)
            .output()
            .unwrap(),
    );
    assert!(err.contains("is `echoctl dev` running?"), "{err}");
    edge.kill().unwrap();
    edge.wait().unwrap();
}

#[test]
fn jwt_limits_channels_and_prints_the_url() {
    let tmp = tempfile::tempdir().unwrap();
    let out = ok(echoctl(
        tmp.path(),
        &[
            "jwt",
            "shop",
            "--sub",
            "ann",
            "--channels",
            "room-*,lobby",
            "--publish",
            "lobby",
            "--endpoint",
            "ws://127.0.0.1:8080/",
        ],
    )
    .output()
    .unwrap());
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2, "{out}");
    assert_eq!(lines[1], format!("ws://127.0.0.1:8080/?token={}", lines[0]));
    let secret = std::fs::read(tmp.path().join(".echo/dev-secret")).unwrap();
    let claims = Keyring::instance(&secret)
        .unwrap()
        .verify(lines[0], SystemClock.now_secs())
        .unwrap();
    let channels = serde_json::to_value(claims.channels.unwrap()).unwrap();
    assert_eq!(
        channels,
        serde_json::json!({"subscribe": ["room-*", "lobby"], "publish": ["lobby"]})
    );
    let err = failed(
        echoctl(tmp.path(), &["jwt", "shop", "--channels", "bad name"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("bad name"), "{err}");
}

#[test]
fn config_layers_file_env_and_flags() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(
        tmp.path().join("echo.toml"),
        "[edge]\nport = 9999\nidle-timeout = \"3m\"\ndata-dir = \"state\"\n[aws]\nstack-name = \"prod\"\n",
    )
    .unwrap();
    let row = |out: &str, key: &str| -> String {
        out.lines()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let out = ok(echoctl(tmp.path(), &["config"]).output().unwrap());
    assert!(out.starts_with("config file: echo.toml"), "{out}");
    assert_eq!(row(&out, "port"), "port 9999 file");
    assert_eq!(row(&out, "idle-timeout"), "idle-timeout 3m file");
    assert_eq!(row(&out, "data-dir"), "data-dir state file");
    assert_eq!(row(&out, "host"), "host 127.0.0.1 default");
    assert_eq!(row(&out, "stack-name"), "stack-name prod file");

    let out = ok(echoctl(tmp.path(), &["config"])
        .env("ECHO_PORT", "7777")
        .env("ECHO_STACK_NAME", "staging")
        .output()
        .unwrap());
    assert_eq!(row(&out, "port"), "port 7777 env");
    assert_eq!(row(&out, "stack-name"), "stack-name staging env");
    let out = ok(echoctl(tmp.path(), &["config", "--port", "6666"])
        .env("ECHO_PORT", "7777")
        .output()
        .unwrap());
    assert_eq!(row(&out, "port"), "port 6666 flag");
    // The secret is described, never shown.
    let out = ok(echoctl(tmp.path(), &["config"])
        .env("ECHO_JWT_SECRET", "a-very-secret-value-a-very-secret-value")
        .output()
        .unwrap());
    assert!(!out.contains("a-very-secret-value"), "{out}");
    assert!(out.contains("from ECHO_JWT_SECRET (39 bytes)"), "{out}");

    std::fs::write(tmp.path().join("other.toml"), "[edge]\nprot = 1\n").unwrap();
    let err = failed(
        echoctl(tmp.path(), &["config", "--config", "other.toml"])
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("other.toml") && err.contains("unknown field `prot`"),
        "{err}"
    );
}

#[test]
fn aws_commands_explain_themselves_without_aws() {
    let home = tempfile::tempdir().unwrap();
    let ws = workspace();
    let aws = |args: &[&str]| {
        echoctl(&ws, args)
            .env("HOME", home.path())
            .env("RUSTUP_HOME", rustup_home())
            .env("CARGO_HOME", cargo_home())
            .output()
            .unwrap()
    };
    for command in ["deploy", "status", "teardown"] {
        let err = failed(aws(&[command]));
        assert!(err.contains("no AWS credentials found"), "{command}: {err}");
        assert!(err.contains("--dry-run"), "{command}: {err}");
    }

    let out = ok(aws(&["deploy", "--dry-run", "--stack-name", "shop"]));
    assert!(out.contains("sam build --template template.yaml"), "{out}");
    assert!(
        out.contains("sam deploy") && out.contains("--stack-name shop"),
        "{out}"
    );
    let out = ok(echoctl(&ws, &["deploy", "--dry-run"])
        .env("ECHO_JWT_SECRET", "a-very-secret-value-a-very-secret-value")
        .output()
        .unwrap());
    assert!(
        out.contains("then make ECHO_JWT_SECRET the instance secret of the stack's key set")
            && !out.contains("a-very-secret")
            && !out.contains("JwtSecret"),
        "{out}"
    );

    // A Lambda deployed elsewhere, named by its ARN: validated as such, and granted to the
    // message handler by deploy.
    let arn = "arn:aws:lambda:eu-west-1:123456789012:function:geo-filter:live";
    let file = home.path().join("arn.json");
    std::fs::write(
        &file,
        format!(
            r#"{{"apps":{{"shop":{{"channels":{{"geo":{{"functions":["angry","{arn}"]}}}}}}}}}}"#
        ),
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let out = ok(aws(&["associations", "validate", file]));
    assert!(out.contains(arn), "{out}");
    let out = ok(aws(&["deploy", "--dry-run", "--associations", file]));
    assert!(
        out.contains(&format!("ProjectFunctionArns={arn}\n")),
        "{out}"
    );
    assert!(out.contains(&format!("then store {file}")), "{out}");

    let out = ok(aws(&["teardown", "--dry-run", "--region", "eu-west-1"]));
    assert!(
        out.contains("sam delete --stack-name echo --no-prompts --region eu-west-1"),
        "{out}"
    );

    // Local code hashes for every function in the template, one per line.
    let out = ok(aws(&["status", "--dry-run"]));
    for binary in [
        "connect-handler",
        "message-handler",
        "fanout",
        "angry",
        "robot",
    ] {
        let line = out
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(binary))
            .unwrap_or_else(|| panic!("no {binary} in {out}"));
        let hash = line.split_whitespace().last().unwrap();
        assert_eq!(hash.len(), 64, "{line}");
        assert!(hash.chars().all(|c| c.is_ascii_hexdigit()), "{line}");
    }
}

fn rustup_home() -> PathBuf {
    std::env::var_os("RUSTUP_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".rustup"))
}

fn cargo_home() -> PathBuf {
    std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(std::env::var_os("HOME").unwrap()).join(".cargo"))
}

#[test]
fn publish_sends_through_the_http_api_to_subscribers() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let mut dev = common::start_dev(&data, &[]);
    let endpoint = format!("http://{}", dev.addr);
    let publish = |args: &[&str]| {
        echoctl(tmp.path(), &["publish", "chat-demo"])
            .args(args)
            .args(["--endpoint", &endpoint, "--data-dir"])
            .arg(&data)
            .output()
            .unwrap()
    };
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let delivered = runtime.block_on(async {
        let mut ws = common::connect(&dev.addr, &common::demo_token(&data, "reader")).await;
        use futures_util::SinkExt;
        ws.send(tokio_tungstenite::tungstenite::Message::text(
            r#"{"action":"subscribe","channel":"angry"}"#,
        ))
        .await
        .unwrap();
        let subscribed = common::next_json(&mut ws).await.unwrap();
        assert_eq!(subscribed["type"], "subscribed");
        let out = ok(publish(&[
            "angry",
            r#"{"text":"from a script"}"#,
            "--id",
            "s1",
        ]));
        let answer: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(
            answer,
            serde_json::json!({"channel": "angry", "seq": 1, "id": "s1"})
        );
        common::next_json(&mut ws).await.unwrap()
    });
    assert_eq!(delivered["data"]["text"], "😡 FROM A SCRIPT!!! 😡");
    assert_eq!(delivered["from"], "echoctl");

    let err = failed(publish(&["angry", "not json"]));
    assert!(err.contains("the data is not JSON"), "{err}");
    let err = failed(publish(&["$status", "1"]));
    assert!(err.contains("refused (403): forbidden"), "{err}");
    dev.child.kill().unwrap();
    dev.child.wait().unwrap();
}

/// The `[edge]` keys of docs/echoctl.md's example, commented ones included.
fn documented_edge_keys() -> Vec<(String, String)> {
    let doc = std::fs::read_to_string(workspace().join("docs/echoctl.md")).unwrap();
    let block = doc
        .split("```toml\n[edge]")
        .nth(1)
        .and_then(|rest| rest.split("\n[").next())
        .expect("docs/echoctl.md has a toml block starting with [edge]");
    block
        .lines()
        .skip(1)
        .filter_map(|line| {
            let line = line.trim().trim_start_matches('#').trim();
            let (key, value) = line.split_once('=')?;
            let value = value.split(" #").next().unwrap_or(value);
            Some((key.trim().to_owned(), value.trim().to_owned()))
        })
        .collect()
}

#[test]
fn every_edge_setting_docs_list_is_accepted_by_echo_toml_and_each_is_listed() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = documented_edge_keys();
    let file: String = keys.iter().map(|(k, v)| format!("{k} = {v}\n")).collect();
    std::fs::write(tmp.path().join("echo.toml"), format!("[edge]\n{file}")).unwrap();
    let out = ok(echoctl(tmp.path(), &["config"]).output().unwrap());
    let edge: Vec<&str> = out
        .split("[edge]\n")
        .nth(1)
        .unwrap()
        .split("\n[")
        .next()
        .unwrap()
        .lines()
        .collect();
    for (key, _) in &keys {
        let row = edge
            .iter()
            .find(|l| l.split_whitespace().next() == Some(key))
            .unwrap_or_else(|| panic!("{key} is not an [edge] setting: {out}"));
        assert!(
            row.ends_with("file"),
            "{key} was not taken from the file: {row}"
        );
    }
    // And the docs name every setting there is.
    for row in &edge {
        let key = row.split_whitespace().next().unwrap();
        assert!(
            keys.iter().any(|(k, _)| k == key),
            "docs/echoctl.md does not list [edge] {key}"
        );
    }
    assert_eq!(edge.len(), keys.len(), "{out}");

    // An unknown key is an error that names it and what is known.
    std::fs::write(
        tmp.path().join("echo.toml"),
        "[edge]\nsweep-evry = \"2m\"\n",
    )
    .unwrap();
    let err = failed(echoctl(tmp.path(), &["config"]).output().unwrap());
    assert!(
        err.contains("sweep-evry") && err.contains("sweep-every"),
        "{err}"
    );
    // A value the flag would refuse is refused in the file too.
    std::fs::write(
        tmp.path().join("echo.toml"),
        "[edge]\nsweep-every = \"often\"\n",
    )
    .unwrap();
    let err = failed(echoctl(tmp.path(), &["config"]).output().unwrap());
    assert!(err.contains("often"), "{err}");
}

/// Without credentials each AWS command says what it would do in the account; a dry run of
/// `deploy` says what the real one would stop at: no SAM CLI, no JWT secret, no credentials.
#[test]
fn aws_commands_say_what_they_need() {
    let echo = workspace();
    let err = failed(
        echoctl(&echo, &["deploy", "--stack-name", "shop"])
            .env("HOME", "/nonexistent")
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("echoctl deploy builds and deploys the stack to your AWS account"),
        "{err}"
    );
    let err = failed(
        echoctl(&echo, &["status", "--stack-name", "shop"])
            .env("HOME", "/nonexistent")
            .output()
            .unwrap(),
    );
    assert!(
        err.contains("echoctl status reads a deployed stack"),
        "{err}"
    );

    let out = echoctl(&echo, &["deploy", "--dry-run", "--stack-name", "shop"])
        .env("HOME", "/nonexistent")
        .env("ECHO_SAM", "/nonexistent/sam")
        .output()
        .unwrap();
    assert!(out.status.success());
    let said = String::from_utf8_lossy(&out.stdout);
    let warned = String::from_utf8_lossy(&out.stderr);
    assert!(
        !said.contains("JwtSecret"),
        "the key set holds the secrets: {said}"
    );
    for warning in [
        "the SAM CLI was not found at \"/nonexistent/sam\"",
        "no AWS credentials found",
    ] {
        assert!(warned.contains(warning), "no {warning:?} in {warned}");
    }
}

/// `echoctl keys`: a created HS256 secret is shown once, kept 0600, and signs `echoctl jwt`'s
/// tokens for the app; RS256 keys take a public key; a revoked key no longer signs or verifies.
#[test]
fn keys_are_created_listed_used_and_revoked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let out = ok(echoctl(dir, &["keys", "create", "shop", "--kid", "shop-1"])
        .output()
        .unwrap());
    assert!(out.contains("kid: shop-1"), "{out}");
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("the secret is printed")
        .to_owned();
    assert_eq!(secret.len(), 64);
    let file = dir.join(".echo/keys.json");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let pem = format!(
        "{}/../tests/fixtures/keys/rsa-public.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    ok(echoctl(
        dir,
        &[
            "keys",
            "create",
            "shop",
            "--kid",
            "shop-rs",
            "--alg",
            "RS256",
            "--public-key",
            &pem,
        ],
    )
    .output()
    .unwrap());
    let err = failed(
        echoctl(dir, &["keys", "create", "shop", "--alg", "ES256"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("--public-key"), "{err}");
    let err = failed(
        echoctl(dir, &["keys", "create", "shop", "--kid", "shop-1"])
            .output()
            .unwrap(),
    );
    assert!(err.contains("another key has this kid"), "{err}");

    let list = ok(echoctl(dir, &["keys", "list"]).output().unwrap());
    assert!(
        list.contains("shop-1") && list.contains("shop-rs") && list.contains("RS256"),
        "{list}"
    );
    assert!(!list.contains(&secret), "the secret is never listed");

    let keys = || {
        echo_core::auth::Keyring::compile(&echo_edge::key_file::read(&file).unwrap(), None).unwrap()
    };
    let token = ok(echoctl(dir, &["jwt", "shop", "--sub", "ann"])
        .output()
        .unwrap());
    let header = jsonwebtoken::decode_header(token.trim()).unwrap();
    assert_eq!(
        header.kid.as_deref(),
        Some("shop-1"),
        "signed with the app's key"
    );
    assert_eq!(
        keys()
            .verify(token.trim(), SystemClock.now_secs())
            .unwrap()
            .sub,
        "ann"
    );
    let private = format!(
        "{}/../tests/fixtures/keys/rsa-private.pem",
        env!("CARGO_MANIFEST_DIR")
    );
    let rs = ok(echoctl(
        dir,
        &["jwt", "shop", "--key", "shop-rs", "--private-key", &private],
    )
    .output()
    .unwrap());
    assert!(keys().verify(rs.trim(), SystemClock.now_secs()).is_ok());

    ok(echoctl(dir, &["keys", "revoke", "shop-1"])
        .output()
        .unwrap());
    assert!(keys().verify(token.trim(), SystemClock.now_secs()).is_err());
    let err = failed(echoctl(dir, &["jwt", "shop"]).output().unwrap());
    assert!(err.contains("no HS256 key"), "{err}");
    let list = ok(echoctl(dir, &["keys", "list", "shop"]).output().unwrap());
    assert!(list.contains("revoked"), "{list}");
}
