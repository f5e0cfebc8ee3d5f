//! Warming functions up: each function the associations name is invoked once, before the edge
//! says ready, with a sample event of what the associations have it do (a message, or a hook's
//! input). `cargo lambda watch` starts a function's process at its first invocation, which takes
//! about a second here against tens of milliseconds for a cold start on Lambda, so without this a
//! client's first message could outlast a channel's `timeoutMs`.

use std::time::Duration;

use serde_json::Value;

use super::hook::Hook;

/// The event of a message function.
const MESSAGE: &str = r#"{"app":"my-app","channel":"warm-up","message":{"channel":"warm-up","seq":1,"id":"warm-up","data":{"text":"warm-up"},"from":"warm-up","ts":0}}"#;

/// How long one function may take to start and answer.
const TIMEOUT: Duration = Duration::from_secs(120);

/// Each function `associations` names, with a sample event of the first thing they have it do.
pub fn events(associations: &str) -> Vec<(String, &'static str)> {
    let doc: Value = serde_json::from_str(associations).unwrap_or_default();
    let mut found: Vec<(String, &'static str)> = Vec::new();
    let mut add = |names: &Value, event: &'static str| {
        for name in names
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
        {
            if !found.iter().any(|(n, _)| n == name) {
                found.push((name.to_owned(), event));
            }
        }
    };
    for app in doc["apps"]
        .as_object()
        .into_iter()
        .flatten()
        .map(|(_, a)| a)
    {
        add(&app["onConnect"], Hook::Connect.sample());
        let scheduled: Vec<Value> = app["schedules"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| s["function"].clone())
            .collect();
        add(&Value::Array(scheduled), Hook::Schedule.sample());
        for channel in app["channels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(_, c)| c)
        {
            add(&channel["functions"], MESSAGE);
            add(&channel["afterPublish"], MESSAGE);
            add(&channel["onSubscribe"], Hook::Subscribe.sample());
            add(&channel["afterPresence"], Hook::Presence.sample());
        }
    }
    found
}

/// Invokes `name` once at the Lambda Invoke API `endpoint` with `event`; what went wrong, if
/// anything.
pub async fn invoke(endpoint: &str, name: &str, event: &str) -> Result<(), String> {
    let answer = reqwest::Client::new()
        .post(format!(
            "{endpoint}/2015-03-31/functions/{name}/invocations"
        ))
        .body(event.to_owned())
        .timeout(TIMEOUT)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let failed = answer.headers().contains_key("x-amz-function-error");
    let status = answer.status();
    match status.is_success() && !failed {
        true => Ok(()),
        false => {
            let body = answer.text().await.unwrap_or_default();
            Err(format!(
                "{status}: {}",
                body.chars().take(300).collect::<String>()
            ))
        }
    }
}

/// Invokes each of `calls` (name, endpoint, event) once, all at once; the names of those that
/// failed, with what went wrong.
pub async fn invoke_all(calls: Vec<(String, String, &'static str)>) -> Vec<(String, String)> {
    let mut running = tokio::task::JoinSet::new();
    for (name, endpoint, event) in calls {
        running.spawn(async move {
            let outcome = invoke(&endpoint, &name, event).await;
            (name, outcome)
        });
    }
    let mut failed = Vec::new();
    while let Some(done) = running.join_next().await {
        match done {
            Ok((_, Ok(()))) => {}
            Ok((name, Err(e))) => failed.push((name, e)),
            Err(e) => failed.push(("a warm-up".to_owned(), e.to_string())),
        }
    }
    failed
}

/// Warms up those of `served` (name, endpoint) that `associations` name, all at once; says
/// which failed.
pub async fn warm(served: &[(String, String)], associations: &str) {
    let calls = events(associations)
        .into_iter()
        .filter_map(|(name, event)| {
            let (_, endpoint) = served.iter().find(|(n, _)| *n == name)?;
            Some((name, endpoint.clone(), event))
        })
        .collect();
    for (name, e) in invoke_all(calls).await {
        eprintln!("warning: {name} failed its warm-up with a sample event ({e})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_function_is_warmed_for_the_first_thing_it_does() {
        let associations = r#"{"apps":{"a":{
            "onConnect":["admit"],
            "schedules":[{"function":"ticker","every":"1m"}],
            "channels":{
                "room":{"functions":["tidy","admit"],"afterPublish":["audit"]},
                "lobby":{"onSubscribe":["doorman"],"afterPresence":["register"]}
            }}}}"#;
        let events = events(associations);
        let event = |name: &str| events.iter().find(|(n, _)| n == name).map(|(_, e)| *e);
        assert_eq!(events.len(), 6);
        assert_eq!(event("admit"), Some(Hook::Connect.sample()));
        assert_eq!(event("ticker"), Some(Hook::Schedule.sample()));
        assert_eq!(event("tidy"), Some(MESSAGE));
        assert_eq!(event("audit"), Some(MESSAGE));
        assert_eq!(event("doorman"), Some(Hook::Subscribe.sample()));
        assert_eq!(event("register"), Some(Hook::Presence.sample()));
        assert!(super::events("not json").is_empty());
    }
}
