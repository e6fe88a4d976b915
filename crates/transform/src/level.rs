//! `log.level` in one vocabulary, so one filter finds every error whatever wrote it: `trace`,
//! `debug`, `info`, `notice`, `warning`, `error`, `critical`, `alert`, `emergency` (the syslog
//! severities, plus `trace`). The word an app wrote stays in `app.level`.

/// Words apps and the router write, and what they mean; compared ignoring case.
const WORDS: [(&str, &str); 24] = [
    ("info", "info"),
    ("error", "error"),
    ("warn", "warning"),
    ("warning", "warning"),
    ("debug", "debug"),
    ("trace", "trace"),
    ("notice", "notice"),
    ("fatal", "critical"),
    ("critical", "critical"),
    ("crit", "critical"),
    ("err", "error"),
    ("information", "info"),
    ("informational", "info"),
    ("dbg", "debug"),
    ("alert", "alert"),
    ("emergency", "emergency"),
    ("emerg", "emergency"),
    ("panic", "emergency"),
    // pino/bunyan numbers, when written as text.
    ("10", "trace"),
    ("20", "debug"),
    ("30", "info"),
    ("40", "warning"),
    ("50", "error"),
    ("60", "critical"),
];

/// An app's or the router's level word in the vocabulary; `None` for words it does not know
/// (the syslog severity then stands). No allocation: it runs for most lines.
pub(crate) fn normalise(word: &str) -> Option<&'static str> {
    let word = word.trim();
    WORDS.iter().find(|(w, _)| w.eq_ignore_ascii_case(word)).map(|(_, level)| *level)
}

/// A pino/bunyan numeric level.
pub(crate) fn from_number(n: u64) -> Option<&'static str> {
    Some(match n {
        10 => "trace",
        20 => "debug",
        30 => "info",
        40 => "warning",
        50 => "error",
        60 => "critical",
        _ => return None,
    })
}

/// The level a Heroku error code means: `R14` (memory quota exceeded) is a warning; the other
/// runtime errors that stop work (`R10`, `R15`, `R16`, `R17`), every router `H*` and Logplex
/// `L*` code are errors. Other codes leave the syslog severity.
pub(crate) fn for_error_code(code: &str) -> Option<&'static str> {
    match code.as_bytes().first()? {
        b'H' | b'L' => Some("error"),
        _ if code == "R14" => Some("warning"),
        _ if matches!(code, "R10" | "R15" | "R16" | "R17") => Some("error"),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_and_numbers_land_in_one_vocabulary() {
        for (word, level) in [
            ("WARN", "warning"),
            ("warning", "warning"),
            ("err", "error"),
            ("Fatal", "critical"),
            ("crit", "critical"),
            ("40", "warning"),
            ("60", "critical"),
            ("informational", "info"),
            ("emerg", "emergency"),
        ] {
            assert_eq!(normalise(word), Some(level), "{word}");
        }
        assert_eq!(normalise("verbose"), None);
        assert_eq!(normalise("70"), None);
    }

    #[test]
    fn numbers_as_numbers_and_as_text_agree() {
        for n in [10, 20, 30, 40, 50, 60] {
            assert_eq!(from_number(n), normalise(&n.to_string()), "{n}");
        }
        assert_eq!(from_number(70), None);
    }

    #[test]
    fn error_codes() {
        assert_eq!(for_error_code("H12"), Some("error"));
        assert_eq!(for_error_code("L10"), Some("error"));
        assert_eq!(for_error_code("R14"), Some("warning"));
        assert_eq!(for_error_code("R15"), Some("error"));
        assert_eq!(for_error_code("R99"), None);
    }
}
