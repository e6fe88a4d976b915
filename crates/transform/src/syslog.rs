//! The syslog header of one message: `<PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
//! [STRUCTURED-DATA] MSG`. Heroku's HTTPS drains leave STRUCTURED-DATA out entirely (not even
//! `-`), so whether to expect it is the caller's choice ([`StructuredData`]).
//!
//! Lines without VERSION are read as RFC 3164 (`<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG`), as
//! relays send them. Their timestamp has no year and no zone: it is taken as UTC, in the year
//! that puts it no more than a day after the time the line was received. A `Feb 29` with no
//! 29 February in the year before that keeps the receive time, and the header says why.

use crate::timestamp::Timestamp;

/// Whether a STRUCTURED-DATA field follows MSGID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StructuredData {
    /// Logplex HTTPS drains: no STRUCTURED-DATA; MSG follows MSGID.
    Absent,
    /// RFC 5424 proper (syslog drains): `-` or `[...]` elements follow MSGID.
    Present,
}

/// The parts of a syslog message. Fields that were `-` (NILVALUE) are `None`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header<'a> {
    pub priority: u8,
    /// `None` for `-`, and for an RFC 3164 date that names no day near the receive time
    /// (`failure` then says why).
    pub timestamp: Option<Timestamp>,
    /// What in an otherwise readable header could not be used, and why.
    pub failure: Option<&'static str>,
    pub hostname: Option<&'a str>,
    pub appname: Option<&'a str>,
    pub procid: Option<&'a str>,
    pub msgid: Option<&'a str>,
    /// MSG, without the one trailing newline that Logplex counts into the frame.
    pub msg: &'a [u8],
}

impl Header<'_> {
    pub fn facility(&self) -> u8 {
        self.priority >> 3
    }

    pub fn severity(&self) -> u8 {
        self.priority & 7
    }
}

/// Why a header could not be read. The message is then indexed raw.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HeaderError {
    Priority,
    Version,
    Timestamp,
    Field(&'static str),
    StructuredData,
}

impl HeaderError {
    pub fn describe(self) -> &'static str {
        match self {
            HeaderError::Priority => "not syslog: missing or invalid <PRI>",
            HeaderError::Version => "neither RFC 5424 (no VERSION after <PRI>) nor RFC 3164 (no Mmm dd hh:mm:ss)",
            HeaderError::Timestamp => "invalid syslog TIMESTAMP (expected RFC 3339)",
            HeaderError::Field("HOSTNAME") => "syslog header ends before HOSTNAME",
            HeaderError::Field("APP-NAME") => "syslog header ends before APP-NAME",
            HeaderError::Field("PROCID") => "syslog header ends before PROCID",
            HeaderError::Field(_) => "syslog header field is not UTF-8",
            HeaderError::StructuredData => "malformed syslog STRUCTURED-DATA",
        }
    }
}

/// Parses the header. `received` dates RFC 3164 timestamps, which carry no year. Never
/// panics; an `Err` means the whole raw text is the message.
pub fn parse(raw: &[u8], sd: StructuredData, received: Timestamp) -> Result<Header<'_>, HeaderError> {
    let (priority, after_pri) = priority(raw).ok_or(HeaderError::Priority)?;
    let (version, rest) = token(after_pri);
    if version.is_empty() || version.len() > 2 || !version.iter().all(u8::is_ascii_digit) {
        return parse_rfc3164(priority, after_pri, received).ok_or(HeaderError::Version);
    }
    let (ts, rest) = token(rest);
    let timestamp = match ts {
        b"-" => None,
        _ => Some(Timestamp::parse_rfc3339(ts).ok_or(HeaderError::Timestamp)?),
    };
    let (hostname, rest) = field(rest, "HOSTNAME")?;
    let (appname, rest) = field(rest, "APP-NAME")?;
    let (procid, rest) = field(rest, "PROCID")?;
    // A line may end after PROCID; MSGID and MSG are then empty.
    let (msgid, mut rest) = if rest.is_empty() { (None, rest) } else { field(rest, "MSGID")? };
    if sd == StructuredData::Present && !rest.is_empty() {
        rest = skip_structured_data(rest).ok_or(HeaderError::StructuredData)?;
    }
    Ok(Header { priority, timestamp, failure: None, hostname, appname, procid, msgid, msg: trim_newline(rest) })
}

