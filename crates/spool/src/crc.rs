//! CRC-32 (the IEEE one crc32fast computes) as arithmetic on polynomials, so that the checksum of
//! any stretch of a buffer comes from checksums of its prefixes in constant time instead of from
//! its bytes.
//!
//! A CRC is a polynomial over GF(2) modulo `P`, and with the standard initial value and final
//! xor (both `0xFFFF_FFFF`) the checksum of a concatenation is
//!
//! ```text
//! crc(A ‖ B) = crc(A) · x^(8·|B|)  ⊕  crc(B)      (mod P, crc of nothing = 0)
//! ```
//!
//! (zlib's `crc32_combine`). So with `pre(i)` the checksum of the first `i` bytes,
//! `crc(buf[a..b]) = pre(b) ⊕ pre(a) · x^(8·(b-a))`. Values are reflected as crc32fast keeps them:
//! bit 31 is the coefficient of x^0, bit 0 that of x^31.

/// P, reflected.
const POLY: u32 = 0xEDB8_8320;

/// x^0, reflected.
const ONE: u32 = 1 << 31;

/// `TABLES[k][i]` is the byte `i` times x^(32 + 8k), mod P: `TABLES[0]` is the byte-wise CRC's
/// table, and the eight together take eight bytes at a time (slicing-by-8).
static TABLES: [[u32; 256]; 8] = tables();

// Only evaluated at compile time (for a `static`): an index out of bounds would fail the build,
// it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const fn tables() -> [[u32; 256]; 8] {
    let mut t = [[0u32; 256]; 8];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 == 1 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[0][i] = c;
        i += 1;
    }
    let mut k = 1;
    while k < 8 {
        let mut i = 0;
        while i < 256 {
            let prev = t[k - 1][i];
            t[k][i] = (prev >> 8) ^ t[0][(prev & 0xff) as usize];
            i += 1;
        }
        k += 1;
    }
    t
}

/// `TABLES[k][byte]`.
#[inline]
fn table(k: usize, byte: u32) -> u32 {
    // In bounds: callers pass k below 8, and a byte indexes a table of 256.
    TABLES.get(k).and_then(|t| t.get((byte & 0xff) as usize)).copied().unwrap_or(0)
}

/// One byte into a CRC register: `r · x^8 ⊕ byte · x^32`, mod P.
#[inline]
fn step(r: u32, byte: u8) -> u32 {
    (r >> 8) ^ table(0, r ^ u32::from(byte))
}

/// Four bytes into a CRC register, `word` holding them little-endian.
#[inline]
fn step4(r: u32, word: u32) -> u32 {
    let x = r ^ word;
    table(3, x) ^ table(2, x >> 8) ^ table(1, x >> 16) ^ table(0, x >> 24)
}

/// Eight bytes into a CRC register.
#[inline]
fn step8(r: u32, bytes: [u8; 8]) -> u32 {
    let [a, b, c, d, e, f, g, h] = bytes;
    let x = r ^ u32::from_le_bytes([a, b, c, d]);
    let y = u32::from_le_bytes([e, f, g, h]);
    table(7, x)
        ^ table(6, x >> 8)
        ^ table(5, x >> 16)
        ^ table(4, x >> 24)
        ^ table(3, y)
        ^ table(2, y >> 8)
        ^ table(1, y >> 16)
        ^ table(0, y >> 24)
}

/// Bytes checksummed and multiplications done by this thread: what the tests hold the search
/// for the next valid record to (linear in the bytes it searches).
#[cfg(test)]
pub(crate) mod work {
    use std::cell::Cell;

    thread_local! {
        pub(crate) static BYTES: Cell<u64> = const { Cell::new(0) };
        pub(crate) static MULS: Cell<u64> = const { Cell::new(0) };
    }

    pub(crate) fn add_bytes(n: usize) {
        BYTES.with(|c| c.set(c.get() + n as u64));
    }

    pub(crate) fn add_mul() {
        MULS.with(|c| c.set(c.get() + 1));
    }

    /// `(bytes, multiplications)` so far on this thread.
    pub(crate) fn so_far() -> (u64, u64) {
        (BYTES.with(Cell::get), MULS.with(Cell::get))
    }
}

