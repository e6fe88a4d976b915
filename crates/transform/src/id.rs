//! Deterministic document ids, so that a frame Logplex sends again (same frame id, or same body)
//! or a syslog line replayed produces the same `_id`, and `create` answers 409 instead of storing
//! a duplicate.

use xxhash_rust::xxh3::xxh3_128;

/// A 128-bit hash as 22 characters of unpadded base64url: short ids index faster.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DocumentId([u8; 22]);

impl DocumentId {
    pub fn as_str(&self) -> &str {
        // Only base64url characters are ever written.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    fn from_hash(h: u128) -> DocumentId {
        const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        let mut out = [0u8; 22];
        for (i, slot) in out.iter_mut().enumerate() {
            *slot = ALPHABET[((h >> (122 - 6 * i.min(20))) as usize) & 63];
        }
        // 128 bits = 21 six-bit groups + 2 bits; the last character carries those 2 bits.
        out[21] = ALPHABET[((h & 3) << 4) as usize];
        DocumentId(out)
    }

    /// The id of a line on a syslog stream: the drain token and the raw message.
    pub fn for_stream(drain_token: Option<&str>, raw: &[u8]) -> DocumentId {
        let mut buf = Vec::with_capacity(raw.len() + 64);
        buf.push(b's');
        buf.extend_from_slice(drain_token.unwrap_or("").as_bytes());
        buf.push(0);
        buf.extend_from_slice(raw);
        DocumentId::from_hash(xxh3_128(&buf))
    }
}

impl std::fmt::Debug for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Display for DocumentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Computed once per HTTPS frame; each message's id is then the seed and its position.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct FrameSeed(u128);

impl FrameSeed {
    /// From `Logplex-Frame-Id` (scoped by the drain token) when the frame has one, otherwise
    /// from the body, which is byte-for-byte the same when Logplex retries.
    pub fn new(frame_id: Option<&str>, drain_token: Option<&str>, body: &[u8]) -> FrameSeed {
        match frame_id {
            Some(id) if !id.is_empty() => {
                let key = format!("f{}\0{id}", drain_token.unwrap_or(""));
                FrameSeed(xxh3_128(key.as_bytes()))
            }
            _ => {
                let mut key = Vec::with_capacity(body.len() + 1);
                key.push(b'b');
                key.extend_from_slice(body);
                FrameSeed(xxh3_128(&key))
            }
        }
    }

    /// The id of the message at `position` (0-based) in the frame.
    pub fn id(&self, position: u32) -> DocumentId {
        let mut key = [0u8; 20];
        key[..16].copy_from_slice(&self.0.to_le_bytes());
        key[16..].copy_from_slice(&position.to_le_bytes());
        DocumentId::from_hash(xxh3_128(&key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_frame_same_ids() {
        let a = FrameSeed::new(Some("8F3A"), Some("d.1"), b"body one");
        let b = FrameSeed::new(Some("8F3A"), Some("d.1"), b"body two");
        assert_eq!(a.id(0), b.id(0));
        assert_ne!(a.id(0), a.id(1));
        assert_ne!(a.id(0), FrameSeed::new(Some("8F3A"), Some("d.2"), b"body one").id(0));
    }

    #[test]
    fn frames_without_id_hash_the_body() {
        let a = FrameSeed::new(None, None, b"12 <14>1 - - -");
        assert_eq!(a.id(3), FrameSeed::new(Some(""), None, b"12 <14>1 - - -").id(3));
        assert_ne!(a.id(3), FrameSeed::new(None, None, b"12 <14>1 - - +").id(3));
    }

    #[test]
    fn ids_are_22_base64url_characters() {
        for id in [FrameSeed(0).id(0), FrameSeed(u128::MAX).id(u32::MAX), DocumentId::for_stream(None, b"")] {
            let s = id.as_str();
            assert_eq!(s.len(), 22);
            assert!(s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'), "{s}");
        }
        assert_eq!(DocumentId::from_hash(0).as_str(), "AAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(DocumentId::from_hash(u128::MAX).as_str(), "_____________________w");
    }
}
