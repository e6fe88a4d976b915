//! The spool's promises, tested on real files: order, bounds, acknowledgement and deletion,
//! recovery after a torn write, and nothing lost when the process is killed mid-append.

use std::io::{BufRead, Write as _};
use std::time::Duration;

use super::*;

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("drainpipe-spool-{name}-{}", std::process::id()));
    let _ = fs::remove_dir_all(&d);
    d
}

fn config(dir: &Path) -> SpoolConfig {
    SpoolConfig { dir: dir.to_owned(), max_bytes: 1 << 20, segment_bytes: 256, fsync: Fsync::EveryBatch }
}

fn payload(i: usize) -> Bytes {
    Bytes::from(format!("record {i:04} {}", "x".repeat(i % 40)))
}

async fn read_n(reader: &mut SpoolReader, n: usize) -> Vec<(RecordId, Bytes)> {
    let mut out = Vec::new();
    for _ in 0..n {
        let next = tokio::time::timeout(Duration::from_secs(5), reader.next()).await.expect("a record in time");
        out.push(next.expect("open").expect("readable"));
    }
    out
}

fn segment_files(dir: &Path) -> usize {
    list_segments(dir).unwrap().len()
}

#[tokio::test]
async fn records_come_out_in_order_across_segments_and_acks_delete_segments() {
    let d = dir("order");
    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!(recovery, Recovery::default());
    for i in 0..50 {
        spool.append(payload(i)).await.unwrap();
    }
    let got = read_n(&mut reader, 50).await;
    assert_eq!(got.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(), (0..50).map(payload).collect::<Vec<_>>());
    assert!(segment_files(&d) > 5, "256-byte segments roll over");
    let used = spool.used_bytes();
    // Acknowledge out of order; segments go only when every record in them is done.
    for (id, _) in got.iter().rev() {
        spool.ack(*id);
    }
    assert!(spool.used_bytes() < used);
    assert_eq!(segment_files(&d), 1, "only the segment being written remains");
    assert_eq!(spool.oldest_unacked_age(), None);
    fs::remove_dir_all(d).unwrap();
}

