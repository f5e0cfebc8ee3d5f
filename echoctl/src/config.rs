//! Layered settings: built-in defaults, then the config file (`echo.toml`), then `ECHO_*`
//! environment variables, then flags. `echoctl config` prints the result and where each value
//! came from.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::ArgMatches;
use clap::parser::ValueSource;
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
    #[error("{path}: {key}: {message}")]
    Value {
        path: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// `echo.toml`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    #[serde(default)]
    pub edge: EdgeFile,
    #[serde(default)]
    pub aws: AwsFile,
    #[serde(default)]
    pub functions: FunctionsFile,
}

/// `[edge]`: the flags of `echoctl dev` and `echoctl serve`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct EdgeFile {
    pub port: Option<u16>,
    pub host: Option<IpAddr>,
    pub manage_port: Option<u16>,
    pub data_dir: Option<PathBuf>,
    pub associations: Option<PathBuf>,
    pub functions_endpoint: Option<String>,
    pub max_message_bytes: Option<usize>,
    pub max_subscriptions: Option<usize>,
    pub idle_timeout: Option<String>,
    pub max_connection_age: Option<String>,
    pub history_retention: Option<String>,
    pub outbound_queue: Option<usize>,
    pub manage_latency: Option<String>,
    pub publish_rate: Option<u32>,
    pub publish_burst: Option<u32>,
    pub max_connections: Option<usize>,
    pub faithful: Option<String>,
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

    pub fn duration(&self, key: &'static str, text: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(text).map_err(|e| ConfigError::Value {
            path: self.path.clone().unwrap_or_default(),
            key,
            message: e.to_string(),
        })
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
    pub key: &'static str,
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
            key: $key,
            value: $crate::config::Show::show(&$args.$field),
            source,
        });
    }};
}

/// The file's value as it is, for [`layer!`].
pub fn copy<T: Copy>(v: &T) -> Result<T, ConfigError> {
    Ok(*v)
}

/// Prints rows as an aligned table.
pub fn print_rows(title: &str, rows: &[Row]) {
    println!("[{title}]");
    let width = rows.iter().map(|r| r.key.len()).max().unwrap_or(0);
    for r in rows {
        println!("  {:width$}  {:<40}  {}", r.key, r.value, r.source);
    }
}
