//! What is measured and how: a process's CPU time and memory from /proc, latency percentiles,
//! and the lag from sending a line to its being stored.

use std::time::{Duration, Instant};

/// CPU seconds (user + system, every thread) a process has used so far.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces; fields after it are counted from its closing ')'.
    let after = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    // Fields 14 and 15 of stat(5) (utime, stime) are the 12th and 13th after the name.
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / clock_ticks() as f64)
}

fn clock_ticks() -> u64 {
    static TICKS: std::sync::OnceLock<u64> = std::sync::OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8(o.stdout).ok())
            .and_then(|s| s.trim().parse().ok())
            .unwrap_or(100)
    })
}

/// Resident memory now and at its peak (`VmRSS`, `VmHWM`), in bytes.
pub fn memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(key))?;
        line[key.len()..].trim().trim_end_matches("kB").trim().parse::<u64>().ok().map(|k| k * 1024)
    };
    Some((kib("VmRSS:")?, kib("VmHWM:")?))
}

/// The `q` quantile (0..=1) of sorted values.
pub fn quantile(sorted: &[Duration], q: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let i = ((sorted.len() as f64 * q).ceil() as usize).clamp(1, sorted.len()) - 1;
    Some(sorted[i])
}

/// Drain-to-stored lag of each frame, from when it was sent (`sent`: send time and lines, in
/// sending order) to when the sink's count of stored lines (`stored`: time and count so far)
/// first covered it. Lines are taken to be stored in the order they were sent: drainpipe's
/// queue and spool are FIFO, and with one count per bulk request the error is at most one
/// request's worth.
pub fn lags(sent: &[(Instant, u64)], stored: &[(Instant, u64)]) -> Vec<Duration> {
    let mut out = Vec::with_capacity(sent.len());
    let mut cumulative = 0;
    let mut s = 0;
    for &(at, lines) in sent {
        cumulative += lines;
        while s < stored.len() && stored[s].1 < cumulative {
            s += 1;
        }
        let Some(&(when, _)) = stored.get(s) else { break };
        out.push(when.saturating_duration_since(at));
    }
    out
}

/// The sum of every sample of a metric (each label set) in a Prometheus text page.
pub fn sample_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(name) && l[name.len()..].starts_with([' ', '{']))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A Prometheus histogram's cumulative buckets, (upper bound, count), from `/metrics` text.
pub fn histogram(text: &str, name: &str) -> Vec<(f64, u64)> {
    let prefix = format!("{name}_bucket{{le=\"");
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&prefix)?;
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" { f64::INFINITY } else { le.parse().ok()? };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The upper bound of the bucket holding the `q` quantile of what was observed between two
/// scrapes of one histogram.
pub fn bucket_quantile(before: &[(f64, u64)], after: &[(f64, u64)], q: f64) -> Option<f64> {
    let counts: Vec<(f64, u64)> =
        after.iter().map(|&(le, n)| (le, n - before.iter().find(|b| b.0 == le).map_or(0, |b| b.1))).collect();
    let total = counts.last()?.1;
    let rank = (total as f64 * q).ceil() as u64;
    (total > 0).then(|| counts.iter().find(|c| c.1 >= rank).map_or(f64::INFINITY, |c| c.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_quantile_is_read_from_the_buckets_filled_between_two_scrapes() {
        let scrape = |a: u64, b: u64, c: u64| {
            format!(
                "# TYPE x histogram\nx_bucket{{le=\"0.001\"}} {a}\nx_bucket{{le=\"0.01\"}} {b}\nx_bucket{{le=\"+Inf\"}} {c}\nx_sum 1\n"
            )
        };
        let before = histogram(&scrape(5, 5, 5), "x");
        assert_eq!(before, [(0.001, 5), (0.01, 5), (f64::INFINITY, 5)]);
        // Since then: 90 under 1 ms, 9 under 10 ms, 1 above.
        let after = histogram(&scrape(95, 104, 105), "x");
        assert_eq!(bucket_quantile(&before, &after, 0.5), Some(0.001));
        assert_eq!(bucket_quantile(&before, &after, 0.99), Some(0.01));
        assert_eq!(bucket_quantile(&before, &after, 0.999), Some(f64::INFINITY));
        assert_eq!(bucket_quantile(&after, &after, 0.5), None);
    }

    #[test]
    fn quantiles_pick_the_value_at_or_above_the_rank() {
        let v: Vec<Duration> = (1..=1000).map(Duration::from_millis).collect();
        assert_eq!(quantile(&v, 0.5), Some(Duration::from_millis(500)));
        assert_eq!(quantile(&v, 0.99), Some(Duration::from_millis(990)));
        assert_eq!(quantile(&v, 0.999), Some(Duration::from_millis(999)));
        assert_eq!(quantile(&v, 1.0), Some(Duration::from_millis(1000)));
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn a_frame_is_stored_when_the_count_first_covers_its_lines() {
        let t = Instant::now();
        let ms = |n| t + Duration::from_millis(n);
        let sent = [(ms(0), 10), (ms(1), 10), (ms(2), 10)];
        let stored = [(ms(5), 5), (ms(7), 20), (ms(30), 29)];
        // The third frame's last line is never counted: it has no lag (it is lost, counted apart).
        assert_eq!(lags(&sent, &stored), [Duration::from_millis(7), Duration::from_millis(6)]);
    }

    #[test]
    fn this_process_can_be_measured() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).is_some());
        let (rss, peak) = memory(pid).unwrap();
        assert!(rss > 0 && peak >= rss);
    }
}
