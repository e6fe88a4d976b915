//! `drainpipe tail` and `drainpipe search`: the `heroku logs` experience from a terminal, over
//! everything drainpipe ever stored.
//!
//! Both build one Elasticsearch query from the filters (term and range queries on the fields of
//! docs/fields.md, and QUERY in the query-string syntax, on `message` unless it names a field)
//! and print each document as `heroku logs` does: `2026-11-24T10:00:00.123456+00:00
//! app[web.1]: message`, coloured on a terminal, or its JSON with `--json`.
//!
//! `search` reads a time range oldest first with a scroll (which every target of the test
//! matrix has), so it goes past 10,000 matches. `tail` prints the last N lines, then polls
//! every second for lines from a little before the newest it has shown (`--late`, for lines
//! indexed late or refreshed a second later), and remembers the ids it printed in that window:
//! no line is shown twice, none is skipped, even when many share one timestamp.

use std::collections::{BTreeMap, HashSet};
use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use anyhow::Context as _;
use drainpipe_bulk_indexer::{login_hint, Client, Error, StatusCode};
use drainpipe_delivery::DataStreams;
use serde_json::{json, Value};

use drainpipe_transform::Timestamp;

use crate::config::{now_ms, Filters, SearchArgs, TailArgs, LEVELS};
use crate::{Exit, USAGE};

impl Filters {
    /// The data streams to read: one dataset's, or every dataset's but the dead letters'.
    fn streams(&self) -> String {
        let streams = DataStreams::new(&self.elasticsearch.namespace.0);
        match &self.dataset {
            Some(d) => streams.named(d),
            None => streams.lines_pattern(),
        }
    }

    /// What must exist for [`Filters::streams`] to be worth reading: the dataset's stream, or
    /// any stream of the namespace.
    fn required(&self) -> String {
        let streams = DataStreams::new(&self.elasticsearch.namespace.0);
        match &self.dataset {
            Some(d) => streams.named(d),
            None => streams.pattern(),
        }
    }

    /// The query: every filter a term or range, QUERY a query_string, `extra` besides.
    fn query(&self, extra: Option<Value>) -> Value {
        let mut filter = Vec::new();
        let term = |field: &str, value: &str| json!({"term": {field: value}});
        if let Some(app) = &self.app {
            filter.push(term("heroku.app", app));
        }
        // As `heroku logs --dyno`: the process that wrote the line (PROCID), not the dyno a
        // router line names; OTLP records, which have no PROCID, by their resource's dyno.
        let by_writer = |syslog: Value, otlp: Value| {
            let without_procid =
                json!({"bool": {"must_not": {"exists": {"field": "log.syslog.procid"}}, "filter": otlp}});
            json!({"bool": {"should": [syslog, without_procid], "minimum_should_match": 1}})
        };
        if let Some(dyno) = &self.dyno {
            filter.push(by_writer(term("log.syslog.procid", dyno), term("heroku.dyno", dyno)));
        }
        if let Some(t) = &self.process_type {
            let procid = json!({"prefix": {"log.syslog.procid": format!("{t}.")}});
            filter.push(by_writer(procid, term("heroku.process_type", t)));
        }
        if let Some(level) = self.level {
            let at_least: Vec<&str> = LEVELS.iter().skip_while(|l| **l != level).copied().collect();
            filter.push(json!({"terms": {"log.level": at_least}}));
        }
        if let Some((from, to)) = self.status {
            filter.push(json!({"range": {"http.response.status_code": {"gte": from, "lte": to}}}));
        }
        if let Some(q) = &self.query {
            filter.push(json!({"query_string": {"query": q, "default_field": "message", "default_operator": "AND"}}));
        }
        filter.extend(extra);
        json!({"bool": {"filter": filter}})
    }
}

