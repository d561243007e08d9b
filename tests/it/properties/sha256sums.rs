//! `SHA256SUMS`: what the writer writes, the reader and coreutils `sha256sum -c` read back.

use super::*;
use crate::support::sha256_hex;

/// Any non-empty name without NUL, with the characters `sha256sum` escapes made likely.
fn checksum_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("  ".to_owned()),
        Just("\\".to_owned()),
        Just("\\n".to_owned()),
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\r\n".to_owned()),
        Just("*".to_owned()),
        Just("#".to_owned()),
        Just("\t".to_owned()),
        Just("/".to_owned()),
        Just("日本".to_owned()),
        Just("\u{2028}".to_owned()),
        "[a-z.]{1,6}".prop_map(|s| s),
        "[^\0]{1,3}".prop_map(|s| s),
    ];
    prop_oneof![
        "[^\0]{1,30}",
        proptest::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat()),
    ]
}

fn checksum_entry() -> impl Strategy<Value = ChecksumEntry> {
    (checksum_name(), "[0-9a-f]{64}").prop_map(|(path, sha256)| ChecksumEntry { path, sha256 })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn checksums_round_trip(entries in proptest::collection::vec(checksum_entry(), 0..12)) {
        let text = checksums::render_entries(&entries);
        let mut expected = entries.clone();
        expected.sort_by(|a, b| (&a.path, &a.sha256).cmp(&(&b.path, &b.sha256)));
        prop_assert_eq!(checksums::parse(&text), Ok(expected), "{:?}", text);
        // One line per entry: no name can break a line.
        prop_assert_eq!(text.matches('\n').count(), entries.len());
    }

    #[test]
    fn checksum_parser_never_panics(text in "\\PC{0,100}|(\\\\?[0-9a-fA-F]{60,66}( |  | \\*)[^\0]{0,10}\r?\n){0,3}") {
        let _ = checksums::parse(&text);
    }
}

/// The names `sha256sum` has to escape, or could misread, checked by the real tool.
#[test]
fn coreutils_sha256sum_checks_awkward_names() {
    let Ok(probe) = std::process::Command::new("sha256sum")
        .arg("--version")
        .output()
    else {
        eprintln!("sha256sum is not on PATH; skipping");
        return;
    };
    assert!(probe.status.success());
    let names = [
        "with space.csv",
        " leading space",
        "trailing space ",
        "two  spaces",
        "back\\slash.csv",
        "\\leading backslash",
        "ends with backslash\\",
        "literal \\n not a newline",
        "new\nline.csv",
        "\nleading newline",
        "carriage\rreturn.csv",
        "crlf\r\n.csv",
        "tab\there",
        "*star",
        "#hash",
        "Müller GmbH — 日本 🦀.json",
        "sub dir/nested \\ and\nnewline",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub dir")).unwrap();
    let mut entries = Vec::new();
    for name in names {
        let content = format!("content of {name:?}\n");
        std::fs::write(dir.path().join(name), &content).unwrap();
        entries.push(ChecksumEntry {
            path: name.to_owned(),
            sha256: sha256_hex(content.as_bytes()),
        });
    }
    let text = checksums::render_entries(&entries);
    std::fs::write(dir.path().join("SHA256SUMS"), &text).unwrap();
    let out = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sha256sum -c failed on\n{text}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": OK").count(), names.len(), "{stdout}");

    // A changed file is caught, so the check above did look at the files.
    std::fs::write(dir.path().join(names[8]), "changed").unwrap();
    let out = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}
