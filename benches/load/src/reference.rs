//! The minimal reference: what any receiver must do per router line and nothing more. It
//! splits a Logplex body by its octet counts, reads the RFC 5424 header, splits the router
//! line's `key=value` pairs, and writes a 15-field JSON document per line into a reused buffer.
//! No ids, no validation beyond what parsing needs, no I/O. Measured in the same run as
//! drainpipe, it turns timings that swing 20 % between runs into ratios that do not.
//!
//! Self-contained (std only), so the transform's criterion bench includes this same file.

/// Turns every message of a Logplex `body` into a JSON line appended to `out`; returns the
/// number of messages.
pub fn frame(body: &[u8], out: &mut Vec<u8>) -> usize {
    let mut rest = body;
    let mut n = 0;
    while let Some(sp) = rest.iter().position(|&b| b == b' ') {
        let Some(len) = digits(&rest[..sp]) else { break };
        let Some(message) = rest.get(sp + 1..sp + 1 + len) else { break };
        line(message, out);
        rest = &rest[sp + 1 + len..];
        n += 1;
    }
    n
}

fn digits(s: &[u8]) -> Option<usize> {
    if s.is_empty() || s.len() > 9 {
        return None;
    }
    s.iter().try_fold(0usize, |n, &b| b.is_ascii_digit().then(|| n * 10 + usize::from(b - b'0')))
}

fn line(message: &[u8], out: &mut Vec<u8>) {
    let message = message.strip_suffix(b"\n").unwrap_or(message);
    // <PRI>1 TIMESTAMP HOST APP PROCID MSGID MSG
    let mut fields = message.splitn(7, |&b| b == b' ');
    let pri = fields.next().unwrap_or_default();
    let timestamp = fields.next().unwrap_or_default();
    let host = fields.next().unwrap_or_default();
    let app = fields.next().unwrap_or_default();
    let _proc_id = fields.next();
    let _msgid = fields.next();
    let msg = fields.next().unwrap_or_default();
    let priority =
        pri.iter().skip(1).take_while(|b| b.is_ascii_digit()).fold(0u32, |n, &b| n * 10 + u32::from(b - b'0'));

    out.extend_from_slice(b"{\"@timestamp\":");
    string(out, timestamp);
    out.extend_from_slice(b",\"log\":{\"syslog\":{\"priority\":");
    number(out, u64::from(priority));
    out.extend_from_slice(b"}},\"host\":{\"name\":");
    string(out, host);
    out.extend_from_slice(b"},\"process\":{\"name\":");
    string(out, app);
    out.push(b'}');
    let mut pairs = Pairs(msg);
    while let Some((key, value)) = pairs.next() {
        let name: &[u8] = match key {
            b"method" => b"method",
            b"path" => b"path",
            b"host" => b"domain",
            b"request_id" => b"request_id",
            b"fwd" => b"fwd",
            b"dyno" => b"dyno",
            b"protocol" => b"protocol",
            b"connect" | b"service" | b"status" | b"bytes" => {
                let v = value.strip_suffix(b"ms").unwrap_or(value);
                if let Some(n) = digits(v) {
                    out.extend_from_slice(b",\"");
                    out.extend_from_slice(key);
                    out.extend_from_slice(b"\":");
                    number(out, n as u64);
                }
                continue;
            }
            _ => continue,
        };
        out.extend_from_slice(b",\"");
        out.extend_from_slice(name);
        out.extend_from_slice(b"\":");
        string(out, value);
    }
    out.extend_from_slice(b"}\n");
}

/// `key=value` pairs; a value may be double-quoted.
struct Pairs<'a>(&'a [u8]);

impl<'a> Pairs<'a> {
    fn next(&mut self) -> Option<(&'a [u8], &'a [u8])> {
        loop {
            let s = self.0;
            let start = s.iter().position(|&b| b != b' ')?;
            let s = &s[start..];
            let eq = s.iter().position(|&b| b == b'=' || b == b' ').unwrap_or(s.len());
            if eq == s.len() || s[eq] == b' ' {
                self.0 = &s[eq..];
                continue;
            }
            let key = &s[..eq];
            let after = &s[eq + 1..];
            let (value, rest) = if after.first() == Some(&b'"') {
                let end = after[1..].iter().position(|&b| b == b'"').map_or(after.len(), |p| p + 1);
                (&after[1..end], after.get(end + 1..).unwrap_or_default())
            } else {
                let end = after.iter().position(|&b| b == b' ').unwrap_or(after.len());
                (&after[..end], &after[end..])
            };
            self.0 = rest;
            return Some((key, value));
        }
    }
}

fn string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &b in s {
        match b {
            b'"' | b'\\' => out.extend_from_slice(&[b'\\', b]),
            0..=0x1f => out.extend_from_slice(format!("\\u{b:04x}").as_bytes()),
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

fn number(out: &mut Vec<u8>, mut n: u64) {
    let mut buf = [0u8; 20];
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    out.extend_from_slice(&buf[i..]);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_line_becomes_a_document_of_fifteen_fields() {
        let msg = "<158>1 2026-11-24T10:00:00.000001+00:00 host heroku router - at=info method=GET \
                   path=\"/a b\" host=shop.example.com request_id=r1 fwd=\"1.2.3.4\" dyno=web.1 \
                   connect=1ms service=18ms status=200 bytes=975 protocol=https\n";
        let body = format!("{} {msg}", msg.len());
        let mut out = Vec::new();
        assert_eq!(frame(body.as_bytes(), &mut out), 1);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let count = |v: &serde_json::Value| -> usize {
            fn leaves(v: &serde_json::Value) -> usize {
                v.as_object().map_or(1, |o| o.values().map(leaves).sum())
            }
            leaves(v)
        };
        assert_eq!(count(&v), 15, "{v}");
        assert_eq!(
            (v["path"].as_str(), v["service"].as_u64(), v["status"].as_u64()),
            (Some("/a b"), Some(18), Some(200))
        );
    }
}
