//! drainpipe-ingest receives Heroku log drains and answers the sender.
//!
//! [`http::run`] serves Logplex HTTPS drain requests (`POST /logs`): it splits each body into
//! messages strictly by their octet counts ([`framing::split`]), reads the Logplex headers and
//! the drain URL's query, and hands one [`Frame`] to a [`FrameSink`]. It answers 2xx with an
//! empty body as soon as the sink has taken the frame, and never waits for anything further
//! down the pipeline. It does not know that Elasticsearch exists.
//!
//! Invariant: a request that is framed at all is handed on whole; a message that is not syslog
//! is passed on raw for the transform to tag, never dropped here.

pub mod frame;
pub mod framing;
pub mod http;
pub mod metrics;
mod query;

pub use frame::{Frame, FrameSink, Protocol, Rejected};
pub use http::{run, ExtraRoutes, HttpConfig};
