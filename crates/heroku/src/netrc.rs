//! `~/.netrc` as `heroku login` writes it:
//!
//! ```text
//! machine api.heroku.com
//!   login me@example.com
//!   password 01234567-89ab-cdef-0123-456789abcdef
//! ```
//!
//! Tokens are separated by any whitespace; `default` is any machine; `macdef` (a macro, up
//! to an empty line) is skipped.

/// The password of `host`'s entry (else the `default` one).
pub fn password(text: &str, host: &str) -> Option<String> {
    let mut words = Words::new(text);
    let (mut found, mut default) = (None, None);
    // Which entry the words belong to: Some(true) the host's, Some(false) another's.
    let mut current: Option<bool> = None;
    let mut is_default = false;
    while let Some(word) = words.next() {
        match word {
            "machine" => {
                current = words.next().map(|m| m == host);
                is_default = false;
            }
            "default" => {
                current = Some(false);
                is_default = true;
            }
            "password" => {
                let value = words.next().map(str::to_owned);
                if current == Some(true) && found.is_none() {
                    found = value;
                } else if is_default && default.is_none() {
                    default = value;
                }
            }
            "macdef" => words.skip_macro(),
            _ => {}
        }
    }
    found.or(default)
}

struct Words<'a> {
    rest: &'a str,
}

impl<'a> Words<'a> {
    fn new(text: &'a str) -> Words<'a> {
        Words { rest: text }
    }

    fn next(&mut self) -> Option<&'a str> {
        let trimmed = self.rest.trim_start();
        if trimmed.is_empty() {
            self.rest = trimmed;
            return None;
        }
        let (word, rest) = trimmed.split_once(char::is_whitespace).unwrap_or((trimmed, ""));
        self.rest = rest;
        Some(word)
    }

    /// A macro runs to the first empty line.
    fn skip_macro(&mut self) {
        self.rest = self.rest.split_once("\n\n").map_or("", |(_, after)| after);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hosts_password_as_the_heroku_cli_writes_it() {
        let text = "machine api.heroku.com\n  login me@example.com\n  password k3y\nmachine git.heroku.com\n  login me@example.com\n  password other\n";
        assert_eq!(password(text, "api.heroku.com").as_deref(), Some("k3y"));
        assert_eq!(password(text, "git.heroku.com").as_deref(), Some("other"));
        assert_eq!(password(text, "example.com"), None);
        let one_line = "macdef init\ncd /\n\nmachine 127.0.0.1 login x password local default login y password any";
        assert_eq!(password(one_line, "127.0.0.1").as_deref(), Some("local"));
        assert_eq!(password(one_line, "elsewhere").as_deref(), Some("any"));
    }
}
