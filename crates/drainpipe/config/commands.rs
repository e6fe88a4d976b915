//! Each command's own options (serve's groups are in options.rs): what `check-config`, `setup`,
//! `replay`, `healthcheck`, `tail`, `search` and `deadletter` take besides them, with the parsers
//! of their values.

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Args, Subcommand};
use drainpipe_transform::Timestamp;

use super::options::{BulkOptions, ElasticsearchOptions, GeneralOptions, ServeOptions};
use super::values::{DrainToken, HumanDuration};

/// Flags that choose what one run does, not how drainpipe is set up: no variable, so a
/// leftover one cannot silently narrow a `deadletter replay`, a `search` or a `tail`.
pub const ONE_RUN_FLAGS: [&str; 21] = [
    "since",
    "reason",
    "rollover",
    "json",
    "until",
    "count",
    "app",
    "dyno",
    "process-type",
    "dataset",
    "level",
    "status",
    "num",
    "no-follow",
    "late",
    "follow-page",
    "file",
    "yes",
    "remove-others",
    "check",
    "drain-tokens",
];

#[derive(Args, Debug)]
pub struct CheckConfigArgs {
    #[command(flatten)]
    pub serve: ServeOptions,
    /// Also ask each Elasticsearch node: it answers, takes the credentials, grants the
    /// privileges drainpipe needs; and whether the index templates are current. Changes nothing
    #[arg(long)]
    pub online: bool,
}

#[derive(Args, Debug)]
pub struct SetupArgs {
    #[command(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    /// Also import the Kibana data view, searches and dashboard (credentials may be in the URL)
    #[arg(long, value_name = "URL", hide_env_values = true)]
    pub kibana_url: Option<String>,
}

#[derive(Args, Debug)]
pub struct ReplayArgs {
    #[command(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    #[command(flatten)]
    pub bulk: BulkOptions,
    /// What the files hold
    #[arg(long, value_enum, default_value = "auto")]
    pub format: ReplayFormat,
    /// The Heroku app the lines belong to (heroku.app); not for archives, whose frames carry
    /// their own
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// Drain tokens' apps, as `serve` has them (its variable and file are read too): syslog
    /// lines find their app by token, as they did live
    #[arg(long, value_name = "TOKEN=APP", value_delimiter = ',', hide_env_values = true)]
    pub drain_token: Vec<DrainToken>,
    /// Files to index; folders are read for the archive's files (`--archive-dir`)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ReplayFormat {
    /// Decide per file: a Logplex body starts with an octet count.
    Auto,
    /// Raw Logplex request bodies.
    Logplex,
    /// What `heroku logs` prints.
    HerokuLogs,
    /// drainpipe's raw archive (`--archive-dir`): `.log.zst` hour files, or folders of them.
    /// Each line gets the id it had live.
    Archive,
}

#[derive(Args, Debug)]
pub struct HealthcheckArgs {
    #[command(flatten)]
    pub serve: ServeOptions,

    /// Ask this URL instead of the one the serve options lead to
    #[arg(long, value_name = "URL", env = "DRAINPIPE_HEALTHCHECK_URL")]
    pub url: Option<reqwest::Url>,

    /// Give up after this long
    #[arg(long, value_name = "DURATION", default_value = "3s")]
    pub timeout: HumanDuration,
}

/// What both commands select by.
#[derive(Args, Debug)]
pub struct Filters {
    #[command(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    /// Only this app's lines (heroku.app)
    #[arg(long, value_name = "APP", help_heading = "Filters")]
    pub app: Option<String>,
    /// Only the lines this dyno wrote (web.1, router, api, …), as `heroku logs --dyno`
    #[arg(long, value_name = "DYNO", conflicts_with = "process_type", help_heading = "Filters")]
    pub dyno: Option<String>,
    /// Only the lines dynos of this process type wrote (web, worker, …)
    #[arg(long, value_name = "TYPE", help_heading = "Filters")]
    pub process_type: Option<String>,
    /// Only this dataset: router, app, platform, runtime_metrics, logplex, postgres, redis
    #[arg(long, value_name = "DATASET", value_parser = dataset, help_heading = "Filters")]
    pub dataset: Option<String>,
    /// Only lines at this level or more severe (trace, debug, info, notice, warning, error,
    /// critical, alert, emergency)
    #[arg(long, value_name = "LEVEL", value_parser = level, help_heading = "Filters")]
    pub level: Option<&'static str>,
    /// Only router lines with this status or in this range (`503`, `500-599`, `5xx`)
    #[arg(long, value_name = "STATUS", value_parser = status, help_heading = "Filters")]
    pub status: Option<(u16, u16)>,
    /// Print each line's document as one JSON object (NDJSON)
    #[arg(long)]
    pub json: bool,
    /// Query-string syntax, on the message unless a field is named (`timeout`,
    /// `app.user.plan:pro AND NOT heroku.dyno:web.2`)
    #[arg(value_name = "QUERY")]
    pub query: Option<String>,
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// Lines to print before following
    #[arg(short = 'n', long = "num", value_name = "N", default_value = "100")]
    pub num: usize,
    /// Print the last lines and exit, as `heroku logs` without --tail
    #[arg(long)]
    pub no_follow: bool,
    /// How late a line may be indexed after newer ones and still be shown (refresh interval,
    /// spool catching up)
    #[arg(long, value_name = "DURATION", default_value = "30s")]
    pub late: HumanDuration,
    /// Lines per answer while following (small in tests, to cross pages)
    #[arg(long, value_name = "N", default_value = "5000", hide = true)]
    pub follow_page: usize,
}