/// A record appended in parts is read back whole, and survives a restart's check like any
/// other; many at once (gathered into batches) each come out whole, and an append made after
/// them all comes out last.
#[tokio::test]
async fn a_record_appended_in_parts_reads_back_as_one() {
    let d = dir("parts");
    let cfg = SpoolConfig { segment_bytes: 1 << 20, ..config(&d) };
    let parts = |i: usize| [payload(i), Bytes::from(format!("|body {i}|{}", "y".repeat(i % 7)))];
    let whole = |i: usize| {
        let [a, b] = parts(i);
        Bytes::from([&a[..], &b[..]].concat())
    };
    {
        let (spool, mut reader, _) = Spool::open(cfg.clone()).unwrap();
        let mut appends = tokio::task::JoinSet::new();
        for i in 0..200 {
            let spool = spool.clone();
            appends.spawn(async move { spool.append_parts(parts(i)).await });
        }
        while let Some(done) = appends.join_next().await {
            done.unwrap().unwrap();
        }
        spool.append_parts([Bytes::new(), Bytes::from_static(b"second part only")]).await.unwrap();
        let mut got: Vec<Bytes> = read_n(&mut reader, 201).await.into_iter().map(|(_, b)| b).collect();
        let mut want: Vec<Bytes> = (0..200).map(whole).chain([Bytes::from_static(b"second part only")]).collect();
        assert_eq!(got.last(), want.last());
        got.sort();
        want.sort();
        assert_eq!(got, want);
    }
    let (_spool, _reader, recovery) = Spool::open(cfg).unwrap();
    assert_eq!((recovery.records, recovery.torn_segments, recovery.corrupt_regions), (201, 0, 0));
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn each_reader_reads_every_record_and_a_segment_waits_for_all_of_them() {
    let d = dir("readers");
    let (spool, mut readers, _) = Spool::open_readers(config(&d), 2).unwrap();
    let (mut fast, mut slow) = (readers.remove(0), readers.remove(0));
    assert_eq!((fast.index(), slow.index()), (0, 1));
    for i in 0..30 {
        spool.append(payload(i)).await.unwrap();
    }
    let first = read_n(&mut fast, 30).await;
    for (id, _) in &first {
        spool.ack_by(0, *id);
    }
    // The first reader is done with every record; the second has read none of them.
    assert_eq!(spool.unacked_records(), 30);
    let files = segment_files(&d);
    assert!(files > 5, "nothing is deleted while a reader still needs it");
    let second = read_n(&mut slow, 30).await;
    assert_eq!(first, second, "the same records, with the same ids, in the same order");
    for (id, _) in &second[..15] {
        spool.ack_by(1, *id);
    }
    assert!(segment_files(&d) < files, "segments both have acknowledged go");
    assert!(spool.unacked_records() > 0 && spool.unacked_records() <= 15);
    for (id, _) in &second[15..] {
        spool.ack_by(1, *id);
    }
    assert_eq!(spool.unacked_records(), 0);
    assert_eq!(segment_files(&d), 1, "only the segment being written remains");
    // Acknowledgements are not persisted: both readers get what is left (the segment that was
    // being written) after a restart, and appends go to a segment after every old one.
    let last = spool.writing_segment();
    drop((spool, fast, slow));
    let (spool, mut readers, recovery) = Spool::open_readers(config(&d), 2).unwrap();
    assert!(recovery.records > 0 && recovery.records < 30);
    assert!(spool.writing_segment() > last);
    let again = read_n(&mut readers[1], recovery.records as usize).await;
    assert_eq!(again[..], second[30 - again.len()..]);
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn a_full_spool_refuses_and_recovers_when_records_are_acknowledged() {
    let d = dir("full");
    let cfg = SpoolConfig { max_bytes: 1000, segment_bytes: 200, ..config(&d) };
    let (spool, mut reader, _) = Spool::open(cfg).unwrap();
    let mut accepted = 0;
    let full = loop {
        match spool.append(Bytes::from(vec![b'a'; 84])).await {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
    };
    assert!(matches!(full, SpoolError::Full { max: 1000, .. }), "{full}");
    assert_eq!(accepted, 10, "exactly max_bytes worth of 100-byte records");
    for (id, _) in read_n(&mut reader, accepted).await {
        spool.ack(id);
    }
    spool.append(Bytes::from_static(b"room again")).await.unwrap();
    assert!(matches!(spool.append(Bytes::from(vec![0; 300])).await, Err(SpoolError::TooLarge { .. })));
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn unacknowledged_records_are_replayed_after_a_restart() {
    let d = dir("replay");
    {
        let (spool, mut reader, _) = Spool::open(config(&d)).unwrap();
        for i in 0..20 {
            spool.append(payload(i)).await.unwrap();
        }
        let got = read_n(&mut reader, 20).await;
        for (id, _) in &got[..5] {
            spool.ack(*id);
        }
        spool.close();
        assert!(reader.next().await.is_none(), "the reader ends after close");
    }
    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!(recovery.torn_segments, 0);
    let replayed = read_n(&mut reader, recovery.records as usize).await;
    let texts: Vec<Bytes> = replayed.iter().map(|(_, b)| b.clone()).collect();
    // At least every unacknowledged record comes back, in order, and nothing else is invented.
    assert!(texts.len() >= 15 && texts.len() <= 20, "{}", texts.len());
    assert_eq!(texts[texts.len() - 15..], (5..20).map(payload).collect::<Vec<_>>()[..]);
    spool.append(Bytes::from_static(b"after restart")).await.unwrap();
    assert_eq!(read_n(&mut reader, 1).await[0].1, Bytes::from_static(b"after restart"));
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn a_torn_tail_is_cut_off_and_everything_before_it_kept() {
    let d = dir("torn");
    {
        let cfg = SpoolConfig { segment_bytes: 1 << 20, ..config(&d) };
        let (spool, _reader, _) = Spool::open(cfg).unwrap();
        for i in 0..10 {
            spool.append(payload(i)).await.unwrap();
        }
        spool.close();
    }
    // A crash in the middle of writing record 11: half a header and payload.
    let (_, path) = list_segments(&d).unwrap().pop().unwrap();
    let mut partial = Vec::new();
    record::encode(&mut partial, b"never acknowledged", 1);
    OpenOptions::new().append(true).open(&path).unwrap().write_all(&partial[..partial.len() / 2]).unwrap();

    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!((recovery.records, recovery.torn_segments), (10, 1));
    let got = read_n(&mut reader, 10).await;
    assert_eq!(got.iter().map(|(_, b)| b.clone()).collect::<Vec<_>>(), (0..10).map(payload).collect::<Vec<_>>());
    spool.append(Bytes::from_static(b"next")).await.unwrap();
    assert_eq!(read_n(&mut reader, 1).await[0].1, Bytes::from_static(b"next"));
    fs::remove_dir_all(d).unwrap();
}

/// Writes records `0..n` to a spool in `d` (closed afterwards), returning each record's
/// (segment file, offset, encoded length).
async fn write_records(d: &Path, cfg: SpoolConfig, n: usize) -> Vec<(PathBuf, u64, u64)> {
    let (spool, _reader, _) = Spool::open(cfg).unwrap();
    let mut at = Vec::new();
    for i in 0..n {
        let id = spool.append(payload(i)).await.unwrap();
        at.push((segment_path(d, id.segment), id.offset, (record::HEADER + payload(i).len()) as u64));
    }
    spool.close();
    at
}

fn flip(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x5a;
    fs::write(path, bytes).unwrap();
}

/// Reads until `expected` records came out or the reader ends (closed spool).
async fn read_all(reader: &mut SpoolReader) -> Vec<(RecordId, Bytes)> {
    let mut out = Vec::new();
    while let Ok(Some(next)) = tokio::time::timeout(Duration::from_millis(300), reader.next()).await {
        out.push(next.expect("readable"));
    }
    out
}

/// Acknowledges `got`, then appends and reads one more record, so the reader leaves every
/// segment it had read.
async fn ack_all_and_move_on(spool: &Spool, reader: &mut SpoolReader, got: &[(RecordId, Bytes)]) {
    for (id, _) in got {
        spool.ack(*id);
    }
    spool.append(Bytes::from_static(b"next")).await.unwrap();
    read_n(reader, 1).await;
}

#[tokio::test]
async fn a_damaged_record_mid_segment_costs_only_itself() {
    let d = dir("midsegment");
    let cfg = SpoolConfig { segment_bytes: 1 << 20, ..config(&d) };
    let at = write_records(&d, cfg.clone(), 10).await;
    let (path, offset, len) = &at[4];
    flip(path, offset + len / 2);
    let (spool, mut reader, recovery) = Spool::open(cfg).unwrap();
    assert_eq!((recovery.records, recovery.torn_segments, recovery.corrupt_regions), (9, 0, 1));
    spool.close();
    let got: Vec<Bytes> = read_all(&mut reader).await.into_iter().map(|(_, b)| b).collect();
    let want: Vec<Bytes> = (0..10).filter(|&i| i != 4).map(payload).collect();
    assert_eq!(got, want, "every record but the damaged one, in order (before: records 5 to 9 were lost)");
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn a_damaged_record_in_an_older_segment_is_skipped_and_its_segment_still_deleted() {
    let d = dir("oldsegment");
    let at = write_records(&d, config(&d), 40).await;
    let (path, offset, _) = &at[7];
    assert_ne!(path, &at[39].0, "the damage is in an older segment");
    flip(path, offset + 2);
    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    // Mid-segment it is skipped; as its segment's last record it is cut like a torn tail.
    assert_eq!(recovery.corrupt_regions + recovery.torn_segments, 1);
    let got = read_n(&mut reader, 39).await;
    let texts: Vec<Bytes> = got.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(texts, (0..40).filter(|&i| i != 7).map(payload).collect::<Vec<_>>());
    ack_all_and_move_on(&spool, &mut reader, &got).await;
    assert_eq!(segment_files(&d), 1, "every segment the reader passed is deleted, the damaged one too");
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn damage_found_while_reading_costs_only_the_damaged_record() {
    let d = dir("whilereading");
    let (spool, mut reader, _) = Spool::open(config(&d)).unwrap();
    let mut at = Vec::new();
    for i in 0..30 {
        let id = spool.append(payload(i)).await.unwrap();
        at.push(id);
    }
    // Damaged on disk after it was written, before the reader got there.
    let damaged = at[12];
    flip(&segment_path(&d, damaged.segment), damaged.offset + 1);
    let got = read_n(&mut reader, 29).await;
    let texts: Vec<Bytes> = got.iter().map(|(_, b)| b.clone()).collect();
    assert_eq!(texts, (0..30).filter(|&i| i != 12).map(payload).collect::<Vec<_>>());
    ack_all_and_move_on(&spool, &mut reader, &got).await;
    assert_eq!(segment_files(&d), 1, "the damaged record does not keep its segment on disk");
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn damage_anywhere_costs_only_the_records_it_touches() {
    let d = dir("anywhere");
    let cfg = SpoolConfig { segment_bytes: 1 << 20, ..config(&d) };
    let at = write_records(&d, cfg.clone(), 6).await;
    let (path, _, _) = &at[0];
    let pristine = fs::read(path).unwrap();
    for byte in 0..pristine.len() as u64 {
        fs::write(path, &pristine).unwrap();
        flip(path, byte);
        let (spool, mut reader, _) = Spool::open(cfg.clone()).unwrap();
        spool.close();
        let got: Vec<Bytes> = read_all(&mut reader).await.into_iter().map(|(_, b)| b).collect();
        let touched = at.iter().position(|(_, o, l)| byte >= *o && byte < o + l).unwrap();
        let want: Vec<Bytes> = (0..6).filter(|&i| i != touched).map(payload).collect();
        assert_eq!(got, want, "a flip at byte {byte} (record {touched})");
        drop(spool);
    }
    fs::remove_dir_all(d).unwrap();
}

/// A damaged record whose body is `00 00 08 00` over and over (a plausible 512 KiB length every
/// fourth byte) is searched past in work linear in its size: the bytes checksummed are counted,
/// not timed (checking each offset in turn hashed about 340 GB for these 3 MiB).
#[tokio::test]
async fn damage_in_a_crafted_record_is_searched_past_in_linear_work() {
    let d = dir("crafted");
    let cfg = SpoolConfig { max_bytes: 64 << 20, segment_bytes: 16 << 20, ..config(&d) };
    let body: Vec<u8> = [0u8, 0, 8, 0].iter().cycle().take(3 << 20).copied().collect();
    let (path, offset) = {
        let (spool, _reader, _) = Spool::open(cfg.clone()).unwrap();
        let id = spool.append(Bytes::from(body)).await.unwrap();
        spool.append(Bytes::from_static(b"after the damage")).await.unwrap();
        spool.close();
        (segment_path(&d, id.segment), id.offset)
    };
    flip(&path, offset + 1000);
    let file_len = fs::metadata(&path).unwrap().len();
    let (before, _) = crc::work::so_far();
    let (spool, mut reader, recovery) = Spool::open(cfg).unwrap();
    let (after, _) = crc::work::so_far();
    assert_eq!((recovery.records, recovery.torn_segments, recovery.corrupt_regions), (1, 0, 1));
    assert!(after - before <= 40 * file_len, "{} bytes checksummed for a {file_len}-byte segment", after - before);
    // The reader meets the damage too, and searches past it the same way.
    assert_eq!(read_n(&mut reader, 1).await[0].1, Bytes::from_static(b"after the damage"));
    spool.close();
    assert!(read_all(&mut reader).await.is_empty());
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn a_failed_write_refuses_its_batch_and_the_spool_goes_on() {
    let d = dir("writefail");
    let (spool, mut reader, _) = Spool::open(config(&d)).unwrap();
    spool.append(payload(0)).await.unwrap();
    let used = spool.used_bytes();
    spool.inner.fail_writes.store(true, std::sync::atomic::Ordering::SeqCst);
    let err = spool.append(payload(1)).await.unwrap_err();
    assert!(matches!(err, SpoolError::Io { .. }), "{err}");
    assert!(err.to_string().contains("No space left on device"), "{err}");
    assert_eq!(spool.used_bytes(), used, "the refused append's space is given back");
    spool.inner.fail_writes.store(false, std::sync::atomic::Ordering::SeqCst);
    spool.append(payload(2)).await.unwrap();
    let got: Vec<Bytes> = read_n(&mut reader, 2).await.into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, [payload(0), payload(2)], "nothing of the failed write is handed out");
    spool.close();
    drop((spool, reader));
    // And nothing of it is on disk for the next start either.
    let (_, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!((recovery.records, recovery.torn_segments, recovery.corrupt_regions), (2, 0, 0));
    assert_eq!(read_n(&mut reader, 2).await[1].1, payload(2));
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn interval_fsync_appends_are_readable_and_survive_a_restart() {
    let d = dir("interval");
    let cfg = SpoolConfig { fsync: Fsync::Interval(Duration::from_millis(20)), ..config(&d) };
    {
        let (spool, mut reader, _) = Spool::open(cfg.clone()).unwrap();
        for i in 0..20 {
            spool.append(payload(i)).await.unwrap();
        }
        let got: Vec<Bytes> = read_n(&mut reader, 20).await.into_iter().map(|(_, b)| b).collect();
        assert_eq!(got, (0..20).map(payload).collect::<Vec<_>>());
        // Let the timer sync, then stop.
        tokio::time::sleep(Duration::from_millis(100)).await;
        spool.close();
    }
    let (_, mut reader, recovery) = Spool::open(cfg).unwrap();
    assert_eq!(recovery.records, 20);
    let got: Vec<Bytes> = read_n(&mut reader, 20).await.into_iter().map(|(_, b)| b).collect();
    assert_eq!(got, (0..20).map(payload).collect::<Vec<_>>());
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn concurrent_appends_all_land_once() {
    let d = dir("concurrent");
    let cfg = SpoolConfig { segment_bytes: 4096, ..config(&d) };
    let (spool, mut reader, _) = Spool::open(cfg).unwrap();
    let mut tasks = Vec::new();
    for t in 0..8 {
        let spool = spool.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..100 {
                spool.append(Bytes::from(format!("{t}:{i}"))).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let mut got: Vec<String> =
        read_n(&mut reader, 800).await.into_iter().map(|(_, b)| String::from_utf8(b.to_vec()).unwrap()).collect();
    got.sort();
    got.dedup();
    assert_eq!(got.len(), 800);
    fs::remove_dir_all(d).unwrap();
}

/// The child half of `killed_mid_append_loses_nothing_acknowledged`: appends numbered records
/// and prints each number once its append has returned.
#[tokio::test]
async fn crash_child_appender() {
    let Some(d) = std::env::var_os("DRAINPIPE_SPOOL_CRASH_DIR") else { return };
    let cfg = SpoolConfig { segment_bytes: 64 * 1024, ..config(Path::new(&d)) };
    let (spool, _reader, _) = Spool::open(cfg).unwrap();
    let mut out = std::io::stdout();
    for i in 0u64.. {
        let body = format!("{i:010}{}", "p".repeat((i % 200) as usize));
        spool.append(Bytes::from(body)).await.unwrap();
        writeln!(out, "{i}").unwrap();
        out.flush().unwrap();
    }
}

#[tokio::test]
async fn killed_mid_append_loses_nothing_acknowledged() {
    let d = dir("kill9");
    let mut acknowledged = 0u64;
    for round in 0..4 {
        let mut child = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "tests::crash_child_appender", "--nocapture", "--test-threads=1"])
            .env("DRAINPIPE_SPOOL_CRASH_DIR", &d)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        // Let it run for a while, then SIGKILL it mid-stream.
        let target = 300 + round * 250;
        let mut last = None;
        while let Some(Ok(line)) = lines.next() {
            if let Ok(n) = line.trim().parse::<u64>() {
                last = Some(n);
                if n >= target {
                    break;
                }
            }
        }
        child.kill().unwrap();
        child.wait().unwrap();
        acknowledged = last.expect("the child appended records") + 1;

        // Every record whose append returned is on disk, intact, in order (numbers restart
        // at 0 each round, so check the last round's prefix).
        let cfg = SpoolConfig { segment_bytes: 64 * 1024, ..config(&d) };
        let (spool, mut reader, recovery) = Spool::open(cfg).unwrap();
        let all = read_n(&mut reader, recovery.records as usize).await;
        let numbers: Vec<u64> =
            all.iter().map(|(_, b)| std::str::from_utf8(&b[..10]).unwrap().parse().unwrap()).collect();
        let this_round: Vec<u64> = numbers.iter().copied().skip_while(|&n| n != 0).collect();
        let this_round = match numbers.iter().rposition(|&n| n == 0) {
            Some(p) => numbers[p..].to_vec(),
            None => this_round,
        };
        assert!(
            this_round.len() as u64 >= acknowledged,
            "round {round}: {} on disk < {acknowledged} acknowledged",
            this_round.len()
        );
        assert!(this_round.iter().enumerate().all(|(i, &n)| n == i as u64), "round {round}: in order, no gaps");
        // Acknowledge everything so the next round starts from an empty spool.
        for (id, _) in all {
            spool.ack(id);
        }
        spool.close();
    }
    assert!(acknowledged > 0);
    fs::remove_dir_all(d).unwrap();
}

#[test]
fn segments_are_sized_for_the_largest_record_and_the_spool_for_two_of_them() {
    let sized = |max, largest| SpoolConfig::sized_for("d".into(), max, largest, Fsync::EveryBatch);
    assert_eq!(sized(1 << 30, 1 << 20).unwrap().segment_bytes, 16 << 20, "a 64th of the spool");
    assert_eq!(sized(1 << 30, 32 << 20).unwrap().segment_bytes, 32 << 20, "at least the largest record");
    assert_eq!(sized(64 << 30, 1 << 20).unwrap().segment_bytes, 256 << 20, "at most 256 MiB");
    assert!(matches!(sized(10 << 20, 8 << 20), Err(SpoolError::TooSmall { .. })));
}

/// A segment file holding one valid record, named `name`, in a fresh spool directory.
fn stray_segment(d: &Path, name: &str) {
    fs::create_dir_all(d).unwrap();
    let mut data = Vec::new();
    record::encode(&mut data, b"put here by hand", 1);
    fs::write(d.join(name), data).unwrap();
}

#[test]
fn a_segment_numbered_u64_max_is_refused_at_open_not_overflowed() {
    let d = dir("last-number");
    stray_segment(&d, &format!("{}.seg", u64::MAX));
    let err = Spool::open(config(&d)).map(|_| ()).unwrap_err();
    assert!(err.to_string().contains("no segment can follow"), "{err}");
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn only_segment_names_the_spool_writes_are_read() {
    let d = dir("names");
    // The same number as segment 7, spelled otherwise: reading it as segment 7 would open
    // `00000000000000000007.seg`, which is not there.
    stray_segment(&d, "7.seg");
    stray_segment(&d, "+0000000000000000007.seg");
    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!(recovery.records, 0);
    spool.append(payload(1)).await.unwrap();
    assert_eq!(read_n(&mut reader, 1).await[0].1, payload(1));
    assert!(!reader.has_next());
    assert!(d.join("7.seg").exists(), "a file the spool did not write is left alone");
    spool.close();
    fs::remove_dir_all(d).unwrap();
}

#[tokio::test]
async fn after_a_restart_the_last_replayed_record_leaves_nothing_next() {
    let d = dir("replay-has-next");
    let (spool, _reader, _) = Spool::open(config(&d)).unwrap();
    spool.append(payload(1)).await.unwrap();
    spool.close();
    drop(spool);
    // Reopened: the record is replayed; appends go to a new segment.
    let (spool, mut reader, recovery) = Spool::open(config(&d)).unwrap();
    assert_eq!(recovery.records, 1);
    assert!(reader.has_next());
    assert_eq!(read_n(&mut reader, 1).await[0].1, payload(1));
    // The pipeline sends what it gathered when nothing is next: it must not wait for a frame.
    assert!(!reader.has_next(), "nothing is written past the replayed record");
    spool.append(payload(2)).await.unwrap();
    assert!(reader.has_next());
    assert_eq!(read_n(&mut reader, 1).await[0].1, payload(2));
    assert!(!reader.has_next());
    spool.close();
    fs::remove_dir_all(d).unwrap();
}
