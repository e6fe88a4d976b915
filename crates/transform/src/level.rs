//! `log.level` in one vocabulary, so one filter finds every error whatever wrote it: `trace`,
//! `debug`, `info`, `notice`, `warning`, `error`, `critical`, `alert`, `emergency` (the syslog
//! severities, plus `trace`). The word an app wrote stays in `app.level`.

/// An app's or the router's level word, or a pino/bunyan number, in the vocabulary; `None`
/// for words it does not know (the syslog severity then stands).
pub(crate) fn normalise(word: &str) -> Option<&'static str> {
    let lower = word.trim().to_ascii_lowercase();
    Some(match lower.as_str() {
        "trace" | "10" => "trace",
        "debug" | "dbg" | "20" => "debug",
        "info" | "information" | "informational" | "30" => "info",
        "notice" => "notice",
        "warn" | "warning" | "40" => "warning",
        "error" | "err" | "50" => "error",
        "critical" | "crit" | "fatal" | "60" => "critical",
        "alert" => "alert",
        "emergency" | "emerg" | "panic" => "emergency",
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
    fn error_codes() {
        assert_eq!(for_error_code("H12"), Some("error"));
        assert_eq!(for_error_code("L10"), Some("error"));
        assert_eq!(for_error_code("R14"), Some("warning"));
        assert_eq!(for_error_code("R15"), Some("error"));
        assert_eq!(for_error_code("R99"), None);
    }
}
