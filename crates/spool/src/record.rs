//! The on-disk record: `len u32 | crc32 u32 | appended_ms u64 | payload`, little-endian. The
//! CRC covers `len`, `appended_ms` and the payload, so a torn header or a torn payload is
//! detected alike.

use std::io::{self, Read};

use crate::crc;

pub(crate) const HEADER: usize = 16;

/// The header of a record whose payload is `parts`, one after the other.
pub(crate) fn header(parts: &[impl AsRef<[u8]>], appended_ms: u64) -> [u8; HEADER] {
    let len = parts.iter().map(|p| p.as_ref().len()).sum::<usize>();
    let len = u32::try_from(len).unwrap_or(u32::MAX);
    let crc = checksum(len, appended_ms, parts);
    let [a, b, c, d] = len.to_le_bytes();
    let [e, f, g, h] = crc.to_le_bytes();
    let [i, j, k, l, m, n, o, p] = appended_ms.to_le_bytes();
    [a, b, c, d, e, f, g, h, i, j, k, l, m, n, o, p]
}

/// Appends one encoded record to `out`.
#[cfg(test)]
pub(crate) fn encode(out: &mut Vec<u8>, payload: &[u8], appended_ms: u64) {
    out.extend_from_slice(&header(&[payload], appended_ms));
    out.extend_from_slice(payload);
}

fn checksum(len: u32, appended_ms: u64, parts: &[impl AsRef<[u8]>]) -> u32 {
    #[cfg(test)]
    crc::work::add_bytes(12 + len as usize);
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&appended_ms.to_le_bytes());
    for part in parts {
        h.update(part.as_ref());
    }
    h.finalize()
}

/// The outcome of reading one record.
#[derive(Debug)]
pub(crate) enum Read1 {
    Record {
        payload: Vec<u8>,
        appended_ms: u64,
    },
    /// Clean end of data.
    End,
    /// A partial or corrupt record: the data from here on cannot be trusted.
    Torn,
}

/// Reads the next record; `max_len` rejects absurd lengths from a corrupt header.
pub(crate) fn read(r: &mut impl Read, max_len: u64) -> io::Result<Read1> {
    let mut header = [0u8; HEADER];
    let n = read_full(r, &mut header)?;
    if n == 0 {
        return Ok(Read1::End);
    }
    if n < HEADER {
        return Ok(Read1::Torn);
    }
    let (len, crc, appended_ms) = parse_header(header);
    if u64::from(len) > max_len {
        return Ok(Read1::Torn);
    }
    let Ok(len_bytes) = usize::try_from(len) else { return Ok(Read1::Torn) };
    let mut payload = vec![0u8; len_bytes];
    if read_full(r, &mut payload)? < payload.len() {
        return Ok(Read1::Torn);
    }
    if checksum(len, appended_ms, &[&payload]) != crc {
        return Ok(Read1::Torn);
    }
    Ok(Read1::Record { payload, appended_ms })
}

/// `len`, `crc` and `appended_ms` of a record header.
fn parse_header(header: [u8; HEADER]) -> (u32, u32, u64) {
    let [l0, l1, l2, l3, c0, c1, c2, c3, m0, m1, m2, m3, m4, m5, m6, m7] = header;
    (
        u32::from_le_bytes([l0, l1, l2, l3]),
        u32::from_le_bytes([c0, c1, c2, c3]),
        u64::from_le_bytes([m0, m1, m2, m3, m4, m5, m6, m7]),
    )
}

