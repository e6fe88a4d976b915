//! The null Elasticsearch: answers what drainpipe asks at start-up and every `_bulk` item as
//! Elasticsearch would (`201` for a new `_id`, `409` for one it has), instantly, and keeps a
//! ledger of which numbered lines (see [`crate::traffic`]) it stored, so that every run counts
//! lines lost and stored twice. Optionally it writes every bulk body to a file (the documents
//! for the direct-bulk comparison).

use std::collections::HashMap;
use std::convert::Infallible;
use std::hash::{DefaultHasher, Hash as _, Hasher as _};
use std::io::{Read as _, Write as _};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use crate::traffic;

/// What the null Elasticsearch has seen.
#[derive(Debug, Default)]
pub struct Ledger {
    /// `_id` (hashed) -> the line number stored under it.
    ids: HashMap<u64, u64>,
    /// Line numbers stored, one bit each.
    stored: Vec<u64>,
    /// Documents stored (answered 201).
    pub created: u64,
    /// Items answered 409: their `_id` was stored before (a retry; not a loss).
    pub conflicts: u64,
    /// Lines stored a second time under another `_id` (a duplicate in Elasticsearch).
    pub doubled: u64,
    /// Different lines sent under one `_id` (the second is refused: a loss).
    pub collided: u64,
    /// Documents without a line number (not from this tool's traffic).
    pub unnumbered: u64,
    pub bulk_requests: u64,
    /// Bytes of `_bulk` bodies as received (gzipped or not), and inflated.
    pub bulk_wire_bytes: u64,
    pub bulk_bytes: u64,
    /// (when, documents created so far), one entry per bulk request.
    pub progress: Vec<(Instant, u64)>,
}

impl Ledger {
    /// Answers one `_bulk` body (NDJSON of action and source lines) item by item, in the
    /// shape drainpipe's `filter_path` asks for.
    pub fn bulk(&mut self, body: &[u8], now: Instant) -> Vec<u8> {
        let mut out = Vec::with_capacity(64 + body.len() / 40);
        out.extend_from_slice(b"{\"errors\":false,\"items\":[");
        let mut lines = body.split(|&b| b == b'\n').filter(|l| !l.is_empty());
        let (mut first, mut failed) = (true, false);
        while let (Some(action), Some(source)) = (lines.next(), lines.next()) {
            let status = self.item(action, source);
            failed |= status != 201;
            if !first {
                out.push(b',');
            }
            first = false;
            match status {
                201 => out.extend_from_slice(b"{\"create\":{\"status\":201}}"),
                _ => out.extend_from_slice(
                    b"{\"create\":{\"status\":409,\"error\":{\"type\":\"version_conflict_engine_exception\",\
                      \"reason\":\"document already exists\"}}}",
                ),
            }
        }
        out.extend_from_slice(b"]}");
        if failed {
            // `errors` is true when any item failed, as Elasticsearch says it.
            if let Some(p) = traffic::find(&out, b"false") {
                out.splice(p..p + 5, b"true".iter().copied());
            }
        }
        self.bulk_requests += 1;
        self.progress.push((now, self.created));
        out
    }

    fn item(&mut self, action: &[u8], source: &[u8]) -> u16 {
        let id = id_of(action);
        let line = traffic::line_number(source);
        if let Some(&stored) = self.ids.get(&id) {
            self.conflicts += 1;
            if line.is_some_and(|l| l != stored) {
                self.collided += 1;
            }
            return 409;
        }
        self.ids.insert(id, line.unwrap_or(u64::MAX));
        self.created += 1;
        match line {
            None => self.unnumbered += 1,
            Some(l) => {
                let (word, bit) = ((l / 64) as usize, l % 64);
                if word >= self.stored.len() {
                    self.stored.resize(word + 1 + word / 2, 0);
                }
                if self.stored[word] & (1 << bit) != 0 {
                    self.doubled += 1;
                }
                self.stored[word] |= 1 << bit;
            }
        }
        201
    }

    pub fn is_stored(&self, line: u64) -> bool {
        self.stored.get((line / 64) as usize).is_some_and(|w| w & (1 << (line % 64)) != 0)
    }
}

/// The `_id` of an action line, hashed (ids are 22 characters; 8 bytes tell them apart).
fn id_of(action: &[u8]) -> u64 {
    let id = traffic::find(action, b"\"_id\":\"").map(|p| {
        let from = p + 7;
        let len = action[from..].iter().position(|&b| b == b'"').unwrap_or(action.len() - from);
        &action[from..from + len]
    });
    let mut h = DefaultHasher::new();
    id.unwrap_or(action).hash(&mut h);
    h.finish()
}

/// The null Elasticsearch's state, shared with the server's connections.
#[derive(Debug, Default)]
pub struct Sink {
    pub ledger: Mutex<Ledger>,
    /// Where bulk bodies are copied, if anywhere.
    pub capture: Option<Mutex<std::fs::File>>,
}

impl Sink {
    pub fn created(&self) -> u64 {
        self.ledger.lock().unwrap_or_else(|e| e.into_inner()).created
    }
}

/// Starts the null Elasticsearch on a thread of its own (so that answering a bulk request
/// never delays reading drainpipe's answers to the sender), returning its URL.
pub fn start(sink: Arc<Sink>) -> anyhow::Result<String> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    listener.set_nonblocking(true)?;
    let url = format!("http://{}", listener.local_addr()?);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    std::thread::Builder::new().name("null-elasticsearch".into()).spawn(move || {
        runtime.block_on(async move {
            if let Ok(listener) = TcpListener::from_std(listener) {
                serve(listener, sink).await;
            }
        });
    })?;
    Ok(url)
}

