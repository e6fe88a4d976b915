//! The archive on real files: frames back exactly, hours closed, a crash's uncommitted batch
//! cut, a full disk (ENOSPC) survived, retention.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use drainpipe_ingest::{Frame, Position, Protocol};
use drainpipe_spool::RecordId;

use crate::layout::{self, Hour};
use crate::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drainpipe-archive-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn config(dir: &Path) -> ArchiveConfig {
    ArchiveConfig { dir: dir.to_owned(), retention: None, level: DEFAULT_LEVEL }
}

/// 2026-12-06T22:41:07.123456789Z, plus `secs`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::new(1_796_596_867 + secs, 123_456_789)
}

fn logplex(app: Option<&str>, n: usize, received: SystemTime) -> Frame {
    let mut body = Vec::new();
    let mut messages = Vec::new();
    for i in 0..n {
        let msg = format!("<190>1 2026-12-06T22:41:07+00:00 host app web.{i} - line {i} \u{e9}\n");
        body.extend_from_slice(format!("{} ", msg.len()).as_bytes());
        messages.push(body.len()..body.len() + msg.len());
        body.extend_from_slice(msg.as_bytes());
    }
    Frame {
        app: app.map(str::to_owned),
        drain_token: Some("d.0b4c2c6e-6c8a-4f5e-9a39-2f1f0a8d3c11".into()),
        frame_id: Some(format!("frame-{n}")),
        labels: vec![("env".into(), "prod".into()), ("a".into(), "z\"q".into())],
        received_at: received,
        ..Frame::new(Protocol::Logplex, Bytes::from(body), messages)
    }
}

fn record(n: u64) -> RecordId {
    RecordId { segment: 1, offset: n * 100 }
}

/// Every field that makes a document or its id.
fn same(a: &Frame, b: &Frame) -> bool {
    (
        a.protocol,
        &a.body,
        &a.messages,
        &a.cut,
        &a.app,
        &a.drain_token,
        &a.frame_id,
        &a.labels,
        a.received_at,
        a.position,
    ) == (
        b.protocol,
        &b.body,
        &b.messages,
        &b.cut,
        &b.app,
        &b.drain_token,
        &b.frame_id,
        &b.labels,
        b.received_at,
        b.position,
    )
}

fn read_all(path: &Path) -> Vec<Frame> {
    let mut frames = FileFrames::open(path).unwrap();
    std::iter::from_fn(|| frames.next_frame().unwrap()).collect()
}

