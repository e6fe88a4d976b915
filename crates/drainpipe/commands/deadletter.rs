//! `drainpipe deadletter list|replay`: the dead letters (the dead-letter stream's and the
//! spool folder's file), grouped by reason, and sent again once their cause is fixed, as
//! Logstash's dead_letter_queue input does.
//!
//! A replay sends each dead letter's document to the data stream it was meant for with its
//! original `_id` (so a line stored meanwhile, or by an earlier replay, is not stored twice) and
//! removes the dead letters that are now stored; what is still refused stays, and the exit is 1.
//! The file is taken aside while it is read (`serve` may be appending; see
//! `drainpipe_bulk_indexer::DeadLetterFile`), and what stays is appended back.

use std::collections::{BTreeMap, BTreeSet};
use std::io::BufRead as _;
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use anyhow::Context as _;
use bytes::Bytes;
use drainpipe_bulk_indexer::response::{classify, ItemOutcome};
use drainpipe_bulk_indexer::{
    push_create_action, Client, DeadLetterEntry, DeadLetterFile, Error, ItemDecision, RequestDecision, RetryPolicy,
    StatusCode,
};
use drainpipe_delivery::DataStreams;
use serde_json::{json, Value};

use crate::config::{Action, Selection};

impl Selection {
    fn file(&self) -> Option<DeadLetterFile> {
        self.spool_dir.as_ref().map(|d| DeadLetterFile::new(d.join("dead-letters.ndjson")))
    }

    fn matches(&self, letter: &DeadLetterEntry) -> bool {
        self.since.is_none_or(|since| letter.timestamp_ms >= since)
            && self.reason.as_ref().is_none_or(|r| {
                let r = r.to_lowercase();
                letter.error.kind.to_lowercase().contains(&r) || letter.error.message.to_lowercase().contains(&r)
            })
    }
}

pub async fn run(action: Action) -> anyhow::Result<()> {
    match action {
        Action::List { select, json } => list(&select, json).await,
        Action::Replay { select, rollover } => replay(&select, rollover).await,
    }
}

/// A line of the dead-letter file; `None` when it holds no dead letter.
fn letter_of_line(line: &str) -> Option<DeadLetterEntry> {
    serde_json::from_str(line).ok()
}

/// The group a letter is listed under: its target, error type, and reason without what
/// differs per document (`[1:42]`, the id and value in quotes).
fn group(letter: &DeadLetterEntry) -> (String, String, String) {
    (letter.deadletter.index.clone(), letter.error.kind.clone(), generic_reason(&letter.error.message))
}

/// `[1:40] failed to parse field [message] of type [long] in document with id 'abc'. Preview
/// of field's value: 'x'` → `failed to parse field [message] of type [long] in document with
/// id '…'. Preview of field's value: '…'`.
fn generic_reason(reason: &str) -> String {
    let reason = match reason.strip_prefix('[').and_then(|r| r.split_once("] ")) {
        Some((position, rest)) if position.chars().all(|c| c.is_ascii_digit() || c == ':') => rest,
        _ => reason,
    };
    // A quote opens after a non-word character and closes before one: `field's` is no quote.
    let chars: Vec<char> = reason.chars().collect();
    let word = |i: Option<usize>| i.and_then(|i| chars.get(i)).is_some_and(|c| c.is_alphanumeric());
    let mut out = String::with_capacity(reason.len());
    let mut open: Option<usize> = None;
    for (i, &c) in chars.iter().enumerate() {
        match open {
            None if c == '\'' && !word(i.checked_sub(1)) && chars[i + 1..].contains(&'\'') => {
                out.push_str("'…'");
                open = Some(i);
            }
            None => out.push(c),
            Some(_) if c == '\'' && !word(Some(i + 1)) => open = None,
            Some(_) => {}
        }
    }
    if let Some(start) = open {
        // Never closed: what followed was not quoted after all.
        out.truncate(out.len() - "'…'".len());
        out.extend(&chars[start..]);
    }
    out
}

/// A page of the dead-letter stream at a time, oldest first, from `--since` on.
struct StreamPages<'a> {
    client: &'a Client,
    stream: String,
    since: Option<u64>,
    until: u64,
    after: Option<Value>,
    done: bool,
}

