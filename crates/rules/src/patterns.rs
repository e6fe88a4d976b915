//! The built-in redaction patterns, each a byte scan (no regex) over a string value as it is in
//! the document, still JSON-escaped: what they find never cuts an escape in two, and what replaces
//! it needs no escaping.

use std::ops::Range;

/// What replaces a redacted value or part of one.
pub const REDACTED: &str = "[REDACTED]";

/// A secret-shaped thing a `redact` rule can name in `patterns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// `Bearer <token>` (any case; a token of 8 characters or more): the token.
    BearerToken,
    /// `password=…`, `secret: …`, `"api_key":"…"`: the value of a key named like a password, a
    /// secret, a token or an API key, in logfmt, JSON or `key: value` text; and a field of the
    /// document named so (an app's `password=` parsed into `app.password`).
    PasswordKv,
    /// 13 to 19 digits (groups split by single spaces or dashes allowed) starting with 2 to 6,
    /// as card numbers do, that pass the Luhn check.
    CreditCard,
    /// `local@domain.tld`.
    Email,
}

impl Pattern {
    /// Every pattern, by the name rules give it.
    pub const ALL: [(&'static str, Pattern); 4] = [
        ("bearer-token", Pattern::BearerToken),
        ("password-kv", Pattern::PasswordKv),
        ("credit-card", Pattern::CreditCard),
        ("email", Pattern::Email),
    ];

    pub fn named(name: &str) -> Option<Pattern> {
        Pattern::ALL.iter().find(|(n, _)| *n == name).map(|(_, p)| *p)
    }

    /// Appends to `found` the spans of `text` (a string value's escaped content) to redact.
    pub fn find(self, text: &[u8], found: &mut Vec<Range<usize>>) {
        match self {
            Pattern::BearerToken => bearer_tokens(text, found),
            Pattern::PasswordKv => secret_values(text, found),
            Pattern::CreditCard => card_numbers(text, found),
            Pattern::Email => emails(text, found),
        }
    }

    /// Whether a field whose name (its path's last part) is `key` holds a secret by its name.
    pub fn redacts_field_named(self, key: &[u8]) -> bool {
        self == Pattern::PasswordKv && is_secret_key(key)
    }
}

/// Some of the patterns, as a set.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PatternSet(u8);

impl PatternSet {
    fn has(self, p: Pattern) -> bool {
        self.0 & (1 << p as u8) != 0
    }