/// `Mmm dd hh:mm:ss [HOSTNAME] TAG[[PID]][:] MSG`.
fn parse_rfc3164(priority: u8, s: &[u8], received: Timestamp) -> Option<Header<'_>> {
    let ts = s.get(..15)?;
    let (timestamp, failure) = match Timestamp::from_rfc3164(ts, received)? {
        Ok(t) => (Some(t), None),
        Err(why) => (None, Some(why)),
    };
    let rest = s.get(15..)?.strip_prefix(b" ").unwrap_or(&[]);
    let (first, after_first) = token(rest);
    // No HOSTNAME when the first word is already the tag (`app[12]:` or `app:`).
    let (hostname, rest) = if first.ends_with(b":") || first.contains(&b'[') {
        (None, rest)
    } else {
        (Some(std::str::from_utf8(first).ok()?).filter(|h| !h.is_empty() && *h != "-"), after_first)
    };
    let tag_end = rest.iter().position(|&b| matches!(b, b'[' | b':' | b' ')).unwrap_or(rest.len());
    let (tag, mut rest) = rest.split_at_checked(tag_end).unwrap_or((rest, &[]));
    let appname = std::str::from_utf8(tag).ok().filter(|t| !t.is_empty());
    let mut procid = None;
    if let Some(after) = rest.strip_prefix(b"[") {
        let mut parts = after.splitn(2, |&b| b == b']');
        let pid = parts.next().unwrap_or_default();
        rest = parts.next()?; // no `]`: not a 3164 tag
        procid = std::str::from_utf8(pid).ok().filter(|p| !p.is_empty());
    }
    rest = rest.strip_prefix(b":").unwrap_or(rest);
    rest = rest.strip_prefix(b" ").unwrap_or(rest);
    Some(Header { priority, timestamp, failure, hostname, appname, procid, msgid: None, msg: trim_newline(rest) })
}

/// Removes the one trailing `\n` (and a `\r` before it) that ends a Logplex message.
pub fn trim_newline(s: &[u8]) -> &[u8] {
    let s = s.strip_suffix(b"\n").unwrap_or(s);
    s.strip_suffix(b"\r").unwrap_or(s)
}

fn priority(raw: &[u8]) -> Option<(u8, &[u8])> {
    let rest = raw.strip_prefix(b"<")?;
    let end = rest.iter().take(4).position(|&b| b == b'>')?;
    let digits = rest.get(..end)?;
    if digits.is_empty() || digits.len() > 3 || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let value = digits.iter().fold(0u16, |v, &b| v * 10 + u16::from(b - b'0'));
    let value = u8::try_from(value).ok().filter(|&v| v <= 191)?;
    Some((value, rest.get(end + 1..)?))
}

/// The bytes up to the next space, and what follows that space.
fn token(s: &[u8]) -> (&[u8], &[u8]) {
    let mut parts = s.splitn(2, |&b| b == b' ');
    (parts.next().unwrap_or_default(), parts.next().unwrap_or_default())
}

fn field<'a>(s: &'a [u8], name: &'static str) -> Result<(Option<&'a str>, &'a [u8]), HeaderError> {
    if s.is_empty() {
        return Err(HeaderError::Field(name));
    }
    let (tok, rest) = token(s);
    let tok = std::str::from_utf8(tok).map_err(|_| HeaderError::Field("utf-8"))?;
    Ok((if tok == "-" { None } else { Some(tok) }, rest))
}

