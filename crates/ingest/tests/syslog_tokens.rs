//! A syslog listener started with drain tokens takes only lines whose HOSTNAME is a listed
//! token: a stranger's token and a plain host name are dropped and counted, not handed on.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use drainpipe_ingest::{syslog, Access, DrainTokens, Frame, FrameSink, LiveAccess, Rejected, SyslogConfig};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

#[derive(Clone)]
struct Collect(mpsc::Sender<Frame>);

impl FrameSink for Collect {
    async fn accept(&self, frame: Frame) -> Result<(), Rejected> {
        self.0.send(frame).await.map_err(|_| Rejected::ShuttingDown)
    }

    async fn accept_or_wait(&self, frame: Frame) -> Result<(), Rejected> {
        self.accept(frame).await
    }
}

fn line(host: &str, text: &str) -> String {
    let msg = format!("<190>1 2025-03-14T09:26:53.589793+00:00 {host} app web.1 - - {text}\n");
    format!("{} {msg}", msg.len())
}

/// Sends one line from each host over one connection, then closes it, and returns the texts
/// of every message handed on.
async fn handed_on(config: SyslogConfig) -> Vec<String> {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, mut rx) = mpsc::channel(16);
    tokio::spawn(syslog::run(listener, config, Collect(tx), std::future::pending()));
    let mut c = TcpStream::connect(addr).await.unwrap();
    for (host, text) in [("d.stranger", "stranger"), ("somehost", "relay"), ("d.good", "good"), ("-", "nil")] {
        c.write_all(line(host, text).as_bytes()).await.unwrap();
    }
    // Newline-framed, as a relay sends.
    c.write_all(b"<13>Mar 14 09:26:53 web-01 nginx[4711]: plain\n").await.unwrap();
    c.shutdown().await.unwrap();
    // The server closes the connection once it has handed on all it read.
    let eof = tokio::time::timeout(Duration::from_secs(5), c.read(&mut [0u8; 1])).await;
    assert!(matches!(eof, Ok(Ok(0))), "the connection was not closed: {eof:?}");
    let mut texts = Vec::new();
    while let Ok(frame) = rx.try_recv() {
        for i in 0..frame.messages.len() {
            let m = String::from_utf8_lossy(frame.message(i)).into_owned();
            texts.push(m.rsplit(' ').next().unwrap_or_default().trim_end().to_owned());
        }
    }
    texts
}

#[tokio::test]
async fn only_lines_naming_a_listed_drain_token_are_taken() {
    let refused = |reason| drainpipe_ingest::metrics::SYSLOG_REFUSED.with_label_values(&[reason]).get();
    let (no_token, unlisted) = (refused("no_token"), refused("unlisted_token"));
    let tokens = DrainTokens::new([("d.good".to_owned(), "goodapp".to_owned())]);
    let access = LiveAccess::new(Access::new(&[], tokens, Default::default()));
    let config = SyslogConfig { access: access.clone(), ..SyslogConfig::default() };
    assert_eq!(handed_on(config).await, ["good"]);
    assert_eq!(refused("unlisted_token") - unlisted, 1, "d.stranger");
    assert_eq!(refused("no_token") - no_token, 3, "somehost, `-` and the relay's line");

    // The allow option takes lines with no drain token; a stranger's token stays out.
    let config = SyslogConfig { access, allow_tokenless: true, ..SyslogConfig::default() };
    assert_eq!(handed_on(config).await, ["relay", "good", "nil", "plain"]);
    // Without tokens listed the listener takes everything (and the binary warns at start-up).
    assert_eq!(handed_on(SyslogConfig::default()).await, ["stranger", "relay", "good", "nil", "plain"]);
}
