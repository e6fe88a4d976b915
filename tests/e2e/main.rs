//! End-to-end tests: a real drainpipe process, real Logplex requests, a real Elasticsearch.
//! Run them with `scripts/test`, which starts Elasticsearch first.

mod drain_slice;
mod support;
