//! A [`Chunk`] is a run of bulk items already written as NDJSON (`create` action line, then the
//! source line), each with the original text it came from (for dead letters) and one callback
//! for when every item of the chunk is done.

use std::fmt;
use std::ops::Range;

use bytes::Bytes;

use crate::action::{create_action_len, write_create_action};

/// Called once every item of a chunk is stored, already there (409) or dead-lettered.
pub type OnDone = Box<dyn FnOnce() + Send>;

/// Items bound for `_bulk`, serialised once, each written in place (no source is copied).
#[derive(Default)]
pub struct Chunk {
    pub(crate) buf: Vec<u8>,
    pub(crate) items: Vec<Spans>,
    /// What each item was made from (a slice of the received body: shared, not copied).
    pub(crate) originals: Vec<Bytes>,
    on_done: Option<OnDone>,
    /// Bytes the last action line took: the room left for the next one before its source.
    action_room: usize,
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
            originals: Vec::with_capacity(items),
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
        original: Bytes,
        write_source: impl FnOnce(&mut Vec<u8>) -> I,
    ) {
        self.push_if(id, original, |buf| Some(write_source(buf)));
    }

    /// As [`Chunk::push_with`], but `write_source` may decide against the document (an
    /// operator's rule dropped it) by returning `None`: then nothing is added, and `false`
    /// returned.
    pub fn push_if<I: AsRef<str>>(
        &mut self,
        id: &str,
        original: Bytes,
        write_source: impl FnOnce(&mut Vec<u8>) -> Option<I>,
    ) -> bool {
        // The action line comes first but names the index the source decides. The source is
        // written straight into the buffer after room for the action line (as long as the
        // last one); a shorter action is padded with spaces inside its JSON object, and only
        // a longer one moves the source.
        let start = self.buf.len();
        let room = self.action_room.max(create_action_len("", id));
        self.buf.resize(start + room, b' ');
        let Some(index) = write_source(&mut self.buf) else {
            self.buf.truncate(start);
            return false;
        };
        let index = index.as_ref();
        debug_assert!(!index.contains(['"', '\\']) && !id.contains(['"', '\\']));
        let action = create_action_len(index, id);
        if action > room {
            let grow = action - room;
            let end = self.buf.len();
            self.buf.resize(end + grow, b' ');
            self.buf.copy_within(start + room..end, start + action);
        }
        let room = room.max(action);
        let (index_at, id_at) = write_create_action(&mut self.buf[start..start + room], index, id);
        self.action_room = action;
        let source_at = start + room;
        let source_span = source_at..self.buf.len();
        self.buf.push(b'\n');
        self.items.push(Spans {
            item: start..self.buf.len(),
            index: start + index_at..start + index_at + index.len(),
            id: start + id_at..start + id_at + id.len(),
            source: source_span,
        });
        self.originals.push(original);
        true
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

    /// One item's `_id`.
    pub fn id(&self, i: usize) -> &str {
        std::str::from_utf8(&self.buf[self.items[i].id.clone()]).unwrap_or_default()
    }

    /// One item's `_index`.
    pub fn index_of(&self, i: usize) -> &str {
        std::str::from_utf8(&self.buf[self.items[i].index.clone()]).unwrap_or_default()
    }

    /// One item's source (the document's JSON).
    pub fn source(&self, i: usize) -> &[u8] {
        &self.buf[self.items[i].source.clone()]
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
        c.push_with("id1", Bytes::from_static(b"line one"), |b| {
            b.extend_from_slice(b"{\"a\":1}");
            "logs-shop-default"
        });
        c.push_with("id2", Bytes::from_static(b"line two"), |b| {
            b.extend_from_slice(b"{\"a\":2}");
            "logs-shop-default"
        });
        assert_eq!(c.len(), 2);
        assert_eq!(
            &c.buf[c.items[1].item.clone()],
            b"{\"create\":{\"_index\":\"logs-shop-default\",\"_id\":\"id2\"}}\n{\"a\":2}\n"
        );
        let s = &c.items[1];
        assert_eq!(&c.buf[s.source.clone()], b"{\"a\":2}");
        assert_eq!(&c.buf[s.index.clone()], b"logs-shop-default");
        assert_eq!(c.id(1), "id2");
        assert_eq!(c.originals[1], &b"line two"[..]);
        // Moved into another buffer, the spans follow.
        let moved = s.moved_to(5);
        let mut other = vec![b' '; 5];
        other.extend_from_slice(&c.buf[c.items[1].item.clone()]);
        assert_eq!(&other[moved.id], b"id2");
    }

    #[test]
    fn a_shorter_action_line_is_padded_inside_its_object_and_a_longer_one_moves_the_source() {
        let mut c = Chunk::new();
        for (id, index) in [("a", "logs-shop.router-x"), ("b", "logs-shop.app-x"), ("c", "logs-shop.platform-x")] {
            c.push_with(id, Bytes::new(), |b| {
                b.extend_from_slice(format!("{{\"id\":\"{id}\"}}").as_bytes());
                index
            });
        }
        let text = std::str::from_utf8(&c.buf).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[2], "{\"create\":{\"_index\":\"logs-shop.app-x\",\"_id\":\"b\"   }}");
        for (i, (id, index)) in [("a", "logs-shop.router-x"), ("b", "logs-shop.app-x"), ("c", "logs-shop.platform-x")]
            .into_iter()
            .enumerate()
        {
            let action: serde_json::Value = serde_json::from_str(lines[2 * i]).unwrap();
            assert_eq!(
                (action["create"]["_id"].as_str(), action["create"]["_index"].as_str()),
                (Some(id), Some(index))
            );
            assert_eq!(lines[2 * i + 1], format!("{{\"id\":\"{id}\"}}"));
            assert_eq!(c.id(i), id);
            assert_eq!(&c.buf[c.items[i].index.clone()], index.as_bytes());
            assert_eq!(&c.buf[c.items[i].source.clone()], lines[2 * i + 1].as_bytes());
        }
    }
}
