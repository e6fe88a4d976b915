//! drainpipe's SigV4 signing against AWS's Signature Version 4 test suite, as botocore ships it
//! (`tests/unit/auth/aws4_testsuite` of its source distribution on PyPI, 1.44.18; Apache-2.0,
//! LICENSE and NOTICE beside it): every request in `aws4_testsuite/**/<case>.req`, signed with
//! the suite's credentials and time, must give the `Authorization` header of `<case>.authz`.
//! Requests with a session token take it from their `.creq`, as botocore's runner does.

// Test code: a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use drainpipe_aws_auth::{sign, Credentials, PathEscaping};

/// Cases botocore's runner skips too, for the same reasons.
const SKIPPED: [(&str, &str); 4] = [
    ("normalize-path/get-space", "a space in the request line: not an HTTP request any client sends"),
    ("get-vanilla-query-order-key-case", "a query key given twice: no request of drainpipe's repeats one"),
    ("get-vanilla-query-order-key", "a query key given twice"),
    ("get-vanilla-query-order-value", "a query key given twice"),
];

/// 2015-08-30T12:36:00Z, the suite's time.
const TIME: u64 = 1_440_938_160;

#[test]
fn every_case_of_the_aws_sigv4_test_suite_is_signed_as_aws_signs_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/aws4_testsuite");
    let mut cases = Vec::new();
    collect(&root, &mut cases);
    cases.sort();
    assert!(cases.len() >= 30, "the suite is there: {} cases", cases.len());
    let (mut passed, mut failed) = (0, Vec::new());
    for req in &cases {
        let name = req.parent().unwrap().strip_prefix(&root).unwrap().to_string_lossy().to_string();
        if SKIPPED.iter().any(|(skipped, _)| *skipped == name) {
            continue;
        }
        let expected = std::fs::read_to_string(req.with_extension("authz")).unwrap();
        let creq = std::fs::read_to_string(req.with_extension("creq")).unwrap();
        let token = creq.lines().find_map(|l| l.strip_prefix("x-amz-security-token:")).map(str::to_owned);
        let actual = authorization(&std::fs::read(req).unwrap(), token);
        if actual.as_deref() == Some(expected.trim()) {
            passed += 1;
        } else {
            failed.push(format!("{name}:\n  expected {}\n  got      {actual:?}", expected.trim()));
        }
    }
    assert!(failed.is_empty(), "{} of {} cases differ:\n{}", failed.len(), passed + failed.len(), failed.join("\n"));
    assert!(passed >= 28, "{passed} cases checked");
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(&path, out);
        } else if path.extension().is_some_and(|e| e == "req") {
            out.push(path);
        }
    }
}

/// The `Authorization` header drainpipe's signing gives the raw request `raw`.
fn authorization(raw: &[u8], session_token: Option<String>) -> Option<String> {
    let text = String::from_utf8(raw.to_vec()).ok()?;
    let (head, body) = text.split_once("\n\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let mut request_line = lines.next()?.splitn(3, ' ');
    let (method, target) = (request_line.next()?, request_line.next()?);
    // Header lines; a line starting with whitespace continues the previous value, folded into
    // it with a space as an HTTP/1.1 recipient does (RFC 9112, obs-fold).
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut()?;
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else {
            let (name, value) = line.split_once(':')?;
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    let host = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("host"))?.1.trim().to_owned();
    // The suite's paths are unescaped: escaped once for the URL, and signed as they are.
    let url = format!("https://{host}{}", escape_path(target));
    // The signer writes these itself.
    let signed: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(n, _)| !n.eq_ignore_ascii_case("x-amz-date") && !n.eq_ignore_ascii_case("x-amz-security-token"))
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let credentials = Credentials {
        access_key_id: "AKIDEXAMPLE".into(),
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
        session_token,
        expires: None,
    };
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(TIME);
    let out =
        sign(method, &url, &signed, body.as_bytes(), &credentials, "us-east-1", "service", time, PathEscaping::Single)
            .ok()?;
    out.into_iter().find(|(k, _)| k.eq_ignore_ascii_case("authorization")).map(|(_, v)| v)
}

/// The request target as a client sends it: the path's bytes but unreserved ones and `/`
/// percent-escaped (the suite's paths are unescaped), the query's non-ASCII and spaces only (its
/// one escaped query is escaped already).
fn escape_path(target: &str) -> String {
    let (path, query) = match target.split_once('?') {
        Some((path, query)) => (path, Some(query)),
        None => (target, None),
    };
    let mut out = String::new();
    for b in path.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~/".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    if let Some(query) = query {
        out.push('?');
        for b in query.bytes() {
            if b.is_ascii_graphic() {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
    }
    out
}
