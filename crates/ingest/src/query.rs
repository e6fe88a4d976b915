//! The drain URL's query string: `app=` names the Heroku app, every other `k=v` is a label.

/// `app` and the remaining parameters, percent-decoded. Empty keys are skipped; a repeated key
/// keeps its last value.
pub(crate) fn parse(query: Option<&str>) -> (Option<String>, Vec<(String, String)>) {
    let (mut app, mut labels): (Option<String>, Vec<(String, String)>) = (None, Vec::new());
    for part in query.unwrap_or("").split('&') {
        let (k, v) = part.split_once('=').unwrap_or((part, ""));
        let (k, v) = (decode(k), decode(v));
        if k.is_empty() {
            continue;
        }
        if k == "app" {
            app = Some(v).filter(|v| !v.is_empty());
        } else if let Some(slot) = labels.iter_mut().find(|(key, _)| *key == k) {
            slot.1 = v;
        } else {
            labels.push((k, v));
        }
    }
    (app, labels)
}

/// `application/x-www-form-urlencoded` decoding: `+` is a space, `%XX` a byte; malformed
/// escapes are kept as written.
fn decode(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'+' => out.push(b' '),
            b'%' => match (b.get(i + 1).and_then(hex), b.get(i + 2).and_then(hex)) {
                (Some(hi), Some(lo)) => {
                    out.push(hi << 4 | lo);
                    i += 2;
                }
                _ => out.push(b'%'),
            },
            other => out.push(other),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex(b: &u8) -> Option<u8> {
    (*b as char).to_digit(16).map(|d| d as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn app_and_labels() {
        let (app, labels) = parse(Some("app=shop&env=staging&team=a%20b+c&&=x&env=prod"));
        assert_eq!(app.as_deref(), Some("shop"));
        assert_eq!(labels, vec![("env".into(), "prod".into()), ("team".into(), "a b c".into())]);
    }

    #[test]
    fn no_query_and_bad_escapes() {
        assert_eq!(parse(None), (None, vec![]));
        assert_eq!(parse(Some("app=")), (None, vec![]));
        assert_eq!(parse(Some("app=%zz%4")).0.as_deref(), Some("%zz%4"));
    }
}