#[derive(Args, Debug)]
pub struct SearchArgs {
    #[command(flatten)]
    pub filters: Filters,
    /// From this long ago (`2h`) or this time (`2026-11-24T10:00:00Z`); default: everything
    #[arg(long, value_name = "WHEN", value_parser = when)]
    pub since: Option<u64>,
    /// Up to this long ago or this time; default: now
    #[arg(long, value_name = "WHEN", value_parser = when)]
    pub until: Option<u64>,
    /// Print only how many lines match
    #[arg(long)]
    pub count: bool,
}

pub const DATASETS: [&str; 7] = ["router", "app", "platform", "runtime_metrics", "logplex", "postgres", "redis"];
pub const LEVELS: [&str; 9] =
    ["trace", "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"];

fn dataset(value: &str) -> Result<String, String> {
    let name = value.strip_prefix("heroku.").unwrap_or(value);
    if DATASETS.contains(&name) {
        Ok(name.to_owned())
    } else {
        Err(format!("unknown dataset {value:?}; one of {}", DATASETS.join(", ")))
    }
}

fn level(value: &str) -> Result<&'static str, String> {
    let value = if value.eq_ignore_ascii_case("warn") { "warning" } else { value };
    LEVELS
        .iter()
        .find(|l| l.eq_ignore_ascii_case(value))
        .copied()
        .ok_or_else(|| format!("unknown level {value:?}; one of {}", LEVELS.join(", ")))
}

/// `503`, `500-599` or `5xx`, as an inclusive range.
fn status(value: &str) -> Result<(u16, u16), String> {
    let bad = || format!("{value:?} is not a status, a range (500-599) or a class (5xx)");
    let number = |s: &str| s.trim().parse::<u16>().ok().filter(|n| (100..=599).contains(n));
    if let Some(class) = value.strip_suffix("xx").and_then(|c| c.parse::<u16>().ok()).filter(|c| (1..=5).contains(c)) {
        return Ok((class * 100, class * 100 + 99));
    }
    match value.split_once('-') {
        Some((from, to)) => match (number(from), number(to)) {
            (Some(a), Some(b)) if a <= b => Ok((a, b)),
            _ => Err(bad()),
        },
        None => number(value).map(|n| (n, n)).ok_or_else(bad),
    }
}

/// `--since`/`--until` (here and in `deadletter`): a duration back from now, or a time (RFC
/// 3339, any offset): epoch milliseconds.
pub fn when(value: &str) -> Result<u64, String> {
    let ms = match humantime::parse_duration(value) {
        Ok(ago) => now_ms().saturating_sub(ago.as_millis() as u64),
        // Any offset; UTC times past what nanoseconds since 1970 hold (2262) too.
        Err(_) => Timestamp::parse_rfc3339(value.as_bytes())
            .map(|t| u64::try_from(t.unix_nanos() / 1_000_000).unwrap_or(0))
            .or_else(|| {
                let t = humantime::parse_rfc3339_weak(value).ok()?;
                Some(t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64))
            })
            .ok_or_else(|| format!("{value:?} is neither a duration (`2h`) nor a time (`2026-11-24T10:00:00Z`)"))?,
    };
    // `@timestamp` is date_nanos, which ends in 2262.
    const LAST_NANOS_MS: u64 = i64::MAX as u64 / 1_000_000;
    Ok(ms.min(LAST_NANOS_MS))
}

/// Now, in epoch milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

#[derive(Args, Debug)]
pub struct DrainsArgs {
    #[command(subcommand)]
    pub action: DrainsAction,
}

#[derive(Subcommand, Debug)]
pub enum DrainsAction {
    /// Show what `apply` would add, change and remove on Heroku; changes nothing
    Plan(DrainsPlanArgs),
    /// Add and change drains until Heroku has what the file says (removals need --yes)
    Apply(DrainsApplyArgs),
}

#[derive(Args, Debug)]
pub struct DrainsOptions {
    /// The drains file: drainpipe's endpoint and credentials, the apps and their labels
    #[arg(long, value_name = "FILE")]
    pub file: PathBuf,
    /// Also remove drains that do not point at drainpipe (an add-on's never)
    #[arg(long)]
    pub remove_others: bool,
    /// Heroku's Platform API (the key is HEROKU_API_KEY's, else ~/.netrc's for its host)
    #[arg(long, value_name = "URL", default_value = drainpipe_heroku::DEFAULT_URL)]
    pub heroku_api_url: reqwest::Url,
}

