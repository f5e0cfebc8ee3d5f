//! `echoctl keys`: the apps' signing keys and trusted OIDC issuers, in the data directory's
//! `keys.json` (the edge picks changes up at the next connect) or, with `--target aws`, in the
//! stack's key set secret (the Lambdas pick changes up within `KeysCacheSeconds`).

use std::path::{Path, PathBuf};

use clap::{ArgMatches, Args, Subcommand, ValueEnum};
use echo_core::auth::keys::{AdminRule, ClaimMapping, ClaimPath, KeyAlg};
use echo_core::auth::{AppKey, KeySet, Keyring, TrustedIssuer};
use echo_core::channel::AppId;
use echo_core::clock::{Clock, SystemClock};
use echo_edge::key_file;

#[derive(Args)]
pub struct KeysArgs {
    #[command(subcommand)]
    command: KeysCommand,
    /// Where the key set is: the local edge's keys.json, or the deployed stack's Secrets Manager
    /// secret (its KeysSecretArn output).
    #[arg(long, value_enum, default_value = "local", global = true)]
    target: Target,
    /// The data directory whose keys.json is managed (--target local).
    #[arg(long, global = true, default_value = echo_edge::settings::DEFAULT_DATA_DIR, env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
    #[command(flatten)]
    aws: crate::aws::AwsArgs,
}

/// Where a key set is kept.
#[derive(Clone, Copy, Default, ValueEnum)]
pub enum Target {
    /// The data directory's keys.json, which the local edge verifies with.
    #[default]
    Local,
    /// The deployed stack's key set secret, which its Lambdas verify with.
    Aws,
}

/// A key set read from its place, to be written back there.
pub enum Place {
    File(PathBuf),
    Secret(String),
}

/// The key set at `target`, and where it came from.
pub fn load(
    target: Target,
    data_dir: &Path,
    aws: &crate::aws::AwsArgs,
) -> crate::Result<(KeySet, Place)> {
    match target {
        Target::Local => {
            let path = data_dir.join(key_file::KEYS_FILE);
            Ok((key_file::read(&path)?, Place::File(path)))
        }
        Target::Aws => {
            let (arn, set) = crate::aws::read_key_set(aws)?;
            Ok((set, Place::Secret(arn)))
        }
    }
}

fn save(place: &Place, set: &KeySet, aws: &crate::aws::AwsArgs) -> crate::Result {
    // Everything the edge or the Lambdas would refuse is refused here, before anything changes.
    Keyring::compile(set, None)?;
    match place {
        Place::File(path) => key_file::write(path, set)
            .map_err(|e| format!("cannot write {}: {e}", path.display()).into()),
        Place::Secret(arn) => crate::aws::write_key_set(aws, arn, set),
    }
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a signing key to APP. HS256 (the default) generates a secret and prints it once;
    /// RS256 and ES256 take the public key of a key pair the app's servers hold.
    Create {
        app: String,
        #[arg(long, default_value = "HS256")]
        alg: KeyAlg,
        /// The key id tokens carry as their `kid` header (default: APP-<random>).
        #[arg(long)]
        kid: Option<String>,
        /// RS256/ES256: the public key, PEM (`-----BEGIN PUBLIC KEY-----`).
        #[arg(long, value_name = "FILE")]
        public_key: Option<PathBuf>,
    },
    /// List the keys and trusted issuers (never the secrets).
    List {
        /// Only this app's.
        app: Option<String>,
    },
    /// Revoke a key: tokens signed with it are refused from now on, at connect and at refresh.
    Revoke { kid: String },
    /// Trust an OIDC issuer's tokens for APP (a Cognito user pool, Auth0, Okta…).
    Trust {
        app: String,
        /// The issuer, exactly as its tokens' `iss` says.
        #[arg(long)]
        issuer: String,
        /// Accepted audiences (client ids), comma-separated.
        #[arg(long, value_delimiter = ',', required = true)]
        audience: Vec<String>,
        /// The key set's URL, when the issuer has no discovery document.
        #[arg(long)]
        jwks_uri: Option<String>,
        /// Algorithms its keys may use, comma-separated (default RS256).
        #[arg(long, value_delimiter = ',', default_value = "RS256")]
        algorithms: Vec<KeyAlg>,
        /// The claim holding the user id (default sub).
        #[arg(long, default_value = "sub")]
        sub_claim: String,
        /// The claim holding channel permissions ({"subscribe":[…],"publish":[…]}).
        #[arg(long)]
        permissions_claim: Option<String>,
        /// Admin when this claim is, or contains, VALUE: CLAIM=VALUE (e.g. cognito:groups=echo-admins).
        #[arg(long, value_name = "CLAIM=VALUE")]
        admin_when: Option<String>,
    },
    /// Stop trusting an issuer (for every app, or only APP's entry).
    Distrust {
        issuer: String,
        #[arg(long)]
        app: Option<String>,
    },
}

