//! Router lines (`heroku router`): one `key=value` line per HTTP request, typed per docs/fields.md.
//! Empty values (`connect=`) leave their field out; keys the router adds later are kept as
//! `heroku.router.<key>` text.

use std::borrow::Cow;
use std::net::IpAddr;

use crate::document::MAX_ROUTER_KEYS;
use crate::keys::Distinct;
use crate::logfmt;

#[derive(Debug, Default)]
pub(crate) struct Router<'a> {
    pub at: Option<Cow<'a, str>>,
    pub code: Option<Cow<'a, str>>,
    pub desc: Option<Cow<'a, str>>,
    pub method: Option<Cow<'a, str>>,
    pub path: Option<Cow<'a, str>>,
    pub host: Option<Cow<'a, str>>,
    pub request_id: Option<Cow<'a, str>>,
    /// Valid addresses of `fwd`, in order.
    pub fwd: Vec<Cow<'a, str>>,
    /// Whether the first entry of `fwd` was an address (then it is the client, `fwd[0]`);
    /// `None` before any entry. After an entry that is not one (`unknown`), the next address is
    /// a proxy's.
    fwd_starts_with_address: Option<bool>,
    pub dyno: Option<Cow<'a, str>>,
    pub connect_ms: Option<u64>,
    pub service_ms: Option<u64>,
    pub status: Option<u64>,
    pub bytes: Option<u64>,
    pub protocol: Option<Cow<'a, str>>,
    /// Keys this parser does not know, as text, each under its name in the document
    /// ([`other_key`]).
    pub other: Distinct<Cow<'a, str>, Cow<'a, str>, MAX_ROUTER_KEYS>,
    /// The first value that could not be read, and why.
    pub failure: Option<String>,
}

