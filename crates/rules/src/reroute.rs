//! A document moved to another namespace, or given labels, in place: the transform wrote the
//! namespace and the labels once each, at places it told (its landmarks), so only those bytes
//! change, instead of the line being transformed again.

use std::ops::Range;

use drainpipe_transform::{write_labels, write_text, Landmarks};

use crate::{apply_edits, Scratch};

/// What a reroute writes: the namespace (`None`: unchanged), and the labels the document must
/// carry, every one (the drain's, with the rules' added over them; empty: unchanged).
#[derive(Debug)]
pub struct Reroute<'a> {
    pub namespace: Option<&'a str>,
    pub labels: &'a [(String, String)],
}

/// Rewrites the document in `doc[start..]`, whose fields are where `landmarks` say, as the
/// transform would have written it with `to`'s namespace and labels; the values judging found
/// (in `scratch`) move with the bytes before them. `false`, with nothing changed, when that
/// cannot be done in place (the landmarks are unknown, or a value to redact is inside what is
/// rewritten): the caller transforms the line again.
pub fn reroute(
    doc: &mut Vec<u8>,
    start: usize,
    landmarks: &Landmarks,
    to: &Reroute<'_>,
    scratch: &mut Scratch,
) -> bool {
    let Some(edits) = edits(doc.get(start..).unwrap_or_default(), landmarks, to) else { return false };
    let overlaps =
        |span: &Range<usize>| edits.iter().any(|(e, _)| span.start < e.end.max(e.start + 1) && e.start < span.end);
    if scratch.fields.iter().any(|(_, _, span)| overlaps(span)) {
        return false;
    }
    apply_edits(doc, start, &edits);
    for (_, _, span) in &mut scratch.fields {
        let moved: isize = edits
            .iter()
            .filter(|(e, _)| e.end <= span.start)
            .map(|(e, text)| text.len() as isize - e.len() as isize)
            .sum();
        *span = span.start.saturating_add_signed(moved)..span.end.saturating_add_signed(moved);
    }
    true
}

/// The edits of `body` (a document) that reroute it `to`, in order; `None` when the landmarks
/// do not place what changes.
fn edits(body: &[u8], landmarks: &Landmarks, to: &Reroute<'_>) -> Option<Vec<(Range<usize>, Vec<u8>)>> {
    if !landmarks.known() || body.last() != Some(&b'}') {
        return None;
    }
    let mut edits = Vec::with_capacity(2);
    if let Some(namespace) = to.namespace {
        // The value with its quotes: the transform's writer escapes whatever it is given.
        let place = landmarks.get(drainpipe_transform::Landmark::DataStreamNamespace)?.span();
        let mut quoted = Vec::with_capacity(namespace.len() + 2);
        write_text(&mut quoted, namespace);
        edits.push((place.start.checked_sub(1)?..place.end + 1, quoted));
    }
    if !to.labels.is_empty() {
        let mut object = Vec::new();
        write_labels(&mut object, to.labels);
        match landmarks.labels() {
            Some(place) => edits.push((place.span(), object)),
            None => {
                // A member of its own at the end (where in an object is no matter to JSON).
                let end = body.len() - 1;
                let empty = body.len() <= 2;
                let member = [if empty { &b"\"labels\":"[..] } else { &b",\"labels\":"[..] }, &object].concat();
                edits.push((end..end, member));
            }
        }
    }
    edits.sort_by_key(|(span, _)| span.start);
    Some(edits)
}