/// Fails with a message a user understands when QUERY names a field no stream has, or no
/// stream exists yet in the namespace.
async fn check_target(client: &Client, filters: &Filters) -> anyhow::Result<()> {
    let streams = filters.streams();
    let pattern = filters.required();
    // No data stream API in every target (Elasticsearch's test distribution lacks it): a
    // count over no index at all answers with no shards.
    let none = match client.count(&pattern, None).await {
        Ok(count) => count.shards.total == 0,
        Err(Error::Status { status, .. }) => status == StatusCode::NOT_FOUND,
        Err(e) => return Err(e).with_context(|| format!("asking {} for {pattern}", client.url())),
    };
    if none {
        anyhow::bail!(
            "no data stream matches {pattern} on {} yet: is drainpipe writing there (namespace {:?})?",
            client.url(),
            filters.elasticsearch.namespace.0
        );
    }
    let named = filters.query.as_deref().map(query_fields).unwrap_or_default();
    if named.is_empty() {
        return Ok(());
    }
    // Where fields cannot be asked about, the search itself says what is wrong.
    let Ok(fields) = client.field_caps(&streams, &named).await else { return Ok(()) };
    let known = |f: &str| fields.contains(f) || f.starts_with("app.") || f.starts_with("otel.resource.");
    let unknown: Vec<&String> = named.iter().filter(|f| !known(f)).collect();
    if let Some(f) = unknown.first() {
        return Err(Exit {
            code: USAGE,
            message: format!(
                "unknown field `{f}` in the query: no document in {pattern} has it (fields are named as in docs/fields.md: heroku.dyno, log.level, http.response.status_code, app.<key>, …)"
            ),
        }
        .into());
    }
    Ok(())
}

/// Field names a query string uses (`name:` outside quotes), wildcards left out.
fn query_fields(query: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut quoted = false;
    let mut word = String::new();
    for c in query.chars() {
        match c {
            '"' => {
                quoted = !quoted;
                word.clear();
            }
            ':' if !quoted && !word.is_empty() => {
                if !word.contains('*') && !word.starts_with('_') && !fields.contains(&word) {
                    fields.push(word.clone());
                }
                word.clear();
            }
            c if !quoted && (c.is_alphanumeric() || matches!(c, '.' | '_' | '@' | '*' | '-')) => word.push(c),
            _ => word.clear(),
        }
    }
    fields
}

/// The error of a request made for `what` (`searching`): what Elasticsearch answered, or why
/// there was no answer.
fn failed(client: &Client, what: &str, e: Error) -> anyhow::Error {
    match e {
        Error::Status { status, body, .. } => anyhow::anyhow!("{what} answered {status}: {body}{}", login_hint(status)),
        e => anyhow::Error::from(e).context(format!("{what} on {}", client.url())),
    }
}

/// Standard output, where a reader that went away (`| head`) ends the command quietly; any other
/// write error ends it with that error.
struct Output {
    out: std::io::BufWriter<std::io::Stdout>,
    json: bool,
    colour: bool,
    failed: Option<std::io::Error>,
}

/// Output can go no further: its reader went away, or a write failed (see [`Output::finish`]).
#[derive(Debug)]
struct Closed;

impl Output {
    fn new(json: bool) -> Output {
        let colour = !json && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none();
        Output { out: std::io::BufWriter::new(std::io::stdout()), json, colour, failed: None }
    }

    fn line(&mut self, hit: &Value) -> Result<(), Closed> {
        let text = if self.json { hit["_source"].to_string() } else { format_line(&hit["_source"], self.colour) };
        let written = writeln!(self.out, "{text}");
        self.check(written)
    }

    fn flush(&mut self) -> Result<(), Closed> {
        let flushed = self.out.flush();
        self.check(flushed)
    }

    fn check(&mut self, result: std::io::Result<()>) -> Result<(), Closed> {
        result.map_err(|e| {
            if e.kind() != std::io::ErrorKind::BrokenPipe {
                self.failed.get_or_insert(e);
            }
            Closed
        })
    }

    /// Flushes; the write error that ended the output, if it was not a reader going away.
    fn finish(mut self) -> anyhow::Result<()> {
        let _ = self.flush();
        match self.failed {
            Some(e) => Err(anyhow::Error::from(e).context("writing to standard output")),
            None => Ok(()),
        }
    }
}

