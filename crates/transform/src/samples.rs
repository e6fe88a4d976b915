//! Metrics lines: log-runtime-metrics (`heroku web.1`), Heroku Postgres and Heroku Redis.
//! Each `sample#NAME=VALUE[UNIT]` (also `count#`, `measure#`) becomes `heroku.metrics.NAME`,
//! `-` and `.` in NAME turned into `_`. One field has one unit in every dataset: sizes become
//! whole bytes (`kB` = 1,024, `MB` = 1,048,576, `GB` = 1,073,741,824), times milliseconds (`s`
//! × 1,000); counts, pages and percentages stay as written.

use std::borrow::Cow;

use crate::document::MAX_METRICS;
use crate::keys::Distinct;
use crate::logfmt;

#[derive(Debug, Default)]
pub(crate) struct Samples<'a> {
    /// `source=`: the dyno or the add-on's attachment name.
    pub source: Option<Cow<'a, str>>,
    /// `addon=`.
    pub addon: Option<Cow<'a, str>>,
    /// `dyno=heroku.…` on runtime metrics.
    pub dyno_id: Option<Cow<'a, str>>,
    /// (normalised name, JSON number text), each name once (the last value wins).
    pub values: Distinct<String, Number, MAX_METRICS>,
    pub failure: Option<String>,
}

/// A number ready to be written as JSON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Number {
    /// Already valid JSON number text, written as is (keeps `21.00` and large integers exact).
    Text(String),
    Float(f64),
}

/// Unit suffixes Heroku writes, as documented in docs/fields.md.
const UNITS: [&str; 9] = ["bytes", "pages", "kB", "KB", "MB", "GB", "ms", "s", "%"];

