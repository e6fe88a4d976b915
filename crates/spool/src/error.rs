use std::path::PathBuf;

/// What can go wrong with the spool.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    #[error("spool full: {used} of {max} bytes in use")]
    Full { used: u64, max: u64 },
    #[error("spool I/O on {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("record of {len} bytes is larger than a segment ({segment_bytes} bytes)")]
    TooLarge { len: usize, segment_bytes: u64 },
    #[error("a spool of {max_bytes} bytes does not hold two segments of {segment_bytes} bytes (the largest record)")]
    TooSmall { max_bytes: u64, segment_bytes: u64 },
    #[error("spool closed")]
    Closed,
}

impl SpoolError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> SpoolError {
        SpoolError::Io { path: path.into(), source }
    }
}
