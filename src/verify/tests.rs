use super::*;
use crate::output;
use crate::results::{FileResult, SkuCheck};

/// A folder as `run` leaves it, with one report holding `files`.
fn run_folder(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let mut result = crate::results::fixtures::contract_run();
    let files: Vec<FileResult> = files
        .iter()
        .map(|(path, content)| {
            let full = dir.path().join(path);
            fs::create_dir_all(full.parent().unwrap()).unwrap();
            fs::write(&full, content).unwrap();
            FileResult {
                format: crate::report::Format::CsvV2,
                path: (*path).to_owned(),
                stored_report_id: "s".into(),
                bytes: content.len() as u64,
                sha256: hex::encode(Sha256::digest(content.as_bytes())),
                content_check: crate::results::ContentCheck::SKIPPED,
                sku_check: SkuCheck::SKIPPED,
            }
        })
        .collect();
    result
        .reports
        .update(0, |report| report.files = files)
        .unwrap();
    output::write_outputs(dir.path(), result).unwrap();
    dir
}

fn two_files() -> tempfile::TempDir {
    run_folder(&[
        ("2026-10/acme/usage_summary.csv_v2_0.csv", "a,b\n1,2\n"),
        ("2026-10/globex/usage_summary.csv_v2_0.csv", "a,b\n3,4\n"),
    ])
}

#[test]
fn clean_folder_ignoring_records_ci_files_and_hidden_entries() {
    let dir = two_files();
    fs::write(dir.path().join("junit.xml"), "<testsuites/>").unwrap();
    fs::write(dir.path().join("outputs.env"), "OK=1").unwrap();
    fs::create_dir(dir.path().join(".acronis-reports")).unwrap();
    fs::write(dir.path().join(".acronis-reports/state.json"), "{}").unwrap();
    fs::write(
        dir.path().join("2026-10/acme/.usage.csv.a1B2c3.partial"),
        "partial",
    )
    .unwrap();
    let report = verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{report}");
    // The root's three lines; the period's two report files, billing.csv, manifest.json
    // and summary.md.
    assert_eq!(report.checked, 8);
    assert_eq!(
        report.to_string(),
        "verified 8 files in 1 period: all match"
    );
}

#[cfg(unix)]
#[test]
fn hidden_entries_inside_a_period_are_extra() {
    let dir = two_files();
    fs::write(dir.path().join("2026-10/.x.csv"), "slipped in").unwrap();
    std::os::unix::fs::symlink("/etc", dir.path().join("2026-10/acme/.cfg")).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(
        report.extra,
        ["2026-10/.x.csv", "2026-10/acme/.cfg"],
        "{report}"
    );
}

#[test]
fn a_period_folder_verifies_on_its_own() {
    let dir = two_files();
    let report = verify(&dir.path().join("2026-10")).unwrap();
    assert!(report.is_clean(), "{report}");
}

#[test]
fn changed_file() {
    let dir = two_files();
    fs::write(
        dir.path().join("2026-10/acme/usage_summary.csv_v2_0.csv"),
        "a,b\n1,3\n",
    )
    .unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.changed, ["2026-10/acme/usage_summary.csv_v2_0.csv"]);
    assert!(report.missing.is_empty() && report.extra.is_empty());
    assert!(report.manifest_mismatches.is_empty(), "{report}");
    assert_eq!(
        report.to_string(),
        "verified 8 files in 1 period: 1 problem\nchanged: 2026-10/acme/usage_summary.csv_v2_0.csv"
    );
}

#[test]
fn missing_file() {
    let dir = two_files();
    fs::remove_file(dir.path().join("2026-10/globex/usage_summary.csv_v2_0.csv")).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(
        report.missing,
        ["2026-10/globex/usage_summary.csv_v2_0.csv"]
    );
    assert!(!report.is_clean());
    assert!(report.to_string().contains("\nmissing: 2026-10/globex/"));
}

#[test]
fn extra_files_and_symlinks_are_reported_not_followed() {
    let dir = two_files();
    fs::write(dir.path().join("2026-10/acme/stray.csv"), "x").unwrap();
    fs::write(dir.path().join("notes.txt"), "x").unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink("/etc", dir.path().join("2026-10/etc")).unwrap();
    let report = verify(dir.path()).unwrap();
    let mut expected = vec!["2026-10/acme/stray.csv", "notes.txt"];
    if cfg!(unix) {
        expected.insert(1, "2026-10/etc");
    }
    assert_eq!(report.extra, expected);
    assert!(report.missing.is_empty() && report.changed.is_empty());
}

#[cfg(unix)]
#[test]
fn listed_file_behind_a_symlink_counts_as_changed() {
    let outside = tempfile::tempdir().unwrap();
    fs::write(
        outside.path().join("usage_summary.csv_v2_0.csv"),
        "a,b\n1,2\n",
    )
    .unwrap();
    let dir = two_files();
    let acme = dir.path().join("2026-10/acme");
    fs::remove_dir_all(&acme).unwrap();
    std::os::unix::fs::symlink(outside.path(), &acme).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.changed, ["2026-10/acme/usage_summary.csv_v2_0.csv"]);
    assert_eq!(report.extra, ["2026-10/acme"]);
}

