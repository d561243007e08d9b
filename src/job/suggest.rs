//! Plain words for the YAML library's errors, and suggestions that know the job file's words.

use super::{Pos, Problem};

/// A minimal job file, shown when there is nothing to build on.
const MINIMAL_JOB: &str = "version: 1\ntenants:\n  - id: <tenant UUID>";

/// Problems of the file's layout that the YAML parser words for programmers: an empty file and
/// tabs in indentation. Checked before parsing, so each gets its own message.
pub(super) fn layout_problem(text: &str) -> Option<Problem> {
    let has_content = text.lines().any(|line| {
        let line = line.trim();
        !line.is_empty() && !line.starts_with('#') && line != "---" && line != "..."
    });
    if !has_content {
        return Some(Problem {
            pos: None,
            message: "the job file is empty".into(),
            help: Some(format!(
                "a job file needs at least a version and one tenant:\n{MINIMAL_JOB}"
            )),
        });
    }
    for (i, line) in text.lines().enumerate() {
        let indent = &line[..line.len() - line.trim_start().len()];
        if let Some(column) = indent.chars().position(|c| c == '\t') {
            return Some(Problem {
                pos: Some(Pos {
                    line: i as u64 + 1,
                    column: column as u64 + 1,
                }),
                message: "a tab in the indentation; YAML indents with spaces only".into(),
                help: Some("replace the tab with spaces (two per level, as elsewhere)".into()),
            });
        }
    }
    None
}

/// The message and the fix for a YAML or serde error, `key` being the key path where it is.
pub(super) fn explain(message: &str, key: Option<&str>) -> (String, Option<String>) {
    // A list item's error names its list (`defaults.formats`, not `defaults.formats[0]`).
    let key_name = key
        .map(|k| {
            k.strip_suffix(']')
                .and_then(|k| k.rsplit_once('['))
                .map_or(k, |(k, _)| k)
        })
        .unwrap_or("this key");
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let given = rest.split('`').nth(1).unwrap_or_default();
        let valid = expected_words(rest);
        let parent = key
            .and_then(|k| k.rsplit_once('.').map(|(parent, _)| parent))
            .map_or(String::new(), |p| format!(" in `{p}`"));
        return (
            format!(
                "unknown key `{given}`{parent}; valid keys here: {}",
                quoted(&valid)
            ),
            Some(
                closest(given, &valid)
                    .map_or_else(|| "remove it".into(), |w| format!("did you mean `{w}`?")),
            ),
        );
    }
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let given = rest.split('`').nth(1).unwrap_or_default();
        let valid = expected_words(rest);
        return (
            format!(
                "`{given}` is not a valid value of `{key_name}`; it takes one of {}",
                quoted(&valid)
            ),
            Some(closest(given, &valid).map_or_else(
                || "write one of the values listed".into(),
                |w| format!("did you mean `{w}`?"),
            )),
        );
    }
    if let Some(rest) = message.strip_prefix("duplicate mapping key") {
        let dup = rest
            .trim_start_matches(':')
            .split(',')
            .next()
            .unwrap_or("")
            .trim();
        return (
            format!("key `{dup}` is a duplicate: it appears twice in the same mapping"),
            Some("keep only one of them".into()),
        );
    }
    let lower = message.to_lowercase();
    if lower.contains("sequence") && (lower.contains("expected") || lower.contains("invalid type"))
    {
        return (
            format!("`{key_name}` takes a list, not a single value"),
            Some(format!(
                "write the value in brackets, e.g. `{}: [{}]`",
                key_name.rsplit('.').next().unwrap_or("key"),
                list_example(Some(key_name))
            )),
        );
    }
    if lower.contains("end of input") || lower.contains("end of stream") {
        return (
            "the job file ends in the middle of a value".into(),
            Some("close every `[` with `]` and every `{` with `}`, or finish the last key".into()),
        );
    }
    if lower.contains("unclosed quote") {
        return (
            message.to_owned(),
            Some("end the value with the same quote it starts with".into()),
        );
    }
    if lower.contains("unclosed") {
        return (
            message.to_owned(),
            Some("close the list with `]` (or the mapping with `}`)".into()),
        );
    }
    if lower.contains("indent")
        || lower.contains("did not find expected")
        || lower.contains("mapping values are not allowed")
    {
        return (
            "the indentation does not match the lines above".into(),
            Some(
                "indent each key of a section by the same number of spaces (two per level), and list items with `- ` under their key"
                    .into(),
            ),
        );
    }
    if lower.contains("missing field") {
        let field = message.split('`').nth(1).unwrap_or_default();
        let example = match field {
            "version" => "version: 1".to_owned(),
            "tenants" => "tenants:\n  - id: <tenant UUID>".to_owned(),
            _ => format!("{field}: …"),
        };
        return (
            format!("`{field}` is missing"),
            Some(format!("add it: {example}")),
        );
    }
    if key == Some("version") {
        return (
            "`version` must be the number 1".into(),
            Some(
                "write `version: 1` on its own line, with the next key not indented under it"
                    .into(),
            ),
        );
    }
    // Our own messages put the fix after the first `; `.
    match message.split_once("; ") {
        Some((what, fix)) => (what.to_owned(), Some(fix.to_owned())),
        None => (message.to_owned(), None),
    }
}