/// Skips `-` or one or more `[id param="value" ...]` elements, and the space after them.
fn skip_structured_data(s: &[u8]) -> Option<&[u8]> {
    if let Some(rest) = s.strip_prefix(b"-") {
        return match rest.first() {
            None => Some(rest),
            Some(b' ') => rest.get(1..),
            // "-" glued to text is the message itself, not a NILVALUE.
            Some(b'\n') => Some(rest),
            Some(_) => None,
        };
    }
    let mut i = 0;
    while s.get(i) == Some(&b'[') {
        let (mut in_quotes, mut escaped) = (false, false);
        i += 1;
        loop {
            let b = *s.get(i)?;
            i += 1;
            match b {
                _ if escaped => escaped = false,
                b'\\' if in_quotes => escaped = true,
                b'"' => in_quotes = !in_quotes,
                b']' if !in_quotes => break,
                _ => {}
            }
        }
    }
    if i == 0 {
        return None;
    }
    match s.get(i) {
        None | Some(b'\n') => s.get(i..),
        Some(b' ') => s.get(i + 1..),
        Some(_) => None,
    }
}

/// RFC 5424 severity names, as `log.syslog.severity.name`.
pub fn severity_name(code: u8) -> &'static str {
    const NAMES: [&str; 8] = ["emergency", "alert", "critical", "error", "warning", "notice", "informational", "debug"];
    NAMES.get(usize::from(code & 7)).copied().unwrap_or_default()
}

/// The level word for `log.level` when nothing better is known.
pub fn severity_level(code: u8) -> &'static str {
    const LEVELS: [&str; 8] = ["emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"];
    LEVELS.get(usize::from(code & 7)).copied().unwrap_or_default()
}

