//! A [`Chunk`] is a run of bulk items already written as NDJSON (`create` action line, then the
//! source line), each with the original text it came from (for dead letters) and one callback
//! for when every item of the chunk is done.

use std::fmt;
use std::ops::Range;

/// Called once every item of a chunk is stored, already there (409) or dead-lettered.
pub type OnDone = Box<dyn FnOnce() + Send>;

/// Items bound for `_bulk`, serialised once.
#[derive(Default)]
pub struct Chunk {
    buf: Vec<u8>,
    items: Vec<Range<usize>>,
    originals: Vec<u8>,
    original_spans: Vec<Range<usize>>,
    on_done: Option<OnDone>,
}

impl fmt::Debug for Chunk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Chunk")
            .field("items", &self.items.len())
            .field("bytes", &self.buf.len())
            .finish_non_exhaustive()
    }
}

impl Chunk {
    pub fn new() -> Chunk {
        Chunk::default()
    }

    pub fn with_capacity(bytes: usize, items: usize) -> Chunk {
        Chunk {
            buf: Vec::with_capacity(bytes),
            items: Vec::with_capacity(items),
            original_spans: Vec::with_capacity(items),
            ..Chunk::default()
        }
    }

    /// Adds a `create` of document `id` in `index`; `write_source` appends the document's JSON
    /// (one line, no trailing newline). `original` is what the document was made from, kept
    /// for a dead letter. `index` and `id` must need no JSON escaping.
    pub fn push_with(&mut self, index: &str, id: &str, original: &[u8], write_source: impl FnOnce(&mut Vec<u8>)) {
        debug_assert!(!index.contains(['"', '\\']) && !id.contains(['"', '\\']));
        let start = self.buf.len();
        self.buf.extend_from_slice(b"{\"create\":{\"_index\":\"");
        self.buf.extend_from_slice(index.as_bytes());
        self.buf.extend_from_slice(b"\",\"_id\":\"");
        self.buf.extend_from_slice(id.as_bytes());
        self.buf.extend_from_slice(b"\"}}\n");
        write_source(&mut self.buf);
        self.buf.push(b'\n');
        self.items.push(start..self.buf.len());
        let o = self.originals.len();
        self.originals.extend_from_slice(original);
        self.original_spans.push(o..self.originals.len());
    }

    /// Sets what to call once every item is done (at once, for an empty chunk).
    pub fn on_done(&mut self, f: impl FnOnce() + Send + 'static) {
        self.on_done = Some(Box::new(f));
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// NDJSON bytes of all items.
    pub fn byte_len(&self) -> usize {
        self.buf.len()
    }

    /// One item's two lines, with their newlines.
    pub fn item(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].clone()]
    }

    pub fn original(&self, i: usize) -> &[u8] {
        &self.originals[self.original_spans[i].clone()]
    }

    /// Takes the callback out: whoever completes the chunk's items calls it, once.
    pub fn take_on_done(&mut self) -> Option<OnDone> {
        self.on_done.take()
    }
}

/// The source line of an item (its two lines, as in [`Chunk::item`]), without the newline.
pub(crate) fn source_of(item: &[u8]) -> &[u8] {
    let action_end = item.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
    item[action_end..].strip_suffix(b"\n").unwrap_or(&item[action_end..])
}

/// `_index` and `_id` of an item's action line.
pub(crate) fn index_and_id(item: &[u8]) -> (String, String) {
    let action = item.split(|&b| b == b'\n').next().unwrap_or(b"");
    let field = |name: &str| {
        let key = format!("\"{name}\":\"");
        let text = String::from_utf8_lossy(action);
        text.split_once(&key).and_then(|(_, rest)| rest.split_once('"')).map(|(v, _)| v.to_owned()).unwrap_or_default()
    };
    (field("_index"), field("_id"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_actions_and_keeps_spans() {
        let mut c = Chunk::new();
        c.push_with("logs-heroku-default", "id1", b"line one", |b| b.extend_from_slice(b"{\"a\":1}"));
        c.push_with("logs-heroku-default", "id2", b"line two", |b| b.extend_from_slice(b"{\"a\":2}"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.item(1), b"{\"create\":{\"_index\":\"logs-heroku-default\",\"_id\":\"id2\"}}\n{\"a\":2}\n");
        assert_eq!(source_of(c.item(0)), b"{\"a\":1}");
        assert_eq!(c.original(1), b"line two");
        assert_eq!(index_and_id(c.item(1)), ("logs-heroku-default".to_owned(), "id2".to_owned()));
    }
}