/// Serves the null Elasticsearch on `listener` until the task is dropped.
async fn serve(listener: TcpListener, sink: Arc<Sink>) {
    loop {
        let Ok((stream, _)) = listener.accept().await else { continue };
        let sink = sink.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| answer(req, sink.clone()));
            let _ = http1::Builder::new().serve_connection(TokioIo::new(stream), service).await;
        });
    }
}

async fn answer(req: Request<Incoming>, sink: Arc<Sink>) -> Result<Response<Full<Bytes>>, Infallible> {
    let (method, path) = (req.method().clone(), req.uri().path().to_owned());
    let gzip = req.headers().get("content-encoding").is_some_and(|v| v == "gzip");
    let body = match req.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, "{}")),
    };
    let (status, text): (StatusCode, Vec<u8>) = match (&method, path.as_str()) {
        (&Method::POST, "/_bulk") => {
            let wire_bytes = body.len();
            let body = if gzip { inflate(&body) } else { body.to_vec() };
            if let Some(file) = &sink.capture {
                let _ = file.lock().unwrap_or_else(|e| e.into_inner()).write_all(&body);
            }
            let mut ledger = sink.ledger.lock().unwrap_or_else(|e| e.into_inner());
            ledger.bulk_wire_bytes += wire_bytes as u64;
            ledger.bulk_bytes += body.len() as u64;
            let answer = ledger.bulk(&body, Instant::now());
            (StatusCode::OK, answer)
        }
        (&Method::GET, "/") => (
            StatusCode::OK,
            br#"{"name":"null","version":{"number":"9.5.4","build_flavor":"default"},"tagline":"You Know, for Search"}"#
                .to_vec(),
        ),
        (&Method::GET, "/_cluster/health") => (StatusCode::OK, br#"{"status":"green"}"#.to_vec()),
        (&Method::GET, p) if p.starts_with("/_index_template/") => (StatusCode::NOT_FOUND, b"{}".to_vec()),
        (&Method::PUT | &Method::DELETE, p) if p.starts_with("/_index_template/") => {
            (StatusCode::OK, br#"{"acknowledged":true}"#.to_vec())
        }
        _ => (StatusCode::NOT_FOUND, br#"{"error":"the null Elasticsearch does not serve this"}"#.to_vec()),
    };
    Ok(reply(status, text))
}

fn inflate(body: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(body.len() * 8);
    let _ = flate2::read::GzDecoder::new(body).read_to_end(&mut out);
    out
}

fn reply(status: StatusCode, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = status;
    r.headers_mut().insert("content-type", hyper::header::HeaderValue::from_static("application/json"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(id: &str, line: u64) -> String {
        format!(
            "{{\"create\":{{\"_index\":\"logs-heroku.router-x\",\"_id\":\"{id}\"}}}}\n\
             {{\"http\":{{\"request\":{{\"id\":\"0000abcd-0001-4b1d-8000-{line:012x}\"}}}}}}\n"
        )
    }

    fn statuses(answer: &[u8]) -> Vec<u64> {
        let v: serde_json::Value = serde_json::from_slice(answer).unwrap();
        v["items"].as_array().unwrap().iter().map(|i| i["create"]["status"].as_u64().unwrap()).collect()
    }

    #[test]
    fn items_are_answered_as_elasticsearch_would_and_the_ledger_counts_each_kind() {
        let mut ledger = Ledger::default();
        let now = Instant::now();
        let first = ledger.bulk((item("a", 0) + &item("b", 1)).as_bytes(), now);
        assert_eq!(statuses(&first), [201, 201]);
        assert_eq!(serde_json::from_slice::<serde_json::Value>(&first).unwrap()["errors"], false);
        // A retry of "b" (409, not a loss), line 1 again under a new id (doubled), line 2
        // under the id of line 0 (a collision: refused, so lost), and a new line.
        let again = item("b", 1) + &item("c", 1) + &item("a", 2) + &item("d", 3);
        let second = ledger.bulk(again.as_bytes(), now);
        assert_eq!(statuses(&second), [409, 201, 409, 201]);
        let v: serde_json::Value = serde_json::from_slice(&second).unwrap();
        assert_eq!(v["errors"], true);
        assert_eq!(v["items"][0]["create"]["error"]["type"], "version_conflict_engine_exception");
        assert_eq!((ledger.created, ledger.conflicts, ledger.doubled, ledger.collided), (4, 2, 1, 1));
        assert!(ledger.is_stored(0) && ledger.is_stored(1) && !ledger.is_stored(2) && ledger.is_stored(3));
        assert_eq!(ledger.progress.iter().map(|p| p.1).collect::<Vec<_>>(), [2, 4]);
    }

    #[test]
    fn a_document_without_a_line_number_is_stored_and_counted_apart() {
        let mut ledger = Ledger::default();
        let body = "{\"create\":{\"_index\":\"x\",\"_id\":\"z\"}}\n{\"message\":\"other\"}\n";
        assert_eq!(statuses(&ledger.bulk(body.as_bytes(), Instant::now())), [201]);
        assert_eq!((ledger.created, ledger.unnumbered), (1, 1));
    }
}
