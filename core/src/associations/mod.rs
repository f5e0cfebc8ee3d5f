//! Associations: which functions run, in which order, on which channels.
//!
//! ```json
//! {"apps": {"chat-demo": {"channels": {
//!     "angry":   {"functions": ["angry", "emojify"], "onError": "reject", "timeoutMs": 1000},
//!     "room-*":  {"functions": ["profanity"], "onError": "pass"},
//!     "secret":  {"encrypted": true, "metadataFunctions": ["gate"]}
//! }}}}
//! ```
//!
//! An `encrypted` channel carries only end-to-end encrypted envelopes (see [`crate::envelope`]):
//! functions there would see ciphertext, so `functions` and `afterPublish` are refused, and
//! `metadataFunctions` (which may pass or drop a message by its sender, channel, time or size,
//! but not change it) take their place.
//!
//! Hooks (see [`crate::hook`]): an app's `onConnect` functions decide whether a connection is
//! accepted (and may hand it its permissions), a channel's `onSubscribe` functions whether a
//! subscription is; at most [`MAX_HOOK_FUNCTIONS`] each. The app's `onError` and `timeoutMs` apply
//! to `onConnect`, the channel's to `onSubscribe`:
//!
//! ```json
//! {"apps": {"chat-demo": {
//!     "onConnect": ["admit"], "onError": "reject", "timeoutMs": 1000,
//!     "channels": {"team-*": {"functions": ["profanity"], "onSubscribe": ["member-check"]}}
//! }}}
//! ```
//!
//! `schedules` (per app, at most [`MAX_SCHEDULES`]) run a function every so often
//! (`[{"function":"ticker","every":"1m"}]`, `every` at least 1 s; on AWS a minute tick runs those
//! due, so there the period is rounded up to whole minutes). The app's `timeoutMs` applies.
//!
//! `afterPresence` (per channel, at most [`MAX_FUNCTIONS`]) names functions handed each join and
//! leave of the channel once committed (see [`crate::after_presence`]).
//!
//! A channel key is an exact channel name or a pattern ending in `*`. For a channel, an exact name
//! wins over patterns, and among patterns the longest prefix wins; `room1` never matches `room10`.
//! Reserved channels (`$status`) never run functions. `onError` defaults to `reject`, `timeoutMs`
//! to [`DEFAULT_TIMEOUT_MS`].
//!
//! This file parses and validates a document and resolves a channel's policy; [`source`] is where
//! handlers read the document in force.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::channel::{AppId, ChannelName, ChannelPattern};
use crate::function::reference::valid_function_ref;

pub mod source;

pub use source::{AssociationsSource, LiveAssociations};

/// Per-function timeout when an association does not set one.
pub const DEFAULT_TIMEOUT_MS: u64 = 1000;
/// Largest per-function timeout (API Gateway gives an integration 29 s in all).
pub const MAX_TIMEOUT_MS: u64 = 25_000;
/// The most a channel's functions take together on one message, whatever their number and
/// timeouts: API Gateway gives the whole integration 29 s, and the commit needs the rest.
pub const MAX_CHAIN_MS: u64 = 25_000;
/// Longest chain on one channel.
pub const MAX_FUNCTIONS: usize = 10;
/// Most functions one hook (`onConnect`, `onSubscribe`) runs: each one delays the connection or
/// the subscription.
pub const MAX_HOOK_FUNCTIONS: usize = 3;
/// Most schedules one app has.
pub const MAX_SCHEDULES: usize = 10;
/// The shortest period of a schedule.
pub const MIN_SCHEDULE_EVERY: Duration = Duration::from_secs(1);

/// A function an app runs every so often.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Schedule {
    pub function: String,
    pub every: Duration,
    /// The app's `timeoutMs`.
    pub timeout: Duration,
}

