//! Job-file problems rendered like a compiler's: the key path, the offending line with a caret
//! under the value, and the fix. `annotate-snippets` draws the snippet, plain for logs and CI,
//! coloured for a terminal.

use std::path::Path;

use annotate_snippets::{AnnotationKind, Group, Level, Renderer, Snippet};
use granit_parser::{Event, Parser};

use super::{Pos, Problem};

/// At most this many problems are drawn; a file with more is usually broken in one place that
/// repeats, and a screenful is enough to fix it in one pass.
pub(crate) const MAX_SHOWN: usize = 20;

/// A node of the YAML document: where it starts and ends, and its key path.
struct Node {
    start: Pos,
    end: Pos,
    path: String,
}

/// Where every key and value of `text` sits and its key path (`tenants[1].formats[0]`). Read
/// from the parser's events, so flow style (`[a, b]`) and block style name the same paths. A
/// document that does not parse yields the nodes before the break, which is what an error there
/// needs.
fn nodes(text: &str) -> Vec<Node> {
    enum Frame {
        // The mapping's path, and the key just read (None while a key is expected).
        Map(String, Option<String>),
        Seq(String, usize),
    }
    let mut nodes = Vec::new();
    let mut stack: Vec<Frame> = Vec::new();
    // The path of the node that the next event starts, from its parent.
    fn next_path(stack: &[Frame]) -> Option<String> {
        match stack.last()? {
            Frame::Map(path, Some(key)) => Some(join(path, key)),
            Frame::Map(path, None) => Some(path.clone()),
            Frame::Seq(path, i) => Some(format!("{path}[{i}]")),
        }
    }
    fn join(path: &str, key: &str) -> String {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    }
    // After a value: a mapping waits for its next key, a sequence counts one more item.
    fn value_done(stack: &mut [Frame]) {
        match stack.last_mut() {
            Some(Frame::Map(_, key)) => *key = None,
            Some(Frame::Seq(_, i)) => *i += 1,
            None => {}
        }
    }
    let pos = |m: granit_parser::Marker| Pos {
        line: m.line() as u64,
        column: m.col() as u64 + 1,
    };
    for item in Parser::new_from_str(text) {
        let Ok((event, span)) = item else { break };
        let (start, end) = (pos(span.start), pos(span.end));
        match event {
            Event::Scalar(value, ..) => {
                if let Some(Frame::Map(path, key @ None)) = stack.last_mut() {
                    let path = join(path, &value);
                    *key = Some(value.into_owned());
                    nodes.push(Node { start, end, path });
                } else {
                    let path = next_path(&stack).unwrap_or_default();
                    nodes.push(Node { start, end, path });
                    value_done(&mut stack);
                }
            }
            Event::Alias(_) => value_done(&mut stack),
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let path = next_path(&stack).unwrap_or_default();
                nodes.push(Node {
                    start,
                    end,
                    path: path.clone(),
                });
                stack.push(if matches!(event, Event::MappingStart(..)) {
                    Frame::Map(path, None)
                } else {
                    Frame::Seq(path, 0)
                });
            }
            Event::MappingEnd | Event::SequenceEnd => {
                stack.pop();
                value_done(&mut stack);
            }
            _ => {}
        }
    }
    nodes
}

/// The key path and the node's extent on its line for a problem at `pos`: the node that starts
/// there, else the innermost one that starts before it.
fn locate(nodes: &[Node], pos: Pos) -> Option<&Node> {
    nodes
        .iter()
        .rev()
        .find(|n| n.start == pos)
        .or_else(|| nodes.iter().rev().find(|n| n.start <= pos))
}

