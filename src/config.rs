//! Configuration of `sluice run` from a TOML file (`--config FILE`) and the environment
//! (`SLUICE_<FLAG>`), layered under the command line: built-in defaults < file < environment <
//! flags.
//!
//! Every key is a long flag of `sluice run`, spelled as on the command line (`watermark-delay`;
//! `watermark_delay` too) — the file is read against the command's own clap definition, so a
//! new flag is a new key with nothing to add here. `query` is the pipeline. A value is what the
//! flag takes: a string, a number, `true` for a switch; a list for a repeatable flag; a table
//! for `param` (`[param]` `rules = "rules.toml"`) and `kafka-prop`. Environment variables are the
//! flags in upper snake case (`SLUICE_WATERMARK_DELAY=4s`, `SLUICE_PACED=true`); a repeatable
//! flag's values are separated by `;`.
//!
//! The layers become command-line arguments for the flags the command line does not give,
//! checked first one by one with the flag's own parser, so that a bad value is an error naming
//! the key and its line (`job.toml line 7: watermark-delay: …`) or the variable.

use clap::parser::ValueSource;
use clap::{Arg, ArgAction, ArgMatches, Command};
use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The prefix of configuration variables.
pub const ENV_PREFIX: &str = "SLUICE_";

/// Flags that are not configuration: they act on the command line itself.
const NOT_CONFIGURABLE: &[&str] = &["help", "config", "print-config", "version"];

/// Variables with the prefix that are not flags (read elsewhere, or by tests and scripts).
const OTHER_VARIABLES: &[&str] = &[
    "SLUICE_LOG",
    "SLUICE_MQTT_PASSWORD",
    "SLUICE_FAIL_POINT",
    "SLUICE_LAUNCHER_PID",
];

/// A bad configuration: one line naming where.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read the configuration file {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// Flags that cannot be given together, one of them (at least) set by a layer.
    #[error("{0}")]
    Combination(String),
    /// A value or key is wrong.
    #[error("{origin}: {message}")]
    Invalid {
        /// Where: `FILE line N: KEY` or `SLUICE_X`.
        origin: String,
        /// What is wrong.
        message: String,
    },
}

/// Where a flag's value came from, when not from the command line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Origin {
    /// The configuration file, at a line.
    File {
        /// The file.
        path: PathBuf,
        /// The key's line (1-based).
        line: usize,
    },
    /// An environment variable.
    Env(String),
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{} line {line}", path.display()),
            Origin::Env(name) => write!(f, "{name}"),
        }
    }
}

/// A flag's value(s) from a layer.
#[derive(Clone, Debug)]
struct Setting {
    values: Vec<String>,
    origin: Origin,
}

/// The command line with the configuration's flags added.
#[derive(Clone, Debug, Default)]
pub struct Layered {
    /// The arguments to parse: the program, `run`, the added flags, then the user's own.
    pub argv: Vec<OsString>,
    /// Where each added flag (by long name; `query` for the pipeline) came from.
    pub origins: BTreeMap<String, Origin>,
}

impl Layered {
    /// A clap error about flags the layers added, as one line saying where each was set;
    /// `None` for errors that name none of them.
    pub fn annotate(&self, error: &clap::Error) -> Option<String> {
        // The message up to clap's usage lines, as one line.
        let text = error.to_string();
        let message: Vec<&str> = text
            .lines()
            .map(str::trim)
            .take_while(|l| !l.is_empty())
            .collect();
        let first = message.join(" ");
        let first = first.strip_prefix("error: ").unwrap_or(&first);
        let named: Vec<String> = self
            .origins
            .iter()
            .filter(|(key, _)| first.contains(&format!("'--{key}")))
            .map(|(key, origin)| format!("--{key} was set by {origin}"))
            .collect();
        if named.is_empty() {
            return None;
        }
        Some(format!("{first} ({})", named.join("; ")))
    }

    /// `message` (an error naming a flag, `--name …`) with where that flag's value came from,
    /// when it came from the file or the environment.
    pub fn explain(&self, message: &str) -> String {
        let named = message.strip_prefix("--").map(|rest| {
            rest.split(|c: char| !(c.is_alphanumeric() || c == '-'))
                .next()
        });
        match named.flatten().and_then(|name| self.origins.get(name)) {
            Some(origin) => format!("{message} (set by {origin})"),
            None => message.to_string(),
        }
    }
}