/// The first offset after `region[0]` where a whole record with a valid checksum starts, and
/// that record's payload, given the bytes from a damaged record to the end of the written data:
/// where reading resumes, so that damage costs only the records it touched.
///
/// Linear in the bytes searched, whatever they hold: a candidate's checksum comes from
/// checksums of prefixes of the region (see [`crate::crc`]), not from hashing its payload again
/// at every offset, which payloads of repeated `00 00 08 00` (a plausible length every fourth
/// byte) made quadratic. The same offset is found as by checking each in turn.
pub(crate) fn next_valid(region: &[u8], max_len: u64) -> Option<(usize, &[u8])> {
    let mut prefixes = crc::Prefixes::new(region);
    let mut powers = crc::Powers::new();
    // The checksum of `region[..upto]`, carried forward to each candidate's `appended_ms` (in
    // one pass over the region, from one candidate to the next).
    let (mut upto, mut before) = (0, 0);
    for at in 1..region.len() {
        let (header, _) = region.get(at..)?.split_first_chunk::<HEADER>()?;
        let (len, crc, _) = parse_header(*header);
        let Some(end) = record_end(region.len(), at, len, max_len) else { continue };
        before = crc::extend(before, region.get(upto..at + 8)?);
        upto = at + 8;
        // The record's checksum covers `len ‖ T`, `T = region[at + 8..end]`:
        //   crc(len ‖ T) = crc(len)·x^(8|T|) ⊕ crc(T),  crc(T) = pre(end) ⊕ pre(at + 8)·x^(8|T|).
        let shift = powers.shift(end - upto);
        let found = prefixes.upto(end).map(|to_end| crc::mul(crc::of_u32(len) ^ before, shift) ^ to_end);
        if found == Some(crc) {
            return Some((at, region.get(at + HEADER..end)?));
        }
    }
    None
}

