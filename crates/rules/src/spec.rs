//! Rules as the operator writes them, `[[rule]]` tables in the TOML configuration file, read
//! and checked into [`Rules`]: every problem is found (not only the first), with its line.

use std::collections::BTreeMap;
use std::num::NonZeroU64;

use serde::Deserialize;

use crate::patterns::Pattern;
use crate::{Action, Condition, Rule, Rules, Test};

/// A problem with the rules of a file, at a line of it (1-based; 0 when the file has no line
/// to point at).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for RuleError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// A value written as a string, a number or a boolean (`equals = 404`, `status = "5xx"`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Text {
    String(String),
    Integer(i64),
    Boolean(bool),
}

/// One `[[rule]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleSpec {
    name: Option<String>,
    dataset: Option<String>,
    app: Option<String>,
    level: Option<String>,
    field: Option<String>,
    equals: Option<Text>,
    prefix: Option<String>,
    regex: Option<String>,
    status: Option<Text>,
    action: String,
    rate: Option<u64>,
    fields: Option<Vec<String>>,
    patterns: Option<Vec<String>>,
    namespace: Option<String>,
    labels: Option<BTreeMap<String, String>>,
}

/// The configuration file as rules read it: its `[[rule]]` tables; every other key is an
/// option's, for the options to read.
#[derive(Deserialize)]
struct RulesFile {
    #[serde(default)]
    rule: Vec<toml::Spanned<RuleSpec>>,
}

/// What a rule's field names are checked against: whether documents can have the field.
pub type KnownField<'a> = &'a dyn Fn(&str) -> bool;

impl Rules {
    /// The rules of the configuration file `text`, checked: TOML and unknown keys, bad regexes,
    /// unknown datasets, patterns and document fields (by `known_field`), names, values, and
    /// rules an earlier `drop` leaves nothing to match.
    pub fn parse(text: &str, known_field: KnownField<'_>) -> Result<Rules, Vec<RuleError>> {
        let file: RulesFile = toml::from_str(text).map_err(|e| {
            let line = e.span().map_or(0, |span| line_of(text, span.start));
            let message = e.message().trim_end().to_owned();
            vec![RuleError { line, message }]
        })?;
        let mut errors = Vec::new();
        let mut rules = Vec::new();
        for (n, spec) in file.rule.into_iter().enumerate() {
            let line = line_of(text, spec.span().start);
            match rule(n + 1, line, spec.into_inner(), known_field) {
                Ok(rule) => rules.push(rule),
                Err(messages) => errors.extend(messages.into_iter().map(|message| RuleError { line, message })),
            }
        }
        errors.extend(duplicate_names(&rules));
        errors.extend(unreachable(&rules));
        if errors.is_empty() {
            Ok(Rules::new(rules))
        } else {
            Err(errors)
        }
    }
}

fn line_of(text: &str, at: usize) -> usize {
    text.as_bytes().iter().take(at).filter(|b| **b == b'\n').count() + 1
}

/// One rule from its table, or everything wrong with it.
fn rule(n: usize, line: usize, spec: RuleSpec, known_field: KnownField<'_>) -> Result<Rule, Vec<String>> {
    let mut errors = Vec::new();
    let name = spec.name.clone().unwrap_or_else(|| format!("rule-{n}"));
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.')) {
        errors.push(format!("name {name:?}: use letters, digits, '-', '_' and '.'"));
    }
    let conditions = conditions(&spec, known_field, &mut errors);
    let action = action(spec, known_field, &mut errors);
    match action {
        Some(action) if errors.is_empty() => Ok(Rule { name, line, conditions, action }),
        _ => Err(errors.into_iter().map(|e| format!("rule {name}: {e}")).collect()),
    }
}