/// A dead letter in the stream: the backing index and `_id` to remove it by.
struct Stored {
    index: String,
    id: String,
    letter: Option<DeadLetterEntry>,
}

const PAGE: usize = 500;

impl StreamPages<'_> {
    async fn next(&mut self) -> anyhow::Result<Vec<Stored>> {
        if self.done {
            return Ok(Vec::new());
        }
        // Up to when the command started: what `serve` dead-letters meanwhile waits for the next run.
        let mut range = json!({"lte": self.until, "format": "epoch_millis"});
        if let Some(since) = self.since {
            range["gte"] = json!(since);
        }
        let mut query = json!({
            "size": PAGE,
            "query": {"bool": {"filter": [{"range": {"@timestamp": range}}]}},
            // unmapped_type: a stream someone else's template made is read, not refused.
            "sort": [
                {"@timestamp": {"order": "asc", "unmapped_type": "date"}},
                {"deadletter.id": {"order": "asc", "unmapped_type": "keyword"}},
            ],
            "track_total_hits": false,
        });
        if let Some(after) = &self.after {
            query["search_after"] = after.clone();
        }
        let mut answer = match self.client.search(&self.stream, &query).await {
            // No dead letter was ever written in this namespace.
            Err(Error::Status { status: StatusCode::NOT_FOUND, .. }) => {
                self.done = true;
                return Ok(Vec::new());
            }
            answer => answer.map_err(|e| answered(format!("reading {}", self.stream), e))?,
        };
        let hits = answer["hits"]["hits"].as_array_mut().map(std::mem::take).unwrap_or_default();
        self.done = hits.len() < PAGE;
        self.after = hits.last().map(|h| h["sort"].clone());
        Ok(hits
            .into_iter()
            .map(|mut h| Stored {
                index: h["_index"].as_str().unwrap_or_default().to_owned(),
                id: h["_id"].as_str().unwrap_or_default().to_owned(),
                letter: serde_json::from_value(h["_source"].take()).ok(),
            })
            .collect())
    }
}

/// The error of a request made for `what` (`reading <stream>`): what Elasticsearch answered
/// (with [`hint`]), or why there was no answer.
fn answered(what: String, e: Error) -> anyhow::Error {
    match &e {
        Error::Status { status, .. } => anyhow::anyhow!("{what} answered {status}{}", hint(&e)),
        _ => anyhow::Error::from(e).context(what),
    }
}

/// What to add to an error Elasticsearch answered: for a refusal, the privileges these commands
/// need beyond `serve`'s role; else Elasticsearch's reason.
fn hint(e: &Error) -> String {
    match e {
        Error::Status { status, .. } if status.as_u16() == 401 => drainpipe_bulk_indexer::login_hint(*status).into(),
        e if e.is_refusal() => format!(
            ": the user needs `read` and `delete` on {}, `read` and `create_doc` on {} (and `manage` there for \
             --rollover); see docs/operations.md, \"The Elasticsearch role\"",
            DataStreams::EVERY_DEAD_LETTERS,
            DataStreams::EVERY_SIGNAL_TARGET
        ),
        Error::Status { body, .. } => format!(": {body}"),
        _ => String::new(),
    }
}

fn pages<'a>(client: &'a Client, select: &Selection) -> StreamPages<'a> {
    StreamPages {
        client,
        stream: select.elasticsearch.dead_letter_stream(),
        since: select.since,
        until: crate::config::now_ms(),
        after: None,
        done: false,
    }
}

/// How many dead letters a group has, and when the first and last were written.
#[derive(Default)]
struct Group {
    count: u64,
    first_ms: u64,
    last_ms: u64,
}

impl Group {
    fn add(&mut self, at_ms: u64) {
        self.first_ms = if self.count == 0 { at_ms } else { self.first_ms.min(at_ms) };
        self.last_ms = self.last_ms.max(at_ms);
        self.count += 1;
    }
}

