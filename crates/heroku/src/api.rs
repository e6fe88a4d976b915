//! The Heroku Platform API calls drains need, as the Heroku CLI makes them: version 3 (`Accept:
//! application/vnd.heroku+json; version=3`), the API key as a bearer token (`HEROKU_API_KEY`,
//! else `~/.netrc`), `RateLimit-Remaining` watched (at 0, wait for the budget to refill), a
//! `429` waited out and sent again, lists followed past `206` by `Next-Range`.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Deserialize;
use serde_json::Value;

use crate::netrc;

/// Heroku's API.
pub const DEFAULT_URL: &str = "https://api.heroku.com";

const ACCEPT: &str = "application/vnd.heroku+json; version=3";

/// Heroku refills the budget at about 75 requests a minute: at 0 left, wait this long.
const REFILL_WAIT: Duration = Duration::from_millis(800);

/// A `429` is sent again after this (or its `Retry-After`), doubling, this many times.
const FIRST_BACKOFF: Duration = Duration::from_secs(1);
const MAX_BACKOFF: Duration = Duration::from_secs(60);
const ATTEMPTS: u32 = 8;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("no Heroku API key: set HEROKU_API_KEY, or log in with `heroku login` (it writes ~/.netrc)")]
    NoKey,
    #[error("{method} {path}: Heroku answered {status} ({id}): {message}")]
    Refused { method: Method, path: String, status: u16, id: String, message: String },
    #[error("{method} {path}: {error}")]
    Unreachable { method: Method, path: String, error: String },
    #[error("{method} {path}: Heroku answered {status} too often; giving up after {ATTEMPTS} attempts")]
    RateLimited { method: Method, path: String, status: u16 },
    #[error("{method} {path}: an answer drainpipe cannot read: {error}")]
    Unreadable { method: Method, path: String, error: String },
}

impl ApiError {
    /// Heroku's "no such app" (or one the key may not see).
    pub fn is_not_found(&self) -> bool {
        matches!(self, ApiError::Refused { status: 404, .. })
    }

    /// The key was refused (wrong, expired, revoked).
    pub fn is_unauthorized(&self) -> bool {
        matches!(self, ApiError::Refused { status: 401, .. })
    }
}

/// The API key the Heroku CLI would use: `HEROKU_API_KEY`, else the password of the API host's
/// `machine` in `~/.netrc`.
pub fn api_key(api: &reqwest::Url, env: impl Fn(&str) -> Option<String>) -> Result<String, ApiError> {
    if let Some(key) = env("HEROKU_API_KEY").filter(|k| !k.trim().is_empty()) {
        return Ok(key.trim().to_owned());
    }
    let home = env("HOME").ok_or(ApiError::NoKey)?;
    let text = std::fs::read_to_string(std::path::Path::new(&home).join(".netrc")).map_err(|_| ApiError::NoKey)?;
    netrc::password(&text, api.host_str().unwrap_or_default()).ok_or(ApiError::NoKey)
}

/// An app as drains need it.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct App {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub generation: Option<Generation>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct Generation {
    pub name: String,
}