/// Draws every problem (up to [`MAX_SHOWN`]) as a snippet of `text`. `color` adds ANSI styles.
pub(crate) fn render(path: &Path, text: Option<&str>, problems: &[Problem], color: bool) -> String {
    let renderer = if color {
        Renderer::styled()
    } else {
        Renderer::plain()
    };
    let nodes = text.map(nodes).unwrap_or_default();
    let file = path.display().to_string();
    let mut out = String::new();
    for problem in problems.iter().take(MAX_SHOWN) {
        if !out.is_empty() {
            out.push_str("\n\n");
        }
        out.push_str(&renderer.render(&report(&file, text, &nodes, problem)));
    }
    if problems.len() > MAX_SHOWN {
        out.push_str(&format!(
            "\n\n{} more problems not shown; fix these and run `acronis-reports validate` again",
            problems.len() - MAX_SHOWN
        ));
    }
    if problems.len() > 1 {
        out.push_str(&format!(
            "\n\n{file}: {} problems, all listed above",
            problems.len()
        ));
    }
    out
}

fn report<'a>(
    file: &'a str,
    text: Option<&'a str>,
    nodes: &[Node],
    problem: &'a Problem,
) -> Vec<Group<'a>> {
    let title = Level::ERROR.primary_title(problem.message.as_str());
    let help = problem
        .help
        .as_deref()
        .map(|help| Level::HELP.message(help));
    let source_line = problem.pos.zip(text).and_then(|(pos, text)| {
        let line = text
            .lines()
            .nth(usize::try_from(pos.line).ok()?.checked_sub(1)?)?;
        Some((pos, line))
    });
    let Some((pos, line)) = source_line else {
        // No place in the file (unreadable, too large, not UTF-8): the file name says where.
        let group = Group::with_title(title).element(Level::NOTE.message(format!("in {file}")));
        return vec![match help {
            Some(help) => group.element(help),
            None => group,
        }];
    };
    let node = locate(nodes, pos);
    // Columns count characters; the snippet's spans count bytes.
    let byte_at = |column: u64| {
        line.char_indices()
            .nth(usize::try_from(column.saturating_sub(1)).unwrap_or(usize::MAX))
            .map_or(line.len(), |(i, _)| i)
    };
    let start = byte_at(pos.column);
    let end = match node {
        Some(n) if n.start == pos && n.end.line == pos.line && n.end.column > pos.column => {
            byte_at(n.end.column)
        }
        // A node that runs over several lines, or a place inside one: mark the word there.
        _ => line[start..]
            .find(|c: char| c.is_whitespace() || c == ',' || c == ']' || c == '}')
            .map_or(line.len(), |i| start + i),
    };
    let end = if end <= start {
        (start + line[start..].chars().next().map_or(0, char::len_utf8)).min(line.len())
    } else {
        end
    };
    let label = node
        .map(|n| n.path.as_str())
        .filter(|p| !p.is_empty())
        .map(|p| format!("in `{p}`"));
    let mut annotation = AnnotationKind::Primary.span(start..end);
    if let Some(label) = label {
        annotation = annotation.label(label);
    }
    let snippet = Snippet::source(line)
        .line_start(usize::try_from(pos.line).unwrap_or(usize::MAX))
        .path(file)
        .annotation(annotation);
    let group = title.element(snippet);
    vec![match help {
        Some(help) => group.element(help),
        None => group,
    }]
}

/// The key path of the node at `pos` in `text`, e.g. `polling.timeout`.
pub(crate) fn key_path(text: &str, pos: Pos) -> Option<String> {
    locate(&nodes(text), pos)
        .map(|n| n.path.clone())
        .filter(|p| !p.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_paths_follow_block_and_flow_style() {
        let text = "version: 1\npolling:\n  timeout: 120\ntenants:\n  - id: x\n    formats: [csv, json_v2]\n";
        let at = |line, column| key_path(text, Pos { line, column });
        assert_eq!(at(3, 12).as_deref(), Some("polling.timeout"));
        assert_eq!(at(3, 3).as_deref(), Some("polling.timeout"));
        assert_eq!(at(6, 20).as_deref(), Some("tenants[0].formats[1]"));
        assert_eq!(at(5, 9).as_deref(), Some("tenants[0].id"));
    }
}