fn key_name(arg: &Arg) -> Option<String> {
    if arg.is_positional() {
        return Some(arg.get_id().as_str().to_string());
    }
    arg.get_long().map(str::to_string)
}

/// The configuration key of every configurable argument of `run` (its long name; the
/// positional's id), with the argument.
pub fn keys(run: &Command) -> Vec<(String, &Arg)> {
    run.get_arguments()
        .filter(|a| !a.is_hide_set())
        .filter_map(|a| Some((key_name(a)?, a)))
        .filter(|(k, _)| !NOT_CONFIGURABLE.contains(&k.as_str()))
        .collect()
}

/// The environment variable of a key.
pub fn env_name(key: &str) -> String {
    format!("{ENV_PREFIX}{}", key.replace('-', "_").to_uppercase())
}

fn is_switch(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::SetTrue)
}

fn is_list(arg: &Arg) -> bool {
    matches!(arg.get_action(), ArgAction::Append)
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// A TOML scalar as the command line would write it.
fn scalar(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Float(x) => Some(x.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Datetime(d) => Some(d.to_string()),
        _ => None,
    }
}

/// `NAME=VALUE` for each entry of a table, nested tables joined with dots: unquoted
/// `security.protocol = "SSL"` in `[kafka-prop]` is the property `security.protocol`.
fn flatten(
    key: &str,
    prefix: &str,
    table: &toml::map::Map<String, toml::Value>,
    out: &mut Vec<String>,
) -> Result<(), String> {
    for (name, value) in table {
        let name = format!("{prefix}{name}");
        match value {
            toml::Value::Table(inner) => flatten(key, &format!("{name}."), inner, out)?,
            other => out.push(
                scalar(other)
                    .map(|v| format!("{name}={v}"))
                    .ok_or_else(|| format!("{key}.{name}: expected a string, number or boolean"))?,
            ),
        }
    }
    Ok(())
}

/// The values of one key of the file, as arguments of `arg`.
fn file_values(key: &str, arg: &Arg, value: &toml::Value) -> Result<Vec<String>, String> {
    match value {
        toml::Value::Table(table) if is_list(arg) => {
            let mut values = Vec::new();
            flatten(key, "", table, &mut values)?;
            Ok(values)
        }
        toml::Value::Array(items) if is_list(arg) => items
            .iter()
            .map(|v| {
                scalar(v).ok_or_else(|| format!("{key}: expected a list of strings or numbers"))
            })
            .collect(),
        toml::Value::Table(_) | toml::Value::Array(_) => {
            Err(format!("{key}: expected one value, not a list or table"))
        }
        toml::Value::Boolean(b) if is_switch(arg) => {
            Ok(if *b { vec!["true".into()] } else { vec![] })
        }
        _ if is_switch(arg) => Err(format!("{key}: expected true or false")),
        other => Ok(scalar(other).into_iter().collect()),
    }
}

/// Whether the flags of keys `a` and `b` cannot be given together.
fn conflicting(run: &Command, known: &[(String, &Arg)], a: &str, b: &str) -> bool {
    let arg = |key: &str| known.iter().find(|(k, _)| k == key).map(|(_, arg)| *arg);
    let (Some(a), Some(b)) = (arg(a), arg(b)) else {
        return false;
    };
    let names = |x: &Arg, y: &Arg| {
        run.get_arg_conflicts_with(x)
            .iter()
            .any(|c| c.get_id() == y.get_id())
    };
    names(a, b) || names(b, a)
}

/// The key of `name` (a long flag, an alias of one, or with `_` for `-`), with its argument.
fn find_key<'a>(known: &[(String, &'a Arg)], name: &str) -> Option<(String, &'a Arg)> {
    let name = name.replace('_', "-");
    known
        .iter()
        .find(|(key, arg)| {
            *key == name
                || arg
                    .get_all_aliases()
                    .into_iter()
                    .flatten()
                    .any(|alias| alias == name)
        })
        .map(|(key, arg)| (key.clone(), *arg))
}

