//! Platform lines (dyno manager, `api`, `scheduler`) and Logplex's own notices: error codes with
//! their descriptions, exit statuses, state changes, releases, scaling, dropped-message counts.

/// What a platform or logplex line says, borrowed from the message.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Platform<'a> {
    pub error_code: Option<&'a str>,
    pub error_message: Option<&'a str>,
    pub exit_code: Option<i64>,
    pub state_from: Option<&'a str>,
    pub state_to: Option<&'a str>,
    pub release_version: Option<&'a str>,
    pub user_email: Option<&'a str>,
    pub command_line: Option<&'a str>,
    /// Logplex L10: messages dropped upstream.
    pub dropped: Option<u64>,
}

impl<'a> Platform<'a> {
    pub(crate) fn parse(msg: &'a str) -> Platform<'a> {
        let mut p = Platform::default();
        if let Some(rest) = msg.strip_prefix("Error ") {
            p.read_error(rest);
        } else if let Some(rest) = msg.strip_prefix("Process exited with status ") {
            p.exit_code = first_word(rest).parse().ok();
        } else if let Some(rest) = msg.strip_prefix("State changed from ") {
            if let Some((from, to)) = rest.split_once(" to ") {
                p.state_from = Some(from.trim()).filter(|s| !s.is_empty());
                p.state_to = Some(first_word(to)).filter(|s| !s.is_empty());
            }
        } else if let Some(rest) = msg.strip_prefix("Starting process with command `") {
            p.command_line = rest.rsplit_once('`').map(|(cmd, _)| cmd);
        } else if let Some(rest) = msg.strip_prefix("Release ") {
            let version = first_word(rest);
            let number = version.strip_prefix('v').unwrap_or("");
            if !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) {
                p.release_version = Some(version);
            }
        }
        // "… by user@example.com" closes api lines (releases, scaling, config changes, deploys).
        if let Some((_, who)) = msg.rsplit_once(" by ") {
            let who = who.trim_end_matches(['.', ' ']);
            if who.contains('@') && !who.contains(' ') {
                p.user_email = Some(who);
            }
        }
        p
    }

    /// `R14 (Memory quota exceeded)`, `L10 (output buffer overflow): 7 messages dropped since …`.
    fn read_error(&mut self, rest: &'a str) {
        // Split where this function found the code's end in `rest` itself, never at the length of
        // a word another rule found: `split_whitespace` skips leading Unicode whitespace, which
        // can be wider than a byte (`Error \u{85}R14`).
        let rest = rest.trim_start();
        let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
        let Some((code, after)) = rest.split_at_checked(end) else { return };
        if !matches!(code.as_bytes(), [b'H' | b'R' | b'L', d1, d2] if d1.is_ascii_digit() && d2.is_ascii_digit()) {
            return;
        }
        self.error_code = Some(code);
        if let Some(open) = after.strip_prefix(" (") {
            if let Some((desc, tail)) = open.split_once(')') {
                self.error_message = Some(desc).filter(|d| !d.is_empty());
                self.dropped = dropped_count(tail);
            }
        }
    }
}

/// `: 7 messages dropped since …` or `… dropped 7 messages …`.
fn dropped_count(tail: &str) -> Option<u64> {
    let words: Vec<&str> = tail.split_whitespace().collect();
    for (i, w) in words.iter().enumerate() {
        let w = w.trim_start_matches(':');
        if let Some(n) = w.parse::<u64>().ok().filter(|&n| n <= i64::MAX as u64) {
            let next = words.get(i + 1).copied().unwrap_or("");
            let prev = i.checked_sub(1).and_then(|p| words.get(p)).copied().unwrap_or("");
            if next.starts_with("message") || prev == "dropped" {
                return Some(n);
            }
        }
    }
    None
}

fn first_word(s: &str) -> &str {
    s.split_whitespace().next().unwrap_or("")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_and_descriptions() {
        let p = Platform::parse("Error R14 (Memory quota exceeded)");
        assert_eq!((p.error_code, p.error_message), (Some("R14"), Some("Memory quota exceeded")));
        let p = Platform::parse(
            "Error R10 (Boot timeout) -> Web process failed to bind to $PORT within 60 seconds of launch",
        );
        assert_eq!((p.error_code, p.error_message), (Some("R10"), Some("Boot timeout")));
        let p =
            Platform::parse("Error L10 (output buffer overflow): 7 messages dropped since 2025-03-14T09:30:59+00:00.");
        assert_eq!((p.error_code, p.dropped), (Some("L10"), Some(7)));
        let p = Platform::parse("Error with no code");
        assert_eq!(p, Platform::default());
    }

    #[test]
    fn lifecycle_lines() {
        assert_eq!(Platform::parse("Process exited with status 137").exit_code, Some(137));
        let p = Platform::parse("State changed from starting to up");
        assert_eq!((p.state_from, p.state_to), (Some("starting"), Some("up")));
        let p = Platform::parse("Starting process with command `bundle exec puma -C config/puma.rb`");
        assert_eq!(p.command_line, Some("bundle exec puma -C config/puma.rb"));
        let p = Platform::parse("Release v42 created by ops@example.com");
        assert_eq!((p.release_version, p.user_email), (Some("v42"), Some("ops@example.com")));
        let p = Platform::parse("Scaled to web@2:Standard-1X worker@1:Standard-1X by ops@example.com");
        assert_eq!(p.user_email, Some("ops@example.com"));
    }
}
