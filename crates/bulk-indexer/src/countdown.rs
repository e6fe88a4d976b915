//! A [`Countdown`] calls back once every part of a piece of work is done: a chunk once each of
//! its items is, a frame once each of its chunks is. The parts finish on different tasks in any
//! order, so the last one to finish, whichever it is, runs the callback.

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

/// What a [`Countdown`] runs when its count reaches zero.
type Done = Box<dyn FnOnce() + Send>;

/// A count of parts still to finish and what to run when none is left.
///
/// It starts at one, the holder's own: parts are added with [`hold`](Countdown::hold) while
/// the work is still being handed out, and the holder's [`release`](Countdown::release) at the
/// end means a part that finishes early cannot call back before the last one is added.
pub struct Countdown {
    remaining: AtomicUsize,
    done: Mutex<Option<Done>>,
}

impl fmt::Debug for Countdown {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Countdown").field("remaining", &self.remaining.load(Ordering::Acquire)).finish_non_exhaustive()
    }
}

impl Countdown {
    /// A count of one (the holder's), calling `done` once it is released to zero.
    pub fn new(done: impl FnOnce() + Send + 'static) -> Countdown {
        Countdown { remaining: AtomicUsize::new(1), done: Mutex::new(Some(Box::new(done))) }
    }

    /// One more part to wait for.
    pub fn hold(&self) {
        self.remaining.fetch_add(1, Ordering::AcqRel);
    }

    /// One part done; the release that reaches zero runs the callback, exactly once. A
    /// poisoned lock is taken anyway: it only guards taking the callback out.
    pub fn release(&self) {
        if self.remaining.fetch_sub(1, Ordering::AcqRel) == 1 {
            let done = self.done.lock().unwrap_or_else(|e| e.into_inner()).take();
            if let Some(f) = done {
                f();
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    use super::*;

    fn counted() -> (Arc<AtomicU32>, Countdown) {
        let calls = Arc::new(AtomicU32::new(0));
        let seen = calls.clone();
        (calls, Countdown::new(move || _ = seen.fetch_add(1, Ordering::SeqCst)))
    }

    #[test]
    fn the_holders_release_alone_calls_back() {
        let (calls, countdown) = counted();
        countdown.release();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn calls_back_at_the_last_release_only_and_never_again() {
        let (calls, countdown) = counted();
        countdown.hold();
        countdown.hold();
        countdown.release();
        countdown.release();
        assert_eq!(calls.load(Ordering::SeqCst), 0, "one count is still held");
        countdown.release();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        countdown.hold();
        countdown.release();
        assert_eq!(calls.load(Ordering::SeqCst), 1, "the callback is gone once run");
    }

    #[test]
    fn releases_on_many_threads_call_back_once() {
        let (calls, countdown) = counted();
        let countdown = Arc::new(countdown);
        for _ in 0..64 {
            countdown.hold();
        }
        let threads: Vec<_> = (0..64)
            .map(|_| {
                let countdown = countdown.clone();
                std::thread::spawn(move || countdown.release())
            })
            .collect();
        countdown.release();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn a_poisoned_lock_still_calls_back() {
        let (calls, countdown) = counted();
        let countdown = Arc::new(countdown);
        let poisoner = countdown.clone();
        let _ = std::thread::spawn(move || {
            let _guard = poisoner.done.lock().unwrap();
            panic!("poison the lock");
        })
        .join();
        assert!(countdown.done.is_poisoned());
        countdown.release();
        assert_eq!(calls.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn debug_shows_the_count() {
        let (_calls, countdown) = counted();
        countdown.hold();
        assert_eq!(format!("{countdown:?}"), "Countdown { remaining: 2, .. }");
    }
}
