//! `SHA256SUMS` in GNU coreutils format, so that `cd DIR && sha256sum -c SHA256SUMS` checks a run.
//!
//! coreutils writes a name that contains `\`, a newline or a carriage return escaped (`\\`, `\n`,
//! `\r`) and marks such a line with a leading `\`; any other name is written as is. Both
//! directions here follow it byte for byte, so the file stays readable by the real tool.

use std::io::{self, Write};

#[cfg(test)]
use crate::results::FileResult;

/// One line of a `SHA256SUMS` file, with the name unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChecksumEntry {
    /// Relative to the folder that holds `SHA256SUMS`.
    pub path: String,
    /// 64 lowercase hex digits.
    pub sha256: String,
}

/// A line that is not in `sha256sum` format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("line {line}: {reason}")]
pub struct ChecksumError {
    /// 1-based.
    pub(crate) line: usize,
    pub(crate) reason: String,
}

const HEX_LEN: usize = 64;

/// The `SHA256SUMS` text of a run's files, sorted by path (byte order).
#[cfg(test)]
pub(crate) fn render(files: &[&FileResult]) -> String {
    let mut lines: Vec<(&str, &str)> = files
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    lines.sort_unstable();
    render_lines(lines)
}

/// The same as [`render`], for entries read back from other `SHA256SUMS` files (merging shards).
pub fn render_entries(entries: &[ChecksumEntry]) -> String {
    let mut lines: Vec<(&str, &str)> = entries
        .iter()
        .map(|e| (e.path.as_str(), e.sha256.as_str()))
        .collect();
    lines.sort_unstable();
    render_lines(lines)
}

fn render_lines(lines: Vec<(&str, &str)>) -> String {
    let mut out = Vec::with_capacity(lines.len() * (HEX_LEN + 48));
    // Writing into a Vec cannot fail, and only valid UTF-8 goes in.
    let _ = write_lines(&mut out, lines);
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// [`render`] straight to `out`, for runs whose `SHA256SUMS` need not sit in memory whole:
/// `(path, sha256)` pairs, sorted here.
pub(crate) fn write_sorted<'a>(
    out: &mut dyn Write,
    mut lines: Vec<(&'a str, &'a str)>,
) -> io::Result<()> {
    lines.sort_unstable();
    // Two records of one path would make `sha256 -c` check one file twice and one record
    // unverifiable: folder names are unique by construction, and this keeps it so.
    if let Some(pair) = lines.windows(2).find(|pair| pair[0].0 == pair[1].0) {
        return Err(io::Error::other(format!(
            "two files would be listed as {} in SHA256SUMS; refusing to write it",
            pair[0].0
        )));
    }
    write_lines(out, lines)
}