/// Reads a configuration file into settings by key.
fn read_file(path: &Path, run: &Command) -> Result<BTreeMap<String, Setting>, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.display().to_string(),
        source,
    })?;
    let at = |line: usize| Origin::File {
        path: path.to_path_buf(),
        line,
    };
    let table: BTreeMap<toml::Spanned<String>, toml::Spanned<toml::Value>> = toml::from_str(&text)
        .map_err(|e| ConfigError::Invalid {
            origin: match e.span() {
                Some(span) => at(line_of(&text, span.start)).to_string(),
                None => path.display().to_string(),
            },
            message: e.message().trim().to_string(),
        })?;
    let known = keys(run);
    let mut settings = BTreeMap::new();
    for (key, value) in table {
        let line = line_of(&text, key.span().start);
        let origin = at(line);
        let name = key.get_ref().replace('_', "-");
        let Some((name, arg)) = find_key(&known, &name) else {
            let message = if NOT_CONFIGURABLE.contains(&name.as_str()) {
                format!("{name} belongs on the command line, not in a configuration file")
            } else {
                format!(
                    "unknown key {:?}: not a flag of `sluice run` (see `sluice run --help`)",
                    key.get_ref()
                )
            };
            return Err(ConfigError::Invalid {
                origin: origin.to_string(),
                message,
            });
        };
        let values =
            file_values(&name, arg, value.get_ref()).map_err(|message| ConfigError::Invalid {
                origin: at(line_of(&text, value.span().start)).to_string(),
                message,
            })?;
        settings.insert(name, Setting { values, origin });
    }
    Ok(settings)
}

/// Reads the `SLUICE_…` variables of `vars` that name a flag into settings by key (others with
/// the prefix belong to Sluice's other settings, its scripts and tests, and are left alone).
fn read_env(
    vars: &[(String, String)],
    run: &Command,
) -> Result<BTreeMap<String, Setting>, ConfigError> {
    let known = keys(run);
    let mut settings = BTreeMap::new();
    for (name, value) in vars {
        if !name.starts_with(ENV_PREFIX) || OTHER_VARIABLES.contains(&name.as_str()) {
            continue;
        }
        let alias = |arg: &Arg| {
            arg.get_all_aliases()
                .into_iter()
                .flatten()
                .any(|a| env_name(a) == *name)
        };
        let Some((key, arg)) = known
            .iter()
            .find(|(k, arg)| env_name(k) == *name || alias(arg))
        else {
            // Tests, scripts and other tools share the prefix: a variable that names no flag
            // is left alone.
            continue;
        };
        let origin = Origin::Env(name.clone());
        let values = if is_switch(arg) {
            match value.trim() {
                "true" | "1" | "yes" => vec!["true".to_string()],
                "false" | "0" | "no" | "" => vec![],
                other => {
                    return Err(ConfigError::Invalid {
                        origin: origin.to_string(),
                        message: format!("expected true or false, not {other:?}"),
                    })
                }
            }
        } else if is_list(arg) {
            value
                .split(';')
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_string)
                .collect()
        } else if value.is_empty() {
            // An empty variable is unset, as for a switch.
            continue;
        } else {
            vec![value.clone()]
        };
        settings.insert(key.clone(), Setting { values, origin });
    }
    Ok(settings)
}

/// The flags that `matches` (of `run`) took from the command line, by key.
fn given_on_command_line(run: &Command, matches: &ArgMatches) -> Vec<String> {
    keys(run)
        .into_iter()
        .filter(|(_, a)| {
            matches.value_source(a.get_id().as_str()) == Some(ValueSource::CommandLine)
        })
        .map(|(k, _)| k)
        .collect()
}

/// Adds to `argv` (a `run` command line, `run` at `run_at`, whose matches are `matches`) the
/// flags that the configuration file `file` and the variables `vars` set and the command line
/// does not, after checking each value with its flag's parser.
pub fn layer(
    run: &Command,
    argv: &[OsString],
    run_at: usize,
    matches: &ArgMatches,
    file: Option<&Path>,
    vars: &[(String, String)],
) -> Result<Layered, ConfigError> {
    let file_settings = match file {
        Some(path) => read_file(path, run)?,
        None => BTreeMap::new(),
    };
    let env_settings = read_env(vars, run)?;
    let known = keys(run);
    // A layer gives way to the ones above it: for the keys they set, and for the keys that
    // cannot be given with those (a file's `unbounded` yields to `--events` on the command line).
    let yields = |key: &str, above: &[String]| {
        above
            .iter()
            .any(|a| a == key || conflicting(run, &known, a, key))
    };
    let mut above = given_on_command_line(run, matches);
    let env_settings: BTreeMap<String, Setting> = env_settings
        .into_iter()
        .filter(|(key, _)| !yields(key, &above))
        .collect();
    above.extend(env_settings.keys().cloned());
    let mut settings: BTreeMap<String, Setting> = file_settings
        .into_iter()
        .filter(|(key, _)| !yields(key, &above))
        .collect();
    settings.extend(env_settings);
    let mut added: Vec<OsString> = Vec::new();
    let mut positional = Vec::new();
    let mut origins = BTreeMap::new();
    for (key, setting) in settings {
        let Some((_, arg)) = known.iter().find(|(k, _)| *k == key) else {
            continue;
        };
        for value in &setting.values {
            check_value(run, &key, arg, value).map_err(|message| ConfigError::Invalid {
                origin: format!("{}: {key}", setting.origin),
                message,
            })?;
            if arg.is_positional() {
                positional.push(OsString::from(value));
            } else if is_switch(arg) {
                added.push(format!("--{key}").into());
            } else {
                added.push(format!("--{key}={value}").into());
            }
        }
        origins.insert(key, setting.origin);
    }
    let mut out: Vec<OsString> = argv[..=run_at].to_vec();
    out.extend(added);
    out.extend(argv[run_at + 1..].iter().cloned());
    // A positional goes last, after `--`, unless the command line already ends options.
    if !positional.is_empty() {
        if !argv[run_at + 1..].iter().any(|a| a == "--") {
            out.push("--".into());
        }
        out.extend(positional);
    }
    Ok(Layered { argv: out, origins })
}

