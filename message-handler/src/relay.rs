//! Messages functions publish: each answer's `publish` list, committed to the same app as from
//! the function (`$fn:NAME`: no token can pose as it), through the target channel's own
//! functions, whose publications go the same way one hop further. A hop beyond
//! [`MAX_HOPS`], a reserved channel, or one over the message's budget of
//! [`MAX_PUBLICATIONS`] × [`MAX_HOPS`] is refused and counted; a failure is logged and counted.
//! None of it changes the answer to the publish that led to them.

use std::future::Future;
use std::pin::Pin;

use echo_core::channel::AppId;
use echo_core::function::relay::Relayed;
use echo_core::function::{MAX_HOPS, MAX_PUBLICATIONS, Publication};
use echo_core::ids::{ConnectionId, random_hex};
use echo_core::metrics::Metric;
use echo_core::protocol::ServerFrame;

use crate::deps::Deps;
use crate::publish::{Author, Prepared, commit, prepare};

/// The sender recorded on a message function `name` published.
pub(crate) fn sender(name: &str) -> String {
    format!("$fn:{name}")
}

/// Publishes what a connection's `onConnect` functions published, handed over by the connect
/// handler (see [`echo_core::function::relay`]), and what that leads to.
pub async fn publish_relayed(deps: &Deps, relayed: Relayed) {
    let (app, origin) = (relayed.app.clone(), relayed.origin.clone());
    relay(deps, &origin, &app, relayed.into_publications()).await;
}

/// Publishes what functions of one message published (its first hop), and what that leads to.
pub(crate) async fn relay(
    deps: &Deps,
    origin: &ConnectionId,
    app: &AppId,
    publications: Vec<(String, Publication)>,
) {
    let mut budget = MAX_PUBLICATIONS * MAX_HOPS as usize;
    hop(deps, origin, app, 1, publications, &mut budget).await;
}

fn hop<'a>(
    deps: &'a Deps,
    origin: &'a ConnectionId,
    app: &'a AppId,
    depth: u32,
    publications: Vec<(String, Publication)>,
    budget: &'a mut usize,
) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>> {
    Box::pin(async move {
        for (function, publication) in publications {
            let channel = &publication.channel;
            let refusal = if depth > MAX_HOPS {
                Some(format!(
                    "more than {MAX_HOPS} hops of messages functions publish"
                ))
            } else if *budget == 0 {
                Some(format!(
                    "more than {} messages published by functions for one message",
                    MAX_PUBLICATIONS * MAX_HOPS as usize
                ))
            } else if channel.is_reserved() {
                Some(format!("{channel} is reserved"))
            } else {
                None
            };
            if let Some(why) = refusal {
                tracing::warn!(connection_id = %origin, function, channel = %channel, why, "a function's publish was refused");
                deps.metrics.record(Metric::FunctionPublishRefused {
                    function: &function,
                });
                continue;
            }
            *budget -= 1;
            let from = sender(&function);
            let author = Author { app, from: &from };
            let msg_id = random_hex(8);
            let prepared = prepare(
                deps,
                origin,
                author,
                channel,
                publication.data,
                msg_id.clone(),
                None,
            )
            .await;
            let further = match prepared {
                Ok(Prepared::Commit(key, message, after, further)) => {
                    let committed = commit(deps, origin, channel, key, message, msg_id, after)
                        .await
                        .map(|r| async { r.resolve().await });
                    match committed {
                        Ok(reply) => {
                            if let Some(ServerFrame::Error(e)) = reply.await {
                                tracing::warn!(function, channel = %channel, error = %e.message, "a function's publish failed");
                                deps.metrics.record(Metric::FunctionPublishRefused {
                                    function: &function,
                                });
                            }
                        }
                        Err(e) => {
                            tracing::warn!(function, channel = %channel, error = %e.message, "a function's publish failed");
                            deps.metrics.record(Metric::FunctionPublishRefused {
                                function: &function,
                            });
                        }
                    }
                    further
                }
                Ok(Prepared::Answered(_, further)) => further,
                Err(e) => {
                    tracing::warn!(function, channel = %channel, error = %e.message, "a function's publish was refused");
                    deps.metrics.record(Metric::FunctionPublishRefused {
                        function: &function,
                    });
                    Vec::new()
                }
            };
            hop(deps, origin, app, depth + 1, further, budget).await;
        }
    })
}
