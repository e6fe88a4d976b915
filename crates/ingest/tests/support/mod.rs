//! What the receiver tests share: a sink that takes every frame and keeps none.

use drainpipe_ingest::{Frame, FrameSink, Rejected};

/// Takes every frame and drops it.
#[derive(Clone)]
pub struct Drop;

impl FrameSink for Drop {
    async fn accept(&self, _frame: Frame) -> Result<(), Rejected> {
        Ok(())
    }

    async fn accept_or_wait(&self, _frame: Frame) -> Result<(), Rejected> {
        Ok(())
    }
}
