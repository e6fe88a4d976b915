//! The retry policy: what drainpipe does when Elasticsearch does not take something, and how
//! long it waits before the next try. One type decides it for bulk requests, their items, dead
//! letters, template installs and dead-letter replays (Vector keeps this in its `ElasticsearchRetryLogic`, apart
//! from the service that sends); the senders only follow what it says.

use std::time::Duration;

use backon::{BackoffBuilder, ExponentialBuilder};

use crate::response::ItemOutcome;
use crate::Error;

/// When to try again, how often, and how long to wait in between.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The first wait; each next one doubles (with jitter) up to `max_backoff`.
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// Tries at one thing Elasticsearch keeps answering 429/5xx before giving up on it (it is
    /// then dead-lettered); `None`: as long as it takes.
    pub max_attempts: Option<u32>,
    /// Whether a request refused for its credentials or their privileges (401/403) is sent
    /// again, waiting for them to be fixed (a daemon), or given up (a command, whose user
    /// should hear at once).
    pub retry_refusals: bool,
    /// Whether items a cluster or index block refuses are held and sent again until it is
    /// lifted, however long (delivery, with the spool to hold what arrives meanwhile), or
    /// count as tries like a 429 (dead letters, which have their file; a replay, which ends).
    pub hold_blocked: bool,
}

/// What to do with a request that failed as a whole.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestDecision {
    /// Send it again after a backoff: it can succeed later (no answer, 429, 5xx, 401/403
    /// while credentials are fixed).
    Retry,
    /// Too large (413): send each half on its own.
    Split,
    /// It will never be taken: dead-letter its documents.
    Refuse,
}

/// What to do with one item of an answered bulk request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemDecision {
    /// Stored now, or already stored (409).
    Done,
    /// Send it again, alone, after a backoff.
    Retry,
    /// Send it again at once without its `_id`, and every later document for its index too
    /// (a time series index, [`ItemOutcome::IdRefused`]).
    WithoutId,
    /// Give it up to the dead letters.
    DeadLetter,
}

impl RetryPolicy {
    /// Bulk requests and their items: 100 ms to 30 s; an item answered 429/5xx ten times is
    /// dead-lettered, a failed request is tried for as long as it takes.
    pub const DELIVERY: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(100),
        max_backoff: Duration::from_secs(30),
        max_attempts: Some(10),
        retry_refusals: true,
        hold_blocked: true,
    };

    /// Writing dead letters: three tries, then the file.
    pub const DEAD_LETTERS: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(500),
        max_backoff: Duration::from_secs(2),
        max_attempts: Some(3),
        retry_refusals: true,
        hold_blocked: false,
    };

    /// Installing the index templates before the first document: as long as it takes.
    pub const SETUP: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(250),
        max_backoff: Duration::from_secs(30),
        max_attempts: None,
        retry_refusals: true,
        hold_blocked: true,
    };

    /// `drainpipe deadletter replay`: five tries, 200 ms to 5 s apart; what is still not taken
    /// stays for a later replay, and a refusal ends the command.
    pub const REPLAY: RetryPolicy = RetryPolicy {
        min_backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(5),
        max_attempts: Some(5),
        retry_refusals: false,
        hold_blocked: false,
    };

    /// The waits between tries, from the first.
    pub fn backoff(&self) -> Backoff {
        Backoff::new(self.min_backoff, self.max_backoff)
    }

    /// Whether `attempts` tries (the one just made included) are all this policy allows.
    pub fn exhausted(&self, attempts: u32) -> bool {
        self.max_attempts.is_some_and(|max| attempts >= max)
    }

    /// A request that failed as a whole.
    pub fn request(&self, error: &Error) -> RequestDecision {
        match error {
            Error::Status { status, .. } if status.as_u16() == 413 => RequestDecision::Split,
            e if e.is_refusal() && !self.retry_refusals => RequestDecision::Refuse,
            e if e.is_retryable() => RequestDecision::Retry,
            _ => RequestDecision::Refuse,
        }
    }

    /// One item of an answer, after `attempts` tries at it (this one included).
    pub fn item(&self, outcome: &ItemOutcome, attempts: u32) -> ItemDecision {
        match outcome {
            ItemOutcome::Created | ItemOutcome::Duplicate => ItemDecision::Done,
            ItemOutcome::IdRefused => ItemDecision::WithoutId,
            ItemOutcome::Blocked { .. } if self.hold_blocked => ItemDecision::Retry,
            ItemOutcome::Retry { .. } | ItemOutcome::Blocked { .. } if self.exhausted(attempts) => {
                ItemDecision::DeadLetter
            }
            ItemOutcome::Retry { .. } | ItemOutcome::Blocked { .. } => ItemDecision::Retry,
            ItemOutcome::Rejected { .. } => ItemDecision::DeadLetter,
        }
    }
}