/// The checksum of `A ‖ bytes`, given `crc` = the checksum of `A`.
#[inline]
pub(crate) fn extend(crc: u32, bytes: &[u8]) -> u32 {
    #[cfg(test)]
    work::add_bytes(bytes.len());
    if bytes.len() >= 256 {
        let mut h = crc32fast::Hasher::new_with_initial(crc);
        h.update(bytes);
        return h.finalize();
    }
    let (words, rest) = bytes.as_chunks::<8>();
    let r = words.iter().fold(!crc, |r, w| step8(r, *w));
    !rest.iter().fold(r, |r, &b| step(r, b))
}

/// The checksum of the four bytes of `word`, little-endian (a record's `len`).
#[inline]
pub(crate) fn of_u32(word: u32) -> u32 {
    #[cfg(test)]
    work::add_bytes(4);
    !step4(!0, word)
}

/// `a · b` mod P.
#[inline]
pub(crate) fn mul(a: u32, b: u32) -> u32 {
    #[cfg(test)]
    work::add_mul();
    // For reflected values bit `62 - k` of the carry-less product is the coefficient of x^k;
    // shifted up by one, the high half is the part below x^32 and the low half the part from
    // x^32 up, which is reduced by shifting it through four zero bytes of the CRC.
    let z = clmul(a, b) << 1;
    let (high, low) = ((z >> 32) as u32, z as u32);
    high ^ (0..4).fold(low, |r, _| step(r, 0))
}

/// Carry-less product of two 32-bit values with integer multiplications: with only every
/// fourth bit kept in each factor, at most eight partial products land on any bit, so their
/// carries stay in the three bits between and are masked off.
#[inline]
fn clmul(x: u32, y: u32) -> u64 {
    let m = [0x1111_1111_u32, 0x2222_2222, 0x4444_4444, 0x8888_8888];
    let [x0, x1, x2, x3] = m.map(|m| u64::from(x & m));
    let [y0, y1, y2, y3] = m.map(|m| u64::from(y & m));
    let z0 = (x0 * y0) ^ (x1 * y3) ^ (x2 * y2) ^ (x3 * y1);
    let z1 = (x0 * y1) ^ (x1 * y0) ^ (x2 * y3) ^ (x3 * y2);
    let z2 = (x0 * y2) ^ (x1 * y1) ^ (x2 * y0) ^ (x3 * y3);
    let z3 = (x0 * y3) ^ (x1 * y2) ^ (x2 * y1) ^ (x3 * y0);
    (z0 & 0x1111_1111_1111_1111)
        | (z1 & 0x2222_2222_2222_2222)
        | (z2 & 0x4444_4444_4444_4444)
        | (z3 & 0x8888_8888_8888_8888)
}

const LOW_BITS: u32 = 12;
const LOW_MASK: usize = (1 << LOW_BITS) - 1;

/// `LOW[i]` is x^(8·i) mod P for `i` below 4096.
static LOW: [u32; 1 << LOW_BITS] = low_powers();

// Only evaluated at compile time (for a `static`): an index out of bounds would fail the build,
// it cannot panic at run time.
#[allow(clippy::indexing_slicing)]
const fn low_powers() -> [u32; 1 << LOW_BITS] {
    let table = tables();
    let mut out = [0u32; 1 << LOW_BITS];
    let mut p = ONE;
    let mut i = 0;
    while i < out.len() {
        out[i] = p;
        p = (p >> 8) ^ table[0][(p & 0xff) as usize];
        i += 1;
    }
    out
}

/// x^(8·n) mod P for any `n`, as `HIGH[n >> 12] · LOW[n & 4095]`: one multiplication each. The
/// high table grows as far as it is asked: 4 bytes per 4 KiB of the largest `n`.
#[derive(Debug)]
pub(crate) struct Powers {
    high: Vec<u32>,
}

impl Powers {
    pub(crate) fn new() -> Powers {
        Powers { high: vec![ONE] }
    }

    /// x^(8·n) mod P: what shifts a checksum past `n` more bytes.
    pub(crate) fn shift(&mut self, n: usize) -> u32 {
        let low = LOW.get(n & LOW_MASK).copied().unwrap_or(ONE);
        let at = n >> LOW_BITS;
        if at == 0 {
            return low;
        }
        // x^(8·4096) = x^(8·4095) · x^8.
        let stride = step(LOW.last().copied().unwrap_or(ONE), 0);
        while self.high.len() <= at {
            let last = self.high.last().copied().unwrap_or(ONE);
            self.high.push(mul(last, stride));
        }
        mul(self.high.get(at).copied().unwrap_or(ONE), low)
    }
}