fn write_lines(out: &mut dyn Write, lines: Vec<(&str, &str)>) -> io::Result<()> {
    let mut line = String::with_capacity(HEX_LEN + 256);
    for (path, sha256) in lines {
        line.clear();
        let escaped = path.contains(['\\', '\n', '\r']);
        if escaped {
            line.push('\\');
        }
        line.extend(sha256.chars().map(|c| c.to_ascii_lowercase()));
        line.push_str("  ");
        if escaped {
            for c in path.chars() {
                match c {
                    '\\' => line.push_str("\\\\"),
                    '\n' => line.push_str("\\n"),
                    '\r' => line.push_str("\\r"),
                    c => line.push(c),
                }
            }
        } else {
            line.push_str(path);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(())
}

/// Reads `SHA256SUMS` text. Accepts what `sha256sum` writes (text or binary `*` marker) and, as
/// `sha256sum -c` does, CRLF line ends, empty lines and `#` comments; rejects anything else with its
/// line number, where `sha256sum -c` would only warn.
pub fn parse(text: &str) -> Result<Vec<ChecksumEntry>, ChecksumError> {
    let mut entries = Vec::new();
    for (index, raw) in text.split('\n').enumerate() {
        // A raw CR can only be a Windows line end: names with a CR are always escaped.
        let line = raw.strip_suffix('\r').unwrap_or(raw);
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let entry = parse_line(line).map_err(|reason| ChecksumError {
            line: index + 1,
            reason,
        })?;
        entries.push(entry);
    }
    Ok(entries)
}

fn parse_line(line: &str) -> Result<ChecksumEntry, String> {
    let (escaped, rest) = match line.strip_prefix('\\') {
        Some(rest) => (true, rest),
        None => (false, line),
    };
    let hex = rest
        .get(..HEX_LEN)
        .filter(|hex| hex.bytes().all(|b| b.is_ascii_hexdigit()))
        .ok_or_else(|| format!("expected {HEX_LEN} hex digits of a SHA-256 at the start"))?;
    let after = &rest[HEX_LEN..];
    let name = after
        .strip_prefix("  ")
        .or_else(|| after.strip_prefix(" *"))
        .ok_or("expected two spaces (or a space and `*`) between the checksum and the file name")?;
    if name.is_empty() {
        return Err("no file name after the checksum".to_owned());
    }
    let path = if escaped {
        unescape(name)?
    } else {
        name.to_owned()
    };
    Ok(ChecksumEntry {
        path,
        sha256: hex.to_ascii_lowercase(),
    })
}

fn unescape(name: &str) -> Result<String, String> {
    let mut out = String::with_capacity(name.len());
    let mut chars = name.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('\\') => out.push('\\'),
            Some('n') => out.push('\n'),
            Some('r') => out.push('\r'),
            Some(other) => {
                return Err(format!(
                    "unknown escape `\\{other}` in the file name (only \\\\, \\n and \\r exist)"
                ));
            }
            None => return Err("the file name ends in a lone `\\`".to_owned()),
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_path_listed_twice_is_refused() {
        let mut out = Vec::new();
        let error = write_sorted(
            &mut out,
            vec![("2026-10/Twin/a.csv", "aa"), ("2026-10/Twin/a.csv", "bb")],
        )
        .unwrap_err();
        assert!(error.to_string().contains("2026-10/Twin/a.csv"), "{error}");
        assert!(out.is_empty());
    }
    use crate::report::Format;
    use crate::results::SkuCheck;
    use sha2::{Digest, Sha256};

    fn file(path: &str, content: &[u8]) -> FileResult {
        FileResult {
            format: Format::CsvV2,
            path: path.to_owned(),
            stored_report_id: "stored".to_owned(),
            bytes: content.len() as u64,
            sha256: hex::encode(Sha256::digest(content)),
            content_check: crate::results::ContentCheck::SKIPPED,
            sku_check: SkuCheck::SKIPPED,
        }
    }

    const AWKWARD_NAMES: [&str; 8] = [
        "plain.csv",
        "with space.csv",
        "back\\slash.csv",
        "new\nline.csv",
        "carriage\rreturn.csv",
        "ends with backslash\\",
        "Müller GmbH — 日本.json",
        "*starts with star",
    ];

    #[test]
    fn lines_are_sorted_and_escaped_like_coreutils() {
        let a = file("b/z.csv", b"z");
        let b = file("a\\b\nc.csv", b"x");
        let text = render(&[&a, &b]);
        let lines: Vec<&str> = text.split_inclusive('\n').collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0],
            format!("\\{}  a\\\\b\\nc.csv\n", hex::encode(Sha256::digest(b"x")))
        );
        assert_eq!(
            lines[1],
            format!("{}  b/z.csv\n", hex::encode(Sha256::digest(b"z")))
        );
    }

    #[test]
    fn round_trip_of_awkward_names() {
        let files: Vec<FileResult> = AWKWARD_NAMES
            .iter()
            .map(|name| file(name, name.as_bytes()))
            .collect();
        let refs: Vec<&FileResult> = files.iter().collect();
        let parsed = parse(&render(&refs)).unwrap();
        let mut expected: Vec<ChecksumEntry> = files
            .iter()
            .map(|f| ChecksumEntry {
                path: f.path.clone(),
                sha256: f.sha256.clone(),
            })
            .collect();
        expected.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(parsed, expected);
        assert_eq!(render_entries(&parsed), render(&refs));
    }

    #[test]
    fn binary_marker_crlf_comments_and_uppercase_are_read() {
        let hex = "AB".repeat(32);
        let text = format!("# made by hand\r\n\r\n{hex} *bin.dat\r\n\\{hex}  x\\ry\n");
        let parsed = parse(&text).unwrap();
        assert_eq!(
            parsed,
            vec![
                ChecksumEntry {
                    path: "bin.dat".into(),
                    sha256: "ab".repeat(32)
                },
                ChecksumEntry {
                    path: "x\ry".into(),
                    sha256: "ab".repeat(32)
                },
            ]
        );
    }

    #[test]
    fn malformed_lines_are_rejected_with_their_number() {
        let hex = "0".repeat(64);
        let cases = [
            (format!("{hex}  ok\nnot a checksum\n"), 2),
            (format!("{}  short\n", "0".repeat(63)), 1),
            (format!("{hex} one-space\n"), 1),
            (format!("{hex}  \n"), 1),
            (format!("{hex}  a\n\n\\{hex}  bad\\xescape\n"), 3),
            (format!("\\{hex}  trailing\\\n"), 1),
            (format!("{}  too-long\n", "0".repeat(128)), 1),
            (format!("  {hex}  indented\n"), 1),
        ];
        for (text, line) in cases {
            let err = parse(&text).unwrap_err();
            assert_eq!(err.line, line, "{text:?}: {err}");
        }
    }

    #[test]
    fn real_sha256sum_accepts_the_rendered_file() {
        let Ok(probe) = std::process::Command::new("sha256sum")
            .arg("--version")
            .output()
        else {
            eprintln!("sha256sum is not on PATH; skipping");
            return;
        };
        assert!(probe.status.success());
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub dir");
        std::fs::create_dir(&sub).unwrap();
        let mut files = Vec::new();
        for (i, name) in AWKWARD_NAMES.iter().enumerate() {
            let rel = if i % 2 == 0 {
                (*name).to_owned()
            } else {
                format!("sub dir/{name}")
            };
            let content = format!("content of {name:?}\n");
            std::fs::write(dir.path().join(&rel), &content).unwrap();
            files.push(file(&rel, content.as_bytes()));
        }
        let refs: Vec<&FileResult> = files.iter().collect();
        std::fs::write(dir.path().join("SHA256SUMS"), render(&refs)).unwrap();
        let out = std::process::Command::new("sha256sum")
            .args(["--strict", "-c", "SHA256SUMS"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sha256sum -c failed:\n{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );

        // And the other way: what coreutils writes, we read.
        let mut cmd = std::process::Command::new("sha256sum");
        cmd.current_dir(dir.path());
        for f in &files {
            cmd.arg(&f.path);
        }
        let written = cmd.output().unwrap();
        assert!(written.status.success());
        let mut parsed = parse(std::str::from_utf8(&written.stdout).unwrap()).unwrap();
        parsed.sort_by(|a, b| a.path.cmp(&b.path));
        assert_eq!(render_entries(&parsed), render(&refs));
    }
}
