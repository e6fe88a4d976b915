//! Who may send: basic-auth credentials (compared in constant time, never logged), the drain
//! token allow-list with its token-to-app map, OTLP bearer tokens, all three held together as
//! the [`Access`] in force ([`LiveAccess`], which a reload replaces whole), and a limiter that
//! slows down guessing.

use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use base64::Engine as _;

/// What a [`Secret`] shows instead of itself.
pub const REDACTED: &str = "[REDACTED]";

/// A string that never shows in logs, `Debug` or `Display`: a password, a token, an API key.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// A secret as an option gives it: trimmed, and never empty.
impl FromStr for Secret {
    type Err = String;

    fn from_str(s: &str) -> Result<Secret, String> {
        match s.trim() {
            "" => Err("must not be empty".to_owned()),
            s => Ok(Secret::new(s)),
        }
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// One `USER:PASS` pair accepted on `POST /logs`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub password: Secret,
}

impl FromStr for Credential {
    type Err = String;

    fn from_str(s: &str) -> Result<Credential, String> {
        match s.split_once(':') {
            Some((user, pass)) if !user.is_empty() && !pass.is_empty() => {
                Ok(Credential { user: user.to_owned(), password: Secret::new(pass) })
            }
            _ => Err("expected USER:PASS with both parts non-empty".to_owned()),
        }
    }
}

/// Maps Logplex drain tokens to app names, parsed from `TOKEN=APP`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DrainTokens(HashMap<String, String>);

impl DrainTokens {
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> DrainTokens {
        DrainTokens(pairs.into_iter().collect())
    }