/// `2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info …`, as `heroku logs` prints it.
/// Every field is stored data a drain sent, so none may reach the terminal raw: control
/// characters (escape sequences that retitle or clear a terminal among them) and bidirectional
/// overrides are shown as visible escapes ([`visible`]), coloured or not.
pub fn format_line(doc: &Value, colour: bool) -> String {
    let timestamp = doc["@timestamp"].as_str().unwrap_or("-");
    let timestamp = timestamp.strip_suffix('Z').map_or_else(|| timestamp.to_owned(), |t| format!("{t}+00:00"));
    let timestamp = visible(&timestamp);
    let source = doc["log"]["syslog"]["appname"].as_str().or(doc["heroku"]["source"].as_str()).unwrap_or("app");
    let process = doc["log"]["syslog"]["procid"]
        .as_str()
        .or(doc["heroku"]["dyno"].as_str())
        .or(doc["heroku"]["addon"].as_str())
        .unwrap_or("-");
    let message = visible(doc["message"].as_str().unwrap_or(""));
    let (source_shown, process_shown) = (visible(source), visible(process));
    if !colour {
        return format!("{timestamp} {source_shown}[{process_shown}]: {message}");
    }
    let level = doc["log"]["level"].as_str().unwrap_or("");
    let status = doc["http"]["response"]["status_code"].as_u64().unwrap_or(0);
    let message_colour = match (level, status) {
        (_, 500..) | ("error" | "critical" | "alert" | "emergency", _) => "31",
        (_, 400..=499) | ("warning", _) => "33",
        ("debug" | "trace", _) => "2",
        _ => "0",
    };
    // Each dyno keeps one colour, as the Heroku CLI does.
    let palette = ["36", "32", "35", "34", "33", "96", "92", "95"];
    let hash = process.bytes().fold(0usize, |h, b| h.wrapping_mul(31).wrapping_add(usize::from(b)));
    let dyno_colour = if source == "heroku" { "90" } else { palette[hash % palette.len()] };
    format!(
        "\x1b[2m{timestamp}\x1b[0m \x1b[{dyno_colour}m{source_shown}[{process_shown}]:\x1b[0m \x1b[{message_colour}m{message}\x1b[0m"
    )
}

