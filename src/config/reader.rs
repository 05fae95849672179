//! Reads configuration values out of the layered sources (defaults <- TOML file <- `GATEHOUSE_*` environment)
//! one key at a time, collecting every problem instead of stopping at the first, and remembering which keys
//! were asked for so that anything else present in the sources can be reported as unknown.
//!
//! Every string key `k` may instead be given as `k_file`, naming a file whose contents (without the trailing
//! newline) are the value; this is how secrets stay out of the config file and the environment.

use std::collections::BTreeSet;
use std::path::PathBuf;

use figment::value::{Dict, Value};
use figment::{Figment, Source};
use serde::de::DeserializeOwned;

/// One thing wrong with the configuration, with where the offending value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub message: String,
    pub origin: String,
}

impl std::fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {} ({})", self.key, self.message, self.origin)
    }
}

pub struct ConfigReader {
    figment: Figment,
    asked: BTreeSet<String>,
    problems: Vec<ConfigProblem>,
}

impl ConfigReader {
    pub fn new(figment: Figment) -> Self {
        Self { figment, asked: BTreeSet::new(), problems: Vec::new() }
    }

    /// A typed value, if present and well-typed.
    pub fn value<T: DeserializeOwned>(&mut self, key: &str) -> Option<T> {
        self.asked.insert(key.to_owned());
        if !self.figment.contains(key) {
            return None;
        }
        match self.figment.extract_inner::<T>(key) {
            Ok(value) => Some(value),
            Err(err) => {
                self.problem(key, err.kind.to_string());
                None
            }
        }
    }

    /// A string value, from `key` or from the file `key_file` names.
    pub fn string(&mut self, key: &str) -> Option<String> {
        let file_key = format!("{key}_file");
        let direct = self.value::<Value>(key).map(|v| self.scalar_to_string(key, v));
        let path = self.value::<String>(&file_key);
        match (direct, path) {
            (Some(_), Some(_)) => {
                self.problem(key, format!("set both {key} and {file_key}; keep one"));
                None
            }
            (Some(value), None) => value,
            (None, Some(path)) => match std::fs::read_to_string(&path) {
                Ok(content) => Some(content.trim_end_matches(['\n', '\r']).to_owned()),
                Err(err) => {
                    self.problem(&file_key, format!("cannot read '{path}': {err}"));
                    None
                }
            },
            (None, None) => None,
        }
    }