fn conditions(spec: &RuleSpec, known_field: KnownField<'_>, errors: &mut Vec<String>) -> Vec<Condition> {
    let mut conditions = Vec::new();
    if let Some(dataset) = &spec.dataset {
        let full = if dataset.contains('.') { dataset.clone() } else { format!("heroku.{dataset}") };
        if drainpipe_transform::Dataset::ALL.iter().any(|d| d.as_str() == full) {
            conditions.push(Condition { at: 0, path: "event.dataset".into(), test: Test::Equals(full) });
        } else {
            let known: Vec<&str> = drainpipe_transform::Dataset::ALL.iter().map(|d| d.as_str()).collect();
            errors.push(format!("unknown dataset {dataset:?} (one of {})", known.join(", ")));
        }
    }
    if let Some(app) = &spec.app {
        conditions.push(Condition { at: 0, path: "heroku.app".into(), test: Test::Equals(app.clone()) });
    }
    if let Some(level) = &spec.level {
        conditions.push(Condition { at: 0, path: "log.level".into(), test: Test::Equals(level.to_ascii_lowercase()) });
    }
    if let Some(status) = &spec.status {
        match status_range(&status_text(status)) {
            Some((low, high)) => conditions.push(Condition {
                at: 0,
                path: "http.response.status_code".into(),
                test: Test::Range(low, high),
            }),
            None => errors
                .push(format!("status {:?}: a status (404), a class (5xx) or a range (200-299)", status_text(status))),
        }
    }
    let tests = [spec.equals.is_some(), spec.prefix.is_some(), spec.regex.is_some()];
    match (&spec.field, tests.iter().filter(|t| **t).count()) {
        (Some(field), 1) => {
            if !known_field(field) {
                errors.push(format!("unknown field {field:?}: no document has it (docs/fields.md)"));
            }
            let test = if let Some(equals) = &spec.equals {
                Some(Test::Equals(status_text(equals)))
            } else if let Some(prefix) = &spec.prefix {
                Some(Test::Prefix(prefix.clone()))
            } else {
                spec.regex.as_deref().and_then(|r| match regex::Regex::new(r) {
                    Ok(re) => Some(Test::Regex(re)),
                    Err(e) => {
                        let first = e.to_string().lines().last().unwrap_or_default().trim().to_owned();
                        errors.push(format!("regex {r:?}: {first}"));
                        None
                    }
                })
            };
            if let Some(test) = test {
                conditions.push(Condition { at: 0, path: field.clone(), test });
            }
        }
        (Some(_), _) => errors.push("field needs exactly one of equals, prefix or regex".into()),
        (None, 0) => {}
        (None, _) => errors.push("equals, prefix and regex need a field".into()),
    }
    conditions
}

fn status_text(text: &Text) -> String {
    match text {
        Text::String(s) => s.clone(),
        Text::Integer(n) => n.to_string(),
        Text::Boolean(b) => b.to_string(),
    }
}

/// `404`, `5xx` or `200-299` as an inclusive range.
fn status_range(text: &str) -> Option<(u16, u16)> {
    let text = text.trim();
    if let Some(class) = text.strip_suffix("xx") {
        let c: u16 = class.parse().ok().filter(|c| (1..=5).contains(c))?;
        return Some((c * 100, c * 100 + 99));
    }
    let (low, high) = text.split_once('-').unwrap_or((text, text));
    let (low, high): (u16, u16) = (low.trim().parse().ok()?, high.trim().parse().ok()?);
    (low <= high && (100..=599).contains(&low) && high <= 599).then_some((low, high))
}

