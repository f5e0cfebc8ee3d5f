//! `echoctl publish`: a message from a script, through Echo's HTTP API with an admin token.

use std::path::PathBuf;

use clap::Args;
use echo_core::auth::{Claims, Role};
use echo_core::channel::{AppId, ChannelName};
use echo_core::clock::{Clock, SystemClock};

#[derive(Args)]
pub struct PublishArgs {
    /// The app.
    app: String,
    /// The channel.
    channel: String,
    /// The message's data: any JSON (a bare word is not JSON: quote strings, '"hi"').
    data: String,
    /// The message id (default: Echo makes one up).
    #[arg(long)]
    id: Option<String>,
    /// The HTTP API: the local edge's client address, or the stack's HttpApiUrl.
    #[arg(
        long,
        default_value = "http://127.0.0.1:8080",
        env = "ECHO_HTTP_ENDPOINT"
    )]
    endpoint: String,
    /// Where `echoctl dev` keeps its generated secret (used when ECHO_JWT_SECRET is unset).
    #[arg(long, default_value = echo_edge::settings::DEFAULT_DATA_DIR, env = "ECHO_DATA_DIR")]
    data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the data is not JSON ({0}); quote a string: '\"hello\"'")]
    Data(serde_json::Error),
    #[error("cannot reach {url}: {source} (is `echoctl dev` running, or is --endpoint right?)")]
    Unreachable { url: String, source: reqwest::Error },
    #[error("refused ({status}): {code}: {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
}

pub fn run(args: PublishArgs) -> crate::Result {
    let app = AppId::new(args.app)?;
    let channel = ChannelName::new(args.channel)?;
    let data: serde_json::Value = serde_json::from_str(&args.data).map_err(PublishError::Data)?;
    let now = SystemClock.now_secs();
    let claims = Claims::new(app.clone(), "echoctl", now + 60)
        .with_role(Role::Admin)
        .issued_at(now);
    let token = crate::secrets::signer(&args.data_dir, &app)?.issue(&claims)?;
    let url = format!(
        "{}/v1/apps/{}/channels/{}/messages",
        args.endpoint.trim_end_matches('/'),
        app.as_str(),
        channel.as_str()
    );
    let mut body = serde_json::json!({ "data": data });
    if let Some(id) = args.id {
        body["id"] = id.into();
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = runtime.block_on(async {
        let response = reqwest::Client::new()
            .post(&url)
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await
            .map_err(|source| PublishError::Unreachable {
                url: url.clone(),
                source,
            })?;
        let status = response.status().as_u16();
        let answer: serde_json::Value = response.json().await.unwrap_or_default();
        Ok::<_, PublishError>((status, answer))
    })?;
    if status != 200 {
        let field = |k: &str| answer[k].as_str().unwrap_or("?").to_owned();
        return Err(PublishError::Refused {
            status,
            code: field("code"),
            message: field("message"),
        }
        .into());
    }
    println!("{answer}");
    Ok(())
}
