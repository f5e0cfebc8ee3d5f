//! `echoctl status` and `echoctl associations push --target aws` against moto, a local AWS
//! emulator (CloudFormation, Lambda, DynamoDB), through the SAM CLI and the AWS SDK with
//! `AWS_ENDPOINT_URL`. Needs echoctl's `aws` and `services` features and moto's server (the test
//! script installs it into `.venv-sam`; `ECHO_MOTO_VENV` names another virtualenv with boto3 and
//! moto).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

const ECHOCTL: &str = env!("CARGO_BIN_EXE_echoctl");

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The virtualenv with moto and boto3; a relative `ECHO_MOTO_VENV` is relative to the repository.
fn venv() -> PathBuf {
    root().join(
        std::env::var_os("ECHO_MOTO_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(".venv-sam")),
    )
}

struct Moto(Child);

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_moto() -> (Moto, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = Command::new(venv().join("bin/moto_server"))
        .args(["-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("moto_server (pip install 'moto[server]')");
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "moto did not start"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    (Moto(child), format!("http://127.0.0.1:{port}"))
}

/// A command with the AWS settings that point at moto.
fn aws(program: &Path, endpoint: &str) -> Command {
    let mut c = Command::new(program);
    c.current_dir(root())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", "moto")
        .env("AWS_SECRET_ACCESS_KEY", "moto")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("ECHO_SAM", venv().join("bin/sam"))
        .env("SAM_CLI_TELEMETRY", "0")
        .env_remove("AWS_PROFILE");
    c
}

fn ok(out: Output) -> String {
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs Python (boto3, from the same virtualenv) against moto.
fn python(endpoint: &str, script: &str) -> String {
    ok(aws(&venv().join("bin/python"), endpoint)
        .args(["-c", script])
        .output()
        .unwrap())
}

/// The local hash `echoctl status --dry-run` prints for `binary`.
fn local_hash(binary: &str) -> String {
    let out = ok(Command::new(ECHOCTL)
        .args(["status", "--dry-run"])
        .current_dir(root())
        .output()
        .unwrap());
    out.lines()
        .find(|l| l.split_whitespace().nth(1) == Some(binary))
        .and_then(|l| l.split_whitespace().last())
        .unwrap()
        .to_owned()
}

#[test]
fn status_compares_deployed_code_and_push_stores_associations() {
    let (_moto, endpoint) = start_moto();
    // A stack with three of the template's functions, and the connections table.
    python(
        &endpoint,
        r#"
import boto3, json
fn = lambda: {"Type": "AWS::Lambda::Function", "Properties": {"Runtime": "provided.al2023",
    "Handler": "bootstrap", "Role": {"Fn::GetAtt": ["Role", "Arn"]}, "Code": {"ZipFile": "x"}}}
tpl = {"Resources": {
    "Role": {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}},
    "AngryFunction": fn(), "EmojifyFunction": fn(), "RobotFunction": fn()},
  "Outputs": {"ConnectionsTableName": {"Value": "echo-connections"}, "WebSocketUrl": {"Value": "wss://example/prod"}}}
boto3.client("cloudformation").create_stack(StackName="echo", TemplateBody=json.dumps(tpl))
boto3.client("dynamodb").create_table(TableName="echo-connections",
    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
    BillingMode="PAY_PER_REQUEST")
"#,
    );
    // Tags as `echoctl deploy` leaves them: angry deployed from this code; robot from other
    // code; emojify from this code but replaced since.
    let (angry, emojify) = (local_hash("angry"), local_hash("emojify"));
    python(
        &endpoint,
        &format!(
            r#"
import boto3
cf, lam = boto3.client("cloudformation"), boto3.client("lambda")
names = {{r["LogicalResourceId"]: r["PhysicalResourceId"] for r in cf.list_stack_resources(StackName="echo")["StackResourceSummaries"]}}
def tag(logical, source, code=None):
    f = lam.get_function(FunctionName=names[logical])["Configuration"]
    lam.tag_resource(Resource=f["FunctionArn"], Tags={{"echo:source-hash": source, "echo:code-sha256": code or f["CodeSha256"]}})
tag("AngryFunction", "{angry}")
tag("RobotFunction", "0" * 64)
tag("EmojifyFunction", "{emojify}", "replaced")
"#
        ),
    );

    let out = ok(aws(Path::new(ECHOCTL), &endpoint)
        .arg("status")
        .output()
        .unwrap());
    let state = |logical: &str| -> String {
        out.lines()
            .find(|l| l.starts_with(logical))
            .unwrap_or_else(|| panic!("no {logical} in {out}"))
            .split_whitespace()
            .skip(4)
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert!(
        out.contains("WebSocketUrl") && out.contains("wss://example/prod"),
        "{out}"
    );
    assert_eq!(state("AngryFunction"), "matches");
    assert_eq!(state("RobotFunction"), "differs");
    assert_eq!(state("EmojifyFunction"), "changed outside echoctl");
    assert_eq!(state("FanoutFunction"), "not deployed");

    // Associations go to the stack's connections table, where the Lambdas read them.
    let out = ok(aws(Path::new(ECHOCTL), &endpoint)
        .args([
            "associations",
            "push",
            "apps/chat/associations.json",
            "--target",
            "aws",
        ])
        .output()
        .unwrap());
    assert!(out.contains("echo-connections"), "{out}");
    let stored = python(
        &endpoint,
        r#"
import boto3
items = boto3.client("dynamodb").scan(TableName="echo-connections")["Items"]
print(" ".join(str(i) for i in items))
"#,
    );
    assert!(stored.contains("emojify"), "{stored}");
}

/// `echoctl keys --target aws` and `jwt --target aws`: the key set lives in the secret the
/// stack's `KeysSecretArn` output names, as the template creates it.
#[test]
fn keys_live_in_the_stacks_secret() {
    let (_moto, endpoint) = start_moto();
    let arn = python(
        &endpoint,
        r#"
import boto3, json
arn = boto3.client("secretsmanager").create_secret(Name="echo-keys",
    SecretString=json.dumps({"instanceSecret": "i" * 64}))["ARN"]
tpl = {"Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
  "Outputs": {"KeysSecretArn": {"Value": arn}}}
boto3.client("cloudformation").create_stack(StackName="echo", TemplateBody=json.dumps(tpl))
print(arn)
"#,
    );
    let echoctl = |args: &[&str]| {
        aws(Path::new(ECHOCTL), &endpoint)
            .args(args)
            .args(["--target", "aws"])
            .output()
            .unwrap()
    };
    let out = ok(echoctl(&["keys", "create", "shop", "--kid", "shop-1"]));
    let secret = out
        .lines()
        .find_map(|l| l.strip_prefix("secret: "))
        .expect("the secret is printed once")
        .to_owned();
    let stored = python(
        &endpoint,
        &format!(
            r#"
import boto3
print(boto3.client("secretsmanager").get_secret_value(SecretId="{}")["SecretString"])
"#,
            arn.trim()
        ),
    );
    let set = echo_core::auth::KeySet::parse(stored.trim().as_bytes()).unwrap();
    assert_eq!(set.keys[0].secret.as_deref(), Some(secret.as_str()));
    assert_eq!(
        set.instance_secret.as_deref(),
        Some("i".repeat(64).as_str()),
        "the instance secret is kept"
    );
    let list = ok(echoctl(&["keys", "list"]));
    assert!(list.contains("shop-1") && !list.contains(&secret), "{list}");

    let keyring = echo_core::auth::Keyring::compile(&set, None).unwrap();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let token = ok(echoctl(&["jwt", "shop", "--sub", "ann"]));
    assert_eq!(keyring.verify(token.trim(), now).unwrap().sub, "ann");
    // An app without keys: the stack's instance secret signs.
    let token = ok(echoctl(&["jwt", "other", "--sub", "bo"]));
    assert_eq!(keyring.verify(token.trim(), now).unwrap().sub, "bo");

    ok(echoctl(&["keys", "revoke", "shop-1"]));
    let err = String::from_utf8(echoctl(&["jwt", "shop"]).stderr).unwrap();
    assert!(err.contains("no HS256 key"), "{err}");
}

/// A project made by `echoctl init` with the JavaScript function `shout`.
fn node_project(tmp: &Path) -> PathBuf {
    ok(Command::new(ECHOCTL)
        .args([
            "init",
            "proj",
            "--app",
            "shop",
            "--function",
            "shout",
            "--runtime",
            "node",
        ])
        .current_dir(tmp)
        .output()
        .unwrap());
    tmp.join("proj")
}

/// The row of `logical` in status output: its columns after the name.
fn row(out: &str, logical: &str) -> Vec<String> {
    out.lines()
        .rev()
        .find(|l| l.split_whitespace().next() == Some(logical))
        .unwrap_or_else(|| panic!("no {logical} in {out}"))
        .split_whitespace()
        .skip(1)
        .map(str::to_owned)
        .collect()
}

#[test]
fn update_deploys_only_changed_functions_and_status_and_teardown_see_the_project() {
    let (_moto, endpoint) = start_moto();
    let tmp = tempfile::tempdir().unwrap();
    let proj = node_project(tmp.path());
    // The functions' template, as deploy writes it, and its hash, as deploy passes it.
    ok(Command::new(ECHOCTL)
        .args(["deploy", "--dry-run", "--stack-name", "shop"])
        .current_dir(&proj)
        .output()
        .unwrap());
    let template_hash = {
        use sha2::{Digest, Sha256};
        Sha256::digest(std::fs::read(proj.join(".echo/aws/functions.yaml")).unwrap())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    };
    // Echo's stack, deployed without echoctl, and the project's functions stack as `echoctl
    // deploy` leaves it: from this template, shout from other code, and a function the project
    // no longer has.
    python(
        &endpoint,
        &r#"
import boto3, json
def fn(name): return {"Type": "AWS::Lambda::Function", "Properties": {"FunctionName": name,
    "Runtime": "nodejs20.x", "Handler": "index.handler", "Role": {"Fn::GetAtt": ["Role", "Arn"]},
    "Code": {"ZipFile": "exports.handler = async () => null;"}}}
role = {"Type": "AWS::IAM::Role", "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}}}
cf = boto3.client("cloudformation")
cf.create_stack(StackName="shop", TemplateBody=json.dumps({"Resources": {"Role": role},
    "Outputs": {"WebSocketUrl": {"Value": "wss://example/prod"}}}))
cf.create_stack(StackName="shop-functions", TemplateBody=json.dumps({"Resources": {"Role": role,
    "ShoutFunction": fn("shop-shout"), "OldFunction": fn("shop-old")},
    "Outputs": {"SourceHash": {"Value": "TEMPLATE_HASH"}}}))
lam = boto3.client("lambda")
arn = lam.get_function(FunctionName="shop-shout")["Configuration"]["FunctionArn"]
lam.tag_resource(Resource=arn, Tags={"echo:source-hash": "0" * 64, "echo:code-sha256": "x"})
"#
        .replace("TEMPLATE_HASH", &template_hash),
    );
    let echoctl = |args: &[&str]| {
        let mut c = aws(Path::new(ECHOCTL), &endpoint);
        c.args(args).current_dir(&proj);
        c.output().unwrap()
    };

    let out = ok(echoctl(&["status", "--stack-name", "shop"]));
    assert!(
        out.contains("stack shop: deployed without echoctl (no SourceHash output)")
            && out.contains("stack shop-functions: deployed from the local template"),
        "{out}"
    );
    // Without npm, nothing is built or uploaded, and the error says what to install.
    let mut without_npm = aws(Path::new(ECHOCTL), &endpoint);
    let out = without_npm
        .args(["update", "--stack-name", "shop"])
        .current_dir(&proj)
        .env("PATH", "/nonexistent")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("npm is needed to build JavaScript functions") && err.contains("Node.js"),
        "{err}"
    );
    let out = ok(echoctl(&["update", "--stack-name", "shop"]));
    let local = row(&out, "shout")[3].clone();
    assert_eq!(
        row(&out, "shout"),
        ["updated", "000000000000", "->", local.as_str()]
    );
    assert!(out.contains("updated 1 function(s): shout"), "{out}");
    // The code Lambda now runs is the built package, tagged with its hashes.
    let deployed = python(
        &endpoint,
        r#"
import boto3
f = boto3.client("lambda").get_function(FunctionName="shop-shout")
print(f["Tags"]["echo:source-hash"], f["Tags"]["echo:code-sha256"] == f["Configuration"]["CodeSha256"])
"#,
    );
    let (hash, same) = deployed.trim().split_once(' ').unwrap();
    assert!(hash.starts_with(&local), "{deployed}");
    assert_eq!(same, "True");

    let out = ok(echoctl(&["update", "--stack-name", "shop"]));
    assert!(
        out.contains("nothing to update") && row(&out, "shout")[0] == "unchanged",
        "{out}"
    );

    // A function that is not deployed yet, and one that is not in the project.
    ok(Command::new(ECHOCTL)
        .args(["functions", "new", "whisper", "--runtime", "node"])
        .current_dir(&proj)
        .output()
        .unwrap());
    let err = echoctl(&["update", "whisper", "--stack-name", "shop"]);
    assert!(!err.status.success());
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains("shop-whisper is not deployed: `echoctl deploy` creates new functions"),
        "{err}"
    );
    let err = echoctl(&["update", "nope", "--stack-name", "shop"]);
    let err = String::from_utf8_lossy(&err.stderr);
    assert!(
        err.contains("no function \"nope\"") && err.contains("shout (JavaScript)"),
        "{err}"
    );

    let out = ok(echoctl(&["status", "--stack-name", "shop"]));
    assert!(out.contains("wss://example/prod"), "{out}");
    // whisper changed the functions' template: the stack needs a deploy.
    assert!(
        out.contains(&format!(
            "stack shop-functions: deployed from another template ({}; local ",
            &template_hash[..12]
        )),
        "{out}"
    );
    assert_eq!(row(&out, "ShoutFunction").last().unwrap(), "matches");
    assert_eq!(row(&out, "WhisperFunction")[3..].join(" "), "not deployed");
    assert_eq!(
        row(&out, "OldFunction")[1..].join(" "),
        "deployed, no longer in the project"
    );

    let out = ok(echoctl(&["teardown", "--stack-name", "shop"]));
    assert!(
        out.contains("removed the stack shop-functions: shout (JavaScript), whisper (JavaScript)"),
        "{out}"
    );
    let left = python(
        &endpoint,
        r#"
import boto3
stacks = boto3.client("cloudformation").list_stacks()["StackSummaries"]
print(sorted(s["StackName"] for s in stacks if s["StackStatus"] != "DELETE_COMPLETE"))
"#,
    );
    assert_eq!(left.trim(), "[]");
}
