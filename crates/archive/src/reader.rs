//! Archive files read back: the files under the paths given, and each file's frames, exactly
//! as they were archived.

use std::fs::File;
use std::io::{self, BufReader};
use std::path::{Path, PathBuf};

use drainpipe_ingest::Frame;

use crate::format;
use crate::layout::{PARTIAL, SUFFIX};

/// Whether `path` names an archive file (finished or open).
pub fn is_archive_file(path: &Path) -> bool {
    path.to_str().is_some_and(|p| p.ends_with(SUFFIX) || p.ends_with(&format!("{SUFFIX}{PARTIAL}")))
}

/// Every archive file under `path` (itself when it is a file), in path order: by app, then
/// by hour.
pub fn files_under(path: &Path) -> io::Result<Vec<PathBuf>> {
    if !path.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut out = Vec::new();
    let mut folders = vec![path.to_owned()];
    while let Some(folder) = folders.pop() {
        for entry in std::fs::read_dir(&folder)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                folders.push(entry.path());
            } else if is_archive_file(&entry.path()) {
                out.push(entry.path());
            }
        }
    }
    out.sort();
    Ok(out)
}

/// The frames of one archive file, in the order they were written.
pub struct FileFrames {
    input: BufReader<zstd::Decoder<'static, BufReader<File>>>,
}

impl std::fmt::Debug for FileFrames {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileFrames").finish_non_exhaustive()
    }
}

impl FileFrames {
    pub fn open(path: &Path) -> io::Result<FileFrames> {
        let decoder = zstd::Decoder::new(File::open(path)?)?;
        Ok(FileFrames { input: BufReader::with_capacity(256 * 1024, decoder) })
    }

    /// The next frame; `Ok(None)` at the end. A file that ends inside a zstd frame (one being
    /// written now, or damaged) is an error after the frames before it.
    pub fn next_frame(&mut self) -> io::Result<Option<Frame>> {
        format::read(&mut self.input)
    }
}