impl Schedule {
    /// Whether the minute tick at `now_ms` runs it (AWS): at every minute that is a whole
    /// multiple of its period in minutes (rounded up), counted from the epoch.
    pub fn due_at_minute(&self, now_ms: u64) -> bool {
        let minutes = self.every.as_secs().div_ceil(60).max(1);
        (now_ms / 60_000).is_multiple_of(minutes)
    }
}

/// What happens to a message when one of its functions fails or times out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Deliver nothing; the publisher gets `error function_failed`.
    #[default]
    Reject,
    /// Deliver the data as the last function that succeeded left it.
    Pass,
}

/// The functions of one channel or pattern, ready to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChannelPolicy {
    pub functions: Vec<String>,
    /// The channel carries only encrypted envelopes: its functions may pass or drop a message
    /// but not change it.
    pub encrypted: bool,
    /// Functions handed a copy of each message once it is committed, without waiting for them:
    /// they never delay, change or drop delivery.
    pub after_publish: Vec<String>,
    pub on_error: OnError,
    pub timeout: Duration,
    /// Functions that decide whether a subscription to the channel is accepted.
    pub on_subscribe: Vec<String>,
    /// Functions handed each join and leave of the channel once committed.
    pub after_presence: Vec<String>,
}

impl ChannelPolicy {
    /// The channel's `onSubscribe` hook, if it has one.
    pub fn subscribe_hook(&self) -> Option<HookPolicy> {
        (!self.on_subscribe.is_empty()).then(|| HookPolicy {
            functions: self.on_subscribe.clone(),
            on_error: self.on_error,
            timeout: self.timeout,
        })
    }
}

/// The functions of one hook (see [`crate::hook`]), with their failure policy and timeout.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookPolicy {
    pub functions: Vec<String>,
    pub on_error: OnError,
    pub timeout: Duration,
}

