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

/// The level a Heroku error code means (docs/fields.md): every router `H*` and Logplex `L*`
/// code and the runtime errors that stop work or say the platform failed (`R10`, `R15`, `R16`,
/// `R17`, `R99`) are errors; `R14` (memory quota exceeded) is a warning. Other codes (`R12` exit
/// timeout, `R13` attach error), and a `code=` not shaped like one (a letter, then digits),
/// leave the syslog severity.
pub(crate) fn for_error_code(code: &str) -> Option<&'static str> {
    let (letter, number) = code.split_at_checked(1)?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    match (letter, number) {
        ("H" | "L", _) => Some("error"),
        ("R", "14") => Some("warning"),
        ("R", "10" | "15" | "16" | "17" | "99") => Some("error"),
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
        assert_eq!(for_error_code("R99"), Some("error"));
        for not_an_error in ["R12", "R13", "R18", "H", "Hello", "L1x", "h12", ""] {
            assert_eq!(for_error_code(not_an_error), None, "{not_an_error:?}");
        }
    }
}