    /// Parses one `TOKEN=APP`.
    pub fn parse_pair(s: &str) -> Result<(String, String), String> {
        match s.split_once('=') {
            Some((token, app)) if !token.trim().is_empty() && !app.trim().is_empty() => {
                Ok((token.trim().to_owned(), app.trim().to_owned()))
            }
            _ => Err("expected TOKEN=APP".to_owned()),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn as_map(&self) -> &HashMap<String, String> {
        &self.0
    }

    /// The app a token belongs to, if the token is known.
    pub fn app(&self, token: &str) -> Option<&str> {
        self.0.get(token).map(String::as_str)
    }
}

/// Who may send: the basic-auth pairs, the drain tokens with their apps, and the OTLP bearer
/// tokens. A request (or a syslog read, or a frame's transform) is judged by one `Access`
/// throughout, never half by the one before a reload and half by the one after.
#[derive(Debug, Default)]
pub struct Access {
    pub(crate) basic: BasicAuth,
    pub drain_tokens: DrainTokens,
    pub otlp_tokens: BearerTokens,
}

impl Access {
    pub fn new(credentials: &[Credential], drain_tokens: DrainTokens, otlp_tokens: BearerTokens) -> Access {
        Access { basic: BasicAuth::new(credentials), drain_tokens, otlp_tokens }
    }

    /// Basic-auth pairs configured.
    pub fn credential_count(&self) -> usize {
        self.basic.expected.len()
    }
}

/// The [`Access`] in force, shared by every receiver and the transform: [`LiveAccess::replace`]
/// swaps it whole (a reload), and what reads it takes the one in force at that moment.
#[derive(Clone, Debug, Default)]
pub struct LiveAccess(Arc<RwLock<Arc<Access>>>);

impl LiveAccess {
    pub fn new(access: Access) -> LiveAccess {
        LiveAccess(Arc::new(RwLock::new(Arc::new(access))))
    }

    pub fn current(&self) -> Arc<Access> {
        self.0.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn replace(&self, access: Access) {
        *self.0.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(access);
    }
}

/// Checks `Authorization: Basic …` against the configured credentials.
#[derive(Clone, Debug, Default)]
pub(crate) struct BasicAuth {
    /// The base64 token each credential is sent as.
    expected: Vec<Secret>,
}

impl BasicAuth {
    pub(crate) fn new(credentials: &[Credential]) -> BasicAuth {
        let engine = base64::engine::general_purpose::STANDARD;
        let expected = credentials
            .iter()
            .map(|c| Secret::new(engine.encode(format!("{}:{}", c.user, c.password.expose()))))
            .collect();
        BasicAuth { expected }
    }

    pub(crate) fn is_open(&self) -> bool {
        self.expected.is_empty()
    }

    /// Whether the header value carries one of the credentials. Every credential is compared in
    /// full, so the time taken says nothing about how close a guess was.
    pub(crate) fn allows(&self, header: Option<&[u8]>) -> bool {
        if self.is_open() {
            return true;
        }
        let Some(value) = header else { return false };
        let Some(token) = strip_scheme(value) else { return false };
        let mut matched = false;
        for expected in &self.expected {
            matched |= constant_time_eq(token, expected.expose().as_bytes());
        }
        matched
    }
}

/// `Basic <token>`, the scheme matched case-insensitively.
fn strip_scheme(value: &[u8]) -> Option<&[u8]> {
    let (scheme, rest) = value.split_at_checked(6)?;
    scheme.eq_ignore_ascii_case(b"basic ").then(|| rest.trim_ascii())
}

/// Bearer tokens OTLP senders may present (`Authorization: Bearer …`, as `heroku telemetry:add
/// --headers` sets it), each with the app its records belong to when the resource names none.
#[derive(Clone, Debug, Default)]
pub struct BearerTokens(Vec<(Secret, Option<String>)>);

impl BearerTokens {
    pub fn new(tokens: impl IntoIterator<Item = (Secret, Option<String>)>) -> BearerTokens {
        BearerTokens(tokens.into_iter().collect())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The token the header carries, if it is one of these: `Some(app)`. Every token is
    /// compared in full, as credentials are.
    pub(crate) fn find(&self, header: Option<&[u8]>) -> Option<Option<&str>> {
        let given = header.and_then(|h| {
            let (scheme, rest) = h.split_at_checked(h.iter().position(|&b| b == b' ')?)?;
            scheme.eq_ignore_ascii_case(b"bearer").then(|| rest.trim_ascii())
        })?;
        let mut found = None;
        for (token, app) in &self.0 {
            if constant_time_eq(given, token.expose().as_bytes()) && found.is_none() {
                found = Some(app.as_deref());
            }
        }
        found
    }
}

/// Compares in time that depends only on `expected`'s length.
fn constant_time_eq(given: &[u8], expected: &[u8]) -> bool {
    let mut diff = u8::from(given.len() != expected.len());
    for (i, &e) in expected.iter().enumerate() {
        diff |= e ^ given.get(i).copied().unwrap_or(!e);
    }
    diff == 0
}

/// Counts failed authentications per key (the client's address and the user name it tried);
/// past `max_failures` within `window`, further failures under that key are answered 429,
/// and only after [`FailureLimiter::penalty`], which slows guessing down. The limiter never
/// refuses a request whose credentials are right, so one misconfigured drain behind a shared
/// router address cannot lock out the others.
#[derive(Debug)]
pub(crate) struct FailureLimiter {
    max_failures: u32,
    window: Duration,
    entries: Mutex<HashMap<LimiterKey, Window>>,
}

/// What a failure is counted under: the client's address and a hash of the user name tried.
/// Both are the guesser's; another drain with its own user name is counted apart.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct LimiterKey {
    ip: IpAddr,
    user: u64,
}

impl LimiterKey {
    pub(crate) fn new(ip: IpAddr, authorization: Option<&[u8]>) -> LimiterKey {
        let user = authorization.and_then(strip_scheme).map_or(0, |token| {
            let decoded = base64::engine::general_purpose::STANDARD.decode(token).unwrap_or_default();
            let user = decoded.split(|&b| b == b':').next().unwrap_or_default();
            xxhash_rust::xxh3::xxh3_64(user)
        });
        LimiterKey { ip, user }
    }
}

#[derive(Clone, Copy, Debug)]
struct Window {
    started: Instant,
    failures: u32,
}

/// Keys tracked at most. When full, expired windows go first, then the oldest of the keys that
/// block nobody, and blocked keys only when every key is blocked: spraying user names makes
/// room by pushing out other sprayed names, never by lifting anyone's block.
const MAX_TRACKED: usize = 65_536;
/// Keys dropped at once when the table is full, so that making room is done once per so many
/// new keys (linear work spread over them), not once per key.
const DROPPED_WHEN_FULL: usize = MAX_TRACKED / 16;

impl FailureLimiter {
    pub(crate) fn new(max_failures: u32, window: Duration) -> FailureLimiter {
        FailureLimiter { max_failures, window, entries: Mutex::new(HashMap::new()) }
    }

    /// How long a failure under a blocked key waits before its 429: one guess per second per
    /// connection, whatever the guesser's speed.
    pub(crate) fn penalty(&self) -> Duration {
        Duration::from_secs(1).min(self.window)
    }

    /// When the key is blocked, how long until its failures are answered at once again.
    pub(crate) fn blocked(&self, key: LimiterKey, now: Instant) -> Option<Duration> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let w = entries.get(&key)?;
        let ends = w.started + self.window;
        (w.failures >= self.max_failures && ends > now).then(|| ends - now)
    }

    pub(crate) fn record_failure(&self, key: LimiterKey, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_TRACKED && !entries.contains_key(&key) {
            entries.retain(|_, w| w.started + self.window > now);
            if entries.len() >= MAX_TRACKED {
                self.drop_oldest(&mut entries);
            }
        }
        let w = entries.entry(key).or_insert(Window { started: now, failures: 0 });
        if w.started + self.window <= now {
            *w = Window { started: now, failures: 0 };
        }
        w.failures = w.failures.saturating_add(1);
    }
}

impl FailureLimiter {
    /// Drops [`DROPPED_WHEN_FULL`] keys: those that block nobody before blocked ones, oldest
    /// window first within each.
    fn drop_oldest(&self, entries: &mut HashMap<LimiterKey, Window>) {
        let mut order: Vec<(bool, Instant, LimiterKey)> =
            entries.iter().map(|(k, w)| (w.failures >= self.max_failures, w.started, *k)).collect();
        if order.len() > DROPPED_WHEN_FULL {
            order.select_nth_unstable_by_key(DROPPED_WHEN_FULL, |&(blocks, started, _)| (blocks, started));
        }
        for (_, _, key) in order.iter().take(DROPPED_WHEN_FULL) {
            entries.remove(key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(user_pass: &str) -> Vec<u8> {
        format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(user_pass)).into_bytes()
    }

    #[test]
    fn accepts_only_configured_credentials() {
        let auth = BasicAuth::new(&["u:p".parse().unwrap(), "logplex:s3cret:with:colons".parse().unwrap()]);
        assert!(auth.allows(Some(&header("u:p"))));
        assert!(auth.allows(Some(&header("logplex:s3cret:with:colons"))));
        assert!(auth.allows(Some(b"basic dTpw")));
        for bad in [header("u:q"), header("u:pp"), header("u:"), b"Bearer dTpw".to_vec(), b"Basic".to_vec(), vec![]] {
            assert!(!auth.allows(Some(&bad)), "{}", String::from_utf8_lossy(&bad));
        }
        assert!(!auth.allows(None));
        assert!(BasicAuth::new(&[]).allows(None));
    }

    #[test]
    fn secrets_never_print() {
        let c: Credential = "user:hunter2".parse().unwrap();
        assert!(!format!("{c:?}").contains("hunter2"));
        assert_eq!(Secret::new("x").to_string(), "[REDACTED]");
        assert!("nopass".parse::<Credential>().is_err());
        assert!(":p".parse::<Credential>().is_err());
    }

    #[test]
    fn drain_token_pairs() {
        assert_eq!(DrainTokens::parse_pair("d.abc=shop"), Ok(("d.abc".into(), "shop".into())));
        assert!(DrainTokens::parse_pair("d.abc").is_err());
        assert!(DrainTokens::parse_pair("=shop").is_err());
        let t = DrainTokens::new([("d.abc".to_owned(), "shop".to_owned())]);
        assert_eq!(t.app("d.abc"), Some("shop"));
        assert_eq!(t.app("d.xyz"), None);
    }

    #[test]
    fn limiter_blocks_after_repeated_failures_then_forgives() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let key = LimiterKey::new(ip, Some(&header("logplex:wrong")));
        let t0 = Instant::now();
        for _ in 0..2 {
            l.record_failure(key, t0);
        }
        assert_eq!(l.blocked(key, t0), None);
        l.record_failure(key, t0);
        assert_eq!(l.blocked(key, t0 + Duration::from_secs(10)), Some(Duration::from_secs(50)));
        assert_eq!(l.blocked(LimiterKey::new("192.0.2.2".parse().unwrap(), Some(&header("logplex:x"))), t0), None);
        assert_eq!(l.blocked(key, t0 + Duration::from_secs(61)), None);
    }

    #[test]
    fn a_full_limiter_drops_its_oldest_sprayed_names_and_keeps_blocks() {
        let l = FailureLimiter::new(3, Duration::from_secs(60));
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let t0 = Instant::now();
        let guesser = LimiterKey::new(ip, Some(&header("logplex:wrong")));
        for _ in 0..3 {
            l.record_failure(guesser, t0);
        }
        // The same guesser sprays user names, one failure each, to push its block out.
        let sprayed = |i: usize| LimiterKey::new(ip, Some(&header(&format!("user{i}:x"))));
        let total = MAX_TRACKED + DROPPED_WHEN_FULL + 10;
        for i in 0..total {
            l.record_failure(sprayed(i), t0 + Duration::from_millis(i as u64 / 1024));
        }
        let now = t0 + Duration::from_secs(1);
        assert!(l.blocked(guesser, now).is_some(), "the guesser's block outlives the spray");
        let entries = l.entries.lock().unwrap();
        assert!(entries.len() <= MAX_TRACKED, "{}", entries.len());
        assert!(entries.len() > MAX_TRACKED - DROPPED_WHEN_FULL, "not wiped whole: {}", entries.len());
        // The oldest names went, the newest stayed.
        assert!(!entries.contains_key(&sprayed(0)));
        assert!(entries.contains_key(&sprayed(total - 1)));
        assert_eq!(entries.get(&sprayed(total - 1)).map(|w| w.failures), Some(1));
    }

    #[test]
    fn limiter_keys_on_address_and_user_name() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = LimiterKey::new(ip, Some(&header("logplex:wrong")));
        assert_eq!(a, LimiterKey::new(ip, Some(&header("logplex:other guess"))));
        assert_ne!(a, LimiterKey::new(ip, Some(&header("shop:secret"))));
        assert_ne!(a, LimiterKey::new(ip, None));
    }
}
