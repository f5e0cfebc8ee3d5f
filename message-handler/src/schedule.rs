//! Schedules: an app's functions run every so often, each answering `{"publish":[...]}` (or
//! `{}`), its messages published as from the function (see `relay`). On AWS a minute tick (an
//! EventBridge rule's `{"tick":{}}`) runs every schedule due that minute; the local edge runs
//! each at its own period.

use echo_core::associations::Schedule;
use echo_core::channel::AppId;
use echo_core::function::{InvokeError, Publication, ScheduledOutput};
use echo_core::hook::ScheduleInput;
use echo_core::ids::ConnectionId;
use echo_core::metrics::Metric;
use serde::{Deserialize, Serialize};

use crate::deps::Deps;

/// The minute tick's event: `{"tick":{}}`.
#[derive(Debug, Default, Clone, Copy, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TickEvent {}

/// What a tick ran.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ticked {
    /// Schedules whose function ran and answered.
    pub ran: usize,
    /// Schedules whose function failed, timed out or answered something else.
    pub failed: usize,
}

/// Runs every schedule due at the minute of `now_ms` (the AWS tick).
pub async fn tick(deps: &Deps, now_ms: u64) -> Ticked {
    let associations = match deps.associations.current().await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "could not load associations for the schedules");
            return Ticked::default();
        }
    };
    let due: Vec<(AppId, Schedule)> = associations
        .schedules()
        .into_iter()
        .filter(|(_, s)| s.due_at_minute(now_ms))
        .collect();
    let runs = due.iter().map(|(app, s)| run(deps, app, s, now_ms));
    let mut ticked = Ticked::default();
    for ok in futures_util::future::join_all(runs).await {
        if ok {
            ticked.ran += 1;
        } else {
            ticked.failed += 1;
        }
    }
    ticked
}

/// Runs `app`'s scheduled function once, as at `at_ms`, and publishes what it answers; whether
/// it answered.
pub async fn run(deps: &Deps, app: &AppId, schedule: &Schedule, at_ms: u64) -> bool {
    let function = &schedule.function;
    let started = std::time::Instant::now();
    let input = serde_json::to_value(ScheduleInput::new(app, at_ms)).unwrap_or_default();
    let answer = tokio::time::timeout(schedule.timeout, deps.invoker.call(function, &input))
        .await
        .unwrap_or(Err(InvokeError::TimedOut(schedule.timeout)))
        .and_then(|v| {
            serde_json::from_value::<ScheduledOutput>(v).map_err(|e| {
                InvokeError::InvalidOutput(format!(
                    "a scheduled function answers {{\"publish\":[...]}} or {{}}: {e}"
                ))
            })
        })
        .and_then(|out| Publication::check_count(&out.publish).map(|()| out));
    deps.metrics.record(Metric::FunctionRun {
        function,
        elapsed_ms: started.elapsed().as_secs_f64() * 1000.0,
        ok: answer.is_ok(),
    });
    match answer {
        Ok(out) => {
            let origin = ConnectionId::from(format!("$schedule:{app}:{function}").as_str());
            let publications = out
                .publish
                .into_iter()
                .map(|p| (function.clone(), p))
                .collect();
            crate::relay::relay(deps, &origin, app, publications).await;
            true
        }
        Err(e) => {
            tracing::warn!(app = %app, function, error = %e, "scheduled function failed");
            false
        }
    }
}
