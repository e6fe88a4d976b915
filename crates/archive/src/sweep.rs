//! One walk of the archive: what it holds (files, bytes, the oldest hour, the open files), and
//! finished hours past the retention removed, with the folders they leave empty.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::layout::{self, Hour};
use crate::metrics;

/// What a walk found (after removing what it removed).
#[derive(Debug, Default)]
pub(crate) struct Found {
    pub(crate) files: u64,
    pub(crate) bytes: u64,
    pub(crate) oldest: Option<Hour>,
    /// `.partial` files, relative to the archive.
    pub(crate) partials: Vec<PathBuf>,
}

/// Walks `dir` (`<app>/<YYYY>/<MM>/<DD>/<HH>.log.zst[.partial]`; anything else is left alone),
/// removing finished files of hours before `keep_from`.
pub(crate) fn sweep(dir: &Path, keep_from: Option<Hour>) -> io::Result<Found> {
    let mut found = Found::default();
    walk(dir, Path::new(""), 0, keep_from, &mut found)?;
    Ok(found)
}

fn walk(dir: &Path, relative: &Path, depth: usize, keep_from: Option<Hour>, found: &mut Found) -> io::Result<()> {
    let here = dir.join(relative);
    let mut entries: Vec<_> = fs::read_dir(&here)?.collect::<io::Result<_>>()?;
    entries.sort_by_key(fs::DirEntry::file_name);
    for entry in entries {
        let path = relative.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() && depth < 4 {
            walk(dir, &path, depth + 1, keep_from, found)?;
            // A folder retention emptied goes too (not the archive itself).
            let _ = fs::remove_dir(dir.join(&path));
        } else if kind.is_file() && depth == 4 {
            let Some((hour, partial)) = layout::parse(&path) else { continue };
            if !partial && keep_from.is_some_and(|k| hour < k) {
                fs::remove_file(entry.path())?;
                metrics::REMOVED.inc();
                continue;
            }
            found.files += 1;
            found.bytes += entry.metadata()?.len();
            found.oldest = Some(found.oldest.map_or(hour, |o| o.min(hour)));
            if partial {
                found.partials.push(path);
            }
        }
    }
    Ok(())
}
