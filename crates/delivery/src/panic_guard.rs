//! Panic isolation for the transform: a bug that one message finds costs that message, not
//! delivery. [`guarded`] runs a closure and turns a panic into a [`Caught`] (message and
//! place); [`install_hook`] keeps such panics off stderr (delivery logs them, throttled)
//! while every other panic is still reported as before.
//!
//! Panics are bugs: this is a guard for the bugs nobody has found yet, not error handling.
//! The transform's crates deny the lints that lead to them (`indexing_slicing`, `unwrap_used`…)
//! and are fuzzed; a caught panic is counted (`drainpipe_transform_panics_total`) so it is seen.

use std::cell::{Cell, RefCell};
use std::panic::{self, AssertUnwindSafe};

thread_local! {
    /// Set while a guarded closure runs on this thread: its panics are reported by the caller.
    static GUARDED: Cell<bool> = const { Cell::new(false) };
    /// Where the last guarded panic on this thread happened, as the hook saw it.
    static PLACE: RefCell<Option<String>> = const { RefCell::new(None) };
    /// The message and place of the last panic on this thread outside the guard, for whoever
    /// reports the task it ends (read while unwinding, on the same thread).
    pub static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic caught by [`guarded`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caught {
    /// The panic's message.
    pub message: String,
    /// `file:line:column`, when the hook was installed.
    pub place: Option<String>,
}

impl std::fmt::Display for Caught {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.place {
            Some(place) => write!(f, "{} (at {place})", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Installs a panic hook that records guarded panics quietly and hands every other panic to
/// the hook that was there before (the default prints it). Call once, before any thread starts.
pub fn install_hook() {
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        if GUARDED.with(Cell::get) {
            let place = info.location().map(|l| format!("{}:{}:{}", l.file(), l.line(), l.column()));
            PLACE.with(|p| *p.borrow_mut() = place);
        } else {
            // For the supervisor: the task this panic ends is reported with it.
            let place = info.location().map_or_else(String::new, |l| format!(" (at {}:{})", l.file(), l.line()));
            let message = payload_message(info.payload());
            LAST_PANIC.with(|p| *p.borrow_mut() = Some(format!("{message}{place}")));
            previous(info);
        }
    }));
}

/// Runs `f`; a panic inside it comes back as `Err`. Whatever `f` captured by `&mut` may be
/// half-updated after a panic: callers reset it (delivery truncates the document buffer).
pub fn guarded<R>(f: impl FnOnce() -> R) -> Result<R, Caught> {
    let was = GUARDED.with(|g| g.replace(true));
    let result = panic::catch_unwind(AssertUnwindSafe(f));
    GUARDED.with(|g| g.set(was));
    result.map_err(|payload| Caught {
        message: payload_message(payload.as_ref()),
        place: PLACE.with(|p| p.borrow_mut().take()),
    })
}

fn payload_message(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "a panic without a message".to_owned())
}

/// Debug builds only (what the tests run): a message containing `DRAINPIPE_FAULT_PANIC_ON`'s
/// text panics the transform, inside the guard, or with `DRAINPIPE_FAULT_PANIC_UNGUARDED=1`
/// outside it (killing the flow, the `pipeline` task, for the supervision tests). Release builds have no
/// such code.
#[cfg(debug_assertions)]
#[allow(clippy::panic)] // The fault is a panic on purpose, and only in debug builds.
pub fn injected_fault(raw: &[u8], inside_guard: bool) {
    use std::sync::LazyLock;
    static FAULT: LazyLock<Option<(Vec<u8>, bool)>> = LazyLock::new(|| {
        let needle = std::env::var("DRAINPIPE_FAULT_PANIC_ON").ok().filter(|n| !n.is_empty())?;
        Some((needle.into_bytes(), std::env::var("DRAINPIPE_FAULT_PANIC_UNGUARDED").is_ok_and(|v| v == "1")))
    });
    let fault = TEST_FAULT.with(|f| f.borrow().clone()).or_else(|| FAULT.clone());
    if let Some((needle, unguarded)) = fault {
        if unguarded != inside_guard && raw.windows(needle.len()).any(|w| w == needle.as_slice()) {
            panic!("injected fault: the message contains {:?}", String::from_utf8_lossy(&needle));
        }
    }
}

#[cfg(debug_assertions)]
thread_local! {
    /// The unit tests' fault, per thread (the environment is the whole process's).
    pub static TEST_FAULT: RefCell<Option<(Vec<u8>, bool)>> = const { RefCell::new(None) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_panic_comes_back_with_its_message_and_place_and_the_guard_is_left() {
        install_hook();
        assert_eq!(guarded(|| 7), Ok(7));
        let caught = guarded(|| -> u8 { panic!("byte index 3 is not a char boundary") }).unwrap_err();
        assert_eq!(caught.message, "byte index 3 is not a char boundary");
        assert!(caught.place.as_deref().is_some_and(|p| p.contains("panic_guard.rs")), "{caught:?}");
        let caught = guarded(|| {
            let v: Vec<u8> = Vec::new();
            std::hint::black_box(&v)[std::hint::black_box(3)]
        })
        .unwrap_err();
        assert!(caught.message.contains("index out of bounds"), "{caught:?}");
        assert!(!GUARDED.with(Cell::get), "the guard is off again");
    }
}
