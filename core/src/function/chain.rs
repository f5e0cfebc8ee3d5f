//! A channel's functions, run one after another on a message, each under the channel's timeout
//! and all of them within [`MAX_CHAIN_MS`], with its failure policy applied to the first failure
//! (running out of the chain's time is one).

use std::time::{Duration, Instant};

use serde_json::Value;

use super::{FunctionInput, FunctionInvoker, FunctionOutput, InvokeError, Publication};
use crate::associations::{ChannelPolicy, MAX_CHAIN_MS, OnError};
use crate::metrics::{Metric, Metrics};

/// How a chain ended. Delivered or dropped, the messages its functions published elsewhere
/// come with it, each with the function that published it.
#[derive(Debug)]
pub enum ChainOutcome {
    /// Deliver this data. `degraded` names the function that failed when the policy is `pass`.
    Deliver {
        data: Value,
        degraded: Option<(String, InvokeError)>,
        publish: Vec<(String, Publication)>,
    },
    Dropped {
        function: String,
        reason: Option<String>,
        publish: Vec<(String, Publication)>,
    },
    /// A function failed under the `reject` policy: deliver nothing.
    Failed {
        function: String,
        error: InvokeError,
    },
}

/// One function's run, for metrics and logs.
#[derive(Debug, Clone)]
pub struct FunctionRun {
    pub function: String,
    pub elapsed: Duration,
    pub ok: bool,
}

impl FunctionRun {
    /// Records each of `runs` as a [`Metric::FunctionRun`].
    pub fn record_all(runs: &[FunctionRun], metrics: &dyn Metrics) {
        for run in runs {
            metrics.record(Metric::FunctionRun {
                function: &run.function,
                elapsed_ms: run.elapsed.as_secs_f64() * 1000.0,
                ok: run.ok,
            });
        }
    }
}

/// How long the next function of a chain (or hook) may take: its own timeout, or what is left of
/// the chain's [`MAX_CHAIN_MS`] budget, with the error that running out of it is.
pub(crate) fn next_limit(
    deadline: tokio::time::Instant,
    timeout: Duration,
) -> (Duration, InvokeError) {
    let left = deadline.saturating_duration_since(tokio::time::Instant::now());
    if left < timeout {
        (
            left,
            InvokeError::ChainOutOfTime(Duration::from_millis(MAX_CHAIN_MS)),
        )
    } else {
        (timeout, InvokeError::TimedOut(timeout))
    }
}

/// Runs `policy`'s functions in order on `input`, each under the policy's timeout, applying
/// `on_error` to the first failure. `max_bytes` bounds the encoded size of each function's data.
pub async fn run_chain(
    invoker: &dyn FunctionInvoker,
    policy: &ChannelPolicy,
    mut input: FunctionInput,
    max_bytes: usize,
    runs: &mut Vec<FunctionRun>,
) -> ChainOutcome {
    let deadline = tokio::time::Instant::now() + Duration::from_millis(MAX_CHAIN_MS);
    let mut published = Vec::new();
    for name in &policy.functions {
        let started = Instant::now();
        let (limit, late) = next_limit(deadline, policy.timeout);
        let result = match tokio::time::timeout(limit, invoker.invoke(name, &input)).await {
            Ok(r) => r,
            Err(_) => Err(late),
        }
        .and_then(|out| check_size(out, max_bytes))
        .and_then(|out| check_unchanged(out, policy, &input.message.data))
        .and_then(check_publications);
        runs.push(FunctionRun {
            function: name.clone(),
            elapsed: started.elapsed(),
            ok: result.is_ok(),
        });
        match result {
            Ok(FunctionOutput::Continue { data, publish }) => {
                input.message.data = data;
                published.extend(publish.into_iter().map(|p| (name.clone(), p)));
            }
            Ok(FunctionOutput::Drop { reason, publish }) => {
                published.extend(publish.into_iter().map(|p| (name.clone(), p)));
                return ChainOutcome::Dropped {
                    function: name.clone(),
                    reason,
                    publish: published,
                };
            }
            Err(error) => {
                tracing::warn!(function = %name, channel = %input.channel, error = %error, "function failed");
                return match policy.on_error {
                    OnError::Reject => ChainOutcome::Failed {
                        function: name.clone(),
                        error,
                    },
                    OnError::Pass => ChainOutcome::Deliver {
                        data: input.message.data,
                        degraded: Some((name.clone(), error)),
                        publish: published,
                    },
                };
            }
        }
    }
    ChainOutcome::Deliver {
        data: input.message.data,
        degraded: None,
        publish: published,
    }
}

