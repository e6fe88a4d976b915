//! Invalid UTF-8 made text exactly as [`String::from_utf8_lossy`] makes it (one U+FFFD per
//! maximal invalid sequence), without its cost on long runs of bad bytes.
//!
//! `from_utf8_lossy` handles each invalid sequence as a chunk of its own: a 64 KiB line of
//! `0xFF` is 65,536 chunks, each with its own decoder step and two `push_str` calls (issue 25,
//! docs/performance.md). Here a run of bytes that can start no sequence (each of them one
//! U+FFFD, whatever follows) is counted in one scan and written in a few copies.

use std::borrow::Cow;

/// U+FFFD, this many times in [`REPLACEMENTS`].
const RUN: usize = 64;

/// The UTF-8 of `RUN` U+FFFD characters.
// Evaluated by the compiler: an index out of range fails the build, never a message.
#[allow(clippy::indexing_slicing)]
const REPLACEMENT_BYTES: [u8; 3 * RUN] = {
    let mut t = [0u8; 3 * RUN];
    let mut i = 0;
    while i < 3 * RUN {
        t[i] = 0xEF;
        t[i + 1] = 0xBF;
        t[i + 2] = 0xBD;
        i += 3;
    }
    t
};

/// `RUN` U+FFFD characters (the fallback, one of them, cannot be chosen: the bytes above are
/// valid UTF-8, and [`push_replacements`] works with either).
const REPLACEMENTS: &str = match std::str::from_utf8(&REPLACEMENT_BYTES) {
    Ok(s) => s,
    Err(_) => "\u{FFFD}",
};

const REPLACEMENT_LEN: usize = '\u{FFFD}'.len_utf8();

/// Whether `b` can start no UTF-8 sequence: a continuation byte, an overlong lead (`C0`, `C1`)
/// or a lead above U+10FFFF (`F5`–`FF`). Met where a character should start, it is an invalid
/// sequence of one byte, and decoding goes on at the next byte.
#[inline]
fn stands_alone(b: u8) -> bool {
    matches!(b, 0x80..=0xC1 | 0xF5..=0xFF)
}

/// Appends `n` U+FFFD characters.
fn push_replacements(out: &mut String, mut n: usize) {
    out.reserve(n * REPLACEMENT_LEN);
    let per_copy = (REPLACEMENTS.len() / REPLACEMENT_LEN).max(1);
    while n > 0 {
        let k = n.min(per_copy);
        out.push_str(REPLACEMENTS.get(..k * REPLACEMENT_LEN).unwrap_or("\u{FFFD}"));
        n -= k;
    }
}

/// `bytes` as text, borrowed when valid; else each maximal invalid sequence replaced by
/// U+FFFD, the same text as `String::from_utf8_lossy` returns.
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    let mut chunks = bytes.utf8_chunks();
    let mut chunk = match chunks.next() {
        None => return Cow::Borrowed(""),
        Some(c) if c.invalid().is_empty() => return Cow::Borrowed(c.valid()),
        Some(c) => c,
    };
    let mut out = String::with_capacity(bytes.len());
    // Where the next chunk starts in `bytes`.
    let mut at = 0;
    loop {
        out.push_str(chunk.valid());
        let bad = chunk.invalid().len();
        if bad == 0 {
            // Only the last chunk has no invalid sequence.
            break;
        }
        at += chunk.valid().len() + bad;
        if bytes.get(at).is_some_and(|&b| stands_alone(b)) {
            // This sequence and the run of lone bytes after it, one U+FFFD each; the chunks go
            // on after the run.
            let rest = bytes.get(at..).unwrap_or_default();
            let run = rest.iter().take_while(|&&b| stands_alone(b)).count();
            push_replacements(&mut out, 1 + run);
            at += run;
            chunks = rest.get(run..).unwrap_or_default().utf8_chunks();
        } else {
            out.push('\u{FFFD}');
        }
        match chunks.next() {
            Some(c) => chunk = c,
            None => break,
        }
    }
    Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn same_as_std(bytes: &[u8]) {
        let ours = lossy(bytes);
        let std = String::from_utf8_lossy(bytes);
        assert_eq!(ours.as_bytes(), std.as_bytes(), "{bytes:x?}");
        assert_eq!(matches!(ours, Cow::Borrowed(_)), matches!(std, Cow::Borrowed(_)), "{bytes:x?}");
    }

    /// Pieces that mixed make every kind of sequence the decoder meets.
    const PIECES: [&[u8]; 24] = [
        b"",
        b"a",
        b"plain ascii text ",
        "é".as_bytes(),
        "€".as_bytes(),
        "𝄞".as_bytes(),
        "\u{FFFD}".as_bytes(),
        b"\xff",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\xfe\xf5\xf8\xfc",
        b"\x80",             // lone continuation
        b"\xbf\x80\xbf",     // continuations in a row
        b"\xc0\xaf",         // overlong '/'
        b"\xc1\xbf",         // overlong
        b"\xe0\x80\xaf",     // overlong three bytes
        b"\xf0\x80\x80\xaf", // overlong four bytes
        b"\xed\xa0\x80",     // surrogate U+D800
        b"\xed\xbf\xbf",     // surrogate U+DFFF
        b"\xf4\x90\x80\x80", // above U+10FFFF
        b"\xe2\x82",         // truncated €
        b"\xf0\x9d\x84",     // truncated 𝄞
        b"\xc3",             // truncated é
        b"\xe2",
        b"\xf0\x9d",
    ];

    #[test]
    fn every_piece_and_pair_of_pieces_is_what_from_utf8_lossy_makes() {
        for a in PIECES {
            same_as_std(a);
            for b in PIECES {
                let mut two = a.to_vec();
                two.extend_from_slice(b);
                same_as_std(&two);
                for c in PIECES {
                    let mut three = two.clone();
                    three.extend_from_slice(c);
                    same_as_std(&three);
                }
            }
        }
    }

    #[test]
    fn long_runs_and_mixed_lines_are_what_from_utf8_lossy_makes() {
        // Runs shorter than, as long as and longer than one copy of the replacements.
        for n in [1, 2, RUN - 1, RUN, RUN + 1, 3 * RUN + 5, 64 * 1024] {
            same_as_std(&vec![0xff; n]);
            same_as_std(&vec![0x80; n]);
            let mut mixed = b"a=1 ".to_vec();
            mixed.extend(std::iter::repeat_n(0xfe, n));
            mixed.extend_from_slice(b"\xe2\x82\xac tail \xe2\x82");
            same_as_std(&mixed);
        }
        // A pseudo-random mix, weighted to the bytes that decide sequences.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for len in 0..2000 {
            let bytes: Vec<u8> = (0..len % 97)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    const INTERESTING: [u8; 16] = [
                        b'a', b' ', 0x7f, 0x80, 0xbf, 0xc0, 0xc2, 0xdf, 0xe0, 0xed, 0xef, 0xf0, 0xf4, 0xf5, 0xff, 0xa0,
                    ];
                    if state.is_multiple_of(3) {
                        (state >> 8) as u8
                    } else {
                        INTERESTING[(state >> 8) as usize % 16]
                    }
                })
                .collect();
            same_as_std(&bytes);
        }
    }
}
