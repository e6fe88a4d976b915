//! RFC 3339 timestamps: parsed without allocation, converted to UTC, written back with the
//! fraction digits they came with (up to nanoseconds, all of which `date_nanos` holds).

use std::time::{SystemTime, UNIX_EPOCH};

/// An instant in UTC with the precision it was written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timestamp {
    secs: i64,
    nanos: u32,
    /// How many fraction digits to print (0 to 9).
    digits: u8,
}

/// `date_nanos` in Elasticsearch holds 1970-01-01 to 2262-04-11; anything outside would get the
/// whole document rejected, so it is treated as unparseable here instead.
const MIN_SECS: i64 = 0;
const MAX_SECS: i64 = 9_223_372_036; // i64::MAX nanoseconds, in seconds

/// Why an RFC 3164 `Feb 29` got the receive time (`error.message`).
const NO_LEAP_DAY: &str =
    "RFC 3164 TIMESTAMP names no day in the year before it was received (Feb 29 outside a leap year)";

impl Timestamp {
    /// `secs` since the Unix epoch plus `nanos`, printed with microseconds.
    pub fn from_unix(secs: i64, nanos: u32) -> Timestamp {
        // Clamped like `from_system_time`: outside, date arithmetic could overflow.
        Timestamp { secs: secs.clamp(MIN_SECS, MAX_SECS), nanos: nanos.min(999_999_999), digits: 6 }
    }

    /// Nanoseconds since the Unix epoch (an OTLP `timeUnixNano`), printed with all nine fraction
    /// digits: the precision it came with, which `date_nanos` holds.
    pub fn from_unix_nanos(nanos: i64) -> Timestamp {
        let secs = nanos.div_euclid(1_000_000_000);
        let nanos = u32::try_from(nanos.rem_euclid(1_000_000_000)).unwrap_or(0);
        Timestamp { secs, nanos, digits: 9 }
    }

    pub fn now() -> Timestamp {
        Timestamp::from_system_time(SystemTime::now())
    }

    pub fn from_system_time(t: SystemTime) -> Timestamp {
        let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
        Timestamp::from_unix(i64::try_from(d.as_secs()).unwrap_or(MAX_SECS), d.subsec_nanos())
    }

    pub fn unix_seconds(&self) -> i64 {
        self.secs
    }

    pub fn subsec_nanos(&self) -> u32 {
        self.nanos
    }

    /// Nanoseconds since the epoch (always in range: see `MAX_SECS`).
    pub fn unix_nanos(&self) -> i64 {
        self.secs.saturating_mul(1_000_000_000).saturating_add(i64::from(self.nanos))
    }

    /// Parses `YYYY-MM-DDTHH:MM:SS[.fraction](Z|+HH:MM|-HH:MM)`, converting the offset to UTC.
    /// More than nine fraction digits are accepted and truncated.
    pub fn parse_rfc3339(s: &[u8]) -> Option<Timestamp> {
        let (head, rest) = s.split_first_chunk::<19>()?;
        let [y1, y2, y3, y4, b'-', mo1, mo2, b'-', d1, d2, b'T' | b't' | b' ', h1, h2, b':', mi1, mi2, b':', s1, s2] =
            *head
        else {
            return None;
        };
        if rest.is_empty() {
            return None;
        }
        let year = i64::from(digits(&[y1, y2, y3, y4])?);
        let month = digits(&[mo1, mo2])?;
        let day = digits(&[d1, d2])?;
        let hour = digits(&[h1, h2])?;
        let minute = digits(&[mi1, mi2])?;
        let second = digits(&[s1, s2])?;
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        // 60 is a leap second; it is kept as the first second of the next minute.
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        let (nanos, ndigits, rest) = fraction(rest)?;
        let offset_secs = utc_offset(rest)?;
        let days = days_from_civil(year, month, day);
        let secs = days * 86_400 + i64::from(hour) * 3600 + i64::from(minute) * 60 + i64::from(second) - offset_secs;
        if !(MIN_SECS..=MAX_SECS).contains(&secs) {
            return None;
        }
        Some(Timestamp { secs, nanos, digits: ndigits })
    }