#[test]
fn frames_come_back_exactly_and_an_hour_is_renamed_into_place_when_it_closes() {
    let d = dir("round-trip");
    let (mut w, recovered) = ArchiveWriter::open(&config(&d), 2).unwrap();
    assert_eq!(recovered, Recovered::default());
    let syslog = Frame {
        cut: vec![(1, 70_000)],
        position: Position::OnStream { stream: u64::MAX - 1, first: 1 << 40 },
        received_at: at(1),
        ..Frame::new(Protocol::Syslog, Bytes::from_static(b"a\nbb\n"), vec![0..1, 2..4])
    };
    let otlp = Frame {
        position: Position::InExport { first_record: 7 },
        received_at: at(2),
        app: Some("shop".into()),
        ..Frame::new(Protocol::OtlpMetrics, Bytes::from_static(&[0, 159, 10, 255]), vec![0..2, 2..4])
    };
    let frames = vec![logplex(Some("shop"), 3, at(0)), syslog, otlp];
    w.write(&frames, record(1)).unwrap();
    let shop = d.join("shop/2026/12/06/22.log.zst");
    let unknown = d.join("_unknown/2026/12/06/22.log.zst");
    assert!(!shop.exists(), "the hour is open");
    let open = read_all(&layout::partial_of(&shop));
    assert!(open.len() == 2 && same(&open[0], &frames[0]) && same(&open[1], &frames[2]));
    w.close_before(Hour::of(at(3600))).unwrap();
    assert!(shop.exists() && unknown.exists() && !layout::partial_of(&shop).exists());
    let back: Vec<Frame> = read_all(&shop).into_iter().chain(read_all(&unknown)).collect();
    assert!(same(&back[0], &frames[0]) && same(&back[1], &frames[2]) && same(&back[2], &frames[1]));
    // What `zstdcat` shows: the body as it came, after the header line.
    let text = zstd::decode_all(fs::File::open(&shop).unwrap()).unwrap();
    assert!(String::from_utf8_lossy(&text).contains("web.2 - line 2 \u{e9}\n"));
    assert_eq!(files_under(&d).unwrap(), vec![unknown, shop]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_batch_not_committed_before_a_crash_is_cut_and_archived_again_once() {
    let d = dir("crash");
    let (mut w, _) = ArchiveWriter::open(&config(&d), 2).unwrap();
    let first = logplex(Some("shop"), 2, at(0));
    w.write(std::slice::from_ref(&first), record(1)).unwrap();
    let partial = layout::partial_of(&d.join("shop/2026/12/06/22.log.zst"));
    let committed = fs::metadata(&partial).unwrap().len();
    // A crash after a batch reached the files, before the state was replaced: a whole zstd
    // frame past the committed end, and an open file the state never listed.
    let uncommitted = zstd::encode_all(&b"{\"drainpipe_archive\":1}"[..], 3).unwrap();
    fs::OpenOptions::new().append(true).open(&partial).unwrap().write_all_at_end(&uncommitted);
    let stray = d.join("other/2026/12/06/22.log.zst.partial");
    fs::create_dir_all(stray.parent().unwrap()).unwrap();
    fs::write(&stray, &uncommitted).unwrap();
    drop(w);
    let (mut w, recovered) = ArchiveWriter::open(&config(&d), 2).unwrap();
    assert_eq!(w.through(), Some(record(1)), "the records after it come again from the spool");
    assert_eq!((recovered.cut_bytes, recovered.removed_partials), (uncommitted.len() as u64, 1));
    assert!(!stray.exists());
    assert_eq!(fs::metadata(&partial).unwrap().len(), committed);
    let second = logplex(Some("shop"), 5, at(5));
    w.write(std::slice::from_ref(&second), record(2)).unwrap();
    let back = read_all(&partial);
    assert!(back.len() == 2 && same(&back[0], &first) && same(&back[1], &second));
    // A state past the spool's segments belongs to a spool that is gone: start over.
    drop(w);
    let (w, recovered) = ArchiveWriter::open(&config(&d), 1).unwrap();
    assert_eq!((w.through(), recovered.spool_replaced), (None, true));
    fs::remove_dir_all(d).unwrap();
}

trait AppendAll {
    fn write_all_at_end(self, bytes: &[u8]);
}

impl AppendAll for fs::File {
    fn write_all_at_end(mut self, bytes: &[u8]) {
        std::io::Write::write_all(&mut self, bytes).unwrap();
    }
}

#[test]
fn a_full_disk_fails_the_batch_and_the_same_batch_lands_once_when_there_is_room() {
    let d = dir("enospc");
    let (mut w, _) = ArchiveWriter::open(&config(&d), 2).unwrap();
    let first = logplex(Some("shop"), 2, at(0));
    w.write(std::slice::from_ref(&first), record(1)).unwrap();
    // The next hour's file is on a device that is always full: writes fail with ENOSPC.
    let next = layout::partial_of(&d.join("shop/2026/12/06/23.log.zst"));
    std::os::unix::fs::symlink("/dev/full", &next).unwrap();
    let batch = vec![logplex(Some("shop"), 3, at(30)), logplex(Some("shop"), 4, at(3600))];
    let failures = metrics::WRITE_FAILURES.get();
    let err = w.write(&batch, record(3)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "{err}");
    assert_eq!(metrics::WRITE_FAILURES.get(), failures + 1);
    assert_eq!(w.through(), Some(record(1)), "nothing of the batch is committed");
    let err = w.write(&batch, record(3)).unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::StorageFull, "still full");
    // Room again: the same batch is written, and each frame is there once.
    fs::remove_file(&next).unwrap();
    w.write(&batch, record(3)).unwrap();
    assert_eq!(w.through(), Some(record(3)));
    let this_hour = read_all(&layout::partial_of(&d.join("shop/2026/12/06/22.log.zst")));
    assert!(this_hour.len() == 2 && same(&this_hour[0], &first) && same(&this_hour[1], &batch[0]));
    let next_hour = read_all(&next);
    assert!(next_hour.len() == 1 && same(&next_hour[0], &batch[1]));
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn a_frame_after_its_hour_closed_is_appended_to_the_finished_file() {
    let d = dir("late");
    let (mut w, _) = ArchiveWriter::open(&config(&d), 2).unwrap();
    w.write(&[logplex(Some("shop"), 1, at(0))], record(1)).unwrap();
    w.close_before(Hour::of(at(3600))).unwrap();
    w.write(&[logplex(Some("shop"), 2, at(1))], record(2)).unwrap();
    let finished = d.join("shop/2026/12/06/22.log.zst");
    assert!(!layout::partial_of(&finished).exists());
    assert_eq!(read_all(&finished).iter().map(|f| f.messages.len()).collect::<Vec<_>>(), [1, 2]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn retention_removes_finished_hours_past_it_and_their_empty_folders() {
    let d = dir("retention");
    let mut cfg = config(&d);
    let (mut w, _) = ArchiveWriter::open(&cfg, 2).unwrap();
    let days = |n: u64| at(n * 86_400);
    w.write(&[logplex(Some("old"), 1, days(0)), logplex(Some("shop"), 1, days(0))], record(1)).unwrap();
    w.close_before(Hour::of(days(1))).unwrap();
    w.write(&[logplex(Some("shop"), 1, days(9))], record(2)).unwrap();
    drop(w);
    cfg.retention = Some(Duration::from_secs(5 * 86_400));
    let (mut w, _) = ArchiveWriter::open(&cfg, 2).unwrap();
    w.sweep(days(9)).unwrap();
    assert!(!d.join("old").exists(), "an app whose hours are all gone leaves no folder");
    assert!(!d.join("shop/2026/12/06").exists());
    assert_eq!(files_under(&d).unwrap(), vec![layout::partial_of(&d.join("shop/2026/12/15/22.log.zst"))]);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn damaged_archives_are_errors_not_panics() {
    let mut encoded = Vec::new();
    format::encode(&logplex(Some("shop"), 2, at(0)), &mut encoded);
    for n in 0..encoded.len() {
        let mut input = &encoded[..n];
        let read = format::read(&mut input);
        assert!(n == 0 && matches!(read, Ok(None)) || read.is_err(), "prefix of {n} bytes");
    }
    let huge =
        br#"{"drainpipe_archive":1,"protocol":"logplex","received_ns":0,"messages":[],"bytes":18446744073709551615}
x"#;
    for bad in [&b"{\"drainpipe_archive\":2}\n"[..], b"{}\n", b"not json\n", huge] {
        assert!(format::read(&mut &bad[..]).is_err());
    }
}