/// An associations file that failed to load. The previous associations stay in force.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum AssociationsError {
    #[error(
        "associations are not valid JSON of the expected shape: {message} (line {line}, column {column})"
    )]
    Syntax {
        message: String,
        line: usize,
        column: usize,
    },
    /// A value is wrong; `path` names it (`apps.chat-demo.channels.angry.functions[1]`) and
    /// `line`/`column` say where it is in the text.
    #[error("{path}: {message}{}", at(*line, *column))]
    Invalid {
        path: String,
        message: String,
        line: Option<usize>,
        column: Option<usize>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileFormat {
    apps: BTreeMap<String, AppFormat>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct AppFormat {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    on_connect: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    on_error: Option<OnError>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    timeout_ms: Option<u64>,
    #[serde(default)]
    channels: BTreeMap<String, ChannelFormat>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    schedules: Vec<ScheduleFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    limits: Option<crate::app_limits::AppLimits>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct ScheduleFormat {
    function: String,
    every: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ChannelFormat {
    #[serde(default)]
    functions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    after_publish: Vec<String>,
    #[serde(default)]
    on_error: OnError,
    #[serde(default)]
    timeout_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    encrypted: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    metadata_functions: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    on_subscribe: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    after_presence: Vec<String>,
}

#[derive(Debug, Default)]
struct AppAssociations {
    /// The app's `onConnect` hook.
    on_connect: Option<HookPolicy>,
    schedules: Vec<Schedule>,
    limits: crate::app_limits::AppLimits,
    exact: HashMap<ChannelName, Arc<ChannelPolicy>>,
    /// Longest prefix first.
    patterns: Vec<(String, Arc<ChannelPolicy>)>,
}

/// A validated associations document.
#[derive(Debug, Default)]
pub struct Associations {
    apps: HashMap<AppId, AppAssociations>,
    /// The document as loaded, normalized; what `GET /associations` and stores return.
    source: String,
}

impl Associations {
    /// No functions anywhere.
    pub fn empty() -> Self {
        Self {
            apps: HashMap::new(),
            source: r#"{"apps":{}}"#.to_owned(),
        }
    }

    /// Parses and validates `text`. `known` says whether a function name can be invoked.
    pub fn parse(text: &str, known: &dyn Fn(&str) -> bool) -> Result<Self, AssociationsError> {
        let file: FileFormat =
            serde_json::from_str(text).map_err(|e| AssociationsError::Syntax {
                message: e.to_string(),
                line: e.line(),
                column: e.column(),
            })?;
        let mut apps = HashMap::new();
        let invalid = |at: &[&str], e: &dyn ToString| {
            let (line, column) = crate::locate::locate(text, at).unzip();
            AssociationsError::Invalid {
                path: crate::locate::render(at),
                message: e.to_string(),
                line,
                column,
            }
        };
        // A list of functions at `path`: at most `max`, each a known, valid reference.
        let check_functions = |path: &[&str], list: &[String], max: usize, what: &str| {
            if list.len() > max {
                return Err(invalid(path, &format!("at most {max} functions {what}")));
            }
            for (i, f) in list.iter().enumerate() {
                let index = format!("[{i}]");
                let mut fpath = path.to_vec();
                fpath.push(&index);
                if !valid_function_ref(f) {
                    return Err(invalid(
                        &fpath,
                        &format!(
                            "{f:?} is not a valid function name (1 to 64 of a-z A-Z 0-9 _ -) or Lambda function ARN"
                        ),
                    ));
                }
                if !known(f) {
                    return Err(invalid(&fpath, &format!("unknown function {f:?}")));
                }
            }
            Ok(())
        };
        let timeout = |path: &[&str], ms: Option<u64>| {
            let ms = ms.unwrap_or(DEFAULT_TIMEOUT_MS);
            if ms == 0 || ms > MAX_TIMEOUT_MS {
                let mut at = path.to_vec();
                at.push("timeoutMs");
                return Err(invalid(&at, &format!("must be 1 to {MAX_TIMEOUT_MS}")));
            }
            Ok(Duration::from_millis(ms))
        };
        for (app_name, app) in &file.apps {
            let app_path = ["apps", app_name.as_str()];
            let app_id = AppId::new(app_name.clone()).map_err(|e| invalid(&app_path, &e))?;
            let mut assoc = AppAssociations::default();
            let on_connect_path = ["apps", app_name.as_str(), "onConnect"];
            check_functions(
                &on_connect_path,
                &app.on_connect,
                MAX_HOOK_FUNCTIONS,
                "in a hook",
            )?;
            let app_timeout = timeout(&app_path, app.timeout_ms)?;
            if !app.on_connect.is_empty() {
                assoc.on_connect = Some(HookPolicy {
                    functions: app.on_connect.clone(),
                    on_error: app.on_error.unwrap_or_default(),
                    timeout: app_timeout,
                });
            }
            if let Some(limits) = app.limits {
                limits.check().map_err(|(field, why)| {
                    invalid(&["apps", app_name.as_str(), "limits", field], &why)
                })?;
                assoc.limits = limits;
            }
            if app.schedules.len() > MAX_SCHEDULES {
                return Err(invalid(
                    &["apps", app_name.as_str(), "schedules"],
                    &format!("at most {MAX_SCHEDULES} schedules per app"),
                ));
            }
            for (i, schedule) in app.schedules.iter().enumerate() {
                let index = format!("[{i}]");
                let path = ["apps", app_name.as_str(), "schedules", index.as_str()];
                let at = |field: &'static str| -> Vec<&str> {
                    path.iter().copied().chain([field]).collect()
                };
                check_functions(
                    &at("function"),
                    std::slice::from_ref(&schedule.function),
                    1,
                    "per schedule",
                )?;
                let every = humantime::parse_duration(&schedule.every).map_err(|e| {
                    invalid(
                        &at("every"),
                        &format!("{e}: write a duration such as \"30s\" or \"1m\""),
                    )
                })?;
                if every < MIN_SCHEDULE_EVERY {
                    return Err(invalid(&at("every"), &"must be at least 1s"));
                }
                assoc.schedules.push(Schedule {
                    function: schedule.function.clone(),
                    every,
                    timeout: app_timeout,
                });
            }
            for (key, ch) in &app.channels {
                let path = ["apps", app_name.as_str(), "channels", key.as_str()];
                let at = |rest: &[&'static str]| -> Vec<&str> {
                    path.iter().copied().chain(rest.iter().copied()).collect()
                };
                let pattern = ChannelPattern::new(key.clone()).map_err(|e| invalid(&path, &e))?;
                if key.starts_with('$') {
                    return Err(invalid(&path, &"reserved channels cannot have functions"));
                }
                let content = [
                    ("functions", &ch.functions),
                    ("afterPublish", &ch.after_publish),
                ];
                check_functions(
                    &at(&["afterPresence"]),
                    &ch.after_presence,
                    MAX_FUNCTIONS,
                    "per channel",
                )?;
                if ch.encrypted {
                    if let Some((field, _)) = content.iter().find(|(_, l)| !l.is_empty()) {
                        return Err(invalid(
                            &at(&[field]),
                            &"the channel is encrypted: functions here would see only ciphertext; \
                              list functions that pass or drop by metadata alone (sender, time, \
                              size, rate) under metadataFunctions",
                        ));
                    }
                } else if !ch.metadata_functions.is_empty() {
                    return Err(invalid(
                        &at(&["metadataFunctions"]),
                        &"metadataFunctions are for encrypted channels: use functions here",
                    ));
                }
                for (field, list) in content
                    .into_iter()
                    .chain([("metadataFunctions", &ch.metadata_functions)])
                {
                    check_functions(&at(&[field]), list, MAX_FUNCTIONS, "per channel")?;
                }
                check_functions(
                    &at(&["onSubscribe"]),
                    &ch.on_subscribe,
                    MAX_HOOK_FUNCTIONS,
                    "in a hook",
                )?;
                let channel_timeout = timeout(&path, ch.timeout_ms)?;
                let policy = Arc::new(ChannelPolicy {
                    functions: if ch.encrypted {
                        ch.metadata_functions.clone()
                    } else {
                        ch.functions.clone()
                    },
                    encrypted: ch.encrypted,
                    after_publish: ch.after_publish.clone(),
                    on_error: ch.on_error,
                    timeout: channel_timeout,
                    on_subscribe: ch.on_subscribe.clone(),
                    after_presence: ch.after_presence.clone(),
                });
                if pattern.is_wildcard() {
                    assoc.patterns.push((pattern.prefix().to_owned(), policy));
                } else {
                    let name = ChannelName::new(key.clone()).map_err(|e| invalid(&path, &e))?;
                    assoc.exact.insert(name, policy);
                }
            }
            assoc
                .patterns
                .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
            apps.insert(app_id, assoc);
        }
        let source = serde_json::to_string_pretty(&file).unwrap_or_else(|_| text.to_owned());
        Ok(Self { apps, source })
    }

    /// The functions for `channel` of `app`, or `None` when no functions run there.
    pub fn resolve(&self, app: &AppId, channel: &ChannelName) -> Option<Arc<ChannelPolicy>> {
        if channel.is_reserved() {
            return None;
        }
        let assoc = self.apps.get(app)?;
        if let Some(p) = assoc.exact.get(channel) {
            return Some(p.clone());
        }
        assoc
            .patterns
            .iter()
            .find(|(prefix, _)| channel.as_str().starts_with(prefix.as_str()))
            .map(|(_, p)| p.clone())
    }

    /// Every app's schedules.
    pub fn schedules(&self) -> Vec<(AppId, Schedule)> {
        let mut all: Vec<(AppId, Schedule)> = self
            .apps
            .iter()
            .flat_map(|(app, a)| a.schedules.iter().map(|s| (app.clone(), s.clone())))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// `app`'s limits (none when it has no associations).
    pub fn app_limits(&self, app: &AppId) -> crate::app_limits::AppLimits {
        self.apps.get(app).map(|a| a.limits).unwrap_or_default()
    }

    /// `app`'s `onConnect` hook, if it has one.
    pub fn connect_hook(&self, app: &AppId) -> Option<&HookPolicy> {
        self.apps.get(app)?.on_connect.as_ref()
    }

    /// The normalized JSON document.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// How many apps have associations.
    pub fn app_count(&self) -> usize {
        self.apps.len()
    }

    /// Every function the document references: names and Lambda ARNs.
    pub fn function_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self
            .apps
            .values()
            .flat_map(|a| {
                a.exact
                    .values()
                    .chain(a.patterns.iter().map(|(_, p)| p))
                    .flat_map(|p| {
                        p.functions
                            .iter()
                            .chain(&p.after_publish)
                            .chain(&p.on_subscribe)
                            .chain(&p.after_presence)
                            .cloned()
                    })
                    .chain(a.on_connect.iter().flat_map(|h| h.functions.clone()))
                    .chain(a.schedules.iter().map(|s| s.function.clone()))
            })
            .collect();
        names.sort();
        names.dedup();
        names
    }
}

fn at(line: Option<usize>, column: Option<usize>) -> String {
    match (line, column) {
        (Some(l), Some(c)) => format!(" (line {l}, column {c})"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all(_: &str) -> bool {
        true
    }

    fn ch(s: &str) -> ChannelName {
        ChannelName::new(s).unwrap()
    }

    fn app() -> AppId {
        AppId::new("a").unwrap()
    }

    #[test]
    fn exact_beats_patterns_and_longest_pattern_wins() {
        let a = Associations::parse(
            r#"{"apps":{"a":{"channels":{
                "room1":{"functions":["exact"]},
                "room*":{"functions":["short"]},
                "room-vip*":{"functions":["long"],"onError":"pass","timeoutMs":5}
            }}}}"#,
            &all,
        )
        .unwrap();
        let f = |c: &str| a.resolve(&app(), &ch(c)).map(|p| p.functions[0].clone());
        assert_eq!(f("room1").as_deref(), Some("exact"));
        assert_eq!(f("room10").as_deref(), Some("short"));
        assert_eq!(f("room-vip-1").as_deref(), Some("long"));
        assert_eq!(f("lobby"), None);
        assert_eq!(a.resolve(&AppId::new("b").unwrap(), &ch("room1")), None);
        let p = a.resolve(&app(), &ch("room-vip")).unwrap();
        assert_eq!(p.on_error, OnError::Pass);
        assert_eq!(p.timeout, Duration::from_millis(5));
        assert_eq!(f("room1"), Some("exact".into()));
        assert_eq!(a.function_names(), vec!["exact", "long", "short"]);
    }

    #[test]
    fn encrypted_channels_take_only_metadata_functions() {
        let a = Associations::parse(
            r#"{"apps":{"a":{"channels":{"secret-*":{"encrypted":true,"metadataFunctions":["gate"]}}}}}"#,
            &all,
        )
        .unwrap();
        let p = a.resolve(&app(), &ch("secret-1")).unwrap();
        assert!(p.encrypted);
        assert_eq!(p.functions, ["gate"]);
        assert_eq!(a.function_names(), ["gate"]);
        for (doc, path) in [
            (
                r#"{"apps":{"a":{"channels":{"s":{"encrypted":true,"functions":["angry"]}}}}}"#,
                "apps.a.channels.s.functions",
            ),
            (
                r#"{"apps":{"a":{"channels":{"s":{"encrypted":true,"afterPublish":["audit"]}}}}}"#,
                "apps.a.channels.s.afterPublish",
            ),
            (
                r#"{"apps":{"a":{"channels":{"s":{"metadataFunctions":["gate"]}}}}}"#,
                "apps.a.channels.s.metadataFunctions",
            ),
        ] {
            match Associations::parse(doc, &all) {
                Err(AssociationsError::Invalid {
                    path: p, message, ..
                }) => {
                    assert_eq!(p, path, "{message}");
                    assert!(
                        message.contains("ciphertext") || message.contains("encrypted"),
                        "{message}"
                    );
                }
                other => panic!("{doc}: {other:?}"),
            }
        }
    }

    #[test]
    fn hooks_are_validated_and_resolved() {
        let known = |n: &str| ["admit", "member-check", "f"].contains(&n);
        let a = Associations::parse(
            r#"{"apps":{"a":{"onConnect":["admit"],"onError":"pass","timeoutMs":200,
                "channels":{"team-*":{"functions":["f"],"onSubscribe":["member-check"],"timeoutMs":300}}}}}"#,
            &known,
        )
        .unwrap();
        let connect = a.connect_hook(&app()).unwrap();
        assert_eq!(connect.functions, ["admit"]);
        assert_eq!(
            (connect.on_error, connect.timeout),
            (OnError::Pass, Duration::from_millis(200))
        );
        let subscribe = a
            .resolve(&app(), &ch("team-blue"))
            .unwrap()
            .subscribe_hook()
            .unwrap();
        assert_eq!(subscribe.functions, ["member-check"]);
        assert_eq!(
            (subscribe.on_error, subscribe.timeout),
            (OnError::Reject, Duration::from_millis(300))
        );
        assert_eq!(a.function_names(), ["admit", "f", "member-check"]);
        assert!(a.source().contains("onConnect") && a.source().contains("onSubscribe"));
        let err = |t: &str| Associations::parse(t, &known).unwrap_err().to_string();
        assert!(
            err(r#"{"apps":{"a":{"onConnect":["admit","nope"]}}}"#)
                .starts_with("apps.a.onConnect[1]: unknown function \"nope\""),
        );
        assert!(
            err(r#"{"apps":{"a":{"onConnect":["f","f","f","f"]}}}"#)
                .starts_with("apps.a.onConnect: at most 3 functions in a hook"),
        );
        assert!(
            err(r#"{"apps":{"a":{"channels":{"c":{"onSubscribe":["x"]}}}}}"#)
                .starts_with("apps.a.channels.c.onSubscribe[0]: unknown function \"x\""),
        );
        assert!(
            err(r#"{"apps":{"a":{"timeoutMs":0}}}"#).starts_with("apps.a.timeoutMs: must be 1")
        );
    }

    #[test]
    fn schedules_are_validated_and_listed() {
        let known = |n: &str| n == "ticker";
        let a = Associations::parse(
            r#"{"apps":{"a":{"timeoutMs":500,"schedules":[{"function":"ticker","every":"5m"},{"function":"ticker","every":"2s"}]}}}"#,
            &known,
        )
        .unwrap();
        let all = a.schedules();
        assert_eq!(all.len(), 2);
        let (app_id, five) = &all[0];
        assert_eq!(app_id.as_str(), "a");
        assert_eq!(
            (five.every, five.timeout),
            (Duration::from_secs(300), Duration::from_millis(500))
        );
        assert!(five.due_at_minute(10 * 60_000) && !five.due_at_minute(11 * 60_000));
        assert!(
            all[1].1.due_at_minute(11 * 60_000),
            "a period under a minute runs every minute"
        );
        assert_eq!(a.function_names(), ["ticker"]);
        let err = |t: &str| Associations::parse(t, &known).unwrap_err().to_string();
        assert!(
            err(r#"{"apps":{"a":{"schedules":[{"function":"ticker","every":"500ms"}]}}}"#)
                .starts_with("apps.a.schedules[0].every: must be at least 1s")
        );
        assert!(
            err(r#"{"apps":{"a":{"schedules":[{"function":"ticker","every":"soon"}]}}}"#)
                .starts_with("apps.a.schedules[0].every: ")
        );
        assert!(
            err(r#"{"apps":{"a":{"schedules":[{"function":"nope","every":"1m"}]}}}"#)
                .starts_with("apps.a.schedules[0].function[0]: unknown function \"nope\"")
        );
    }

    #[test]
    fn no_accidental_prefix_match() {
        let a = Associations::parse(
            r#"{"apps":{"a":{"channels":{"channel_1":{"functions":["f"]}}}}}"#,
            &all,
        )
        .unwrap();
        assert!(a.resolve(&app(), &ch("channel_1")).is_some());
        assert!(a.resolve(&app(), &ch("channel_10")).is_none());
    }

    #[test]
    fn after_publish_functions_are_validated_and_listed_like_the_chain() {
        let known = |n: &str| ["f", "audit"].contains(&n);
        let a = Associations::parse(
            r#"{"apps":{"a":{"channels":{"orders":{"afterPublish":["audit"]}}}}}"#,
            &known,
        )
        .unwrap();
        let policy = a
            .resolve(
                &AppId::new("a").unwrap(),
                &ChannelName::new("orders").unwrap(),
            )
            .unwrap();
        assert!(policy.functions.is_empty());
        assert_eq!(policy.after_publish, ["audit"]);
        assert_eq!(a.function_names(), ["audit"]);
        assert!(a.source().contains("afterPublish"));
        let err = Associations::parse(
            r#"{"apps":{"a":{"channels":{"orders":{"functions":["f"],"afterPublish":["f","nope"]}}}}}"#,
            &known,
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("apps.a.channels.orders.afterPublish[1]: unknown function \"nope\""),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_place() {
        let only_f = |n: &str| n == "f";
        let err = |t: &str| Associations::parse(t, &only_f).unwrap_err().to_string();
        assert!(err("{").contains("line 1"));
        assert!(
            err(r#"{"apps":{"a":{"channels":{"c":{"functions":["f","g"]}}}}}"#)
                .contains("apps.a.channels.c.functions[1]: unknown function \"g\"")
        );
        assert!(
            err(r#"{"apps":{"a":{"channels":{"c*d":{"functions":[]}}}}}"#)
                .contains("apps.a.channels.c*d")
        );
        assert!(
            err(r#"{"apps":{"a":{"channels":{"c":{"functions":[],"timeoutMs":0}}}}}"#)
                .contains("timeoutMs")
        );
        assert!(
            err(r#"{"apps":{"a":{"channels":{"c":{"functions":[],"onError":"explode"}}}}}"#)
                .contains("unknown variant")
        );
        assert!(
            err(r#"{"apps":{"a":{"channels":{"$status":{"functions":[]}}}}}"#).contains("reserved")
        );
        assert!(err(r#"{"apps":{"a b":{"channels":{}}}}"#).contains("apps.a b"));
        assert!(err(r#"{"apps":{},"extra":1}"#).contains("unknown field"));
        assert!(
            err(r#"{"apps":{"a":{"limits":{"maxConnections":0}}}}"#)
                .contains("apps.a.limits.maxConnections: must be 1 to")
        );
        assert!(err(r#"{"apps":{"a":{"limits":{"maxConections":5}}}}"#).contains("unknown field"));
        assert!(
            err(r#"{"apps":{"a":{"limits":{"publishBurst":5}}}}"#)
                .contains("apps.a.limits.publishBurst: needs a publishRate")
        );
        assert!(err(r#"{"apps":{"a":{"limits":{"publishRate":0}}}}"#).contains("publishRate"));
        let limited =
            Associations::parse(r#"{"apps":{"a":{"limits":{"maxConnections":5}}}}"#, &only_f)
                .unwrap();
        let a = AppId::new("a").unwrap();
        assert_eq!(limited.app_limits(&a).max_connections, Some(5));
        assert_eq!(
            limited.app_limits(&AppId::new("b").unwrap()),
            Default::default()
        );
        let pretty = "{\n  \"apps\": {\n    \"a\": {\"channels\": {\n      \"room.1\": {\"functions\": [\"f\", \"g\"]}\n    }}\n  }\n}";
        assert_eq!(
            err(pretty),
            "apps.a.channels.room.1.functions[1]: unknown function \"g\" (line 4, column 37)"
        );
    }
}