    /// Parses an RFC 3164 `Mmm dd hh:mm:ss` (day padded with a space or a zero) as UTC, in the
    /// year that puts it at most a day after `received`: the latest such instant, which is always
    /// within the year before (the one window in which a date without a year names one day).
    ///
    /// `None` when `s` is not such a timestamp (or names a day no year has, `Apr 31`).
    /// `Some(Err(why))` for `Feb 29` when that window holds no 29 February: choosing an older
    /// leap year would be a guess (and date the line years back, out of every recent search), so
    /// the caller keeps the receive time and reports why.
    pub fn from_rfc3164(s: &[u8], received: Timestamp) -> Option<Result<Timestamp, &'static str>> {
        const MONTHS: [&[u8; 3]; 12] =
            [b"Jan", b"Feb", b"Mar", b"Apr", b"May", b"Jun", b"Jul", b"Aug", b"Sep", b"Oct", b"Nov", b"Dec"];
        let [m1, m2, m3, b' ', d1, d2, b' ', h1, h2, b':', mi1, mi2, b':', s1, s2] = *<&[u8; 15]>::try_from(s).ok()?
        else {
            return None;
        };
        let month = MONTHS.iter().position(|m| **m == [m1, m2, m3])? as u32 + 1;
        let day = match d1 {
            b' ' => digits(&[d2])?,
            _ => digits(&[d1, d2])?,
        };
        let (hour, minute, second) = (digits(&[h1, h2])?, digits(&[mi1, mi2])?, digits(&[s1, s2])?);
        if hour > 23 || minute > 59 || second > 60 || day == 0 {
            return None;
        }
        if day > days_in_month(2000, month) {
            return None; // 2000 was a leap year: no year has this day
        }
        let latest = received.secs.saturating_add(86_400);
        let (year, _, _) = civil_from_days(received.secs.div_euclid(86_400));
        for y in [year + 1, year, year - 1] {
            if day > days_in_month(y, month) {
                continue;
            }
            let secs = days_from_civil(y, month, day) * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
            if secs > latest {
                continue;
            }
            // Any other date recurs within 366 days, so only a 29 February can be older.
            if secs <= latest.saturating_sub(366 * 86_400) {
                break;
            }
            return (MIN_SECS..=MAX_SECS).contains(&secs).then_some(Ok(Timestamp { secs, nanos: 0, digits: 0 }));
        }
        Some(Err(NO_LEAP_DAY))
    }

    /// Appends `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    pub fn write_rfc3339(&self, out: &mut Vec<u8>) {
        let days = self.secs.div_euclid(86_400);
        let sod = self.secs.rem_euclid(86_400) as u32;
        let (y, m, d) = civil_from_days(days);
        let mut buf = [0u8; 30];
        let mut n = 0;
        put(&mut buf, &mut n, y.clamp(0, 9999) as u32, 4, b'-');
        put(&mut buf, &mut n, m, 2, b'-');
        put(&mut buf, &mut n, d, 2, b'T');
        put(&mut buf, &mut n, sod / 3600, 2, b':');
        put(&mut buf, &mut n, sod / 60 % 60, 2, b':');
        put(&mut buf, &mut n, sod % 60, 2, b'.');
        if self.digits > 0 {
            let frac = self.nanos / 10u32.pow(9 - u32::from(self.digits));
            put(&mut buf, &mut n, frac, usize::from(self.digits), b'Z');
        } else if let Some(dot) = n.checked_sub(1).and_then(|last| buf.get_mut(last)) {
            *dot = b'Z'; // no fraction: the '.' becomes the 'Z'
        }
        out.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
}

/// Writes `v` as `width` zero-padded digits followed by `sep`.
/// `buf` holds the longest, `YYYY-MM-DDTHH:MM:SS.fffffffffZ` (30 bytes).
fn put(buf: &mut [u8; 30], n: &mut usize, mut v: u32, width: usize, sep: u8) {
    if let Some((last, field)) = buf.get_mut(*n..=*n + width).and_then(<[u8]>::split_last_mut) {
        for slot in field.iter_mut().rev() {
            *slot = b'0' + (v % 10) as u8;
            v /= 10;
        }
        *last = sep;
    }
    *n += width + 1;
}

/// An RFC 3339 `.fraction` (or none): its nanoseconds, its digits kept (at most 9), and what
/// follows it. `None` for a dot without digits.
fn fraction(rest: &[u8]) -> Option<(u32, u8, &[u8])> {
    let Some((b'.', frac)) = rest.split_first() else {
        return Some((0, 0, rest));
    };
    let n = frac.iter().take_while(|b| b.is_ascii_digit()).count();
    if n == 0 {
        return None;
    }
    let nanos = frac.iter().take(n.min(9)).fold(0u32, |acc, &b| acc * 10 + u32::from(b - b'0'));
    let ndigits = n.min(9) as u8;
    Some((nanos * 10u32.pow(9 - u32::from(ndigits)), ndigits, frac.get(n..)?))
}

/// An RFC 3339 offset, `Z` or `±hh:mm`, in seconds east of UTC; `None` for anything else.
fn utc_offset(rest: &[u8]) -> Option<i64> {
    match rest {
        [b'Z' | b'z'] => Some(0),
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (oh, om) = (i64::from(digits(&[*h1, *h2])?), i64::from(digits(&[*m1, *m2])?));
            if oh > 23 || om > 59 {
                return None;
            }
            let o = oh * 3600 + om * 60;
            Some(if *sign == b'-' { -o } else { o })
        }
        _ => None,
    }
}

fn digits(s: &[u8]) -> Option<u32> {
    let mut v = 0u32;
    for &b in s {
        if !b.is_ascii_digit() {
            return None;
        }
        v = v * 10 + u32::from(b - b'0');
    }
    Some(v)
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: u32) -> u32 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