/// Why a command line could not be resolved.
#[derive(Debug)]
pub enum ResolveError {
    /// The command line itself (clap's own error: usage, `--help`, `--version`).
    Clap(clap::Error),
    /// The configuration file or a variable.
    Config(ConfigError),
}

/// Parses `argv` (the program, then a subcommand of `command`) with `run`'s flags completed
/// from its `--config FILE` and the `SLUICE_…` variables of `vars`.
pub fn resolve(
    command: &Command,
    argv: &[OsString],
    vars: &[(String, String)],
) -> Result<(ArgMatches, Layered), ResolveError> {
    // First pass: which flags the command line gives, and the configuration file — with the
    // pipeline optional, as the file may name it.
    // What the layers may complete — a flag that needs another (`--restore` needs
    // `checkpoint-dir`) — is checked by the full parse.
    // (clap reads the setting on the command it parses from; help and version still show.)
    let lenient = command
        .clone()
        .ignore_errors(true)
        .mut_subcommand("run", |run| run.mut_arg("query", |q| q.required(false)));
    // Help, version: the full command's own (its usage names the pipeline as required).
    let first = match lenient.try_get_matches_from(argv) {
        Ok(first) => first,
        Err(_) => {
            return command
                .clone()
                .try_get_matches_from(argv)
                .map(|matches| (matches, Layered::default()))
                .map_err(ResolveError::Clap)
        }
    };
    let run = command.find_subcommand("run");
    let (Some(("run", run_matches)), Some(run)) = (first.subcommand(), run) else {
        let matches = command
            .clone()
            .try_get_matches_from(argv)
            .map_err(ResolveError::Clap)?;
        return Ok((matches, Layered::default()));
    };
    let run_at = argv
        .iter()
        .position(|a| a == "run")
        .unwrap_or(1)
        .min(argv.len().saturating_sub(1));
    let file = run_matches
        .get_one::<PathBuf>("config_file")
        .map(PathBuf::as_path);
    let layered =
        layer(run, argv, run_at, run_matches, file, vars).map_err(ResolveError::Config)?;
    let matches = command
        .clone()
        .try_get_matches_from(&layered.argv)
        .map_err(|e| match layered.annotate(&e) {
            Some(message) => ResolveError::Config(ConfigError::Combination(message)),
            None => ResolveError::Clap(e),
        })?;
    Ok((matches, layered))
}

/// Checks one value of `key` with the flag's own parser: `run` parses it alone (with the
/// pipeline optional); what only the whole command line can tell — a flag that needs another,
/// or conflicts with one — is left to the full parse.
fn check_value(run: &Command, key: &str, arg: &Arg, value: &str) -> Result<(), String> {
    if is_switch(arg) {
        return Ok(());
    }
    let token = if arg.is_positional() {
        value.to_string()
    } else {
        format!("--{key}={value}")
    };
    let alone = run
        .clone()
        .mut_arg("query", |q| q.required(false))
        .try_get_matches_from(["run".to_string(), token]);
    use clap::error::ErrorKind::*;
    match alone {
        Err(e) if matches!(e.kind(), MissingRequiredArgument | ArgumentConflict) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("").trim();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_string())
        }
        Ok(_) => Ok(()),
    }
}