/// `text` with every control character (C0, DEL, C1; tabs and newlines too, so one document is
/// one line) and every bidirectional override shown as a visible escape: `\x1b`, `\t`,
/// `\u{202e}`. Text without any is borrowed as it is.
pub fn visible(text: &str) -> std::borrow::Cow<'_, str> {
    let hidden = |c: char| {
        c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
    };
    if !text.contains(hidden) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            c if hidden(c) && (c as u32) < 0x80 => out.push_str(&format!("\\x{:02x}", c as u32)),
            c if hidden(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// How long a scroll is kept between two pages.
const KEEP_ALIVE: &str = "5m";

/// Reads a scroll over `streams` (`body` its first search) page by page, handing each page's
/// hits to `each` until it returns false or the hits run out; the scroll is cleared in every case.
async fn scroll(
    client: &Client,
    streams: &str,
    body: &Value,
    what: &str,
    mut each: impl FnMut(&[Value]) -> bool,
) -> anyhow::Result<()> {
    let first = client.search_with_scroll(streams, body, KEEP_ALIVE).await;
    let mut page = first.map_err(|e| failed(client, what, e))?;
    let result = loop {
        let hits = page["hits"]["hits"].as_array().map(Vec::as_slice).unwrap_or_default();
        if hits.is_empty() || !each(hits) {
            break Ok(());
        }
        let Some(id) = page["_scroll_id"].as_str() else { break Ok(()) };
        match client.scroll(id, KEEP_ALIVE).await {
            Ok(next) => page = next,
            Err(e) => break Err(failed(client, what, e)),
        }
    };
    if let Some(id) = page["_scroll_id"].as_str() {
        let _ = client.clear_scroll(id).await;
    }
    result
}

/// What `search` sorts and pages by: time, then the receive time and position (`_doc`) for
/// lines of one timestamp.
fn sort() -> Value {
    json!([{"@timestamp": {"order": "asc"}}, {"_doc": {"order": "asc"}}])
}

pub async fn search(args: SearchArgs) -> anyhow::Result<()> {
    let client = args.filters.elasticsearch.client()?;
    check_target(&client, &args.filters).await?;
    let mut range = serde_json::Map::new();
    if let Some(since) = args.since {
        range.insert("gte".into(), since.into());
    }
    if let Some(until) = args.until {
        range.insert("lte".into(), until.into());
    }
    let extra = (!range.is_empty()).then(|| {
        range.insert("format".into(), "epoch_millis".into());
        json!({"range": {"@timestamp": range}})
    });
    let query = args.filters.query(extra);
    let streams = args.filters.streams();
    if args.count {
        let count = client.count(&streams, Some(&query)).await.map_err(|e| failed(&client, "counting", e))?;
        crate::print_all(format!("{}\n", count.count).as_bytes())?;
        return Ok(());
    }
    let mut out = Output::new(args.filters.json);
    let body = json!({"size": 1000, "query": query, "sort": sort()});
    let result =
        scroll(&client, &streams, &body, "searching", |hits| hits.iter().try_for_each(|h| out.line(h)).is_ok()).await;
    result.and(out.finish())
}

/// The ids `tail` printed, by when they were received, so a line met again in the next poll is
/// not printed twice; those older than the window are forgotten.
#[derive(Default)]
struct Printed {
    ids: HashSet<String>,
    by_time: BTreeMap<u64, Vec<String>>,
}

impl Printed {
    fn insert(&mut self, ingested_ms: u64, id: &str) -> bool {
        if !self.ids.insert(id.to_owned()) {
            return false;
        }
        self.by_time.entry(ingested_ms).or_default().push(id.to_owned());
        true
    }

    fn forget_before(&mut self, ingested_ms: u64) {
        let keep = self.by_time.split_off(&ingested_ms);
        for ids in std::mem::replace(&mut self.by_time, keep).into_values() {
            for id in ids {
                self.ids.remove(&id);
            }
        }
    }
}

/// When drainpipe received a hit's line (`event.ingested`), in nanoseconds; 0 if unknown.
fn ingested_nanos(hit: &Value) -> u64 {
    let text = hit["_source"]["event"]["ingested"].as_str().unwrap_or("");
    Timestamp::parse_rfc3339(text.as_bytes()).map_or(0, |t| u64::try_from(t.unix_nanos()).unwrap_or(0))
}

/// [`ingested_nanos`] in milliseconds.
fn ingested_ms(hit: &Value) -> u64 {
    ingested_nanos(hit) / 1_000_000
}

/// Lines in the order drainpipe received them, at the precision it recorded that in: two
/// frames received within one millisecond stay in their order, whatever their lines' times.
fn in_received_order(lines: &mut [Value]) {
    lines.sort_by_key(|h| (ingested_nanos(h), timestamp_of(h)));
}

/// Elasticsearch answers at most this many hits at once.
const MAX_WINDOW: usize = 10_000;

pub async fn tail(args: TailArgs) -> anyhow::Result<()> {
    let filters = &args.filters;
    let client = filters.elasticsearch.client()?;
    check_target(&client, filters).await?;
    let streams = filters.streams();
    let mut out = Output::new(filters.json);
    let mut printed = Printed::default();
    // The last N lines by time, newest first from Elasticsearch, printed oldest first.
    let num = args.num.min(MAX_WINDOW);
    let body = json!({"size": num, "query": filters.query(None), "sort": [{"@timestamp": "desc"}, {"_doc": "desc"}]});
    let first = client.search(&streams, &body).await.map_err(|e| failed(&client, "reading the last lines", e))?;
    let mut hits = first["hits"]["hits"].as_array().cloned().unwrap_or_default();
    hits.reverse();
    // What arrives from here on is new: lines received before the newest shown are older lines.
    let mut floor = if hits.is_empty() { now_ms() } else { 0 };
    for hit in &hits {
        let received = ingested_ms(hit);
        floor = floor.max(received);
        printed.insert(received, hit["_id"].as_str().unwrap_or(""));
        if out.line(hit).is_err() {
            return out.finish();
        }
    }
    if out.flush().is_err() || args.no_follow {
        return out.finish();
    }
    let mut follow = Follow { client: &client, streams: &streams, filters, printed, newest: floor, floor, args: &args };
    let stop = tokio::signal::ctrl_c();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            _ = &mut stop => return out.finish(),
            _ = tick.tick() => {}
        }
        // Ctrl-C also ends a poll that is waiting on Elasticsearch.
        let polled = tokio::select! {
            _ = &mut stop => return out.finish(),
            polled = follow.poll(&mut out) => polled,
        };
        match polled {
            Ok(Ok(())) => {}
            Ok(Err(Closed)) => return out.finish(),
            Err(e) => tracing::warn!(error = %format!("{e:#}"), "following failed; trying again"),
        }
    }
}

