//! End-to-end tests: a real drainpipe process, real Logplex requests, a real Elasticsearch.
//! Run them with `scripts/test`, which starts Elasticsearch first.

// Test support code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod archive;
mod aws;
mod cli;
mod deadletters;
mod delivery;
mod drain_slice;
mod drains;
mod failover;
mod fields;
mod hardening;
mod operations;
mod otlp;
mod otlp_signals;
mod receivers;
mod robustness;
mod rules;
mod search;
mod secured;
mod support;