/// Where a record of `len` bytes at `at` would end, if it is allowed and fits in the region.
fn record_end(region_len: usize, at: usize, len: u32, max_len: u64) -> Option<usize> {
    if u64::from(len) > max_len {
        return None;
    }
    at.checked_add(HEADER)?.checked_add(usize::try_from(len).ok()?).filter(|&end| end <= region_len)
}

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let Some(rest) = buf.get_mut(n..) else { break };
        match r.read(rest) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_detects_every_torn_prefix_and_flipped_bit() {
        let mut buf = Vec::new();
        encode(&mut buf, b"hello spool", 42);
        match read(&mut &buf[..], 1 << 20).unwrap() {
            Read1::Record { payload, appended_ms } => {
                assert_eq!((&payload[..], appended_ms), (&b"hello spool"[..], 42))
            }
            other => panic!("{other:?}"),
        }
        for cut in 1..buf.len() {
            assert!(matches!(read(&mut &buf[..cut], 1 << 20).unwrap(), Read1::Torn), "cut at {cut}");
        }
        for i in 0..buf.len() {
            for bit in 0..8 {
                let mut bad = buf.clone();
                bad[i] ^= 1 << bit;
                assert!(matches!(read(&mut &bad[..], 1 << 20).unwrap(), Read1::Torn), "byte {i} bit {bit}");
            }
        }
        assert!(matches!(read(&mut &b""[..], 1 << 20).unwrap(), Read1::End));
    }

    #[test]
    fn the_next_valid_record_is_found_past_any_damage() {
        let mut buf = Vec::new();
        encode(&mut buf, b"first", 1);
        let second = buf.len();
        encode(&mut buf, b"second", 2);
        let third = buf.len();
        encode(&mut buf, b"third", 3);
        // Damage the second record anywhere: the third is found; damage in the third: nothing.
        for i in second..third {
            let mut bad = buf.clone();
            bad[i] ^= 0x40;
            assert_eq!(next_valid(&bad[second..], 1 << 20).map(|(at, _)| at + second), Some(third), "byte {i}");
        }
        assert_eq!(next_valid(&buf, 1 << 20), Some((second, &b"second"[..])), "the search starts after region[0]");
        assert_eq!(next_valid(&buf[third..third + 10], 1 << 20), None);
        assert_eq!(next_valid(&buf[third..buf.len() - 1], 1 << 20), None, "a record cut short is not valid");
        assert_eq!(next_valid(&[0u8; 64], 1 << 20), None, "zeros are not a record");
    }

    /// The search as it was, one offset after another, hashing each candidate's payload: the
    /// reference the linear one must agree with.
    fn next_valid_reference(region: &[u8], max_len: u64) -> Option<(usize, &[u8])> {
        (1..region.len()).find_map(|at| Some((at, valid_at(region.get(at..)?, max_len)?)))
    }

    fn valid_at(data: &[u8], max_len: u64) -> Option<&[u8]> {
        let (header, rest) = data.split_first_chunk::<HEADER>()?;
        let (len, crc, appended_ms) = parse_header(*header);
        if u64::from(len) > max_len {
            return None;
        }
        let payload = rest.get(..usize::try_from(len).ok()?)?;
        (checksum(len, appended_ms, &[payload]) == crc).then_some(payload)
    }

    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: usize) -> usize {
            (self.next() % n as u64) as usize
        }
    }

    /// A payload of one of the kinds that make the search work: random bytes, zeros, lengths
    /// that look plausible at every fourth offset, or whole records (valid or not) inside it.
    fn payload(rng: &mut Rng) -> Vec<u8> {
        let n = rng.below(80);
        match rng.below(6) {
            0 => (0..n).map(|_| rng.next() as u8).collect(),
            1 => vec![0; n],
            2 => [0u8, 0, 8, 0].iter().cycle().take(n).copied().collect(),
            3 => {
                let len = rng.below(24) as u32;
                len.to_le_bytes().iter().cycle().take(n).copied().collect()
            }
            _ => {
                let mut inner = Vec::new();
                for _ in 0..rng.below(3) + 1 {
                    let p: Vec<u8> = (0..rng.below(12)).map(|_| rng.next() as u8).collect();
                    encode(&mut inner, &p, rng.next() % 4);
                }
                if rng.below(2) == 0 && !inner.is_empty() {
                    let i = rng.below(inner.len());
                    inner[i] ^= 1 << rng.below(8);
                }
                inner
            }
        }
    }

    /// A segment of records, then damaged: flipped bytes, a cut, garbage spliced in.
    fn damaged_segment(rng: &mut Rng) -> Vec<u8> {
        let mut seg = Vec::new();
        for _ in 0..rng.below(12) + 1 {
            let p = payload(rng);
            encode(&mut seg, &p, rng.next() % 3);
        }
        for _ in 0..rng.below(4) {
            let i = rng.below(seg.len());
            match rng.below(4) {
                0 => seg[i] ^= 1 << rng.below(8),
                1 => seg[i] = rng.next() as u8,
                2 => seg.truncate(i.max(1)),
                _ => {
                    let junk: Vec<u8> = (0..rng.below(20)).map(|_| rng.next() as u8).collect();
                    seg.splice(i..i, junk);
                }
            }
        }
        seg
    }

    #[test]
    fn finds_what_checking_every_offset_finds_in_random_damaged_segments() {
        let mut rng = Rng(0x853C_49E6_748F_EA9B);
        let mut found = 0;
        for case in 0..1000 {
            let seg = damaged_segment(&mut rng);
            let max_len = [0, 8, 40, 1 << 20][rng.below(4)];
            // Every start of the region, as the spool may meet damage anywhere.
            for start in 0..seg.len() {
                let region = &seg[start..];
                let want = next_valid_reference(region, max_len);
                found += usize::from(want.is_some());
                assert_eq!(
                    next_valid(region, max_len),
                    want,
                    "case {case}, start {start}, max_len {max_len}: {seg:02x?}"
                );
            }
        }
        assert!(found > 3_000, "the cases find records often enough to test something: {found}");
    }

    #[test]
    fn finds_what_checking_every_offset_finds_in_every_short_region_of_few_byte_values() {
        // Every string of up to 7 bytes over {00, 01, 11} put into two records (an empty one
        // and a one-byte one) at their edges, from every start and with lengths over the limit:
        // records cut short by one, fitting exactly, of length 0.
        let mut rec = Vec::new();
        encode(&mut rec, b"", 0);
        encode(&mut rec, b"a", 1);
        let values = [0u8, 1, 0x11];
        for n in 0..=7u32 {
            for code in 0..values.len().pow(n) {
                let mut tail = Vec::new();
                let mut c = code;
                for _ in 0..n {
                    tail.push(values[c % values.len()]);
                    c /= values.len();
                }
                for split in [0, 5, 16, 17, rec.len()] {
                    let mut region = rec[..split].to_vec();
                    region.extend_from_slice(&tail);
                    region.extend_from_slice(&rec[split..]);
                    for max_len in [0, 1, 1 << 20] {
                        for start in 0..region.len() {
                            assert_eq!(
                                next_valid(&region[start..], max_len),
                                next_valid_reference(&region[start..], max_len),
                                "{region:02x?} from {start}, max_len {max_len}"
                            );
                        }
                    }
                }
            }
        }
    }

    /// A record whose checksum is wrong followed by a `00 00 08 00` body of `size` bytes (a
    /// plausible 512 KiB length every fourth byte, 2 KiB and 8 bytes at the others), then a
    /// valid record: what the search must get through.
    fn crafted_region(size: usize) -> (Vec<u8>, usize) {
        let body: Vec<u8> = [0u8, 0, 8, 0].iter().cycle().take(size).copied().collect();
        let mut region = Vec::new();
        encode(&mut region, &body, 7);
        region[4] ^= 1;
        let valid = region.len();
        encode(&mut region, b"after the damage", 8);
        (region, valid)
    }

    fn work_for(f: impl FnOnce()) -> (u64, u64) {
        let (bytes, muls) = crc::work::so_far();
        f();
        let (b, m) = crc::work::so_far();
        (b - bytes, m - muls)
    }

    #[test]
    fn a_crafted_damaged_region_costs_work_linear_in_its_size() {
        for size in [64 << 10, 1 << 20, 3 << 20] {
            let (region, valid) = crafted_region(size);
            let n = region.len() as u64;
            let (bytes, muls) = work_for(|| {
                assert_eq!(next_valid(&region, 16 << 20), Some((valid, &b"after the damage"[..])));
            });
            // Each byte once for the prefixes, and per offset its header and at most a mark's
            // worth (64) to its candidate's end, with two multiplications.
            assert!(bytes <= 40 * n, "{size}: {bytes} bytes hashed for a region of {n}");
            assert!(muls <= 2 * n, "{size}: {muls} multiplications for a region of {n}");
        }
        // What the check measures: the search as it was hashes this region quadratically.
        let (region, valid) = crafted_region(64 << 10);
        let (bytes, _) = work_for(|| assert_eq!(next_valid_reference(&region, 16 << 20).map(|f| f.0), Some(valid)));
        assert!(bytes > 100 * region.len() as u64, "the old search: {bytes} bytes for {}", region.len());
    }

    /// `cargo test -p drainpipe-spool --release -- --ignored --nocapture search_time`; sizes in
    /// MiB from `SEARCH_MIB` (default 1,2,8), `SEARCH_REFERENCE=1` to time the old search too.
    #[test]
    #[ignore = "a measurement, run by hand in release"]
    fn search_time() {
        let sizes = std::env::var("SEARCH_MIB").unwrap_or_else(|_| "1,2,8".into());
        for mib in sizes.split(',').map(|s| s.trim().parse::<usize>().unwrap()) {
            let (region, valid) = crafted_region(mib << 20);
            let t = std::time::Instant::now();
            assert_eq!(next_valid(&region, 16 << 20).map(|f| f.0), Some(valid));
            let linear = t.elapsed();
            let mut line = format!("{mib} MiB of 00 00 08 00: next_valid {linear:.3?}");
            if std::env::var_os("SEARCH_REFERENCE").is_some() {
                let t = std::time::Instant::now();
                assert_eq!(next_valid_reference(&region, 16 << 20).map(|f| f.0), Some(valid));
                line += &format!(", checking every offset {:.3?}", t.elapsed());
            }
            eprintln!("{line}");
            // And ordinary damage: a torn tail of log lines, no record after it.
            let text: Vec<u8> = b"<190>1 2024-05-01T12:00:00Z host app web.1 - status=200 path=/ \n"
                .iter()
                .cycle()
                .take(mib << 20)
                .copied()
                .collect();
            let t = std::time::Instant::now();
            assert_eq!(next_valid(&text, 16 << 20), None);
            let mut line = format!("{mib} MiB of log lines: next_valid {:.3?}", t.elapsed());
            if std::env::var_os("SEARCH_REFERENCE").is_some() {
                let t = std::time::Instant::now();
                assert_eq!(next_valid_reference(&text, 16 << 20), None);
                line += &format!(", checking every offset {:.3?}", t.elapsed());
            }
            eprintln!("{line}");
        }
    }
}
