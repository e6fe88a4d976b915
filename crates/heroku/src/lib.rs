//! drainpipe-heroku: drains managed as code. A drains file ([`Desired`]: drainpipe's endpoint,
//! its credentials, the apps with their labels) against what Heroku's Platform API reports
//! ([`PlatformApi`]): [`plan`] says what to add, change and remove, like `terraform plan`;
//! [`apply`] does it. Cedar apps get log drains, Fir apps telemetry drains (Heroku says which
//! an app is). Only drains pointing at drainpipe are changed, unless asked.
//!
//! It knows the Platform API and drains files, nothing of logs.

#![cfg_attr(
    not(test),
    deny(clippy::indexing_slicing, clippy::string_slice, clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

mod api;
mod apply;
mod desired;
mod netrc;
mod plan;

pub use api::{api_key, ApiError, App, Exporter, LogDrain, PlatformApi, TelemetryDrain, DEFAULT_URL};
pub use apply::{apply, Applied, RemovalsNotAllowed};
pub use desired::{redacted, Desired, DesiredApp, FileProblems};
pub use plan::{drain_token_map, plan, Op, Plan, Step};