type Groups = BTreeMap<(&'static str, (String, String, String)), Group>;

async fn list(select: &Selection, as_json: bool) -> anyhow::Result<()> {
    let client = select.elasticsearch.client()?;
    let mut groups = Groups::new();
    let mut unreadable = 0u64;
    let mut pages = pages(&client, select);
    loop {
        let page = pages.next().await?;
        if page.is_empty() {
            break;
        }
        for stored in page {
            match stored.letter {
                Some(l) if select.matches(&l) => groups.entry(("stream", group(&l))).or_default().add(l.timestamp_ms),
                Some(_) => {}
                None => unreadable += 1,
            }
        }
    }
    let mut files = Vec::new();
    if let Some(file) = select.file() {
        for path in [file.taken_path(), file.path().to_owned()] {
            if let Some(n) = read_file(&path, |letter| {
                if let Some(l) = letter.filter(|l| select.matches(l)) {
                    groups.entry(("file", group(&l))).or_default().add(l.timestamp_ms);
                }
            })? {
                unreadable += n;
                files.push(path);
            }
        }
    }
    let mut out = String::new();
    for ((place, (target, kind, reason)), g) in &groups {
        let (first, last) = (time(g.first_ms), time(g.last_ms));
        if as_json {
            let line = json!({"count": g.count, "where": place, "index": target, "error_type": kind, "reason": reason, "first": first, "last": last});
            out.push_str(&format!("{line}\n"));
        } else {
            out.push_str(&format!(
                "{:>8}  {place:<6}  {target}  {first} … {last}\n          {kind}: {reason}\n",
                g.count
            ));
        }
    }
    if !as_json {
        let total: u64 = groups.values().map(|g| g.count).sum();
        let mut places = vec![select.elasticsearch.dead_letter_stream()];
        places.extend(files.iter().map(|f| f.display().to_string()));
        out.push_str(&format!("{total} dead letter(s) in {} group(s), from {}\n", groups.len(), places.join(" and ")));
        if unreadable > 0 {
            out.push_str(&format!("{unreadable} entr(ies) could not be read as dead letters and were left out\n"));
        }
    }
    crate::print_all(out.as_bytes())
}

fn time(ms: u64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(ms)).to_string()
}

/// Calls `each` with the dead letter of every line of the file at `path` (`None` when a line
/// holds none); `None` when there is no file, else how many lines were not dead letters.
fn read_file(path: &Path, mut each: impl FnMut(Option<DeadLetterEntry>)) -> anyhow::Result<Option<u64>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    let mut unreadable = 0;
    for line in std::io::BufReader::new(file).lines() {
        let line = line.with_context(|| format!("cannot read {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let letter = letter_of_line(&line);
        unreadable += u64::from(letter.is_none());
        each(letter);
    }
    Ok(Some(unreadable))
}

/// What became of the dead letters a replay sent.
#[derive(Default)]
struct Tally {
    stored: u64,
    already_there: u64,
    /// Refused again, by group: they stay.
    refused: BTreeMap<(String, String, String), u64>,
    /// Still answered 429/5xx (or not answered) after every try: they stay.
    not_now: u64,
    /// Stored, but their dead letter could not be removed (a next replay finds them stored).
    not_removed: u64,
}

/// What became of one letter.
enum Sent {
    Stored,
    AlreadyThere,
    Refused { kind: String, reason: String },
    NotNow,
}

impl Sent {
    fn is_stored(&self) -> bool {
        matches!(self, Sent::Stored | Sent::AlreadyThere)
    }
}

impl Tally {
    /// Prints what became of the letters; an error when some were not stored.
    fn finish(&self) -> anyhow::Result<()> {
        let refused: u64 = self.refused.values().sum();
        let mut out = format!(
            "replayed {} dead letter(s): {} stored, {} already there, {refused} refused again, {} not taken now (429/5xx or no answer; try later)\n",
            self.stored + self.already_there + refused + self.not_now,
            self.stored,
            self.already_there,
            self.not_now
        );
        for ((target, kind, reason), n) in &self.refused {
            out.push_str(&format!("{n:>8}  {target}  {kind}: {reason}\n"));
        }
        crate::print_all(out.as_bytes())?;
        if self.not_removed > 0 {
            eprintln!(
                "{} stored dead letter(s) could not be removed; a next replay finds them stored",
                self.not_removed
            );
        }
        if refused + self.not_now > 0 {
            anyhow::bail!("{} dead letter(s) were not stored and stay where they were", refused + self.not_now);
        }
        Ok(())
    }

    fn add(&mut self, letter: &DeadLetterEntry, sent: &Sent) {
        match sent {
            Sent::Stored => self.stored += 1,
            Sent::AlreadyThere => self.already_there += 1,
            Sent::Refused { kind, reason } => {
                let group = (letter.deadletter.index.clone(), kind.clone(), generic_reason(reason));
                *self.refused.entry(group).or_default() += 1;
            }
            Sent::NotNow => self.not_now += 1,
        }
    }
}

/// What the retry policy makes of one letter's answer at `attempt`; `None`: send it again.
fn decide(policy: &RetryPolicy, outcome: ItemOutcome, attempt: u32) -> Option<Sent> {
    match (policy.item(&outcome, attempt), outcome) {
        (ItemDecision::Retry | ItemDecision::WithoutId, _) => None,
        (ItemDecision::Done, ItemOutcome::Created) => Some(Sent::Stored),
        (ItemDecision::Done, _) => Some(Sent::AlreadyThere),
        (ItemDecision::DeadLetter, ItemOutcome::Rejected { kind, reason, .. }) => Some(Sent::Refused { kind, reason }),
        // Still 429/5xx after every try: it stays, for a later replay.
        (ItemDecision::DeadLetter, _) => Some(Sent::NotNow),
    }
}

/// The `_bulk` body that creates each letter's document in its target, under its id (none for
/// a target in `idless`, a time series stream, which makes its own).
fn bulk_body<'l>(letters: impl Iterator<Item = &'l DeadLetterEntry>, idless: &BTreeSet<String>) -> Bytes {
    let mut body = Vec::new();
    for l in letters {
        let id = if idless.contains(&l.deadletter.index) { "" } else { l.deadletter.id.as_str() };
        push_create_action(&mut body, &l.deadletter.index, id);
        body.extend_from_slice(l.deadletter.document.replace('\n', " ").as_bytes());
        body.push(b'\n');
    }
    Bytes::from(body)
}

