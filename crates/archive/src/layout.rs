//! Where a frame's lines go: `<app>/<YYYY>/<MM>/<DD>/<HH>.log.zst` under the archive, by the
//! app the receiver knew and the hour (UTC) it received the frame; `.partial` while the hour
//! is open.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use drainpipe_transform::{civil_from_days, days_from_civil};

/// The folder of frames whose app the receiver did not know (a syslog drain names its app
/// per line, by drain token; a Logplex drain URL without `?app=` and an unmapped token).
/// Heroku app names start with a letter, so no app has this name.
pub const UNKNOWN_APP: &str = "_unknown";

/// A finished hour's file name ends so; the open hour's has [`PARTIAL`] after it.
pub const SUFFIX: &str = ".log.zst";
pub const PARTIAL: &str = ".partial";

/// An hour since the epoch (UTC): the unit the archive is cut in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hour(pub u64);

impl Hour {
    pub fn of(time: SystemTime) -> Hour {
        Hour(time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs() / 3600))
    }

    /// When the hour starts, in seconds since the epoch.
    pub fn start_secs(self) -> u64 {
        self.0.saturating_mul(3600)
    }

    /// `YYYY/MM/DD/HH` of the hour.
    fn folders(self) -> (String, String, String, String) {
        let days = i64::try_from(self.0 / 24).unwrap_or(i64::MAX);
        let (y, m, d) = civil_from_days(days);
        (format!("{y:04}"), format!("{m:02}"), format!("{d:02}"), format!("{:02}", self.0 % 24))
    }
}

/// The archive folder of `app`: its name when it is a safe folder name (what Heroku allows
/// and a little more), else [`UNKNOWN_APP`]: a name from a drain URL never makes a path.
pub fn app_folder(app: Option<&str>) -> &str {
    match app {
        Some(a)
            if !a.is_empty()
                && a.len() <= 100
                && !a.starts_with(['.', '_', '-'])
                && a.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)) =>
        {
            a
        }
        _ => UNKNOWN_APP,
    }
}

/// The finished file of `app`'s `hour`, relative to the archive.
pub fn hour_file(app: &str, hour: Hour) -> PathBuf {
    let (y, m, d, h) = hour.folders();
    Path::new(app).join(y).join(m).join(d).join(format!("{h}{SUFFIX}"))
}

/// The open hour's file of a finished file's path.
pub fn partial_of(finished: &Path) -> PathBuf {
    let mut name = finished.as_os_str().to_owned();
    name.push(PARTIAL);
    PathBuf::from(name)
}

/// What an archive file's path (relative to the archive) says: its hour, and whether it is
/// still open. `None` for anything else.
pub fn parse(relative: &Path) -> Option<(Hour, bool)> {
    let parts: Vec<&str> = relative.iter().map(|p| p.to_str()).collect::<Option<_>>()?;
    let [_app, y, m, d, file] = parts[..] else { return None };
    let (hour, partial) = match file.strip_suffix(PARTIAL) {
        Some(f) => (f.strip_suffix(SUFFIX)?, true),
        None => (file.strip_suffix(SUFFIX)?, false),
    };
    let number = |s: &str, len: usize| -> Option<u32> {
        (s.len() == len && s.bytes().all(|b| b.is_ascii_digit())).then(|| s.parse().ok())?
    };
    let (y, m, d, h) = (number(y, 4)?, number(m, 2)?, number(d, 2)?, number(hour, 2)?);
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) || h > 23 {
        return None;
    }
    let days = u64::try_from(days_from_civil(i64::from(y), m, d)).ok()?;
    Some((Hour(days * 24 + u64::from(h)), partial))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn an_hour_is_a_path_and_back() {
        // 2026-12-06T22:41:07Z
        let hour = Hour::of(UNIX_EPOCH + Duration::from_secs(1_796_596_867));
        let file = hour_file("shop", hour);
        assert_eq!(file, Path::new("shop/2026/12/06/22.log.zst"));
        assert_eq!(parse(&file), Some((hour, false)));
        assert_eq!(parse(&partial_of(&file)), Some((hour, true)));
        assert_eq!(parse(Path::new("shop/2026/12/06/22.log")), None);
        assert_eq!(parse(Path::new("shop/2026/13/06/22.log.zst")), None);
    }

    #[test]
    fn only_safe_app_names_make_folders() {
        assert_eq!(app_folder(Some("shop-eu")), "shop-eu");
        for bad in ["..", "../etc", "a/b", "", ".hidden", "_unknown", "é"] {
            assert_eq!(app_folder(Some(bad)), UNKNOWN_APP, "{bad}");
        }
        assert_eq!(app_folder(None), UNKNOWN_APP);
    }
}