    /// A string parsed by `parse`, whose error message says what was expected.
    pub fn parsed<T>(&mut self, key: &str, parse: impl FnOnce(&str) -> Result<T, String>) -> Option<T> {
        let raw = self.string(key)?;
        match parse(&raw) {
            Ok(value) => Some(value),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    /// A list of strings, given as an array or as one comma-separated string (handy in environment variables).
    pub fn string_list(&mut self, key: &str) -> Option<Vec<String>> {
        match self.value::<Value>(key)? {
            Value::String(_, s) => {
                Some(s.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect())
            }
            Value::Array(_, items) => {
                let mut out = Vec::new();
                for item in items {
                    match item {
                        Value::String(_, s) => out.push(s),
                        other => {
                            self.problem(key, format!("expected a list of strings, found {}", describe(&other)));
                            return None;
                        }
                    }
                }
                Some(out)
            }
            other => {
                self.problem(key, format!("expected a list of strings, found {}", describe(&other)));
                None
            }
        }
    }

    /// A duration such as "12h", "30m", "7d" or "1h 30m", or a whole number of seconds.
    pub fn duration(&mut self, key: &str) -> Option<std::time::Duration> {
        self.parsed(key, |raw| {
            if let Ok(secs) = raw.trim().parse::<u64>() {
                return Ok(std::time::Duration::from_secs(secs));
            }
            humantime::parse_duration(raw.trim()).map_err(|e| {
                format!("'{raw}' is not a duration ({e}); write it like \"30s\", \"15m\", \"12h\" or \"7d\"")
            })
        })
    }

    pub fn problem(&mut self, key: &str, message: impl Into<String>) {
        let origin = self.origin(key);
        self.problems.push(ConfigProblem { key: key.to_owned(), message: message.into(), origin });
    }

    /// Reports every key present in the sources that nothing asked for, then returns all problems.
    pub fn finish(mut self) -> Vec<ConfigProblem> {
        let present = match self.figment.extract::<Dict>() {
            Ok(dict) => dict,
            Err(err) => {
                self.problems.push(ConfigProblem {
                    key: "(config)".into(),
                    message: err.to_string(),
                    origin: "configuration".into(),
                });
                return self.problems;
            }
        };
        let mut unknown = Vec::new();
        collect_unknown_keys(&present, "", &self.asked, &mut unknown);
        for key in unknown {
            let message = match key.split_once('.') {
                None if !self.asked.iter().any(|k| k.starts_with(&format!("{key}."))) => {
                    "unknown section or key (see gatehouse.example.toml for every key)".to_owned()
                }
                _ => "unknown key (see gatehouse.example.toml for every key)".to_owned(),
            };
            self.problem(&key, message);
        }
        self.problems
    }

    fn scalar_to_string(&mut self, key: &str, value: Value) -> Option<String> {
        match value {
            Value::String(_, s) => Some(s),
            Value::Num(_, n) => n
                .to_u128()
                .map(|n| n.to_string())
                .or_else(|| n.to_i128().map(|n| n.to_string()))
                .or_else(|| n.to_f64().map(|n| n.to_string())),
            Value::Bool(_, b) => Some(b.to_string()),
            other => {
                self.problem(key, format!("expected a string, found {}", describe(&other)));
                None
            }
        }
    }

    /// "in /etc/gatehouse.toml", "from environment variable GATEHOUSE_SERVER__LISTEN", or "default".
    fn origin(&self, key: &str) -> String {
        let lookup = key
            .strip_suffix("_file")
            .filter(|base| !self.figment.contains(key) && self.figment.contains(base))
            .unwrap_or(key);
        match self.figment.find_metadata(lookup) {
            Some(meta) => match &meta.source {
                Some(Source::File(path)) => format!("in {}", path.display()),
                _ if meta.name.contains("environment") => {
                    format!("from environment variable GATEHOUSE_{}", lookup.to_uppercase().replace('.', "__"))
                }
                _ => meta.name.to_string(),
            },
            None => "configuration".to_owned(),
        }
    }
}

fn collect_unknown_keys(dict: &Dict, prefix: &str, asked: &BTreeSet<String>, out: &mut Vec<String>) {
    for (name, value) in dict {
        let key = if prefix.is_empty() { name.clone() } else { format!("{prefix}.{name}") };
        if asked.contains(&key) {
            continue;
        }
        match value {
            Value::Dict(_, inner) if asked.iter().any(|k| k.starts_with(&format!("{key}."))) => {
                collect_unknown_keys(inner, &key, asked, out)
            }
            _ => out.push(key),
        }
    }
}

fn describe(value: &Value) -> &'static str {
    match value {
        Value::String(..) => "a string",
        Value::Char(..) => "a character",
        Value::Bool(..) => "a boolean",
        Value::Num(..) => "a number",
        Value::Empty(..) => "nothing",
        Value::Dict(..) => "a table",
        Value::Array(..) => "a list",
    }
}

/// Where the configuration file is: `--config`, `$GATEHOUSE_CONFIG`, or `./gatehouse.toml` if it exists.
pub fn config_path(explicit: Option<PathBuf>) -> Option<PathBuf> {
    explicit
        .or_else(|| std::env::var_os("GATEHOUSE_CONFIG").map(PathBuf::from))
        .or_else(|| Some(PathBuf::from("gatehouse.toml")).filter(|p| p.exists()))
}