fn target_and_id(letter: &DeadLetterEntry) -> (&str, &str) {
    (&letter.deadletter.index, &letter.deadletter.id)
}

struct Replayer {
    client: Client,
    rollover: bool,
    rolled_over: BTreeSet<String>,
    /// (target, id) of every file letter sent in this run: one put back and met again in the
    /// same run stays without being sent or counted twice.
    seen: BTreeSet<(String, String)>,
    /// Targets that refused a letter's id: time series streams, sent letters without one.
    idless: BTreeSet<String>,
    tally: Tally,
}

impl Replayer {
    /// Sends `letters` to their targets with their ids; what became of each, in order.
    async fn send(&mut self, letters: &[&DeadLetterEntry]) -> anyhow::Result<Vec<Sent>> {
        for l in letters {
            let target = &l.deadletter.index;
            if self.rollover && self.rolled_over.insert(target.clone()) {
                self.roll_over(target).await?;
            }
        }
        // `create` finds an id only in the stream's current write index: after a rollover (this
        // replay's, or anyone's) a document stored before would be stored again. So look first.
        let there = self.already_stored(letters).await?;
        let mut results: Vec<Option<Sent>> =
            letters.iter().map(|l| there.contains(&target_and_id(l)).then_some(Sent::AlreadyThere)).collect();
        self.deliver(letters, &mut results).await?;
        let sent: Vec<Sent> = results.into_iter().map(|r| r.unwrap_or(Sent::NotNow)).collect();
        for (l, s) in letters.iter().zip(&sent) {
            self.tally.add(l, s);
        }
        Ok(sent)
    }

