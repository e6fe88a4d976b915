//! Delivery as the receivers and `replay` use it, against a stand-in indexer (no
//! Elasticsearch): ids, chunks, acknowledgements, panics and the report.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use drainpipe_bulk_indexer::{Chunk, IndexerReport};
use drainpipe_delivery::{
    panic_guard, record, Chunker, DataStreams, Delivery, DeliveryConfig, Documents, Done, FrameSource, Indexer,
    IndexerFailed, LiveRules, Queue, Unflushed,
};
use drainpipe_ingest::{Frame, FrameSink, LiveAccess, Position, Protocol, Rejected};
use drainpipe_spool::{Fsync, Spool, SpoolConfig};
use tokio::sync::mpsc;

fn streams() -> DataStreams {
    DataStreams::new("test")
}

fn documents() -> Documents {
    Documents::new(streams(), LiveAccess::default(), LiveRules::default())
}

fn syslog_frame(lines: &[&str], first: u64) -> Frame {
    let mut body = Vec::new();
    let mut messages = Vec::new();
    for l in lines {
        let start = body.len();
        body.extend_from_slice(l.as_bytes());
        messages.push(start..body.len());
    }
    Frame {
        position: Position::OnStream { stream: 42, first },
        ..Frame::new(Protocol::Syslog, Bytes::from(body), messages)
    }
}

/// Takes every chunk, finishes it at once (as if every item were created) and keeps it.
#[derive(Clone, Debug, Default)]
struct StandIn {
    chunks: Arc<Mutex<Vec<Chunk>>>,
}

impl Indexer for StandIn {
    async fn index(self, mut chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        let mut report = IndexerReport::default();
        while let Some(mut chunk) = chunks.recv().await {
            report.indexed += chunk.len() as u64;
            if let Some(done) = chunk.take_on_done() {
                done();
            }
            self.chunks.lock().unwrap().push(chunk);
        }
        Ok(report)
    }
}

impl StandIn {
    fn ids(&self) -> Vec<String> {
        let chunks = self.chunks.lock().unwrap();
        chunks.iter().flat_map(|c| (0..c.len()).map(|i| c.id(i).to_owned())).collect()
    }
}