impl<'a> Router<'a> {
    pub(crate) fn parse(msg: &'a str) -> Router<'a> {
        let mut r = Router::default();
        if msg.trim().is_empty() {
            r.fail("router line without a message".to_owned());
        }
        for pair in logfmt::pairs(msg) {
            if pair.unterminated {
                r.fail(format!("router {}= opens a quote that is never closed", pair.key));
            }
            let value = pair.value;
            if value.is_empty() {
                continue;
            }
            // Byte-string patterns compile to inline compares (no memcmp call per key).
            match pair.key.as_bytes() {
                b"at" => r.at = Some(value),
                b"code" => r.code = Some(value),
                b"desc" => r.desc = Some(value),
                b"method" => r.method = Some(value),
                b"path" => r.path = Some(value),
                b"host" => r.host = Some(value),
                b"request_id" => r.request_id = Some(value),
                b"dyno" => r.dyno = Some(value),
                b"protocol" => r.protocol = Some(value),
                b"fwd" => r.read_fwd(value),
                b"connect" => r.connect_ms = r.number("connect", &value, true),
                b"service" => r.service_ms = r.number("service", &value, true),
                b"status" => r.status = r.number("status", &value, false),
                b"bytes" => r.bytes = r.number("bytes", &value, false),
                _ if crate::json::is_blank_name(pair.key) => {}
                _ => {
                    r.other.insert(other_key(pair.key), value);
                }
            }
        }
        r
    }

    /// A whole number, with `ms` after it when `millis` (the router's `connect=`/`service=`).
    fn number(&mut self, key: &str, value: &str, millis: bool) -> Option<u64> {
        let b = value.as_bytes();
        let digits = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let (int, unit) = b.split_at_checked(digits).unwrap_or((b, &[]));
        // Elasticsearch's `long` ends at i64::MAX; anything bigger would cost the document.
        let n = int
            .iter()
            .try_fold(0u64, |n, &c| n.checked_mul(10)?.checked_add(u64::from(c - b'0')))
            .filter(|&n| n <= i64::MAX as u64);
        match (digits, n, unit, millis) {
            (1.., Some(n), [], _) | (1.., Some(n), [b'm', b's'], true) => Some(n),
            _ => {
                self.fail(format!("router {key}={value:?} is not a number"));
                None
            }
        }
    }

    fn read_fwd(&mut self, value: Cow<'a, str>) {
        match value {
            Cow::Borrowed(v) => v.split(',').for_each(|part| self.read_fwd_entry(part, Cow::Borrowed)),
            Cow::Owned(v) => v.split(',').for_each(|part| self.read_fwd_entry(part, |s| Cow::Owned(s.to_owned()))),
        }
    }

    /// One comma-separated entry of `fwd`, kept (through `keep`) when it is an address.
    fn read_fwd_entry<'p>(&mut self, part: &'p str, keep: impl FnOnce(&'p str) -> Cow<'a, str>) {
        let addr = part.trim();
        if addr.is_empty() {
            return;
        }
        let is_address = addr.parse::<IpAddr>().is_ok();
        self.fwd_starts_with_address.get_or_insert(is_address);
        if is_address {
            self.fwd.push(keep(addr));
        } else {
            self.fail(format!("router fwd address {addr:?} is not an IP address"));
        }
    }

    fn fail(&mut self, reason: String) {
        if self.failure.is_none() {
            self.failure = Some(reason);
        }
    }

    /// The client's address (`source.ip`): the first entry of `fwd`, when that is an address.
    pub(crate) fn client(&self) -> Option<&str> {
        self.fwd.first().filter(|_| self.fwd_starts_with_address == Some(true)).map(|a| a.as_ref())
    }

    /// `url.path` and `url.query` from `path`.
    pub(crate) fn url_parts(&self) -> (Option<&str>, Option<&str>) {
        let Some(path) = self.path.as_deref() else { return (None, None) };
        match path.split_once('?') {
            Some((p, q)) => (Some(p), Some(q).filter(|q| !q.is_empty())),
            None => (Some(path), None),
        }
    }
}

/// An unknown key's name in the document: a `.` becomes `_` (a dotted name is an object path to
/// Elasticsearch, and `a` beside `a.b` would cost the document), and a name that would collide
/// with a typed field is renamed (`connect_ms` → `connect_ms_text`). Keys are told apart by
/// this name, so two that meet in it are one key.
pub(crate) fn other_key(key: &str) -> Cow<'_, str> {
    let key = if key.as_bytes().contains(&b'.') { Cow::Owned(key.replace('.', "_")) } else { Cow::Borrowed(key) };
    match &*key {
        "connect_ms" | "service_ms" | "fwd" => Cow::Owned(format!("{key}_text")),
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_of_only_whitespace_are_left_out() {
        // Found by fuzz/regressions/router: Elasticsearch refuses such a field name.
        let r = Router::parse("\t=1 \u{3000}=2 \u{1c}=3 \u{2003}\u{2003}=4 tls_version=TLSv1.3");
        let keys: Vec<&str> = r.other.iter().map(|(k, _)| k.as_ref()).collect();
        assert_eq!(keys, ["tls_version"]);
    }

    #[test]
    fn reads_every_field() {
        let r = Router::parse(
            r#"at=info method=POST path="/api/orders?ref=mail" host=shop.example.com request_id=2f6c fwd="198.51.100.23, 10.10.1.4" dyno=web.2 connect=0ms service=231ms status=201 bytes=412 protocol=https tls_version=TLSv1.3"#,
        );
        assert_eq!(r.method.as_deref(), Some("POST"));
        assert_eq!(r.url_parts(), (Some("/api/orders"), Some("ref=mail")));
        assert_eq!(r.fwd, vec!["198.51.100.23", "10.10.1.4"]);
        assert_eq!((r.connect_ms, r.service_ms, r.status, r.bytes), (Some(0), Some(231), Some(201), Some(412)));
        assert_eq!(r.other, vec![(Cow::Borrowed("tls_version"), Cow::Borrowed("TLSv1.3"))]);
        assert_eq!(r.failure, None);
    }

    #[test]
    fn empty_values_are_absent_and_bad_ones_are_reported() {
        let r = Router::parse(
            "at=error code=H10 desc=\"App crashed\" dyno= connect= service= status=503 bytes= fwd=\"2001:db8::7\"",
        );
        assert_eq!((r.connect_ms, r.service_ms, r.bytes, r.dyno.as_deref()), (None, None, None, None));
        assert_eq!(r.fwd, vec!["2001:db8::7"]);
        let r = Router::parse("bytes=9223372036854775808 status=9223372036854775807");
        assert_eq!((r.bytes, r.status), (None, Some(i64::MAX as u64)), "above long is reported, not indexed");
        let r = Router::parse("status=abc fwd=\"unknown, 192.0.2.1\"");
        assert_eq!(r.status, None);
        assert_eq!(r.fwd, vec!["192.0.2.1"]);
        assert_eq!(r.client(), None, "the first entry is not an address: 192.0.2.1 is a proxy");
        assert_eq!(r.failure.as_deref(), Some("router status=\"abc\" is not a number"));
        let r = Router::parse("fwd=\"203.0.113.7, unknown\" fwd=\"10.0.0.1\"");
        assert_eq!((r.client(), r.fwd.len()), (Some("203.0.113.7"), 2));
    }
}
