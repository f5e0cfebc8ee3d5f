//! Hooks: functions that decide at other moments than a publish. `onConnect` (per app) runs after
//! a connection's token verifies and before it is accepted; `onSubscribe` (per channel) runs for
//! every `subscribe` the token allows. Each answers
//!
//! ```json
//! {"action":"allow"}
//! {"action":"allow","channels":{"subscribe":["team-*"],"publish":["team-*"]}}
//! {"action":"deny","reason":"not a member of team-blue"}
//! ```
//!
//! (`channels`, `onConnect` only: the connection's permissions in place of its token's.) Either
//! answer may add `"publish":[{"channel":C,"data":D},...]` (at most
//! [`MAX_PUBLICATIONS`](crate::function::MAX_PUBLICATIONS)), published as from the function,
//! as a message function's are. A hook's functions run in order, each under its `timeoutMs` and all within [`MAX_CHAIN_MS`]; the first
//! deny decides. A function that fails or runs out of time applies its `onError`: `reject` (the
//! default) denies, `pass` goes on as if it had allowed.
//!
//! This file is the contract and the runner; [`input`] has what each hook receives.

pub mod input;

use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::associations::{HookPolicy, MAX_CHAIN_MS, OnError};
use crate::auth::Permissions;
use crate::function::chain::next_limit;
use crate::function::{FunctionInvoker, FunctionRun, InvokeError, Publication};

pub use input::{ConnectInput, HookUser, ScheduleInput, SubscribeInput};

/// What a hook function answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "lowercase", deny_unknown_fields)]
pub enum HookAnswer {
    Allow {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        channels: Option<Permissions>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publish: Vec<Publication>,
    },
    Deny {
        #[serde(default)]
        reason: Option<String>,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        publish: Vec<Publication>,
    },
}

impl HookAnswer {
    fn publications(&self) -> &[Publication] {
        match self {
            Self::Allow { publish, .. } | Self::Deny { publish, .. } => publish,
        }
    }
}

/// What a hook decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Go ahead; `channels`, when a function gave them, replace the token's permissions.
    Allow { channels: Option<Permissions> },
    /// Refuse, saying why.
    Deny { reason: String },
}