/// The chunks `transform_frame` makes of `frame`, flushed, and whether the frame was done.
async fn chunks_of(frame: &Frame, documents: &mut Documents) -> (Vec<Chunk>, bool) {
    let (tx, mut rx) = mpsc::channel(1024);
    let mut chunker = Chunker::new(tx, 1000, 1 << 20);
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    documents
        .transform_frame(frame, &mut chunker, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    chunker.flush().await.unwrap();
    drop(chunker);
    let mut chunks = Vec::new();
    while let Some(mut c) = rx.recv().await {
        (c.take_on_done().unwrap())();
        chunks.push(c);
    }
    (chunks, done.load(Ordering::SeqCst) == 1)
}

async fn ids(frame: &Frame) -> Vec<String> {
    let (chunks, _) = chunks_of(frame, &mut documents()).await;
    chunks.iter().flat_map(|c| (0..c.len()).map(|i| c.id(i).to_owned())).collect()
}

fn config() -> DeliveryConfig {
    DeliveryConfig {
        streams: streams(),
        access: LiveAccess::default(),
        rules: LiveRules::default(),
        max_docs: 1000,
        max_bytes: 1 << 20,
    }
}

fn spool_dir(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("drainpipe-delivery-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

fn spool_config(dir: &std::path::Path, segment_bytes: u64) -> SpoolConfig {
    SpoolConfig { dir: dir.to_owned(), max_bytes: 1 << 20, segment_bytes, fsync: Fsync::EveryBatch }
}

#[tokio::test]
async fn a_message_the_transform_panics_on_is_dead_lettered_raw_and_the_rest_go_on() {
    panic_guard::install_hook();
    let poison = "<190>1 2025-03-14T09:26:53Z host heroku web.1 - - Error POISON R14\n";
    let good = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
    let frame = syslog_frame(&[good, poison, good], 0);
    panic_guard::TEST_FAULT.with(|f| *f.borrow_mut() = Some((b"POISON".to_vec(), false)));
    let before = drainpipe_delivery::metrics::TRANSFORM_PANICS.get();
    let mut documents = documents();
    let (chunks, done) = chunks_of(&frame, &mut documents).await;
    // The same transformer, after a panic, still works for the next frame.
    let (after, _) = chunks_of(&syslog_frame(&[good], 3), &mut documents).await;
    panic_guard::TEST_FAULT.with(|f| *f.borrow_mut() = None);
    assert!(done, "the frame completes, so its spool record is acknowledged");
    assert_eq!(drainpipe_delivery::metrics::TRANSFORM_PANICS.get() - before, 1);
    let c = &chunks[0];
    assert_eq!(c.len(), 3);
    assert_eq!(
        [c.index_of(0), c.index_of(1), c.index_of(2)],
        ["logs-heroku.app-test", "logs-heroku.deadletter-test", "logs-heroku.app-test"]
    );
    let letter: serde_json::Value = serde_json::from_slice(c.source(1)).unwrap();
    assert_eq!(letter["message"], poison);
    assert_eq!(letter["error"]["type"], "transform_panic");
    let reason = letter["error"]["message"].as_str().unwrap();
    assert!(reason.contains("injected fault") && reason.contains("panic_guard.rs"), "{reason}");
    assert_eq!(letter["deadletter"]["index"], "logs-heroku.app-test");
    assert_eq!(letter["deadletter"]["id"], c.id(1));
    // What `deadletter replay` stores: the line kept raw, tagged.
    let stored: serde_json::Value = serde_json::from_str(letter["deadletter"]["document"].as_str().unwrap()).unwrap();
    assert_eq!(stored["message"], poison.trim_end());
    assert!(stored["tags"].as_array().unwrap().iter().any(|t| t == drainpipe_transform::PARSE_FAILURE_TAG), "{stored}");
    for i in [0, 2] {
        let doc: serde_json::Value = serde_json::from_slice(c.source(i)).unwrap();
        assert_eq!(doc["message"], "hello");
    }
    assert_eq!(after[0].len(), 1);
    let doc: serde_json::Value = serde_json::from_slice(after[0].source(0)).unwrap();
    assert_eq!(doc["message"], "hello");
}

#[tokio::test]
async fn a_frame_the_spool_cannot_store_is_refused_as_unavailable_not_as_full() {
    let dir = spool_dir("unavailable");
    let (spool, reader, _) = Spool::open(spool_config(&dir, 4096)).unwrap();
    let queue = Queue::Spool { spool, reader, drain_on_stop: false, archive: None };
    let (handoff, handle) = Delivery::start(config(), queue, StandIn::default());
    let line = "x".repeat(10_000);
    match handoff.accept(syslog_frame(&[&line], 0)).await {
        Err(Rejected::Unavailable { reason, .. }) => assert!(reason.contains("larger than a segment"), "{reason}"),
        other => panic!("{other:?}"),
    }
    drop(handoff);
    handle.finish(None).await;
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test]
async fn identical_syslog_lines_get_distinct_ids_that_survive_the_spool() {
    let line = "<13>Mar 14 09:26:53 relay nginx[1]: same";
    let frame = syslog_frame(&[line, line, line], 7);
    let first = ids(&frame).await;
    assert_eq!(first.len(), 3);
    assert!(first[0] != first[1] && first[1] != first[2] && first[0] != first[2], "{first:?}");
    // Through a spool record and back (a replay after a crash): the same ids.
    let replayed = record::decode(&record::encode(&frame)).unwrap();
    assert_eq!(ids(&replayed).await, first);
    // The next frame of the same connection continues the numbering.
    let next = ids(&syslog_frame(&[line], 10)).await;
    assert!(!first.contains(&next[0]));
}

#[tokio::test]
async fn a_frame_of_many_messages_goes_in_bounded_chunks_and_completes_once() {
    let line = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";
    let mut frame = syslog_frame(&vec![line; 2_500], 0);
    frame.protocol = Protocol::Logplex;
    frame.position = Position::InFrame;
    let (tx, mut rx) = mpsc::channel(16);
    let mut chunks = Chunker::new(tx, 1000, 1 << 20);
    let done = Arc::new(AtomicUsize::new(0));
    let counter = done.clone();
    documents()
        .transform_frame(&frame, &mut chunks, move || {
            counter.fetch_add(1, Ordering::SeqCst);
        })
        .await
        .unwrap();
    chunks.flush().await.unwrap();
    drop(chunks);
    let mut chunks = Vec::new();
    while let Some(c) = rx.recv().await {
        chunks.push(c);
    }
    assert_eq!(chunks.iter().map(Chunk::len).collect::<Vec<_>>(), [1000, 1000, 500]);
    // The frame is done only when its last chunk is, in whatever order they finish.
    for mut c in chunks.into_iter().rev() {
        assert_eq!(done.load(Ordering::SeqCst), 0);
        (c.take_on_done().expect("every chunk has a callback"))();
    }
    assert_eq!(done.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn frames_share_a_chunk_and_each_is_done_only_when_its_documents_are() {
    let line = "<190>1 2025-03-14T09:26:53.589793+00:00 host app web.1 - hello\n";
    let (tx, mut rx) = mpsc::channel(16);
    let mut chunks = Chunker::new(tx, 5, 1 << 20);
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut documents = documents();
    for (n, lines) in [(0, 3), (1, 3), (2, 1)] {
        let mut frame = syslog_frame(&vec![line; lines], n * 10);
        frame.position = Position::OnStream { stream: n, first: 0 };
        let d = done.clone();
        documents.transform_frame(&frame, &mut chunks, move || d.lock().unwrap().push(n)).await.unwrap();
    }
    // Five documents fill the first chunk; the last two wait for more until a flush.
    let mut first = rx.try_recv().expect("a full chunk goes at once");
    assert_eq!(first.len(), 5);
    assert!(rx.try_recv().is_err());
    chunks.flush().await.unwrap();
    let mut second = rx.try_recv().expect("flushed");
    assert_eq!(second.len(), 2);
    (first.take_on_done().unwrap())();
    // Frame 0 is all in the first chunk; frame 1 has a document in the second.
    assert_eq!(*done.lock().unwrap(), [0]);
    (second.take_on_done().unwrap())();
    assert_eq!(*done.lock().unwrap(), [0, 1, 2]);
}

#[tokio::test]
async fn the_memory_queue_delivers_what_it_accepted_and_the_report_says_so() {
    let indexer = StandIn::default();
    let queue = Queue::Memory { frames: 16 };
    let (handoff, handle) = Delivery::start(config(), queue, indexer.clone());
    let line = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
    for n in 0..3 {
        handoff.accept(syslog_frame(&[line, line], n * 2)).await.unwrap();
    }
    drop(handoff);
    let report = handle.finish(Some(tokio::time::Instant::now() + Duration::from_secs(10))).await;
    assert!(report.in_time && report.failure.is_none(), "{report:?}");
    assert_eq!(report.indexed, 6);
    assert_eq!(report.unflushed, Unflushed::InMemory { frames: 0, messages: 0 });
    assert_eq!(indexer.ids().len(), 6);
}

/// An indexer that never takes a chunk (Elasticsearch gone): what is held is reported lost.
#[derive(Debug)]
struct Stuck;

impl Indexer for Stuck {
    async fn index(self, chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
        let _held = chunks;
        std::future::pending().await
    }
}

#[tokio::test]
async fn at_the_deadline_frames_held_in_memory_are_reported_lost() {
    let (handoff, handle) = Delivery::start(config(), Queue::Memory { frames: 64 }, Stuck);
    let line = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
    for n in 0..8 {
        handoff.accept(syslog_frame(&[line, line, line], n * 3)).await.unwrap();
    }
    drop(handoff);
    let report = handle.finish(Some(tokio::time::Instant::now() + Duration::from_millis(300))).await;
    assert!(!report.in_time, "{report:?}");
    assert_eq!(report.unflushed, Unflushed::InMemory { frames: 8, messages: 24 });
}

#[tokio::test]
async fn spooled_frames_are_delivered_and_read_again_after_a_restart_with_the_same_ids() {
    let dir = spool_dir("acks");
    let line = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
    let mut first_ids = Vec::new();
    for round in 0..2 {
        let (spool, reader, _) = Spool::open(spool_config(&dir, 1 << 16)).unwrap();
        let indexer = StandIn::default();
        let queue = Queue::Spool { spool: spool.clone(), reader, drain_on_stop: true, archive: None };
        let (handoff, handle) = Delivery::start(config(), queue, indexer.clone());
        if round == 0 {
            for n in 0..4 {
                handoff.accept(syslog_frame(&[line, line], n * 2)).await.unwrap();
            }
        }
        drop(handoff);
        let report = handle.finish(Some(tokio::time::Instant::now() + Duration::from_secs(10))).await;
        assert!(report.in_time, "{report:?}");
        assert_eq!(report.unflushed, Unflushed::Spooled { frames: 0, bytes: spool.used_bytes() });
        if round == 0 {
            first_ids = indexer.ids();
            assert_eq!(first_ids.len(), 8);
        } else {
            // Acknowledgements are not persisted: what is still on disk after a restart (the
            // active segment) is read again, with the same ids, and Elasticsearch answers 409.
            let again = indexer.ids();
            assert!(again.iter().all(|id| first_ids.contains(id)), "{again:?} vs {first_ids:?}");
        }
    }
    std::fs::remove_dir_all(dir).unwrap();
}

/// Frames from a finite source (replay's files) each run their `done` once delivered.
#[derive(Debug)]
struct Frames(Vec<Frame>, Arc<AtomicUsize>);

impl FrameSource for Frames {
    async fn next(&mut self) -> Option<(Frame, Done)> {
        let frame = self.0.pop()?;
        let delivered = self.1.clone();
        Some((frame, Box::new(move || _ = delivered.fetch_add(1, Ordering::SeqCst))))
    }

    fn has_next(&self) -> bool {
        !self.0.is_empty()
    }
}

#[tokio::test]
async fn a_finite_source_is_read_to_its_end_and_each_frame_is_done_once() {
    let line = "<190>1 2025-03-14T09:26:53Z host app web.1 - - hello\n";
    let delivered = Arc::new(AtomicUsize::new(0));
    let frames = (0..5).map(|n| syslog_frame(&[line], n)).collect();
    let indexer = StandIn::default();
    let handle = Delivery::from_source(config(), Frames(frames, delivered.clone()), indexer.clone());
    let report = handle.finish(None).await;
    assert_eq!((report.indexed, delivered.load(Ordering::SeqCst)), (5, 5));
}

#[tokio::test]
async fn a_delivery_task_that_panics_is_reported_with_its_panic() {
    panic_guard::install_hook();
    #[derive(Debug)]
    struct Panics;
    impl Indexer for Panics {
        async fn index(self, _chunks: mpsc::Receiver<Chunk>) -> Result<IndexerReport, IndexerFailed> {
            tokio::task::yield_now().await;
            panic!("the indexer fell over");
        }
    }
    let (_handoff, handle) = Delivery::start(config(), Queue::Memory { frames: 4 }, Panics);
    let end = tokio::time::timeout(Duration::from_secs(10), handle.ended()).await.expect("reported");
    assert_eq!(end.task, "indexer");
    assert!(end.error.contains("the indexer fell over"), "{end:?}");
}

/// A frame every line of which a rule drops is still done (its spool record acknowledged), and
/// one a rule drops some lines of keeps the others, under their own ids.
#[tokio::test]
async fn a_frame_whose_lines_a_rule_drops_is_still_done() {
    let rules =
        drainpipe_rules::Rules::parse("[[rule]]\nfield = \"message\"\nprefix = \"drop\"\naction = \"drop\"\n", &|_| {
            true
        })
        .unwrap();
    let mut documents = Documents::new(streams(), LiveAccess::default(), LiveRules::fixed(rules));
    let line = |text: &str| format!("<190>1 2025-03-14T09:26:53Z host app web.1 - - {text}\n");
    let all_dropped = syslog_frame(&[&line("drop me"), &line("drop me too")], 0);
    let (chunks, done) = chunks_of(&all_dropped, &mut documents).await;
    assert!(done, "acknowledged with nothing to store");
    assert_eq!(chunks.iter().map(Chunk::len).sum::<usize>(), 0);
    let some_dropped = syslog_frame(&[&line("keep me"), &line("drop me"), &line("keep me too")], 10);
    let (chunks, done) = chunks_of(&some_dropped, &mut documents).await;
    let kept: Vec<String> = chunks.iter().flat_map(|c| (0..c.len()).map(|i| c.id(i).to_owned())).collect();
    assert!(done);
    assert_eq!(kept.len(), 2);
    let all = ids(&some_dropped).await;
    assert_eq!(kept, [all[0].clone(), all[2].clone()], "the kept lines keep their ids");
}
