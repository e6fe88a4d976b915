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
    items: Vec<Spans>,
    originals: Vec<u8>,
    original_spans: Vec<Range<usize>>,
    on_done: Option<OnDone>,
    /// Where a source is written before its action line is (reused).
    scratch: Vec<u8>,
}

/// Where one item's parts are in its two NDJSON lines, counted from the item's first byte:
/// its `_index` and `_id` are carried as data, never looked for again in the action line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Spans {
    /// Both lines, with their newlines.
    pub item: Range<usize>,
    pub index: Range<usize>,
    pub id: Range<usize>,
    /// The source line, without its newline.
    pub source: Range<usize>,
}

impl Spans {
    /// The same spans for the item copied to `start` of another buffer.
    pub(crate) fn moved_to(&self, start: usize) -> Spans {
        let shift = |r: &Range<usize>| r.start - self.item.start + start..r.end - self.item.start + start;
        Spans { item: shift(&self.item), index: shift(&self.index), id: shift(&self.id), source: shift(&self.source) }
    }
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

    /// Adds a `create` of document `id`: `write_source` appends the document's JSON (one line,
    /// no trailing newline) and returns the index it goes to, which may depend on what the
    /// document turned out to be. `original` is what the document was made from, kept for a
    /// dead letter. `index` and `id` must need no JSON escaping.
    pub fn push_with<I: AsRef<str>>(
        &mut self,
        id: &str,
        original: &[u8],
        write_source: impl FnOnce(&mut Vec<u8>) -> I,
    ) {
        // The action line comes first but names the index the source decides: the source is
        // written aside (into a buffer kept for the next item) and copied after it.
        let mut source = std::mem::take(&mut self.scratch);
        source.clear();
        let index = write_source(&mut source);
        let index = index.as_ref();
        debug_assert!(!index.contains(['"', '\\']) && !id.contains(['"', '\\']));
        let start = self.buf.len();
        self.buf.extend_from_slice(b"{\"create\":{\"_index\":\"");
        let index_at = self.buf.len();
        self.buf.extend_from_slice(index.as_bytes());
        self.buf.extend_from_slice(b"\",\"_id\":\"");
        let id_at = self.buf.len();
        self.buf.extend_from_slice(id.as_bytes());
        self.buf.extend_from_slice(b"\"}}\n");
        let source_at = self.buf.len();
        self.buf.extend_from_slice(&source);
        let source_span = source_at..self.buf.len();
        self.buf.push(b'\n');
        self.scratch = source;
        self.items.push(Spans {
            item: start..self.buf.len(),
            index: index_at..index_at + index.len(),
            id: id_at..id_at + id.len(),
            source: source_span,
        });
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
        &self.buf[self.items[i].item.clone()]
    }

    /// One item's `_id`.
    pub fn id(&self, i: usize) -> &str {
        std::str::from_utf8(&self.buf[self.items[i].id.clone()]).unwrap_or_default()
    }

    pub(crate) fn spans(&self, i: usize) -> &Spans {
        &self.items[i]
    }

    pub fn original(&self, i: usize) -> &[u8] {
        &self.originals[self.original_spans[i].clone()]
    }

    /// Takes the callback out: whoever completes the chunk's items calls it, once.
    pub fn take_on_done(&mut self) -> Option<OnDone> {
        self.on_done.take()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_actions_and_keeps_spans() {
        let mut c = Chunk::new();
        c.push_with("id1", b"line one", |b| {
            b.extend_from_slice(b"{\"a\":1}");
            "logs-heroku-default"
        });
        c.push_with("id2", b"line two", |b| {
            b.extend_from_slice(b"{\"a\":2}");
            "logs-heroku-default"
        });
        assert_eq!(c.len(), 2);
        assert_eq!(c.item(1), b"{\"create\":{\"_index\":\"logs-heroku-default\",\"_id\":\"id2\"}}\n{\"a\":2}\n");
        let s = c.spans(1);
        assert_eq!(&c.buf[s.source.clone()], b"{\"a\":2}");
        assert_eq!(&c.buf[s.index.clone()], b"logs-heroku-default");
        assert_eq!(c.id(1), "id2");
        assert_eq!(c.original(1), b"line two");
        // Moved into another buffer, the spans follow.
        let moved = s.moved_to(5);
        let mut other = vec![b' '; 5];
        other.extend_from_slice(c.item(1));
        assert_eq!(&other[moved.id], b"id2");
    }
}