    /// Sends the letters that have no result yet, again and again as [`RetryPolicy::REPLAY`]
    /// decides, until each has one or the policy gives up (those stay `None`).
    async fn deliver(&mut self, letters: &[&DeadLetterEntry], results: &mut [Option<Sent>]) -> anyhow::Result<()> {
        let policy = RetryPolicy::REPLAY;
        let mut backoff = policy.backoff();
        for attempt in 1.. {
            let pending: Vec<usize> = (0..letters.len()).filter(|&i| results[i].is_none()).collect();
            if pending.is_empty() {
                break;
            }
            let body = bulk_body(pending.iter().map(|&i| letters[i]), &self.idless);
            match self.client.bulk(body).await.and_then(|b| classify(&b, pending.len())) {
                Ok(outcomes) => {
                    for (i, outcome) in pending.into_iter().zip(outcomes) {
                        if outcome == ItemOutcome::IdRefused {
                            self.idless.insert(letters[i].deadletter.index.clone());
                        }
                        results[i] = decide(&policy, outcome, attempt);
                    }
                }
                Err(e) => match policy.request(&e) {
                    RequestDecision::Retry if policy.exhausted(attempt) => {
                        tracing::warn!(error = %e, attempt, "replaying dead letters failed; leaving them for later");
                    }
                    RequestDecision::Retry => {
                        tracing::warn!(error = %e, attempt, "replaying dead letters failed; trying again")
                    }
                    RequestDecision::Split | RequestDecision::Refuse => anyhow::bail!(
                        "Elasticsearch refused the replay: {e}{}",
                        if e.is_refusal() { hint(&e) } else { String::new() }
                    ),
                },
            }
            if policy.exhausted(attempt) {
                break;
            }
            if results.iter().any(Option::is_none) {
                tokio::time::sleep(backoff.next_delay()).await;
            }
        }
        Ok(())
    }

    /// Which of `letters` their target stream holds already (in any backing index).
    async fn already_stored<'l>(
        &self,
        letters: &[&'l DeadLetterEntry],
    ) -> anyhow::Result<BTreeSet<(&'l str, &'l str)>> {
        let mut by_target: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        // A letter without an id (a time series stream's) is found by none.
        for l in letters.iter().filter(|l| !l.deadletter.id.is_empty()) {
            by_target.entry(l.deadletter.index.as_str()).or_default().push(l.deadletter.id.as_str());
        }
        let mut there = BTreeSet::new();
        for (target, ids) in by_target {
            let found = self
                .client
                .existing_ids(target, &ids)
                .await
                .map_err(|e| answered(format!("looking for the dead letters' ids in {target}"), e))?;
            let stored = letters.iter().filter(|l| l.deadletter.index == target && found.contains(&l.deadletter.id));
            there.extend(stored.map(|l| target_and_id(l)));
        }
        Ok(there)
    }

    async fn roll_over(&self, stream: &str) -> anyhow::Result<()> {
        // A stream that does not exist yet is created by the first document, from the template.
        if self.client.rollover(stream).await.map_err(|e| answered(format!("rolling {stream} over"), e))? {
            eprintln!("rolled {stream} over");
        }
        Ok(())
    }

    /// Removes stored dead letters from the stream, visible to the next search once done.
    async fn remove(&mut self, stored: &[&Stored]) -> anyhow::Result<()> {
        if stored.is_empty() {
            return Ok(());
        }
        let documents: Vec<(&str, &str)> = stored.iter().map(|s| (s.index.as_str(), s.id.as_str())).collect();
        let outcomes = match self.client.delete_documents(&documents).await {
            Err(Error::Status { status, body, .. }) => {
                anyhow::bail!("removing replayed dead letters answered {status}: {body}")
            }
            outcomes => outcomes?,
        };
        let failed = outcomes
            .into_iter()
            .filter(|o| !matches!(o, ItemOutcome::Created | ItemOutcome::Rejected { status: 404, .. }))
            .count();
        self.tally.not_removed += failed as u64;
        Ok(())
    }

