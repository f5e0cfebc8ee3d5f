//! `echoctl jwt`: prints a token.

use std::path::PathBuf;
use std::time::Duration;

use clap::Args;
use echo_core::auth::{AppKey, Claims, KeyAlg, Permissions, Role, TokenIssuer};
use echo_core::channel::{AppId, ChannelPattern};
use echo_core::clock::{Clock, SystemClock};

use crate::keys::Target;

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
    /// Sign with this key of the app (default: its newest HS256 key, else the instance secret).
    #[arg(long, value_name = "KID")]
    key: Option<String>,
    /// Sign with this RS256/ES256 private key (PEM, PKCS#8), as the app's servers do; --key
    /// names its kid.
    #[arg(long, value_name = "FILE", requires = "key")]
    private_key: Option<PathBuf>,
    /// The private key's algorithm, when its kid is not in this data directory's keys.json.
    #[arg(long)]
    alg: Option<KeyAlg>,
    /// Sign with a key of the local edge (keys.json, the dev secret) or of the deployed stack's
    /// key set.
    #[arg(long, value_enum, default_value = "local")]
    target: Target,
    #[command(flatten)]
    aws: crate::aws::AwsArgs,
    /// Where the keys (keys.json) and `echoctl dev`'s generated secret are kept.
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

/// The named key (its secret, or the private key given), or the app's default signer.
fn signer(args: &JwtArgs, app: &AppId) -> Result<TokenIssuer, Box<dyn std::error::Error>> {
    if matches!(args.target, Target::Local) && args.key.is_none() {
        return crate::secrets::signer(&args.data_dir, app);
    }
    let (set, _) = crate::keys::load(args.target, &args.data_dir, &args.aws)?;
    let Some(kid) = args.key.as_deref() else {
        let instance = set
            .instance_secret
            .as_deref()
            .map(|s| TokenIssuer::new(s.as_bytes()))
            .transpose()?;
        return Ok(echo_edge::key_file::signer(&set, app, instance.as_ref())?);
    };
    let key = set.keys.iter().find(|k| k.kid == kid);
    if let Some(file) = &args.private_key {
        let alg = args
            .alg
            .or(key.map(|k| k.alg))
            .ok_or_else(|| format!("key {kid:?} is not in the key set: say its --alg"))?;
        let pem =
            std::fs::read(file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return Ok(TokenIssuer::with_private_key(alg, &pem, kid)?);
    }
    match key {
        Some(AppKey {
            secret: Some(secret),
            ..
        }) => Ok(TokenIssuer::with_kid(secret.as_bytes(), kid)?),
        Some(key) => Err(format!(
            "key {kid:?} is an {} key: sign with its private key (--private-key FILE)",
            key.alg
        )
        .into()),
        None => Err(format!("no key {kid:?} in the key set").into()),
    }
}

pub fn run(
    mut args: JwtArgs,
    m: &clap::ArgMatches,
    loaded: &crate::config::Loaded,
) -> Result<(), Box<dyn std::error::Error>> {
    args.aws.layer(m, loaded)?;
    let app = AppId::new(args.app.clone())?;
    let issuer = signer(&args, &app)?;
    let now = SystemClock.now_secs();
    let sub = args
        .sub
        .unwrap_or_else(|| format!("user-{}", echo_core::ids::random_hex(3)));
    echo_core::auth::check_sub(&sub)?;
    let role = if args.admin { Role::Admin } else { Role::User };
    let mut claims = Claims::new(app, sub, now + args.ttl.as_secs().max(1))
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