/// Capped exponential waits with jitter, so that many senders retrying at once spread out.
#[derive(Debug)]
pub struct Backoff {
    delays: backon::ExponentialBackoff,
    max: Duration,
}

impl Backoff {
    pub fn new(min: Duration, max: Duration) -> Backoff {
        let delays =
            ExponentialBuilder::default().with_min_delay(min).with_max_delay(max).with_jitter().without_max_times();
        Backoff { delays: delays.build(), max }
    }

    /// How long to wait before the next try.
    pub fn next_delay(&mut self) -> Duration {
        self.delays.next().unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use elasticsearch::http::StatusCode;

    fn status(code: u16) -> Error {
        Error::Status { request: "_bulk", status: StatusCode::from_u16(code).unwrap(), body: String::new() }
    }

    #[test]
    fn requests() {
        let p = RetryPolicy::DELIVERY;
        assert_eq!(p.request(&status(413)), RequestDecision::Split);
        for code in [429, 500, 503, 401, 403, 408] {
            assert_eq!(p.request(&status(code)), RequestDecision::Retry, "{code}");
        }
        for code in [400, 404] {
            assert_eq!(p.request(&status(code)), RequestDecision::Refuse, "{code}");
        }
        let replay = RetryPolicy::REPLAY;
        assert_eq!(replay.request(&status(403)), RequestDecision::Refuse, "a command says so at once");
        assert_eq!(replay.request(&status(503)), RequestDecision::Retry);
    }

    #[test]
    fn items_are_retried_until_the_attempts_run_out() {
        let p = RetryPolicy::DELIVERY;
        let busy = ItemOutcome::Retry { status: 429 };
        assert_eq!(p.item(&ItemOutcome::Duplicate, 1), ItemDecision::Done);
        assert_eq!(p.item(&busy, 9), ItemDecision::Retry);
        assert_eq!(p.item(&busy, 10), ItemDecision::DeadLetter);
        let mapping = ItemOutcome::Rejected { status: 400, kind: "x".into(), reason: "y".into() };
        assert_eq!(p.item(&mapping, 1), ItemDecision::DeadLetter);
        assert!(!RetryPolicy::SETUP.exhausted(u32::MAX));
    }

    #[test]
    fn blocked_items_are_held_by_delivery_and_counted_as_tries_elsewhere() {
        let blocked = ItemOutcome::Blocked { status: 403, reason: "index write (api)".into() };
        assert_eq!(RetryPolicy::DELIVERY.item(&blocked, 1_000), ItemDecision::Retry);
        assert_eq!(RetryPolicy::DEAD_LETTERS.item(&blocked, 2), ItemDecision::Retry);
        assert_eq!(RetryPolicy::DEAD_LETTERS.item(&blocked, 3), ItemDecision::DeadLetter);
        assert_eq!(RetryPolicy::REPLAY.item(&blocked, 5), ItemDecision::DeadLetter);
        // A whole request refused by a block is no credentials problem: even a replay retries.
        let body = r#"{"error":{"type":"cluster_block_exception","reason":"blocked by: [FORBIDDEN/6/cluster read-only (api)];"}}"#;
        let whole = Error::Status { request: "_bulk", status: StatusCode::FORBIDDEN, body: body.into() };
        assert!(!whole.is_refusal());
        assert_eq!(RetryPolicy::REPLAY.request(&whole), RequestDecision::Retry);
    }

    #[test]
    fn waits_grow_and_stay_capped() {
        let mut b = Backoff::new(Duration::from_millis(10), Duration::from_millis(80));
        let waits: Vec<Duration> = (0..20).map(|_| b.next_delay()).collect();
        assert!(waits.iter().all(|w| *w <= Duration::from_millis(160)), "{waits:?}");
        assert!(waits[10..].iter().all(|w| *w >= Duration::from_millis(80)), "{waits:?}");
    }
}
