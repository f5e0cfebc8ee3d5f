//! Layered settings: built-in defaults, then the config file (`echo.toml`), then `ECHO_*`
//! environment variables, then flags. `echoctl config` prints the result and where each value
//! came from.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use std::collections::BTreeSet;
use std::ffi::OsString;

use clap::parser::ValueSource;
use clap::{ArgAction, ArgMatches, Args, FromArgMatches, ValueHint};
use serde::Deserialize;

/// The file echoctl reads when `--config` is not given and it exists.
pub const DEFAULT_FILE: &str = "echo.toml";

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: [{section}] {key}: {message}")]
    Setting {
        path: PathBuf,
        section: &'static str,
        key: String,
        message: String,
    },
}

/// `echo.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[edge]`: the settings of `echoctl dev` and `echoctl serve`, by their flags' names
    /// ([`echo_edge::Settings`]); checked when they are layered ([`layer_args`]).
    #[serde(default)]
    pub edge: toml::Table,
    #[serde(default)]
    pub aws: AwsFile,
    #[serde(default)]
    pub functions: FunctionsFile,
}

/// `[aws]`: where `deploy`, `status` and `teardown` work.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct AwsFile {
    pub stack_name: Option<String>,
    pub region: Option<String>,
    pub template: Option<PathBuf>,
    pub sam: Option<PathBuf>,
}

/// `[functions]`: where function crates live and where Echo's crates are.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct FunctionsFile {
    pub dir: Option<PathBuf>,
    pub echo_path: Option<PathBuf>,
}

/// The config file as loaded, with the directory its relative paths are relative to.
#[derive(Debug, Default)]
pub struct Loaded {
    pub path: Option<PathBuf>,
    pub file: FileConfig,
}

impl Loaded {
    /// Reads `explicit`, or `echo.toml` in the current directory when it exists.
    pub fn load(explicit: Option<&Path>) -> Result<Self, ConfigError> {
        let path = match explicit {
            Some(p) => p.to_path_buf(),
            None if Path::new(DEFAULT_FILE).is_file() => PathBuf::from(DEFAULT_FILE),
            None => return Ok(Self::default()),
        };
        let text = std::fs::read_to_string(&path).map_err(|source| ConfigError::Read {
            path: path.clone(),
            source,
        })?;
        let file = toml::from_str(&text).map_err(|e| ConfigError::Parse {
            path: path.clone(),
            message: e.to_string(),
        })?;
        Ok(Self {
            path: Some(path),
            file,
        })
    }

    /// `p` as written in the file, relative to the file's directory.
    pub fn resolve(&self, p: &Path) -> PathBuf {
        match self.path.as_deref().and_then(Path::parent) {
            Some(dir) if p.is_relative() && !dir.as_os_str().is_empty() => dir.join(p),
            _ => p.to_path_buf(),
        }
    }
}

/// Where an effective value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    File,
    Env,
    Flag,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Default => "default",
            Self::File => "file",
            Self::Env => "env",
            Self::Flag => "flag",
        })
    }
}

/// Where clap took argument `id` from (`Default` when it was not given at all).
pub fn source(matches: &ArgMatches, id: &str) -> Source {
    match matches.value_source(id) {
        Some(ValueSource::CommandLine) => Source::Flag,
        Some(ValueSource::EnvVariable) => Source::Env,
        _ => Source::Default,
    }
}

/// One line of `echoctl config`.
#[derive(Debug)]
pub struct Row {
    pub key: String,
    pub value: String,
    pub source: Source,
}

/// Values as `echoctl config` shows them.
pub trait Show {
    fn show(&self) -> String;
}

macro_rules! show_display {
    ($($t:ty),*) => {$(
        impl Show for $t {
            fn show(&self) -> String {
                self.to_string()
            }
        }
    )*};
}
show_display!(u16, u32, usize, IpAddr, String);

impl Show for PathBuf {
    fn show(&self) -> String {
        self.display().to_string()
    }
}

impl Show for Duration {
    fn show(&self) -> String {
        humantime::format_duration(*self).to_string()
    }
}

impl<T: Show> Show for Option<T> {
    fn show(&self) -> String {
        self.as_ref()
            .map_or_else(|| "(none)".to_owned(), Show::show)
    }
}