/// At most [`MAX_PUBLICATIONS`](super::MAX_PUBLICATIONS) messages to publish elsewhere per answer.
fn check_publications(out: FunctionOutput) -> Result<FunctionOutput, InvokeError> {
    Publication::check_count(out.publications())?;
    Ok(out)
}

/// On an encrypted channel a function may pass or drop the message, not change its data (it
/// sees ciphertext: a change could only break it).
fn check_unchanged(
    out: FunctionOutput,
    policy: &ChannelPolicy,
    data: &serde_json::Value,
) -> Result<FunctionOutput, InvokeError> {
    match &out {
        FunctionOutput::Continue { data: changed, .. } if policy.encrypted && changed != data => {
            Err(InvokeError::Failed(
                "on an encrypted channel a function may pass or drop a message, not change it"
                    .into(),
            ))
        }
        _ => Ok(out),
    }
}

fn check_size(out: FunctionOutput, max: usize) -> Result<FunctionOutput, InvokeError> {
    if let FunctionOutput::Continue { data, .. } = &out {
        let size = serde_json::to_vec(data)
            .map(|v| v.len())
            .unwrap_or(usize::MAX);
        if size > max {
            return Err(InvokeError::OutputTooLarge { size, max });
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use async_trait::async_trait;

    use crate::associations::ChannelPolicy;
    use crate::channel::{AppId, ChannelName};
    use crate::function::{FunctionInput, FunctionMessage};
    use serde_json::json;

    struct Fns;

    #[async_trait]
    impl FunctionInvoker for Fns {
        async fn invoke(
            &self,
            name: &str,
            input: &FunctionInput,
        ) -> Result<FunctionOutput, InvokeError> {
            let text = input.message.data.as_str().unwrap_or_default();
            match name {
                "upper" => Ok(FunctionOutput::cont(json!(text.to_uppercase()))),
                "bang" => Ok(FunctionOutput::cont(json!(format!("{text}!")))),
                "drop" => Ok(FunctionOutput::drop("no")),
                "fail" => Err(InvokeError::Failed("boom".into())),
                "huge" => Ok(FunctionOutput::cont(json!("x".repeat(100)))),
                "hang" => std::future::pending().await,
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(10)).await;
                    Ok(FunctionOutput::cont(json!(format!("{text}."))))
                }
                other => Err(InvokeError::Unknown(other.into())),
            }
        }

        async fn call(&self, name: &str, _: &Value) -> Result<Value, InvokeError> {
            Err(InvokeError::Unknown(name.into()))
        }
        fn knows(&self, _: &str) -> bool {
            true
        }
    }

    fn input() -> FunctionInput {
        FunctionInput {
            app: AppId::new("a").unwrap(),
            channel: ChannelName::new("c").unwrap(),
            message: FunctionMessage {
                id: "1".into(),
                data: json!("hi"),
                from: "u".into(),
                ts: 0,
                seq: None,
            },
        }
    }

    async fn run(fns: &[&str], on_error: OnError) -> ChainOutcome {
        let policy = ChannelPolicy {
            functions: fns.iter().map(|s| s.to_string()).collect(),
            after_publish: Vec::new(),
            on_subscribe: Vec::new(),
            after_presence: Vec::new(),
            encrypted: false,
            on_error,
            timeout: Duration::from_millis(50),
        };
        run_chain(&Fns, &policy, input(), 64, &mut Vec::new()).await
    }

    #[tokio::test]
    async fn on_an_encrypted_channel_functions_pass_or_drop_but_do_not_change() {
        let policy = |fns: &[&str]| ChannelPolicy {
            functions: fns.iter().map(|s| s.to_string()).collect(),
            after_publish: Vec::new(),
            on_subscribe: Vec::new(),
            after_presence: Vec::new(),
            encrypted: true,
            on_error: OnError::Pass,
            timeout: Duration::from_millis(50),
        };
        match run_chain(&Fns, &policy(&["upper"]), input(), 64, &mut Vec::new()).await {
            ChainOutcome::Deliver {
                data,
                degraded: Some((f, InvokeError::Failed(why))),
                ..
            } => {
                assert_eq!(
                    (data, f.as_str()),
                    (json!("hi"), "upper"),
                    "the data as it came"
                );
                assert!(why.contains("not change"), "{why}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run_chain(&Fns, &policy(&["drop"]), input(), 64, &mut Vec::new()).await,
            ChainOutcome::Dropped { .. }
        ));
    }

    #[tokio::test]
    async fn functions_run_in_order() {
        match run(&["upper", "bang"], OnError::Reject).await {
            ChainOutcome::Deliver {
                data,
                degraded: None,
                ..
            } => assert_eq!(data, json!("HI!")),
            other => panic!("{other:?}"),
        }
        match run(&["bang", "upper"], OnError::Reject).await {
            ChainOutcome::Deliver { data, .. } => assert_eq!(data, json!("HI!")),
            other => panic!("{other:?}"),
        }
    }

    /// Three functions of 10 s each under a 20 s timeout: the third runs out of the chain's
    /// 25 s, and the channel's policy decides what happens then.
    #[tokio::test(start_paused = true)]
    async fn the_chain_as_a_whole_is_bounded() {
        let policy = |on_error| ChannelPolicy {
            functions: vec!["slow".into(), "slow".into(), "slow".into()],
            after_publish: Vec::new(),
            on_subscribe: Vec::new(),
            after_presence: Vec::new(),
            encrypted: false,
            on_error,
            timeout: Duration::from_secs(20),
        };
        let started = tokio::time::Instant::now();
        let outcome = run_chain(&Fns, &policy(OnError::Reject), input(), 64, &mut Vec::new()).await;
        assert_eq!(started.elapsed(), Duration::from_millis(MAX_CHAIN_MS));
        assert!(
            matches!(
                outcome,
                ChainOutcome::Failed {
                    error: InvokeError::ChainOutOfTime(_),
                    ..
                }
            ),
            "{outcome:?}"
        );
        match run_chain(&Fns, &policy(OnError::Pass), input(), 64, &mut Vec::new()).await {
            ChainOutcome::Deliver {
                data,
                degraded: Some((_, InvokeError::ChainOutOfTime(_))),
                ..
            } => assert_eq!(data, json!("hi..")),
            other => panic!("{other:?}"),
        }
    }

    #[tokio::test]
    async fn drop_stops_the_chain() {
        assert!(matches!(
            run(&["upper", "drop", "bang"], OnError::Pass).await,
            ChainOutcome::Dropped { function, reason: Some(r), .. } if function == "drop" && r == "no"
        ));
    }

    #[tokio::test(start_paused = true)]
    async fn failures_follow_the_policy() {
        assert!(matches!(
            run(&["upper", "fail"], OnError::Reject).await,
            ChainOutcome::Failed { function, .. } if function == "fail"
        ));
        match run(&["upper", "hang", "bang"], OnError::Pass).await {
            ChainOutcome::Deliver {
                data,
                degraded: Some((f, InvokeError::TimedOut(_))),
                ..
            } => {
                assert_eq!(data, json!("HI"));
                assert_eq!(f, "hang");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            run(&["huge"], OnError::Reject).await,
            ChainOutcome::Failed {
                error: InvokeError::OutputTooLarge { .. },
                ..
            }
        ));
    }
}