pub fn run(mut args: KeysArgs, m: &ArgMatches, loaded: &crate::config::Loaded) -> crate::Result {
    args.aws.layer(m, loaded)?;
    let (mut set, place) = load(args.target, &args.data_dir, &args.aws)?;
    let path = match &place {
        Place::File(path) => path.display().to_string(),
        Place::Secret(arn) => arn.clone(),
    };
    let now = SystemClock.now_secs();
    let mut secret = None;
    match args.command {
        KeysCommand::List { app } => {
            list(&set, app.as_deref());
            return Ok(());
        }
        KeysCommand::Create {
            app,
            alg,
            kid,
            public_key,
        } => {
            let app = AppId::new(app)?;
            let kid = kid
                .unwrap_or_else(|| format!("{}-{}", app.as_str(), echo_core::ids::random_hex(4)));
            let (key_secret, pem) = match (alg, public_key) {
                (KeyAlg::HS256, None) => (Some(echo_core::ids::random_hex(32)), None),
                (KeyAlg::HS256, Some(_)) => {
                    return Err("an HS256 key is a secret Echo generates: drop --public-key".into());
                }
                (_, Some(file)) => (
                    None,
                    Some(
                        std::fs::read_to_string(&file)
                            .map_err(|e| format!("cannot read {}: {e}", file.display()))?,
                    ),
                ),
                (alg, None) => {
                    return Err(format!(
                        "an {alg} key needs --public-key FILE (the app's servers keep the private key)"
                    )
                    .into());
                }
            };
            secret = key_secret.clone();
            set.keys.push(AppKey {
                kid: kid.clone(),
                app,
                alg,
                secret: key_secret,
                public_key: pem,
                created: now,
                revoked: None,
            });
            println!("kid: {kid}");
        }
        KeysCommand::Revoke { kid } => {
            let key = set
                .keys
                .iter_mut()
                .find(|k| k.kid == kid)
                .ok_or_else(|| format!("no key {kid:?} in {path}"))?;
            if key.revoked.is_some() {
                println!("key {kid} was already revoked");
                return Ok(());
            }
            key.revoked = Some(now);
            println!("revoked key {kid} of app {}", key.app);
        }
        KeysCommand::Trust {
            app,
            issuer,
            audience,
            jwks_uri,
            algorithms,
            sub_claim,
            permissions_claim,
            admin_when,
        } => {
            let admin = admin_when
                .map(|rule| {
                    rule.split_once('=')
                        .map(|(claim, value)| AdminRule {
                            claim: ClaimPath::Name(claim.to_owned()),
                            value: value.to_owned(),
                        })
                        .ok_or("--admin-when is CLAIM=VALUE")
                })
                .transpose()?;
            let app = AppId::new(app)?;
            set.issuers
                .retain(|i| !(i.issuer == issuer && i.app == app));
            set.issuers.push(TrustedIssuer {
                app: app.clone(),
                issuer: issuer.clone(),
                audience,
                jwks_uri,
                algorithms,
                claims: ClaimMapping {
                    sub: ClaimPath::Name(sub_claim),
                    permissions: permissions_claim.map(ClaimPath::Name),
                    default_permissions: None,
                    admin,
                },
            });
            println!("app {app} trusts tokens of {issuer}");
        }
        KeysCommand::Distrust { issuer, app } => {
            let before = set.issuers.len();
            set.issuers.retain(|i| {
                !(i.issuer == issuer && app.as_ref().is_none_or(|a| i.app.as_str() == a))
            });
            if set.issuers.len() == before {
                return Err(format!("no trusted issuer {issuer:?}").into());
            }
            println!("no longer trusting {issuer}");
        }
    }
    save(&place, &set, &args.aws)?;
    if let Some(secret) = secret {
        println!("secret: {secret}");
        eprintln!(
            "The secret is shown this once: give it to the app's servers, which sign tokens with it (HS256, kid header as above)."
        );
    }
    Ok(())
}

fn list(set: &KeySet, app: Option<&str>) {
    let keep = |a: &AppId| app.is_none_or(|app| a.as_str() == app);
    println!(
        "{:<32} {:<16} {:<6} {:<12} status",
        "kid", "app", "alg", "created"
    );
    for key in set.keys.iter().filter(|k| keep(&k.app)) {
        let status = match key.revoked {
            Some(at) => format!("revoked {}", day(at)),
            None => "active".to_owned(),
        };
        println!(
            "{:<32} {:<16} {:<6} {:<12} {status}",
            key.kid,
            key.app.as_str(),
            key.alg.to_string(),
            day(key.created)
        );
    }
    for issuer in set.issuers.iter().filter(|i| keep(&i.app)) {
        println!(
            "issuer {} for app {} (audience {})",
            issuer.issuer,
            issuer.app,
            issuer.audience.join(", ")
        );
    }
}

/// A date as YYYY-MM-DD, from seconds since the epoch.
fn day(secs: u64) -> String {
    humantime::format_rfc3339_seconds(std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs))
        .to_string()
        .chars()
        .take(10)
        .collect()
}
