//! drainpipe-ingest receives Heroku log drains and answers the sender.
//!
//! [`http::run`] serves Logplex HTTPS drain requests (`POST /logs`): it checks credentials and
//! drain tokens ([`auth`]), splits each body into messages strictly by their octet counts
//! ([`framing::split`]), reads the Logplex headers and the drain URL's query, and hands one
//! [`Frame`] to a [`FrameSink`]. It answers 2xx with an empty body as soon as the sink has taken
//! the frame, and never waits for anything further down the pipeline.
//!
//! The same server takes OTLP log exports (`POST /v1/logs`, Heroku Fir's telemetry drains) as
//! protobuf or JSON, with a bearer token or basic auth: each log record is one message of the
//! frame, encoded with its resource and scope by drainpipe-otlp. Metrics and traces exports are
//! answered with a partial success that refuses them, and counted.
//!
//! [`syslog::run`] serves syslog drains over TCP or TLS ([`tls`]), framing each message by
//! octet count or newline ([`stream_framing`]), and stops reading while the sink is full.
//!
//! It does not know that Elasticsearch exists, and it does not parse syslog headers beyond the
//! syslog listener's HOSTNAME, which with drain tokens listed must be one of them (the drain
//! token of Heroku's syslog drains: others are dropped and counted).
//! Invariant: a request that is framed at all is handed on whole; a message that is not syslog
//! is passed on raw for the transform to tag, never dropped here (on the syslog listener with
//! drain tokens listed, it names no token and is dropped as such).

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

pub mod auth;
pub mod frame;
pub mod framing;
pub mod grpc;
pub mod http;
mod listener;
mod log_throttle;
pub mod metrics;
mod otlp;
mod query;
pub mod stream_framing;
pub mod syslog;
pub mod tls;

pub use auth::{Access, BearerTokens, Credential, DrainTokens, LiveAccess, Secret, REDACTED};
pub use frame::{Frame, FrameSink, MemoryBudget, Position, Protocol, Rejected, Reservation};
pub use http::{ExtraRoutes, HttpConfig};
pub use log_throttle::LogThrottle;
pub use syslog::SyslogConfig;
pub use tls::{ReloadableCert, TlsError};