/// `tail`'s follow: lines by when drainpipe received them (`event.ingested`, the receiver's
/// clock, so an app's skewed clock moves nothing), from `--late` before the newest received
/// (or now, if that is earlier): lines indexed late still appear, and the ids printed in the
/// window keep any from appearing twice.
struct Follow<'a> {
    client: &'a Client,
    streams: &'a str,
    filters: &'a Filters,
    printed: Printed,
    /// When the newest line printed was received (ms).
    newest: u64,
    /// Nothing received until this (ms) is new: the last lines printed first end here.
    floor: u64,
    args: &'a TailArgs,
}

impl Follow<'_> {
    async fn poll(&mut self, out: &mut Output) -> anyhow::Result<Result<(), Closed>> {
        let late = self.args.late.0.as_millis() as u64;
        // Strictly after the floor: a line received with the last ones shown (the same frame)
        // and older than them is not new.
        let from = self.newest.min(now_ms()).saturating_sub(late).max(self.floor + 1);
        let window = json!({"range": {"event.ingested": {"gte": from, "format": "epoch_millis"}}});
        let query = self.filters.query(Some(window));
        // 1. Which lines of the window are new: ids only, from a scroll (one consistent view of
        //    every backing index, whatever the ties between them).
        let mut fresh = Vec::new();
        let body = json!({"size": self.args.follow_page.max(1), "_source": false, "query": query, "sort": ["_doc"]});
        let printed = &self.printed;
        scroll(self.client, self.streams, &body, "following", |hits| {
            let new = hits.iter().filter_map(|h| h["_id"].as_str()).filter(|id| !printed.ids.contains(*id));
            fresh.extend(new.map(str::to_owned));
            true
        })
        .await?;
        // 2. Those lines, in the order they were received.
        let mut lines = Vec::with_capacity(fresh.len());
        for ids in fresh.chunks(1000) {
            let body = json!({"size": ids.len(), "query": {"ids": {"values": ids}}, "sort": [{"event.ingested": "asc"}, {"@timestamp": "asc"}]});
            let found =
                self.client.search(self.streams, &body).await.map_err(|e| failed(self.client, "following", e))?;
            lines.extend(found["hits"]["hits"].as_array().cloned().unwrap_or_default());
        }
        in_received_order(&mut lines);
        for hit in &lines {
            let received = ingested_ms(hit);
            if self.printed.insert(received, hit["_id"].as_str().unwrap_or("")) {
                if out.line(hit).is_err() {
                    return Ok(Err(Closed));
                }
                self.newest = self.newest.max(received);
            }
        }
        if out.flush().is_err() {
            return Ok(Err(Closed));
        }
        self.printed.forget_before(self.newest.min(now_ms()).saturating_sub(late * 2));
        Ok(Ok(()))
    }
}

