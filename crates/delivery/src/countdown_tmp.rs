use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
pub struct Countdown {
    remaining: AtomicUsize,
    done: Mutex<Option<Box<dyn FnOnce() + Send>>>,
}
impl std::fmt::Debug for Countdown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Countdown")
    }
}
impl Countdown {
    pub fn new(done: impl FnOnce() + Send + 'static) -> Countdown {
        Countdown { remaining: AtomicUsize::new(1), done: Mutex::new(Some(Box::new(done))) }
    }
    pub fn hold(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }
    pub fn release(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            if let Some(f) = self.done.lock().unwrap_or_else(|e| e.into_inner()).take() {
                f();
            }
        }
    }
}
