//! Schedules on the local edge: each app's scheduled functions at their own period (at least
//! 1 s), from the associations in force, looked at every second; a schedule runs first one
//! period after it appears. In faithful mode the edge sends the minute tick to the message
//! handler Lambda instead, as EventBridge does on AWS.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use echo_core::channel::AppId;
use tokio_util::sync::CancellationToken;

use crate::handlers::Handlers;
use crate::state::State;

/// How often faithful mode sends the tick, as the stack's rule does.
const MINUTE: Duration = Duration::from_secs(60);

/// Runs the schedules until shutdown.
pub(crate) async fn run(state: Arc<State>, shutdown: CancellationToken) {
    let period = match &state.handlers {
        Handlers::InProcess(_) => Duration::from_secs(1),
        Handlers::Lambda { .. } => MINUTE,
    };
    let mut every = tokio::time::interval(period);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    every.tick().await;
    // When each schedule last ran (or was first seen), by app, function and period.
    let mut last: HashMap<(AppId, String, Duration), u64> = HashMap::new();
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = every.tick() => match &state.handlers {
                Handlers::InProcess(_) => run_due(&state, &mut last).await,
                Handlers::Lambda { .. } => {
                    if let Err(e) = state.handlers.tick().await {
                        tracing::warn!(error = %e, "the schedules' tick failed");
                    }
                }
            },
        }
    }
}

/// Starts each schedule whose period has passed since it last ran.
async fn run_due(state: &Arc<State>, last: &mut HashMap<(AppId, String, Duration), u64>) {
    let Handlers::InProcess(handlers) = &state.handlers else {
        return;
    };
    let associations = match handlers.message.associations.current().await {
        Ok(a) => a,
        Err(e) => {
            tracing::warn!(error = %e, "could not load associations for the schedules");
            return;
        }
    };
    let now = state.clock.now_ms();
    let schedules = associations.schedules();
    last.retain(|(app, function, every), _| {
        schedules
            .iter()
            .any(|(a, s)| a == app && &s.function == function && s.every == *every)
    });
    for (app, schedule) in schedules {
        let key = (app.clone(), schedule.function.clone(), schedule.every);
        let Some(&ran) = last.get(&key) else {
            last.insert(key, now);
            continue;
        };
        if now.saturating_sub(ran) < schedule.every.as_millis() as u64 {
            continue;
        }
        last.insert(key, now);
        let state = state.clone();
        tokio::spawn(async move {
            if let Handlers::InProcess(handlers) = &state.handlers {
                message_handler::schedule::run(&handlers.message, &app, &schedule, now).await;
            }
        });
    }
}
