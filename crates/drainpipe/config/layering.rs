//! Where a value comes from: flags, `DRAINPIPE_*` variables, the platform's variables, the
//! TOML file, the defaults, turned into one clap parse.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, Command};

use super::commands::ONE_RUN_FLAGS;
use super::options::ServeOptions;

/// Variables other software sets, read for an option when neither its flag nor its
/// `DRAINPIPE_*` variable is given (the first one set wins): Heroku's `PORT`, the search
/// add-ons' URLs, and the drain-token variable's name before 0.2.
pub const PLATFORM_VARIABLES: &[(&str, &[&str])] = &[
    ("listen", &["PORT"]),
    ("elasticsearch-url", &["BONSAI_URL", "SEARCHBOX_URL", "ELASTICSEARCH_URL"]),
    ("drain-token", &["DRAINPIPE_DRAIN_TOKENS"]),
];

/// The environment variable of a flag: `--spool-dir` is `DRAINPIPE_SPOOL_DIR`.
pub fn env_name(flag: &str) -> String {
    format!("DRAINPIPE_{}", flag.to_ascii_uppercase().replace('-', "_"))
}

/// The command line of `C` as users meet it: every flag with its `DRAINPIPE_*` variable (for
/// the man page and shell completions too).
pub fn command<C: clap::CommandFactory>() -> Command {
    with_env_names(C::command())
}

/// Parses `args` into `C`, with every option layered as the module says. `env` reads the
/// platform's variables (the `DRAINPIPE_*` ones clap reads itself).
pub fn parse<C: clap::Parser>(args: &[OsString], env: impl Fn(&str) -> Option<String>) -> Result<C, clap::Error> {
    let command = command::<C>();
    let matches = command.clone().try_get_matches_from(args)?;
    // The command that takes the options: `serve`, or `list` in `deadletter list`.
    let mut path = Vec::new();
    let mut sub = &matches;
    while let Some((name, next)) = sub.subcommand() {
        path.push(name.to_owned());
        sub = next;
    }
    if path.is_empty() {
        return C::from_arg_matches(&matches);
    }
    // The commands an operator runs by hand on a machine that runs drainpipe read its
    // configuration file when none is named, so they need no flags there.
    let installed = Path::new(INSTALLED_CONFIG);
    let by_hand = OPERATOR_COMMANDS.contains(&path[0].as_str()) && installed.is_file();
    let file =
        sub.try_get_one::<PathBuf>("config").ok().flatten().map(PathBuf::as_path).or(by_hand.then_some(installed));
    let mut fallbacks = match file {
        Some(path) => read_file(path).map_err(|e| clap::Error::raw(clap::error::ErrorKind::Io, format!("{e:#}\n")))?,
        None => BTreeMap::new(),
    };
    for (flag, variables) in PLATFORM_VARIABLES {
        if let Some((var, value)) = variables.iter().find_map(|v| env(v).filter(|s| !s.is_empty()).map(|s| (v, s))) {
            let values = value.split(',').map(|v| v.trim().to_owned()).collect();
            check_value(flag, &values).map_err(|e| invalid(format!("{var}: {e}")))?;
            fallbacks.insert((*flag).to_owned(), values);
        }
    }
    let command = with_defaults(command, &path, &fallbacks);
    C::from_arg_matches(&command.try_get_matches_from(args)?)
}

/// `command` with the subcommand at `path` taking `fallbacks` as its defaults.
fn with_defaults(command: Command, path: &[String], fallbacks: &BTreeMap<String, Vec<String>>) -> Command {
    let Some((name, rest)) = path.split_first() else {
        return fallbacks.iter().fold(command, |sub, (flag, values)| {
            let id = sub.get_arguments().find(|a| a.get_long() == Some(flag.as_str())).map(|a| a.get_id().clone());
            match id {
                Some(id) => sub.mut_arg(id, |a| a.default_values(values.clone())),
                None => sub,
            }
        });
    };
    command.mut_subcommand(name, |sub| with_defaults(sub, rest, fallbacks))
}