/// Runs `policy`'s functions on `input` in order; `runs` gets each function's run, and
/// `published` the messages the functions that answered publish, each with its function.
pub async fn decide(
    invoker: &dyn FunctionInvoker,
    policy: &HookPolicy,
    input: &Value,
    runs: &mut Vec<FunctionRun>,
    published: &mut Vec<(String, Publication)>,
) -> Decision {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(MAX_CHAIN_MS);
    let mut channels = None;
    for name in &policy.functions {
        let started = Instant::now();
        let (limit, late) = next_limit(deadline, policy.timeout);
        let answer = match tokio::time::timeout(limit, invoker.call(name, input)).await {
            Ok(r) => r,
            Err(_) => Err(late),
        }
        .and_then(|v| {
            serde_json::from_value::<HookAnswer>(v).map_err(|e| {
                InvokeError::InvalidOutput(format!(
                    "a hook answers {{\"action\":\"allow\"}} or {{\"action\":\"deny\",\"reason\":...}}: {e}"
                ))
            })
        })
        .and_then(|a| Publication::check_count(a.publications()).map(|()| a));
        runs.push(FunctionRun {
            function: name.clone(),
            elapsed: started.elapsed(),
            ok: answer.is_ok(),
        });
        match answer {
            Ok(HookAnswer::Allow {
                channels: given,
                publish,
            }) => {
                published.extend(publish.into_iter().map(|p| (name.clone(), p)));
                if given.is_some() {
                    channels = given;
                }
            }
            Ok(HookAnswer::Deny { reason, publish }) => {
                published.extend(publish.into_iter().map(|p| (name.clone(), p)));
                return Decision::Deny {
                    reason: reason.unwrap_or_else(|| format!("denied by {name}")),
                };
            }
            Err(error) => {
                tracing::warn!(function = %name, error = %error, "hook function failed");
                if policy.on_error == OnError::Reject {
                    return Decision::Deny {
                        reason: format!("{name} failed: {error}"),
                    };
                }
            }
        }
    }
    Decision::Allow { channels }
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;
    use serde_json::json;

    use crate::function::{FunctionInput, FunctionOutput};

    struct Hooks;

    #[async_trait]
    impl FunctionInvoker for Hooks {
        async fn invoke(
            &self,
            name: &str,
            _: &FunctionInput,
        ) -> Result<FunctionOutput, InvokeError> {
            Err(InvokeError::Unknown(name.to_owned()))
        }

        async fn call(&self, name: &str, input: &Value) -> Result<Value, InvokeError> {
            match name {
                "allow" => Ok(json!({"action": "allow"})),
                "grant" => Ok(json!({"action": "allow", "channels": {"subscribe": ["team-*"]}})),
                "deny" => Ok(
                    json!({"action": "deny", "reason": format!("no {}", input["user"]["sub"].as_str().unwrap_or_default())}),
                ),
                "silent" => Ok(json!({"action": "deny"})),
                "announce" => Ok(
                    json!({"action": "allow", "publish": [{"channel": "lobby", "data": {"text": "hi"}}]}),
                ),
                "flood" => Ok(
                    json!({"action": "deny", "publish": vec![json!({"channel": "lobby", "data": 1}); 11]}),
                ),
                "garbled" => Ok(json!({"action": "maybe"})),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(5)).await;
                    Ok(json!({"action": "allow"}))
                }
                _ => Err(InvokeError::Failed("boom".into())),
            }
        }

        fn knows(&self, _: &str) -> bool {
            true
        }
    }

    fn policy(functions: &[&str], on_error: OnError) -> HookPolicy {
        HookPolicy {
            functions: functions.iter().map(|f| (*f).to_owned()).collect(),
            on_error,
            timeout: Duration::from_millis(50),
        }
    }

    async fn run(functions: &[&str], on_error: OnError) -> Decision {
        let input = json!({"hook": "connect", "user": {"sub": "eve"}});
        decide(
            &Hooks,
            &policy(functions, on_error),
            &input,
            &mut Vec::new(),
            &mut Vec::new(),
        )
        .await
    }

    #[tokio::test]
    async fn publications_of_each_answer_are_gathered_up_to_the_limit() {
        let input = json!({"hook": "subscribe", "user": {"sub": "eve"}});
        let mut published = Vec::new();
        let decision = decide(
            &Hooks,
            &policy(&["announce", "deny", "announce"], OnError::Reject),
            &input,
            &mut Vec::new(),
            &mut published,
        )
        .await;
        assert!(matches!(decision, Decision::Deny { .. }), "{decision:?}");
        assert_eq!(published.len(), 1, "the functions after the deny never ran");
        assert_eq!(published[0].0, "announce");
        assert_eq!(published[0].1.channel.as_str(), "lobby");

        let mut published = Vec::new();
        let Decision::Deny { reason } = decide(
            &Hooks,
            &policy(&["flood"], OnError::Reject),
            &input,
            &mut Vec::new(),
            &mut published,
        )
        .await
        else {
            panic!("11 publications are a failure")
        };
        assert!(reason.contains("at most 10"), "{reason}");
        assert!(published.is_empty());
    }

    #[tokio::test]
    async fn the_first_deny_decides_and_the_last_channels_given_stand() {
        assert_eq!(
            run(&["allow"], OnError::Reject).await,
            Decision::Allow { channels: None }
        );
        let granted = run(&["grant", "allow"], OnError::Reject).await;
        let Decision::Allow { channels: Some(p) } = granted else {
            panic!("{granted:?}")
        };
        assert_eq!(p.subscribe.unwrap()[0].as_str(), "team-*");
        assert_eq!(
            run(&["allow", "deny", "grant"], OnError::Reject).await,
            Decision::Deny {
                reason: "no eve".into()
            }
        );
        assert_eq!(
            run(&["silent"], OnError::Reject).await,
            Decision::Deny {
                reason: "denied by silent".into()
            }
        );
    }

    #[tokio::test]
    async fn failures_deny_under_reject_and_are_passed_over_under_pass() {
        for broken in ["broken", "slow", "garbled"] {
            let Decision::Deny { reason } = run(&[broken], OnError::Reject).await else {
                panic!("{broken} under reject")
            };
            assert!(reason.starts_with(&format!("{broken} failed")), "{reason}");
            assert_eq!(
                run(&[broken, "grant"], OnError::Pass).await,
                run(&["grant"], OnError::Pass).await,
                "{broken} under pass"
            );
        }
    }
}