fn action(spec: RuleSpec, known_field: KnownField<'_>, errors: &mut Vec<String>) -> Option<Action> {
    let RuleSpec { action, rate, fields, patterns, namespace, labels, .. } = spec;
    let given = [
        ("rate", rate.is_some()),
        ("fields", fields.is_some()),
        ("patterns", patterns.is_some()),
        ("namespace", namespace.is_some()),
        ("labels", labels.is_some()),
    ];
    let takes: &[&str] = match action.as_str() {
        "drop" => &[],
        "sample" => &["rate"],
        "redact" => &["fields", "patterns"],
        "namespace" => &["namespace"],
        "label" => &["labels"],
        other => {
            errors.push(format!("action {other:?}: one of drop, sample, redact, namespace, label"));
            return None;
        }
    };
    for (key, _) in given.iter().filter(|(key, set)| *set && !takes.contains(key)) {
        errors.push(format!("{key} does not go with action {action:?}"));
    }
    match action.as_str() {
        "drop" => Some(Action::Drop),
        "sample" => match rate.and_then(NonZeroU64::new) {
            Some(rate) => Some(Action::Sample(rate)),
            None => {
                errors.push("sample needs rate = N (keep 1 in N), N at least 1".into());
                None
            }
        },
        "redact" => redaction(fields.unwrap_or_default(), patterns.unwrap_or_default(), known_field, errors),
        "namespace" => match namespace {
            Some(ns) => match drainpipe_transform::namespace_problem(&ns) {
                None => Some(Action::Namespace(ns)),
                Some(problem) => {
                    errors.push(format!("namespace: {problem}"));
                    None
                }
            },
            None => {
                errors.push("namespace needs namespace = \"NAME\"".into());
                None
            }
        },
        _ => match labels.filter(|l| !l.is_empty()) {
            Some(labels) => {
                for key in labels.keys().filter(|k| !valid_label_key(k)) {
                    errors.push(format!("label {key:?}: use lowercase letters, digits and '_'"));
                }
                Some(Action::Label(labels.into_iter().collect()))
            }
            None => {
                errors.push("label needs labels = { key = \"value\" }".into());
                None
            }
        },
    }
}

fn redaction(
    fields: Vec<String>,
    patterns: Vec<String>,
    known_field: KnownField<'_>,
    errors: &mut Vec<String>,
) -> Option<Action> {
    if fields.is_empty() && patterns.is_empty() {
        errors.push("redact needs fields = [...] or patterns = [...]".into());
        return None;
    }
    for field in fields.iter().filter(|f| !known_field(f)) {
        errors.push(format!("unknown field {field:?}: no document has it (docs/fields.md)"));
    }
    // Without these a data stream refuses the document, or puts it elsewhere.
    for field in fields.iter().filter(|f| *f == "@timestamp" || *f == "data_stream" || f.starts_with("data_stream.")) {
        errors.push(format!("{field:?} cannot be redacted: a data stream needs it as it is"));
    }
    let mut found = Vec::new();
    for name in &patterns {
        match Pattern::named(name) {
            Some(p) => found.push(p),
            None => {
                let known: Vec<&str> = Pattern::ALL.iter().map(|(n, _)| *n).collect();
                errors.push(format!("unknown pattern {name:?} (one of {})", known.join(", ")));
            }
        }
    }
    Some(Action::Redact { fields, patterns: found })
}

fn valid_label_key(key: &str) -> bool {
    !key.is_empty() && key.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

fn duplicate_names(rules: &[Rule]) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        if let Some(first) = rules.iter().take(i).find(|r| r.name == rule.name) {
            errors.push(RuleError {
                line: rule.line,
                message: format!("rule {}: the name of the rule at line {} too", rule.name, first.line),
            });
        }
    }
    errors
}

/// Rules that can never act: an earlier `drop` matches everything they match (its conditions
/// are among theirs).
fn unreachable(rules: &[Rule]) -> Vec<RuleError> {
    let mut errors = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let covering = rules.iter().take(i).find(|earlier| {
            matches!(earlier.action, Action::Drop)
                && earlier.conditions.iter().all(|c| rule.conditions.iter().any(|d| c.same_as(d)))
        });
        if let Some(earlier) = covering {
            errors.push(RuleError {
                line: rule.line,
                message: format!(
                    "rule {}: unreachable, rule {} (line {}) drops every line it matches",
                    rule.name, earlier.name, earlier.line
                ),
            });
        }
    }
    errors
}

#[cfg(test)]
mod tests {
    use super::*;

    fn any_field(_: &str) -> bool {
        true
    }

    fn errors(text: &str) -> Vec<String> {
        Rules::parse(text, &|f| f != "http.nope").err().unwrap_or_default().iter().map(ToString::to_string).collect()
    }

