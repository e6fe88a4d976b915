//! Configuration for `drainpipe serve`: flags, then `DRAINPIPE_*` environment variables, then
//! the platform's conventional variables (`PORT`, `ELASTICSEARCH_URL`), then the TOML file,
//! then defaults. The TOML keys are the flags' names.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use clap::Args;
use serde::Deserialize;

pub const DEFAULT_LISTEN: &str = "0.0.0.0:8080";
pub const DEFAULT_ELASTICSEARCH_URL: &str = "http://127.0.0.1:9200";
pub const DEFAULT_NAMESPACE: &str = "default";

/// Flags of `drainpipe serve`. Each also reads `DRAINPIPE_<FLAG>` from the environment.
#[derive(Args, Debug, Default, Clone)]
pub struct ServeArgs {
    /// Address to receive drains on [env: DRAINPIPE_LISTEN; with only PORT set: 0.0.0.0:$PORT]
    /// [default: 0.0.0.0:8080]
    #[arg(long, env = "DRAINPIPE_LISTEN", value_name = "ADDR", hide_env = true)]
    pub listen: Option<SocketAddr>,

    /// Elasticsearch URL; credentials may be in it [env: DRAINPIPE_ELASTICSEARCH_URL, then
    /// ELASTICSEARCH_URL] [default: http://127.0.0.1:9200]
    #[arg(long, env = "DRAINPIPE_ELASTICSEARCH_URL", value_name = "URL", hide_env = true)]
    pub elasticsearch_url: Option<String>,

    /// Data stream namespace: documents go to `logs-heroku-<NAMESPACE>` [default: default]
    #[arg(long, env = "DRAINPIPE_NAMESPACE", value_name = "NAMESPACE")]
    pub namespace: Option<String>,

    /// TOML file with any of the options above, keyed by flag name
    #[arg(long, env = "DRAINPIPE_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
}

/// The TOML file: the same options, keyed by flag name. Unknown keys are errors.
#[derive(Deserialize, Debug, Default)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
struct FileConfig {
    listen: Option<SocketAddr>,
    elasticsearch_url: Option<String>,
    namespace: Option<String>,
}

/// The validated configuration `serve` runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ServeConfig {
    pub listen: SocketAddr,
    pub elasticsearch_url: String,
    pub namespace: String,
}

impl ServeConfig {
    /// Merges flags/`DRAINPIPE_*` (already in `args`), conventional variables read through
    /// `env`, and the config file.
    pub fn resolve(args: ServeArgs, env: impl Fn(&str) -> Option<String>) -> anyhow::Result<ServeConfig> {
        let file = match &args.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let port_listen = match env("PORT").filter(|p| !p.is_empty()) {
            Some(p) => {
                let port: u16 = p.trim().parse().with_context(|| format!("PORT={p:?} is not a port number"))?;
                Some(SocketAddr::from(([0, 0, 0, 0], port)))
            }
            None => None,
        };
        let listen = args
            .listen
            .or(port_listen)
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.parse().expect("valid default"));
        let elasticsearch_url = args
            .elasticsearch_url
            .or_else(|| env("ELASTICSEARCH_URL").filter(|u| !u.is_empty()))
            .or(file.elasticsearch_url)
            .unwrap_or_else(|| DEFAULT_ELASTICSEARCH_URL.to_owned());
        let namespace = args.namespace.or(file.namespace).unwrap_or_else(|| DEFAULT_NAMESPACE.to_owned());
        validate_namespace(&namespace)?;
        Ok(ServeConfig { listen, elasticsearch_url, namespace })
    }

    /// The data stream documents are written to.
    pub fn data_stream(&self) -> String {
        format!("logs-heroku-{}", self.namespace)
    }
}

fn read_file(path: &Path) -> anyhow::Result<FileConfig> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read config file {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Data stream names are `type-dataset-namespace`: the namespace may not hold `-`, and index
/// names must be lowercase without `\ / * ? " < > | , # :` or spaces.
fn validate_namespace(ns: &str) -> anyhow::Result<()> {
    if ns.is_empty() || ns.len() > 100 {
        bail!("namespace must be 1 to 100 characters, got {ns:?}");
    }
    if !ns.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'.') {
        bail!("namespace {ns:?} may only hold lowercase letters, digits, '_' and '.'");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn defaults() {
        let c = ServeConfig::resolve(ServeArgs::default(), no_env).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:8080");
        assert_eq!(c.elasticsearch_url, "http://127.0.0.1:9200");
        assert_eq!(c.data_stream(), "logs-heroku-default");
    }

    #[test]
    fn port_and_elasticsearch_url_are_honoured() {
        let env = |k: &str| match k {
            "PORT" => Some("5000".to_owned()),
            "ELASTICSEARCH_URL" => Some("http://es:9200".to_owned()),
            _ => None,
        };
        let c = ServeConfig::resolve(ServeArgs::default(), env).unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:5000");
        assert_eq!(c.elasticsearch_url, "http://es:9200");
        // A flag (or DRAINPIPE_*) wins over them.
        let args = ServeArgs { listen: Some("127.0.0.1:9".parse().unwrap()), ..ServeArgs::default() };
        assert_eq!(ServeConfig::resolve(args, env).unwrap().listen.to_string(), "127.0.0.1:9");
        assert!(ServeConfig::resolve(ServeArgs::default(), |_| Some("http".to_owned())).is_err());
    }

    #[test]
    fn file_fills_what_flags_and_env_leave_open() {
        let dir = std::env::temp_dir().join(format!("drainpipe-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("drainpipe.toml");
        std::fs::write(
            &path,
            "listen = \"127.0.0.1:7000\"\nelasticsearch-url = \"http://file:9200\"\nnamespace = \"prod\"\n",
        )
        .unwrap();
        let args = ServeArgs { namespace: Some("flag".into()), config: Some(path.clone()), ..ServeArgs::default() };
        let c = ServeConfig::resolve(args, no_env).unwrap();
        assert_eq!(c.listen.to_string(), "127.0.0.1:7000");
        assert_eq!(c.elasticsearch_url, "http://file:9200");
        assert_eq!(c.namespace, "flag");

        std::fs::write(&path, "listen = \"127.0.0.1:7000\"\nlisten-address = \"x\"\n").unwrap();
        let args = ServeArgs { config: Some(path), ..ServeArgs::default() };
        let err = format!("{:#}", ServeConfig::resolve(args, no_env).unwrap_err());
        assert!(err.contains("listen-address"), "{err}");
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn the_shipped_example_file_is_valid() {
        let file: FileConfig = toml::from_str(include_str!("../../deploy/drainpipe.toml")).unwrap();
        assert_eq!(file.namespace.as_deref(), Some(DEFAULT_NAMESPACE));
    }

    #[test]
    fn namespace_must_fit_a_data_stream_name() {
        for bad in ["", "Prod", "a-b", "a b", "a*"] {
            let args = ServeArgs { namespace: Some(bad.into()), ..ServeArgs::default() };
            assert!(ServeConfig::resolve(args, no_env).is_err(), "{bad}");
        }
    }
}