    /// Whether one of these patterns can find anything in a document made from the line `raw`:
    /// `false` only when none can, so that such a line's document need not be read. What a
    /// document holds of its line is the line's text, decoded at most from JSON escapes (which
    /// any backslash in the line could be) or logfmt quotes (which keep keys and words whole).
    /// One look at the line for all of them, cheapest first.
    pub fn may_occur_in(self, raw: &[u8]) -> bool {
        if self.0 == 0 {
            return false;
        }
        if memchr::memchr(b'\\', raw).is_some() || self.has(Pattern::Email) && memchr::memchr(b'@', raw).is_some() {
            return true;
        }
        let (bearer, secret) = (self.has(Pattern::BearerToken), self.has(Pattern::PasswordKv));
        if (bearer || secret) && holds_word(raw, bearer, secret) {
            return true;
        }
        self.has(Pattern::CreditCard) && holds_card_number(raw)
    }
}

impl FromIterator<Pattern> for PatternSet {
    fn from_iter<I: IntoIterator<Item = Pattern>>(patterns: I) -> PatternSet {
        PatternSet(patterns.into_iter().fold(0, |set, p| set | 1 << p as u8))
    }
}

/// Key names that say their value is a secret (ASCII case ignored).
const SECRET_WORDS: [&[u8]; 6] = [b"password", b"passwd", b"secret", b"token", b"api_key", b"apikey"];

/// The words [`holds_word`] looks for, each with a SIMD searcher built once: "bearer", then
/// what every secret word holds ("passw" for password and passwd, "key" for api_key and apikey,
/// searched for in full only where "key" is).
struct Finders {
    bearer: memchr::memmem::Finder<'static>,
    secret: [memchr::memmem::Finder<'static>; 4],
    api_keys: [memchr::memmem::Finder<'static>; 2],
}

static FINDERS: std::sync::LazyLock<Finders> = std::sync::LazyLock::new(|| Finders {
    bearer: memchr::memmem::Finder::new(b"bearer"),
    secret: [b"passw".as_slice(), b"secret", b"token", b"key"].map(memchr::memmem::Finder::new),
    api_keys: [b"api_key".as_slice(), b"apikey"].map(memchr::memmem::Finder::new),
});

thread_local! {
    /// The line in lowercase, for [`holds_word`]: folded once, then searched with memmem.
    static FOLDED: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Whether `text` holds, in any case, "bearer" (if `bearer`) or a secret word (if `secret`):
/// the text folded to lowercase once, then each word found with SIMD memmem (a
/// case-insensitive automaton was several times slower on log lines).
fn holds_word(text: &[u8], bearer: bool, secret: bool) -> bool {
    FOLDED.with(|folded| {
        let mut folded = folded.borrow_mut();
        folded.clear();
        folded.extend_from_slice(text);
        folded.make_ascii_lowercase();
        let finders = &*FINDERS;
        let found = |f: &memchr::memmem::Finder<'_>| f.find(&folded).is_some();
        bearer && found(&finders.bearer)
            || secret
                && finders
                    .secret
                    .iter()
                    .enumerate()
                    .any(|(n, f)| found(f) && (n < 3 || finders.api_keys.iter().any(|f| f.find(&folded).is_some())))
    })
}

fn is_secret_key(key: &[u8]) -> bool {
    SECRET_WORDS.iter().any(|word| key.windows(word.len()).any(|w| w.eq_ignore_ascii_case(word)))
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

/// `text[range]`, or nothing where it is out of bounds (spans are made in bounds; this keeps
/// a mistake from being a panic).
fn part(text: &[u8], range: Range<usize>) -> &[u8] {
    text.get(range).unwrap_or_default()
}

fn after(text: &[u8], at: usize) -> &[u8] {
    text.get(at..).unwrap_or_default()
}

fn before(text: &[u8], at: usize) -> &[u8] {
    text.get(..at).unwrap_or_default()
}

/// Whether the byte before `at` is a letter or digit.
fn word_before(text: &[u8], at: usize) -> bool {
    at.checked_sub(1).and_then(|i| text.get(i)).is_some_and(|b| is_word(*b))
}

fn bearer_tokens(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(n) = memchr::memchr2(b'b', b'B', after(text, from)) {
        let at = from + n;
        from = at + 1;
        let Some(word) = text.get(at..at + 6) else { return };
        if !word.eq_ignore_ascii_case(b"bearer") || word_before(text, at) {
            continue;
        }
        let spaces = after(text, at + 6).iter().take_while(|b| **b == b' ').count();
        let start = at + 6 + spaces;
        let token = after(text, start)
            .iter()
            .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'='))
            .count();
        // Tokens are long; a short word after "bearer" is prose.
        if spaces > 0 && token >= 8 {
            found.push(start..start + token);
            from = start + token;
        }
    }
}

/// The value after each `=` or `:` whose key is named like a secret.
fn secret_values(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut from = 0;
    while let Some(n) = memchr::memchr2(b'=', b':', after(text, from)) {
        let sep = from + n;
        from = sep + 1;
        // The key: word characters before the separator, inside escaped quotes (`\"key\":`).
        let mut end = sep;
        if before(text, end).ends_with(b"\\\"") {
            end -= 2;
        }
        let start = end
            - before(text, end)
                .iter()
                .rev()
                .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
                .count();
        if start == end || !is_secret_key(part(text, start..end)) {
            continue;
        }
        let mut at = sep + 1;
        at += after(text, at).iter().take_while(|b| **b == b' ').count();
        let value = if after(text, at).starts_with(b"\\\"") {
            at += 2;
            let rest = after(text, at);
            let len = memchr::memmem::find(rest, b"\\\"").unwrap_or(rest.len());
            at..at + len
        } else {
            let len =
                after(text, at).iter().take_while(|b| !matches!(b, b' ' | b'&' | b',' | b';' | b'\\' | b'}')).count();
            at..at + len
        };
        if !value.is_empty() {
            from = value.end;
            found.push(value);
        }
    }
}

fn card_numbers(text: &[u8], found: &mut Vec<Range<usize>>) {
    let mut i = 0;
    while let Some(&first) = text.get(i) {
        if !first.is_ascii_digit() {
            let Some(next) = next_digit(text, i) else { return };
            i = next;
            continue;
        }
        if word_before(text, i) {
            // Inside a word (`a4f3`, `web1`): past it whole.
            i += after(text, i).iter().take_while(|b| is_word(**b)).count();
            continue;
        }
        // Digits, with single spaces or dashes between groups; the first 20 kept (more is no card).
        let start = i;
        let (mut digits, mut count) = ([0u8; 20], 0usize);
        let mut end = i;
        while let Some(&b) = text.get(i) {
            match b {
                b @ b'0'..=b'9' => {
                    if let Some(d) = digits.get_mut(count) {
                        *d = b - b'0';
                    }
                    count += 1;
                    i += 1;
                    end = i;
                }
                b' ' | b'-' if text.get(i + 1).is_some_and(u8::is_ascii_digit) && end == i => i += 1,
                _ => break,
            }
        }
        let followed_by_word = text.get(end).is_some_and(|b| is_word(*b));
        let issuer = (2..=6).contains(&digits[0]);
        let digits = digits.get(..count).unwrap_or_default();
        if (13..=19).contains(&count) && issuer && !followed_by_word && luhn(digits) {
            found.push(start..end);
        }
        i = end.max(start + 1);
    }
}

/// Whether [`card_numbers`] finds a card number in `text`. A card is 13 digits or more, with
/// at most spaces and dashes between: only a stretch of 13 such bytes can hold one, and the
/// byte 12 places on tells whether one can start anywhere before it. So most of a line is
/// stepped over 13 bytes at a time (a log line is mostly letters, `=` and the like), and only
/// such stretches, with a byte either side, are read digit by digit.
fn holds_card_number(text: &[u8]) -> bool {
    let in_card = |b: &u8| b.is_ascii_digit() || matches!(b, b' ' | b'-');
    // Every byte before `i` is known to start no such stretch; the one at `i - 1` is no digit,
    // space or dash.
    let mut i = 0;
    while let Some(last) = text.get(i + 12) {
        if !in_card(last) {
            i += 13;
            continue;
        }
        if let Some(k) = part(text, i..i + 12).iter().rposition(|b| !in_card(b)) {
            i += k + 1;
            continue;
        }
        let end = i + 13 + after(text, i + 13).iter().take_while(|b| in_card(b)).count();
        if holds_card_digits(part(text, i.saturating_sub(1)..(end + 1).min(text.len()))) {
            return true;
        }
        i = end + 1;
    }
    false
}

/// [`holds_card_number`] reading every byte: the same runs of digits as [`card_numbers`], in
/// one pass with no look back (a digit inside a word starts no run; a run ends at a byte that
/// is neither a digit nor a single space or dash between digits), stopping at the first card.
fn holds_card_digits(text: &[u8]) -> bool {
    // The run being read: its digits, its first, and its Luhn sums with every digit at an even
    // (0) or odd (1) position from its start doubled (which one is doubled depends on its length).
    let (mut count, mut first, mut sums) = (0usize, 0u8, [0u32; 2]);
    let mut prev = 0u8;
    let is_card = |count: usize, first: u8, sums: [u32; 2]| {
        (13..=19).contains(&count)
            && (2..=6).contains(&first)
            && sums.get(count % 2).is_some_and(|s| s.is_multiple_of(10))
    };
    for (i, &b) in text.iter().enumerate() {
        let digit = b.wrapping_sub(b'0');
        if digit < 10 {
            if count == 0 {
                if is_word(prev) {
                    prev = b;
                    continue;
                }
                (first, sums) = (digit, [0, 0]);
            }
            let doubled = u32::from(if digit > 4 { digit * 2 - 9 } else { digit * 2 });
            // Doubled at this position's parity, plain at the other.
            let (even, odd) = if count % 2 == 0 { (doubled, u32::from(digit)) } else { (u32::from(digit), doubled) };
            sums[0] += even;
            sums[1] += odd;
            count += 1;
        } else if count > 0 {
            let between_digits =
                matches!(b, b' ' | b'-') && prev.is_ascii_digit() && text.get(i + 1).is_some_and(u8::is_ascii_digit);
            if !between_digits {
                if !is_word(b) && is_card(count, first, sums) {
                    return true;
                }
                count = 0;
            }
        }
        prev = b;
    }
    count > 0 && is_card(count, first, sums)
}

/// Where the next ASCII digit is, from `from` on: eight bytes at a time where there is none.
fn next_digit(text: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while let Some(chunk) = text.get(i..i + 8).and_then(|c| <[u8; 8]>::try_from(c).ok()) {
        // Digits become 0..=9; a byte below 10 is found as in "Bit Twiddling Hacks" (hasless).
        let x = u64::from_le_bytes(chunk) ^ 0x3030_3030_3030_3030;
        if x.wrapping_sub(0x0a0a_0a0a_0a0a_0a0a) & !x & 0x8080_8080_8080_8080 != 0 {
            break;
        }
        i += 8;
    }
    after(text, i).iter().position(u8::is_ascii_digit).map(|n| i + n)
}

fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(*d);
            if i % 2 == 1 {
                let twice = d * 2;
                if twice > 9 {
                    twice - 9
                } else {
                    twice
                }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

fn emails(text: &[u8], found: &mut Vec<Range<usize>>) {
    let local = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-');
    let domain = |b: &u8| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-');
    for at in memchr::memchr_iter(b'@', text) {
        let start = at - before(text, at).iter().rev().take_while(|b| local(b)).count();
        let mut end = at + 1 + after(text, at + 1).iter().take_while(|b| domain(b)).count();
        // A sentence's full stop is not part of the domain.
        while end > at + 1 && text.get(end - 1) == Some(&b'.') {
            end -= 1;
        }
        let host = part(text, at + 1..end);
        let tld = host.rsplit(|b| *b == b'.').next().unwrap_or_default();
        let dotted = host.contains(&b'.') && !host.starts_with(b".");
        if start < at && dotted && tld.len() >= 2 && tld.iter().all(u8::is_ascii_alphabetic) {
            found.push(start..end);
        }
    }
}

/// `text` with every span in `found` (in any order, overlapping or not) replaced by
/// [`REDACTED`]; `None` when there is none.
pub fn replaced(text: &[u8], found: &mut [Range<usize>]) -> Option<Vec<u8>> {
    if found.is_empty() {
        return None;
    }
    // A find that begins or ends inside an escape (`\n`, `\u00e9`) takes the whole escape:
    // half of one left behind would not be JSON.
    let escapes = escapes(text);
    for span in found.iter_mut() {
        let (start, end) = (span.start, span.end);
        if let Some(e) = escapes.iter().find(|e| e.start < start && start < e.end) {
            span.start = e.start;
        }
        if let Some(e) = escapes.iter().find(|e| e.start < end && end < e.end) {
            span.end = e.end;
        }
    }
    found.sort_by_key(|r| r.start);
    let mut out = Vec::with_capacity(text.len());
    let mut at = 0;
    for span in found.iter() {
        if span.end <= at {
            continue;
        }
        let start = span.start.max(at);
        out.extend_from_slice(part(text, at..start));
        if start == span.start {
            out.extend_from_slice(REDACTED.as_bytes());
        }
        at = span.end;
    }
    out.extend_from_slice(after(text, at));
    Some(out)
}

/// Where each escape sequence of a JSON string's escaped content is.
fn escapes(text: &[u8]) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(n) = memchr::memchr(b'\\', after(text, from)) {
        let at = from + n;
        let len = if text.get(at + 1) == Some(&b'u') { 6 } else { 2 };
        out.push(at..(at + len).min(text.len()));
        from = at + len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn redact(pattern: Pattern, text: &str) -> String {
        let mut found = Vec::new();
        pattern.find(text.as_bytes(), &mut found);
        replaced(text.as_bytes(), &mut found).map_or_else(|| text.to_owned(), |t| String::from_utf8(t).unwrap())
    }

    #[test]
    fn bearer_tokens_lose_the_token_only() {
        let p = Pattern::BearerToken;
        assert_eq!(redact(p, "auth=Bearer eyJhbGciOi.J9x-_ ok"), "auth=Bearer [REDACTED] ok");
        assert_eq!(redact(p, "authorization: bearer abc12345=="), "authorization: bearer [REDACTED]");
        assert_eq!(redact(p, "the bearer of bad news"), "the bearer of bad news");
        assert_eq!(redact(p, "Bearer"), "Bearer");
        assert_eq!(redact(p, "unbearer x"), "unbearer x");
    }

    #[test]
    fn values_of_keys_named_like_secrets_in_logfmt_json_and_urls() {
        let p = Pattern::PasswordKv;
        assert_eq!(redact(p, "user=ann password=hunter2 at=info"), "user=ann password=[REDACTED] at=info");
        assert_eq!(redact(p, r#"password=\"two words\" x=1"#), r#"password=\"[REDACTED]\" x=1"#);
        assert_eq!(
            redact(p, r#"{\"DB_PASSWORD\":\"s3cr3t\",\"user\":\"ann\"}"#),
            r#"{\"DB_PASSWORD\":\"[REDACTED]\",\"user\":\"ann\"}"#
        );
        assert_eq!(redact(p, "GET /login?access_token=abc&next=/"), "GET /login?access_token=[REDACTED]&next=/");
        assert_eq!(redact(p, "client_secret: xyz"), "client_secret: [REDACTED]");
        assert_eq!(
            redact(p, "at=2024-01-01T00:00:00Z tokens_used=12"),
            "at=2024-01-01T00:00:00Z tokens_used=[REDACTED]"
        );
        assert_eq!(redact(p, "user=ann status=ok"), "user=ann status=ok");
        assert!(p.redacts_field_named(b"Password") && p.redacts_field_named(b"stripe_api_key"));
        assert!(!p.redacts_field_named(b"user") && !Pattern::Email.redacts_field_named(b"password"));
    }

    #[test]
    fn card_numbers_that_pass_luhn_and_no_other_digits() {
        let p = Pattern::CreditCard;
        assert_eq!(redact(p, "card 4111 1111 1111 1111 ok"), "card [REDACTED] ok");
        assert_eq!(redact(p, "card=4111-1111-1111-1111"), "card=[REDACTED]");
        assert_eq!(redact(p, "amex 378282246310005."), "amex [REDACTED].");
        assert_eq!(redact(p, "not luhn 4111111111111112"), "not luhn 4111111111111112");
        assert_eq!(redact(p, "epoch ms 1700000000000"), "epoch ms 1700000000000", "starts with 1");
        assert_eq!(redact(p, "id=a4111111111111111"), "id=a4111111111111111", "part of a word");
        assert_eq!(redact(p, "2024-01-01 12:00:00 took 13 ms"), "2024-01-01 12:00:00 took 13 ms");
        assert_eq!(redact(p, "41111111111111111111111"), "41111111111111111111111", "too long");
    }

    #[test]
    fn the_next_digit_is_found_past_any_run_of_others() {
        let text = b"abcdefghijklmnopqrstuvwxyz ABCDEFGHIJ:;<=>?/ 7 and \xff\x80 9";
        assert_eq!(next_digit(text, 0), Some(45));
        assert_eq!(next_digit(text, 46), Some(text.len() - 1));
        assert_eq!(next_digit(b"no digits at all, none", 0), None);
        for at in 0..20 {
            let mut t = vec![b'x'; 20];
            t[at] = b'0';
            assert_eq!(next_digit(&t, 0), Some(at));
        }
    }

    #[test]
    fn emails_whole() {
        let p = Pattern::Email;
        assert_eq!(redact(p, "sent to ann.lee+x@mail.example.com."), "sent to [REDACTED].");
        assert_eq!(redact(p, "git@github"), "git@github");
        assert_eq!(redact(p, "@home.com and a@b.c1"), "@home.com and a@b.c1");
        assert_eq!(redact(p, "a@b.io,c@d.org"), "[REDACTED],[REDACTED]");
    }

    #[test]
    fn a_find_next_to_an_escape_takes_the_whole_escape() {
        // `\n` before an email: `n` is a character an address may start with.
        assert_eq!(redact(Pattern::Email, r"line\nann@example.com"), r"line[REDACTED]");
        assert_eq!(redact(Pattern::Email, r"\u00e9ann@example.com x"), r"[REDACTED] x");
        let mut inside_an_escape = [Range { start: 3, end: 5 }];
        assert_eq!(replaced(br"ab\u0041cd", &mut inside_an_escape).unwrap(), b"ab[REDACTED]cd");
    }

    #[test]
    fn overlapping_finds_are_one_redaction() {
        let text = b"0123456789";
        assert_eq!(replaced(text, &mut [5..8, 1..3, 2..6]).unwrap(), b"0[REDACTED]89");
        assert_eq!(replaced(text, &mut []), None);
    }

    #[test]
    fn what_a_line_cannot_hold_is_told_before_its_document_is_read() {
        let router = br#"at=info method=GET path="/cart" host=shop.example.com request_id=0f3 fwd="198.51.100.23" dyno=web.1 connect=1ms service=18ms status=200 bytes=975 protocol=https 2025-03-14T09:26:53.589793+00:00"#;
        let one = |p: Pattern| PatternSet::from_iter([p]);
        let all = PatternSet::from_iter(Pattern::ALL.map(|(_, p)| p));
        assert!(!all.may_occur_in(router));
        assert!(!PatternSet::default().may_occur_in(br"a\u0040b.co"));
        let lines: [&[u8]; 5] =
            [b"Authorization: BEARER x", b"DB_PassWord=x", br#"{"api_key":"x"}"#, b"4111-1111-1111-1111", b"a@b.co"];
        let finds =
            [Pattern::BearerToken, Pattern::PasswordKv, Pattern::PasswordKv, Pattern::CreditCard, Pattern::Email];
        for (line, found_by) in lines.iter().zip(finds) {
            assert!(all.may_occur_in(line));
            for (_, p) in Pattern::ALL {
                assert_eq!(one(p).may_occur_in(line), p == found_by, "{p:?} in {line:?}");
            }
        }
        // An escape could be anything once decoded.
        assert!(one(Pattern::Email).may_occur_in(br#"{"to":"ann\u0040example.com"}"#));
    }

    /// The one-pass check and the scan that finds card numbers agree, on digits, separators and
    /// word characters in every order (a fixed pseudo-random sample, and known cards).
    #[test]
    fn a_card_number_is_told_as_the_scan_finds_it() {
        let agree = |text: &[u8]| {
            let mut found = Vec::new();
            card_numbers(text, &mut found);
            assert_eq!(holds_card_number(text), !found.is_empty(), "{:?}", String::from_utf8_lossy(text));
            !found.is_empty()
        };
        for card in ["4111111111111111", "4111 1111 1111 1111", "x 5500-0000-0000-0004.", "378282246310005"] {
            agree(card.as_bytes());
            assert!(holds_card_number(card.as_bytes()), "{card}");
        }
        let dense: &[u8] = b"0123456789012345678901234567890123456789 - -xa.";
        let sparse: &[u8] = b"0123456789012345678901234567890123456789 - -xa.=bcdefghijklmnopqrs\"/";
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut cards = 0;
        for n in 0..400_000 {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            let (alphabet, len) = if n % 2 == 0 { (dense, state % 40) } else { (sparse, state % 90) };
            let text: Vec<u8> = (0..len as usize)
                .map(|i| alphabet[((state >> (i % 58)) as usize ^ i.wrapping_mul(2_654_435_761)) % alphabet.len()])
                .collect();
            cards += usize::from(agree(&text));
        }
        assert!(cards > 1_000, "the sample holds cards ({cards})");
    }

    #[test]
    fn every_pattern_is_found_by_its_name() {
        for (name, p) in Pattern::ALL {
            assert_eq!(Pattern::named(name), Some(p));
        }
        assert_eq!(Pattern::named("ssn"), None);
    }
}