impl App {
    /// Fir apps take telemetry drains; the others (Cedar) log drains.
    pub fn is_fir(&self) -> bool {
        self.generation.as_ref().is_some_and(|g| g.name == "fir")
    }
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct LogDrain {
    pub id: String,
    pub url: String,
    pub token: String,
    /// Set for an add-on's drain, which only the add-on removes.
    #[serde(default)]
    pub addon: Option<Value>,
}

#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
pub struct TelemetryDrain {
    pub id: String,
    pub signals: Vec<String>,
    pub exporter: Exporter,
}

#[derive(Clone, Debug, Deserialize, serde::Serialize, PartialEq, Eq)]
pub struct Exporter {
    #[serde(rename = "type")]
    pub kind: String,
    pub endpoint: String,
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, String>,
}

/// A client of the Platform API.
#[derive(Debug)]
pub struct PlatformApi {
    base: reqwest::Url,
    key: String,
    http: reqwest::Client,
    /// The last `RateLimit-Remaining` Heroku sent (-1: none yet).
    remaining: AtomicI64,
}

impl PlatformApi {
    pub fn new(base: reqwest::Url, key: String) -> Result<PlatformApi, ApiError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .user_agent(concat!("drainpipe/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ApiError::Unreachable { method: Method::GET, path: base.to_string(), error: e.to_string() })?;
        Ok(PlatformApi { base, key, http, remaining: AtomicI64::new(-1) })
    }

    pub async fn app(&self, app: &str) -> Result<App, ApiError> {
        self.call(Method::GET, &format!("/apps/{app}"), None).await
    }

    pub async fn log_drains(&self, app: &str) -> Result<Vec<LogDrain>, ApiError> {
        self.list(&format!("/apps/{app}/log-drains")).await
    }

    pub async fn add_log_drain(&self, app: &str, url: &str) -> Result<LogDrain, ApiError> {
        self.call(Method::POST, &format!("/apps/{app}/log-drains"), Some(serde_json::json!({ "url": url }))).await
    }

    pub async fn remove_log_drain(&self, app: &str, id: &str) -> Result<(), ApiError> {
        self.call::<Value>(Method::DELETE, &format!("/apps/{app}/log-drains/{id}"), None).await.map(drop)
    }

    pub async fn telemetry_drains(&self, app: &str) -> Result<Vec<TelemetryDrain>, ApiError> {
        self.list(&format!("/apps/{app}/telemetry-drains")).await
    }

    pub async fn add_telemetry_drain(
        &self,
        app_id: &str,
        signals: &[String],
        exporter: &Exporter,
    ) -> Result<TelemetryDrain, ApiError> {
        let body = serde_json::json!({
            "owner": { "id": app_id, "type": "app" },
            "signals": signals,
            "exporter": exporter,
        });
        self.call(Method::POST, "/telemetry-drains", Some(body)).await
    }

    pub async fn update_telemetry_drain(
        &self,
        id: &str,
        signals: &[String],
        exporter: &Exporter,
    ) -> Result<TelemetryDrain, ApiError> {
        let body = serde_json::json!({ "signals": signals, "exporter": exporter });
        self.call(Method::PATCH, &format!("/telemetry-drains/{id}"), Some(body)).await
    }

    pub async fn remove_telemetry_drain(&self, id: &str) -> Result<(), ApiError> {
        self.call::<Value>(Method::DELETE, &format!("/telemetry-drains/{id}"), None).await.map(drop)
    }

    async fn call<T: serde::de::DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<T, ApiError> {
        let (answer, _) = self.send(method.clone(), path, body.as_ref(), None).await?;
        serde_json::from_value(answer).map_err(|e| ApiError::Unreadable {
            method,
            path: path.to_owned(),
            error: e.to_string(),
        })
    }

    /// A list, every page of it (Heroku answers `206` with a `Next-Range` while there is more).
    async fn list<T: serde::de::DeserializeOwned>(&self, path: &str) -> Result<Vec<T>, ApiError> {
        let mut items = Vec::new();
        let mut range = None;
        loop {
            let (page, next) = self.send(Method::GET, path, None, range.as_deref()).await?;
            let page: Vec<T> = serde_json::from_value(page).map_err(|e| ApiError::Unreadable {
                method: Method::GET,
                path: path.to_owned(),
                error: e.to_string(),
            })?;
            items.extend(page);
            match next {
                Some(next) => range = Some(next),
                None => return Ok(items),
            }
        }
    }

    /// One request, waiting for the rate limit's budget and through `429`s; the answer's JSON
    /// and, for a partial list, the range of the next page.
    async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        range: Option<&str>,
    ) -> Result<(Value, Option<String>), ApiError> {
        let url = format!("{}{path}", self.base.as_str().trim_end_matches('/'));
        let mut backoff = FIRST_BACKOFF;
        for _ in 0..ATTEMPTS {
            if self.remaining.load(Ordering::Relaxed) == 0 {
                tracing::info!(wait = ?REFILL_WAIT, "Heroku's API rate limit is used up; waiting for it to refill");
                tokio::time::sleep(REFILL_WAIT).await;
            }
            let mut request = self.http.request(method.clone(), &url).header("Accept", ACCEPT).bearer_auth(&self.key);
            if let Some(body) = body {
                request = request.json(body);
            }
            if let Some(range) = range {
                request = request.header("Range", range);
            }
            let answer = request.send().await.map_err(|e| unreachable(&method, path, &e))?;
            if let Some(left) = header(&answer, "RateLimit-Remaining").and_then(|v| v.trim().parse::<i64>().ok()) {
                self.remaining.store(left, Ordering::Relaxed);
            }
            if answer.status() != StatusCode::TOO_MANY_REQUESTS {
                return read(method, path, answer).await;
            }
            let wait =
                header(&answer, "Retry-After").and_then(|s| s.trim().parse().ok()).map_or(backoff, Duration::from_secs);
            tracing::warn!(%method, path, wait = ?wait, "Heroku's API answered 429 (rate limit); sending again after a wait");
            tokio::time::sleep(wait.min(MAX_BACKOFF)).await;
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
        Err(ApiError::RateLimited { method, path: path.to_owned(), status: 429 })
    }
}

fn header(answer: &reqwest::Response, name: &str) -> Option<String> {
    answer.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn unreachable(method: &Method, path: &str, e: &reqwest::Error) -> ApiError {
    ApiError::Unreachable { method: method.clone(), path: path.to_owned(), error: e.to_string() }
}

/// An answer's JSON (and the next page's range), or Heroku's refusal with its `id` and `message`.
async fn read(method: Method, path: &str, answer: reqwest::Response) -> Result<(Value, Option<String>), ApiError> {
    let status = answer.status();
    let next = (status == StatusCode::PARTIAL_CONTENT).then(|| header(&answer, "Next-Range")).flatten();
    let text = answer.text().await.map_err(|e| unreachable(&method, path, &e))?;
    let json: Value = match text.trim() {
        "" => Value::Null,
        t => serde_json::from_str(t).map_err(|e| ApiError::Unreadable {
            method: method.clone(),
            path: path.to_owned(),
            error: e.to_string(),
        })?,
    };
    if !status.is_success() {
        let field = |k: &str| json.get(k).and_then(Value::as_str).unwrap_or_default().to_owned();
        let (id, message) = (field("id"), field("message"));
        return Err(ApiError::Refused { method, path: path.to_owned(), status: status.as_u16(), id, message });
    }
    Ok((json, next))
}