fn list_example(key: Option<&str>) -> &'static str {
    match key.and_then(|k| k.rsplit('.').next()) {
        Some("periods") => "previous_month",
        Some("formats") => "csv_v2_0, json_v2_0",
        Some("kinds") => "customer",
        Some("delta_items") => "compute_points",
        Some("include" | "exclude") => "\"Acme*\"",
        _ => "…",
    }
}

/// The words of "expected one of a, b" (quoted with backticks or not).
fn expected_words(message: &str) -> Vec<String> {
    let Some((_, expected)) = message.split_once("expected one of ") else {
        return Vec::new();
    };
    expected
        .split(',')
        .map(|w| w.trim_matches(|c: char| c == '`' || c.is_whitespace()))
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

fn quoted(words: &[String]) -> String {
    words
        .iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The parts of a word: runs of letters and runs of digits, lower-cased (`json_v2` → json, v, 2).
fn parts(word: &str) -> Vec<String> {
    let mut parts: Vec<String> = Vec::new();
    let mut last_digit = None;
    for c in word.chars().map(|c| c.to_ascii_lowercase()) {
        if !c.is_ascii_alphanumeric() {
            last_digit = None;
            continue;
        }
        let digit = c.is_ascii_digit();
        match parts.last_mut() {
            Some(part) if last_digit == Some(digit) => part.push(c),
            _ => parts.push(c.to_string()),
        }
        last_digit = Some(digit);
    }
    parts
}

/// The valid word the user most likely meant. First by parts: every part the user typed appears,
/// in order, in the candidate (`summary` → `usage_summary`, `csv2` → `csv_v2_0`), the fewest
/// extra parts winning; then by edit distance for typos (`fromats` → `formats`).
pub(super) fn closest(given: &str, valid: &[String]) -> Option<String> {
    let given_parts = parts(given);
    if !given_parts.is_empty() {
        let by_parts = valid
            .iter()
            .filter_map(|candidate| {
                let candidate_parts = parts(candidate);
                let mut rest = candidate_parts.iter();
                let all_in_order = given_parts.iter().all(|g| rest.any(|c| c == g));
                (all_in_order && candidate != given)
                    .then(|| (candidate_parts.len() - given_parts.len(), candidate))
            })
            .min();
        if let Some((_, candidate)) = by_parts {
            return Some(candidate.clone());
        }
    }
    let lower = given.to_lowercase();
    let (distance, best) = valid.iter().map(|c| (edit_distance(&lower, c), c)).min()?;
    (distance <= given.len().max(3) / 2 + 1).then(|| best.clone())
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous_diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitution = previous_diagonal + usize::from(ca != *cb);
            previous_diagonal = row[j + 1];
            row[j + 1] = substitution.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(list: &str) -> Vec<String> {
        list.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn suggestions_match_on_parts_then_on_spelling() {
        let formats = words("csv html json_v1 csv_v2_0 json_v2_0");
        let kinds = words("usage_current usage_summary usage_daily usage_breakdown");
        let keys = words("kind level formats hide_zero_usage show_skus periods");
        assert_eq!(closest("json_v2", &formats).as_deref(), Some("json_v2_0"));
        assert_eq!(closest("csv2", &formats).as_deref(), Some("csv_v2_0"));
        assert_eq!(closest("JSON", &formats).as_deref(), Some("json_v1"));
        assert_eq!(closest("summary", &kinds).as_deref(), Some("usage_summary"));
        assert_eq!(closest("daily", &kinds).as_deref(), Some("usage_daily"));
        assert_eq!(closest("fromats", &keys).as_deref(), Some("formats"));
        assert_eq!(closest("skus", &keys).as_deref(), Some("show_skus"));
        assert_eq!(closest("pdf", &formats), None);
    }
}