// Howard Hinnant's algorithms for the proleptic Gregorian calendar.
/// Days since 1970-01-01 of a date (proleptic Gregorian).
pub fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date (year, month, day) of a number of days since 1970-01-01.
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> String {
        let mut out = Vec::new();
        Timestamp::parse_rfc3339(s.as_bytes()).expect(s).write_rfc3339(&mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn keeps_microseconds_in_utc() {
        assert_eq!(utc("2025-03-14T09:26:53.589793+00:00"), "2025-03-14T09:26:53.589793Z");
        assert_eq!(utc("2025-03-14T09:26:53Z"), "2025-03-14T09:26:53Z");
        assert_eq!(utc("2025-03-14T09:26:53.1z"), "2025-03-14T09:26:53.1Z");
        assert_eq!(utc("2025-03-14T09:26:53.123456789123Z"), "2025-03-14T09:26:53.123456789Z");
    }

    #[test]
    fn converts_offsets_to_utc() {
        assert_eq!(utc("2025-03-14T09:26:53.000001+02:00"), "2025-03-14T07:26:53.000001Z");
        assert_eq!(utc("2025-03-14T20:30:00-05:30"), "2025-03-15T02:00:00Z");
        assert_eq!(utc("2024-03-01T00:30:00+01:00"), "2024-02-29T23:30:00Z");
        assert_eq!(utc("2025-01-01T00:00:00+00:01"), "2024-12-31T23:59:00Z");
    }

    #[test]
    fn agrees_with_the_epoch() {
        let t = Timestamp::parse_rfc3339(b"2025-03-14T09:26:53.589793+00:00").unwrap();
        assert_eq!(t.unix_seconds(), 1_741_944_413);
        assert_eq!(t.subsec_nanos(), 589_793_000);
        let mut out = Vec::new();
        Timestamp::from_unix(0, 5_000).write_rfc3339(&mut out);
        assert_eq!(out, b"1970-01-01T00:00:00.000005Z");
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for s in [
            "",
            "-",
            "2025-03-14",
            "2025-03-14T09:26:53",
            "2025-13-14T09:26:53Z",
            "2025-02-29T09:26:53Z",
            "2025-03-14T24:00:00Z",
            "2025-03-14T09:26:53.Z",
            "2025-03-14T09:26:53+0000",
            "Mar 14 09:26:53",
            "1969-12-31T23:59:59Z",
            "2263-01-01T00:00:00Z",
            "2025-03-14T09:26:53Z junk",
        ] {
            assert_eq!(Timestamp::parse_rfc3339(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn unix_nanos_keep_all_nine_digits() {
        let mut out = Vec::new();
        Timestamp::from_unix_nanos(1_732_442_400_123_456_789).write_rfc3339(&mut out);
        assert_eq!(out, b"2024-11-24T10:00:00.123456789Z");
        out.clear();
        Timestamp::from_unix_nanos(1_732_442_400_000_000_001).write_rfc3339(&mut out);
        assert_eq!(out, b"2024-11-24T10:00:00.000000001Z");
        assert_eq!(Timestamp::from_unix_nanos(i64::MAX).unix_nanos(), i64::MAX);
    }

    #[test]
    fn rfc3164_dates_fall_in_the_year_up_to_a_day_after_receipt() {
        let at = |s: &str, received: &str| {
            let received = Timestamp::parse_rfc3339(received.as_bytes()).unwrap();
            Timestamp::from_rfc3164(s.as_bytes(), received).map(|r| {
                r.map(|t| {
                    let mut out = Vec::new();
                    t.write_rfc3339(&mut out);
                    String::from_utf8(out).unwrap()
                })
            })
        };
        let ok = |s: &str| Some(Ok(s.to_owned()));
        assert_eq!(at("Mar 15 11:00:00", "2025-03-14T12:00:00Z"), ok("2025-03-15T11:00:00Z"), "a day ahead");
        assert_eq!(at("Mar 15 13:00:00", "2025-03-14T12:00:00Z"), ok("2024-03-15T13:00:00Z"), "else a year back");
        assert_eq!(at("Feb 29 09:00:00", "2025-01-10T00:00:00Z"), ok("2024-02-29T09:00:00Z"));
        assert_eq!(at("Feb 29 09:00:00", "2024-12-31T23:00:00Z"), ok("2024-02-29T09:00:00Z"));
        assert_eq!(at("Feb 29 00:10:00", "2028-02-28T23:30:00Z"), ok("2028-02-29T00:10:00Z"));
        for received in ["2025-03-14T12:00:00Z", "2026-06-01T00:00:00Z", "2027-12-31T00:00:00Z", "2101-03-01T00:00:00Z"]
        {
            assert_eq!(at("Feb 29 09:00:00", received), Some(Err(NO_LEAP_DAY)), "{received}");
        }
        for not_a_day in ["Apr 31 09:00:00", "Feb 30 09:00:00", "Feb 00 09:00:00"] {
            assert_eq!(at(not_a_day, "2024-03-14T12:00:00Z"), None, "{not_a_day}");
        }
    }

    #[test]
    fn round_trips_every_day_across_centuries() {
        for days in (0..106_000).step_by(7) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
