//! `echoctl jwt`: prints a token.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use echo_core::auth::{Claims, Role, TokenIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};

#[derive(Args)]
pub struct JwtArgs {
    /// The app the token belongs to.
    app: String,
    /// An admin token (may subscribe to $status).
    #[arg(long)]
    admin: bool,
    /// The user id (`sub`); random when omitted.
    #[arg(long)]
    sub: Option<String>,
    /// How long the token is valid, e.g. 30m, 1h, 7d.
    #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
    ttl: Duration,
    /// Where `echoctl dev` keeps its generated secret (used when ECHO_JWT_SECRET is unset).
    #[arg(long, default_value = ".echo", env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
}

pub fn run(args: JwtArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (secret, _) = crate::secrets::jwt_secret(&args.data_dir, true)?;
    let issuer = TokenIssuer::new(secret.as_bytes())?;
    let now = SystemClock.now_secs();
    let sub = args
        .sub
        .unwrap_or_else(|| format!("user-{}", echo_core::ids::random_hex(3)));
    let role = if args.admin { Role::Admin } else { Role::User };
    let claims = Claims::new(AppId::new(args.app)?, sub, now + args.ttl.as_secs().max(1))
        .with_role(role)
        .issued_at(now);
    println!("{}", issuer.issue(&claims)?);
    Ok(())
}