#[test]
fn entries_outside_the_folder_are_refused() {
    let dir = two_files();
    let hex = "0".repeat(64);
    for entry in ["../outside.csv", "2026-10/../../x", "/etc/passwd"] {
        fs::write(dir.path().join(SHA256SUMS), format!("{hex}  {entry}\n")).unwrap();
        let err = verify(dir.path()).unwrap_err();
        assert!(
            matches!(err, VerifyError::UnsafePath { .. }),
            "{entry}: {err}"
        );
        assert!(err.to_string().contains(entry), "{err}");
    }
}

#[test]
fn manifest_disagreements_are_explained() {
    let dir = two_files();
    let manifest_path = dir.path().join("2026-10").join(MANIFEST);
    let mut manifest: Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let files = manifest["reports"][0]["files"].as_array_mut().unwrap();
    files[0]["bytes"] = 1.into();
    let globex = files.remove(1);
    let mut ghost = globex.clone();
    ghost["path"] = "ghost.csv".into();
    files.push(ghost);
    fs::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();

    let report = verify(dir.path()).unwrap();
    assert_eq!(
        report.manifest_mismatches,
        [
            "2026-10: acme/usage_summary.csv_v2_0.csv has 1 bytes according to manifest.json, but 8 on disk",
            "2026-10: manifest.json lists ghost.csv, but SHA256SUMS does not",
            "2026-10: SHA256SUMS lists globex/usage_summary.csv_v2_0.csv, but manifest.json does not",
        ]
    );
    // The edit itself shows: the period's SHA256SUMS lists its manifest.json.
    assert_eq!(report.changed, ["2026-10/manifest.json"]);
    assert!(report.missing.is_empty());
}

#[test]
fn folders_that_cannot_be_verified() {
    let dir = two_files();
    fs::write(dir.path().join("2026-10").join(MANIFEST), "{not json").unwrap();
    // A period's damaged record is a problem of that period, not the end of the check.
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.changed, ["2026-10/manifest.json"], "{report}");
    assert!(
        report.manifest_mismatches[0].starts_with("2026-10: manifest.json cannot be read"),
        "{report}"
    );

    fs::write(
        dir.path().join(SHA256SUMS),
        format!("{}  a\nbad line\n", "0".repeat(64)),
    )
    .unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(err.to_string().contains("SHA256SUMS"), "{err}");
    assert!(err.to_string().contains("line 2"), "{err}");

    fs::remove_file(dir.path().join(SHA256SUMS)).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err, VerifyError::NoRootSeal { .. }), "{err}");
    assert!(err.to_string().contains("root seal is missing"), "{err}");
    assert!(err.to_string().contains("2026-10"), "{err}");
    fs::remove_dir_all(dir.path().join("2026-10")).unwrap();
    let err = verify(dir.path()).unwrap_err();
    assert!(matches!(err, VerifyError::NotFound { .. }), "{err}");
}

#[cfg(unix)]
#[test]
fn awkward_names_verify_clean() {
    let dir = run_folder(&[
        ("2026-10/back\\slash.csv", "1"),
        ("2026-10/new\nline.csv", "2"),
        ("2026-10/Müller GmbH.csv", "3"),
    ]);
    let report = verify(dir.path()).unwrap();
    assert!(report.is_clean(), "{report}");
    // Three files, billing.csv, manifest.json, summary.md; the root's three lines.
    assert_eq!(report.checked, 9);
}

#[test]
fn derived_files_are_checked_like_report_files() {
    let dir = two_files();
    assert!(verify(dir.path()).unwrap().is_clean());
    let billing = dir.path().join("2026-10/billing.csv");
    let mut bytes = fs::read(&billing).unwrap();
    bytes.extend_from_slice(b"forged,row\n");
    fs::write(&billing, &bytes).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(report.changed, ["2026-10/billing.csv"]);

    // A derived file in the manifest but not in SHA256SUMS, and the other way round.
    let dir = two_files();
    let manifest_path = dir.path().join("2026-10").join(MANIFEST);
    let mut manifest: Value =
        serde_json::from_str(&fs::read_to_string(&manifest_path).unwrap()).unwrap();
    let billing = manifest["derived_files"][0].clone();
    assert_eq!(billing["path"], "billing.csv");
    let mut ghost = billing.clone();
    ghost["path"] = "totals.csv".into();
    manifest["derived_files"] = Value::Array(vec![ghost]);
    fs::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();
    let report = verify(dir.path()).unwrap();
    assert_eq!(
        report.manifest_mismatches,
        [
            "2026-10: manifest.json lists totals.csv, but SHA256SUMS does not",
            "2026-10: SHA256SUMS lists billing.csv, but manifest.json does not",
        ]
    );

    manifest["derived_files"] = Value::from("billing.csv");
    fs::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();
    let said = verify(dir.path()).unwrap().to_string();
    assert!(said.contains("`derived_files` is not a list"), "{said}");
    manifest["derived_files"] = serde_json::json!([{"path": "billing.csv"}]);
    fs::write(&manifest_path, serde_json::to_string(&manifest).unwrap()).unwrap();
    let said = verify(dir.path()).unwrap().to_string();
    assert!(
        said.contains("derived_files[0] has no whole number `bytes`"),
        "{said}"
    );
}