/// Applies a file value to an argument that neither a flag nor the environment set, and records
/// the effective value. `$convert` turns the file's value into the argument's type.
#[macro_export]
macro_rules! layer {
    ($rows:ident, $matches:ident, $args:ident . $field:ident, $file:expr, $key:literal, $convert:expr) => {{
        let mut source = $crate::config::source($matches, stringify!($field));
        if source == $crate::config::Source::Default {
            if let Some(v) = &$file {
                $args.$field = $convert(v)?;
                source = $crate::config::Source::File;
            }
        }
        $rows.push($crate::config::Row {
            key: $key.to_owned(),
            value: $crate::config::Show::show(&$args.$field),
            source,
        });
    }};
}

/// Prints rows as an aligned table.
pub fn print_rows(title: &str, rows: &[Row]) {
    println!("[{title}]");
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for r in rows {
        println!("  {:width$}  {:<40}  {}", r.key, r.value, r.source);
    }
}

/// `T`'s settings with the config file's `[section]` table layered under the flags and
/// environment variables `matches` holds, and each effective value with its source. The table's
/// keys are the flags' names; each value is parsed by the flag's own parser, so the file accepts
/// exactly what the flag does (durations as `"10m"`, paths relative to the file).
pub fn layer_args<T: Args + FromArgMatches>(
    matches: &ArgMatches,
    loaded: &Loaded,
    section: &'static str,
    table: &toml::Table,
) -> Result<(T, Vec<Row>), ConfigError> {
    let command = T::augment_args(clap::Command::new(section).no_binary_name(true));
    let error = |key: &str, message: String| ConfigError::Setting {
        path: loaded.path.clone().unwrap_or_default(),
        section,
        key: key.to_owned(),
        message,
    };
    let mut argv: Vec<OsString> = Vec::new();
    // What the flags said, said again.
    for arg in command.get_arguments() {
        let id = arg.get_id().as_str();
        if matches.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let Some(long) = arg.get_long() else { continue };
        match arg.get_action() {
            ArgAction::SetTrue => argv.push(format!("--{long}").into()),
            _ => {
                for value in matches.get_raw(id).into_iter().flatten() {
                    let mut flag = OsString::from(format!("--{long}="));
                    flag.push(value);
                    argv.push(flag);
                }
            }
        }
    }
    // Then what the file says, where neither a flag nor the environment did.
    let mut from_file = BTreeSet::new();
    for (key, value) in table {
        let Some(arg) = command
            .get_arguments()
            .find(|a| a.get_long() == Some(key.as_str()))
        else {
            let known: Vec<&str> = command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .collect();
            return Err(ConfigError::Parse {
                path: loaded.path.clone().unwrap_or_default(),
                message: format!(
                    "[{section}]: unknown field `{key}`, expected one of {}",
                    known.join(", ")
                ),
            });
        };
        let id = arg.get_id().as_str();
        if matches!(
            matches.value_source(id),
            Some(ValueSource::CommandLine | ValueSource::EnvVariable)
        ) {
            continue;
        }
        let text = match value {
            toml::Value::String(s) => s.clone(),
            toml::Value::Integer(i) => i.to_string(),
            toml::Value::Float(f) => f.to_string(),
            toml::Value::Boolean(b) => b.to_string(),
            other => {
                return Err(error(
                    key,
                    format!(
                        "expected a string, a number or a boolean, not {}",
                        other.type_str()
                    ),
                ));
            }
        };
        let text = match arg.get_value_hint() {
            ValueHint::FilePath | ValueHint::DirPath | ValueHint::AnyPath => {
                loaded.resolve(Path::new(&text)).display().to_string()
            }
            _ => text,
        };
        match (arg.get_action(), text.as_str()) {
            (ArgAction::SetTrue, "true") => argv.push(format!("--{key}").into()),
            (ArgAction::SetTrue, "false") => {}
            (ArgAction::SetTrue, _) => return Err(error(key, "expected true or false".into())),
            _ => argv.push(format!("--{key}={text}").into()),
        }
        from_file.insert(id.to_owned());
    }
    let layered = command
        .clone()
        .try_get_matches_from(argv)
        .and_then(|m| T::from_arg_matches(&m).map(|settings| (settings, m)));
    let (settings, layered) = layered.map_err(|e| ConfigError::Parse {
        path: loaded.path.clone().unwrap_or_default(),
        message: format!("[{section}] {}", e.render().to_string().trim()),
    })?;
    let rows = command
        .get_arguments()
        .filter_map(|arg| {
            let id = arg.get_id().as_str();
            let key = arg.get_long()?;
            let value = layered.get_raw(id).map_or_else(
                || "(none)".to_owned(),
                |v| v.map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(","),
            );
            let source = if from_file.contains(id) {
                Source::File
            } else {
                source(&layered, id)
            };
            Some(Row {
                key: key.to_owned(),
                value,
                source,
            })
        })
        .collect();
    Ok((settings, rows))
}