/// A hit's `@timestamp` in nanoseconds since the epoch (0 if it has none).
fn timestamp_of(hit: &Value) -> i64 {
    let text = hit["_source"]["@timestamp"].as_str().unwrap_or("");
    Timestamp::parse_rfc3339(text.as_bytes()).map_or(0, |t| t.unix_nanos())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{ElasticsearchOptions, GeneralOptions};

    #[test]
    fn lines_read_as_heroku_logs_prints_them() {
        let router = json!({"@timestamp": "2025-03-14T09:26:53.589793Z", "message": "at=info method=GET",
            "log": {"syslog": {"appname": "heroku", "procid": "router"}}});
        assert_eq!(format_line(&router, false), "2025-03-14T09:26:53.589793+00:00 heroku[router]: at=info method=GET");
        let fir = json!({"@timestamp": "2025-03-14T09:26:53.000000Z", "message": "hi", "heroku": {"source": "app", "dyno": "web.1"}});
        assert_eq!(format_line(&fir, false), "2025-03-14T09:26:53.000000+00:00 app[web.1]: hi");
        assert!(format_line(&fir, true).contains("\x1b["));
    }

    #[test]
    fn no_control_character_from_stored_data_reaches_the_terminal_coloured_or_not() {
        let hostile = json!({
            "@timestamp": "2025-03-14T09:26:53.000000Z\u{7}",
            "message": "hi \u{1b}]0;pwned\u{7} \u{1b}[2J\tdone\u{9b}31m \u{202e}txt.exe\r\nnext",
            "log": {"syslog": {"appname": "\u{1b}]0;title\u{7}", "procid": "web.1\u{1b}[2J"}},
        });
        for colour in [false, true] {
            let line = format_line(&hostile, colour);
            // Only our own colour codes, and only when colouring.
            let ours = line.replace("\x1b[2m", "").replace("\x1b[0m", "").replace("\x1b[0m", "");
            let ours = ["\x1b[90m", "\x1b[31m", "\x1b[33m", "\x1b[2m"]
                .iter()
                .chain(["\x1b[36m", "\x1b[32m", "\x1b[35m", "\x1b[34m", "\x1b[96m", "\x1b[92m", "\x1b[95m"].iter())
                .fold(ours, |l, c| l.replace(c, ""));
            assert!(!ours.chars().any(|c| c.is_control() || c == '\u{202e}'), "colour {colour}: {line:?}");
            assert!(ours.contains("\\x1b]0;title\\x07[web.1\\x1b[2J]:"), "{ours}");
            assert!(
                ours.contains("hi \\x1b]0;pwned\\x07 \\x1b[2J\\tdone\\u{9b}31m \\u{202e}txt.exe\\r\\nnext"),
                "{ours}"
            );
        }
        assert!(matches!(visible("plain line"), std::borrow::Cow::Borrowed(_)));
    }

    #[test]
    fn followed_lines_keep_their_receipt_order_within_a_millisecond() {
        // Found by the e2e tail test: a line stamped ten minutes ahead, received 0.4 ms before
        // the next frame, was printed after it.
        let hit = |ingested: &str, ts: &str, m: &str| json!({"_source": {"event": {"ingested": ingested}, "@timestamp": ts, "message": m}});
        let mut lines = vec![
            hit("2026-12-07T04:15:30.123900Z", "2026-11-24T10:00:08.000000Z", "after skew"),
            hit("2026-12-07T04:15:30.123500Z", "2026-11-24T10:10:00.000000Z", "skewed"),
            hit("2026-12-07T04:15:30.123900Z", "2026-11-24T10:00:07.000000Z", "same receipt, earlier time"),
        ];
        in_received_order(&mut lines);
        let order: Vec<&str> = lines.iter().map(|h| h["_source"]["message"].as_str().unwrap()).collect();
        assert_eq!(order, ["skewed", "same receipt, earlier time", "after skew"]);
    }

    #[test]
    fn the_fields_a_query_names_are_found() {
        assert_eq!(query_fields("timeout"), Vec::<String>::new());
        assert_eq!(
            query_fields("heroku.dyno:web.1 AND (log.level:error OR app.user.plan:pro) \"a:b\" _id:x a*:y"),
            ["heroku.dyno", "log.level", "app.user.plan"]
        );
    }

    #[test]
    fn a_level_means_that_level_or_worse() {
        let f = Filters {
            general: GeneralOptions { config: None, log_format: crate::config::LogFormat::Text },
            elasticsearch: default_es(),
            app: None,
            dyno: None,
            process_type: None,
            dataset: None,
            level: Some("error"),
            status: None,
            json: false,
            query: None,
        };
        assert_eq!(
            f.query(None)["bool"]["filter"][0]["terms"]["log.level"],
            json!(["error", "critical", "alert", "emergency"])
        );
    }

    fn default_es() -> ElasticsearchOptions {
        use clap::{Args as _, FromArgMatches as _};
        let command = ElasticsearchOptions::augment_args(clap::Command::new("x"));
        ElasticsearchOptions::from_arg_matches(&command.get_matches_from(["x"])).unwrap()
    }
}