/// Where the Debian package installs the configuration (`deploy/drainpipe.toml`).
const INSTALLED_CONFIG: &str = "/etc/drainpipe/drainpipe.toml";

/// Commands that read [`INSTALLED_CONFIG`] when no `--config` is given.
const OPERATOR_COMMANDS: [&str; 3] = ["tail", "search", "deadletter"];

/// Every subcommand's flags (at any depth) read `DRAINPIPE_<FLAG>` too, but [`ONE_RUN_FLAGS`]'s.
fn with_env_names(command: Command) -> Command {
    command.mut_subcommands(|sub| {
        with_env_names(sub.mut_args(|arg| {
            match arg.get_long().map(|flag| (ONE_RUN_FLAGS.contains(&flag), env_name(flag))) {
                Some((false, var)) if arg.get_env().is_none() => arg.env(var),
                _ => arg,
            }
        }))
    })
}

/// The file's options as the strings a flag would get; unknown keys and values the flag
/// would refuse are errors that name the file and the key.
fn read_file(path: &Path) -> anyhow::Result<BTreeMap<String, Vec<String>>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    file_options(&text).map_err(|e| match e {
        FileError::Toml(e) => anyhow::anyhow!("invalid config file {}: {e}", path.display()),
        FileError::Option(key, e) => anyhow::anyhow!("config file {}: {key}: {e}", path.display()),
    })
}

/// What is wrong with a configuration file's text.
#[derive(Debug)]
pub enum FileError {
    Toml(toml::de::Error),
    /// An unknown key, or a value its flag refuses.
    Option(String, String),
}

/// A configuration file's options (its text), as [`read_file`] takes them.
pub fn file_options(text: &str) -> Result<BTreeMap<String, Vec<String>>, FileError> {
    let table: toml::Table = toml::from_str(text).map_err(FileError::Toml)?;
    let mut options = BTreeMap::new();
    // `[[rule]]` tables are rules, read and checked by their own reader (commands/rules.rs).
    for (key, value) in table.into_iter().filter(|(key, _)| key != "rule") {
        let values = match value {
            toml::Value::Array(items) => items.into_iter().map(scalar).collect::<Option<Vec<_>>>(),
            other => scalar(other).map(|v| vec![v]),
        };
        let checked = values
            .ok_or_else(|| "expected a string, number, boolean or array of them".to_owned())
            .and_then(|values| check_value(&key, &values).map(|()| values));
        match checked {
            Ok(values) => options.insert(key, values),
            Err(e) => return Err(FileError::Option(key, e)),
        };
    }
    Ok(options)
}

fn scalar(value: toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s),
        toml::Value::Integer(n) => Some(n.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `serve`'s command line alone, with its variables.
pub fn serve_command() -> Command {
    let serve = with_env_names(Command::new("drainpipe").subcommand(ServeOptions::augment_args(Command::new("serve"))));
    serve.find_subcommand("serve").cloned().unwrap_or_default()
}

/// Whether `serve`'s `--<flag>` takes `values` (every option file key is one of serve's).
pub fn check_value(flag: &str, values: &Vec<String>) -> Result<(), String> {
    let serve = serve_command();
    let Some(arg) = serve.get_arguments().find(|a| a.get_long() == Some(flag)) else {
        return Err("unknown option".to_owned());
    };
    if !arg.get_action().takes_values() {
        return match values.as_slice() {
            [v] if v == "true" || v == "false" => Ok(()),
            _ => Err("expected true or false".to_owned()),
        };
    }
    // Exactly what the flag would do with it, without the environment.
    let serve = serve.mut_args(|a| a.env(None::<&str>));
    let args = std::iter::once("serve".to_owned()).chain(values.iter().map(|v| format!("--{flag}={v}")));
    match serve.try_get_matches_from(args) {
        Ok(_) => Ok(()),
        Err(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            Err(first.strip_prefix("error: ").unwrap_or(first).to_owned())
        }
    }
}

fn invalid(message: String) -> clap::Error {
    clap::Error::raw(clap::error::ErrorKind::InvalidValue, format!("{message}\n"))
}
