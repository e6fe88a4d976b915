//! The on-disk record: `len u32 | crc32 u32 | appended_ms u64 | payload`, little-endian. The
//! CRC covers `len`, `appended_ms` and the payload, so a torn header or a torn payload is
//! detected alike.

use std::io::{self, Read};

pub(crate) const HEADER: usize = 16;

/// Appends one encoded record to `out`.
pub(crate) fn encode(out: &mut Vec<u8>, payload: &[u8], appended_ms: u64) {
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let crc = checksum(len, appended_ms, payload);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(&appended_ms.to_le_bytes());
    out.extend_from_slice(payload);
}

fn checksum(len: u32, appended_ms: u64, payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(&len.to_le_bytes());
    h.update(&appended_ms.to_le_bytes());
    h.update(payload);
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
    if checksum(len, appended_ms, &payload) != crc {
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
pub(crate) fn next_valid(region: &[u8], max_len: u64) -> Option<(usize, &[u8])> {
    (1..region.len()).find_map(|at| Some((at, valid_at(region.get(at..)?, max_len)?)))
}

/// The payload of the record at the start of `data`, if a whole one with a valid checksum is
/// there.
fn valid_at(data: &[u8], max_len: u64) -> Option<&[u8]> {
    let (header, rest) = data.split_first_chunk::<HEADER>()?;
    let (len, crc, appended_ms) = parse_header(*header);
    if u64::from(len) > max_len {
        return None;
    }
    let payload = rest.get(..usize::try_from(len).ok()?)?;
    (checksum(len, appended_ms, payload) == crc).then_some(payload)
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
}