/// RFC 5424 facility names, as `log.syslog.facility.name`.
pub fn facility_name(code: u8) -> &'static str {
    const NAMES: [&str; 24] = [
        "kern",
        "user",
        "mail",
        "daemon",
        "auth",
        "syslog",
        "lpr",
        "news",
        "uucp",
        "cron",
        "authpriv",
        "ftp",
        "ntp",
        "security",
        "console",
        "solaris-cron",
        "local0",
        "local1",
        "local2",
        "local3",
        "local4",
        "local5",
        "local6",
        "local7",
    ];
    NAMES.get(usize::from(code)).copied().unwrap_or("unknown")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn received() -> Timestamp {
        Timestamp::parse_rfc3339(b"2025-03-14T12:00:00Z").unwrap()
    }

    fn utc(t: Option<Timestamp>) -> String {
        let mut out = Vec::new();
        t.unwrap().write_rfc3339(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn reads_rfc3164_lines_from_relays() {
        let h =
            parse(b"<13>Mar 14 09:26:53 web-01 nginx[4711]: GET / 200\n", StructuredData::Present, received()).unwrap();
        assert_eq!(h.priority, 13);
        assert_eq!(utc(h.timestamp), "2025-03-14T09:26:53Z");
        assert_eq!((h.hostname, h.appname, h.procid), (Some("web-01"), Some("nginx"), Some("4711")));
        assert_eq!(h.msg, b"GET / 200");
        let h = parse(b"<13>Mar  4 09:26:53 cron: job done", StructuredData::Present, received()).unwrap();
        assert_eq!(utc(h.timestamp), "2025-03-04T09:26:53Z");
        assert_eq!((h.hostname, h.appname, h.procid, h.msg), (None, Some("cron"), None, &b"job done"[..]));
        // December lines received in January belong to the year before.
        let jan = Timestamp::parse_rfc3339(b"2026-01-01T00:10:00Z").unwrap();
        let h = parse(b"<13>Dec 31 23:59:59 host app: late", StructuredData::Present, jan).unwrap();
        assert_eq!(utc(h.timestamp), "2025-12-31T23:59:59Z");
    }

    #[test]
    fn parses_a_logplex_https_line() {
        let raw = b"<158>1 2025-03-14T09:26:53.589793+00:00 host heroku router - at=info method=GET\n";
        let h = parse(raw, StructuredData::Absent, received()).unwrap();
        assert_eq!(h.priority, 158);
        assert_eq!((h.facility(), h.severity()), (19, 6));
        assert_eq!(facility_name(h.facility()), "local3");
        assert_eq!(severity_name(h.severity()), "informational");
        assert_eq!(h.hostname, Some("host"));
        assert_eq!(h.appname, Some("heroku"));
        assert_eq!(h.procid, Some("router"));
        assert_eq!(h.msgid, None);
        assert_eq!(h.msg, b"at=info method=GET");
        let t = h.timestamp.unwrap();
        assert_eq!((t.unix_seconds(), t.subsec_nanos()), (1_741_944_413, 589_793_000));
    }

    #[test]
    fn splits_pri_into_facility_and_severity() {
        for (pri, facility, severity) in [(0u8, 0u8, 0u8), (13, 1, 5), (172, 21, 4), (191, 23, 7)] {
            let raw = format!("<{pri}>1 2025-03-14T09:26:53Z host app web.1 - x");
            let h = parse(raw.as_bytes(), StructuredData::Absent, received()).unwrap();
            assert_eq!((h.priority, h.facility(), h.severity()), (pri, facility, severity));
        }
        for bad in ["<192>1 ", "<>1 ", "<1a>1 ", "<0001>1 ", "158>1 ", "<158"] {
            assert_eq!(parse(bad.as_bytes(), StructuredData::Absent, received()), Err(HeaderError::Priority), "{bad}");
        }
    }

    #[test]
    fn converts_offsets_and_keeps_microseconds() {
        let raw = b"<190>1 2025-03-14T11:26:53.000042+02:00 host app web.1 - hello";
        let h = parse(raw, StructuredData::Absent, received()).unwrap();
        let mut out = Vec::new();
        h.timestamp.unwrap().write_rfc3339(&mut out);
        assert_eq!(out, b"2025-03-14T09:26:53.000042Z");
    }

    #[test]
    fn keeps_inner_newlines_and_strips_only_the_last() {
        let raw = b"<190>1 2025-03-14T09:26:53Z host app web.1 - line one\nline two\n\n";
        let h = parse(raw, StructuredData::Absent, received()).unwrap();
        assert_eq!(h.msg, b"line one\nline two\n");
    }

    #[test]
    fn reads_rfc5424_structured_data_when_present() {
        let raw = b"<14>1 2025-03-14T09:26:53Z d.0b2c app web.1 - - hello";
        let h = parse(raw, StructuredData::Present, received()).unwrap();
        assert_eq!((h.hostname, h.msg), (Some("d.0b2c"), &b"hello"[..]));
        let raw = br#"<14>1 2025-03-14T09:26:53Z h app web.1 ID7 [a@1 k="v \"]\" x"][b@2] hello"#;
        let h = parse(raw, StructuredData::Present, received()).unwrap();
        assert_eq!((h.msgid, h.msg), (Some("ID7"), &b"hello"[..]));
        // Without STRUCTURED-DATA, a message starting with "- " keeps it.
        let raw = b"<14>1 2025-03-14T09:26:53Z host app web.1 - - dash";
        assert_eq!(parse(raw, StructuredData::Absent, received()).unwrap().msg, b"- dash");
    }

    #[test]
    fn nil_values_are_none() {
        let h = parse(b"<14>1 - - - - - msg", StructuredData::Absent, received()).unwrap();
        assert_eq!((h.timestamp, h.hostname, h.appname, h.procid), (None, None, None, None));
        assert_eq!(h.msg, b"msg");
    }

    #[test]
    fn reports_what_is_missing() {
        assert_eq!(parse(b"hello world", StructuredData::Absent, received()), Err(HeaderError::Priority));
        assert_eq!(
            parse(b"<14>March 14 09:26:53 host x", StructuredData::Absent, received()),
            Err(HeaderError::Version)
        );
        assert_eq!(
            parse(b"<14>1 yesterday host app web.1 - m", StructuredData::Absent, received()),
            Err(HeaderError::Timestamp)
        );
        assert_eq!(
            parse(b"<14>1 2025-03-14T09:26:53Z host", StructuredData::Absent, received()),
            Err(HeaderError::Field("APP-NAME"))
        );
        let h = parse(b"<14>1 2025-03-14T09:26:53Z host heroku router", StructuredData::Absent, received()).unwrap();
        assert_eq!((h.procid, h.msg), (Some("router"), &b""[..]));
    }
}
