//! One module a command (`serve` is `crate::serve`).

pub mod check_config;
pub mod deadletter;
pub mod drains;
pub mod healthcheck;
pub mod replay;
pub mod rules;
pub mod search;
pub mod setup;