impl<'a> Samples<'a> {
    pub(crate) fn parse(msg: &'a str) -> Samples<'a> {
        let mut s = Samples::default();
        for pair in logfmt::pairs(msg) {
            let name = ["sample#", "count#", "measure#"].iter().find_map(|p| pair.key.strip_prefix(p));
            match (pair.key, name) {
                (_, Some(name)) => s.push(name, &pair.value),
                ("source", None) => s.source = Some(pair.value).filter(|v| !v.is_empty()),
                ("addon", None) => s.addon = Some(pair.value).filter(|v| !v.is_empty()),
                ("dyno", None) => s.dyno_id = Some(pair.value).filter(|v| !v.is_empty()),
                _ => {}
            }
        }
        s
    }

    fn push(&mut self, raw_name: &str, value: &str) {
        let mut name: String = raw_name.chars().map(|c| if c == '-' || c == '.' { '_' } else { c }).collect();
        if crate::json::is_blank_name(&name) {
            return;
        }
        // `heroku.metrics.source` is the source= text; a sample of that name must not land on it.
        if name == "source" {
            name.push_str("_sample");
        }
        let Some(number) = number(value) else {
            if self.failure.is_none() {
                self.failure = Some(format!("metric {raw_name}={value:?} is not a number"));
            }
            return;
        };
        self.values.insert(name, number);
    }
}

/// `21.00MB` → `22020096`; `3944456kB` → `4039122944`; `2.5s` → `2500`; `0.9239` → `0.9239`;
/// `7` → `7`. Only finite numbers, and whole bytes that fit a `long`: Elasticsearch refuses a
/// field of `1e400` (Infinity), which would cost the whole document.
fn number(value: &str) -> Option<Number> {
    let (digits, unit) = UNITS.iter().find_map(|u| Some((value.strip_suffix(u)?, *u))).unwrap_or((value, ""));
    let f: f64 = digits.parse().ok().filter(|f: &f64| f.is_finite())?;
    let bytes = match unit {
        "bytes" => Some(1.0),
        "kB" | "KB" => Some(1024.0),
        "MB" => Some(1_048_576.0),
        "GB" => Some(1_073_741_824.0),
        _ => None,
    };
    if let Some(scale) = bytes {
        let b = (f * scale).round();
        // Exact in a double and in a `long`.
        return (b.abs() <= 9_007_199_254_740_992.0).then(|| Number::Text(format!("{}", b as i64)));
    }
    if unit == "s" {
        // `1e307s` is a finite number of seconds but not of milliseconds: `inf` is not JSON.
        return Some(f * 1000.0).filter(|ms| ms.is_finite()).map(Number::Float);
    }
    if is_json_number(digits) {
        return Some(Number::Text(digits.to_owned()));
    }
    Some(Number::Float(f))
}

/// `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`
fn is_json_number(s: &str) -> bool {
    let b = s.as_bytes();
    // The index after the run of digits starting at `i`.
    let digits = |i: usize| i + b.get(i..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count();
    let int_start = usize::from(b.first() == Some(&b'-'));
    let mut i = digits(int_start);
    if i == int_start || (i - int_start > 1 && b.get(int_start) == Some(&b'0')) {
        return false;
    }
    if b.get(i) == Some(&b'.') {
        let end = digits(i + 1);
        if end == i + 1 {
            return false;
        }
        i = end;
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        let sign = usize::from(matches!(b.get(i + 1), Some(b'+' | b'-')));
        let end = digits(i + 1 + sign);
        if end == i + 1 + sign {
            return false;
        }
        i = end;
    }
    i == b.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_of_only_whitespace_are_left_out() {
        // Found by fuzz/regressions/samples: Elasticsearch refuses such a field name.
        let s = Samples::parse("sample#\t=1 sample#\u{3000}=2 count#\u{1f}=3 sample#ok=4");
        let names: Vec<&str> = s.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["ok"]);
    }

    fn text(s: &str) -> Number {
        Number::Text(s.to_owned())
    }

    #[test]
    fn runtime_metrics() {
        let s = Samples::parse("source=web.1 dyno=heroku.2808254.d97d sample#memory_total=21.00MB sample#memory_pgpgin=348836pages sample#load_avg_1m=2.46");
        assert_eq!(s.source.as_deref(), Some("web.1"));
        assert_eq!(s.dyno_id.as_deref(), Some("heroku.2808254.d97d"));
        assert_eq!(
            s.values,
            vec![
                ("memory_total".into(), text("22020096")),
                ("memory_pgpgin".into(), text("348836")),
                ("load_avg_1m".into(), text("2.46"))
            ]
        );
    }

    #[test]
    fn addon_metrics_normalise_names() {
        let s = Samples::parse("source=REDIS addon=redis-metric-98068 sample#active-connections=404 sample#memory-total=15664264kB count#evicted.keys=0 measure#x=.5 sample#bad=n/a sample#huge=1e400");
        assert_eq!(s.addon.as_deref(), Some("redis-metric-98068"));
        let names: Vec<&str> = s.values.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["active_connections", "memory_total", "evicted_keys", "x"]);
        assert_eq!(s.values[3].1, Number::Float(0.5));
        assert_eq!(s.failure.as_deref(), Some("metric bad=\"n/a\" is not a number"));
        assert!(s.values.iter().all(|(n, _)| n != "huge"), "1e400 is not a double Elasticsearch takes");
    }

    #[test]
    fn one_unit_per_field() {
        let value = |v: &str| number(v);
        assert_eq!(value("21.00MB"), Some(text("22020096")));
        assert_eq!(value("3944456kB"), Some(text("4039122944")), "Postgres kB and dyno MB meet in bytes");
        assert_eq!(value("1.5GB"), Some(text("1610612736")));
        assert_eq!(value("512bytes"), Some(text("512")));
        assert_eq!(value("2.5s"), Some(Number::Float(2500.0)));
        assert_eq!(value("12ms"), Some(text("12")));
        assert_eq!(value("348836pages"), Some(text("348836")));
        assert_eq!(value("99999999999999999999MB"), None, "past what a long holds exactly");
    }

    #[test]
    fn json_numbers() {
        for ok in ["0", "7", "-1", "21.00", "1e5", "1.5E-3"] {
            assert!(is_json_number(ok), "{ok}");
        }
        for bad in ["", "-", "007", ".5", "5.", "1e", "+1", "NaN", "1_000"] {
            assert!(!is_json_number(bad), "{bad}");
        }
    }
}