    /// The file taken aside at `taken`, a page at a time: its matching letters sent, what stays
    /// (not matching, not a letter, not stored, or seen already in this run) gathered in the
    /// staying file; then `taken` removed and what stays appended back to the live file.
    async fn replay_file(&mut self, select: &Selection, file: &DeadLetterFile, taken: &Path) -> anyhow::Result<()> {
        let cannot_read = || format!("cannot read {}", taken.display());
        let staying_path = file.staying_path();
        let cannot_write = || format!("cannot write {}", staying_path.display());
        let mut staying =
            std::fs::OpenOptions::new().create(true).append(true).open(&staying_path).with_context(cannot_write)?;
        let mut lines = std::io::BufReader::new(std::fs::File::open(taken).with_context(cannot_read)?).lines();
        loop {
            let mut stays = String::new();
            let mut batch: Vec<(String, DeadLetterEntry)> = Vec::new();
            let mut ended = true;
            for line in lines.by_ref() {
                let line = line.with_context(cannot_read)?;
                let letter = letter_of_line(&line);
                match letter {
                    Some(l)
                        if select.matches(&l)
                            && (l.deadletter.id.is_empty()
                                || self.seen.insert((l.deadletter.index.clone(), l.deadletter.id.clone()))) =>
                    {
                        batch.push((line, l));
                    }
                    _ if line.trim().is_empty() => {}
                    _ => stays.push_str(&format!("{line}\n")),
                }
                if batch.len() == PAGE {
                    ended = false;
                    break;
                }
            }
            let letters: Vec<&DeadLetterEntry> = batch.iter().map(|(_, l)| l).collect();
            let sent = self.send(&letters).await?;
            for ((line, _), s) in batch.iter().zip(sent) {
                if !s.is_stored() {
                    stays.push_str(&format!("{line}\n"));
                }
            }
            std::io::Write::write_all(&mut staying, stays.as_bytes()).with_context(cannot_write)?;
            if ended {
                break;
            }
        }
        staying.sync_data().with_context(cannot_write)?;
        std::fs::remove_file(taken).with_context(|| format!("cannot remove {}", taken.display()))?;
        put_back(file)
    }
}

/// Appends what a replay left in the staying file to the live file, and removes it.
fn put_back(file: &DeadLetterFile) -> anyhow::Result<()> {
    let staying = file.staying_path();
    let stays = match std::fs::read(&staying) {
        Ok(s) => s,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", staying.display())),
    };
    if !stays.is_empty() {
        file.append(&stays).with_context(|| format!("cannot write {}", file.path().display()))?;
    }
    std::fs::remove_file(&staying).with_context(|| format!("cannot remove {}", staying.display()))
}

async fn replay(select: &Selection, rollover: bool) -> anyhow::Result<()> {
    let client = select.elasticsearch.client()?;
    let mut replayer = Replayer {
        client: client.clone(),
        rollover,
        rolled_over: BTreeSet::new(),
        seen: BTreeSet::new(),
        idless: BTreeSet::new(),
        tally: Tally::default(),
    };
    let mut pages = pages(&client, select);
    loop {
        let page = pages.next().await?;
        if page.is_empty() {
            break;
        }
        let matching: Vec<&Stored> =
            page.iter().filter(|s| s.letter.as_ref().is_some_and(|l| select.matches(l))).collect();
        let letters: Vec<&DeadLetterEntry> = matching.iter().filter_map(|s| s.letter.as_ref()).collect();
        let sent = replayer.send(&letters).await?;
        let stored: Vec<&Stored> =
            matching.into_iter().zip(sent).filter(|(_, s)| s.is_stored()).map(|(s, _)| s).collect();
        replayer.remove(&stored).await?;
    }
    if let Some(file) = select.file() {
        let _one_at_a_time = file.lock_replays().with_context(|| format!("cannot replay {}", file.path().display()))?;
        let taken = file.taken_path();
        if taken.exists() {
            // A replay stopped half-way through the file it took: do that one again, from the
            // start (what it stored is found already there), and drop what it had gathered.
            let _ = std::fs::remove_file(file.staying_path());
            replayer.replay_file(select, &file, &taken).await?;
        } else {
            // Or it stopped between removing that file and putting back what stays.
            put_back(&file)?;
        }
        if file.take().with_context(|| format!("cannot take {} aside", file.path().display()))? {
            replayer.replay_file(select, &file, &taken).await?;
        }
    }
    replayer.tally.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reasons_are_grouped_without_what_differs_per_document() {
        let a = "[1:40] failed to parse field [message] of type [long] in document with id 'abc'. Preview of field's value: 'refused 0'";
        let b = "[1:52] failed to parse field [message] of type [long] in document with id 'xyz'. Preview of field's value: 'other'";
        assert_eq!(generic_reason(a), generic_reason(b));
        assert_eq!(
            generic_reason(a),
            "failed to parse field [message] of type [long] in document with id '…'. Preview of field's value: '…'"
        );
        assert_eq!(generic_reason("can't parse"), "can't parse", "an apostrophe is no quote");
        assert_eq!(generic_reason("bad 'x y"), "bad 'x y", "an unclosed quote is kept");
        assert_eq!(generic_reason("[abc] x"), "[abc] x");
    }
}