/// Whether a configuration key's value is a secret (never printed).
fn secret(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "sasl.jaas",
        "key.pem",
        "private",
        "credential",
    ]
    .iter()
    .any(|s| name.contains(s))
}

/// The effective configuration of a run as TOML: every configurable flag with its value (or
/// its default), secrets redacted, and where each value came from.
pub fn print(run: &Command, matches: &ArgMatches, layered: &Layered) -> String {
    let mut lines = vec![
        "# The effective configuration of this run (sluice run --print-config).".to_string(),
        "# Precedence: built-in defaults < --config file < SLUICE_* environment < flags."
            .to_string(),
        "# Defaults and secrets are commented out; read back with --config, this sets the same"
            .to_string(),
        "# run once the secrets are given again (SLUICE_KAFKA_PROP, a --kafka-config file)."
            .to_string(),
    ];
    let mut tables = Vec::new();
    for (key, arg) in keys(run) {
        let id = arg.get_id().as_str();
        let source = match (matches.value_source(id), layered.origins.get(&key)) {
            (Some(ValueSource::CommandLine), Some(origin)) => origin.to_string(),
            (Some(ValueSource::CommandLine), None) => "command line".into(),
            (Some(ValueSource::DefaultValue), _) => "default".into(),
            (Some(_), _) => "environment".into(),
            (None, _) => "not set".into(),
        };
        let raw: Vec<String> = matches
            .get_raw(id)
            .map(|values| values.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default();
        let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
        let defaulted = matches.value_source(id) == Some(ValueSource::DefaultValue);
        if is_switch(arg) {
            let on = matches.get_flag(id);
            if defaulted {
                lines.push(format!("# {key} = {on}  # default"));
            } else {
                lines.push(format!("{key} = {on}  # {source}"));
            }
        } else if is_list(arg) && (key == "param" || key == "kafka-prop") {
            let mut table = vec![format!("[{key}]  # {source}")];
            for v in &raw {
                let (name, value) = v.split_once('=').unwrap_or((v, ""));
                if secret(name) {
                    // Commented out: read back, the printout leaves the secret unset.
                    table.push(format!("# {} = <redacted>", quote(name)));
                } else {
                    table.push(format!("{} = {}", quote(name), quote(value)));
                }
            }
            tables.push(table.join("\n"));
        } else if is_list(arg) {
            let items: Vec<String> = raw.iter().map(|v| quote(v)).collect();
            lines.push(format!("{key} = [{}]  # {source}", items.join(", ")));
        } else if let Some(v) = raw.first() {
            if secret(&key) {
                lines.push(format!("# {key} = <redacted>  # {source}"));
            } else {
                // A default stays a comment: read back as a file, the printout sets only what
                // was set.
                let comment = if defaulted { "# " } else { "" };
                lines.push(format!("{comment}{key} = {}  # {source}", quote(v)));
            }
        } else {
            lines.push(format!("# {key} = …  (not set)"));
        }
    }
    let mut text = lines.join("\n");
    for table in tables {
        text.push_str("\n\n");
        text.push_str(&table);
    }
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    fn run_command() -> Command {
        crate::cli::Cli::command()
            .find_subcommand("run")
            .cloned()
            .expect("sluice has `run`")
    }

    /// A value to configure `arg` with that differs from its default where possible.
    fn sample(key: &str, arg: &Arg) -> Option<Vec<String>> {
        if is_switch(arg) {
            return Some(vec!["true".into()]);
        }
        let chosen = match key {
            "query" => "q7",
            "param" => return Some(vec!["rules=rules.toml".into(), "k=3".into()]),
            "kafka-prop" => return Some(vec!["security.protocol=plaintext".into()]),
            "source" => "file:data/bids.json",
            "csv-header" => "id,time,amount",
            "state-ttl" | "give-up-behind" | "mqtt-until-idle" => "90s",
            "stop-after" | "checkpoint-min-pause" => "2s",
            "base-time" => "2026-06-01 12:00:00.000",
            "burst" => "10x@60s+10s",
            "dead-letter" => "out/dead.jsonl",
            "checkpoint-dir" => "out/checkpoints",
            "report-file" => "out/report.json",
            "histogram" => "out/ccdf.tsv",
            "metrics-addr" => "127.0.0.1:9464",
            "kafka-config" => "kafka.properties",
            "kafka-group" => "fraud-readers",
            "sink-partitions" => "6",
            "mqtt-client-id" => "sluice-plant-1",
            "mqtt-user" => "plant",
            "mqtt-topic-fields" => "sensors/{site}/{device}/+",
            "mqtt-group" => "plant",
            "process" => "1",
            "hostfile" => "hosts.txt",
            _ => "",
        };
        if !chosen.is_empty() {
            return Some(vec![chosen.into()]);
        }
        let possible: Vec<String> = arg
            .get_possible_values()
            .iter()
            .map(|p| p.get_name().to_string())
            .collect();
        let defaults: Vec<String> = arg
            .get_default_values()
            .iter()
            .map(|d| d.to_string_lossy().into_owned())
            .collect();
        if let Some(other) = possible.iter().find(|p| !defaults.contains(p)) {
            return Some(vec![other.clone()]);
        }
        if !defaults.is_empty() {
            return Some(defaults);
        }
        None
    }

    /// A scratch file holding `text`, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(text: &str) -> Self {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!(
                "sluice-config-test-{}-{n}.toml",
                std::process::id()
            ));
            std::fs::write(&path, text).unwrap();
            Scratch(path)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    fn argv(args: &[&str]) -> Vec<OsString> {
        ["sluice", "run"]
            .iter()
            .chain(args)
            .map(OsString::from)
            .collect()
    }

    /// `sluice run ARGS` resolved with `file` (a TOML text) and `vars`: the run's matches.
    fn resolve_run(
        args: &[&str],
        file: Option<&str>,
        vars: &[(&str, &str)],
    ) -> Result<(ArgMatches, Layered), String> {
        let scratch = file.map(Scratch::new);
        let mut args: Vec<&str> = args.to_vec();
        let path = scratch.as_ref().map(|s| s.0.display().to_string());
        if let Some(path) = &path {
            args.insert(0, path);
            args.insert(0, "--config");
        }
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let command = crate::cli::Cli::command();
        let (matches, layered) = resolve(&command, &argv(&args), &vars).map_err(|e| match e {
            ResolveError::Clap(e) => e.to_string(),
            ResolveError::Config(e) => e.to_string(),
        })?;
        let run = matches.subcommand_matches("run").expect("a run").clone();
        Ok((run, layered))
    }

    fn raw(matches: &ArgMatches, id: &str) -> Vec<String> {
        matches
            .get_raw(id)
            .map(|v| v.map(|v| v.to_string_lossy().into_owned()).collect())
            .unwrap_or_default()
    }

    /// The TOML of one key.
    fn toml_of(key: &str, arg: &Arg, values: &[String]) -> String {
        let quote = |v: &str| toml::Value::String(v.to_string()).to_string();
        if is_switch(arg) {
            format!("{key} = true\n")
        } else if key == "param" || key == "kafka-prop" {
            let rows: Vec<String> = values
                .iter()
                .map(|v| {
                    let (name, value) = v.split_once('=').unwrap();
                    format!("{} = {}", quote(name), quote(value))
                })
                .collect();
            format!("[{key}]\n{}\n", rows.join("\n"))
        } else if is_list(arg) {
            let items: Vec<String> = values.iter().map(|v| quote(v)).collect();
            format!("{key} = [{}]\n", items.join(", "))
        } else {
            format!("{key} = {}\n", quote(&values[0]))
        }
    }

    /// Settings some flags need to be given at all (`--checkpoint-every` needs a directory).
    const COMPANIONS: &str = "checkpoint-dir = \"out/checkpoints\"\nprocesses = 2\n";

    #[test]
    fn every_flag_of_run_is_a_key_of_the_file_and_a_variable() {
        let run = run_command();
        let keys = keys(&run);
        assert!(keys.len() > 60, "only {} keys", keys.len());
        for (key, arg) in keys {
            let id = arg.get_id().as_str();
            let values = sample(&key, arg).unwrap();
            let query: &[&str] = if key == "query" { &[] } else { &["q5"] };
            let text = toml_of(&key, arg, &values);
            let by_file = resolve_run(query, Some(&text), &[]).or_else(|first| {
                if !first.contains("required") {
                    return Err(first);
                }
                resolve_run(query, Some(&format!("{COMPANIONS}{text}")), &[])
            });
            let (matches, layered) =
                by_file.unwrap_or_else(|e| panic!("{key} from the file ({text:?}): {e}"));
            assert_eq!(
                matches.value_source(id),
                Some(ValueSource::CommandLine),
                "{key} from the file"
            );
            if is_switch(arg) {
                assert!(matches.get_flag(id), "{key} from the file");
            } else {
                // A table's entries come in the file's key order.
                let mut got = raw(&matches, id);
                let mut want = values.clone();
                got.sort();
                want.sort();
                assert_eq!(got, want, "{key} from the file");
            }
            assert!(
                matches!(layered.origins.get(&key), Some(Origin::File { line, .. }) if *line >= 1),
                "{key}: {:?}",
                layered.origins
            );

            // The same through the environment.
            let variable = env_name(&key);
            let joined = if is_switch(arg) {
                "true".to_string()
            } else {
                values.join(";")
            };
            let vars = [(variable.as_str(), joined.as_str())];
            let by_env = resolve_run(query, None, &vars).or_else(|first| {
                if !first.contains("required") {
                    return Err(first);
                }
                resolve_run(query, Some(COMPANIONS), &vars)
            });
            let (matches, layered) =
                by_env.unwrap_or_else(|e| panic!("{key} from {variable}={joined}: {e}"));
            if is_switch(arg) {
                assert!(matches.get_flag(id), "{key} from {variable}");
            } else {
                assert_eq!(raw(&matches, id), values, "{key} from {variable}");
            }
            assert_eq!(layered.origins.get(&key), Some(&Origin::Env(variable)));
        }
    }

    #[test]
    fn flags_beat_the_environment_which_beats_the_file() {
        let file = "watermark-delay = \"1s\"\nrate = 500\nevents = 7000\n";
        let vars = [("SLUICE_RATE", "600"), ("SLUICE_EVENTS", "8000")];
        let (m, layered) = resolve_run(&["q5", "--events", "9000"], Some(file), &vars).unwrap();
        assert_eq!(raw(&m, "watermark_delay"), ["1s"]);
        assert_eq!(raw(&m, "rate"), ["600"]);
        assert_eq!(raw(&m, "events"), ["9000"]);
        assert!(matches!(
            layered.origins["watermark-delay"],
            Origin::File { line: 1, .. }
        ));
        assert_eq!(layered.origins["rate"], Origin::Env("SLUICE_RATE".into()));
        assert!(!layered.origins.contains_key("events"));
        // Without any layer, the built-in default.
        let (m, _) = resolve_run(&["q5"], None, &[]).unwrap();
        assert_eq!(
            m.value_source("watermark_delay"),
            Some(ValueSource::DefaultValue)
        );
    }

    #[test]
    fn underscores_and_the_pipeline_may_come_from_the_file() {
        let file = "query = \"q7\"\nwatermark_delay = \"2s\"\n[param]\nk = 3\n";
        let (m, _) = resolve_run(&[], Some(file), &[]).unwrap();
        assert_eq!(raw(&m, "query"), ["q7"]);
        assert_eq!(raw(&m, "watermark_delay"), ["2s"]);
        assert_eq!(raw(&m, "params"), ["k=3"]);
        // The command line's pipeline wins.
        let (m, _) = resolve_run(&["q3"], Some(file), &[]).unwrap();
        assert_eq!(raw(&m, "query"), ["q3"]);
    }

    #[test]
    fn an_unknown_key_is_an_error_naming_the_file_line() {
        let file = "rate = 10\n\n# a comment\nwatermark-dealy = \"2s\"\n";
        let e = resolve_run(&["q5"], Some(file), &[]).unwrap_err();
        assert!(
            e.contains(".toml line 4: unknown key \"watermark-dealy\""),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn a_bad_value_is_an_error_naming_the_key_and_line() {
        let file = "rate = 10\nwatermark-delay = \"soon\"\n";
        let e = resolve_run(&["q5"], Some(file), &[]).unwrap_err();
        assert!(e.contains(".toml line 2: watermark-delay: "), "{e}");
        assert!(e.contains("soon"), "{e}");
        assert_eq!(e.lines().count(), 1, "{e}");
        let e = resolve_run(&["q5"], Some("paced = \"yes\"\n"), &[]).unwrap_err();
        assert!(
            e.contains(".toml line 1: paced: expected true or false"),
            "{e}"
        );
        let e = resolve_run(&["q5"], Some("rate = [1, 2]\n"), &[]).unwrap_err();
        assert!(e.contains("line 1: rate: expected one value"), "{e}");
        let e = resolve_run(&["q5"], Some("rate = \n"), &[]).unwrap_err();
        assert!(e.contains(".toml line 1"), "{e}");
        let e = resolve_run(&["q5"], None, &[("SLUICE_WORKERS", "many")]).unwrap_err();
        assert!(e.starts_with("SLUICE_WORKERS: workers: "), "{e}");
        let e = resolve_run(&["q5"], Some("config = \"other.toml\"\n"), &[]).unwrap_err();
        assert!(e.contains("belongs on the command line"), "{e}");
    }

    #[test]
    fn a_layer_completes_what_a_flag_needs_and_yields_to_a_conflicting_flag() {
        // --restore needs --checkpoint-dir: the file may give it.
        let (m, _) =
            resolve_run(&["q5", "--restore"], Some("checkpoint-dir = \"ck\"\n"), &[]).unwrap();
        assert_eq!(raw(&m, "checkpoint_dir"), ["ck"]);
        // The file's `unbounded` gives way to --events (or SLUICE_EVENTS) above it.
        let file = Some("unbounded = true\nrate = 500\n");
        let (m, layered) = resolve_run(&["q5", "--events", "5"], file, &[]).unwrap();
        assert!(!m.get_flag("unbounded"));
        assert_eq!(raw(&m, "rate"), ["500"]);
        assert!(!layered.origins.contains_key("unbounded"));
        let (m, _) = resolve_run(&["q5"], file, &[("SLUICE_EVENTS", "5")]).unwrap();
        assert!(!m.get_flag("unbounded"));
        assert_eq!(raw(&m, "events"), ["5"]);
        // Two conflicting keys of one layer: a one-line error saying where they were set.
        let e = resolve_run(&["q5"], Some("unbounded = true\nevents = 5\n"), &[]).unwrap_err();
        assert!(e.contains("cannot be used with"), "{e}");
        assert!(
            e.contains(".toml line 1") && e.contains(".toml line 2"),
            "{e}"
        );
        assert_eq!(e.lines().count(), 1, "{e}");
    }

    #[test]
    fn dotted_properties_aliases_and_empty_variables() {
        let file =
            "threads = 3\n[kafka-prop]\nsecurity.protocol = \"ssl\"\n\"client.id\" = \"x\"\n";
        let (m, _) = resolve_run(&["q5"], Some(file), &[]).unwrap();
        assert_eq!(raw(&m, "workers"), ["3"]);
        let mut props = raw(&m, "props");
        props.sort();
        assert_eq!(props, ["client.id=x", "security.protocol=ssl"]);
        let vars = [("SLUICE_THREADS", "4"), ("SLUICE_SOURCE", "")];
        let (m, _) = resolve_run(&["q5"], None, &vars).unwrap();
        assert_eq!(raw(&m, "workers"), ["4"]);
        assert_eq!(m.value_source("source"), None);
    }

    #[test]
    fn variables_that_name_no_flag_are_left_alone() {
        let vars = [("SLUICE_LOG", "debug"), ("SLUICE_SOMETHING_ELSE", "x")];
        let (_, layered) = resolve_run(&["q5"], None, &vars).unwrap();
        assert!(layered.origins.is_empty());
    }

    #[test]
    fn the_printed_configuration_reads_back_and_hides_secrets() {
        let file = "rate = 500\npaced = true\n[kafka-prop]\n\"sasl.password\" = \"hunter2\"\n";
        let (m, layered) = resolve_run(&["q5", "--events", "9000"], Some(file), &[]).unwrap();
        let run = run_command();
        let printed = print(&run, &m, &layered);
        assert!(!printed.contains("hunter2"), "{printed}");
        assert!(
            printed.contains("# \"sasl.password\" = <redacted>"),
            "{printed}"
        );
        assert!(printed.contains("rate = \"500\"  # "), "{printed}");
        assert!(
            printed.contains("events = \"9000\"  # command line"),
            "{printed}"
        );
        assert!(printed.contains("paced = true"), "{printed}");
        assert!(
            printed.contains("# watermark-delay = \"4s\"  # default"),
            "{printed}"
        );
        // Read back as a configuration file, it gives the same run (less the secret).
        let (again, _) = resolve_run(&[], Some(&printed), &[]).unwrap();
        for id in ["query", "rate", "events", "watermark_delay", "workers"] {
            assert_eq!(raw(&again, id), raw(&m, id), "{id}");
        }
        assert!(again.get_flag("paced"));
    }

    #[test]
    fn every_flag_has_a_sample() {
        let run = run_command();
        let missing: Vec<String> = keys(&run)
            .into_iter()
            .filter(|(k, a)| sample(k, a).is_none())
            .map(|(k, _)| k)
            .collect();
        assert!(missing.is_empty(), "{missing:?}");
    }
}