#[derive(Args, Debug)]
pub struct DrainsPlanArgs {
    #[command(flatten)]
    pub drains: DrainsOptions,
    /// Exit 1 when Heroku's drains differ from the file (for cron or CI)
    #[arg(long)]
    pub check: bool,
    /// Print only `serve`'s drain-token map (TOKEN=APP,…, for --drain-token or
    /// DRAINPIPE_DRAIN_TOKEN) from the tokens Heroku reports for drainpipe's drains
    #[arg(long)]
    pub drain_tokens: bool,
}

#[derive(Args, Debug)]
pub struct DrainsApplyArgs {
    #[command(flatten)]
    pub drains: DrainsOptions,
    /// Remove the drains the plan removes; without it, a plan that removes any changes nothing
    #[arg(long)]
    pub yes: bool,
}

#[derive(Args, Debug)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub action: RulesAction,
}

#[derive(Subcommand, Debug)]
pub enum RulesAction {
    /// Show what each line of standard input (a syslog message, as Logplex sends it) becomes
    /// under the rules of FILE: its document and stream, or that a rule dropped it
    Test(RulesTestArgs),
}

#[derive(Args, Debug)]
pub struct RulesTestArgs {
    /// The configuration file whose `[[rule]]` tables apply
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
    /// The Heroku app the lines belong to (heroku.app), as a drain URL's `?app=` gives it
    #[arg(long, value_name = "APP")]
    pub app: Option<String>,
    /// The data stream namespace the lines would go to
    #[arg(long, value_name = "NAME", default_value = "default")]
    pub namespace: String,
}

#[derive(Args, Debug)]
pub struct DeadLetterArgs {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Subcommand, Debug)]
pub enum Action {
    /// Show dead letters grouped by target, error type and reason, with counts and times
    List {
        #[command(flatten)]
        select: Selection,
        /// One JSON object per group instead of text
        #[arg(long)]
        json: bool,
    },
    /// Send dead letters again with their original ids, and remove those now stored
    Replay {
        #[command(flatten)]
        select: Selection,
        /// Roll each target data stream over first, so a fixed index template applies to what
        /// is sent (a new mapping reaches only new backing indices)
        #[arg(long)]
        rollover: bool,
    },
}

impl Action {
    pub fn general(&self) -> &GeneralOptions {
        match self {
            Action::List { select, .. } | Action::Replay { select, .. } => &select.general,
        }
    }
}

/// Which dead letters, and where they are.
#[derive(Args, Debug)]
pub struct Selection {
    #[command(flatten)]
    pub general: GeneralOptions,
    #[command(flatten)]
    pub elasticsearch: ElasticsearchOptions,
    /// serve's spool folder: the dead letters in its dead-letters.ndjson are included
    #[arg(long, value_name = "DIR", help_heading = "Dead letters")]
    pub spool_dir: Option<PathBuf>,
    /// Only dead letters from the last DURATION (`2h`, `7d`) or since a time (`2026-11-24T10:00:00Z`)
    #[arg(long, value_name = "WHEN", value_parser = when, help_heading = "Dead letters")]
    pub since: Option<u64>,
    /// Only dead letters whose error type or reason contains TEXT (any case)
    #[arg(long, value_name = "TEXT", help_heading = "Dead letters")]
    pub reason: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filter_values_are_checked() {
        assert_eq!(status("5xx"), Ok((500, 599)));
        assert_eq!(status("500-504"), Ok((500, 504)));
        assert_eq!(status("404"), Ok((404, 404)));
        assert!(status("600").is_err() && status("504-500").is_err());
        assert_eq!(level("WARN"), Ok("warning"));
        assert!(level("loud").unwrap_err().contains("one of trace"));
        assert_eq!(dataset("heroku.router"), Ok("router".to_owned()));
        assert!(dataset("routers").is_err());
    }

    #[test]
    fn since_takes_a_duration_or_a_time_with_any_offset() {
        let two_hours_ago = when("2h").unwrap();
        let ago = now_ms() - two_hours_ago;
        assert!((7_200_000..7_260_000).contains(&ago), "{ago}");
        assert_eq!(when("2026-11-24T10:00:00Z").unwrap(), 1_795_514_400_000);
        assert_eq!(when("2026-11-24T11:00:00+01:00").unwrap(), 1_795_514_400_000);
        assert_eq!(
            when("2999-01-01T00:00:00Z").unwrap(),
            i64::MAX as u64 / 1_000_000,
            "clamped to what date_nanos holds"
        );
        assert!(when("yesterday").unwrap_err().contains("neither a duration"));
    }

    /// Each flag said to take no variable is one a command has (a renamed flag would otherwise
    /// quietly start reading one).
    #[test]
    fn every_one_run_flag_is_a_flag() {
        let cli = super::super::command::<crate::cli::Cli>();
        let mut flags = Vec::new();
        let mut stack = vec![&cli];
        while let Some(command) = stack.pop() {
            flags.extend(command.get_arguments().filter_map(|a| a.get_long().map(str::to_owned)));
            stack.extend(command.get_subcommands());
        }
        for flag in ONE_RUN_FLAGS {
            assert!(flags.iter().any(|f| f == flag), "--{flag} is no command's flag");
        }
    }
}
