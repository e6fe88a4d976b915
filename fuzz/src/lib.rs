//! Shared by the fuzz targets: structured inputs ([`input`], [`otlp`]) and the oracle every
//! transform target applies to its output ([`oracle`]): one JSON object on one line whose fields
//! have the types of the `logs-heroku` index template.

pub mod input;
pub mod oracle;
pub mod otlp;

use std::cell::RefCell;
use std::sync::Once;

pub use oracle::{assert_document, assert_signal_document, Stream};

thread_local! {
    static CURRENT: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on `raw`; should it panic, the panic report starts with `raw`, escaped, so a crash
/// found through a structured input shows the message the transform saw.
pub fn with_input<T>(raw: &[u8], f: impl FnOnce() -> T) -> T {
    static HOOK: Once = Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            CURRENT.with(|c| eprintln!("input: b\"{}\"", c.borrow().escape_ascii()));
            previous(info);
        }));
    });
    CURRENT.with(|c| {
        let mut c = c.borrow_mut();
        c.clear();
        c.extend_from_slice(raw);
    });
    f()
}

/// Transforms `raw` with `ctx` (and, when `cut_from` is given, as a message the receiver cut from
/// that length) and checks the document.
pub fn transform_and_check(raw: &[u8], ctx: &input::OwnedCtx, cut_from: Option<usize>) {
    with_input(raw, || {
        let mut out = Vec::new();
        let mut t = drainpipe_transform::Transformer::new();
        let c = ctx.context();
        match cut_from {
            Some(full) => t.transform_cut(raw, full.max(raw.len()), &c, &mut out),
            None => t.transform(raw, &c, &mut out),
        };
        assert_document(&out);
    });
}

/// A line of one dataset (`body` writes it) behind a fixed header naming `app` and `procid`,
/// ended by `end`, transformed with `ctx` and checked: what every per-dataset target does.
pub fn check_line(app: &str, procid: &str, body: impl FnOnce(&mut Vec<u8>), end: input::End, ctx: &input::Ctx) {
    let mut raw = Vec::new();
    input::fixed_header(app, procid, &mut raw);
    body(&mut raw);
    end.push(&mut raw);
    transform_and_check(&raw, &ctx.owned(), None);
}
