//! Every option, defined once: a field of one of serve's option groups (options.rs) or of a
//! command's own arguments (commands.rs). Its `#[arg]` gives
//! the flag, help and default; its type parses and validates the value and, when it is a
//! secret, redacts it when printed; everything else is derived from the flag's name:
//! the environment variable (`DRAINPIPE_` and the name upper-cased, `-` as `_`; none for
//! [`ONE_RUN_FLAGS`]) and, for serve's, the TOML key (the name itself). Adding an option is
//! adding a field.
//!
//! Precedence: flags, then `DRAINPIPE_*` variables, then the platform's variables
//! ([`PLATFORM_VARIABLES`]), then the TOML file (`--config`), then the built-in defaults. clap
//! handles the first two and the last; [`parse`] turns the platform's variables and the file
//! into clap defaults, so one parse does it all and every value goes through the same parser.
//!
//! Groups are what commands share: `serve`, `check-config` and `healthcheck` take them all,
//! `setup`, `tail`, `search` and `deadletter` the general and Elasticsearch ones, `replay` those
//! and the bulk ones.

mod commands;
mod layering;
mod options;
mod resolve;
#[cfg(test)]
pub(crate) mod tests;
mod values;

pub use commands::{
    now_ms, when, Action, CheckConfigArgs, DeadLetterArgs, DrainsAction, DrainsApplyArgs, DrainsArgs, DrainsOptions,
    DrainsPlanArgs, Filters, HealthcheckArgs, ReplayArgs, ReplayFormat, RulesAction, RulesArgs, RulesTestArgs,
    SearchArgs, Selection, SetupArgs, TailArgs, LEVELS, ONE_RUN_FLAGS,
};
pub use layering::{check_value, command, env_name, file_options, parse, serve_command, FileError, PLATFORM_VARIABLES};
pub use options::{BulkOptions, DeliveryOptions, ElasticsearchOptions, GeneralOptions, ReceiveOptions, ServeOptions};
pub use values::{
    ByteSize, Credentials, DrainToken, ElasticsearchUrl, FsyncPolicy, HumanDuration, ListenAddr, LogFormat, Namespace,
    OtlpToken, Retention, RetentionRule, Secret,
};
