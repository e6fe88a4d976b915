//! The pieces the end-to-end tools share: Logplex traffic with numbered lines, the sender that
//! retries as Logplex does, drainpipe as a child process, the null Elasticsearch, and what
//! they measure. `drainpipe-load` (src/main.rs) measures one drainpipe; `drainpipe-scale`
//! (src/scale.rs) runs several behind HAProxy on a two-node cluster and breaks parts of both.

pub mod elasticsearch;
pub mod measure;
pub mod process;
pub mod reference;
pub mod send;
pub mod sink;
pub mod traffic;
