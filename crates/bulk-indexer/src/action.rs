//! The `create` action line that comes before every document of a `_bulk` request, built here
//! only: by the chunks, the dead-letter writer and a dead-letter replay.

use std::borrow::Cow;

const START: &[u8] = b"{\"create\":{\"_index\":\"";
const ID: &[u8] = b"\",\"_id\":\"";
const END: &[u8] = b"\"}}\n";

/// Bytes of the action line for `index` and `id` (JSON-escaped already), newline included.
pub(crate) fn create_action_len(index: &str, id: &str) -> usize {
    START.len() + index.len() + ID.len() + id.len() + END.len()
}

/// Writes the action line for `index` and `id` (JSON-escaped already) into all of `line`,
/// which must be at least [`create_action_len`] long: a longer line is padded with spaces
/// inside the object (`"id"   }}`), so a chunk can write the line into room it kept before
/// the source. Returns where the index and the id start in `line`.
pub(crate) fn write_create_action(line: &mut [u8], index: &str, id: &str) -> (usize, usize) {
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        line[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
        at
    };
    let index_at = put(START);
    let id_at = put(index.as_bytes()) + ID.len();
    put(ID);
    let end = put(id.as_bytes());
    let braces = line.len() - (END.len() - 1);
    line[end] = b'"';
    line[end + 1..braces].fill(b' ');
    line[braces..].copy_from_slice(&END[1..]);
    (index_at, id_at)
}

/// Appends `{"create":{"_index":"<index>","_id":"<id>"}}` and a newline to `out`, escaping
/// what needs it (a dead letter read back from a file may hold anything). An empty `id` leaves
/// `_id` out: a document a time series index made the id of has none of drainpipe's.
pub fn push_create_action(out: &mut Vec<u8>, index: &str, id: &str) {
    let (index, escaped) = (json_escaped(index), json_escaped(id));
    let start = out.len();
    out.resize(start + create_action_len(&index, &escaped), 0);
    let (_, id_at) = write_create_action(&mut out[start..], &index, &escaped);
    if id.is_empty() {
        blank_id(&mut out[start..], &(id_at..id_at));
    }
}

/// Takes `_id` out of the action line at the start of `line`, whose id is at `id` (in
/// `line`): `,"_id":"<id>"` becomes spaces, so the line keeps its length and every span after
/// it stays where it was.
pub(crate) fn blank_id(line: &mut [u8], id: &std::ops::Range<usize>) {
    // ID's first byte is the quote that closes the index name, which stays.
    let from = id.start - (ID.len() - 1);
    line[from..id.end + 1].fill(b' ');
}

/// `text` as it goes between the quotes of a JSON string.
fn json_escaped(text: &str) -> Cow<'_, str> {
    if !text.contains(|c: char| c == '"' || c == '\\' || c.is_control()) {
        return Cow::Borrowed(text);
    }
    let quoted = serde_json::Value::from(text).to_string();
    Cow::Owned(quoted[1..quoted.len() - 1].to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_action_line_is_json_however_its_names_are_written() {
        let mut out = Vec::new();
        push_create_action(&mut out, "logs-x", "a1");
        push_create_action(&mut out, "we\"ird\\", "line\nbreak");
        let text = std::str::from_utf8(&out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], r#"{"create":{"_index":"logs-x","_id":"a1"}}"#);
        let v: serde_json::Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["create"]["_index"], "we\"ird\\");
        assert_eq!(v["create"]["_id"], "line\nbreak");
        assert_eq!(lines.len(), 2);

        let mut padded = vec![0; create_action_len("i", "d") + 3];
        assert_eq!(write_create_action(&mut padded, "i", "d"), (21, 31));
        assert_eq!(padded, b"{\"create\":{\"_index\":\"i\",\"_id\":\"d\"   }}\n");
        blank_id(&mut padded, &(31..32));
        assert_eq!(padded, b"{\"create\":{\"_index\":\"i\"             }}\n");

        let mut idless = Vec::new();
        push_create_action(&mut idless, "metrics-x", "");
        let v: serde_json::Value = serde_json::from_slice(&idless).unwrap();
        assert_eq!(v, serde_json::json!({"create": {"_index": "metrics-x"}}));
    }
}
