//! `echoctl jwt`: prints a token.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use echo_core::auth::{Claims, Permissions, Role, TokenIssuer};
use echo_core::channel::{AppId, ChannelPattern};
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
    /// Limit subscribing and publishing to these channels or patterns (`room-*`), comma-separated.
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    channels: Option<Vec<String>>,
    /// Limit subscribing to these channels or patterns (overrides --channels for subscribing).
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    subscribe: Option<Vec<String>>,
    /// Limit publishing to these channels or patterns (overrides --channels for publishing).
    #[arg(long, value_delimiter = ',', value_name = "PATTERNS")]
    publish: Option<Vec<String>>,
    /// Also print the WebSocket URL with the token for this endpoint, e.g. ws://127.0.0.1:8080/
    /// or the stack's WebSocketUrl.
    #[arg(long, value_name = "URL")]
    endpoint: Option<String>,
    /// Where `echoctl dev` keeps its generated secret (used when ECHO_JWT_SECRET is unset).
    #[arg(long, default_value = echo_edge::settings::DEFAULT_DATA_DIR, env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
}

fn patterns(list: Option<Vec<String>>) -> Result<Option<Vec<ChannelPattern>>, String> {
    list.map(|l| {
        l.into_iter()
            .filter(|p| !p.is_empty())
            .map(|p| ChannelPattern::new(p.clone()).map_err(|e| format!("{p:?}: {e}")))
            .collect()
    })
    .transpose()
}

pub fn run(args: JwtArgs) -> Result<(), Box<dyn std::error::Error>> {
    let (secret, _) = crate::secrets::jwt_secret(&args.data_dir, true)?;
    let issuer = TokenIssuer::new(secret.as_bytes())?;
    let now = SystemClock.now_secs();
    let sub = args
        .sub
        .unwrap_or_else(|| format!("user-{}", echo_core::ids::random_hex(3)));
    echo_core::auth::check_sub(&sub)?;
    let role = if args.admin { Role::Admin } else { Role::User };
    let mut claims = Claims::new(AppId::new(args.app)?, sub, now + args.ttl.as_secs().max(1))
        .with_role(role)
        .issued_at(now);
    let both = patterns(args.channels)?;
    let subscribe = patterns(args.subscribe)?.or_else(|| both.clone());
    let publish = patterns(args.publish)?.or(both);
    if subscribe.is_some() || publish.is_some() {
        claims.channels = Some(Permissions { subscribe, publish });
    }
    let token = issuer.issue(&claims)?;
    println!("{token}");
    if let Some(endpoint) = args.endpoint {
        let sep = if endpoint.contains('?') { '&' } else { '?' };
        println!("{endpoint}{sep}token={token}");
    }
    Ok(())
}