    #[test]
    fn every_action_and_match_reads() {
        let text = r#"
port = 8080

[[rule]]
name = "health"
dataset = "router"
field = "url.path"
equals = "/health"
action = "drop"

[[rule]]
dataset = "heroku.router"
status = "2xx"
action = "sample"
rate = 10

[[rule]]
name = "secrets"
action = "redact"
patterns = ["bearer-token", "password-kv", "credit-card", "email"]
fields = ["app.card"]

[[rule]]
name = "staging"
field = "heroku.app"
regex = "-staging$"
action = "namespace"
namespace = "staging"

[[rule]]
app = "shop"
level = "DEBUG"
action = "label"
labels = { noisy = "yes" }
"#;
        let rules = Rules::parse(text, &any_field).unwrap();
        let names: Vec<&str> = rules.rules.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(names, ["health", "rule-2", "secrets", "staging", "rule-5"]);
        assert_eq!(rules.rules[0].line, 4);
        assert!(matches!(rules.rules[1].conditions[1].test, Test::Range(200, 299)));
        assert!(matches!(&rules.rules[4].conditions[1].test, Test::Equals(l) if l == "debug"));
    }

    #[test]
    fn each_problem_is_named_with_its_line() {
        let text = r#"[[rule]]
action = "drop"
dataset = "routr"

[[rule]]
field = "url.path"
regex = "(unclosed"
action = "sample"

[[rule]]
field = "http.nope"
prefix = "x"
action = "redact"
patterns = ["ssn"]
namespace = "x"
"#;
        let got = errors(text);
        assert_eq!(got.len(), 6, "{got:#?}");
        assert!(got[0].starts_with("line 1: rule rule-1: unknown dataset \"routr\""), "{got:#?}");
        assert!(got[1].starts_with("line 5: rule rule-2: regex \"(unclosed\""), "{got:#?}");
        assert!(got[2].contains("sample needs rate"), "{got:#?}");
        assert!(got[3].starts_with("line 10: rule rule-3: unknown field \"http.nope\""), "{got:#?}");
        assert!(got[4].contains("namespace does not go with action \"redact\""), "{got:#?}");
        assert!(got[5].contains("unknown pattern \"ssn\""), "{got:#?}");
    }

    #[test]
    fn unknown_keys_bad_toml_duplicates_and_unreachable_rules() {
        let got = errors("[[rule]]\naction = \"drop\"\nacton = \"drop\"\n");
        assert!(got[0].starts_with("line 3: unknown field `acton`"), "{got:#?}");
        let got = errors("[[rule]]\naction = \n");
        assert!(got[0].starts_with("line 2: "), "{got:#?}");
        let text = r#"
[[rule]]
name = "a"
dataset = "router"
action = "drop"

[[rule]]
name = "a"
dataset = "router"
status = 200
action = "label"
labels = { x = "y" }

[[rule]]
name = "c"
app = "shop"
action = "drop"
"#;
        let got = errors(text);
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].starts_with("line 7: rule a: the name of the rule at line 2 too"), "{got:#?}");
        assert!(got[1].starts_with("line 7: rule a: unreachable, rule a (line 2)"), "{got:#?}");
        assert!(errors("[[rule]]\naction = \"drop\"\n[[rule]]\naction = \"drop\"\n")[0].contains("unreachable"));
        let got = errors("[[rule]]\naction = \"redact\"\nfields = [\"@timestamp\", \"data_stream.namespace\"]\n");
        assert_eq!(got.len(), 2, "{got:#?}");
        assert!(got[0].contains("\"@timestamp\" cannot be redacted"), "{got:#?}");
        // A namespace is checked as `--namespace` is.
        for bad in ["Prod", "a-b", "é", ""] {
            let got = errors(&format!("[[rule]]\naction = \"namespace\"\nnamespace = \"{bad}\"\n"));
            assert!(got[0].contains("rule rule-1: namespace: "), "{bad}: {got:#?}");
        }
    }

    #[test]
    fn statuses() {
        assert_eq!(status_range("404"), Some((404, 404)));
        assert_eq!(status_range("5xx"), Some((500, 599)));
        assert_eq!(status_range("200 - 299"), Some((200, 299)));
        for bad in ["6xx", "299-200", "abc", "", "99"] {
            assert_eq!(status_range(bad), None, "{bad}");
        }
    }
}
