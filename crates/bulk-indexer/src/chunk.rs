//! A [`Chunk`] is a run of bulk items already written as NDJSON (`create` action line, then the
//! source line), with each item's span kept so that a single item can be sent again alone.

use std::ops::Range;

/// Items bound for `_bulk`, serialised once.
#[derive(Debug, Default)]
pub struct Chunk {
    buf: Vec<u8>,
    items: Vec<Range<usize>>,
}

impl Chunk {
    pub fn new() -> Chunk {
        Chunk::default()
    }

    pub fn with_capacity(bytes: usize, items: usize) -> Chunk {
        Chunk { buf: Vec::with_capacity(bytes), items: Vec::with_capacity(items) }
    }

    /// Adds a `create` of document `id` in `index`; `write_source` appends the document's JSON
    /// (one line, no trailing newline). `index` and `id` must need no JSON escaping.
    pub fn push_with(&mut self, index: &str, id: &str, write_source: impl FnOnce(&mut Vec<u8>)) {
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
    }

    /// Adds an item copied from another chunk (an item being retried).
    pub(crate) fn push_raw(&mut self, item: &[u8]) {
        let start = self.buf.len();
        self.buf.extend_from_slice(item);
        self.items.push(start..self.buf.len());
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

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.buf
    }

    /// One item's two lines, with their newlines.
    pub(crate) fn item(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].clone()]
    }

    /// The source line of one item, without its newline.
    pub fn source(&self, i: usize) -> &[u8] {
        let item = self.item(i);
        let action_end = item.iter().position(|&b| b == b'\n').map_or(0, |p| p + 1);
        &item[action_end..item.len() - 1]
    }

    /// Appends all of `other`'s items.
    pub(crate) fn append(&mut self, other: &Chunk) {
        let base = self.buf.len();
        self.buf.extend_from_slice(&other.buf);
        self.items.extend(other.items.iter().map(|r| r.start + base..r.end + base));
    }

    pub(crate) fn clear(&mut self) {
        self.buf.clear();
        self.items.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_create_actions_and_keeps_spans() {
        let mut c = Chunk::new();
        c.push_with("logs-heroku-default", "id1", |b| b.extend_from_slice(b"{\"a\":1}"));
        c.push_with("logs-heroku-default", "id2", |b| b.extend_from_slice(b"{\"a\":2}"));
        assert_eq!(c.len(), 2);
        assert_eq!(c.item(1), b"{\"create\":{\"_index\":\"logs-heroku-default\",\"_id\":\"id2\"}}\n{\"a\":2}\n");
        assert_eq!(c.source(0), b"{\"a\":1}");
        let mut d = Chunk::new();
        d.push_raw(c.item(1));
        d.append(&c);
        assert_eq!(d.len(), 3);
        assert_eq!(d.item(2), c.item(1));
        assert_eq!(d.bytes().len(), c.byte_len() + c.item(1).len());
    }
}