/// Bytes between stored prefix checksums: the most hashed again to get any one prefix's.
const MARK: usize = 32;

/// The checksums of the prefixes of a buffer, worked out as far as they are asked for; one is
/// stored every 32 bytes (an eighth of the buffer's size at most).
#[derive(Debug)]
pub(crate) struct Prefixes<'a> {
    data: &'a [u8],
    /// `marks[i]` is the checksum of `data[..i * MARK]`.
    marks: Vec<u32>,
}

impl<'a> Prefixes<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Prefixes<'a> {
        Prefixes { data, marks: vec![0] }
    }

    /// The checksum of `data[..end]`; `None` past the end of the data.
    pub(crate) fn upto(&mut self, end: usize) -> Option<u32> {
        let mark = end / MARK;
        while self.marks.len() <= mark {
            let from = (self.marks.len() - 1) * MARK;
            let last = self.marks.last().copied()?;
            self.marks.push(extend(last, self.data.get(from..from + MARK)?));
        }
        Some(extend(self.marks.get(mark).copied()?, self.data.get(mark * MARK..end)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `a · b` mod P one bit at a time (zlib's `multmodp`).
    fn mul_bitwise(a: u32, mut b: u32) -> u32 {
        let mut p = 0;
        for bit in (0..32).rev() {
            if a >> bit & 1 == 1 {
                p ^= b;
            }
            b = if b & 1 == 1 { (b >> 1) ^ POLY } else { b >> 1 };
        }
        p
    }

    fn xorshift(state: &mut u64) -> u64 {
        *state ^= *state << 13;
        *state ^= *state >> 7;
        *state ^= *state << 17;
        *state
    }

    #[test]
    fn multiplication_matches_the_bitwise_one() {
        let mut s = 0x9E37_79B9_7F4A_7C15;
        let edges = [0, 1, ONE, u32::MAX, POLY, 0x8000_0001, 0x0000_0002];
        for &a in &edges {
            for &b in &edges {
                assert_eq!(mul(a, b), mul_bitwise(a, b), "{a:#x} · {b:#x}");
            }
        }
        for _ in 0..100_000 {
            let (a, b) = (xorshift(&mut s) as u32, (xorshift(&mut s) >> 32) as u32);
            assert_eq!(mul(a, b), mul_bitwise(a, b), "{a:#x} · {b:#x}");
            assert_eq!(mul(a, b), mul(b, a));
            assert_eq!(mul(a, ONE), a);
        }
    }

    #[test]
    fn shifting_by_powers_is_combining_checksums() {
        let mut s = 0x2545_F491_4F6C_DD1D;
        let data: Vec<u8> = (0..70_000).map(|_| xorshift(&mut s) as u8).collect();
        let mut powers = Powers::new();
        let mut prefixes = Prefixes::new(&data);
        for n in [0, 1, 2, 63, 64, 65, 4095, 4096, 4097, 8191, 8192, 12_345, 65_536, 69_999] {
            let (a, b) = data.split_at(data.len() - n);
            let whole = crc32fast::hash(&data);
            assert_eq!(mul(crc32fast::hash(a), powers.shift(n)) ^ crc32fast::hash(b), whole, "n = {n}");
            assert_eq!(prefixes.upto(data.len() - n), Some(crc32fast::hash(a)), "prefix of {}", data.len() - n);
            assert_eq!(extend(crc32fast::hash(a), b), whole);
        }
        assert_eq!(prefixes.upto(data.len() + 1), None);
        for n in 0..300 {
            let start = xorshift(&mut s) as usize % 1000;
            let (a, b) = (&data[..start], &data[start..start + n]);
            assert_eq!(extend(crc32fast::hash(a), b), crc32fast::hash(&data[..start + n]), "{n} bytes on {start}");
        }
        for _ in 0..1000 {
            let word = xorshift(&mut s) as u32;
            assert_eq!(of_u32(word), crc32fast::hash(&word.to_le_bytes()));
        }
        // And in any order of asking.
        let mut prefixes = Prefixes::new(&data);
        for _ in 0..1000 {
            let end = (xorshift(&mut s) % (data.len() as u64 + 1)) as usize;
            assert_eq!(prefixes.upto(end), Some(crc32fast::hash(&data[..end])), "prefix of {end}");
        }
    }
}
