//! One hop less on AWS, measured in faithful mode: `echoctl dev --faithful` runs the real handler
//! and fan-out Lambdas against dynalite, with the latencies AWS does not publish emulated (each
//! management API call waits `--manage-latency`, each asynchronous invocation
//! `--async-invoke-delay` in the Lambda router). A small channel is loaded twice, the message
//! handler handing every message to the fan-out Lambda (`ECHO_DIRECT_MAX_SUBSCRIBERS=0`, the
//! path before) and delivering a small channel itself (the default); the figures are publish to
//! delivery at every subscriber.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use crate::load::Spec;
use crate::results::HopOutcome;
use crate::suite::{MANAGE_TOKEN, SECRET, SuiteError, sibling, start};
use crate::target::{Endpoint, System};

/// The emulated latencies, milliseconds: one management API call, one asynchronous hand-off.
pub const MANAGE_LATENCY_MS: u64 = 20;
pub const ASYNC_DELAY_MS: u64 = 50;
/// The channel's subscribers and the offered publishes/s.
pub const SUBSCRIBERS: usize = 10;
pub const RATE: f64 = 5.0;

#[derive(clap::Args)]
pub struct HopArgs {
    /// A few seconds per path instead of 30.
    #[arg(long)]
    pub smoke: bool,
}

pub async fn run(args: HopArgs) -> crate::Result {
    let tmp = std::env::temp_dir().join(format!("echo-bench-hop-{}", std::process::id()));
    let repo = std::env::current_dir()?;
    let hops = measure(&repo, &tmp, args.smoke).await;
    let _ = std::fs::remove_dir_all(&tmp);
    for h in hops? {
        println!("{}", serde_json::to_string(&h)?);
    }
    Ok(())
}

/// Both paths, the one through fan-out first.
pub async fn measure(repo: &Path, tmp: &Path, smoke: bool) -> crate::Result<Vec<HopOutcome>> {
    let mut out = Vec::new();
    for (path, direct_max) in [("through fan-out", 0usize), ("direct", 100)] {
        let mut c = Command::new(sibling("echoctl"));
        c.current_dir(repo)
            .args(["dev", "--faithful", "--port", "0", "--manage-port", "0"])
            // The Lambdas as `sam build` makes them: their own work then takes about what it
            // takes deployed, and what is left between the rows is the hop.
            .arg("--release-lambdas")
            .args(["--manage-latency", &format!("{MANAGE_LATENCY_MS}ms")])
            .args(["--async-invoke-delay", &format!("{ASYNC_DELAY_MS}ms")])
            .arg("--data-dir")
            .arg(tmp.join(format!("hop-{direct_max}")))
            .env("ECHO_JWT_SECRET", SECRET)
            .env("ECHO_MANAGE_TOKEN", MANAGE_TOKEN)
            .env("ECHO_DIRECT_MAX_SUBSCRIBERS", direct_max.to_string())
            .env("ECHO_LOG", "warn");
        let log = tmp.join(format!("hop-{direct_max}.log"));
        let (mut child, addr, _) = start(
            "echoctl dev --faithful",
            c,
            "echo edge listening on http://",
            Some(&log),
        )?;
        let endpoint = Endpoint {
            system: System::Echo,
            addr: addr
                .parse()
                .map_err(|_| SuiteError::NoAddress(addr.clone()))?,
            secret: Some(SECRET.into()),
            app: "chat-demo".into(),
        };
        let spec = Spec {
            subscribers: SUBSCRIBERS,
            publishers: 1,
            channels: 1,
            channel: "room".into(),
            rate: Some(RATE),
            window: 1000,
            payload: 100,
            http: false,
            warmup: Duration::from_secs(if smoke { 1 } else { 3 }),
            duration: Duration::from_secs(if smoke { 3 } else { 30 }),
        };
        let outcome = crate::load::run(&endpoint, &spec, &[child.id()]).await;
        let _ = child.kill();
        let _ = child.wait();
        let outcome = outcome?;
        eprintln!("  {path:<16} {}", crate::report::load_line(&outcome));
        out.push(HopOutcome {
            path,
            direct_max_subscribers: direct_max,
            outcome,
        });
    }
    Ok(out)
}
