//! billing.csv in its period's records: checksummed, in the manifests, verified; the original
//! report files byte-exact and billing.csv the same when made again.

use super::*;

#[test]
fn billing_csv_is_checksummed_recorded_and_verified() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("out", &[]).success();
    let out = scratch.path("out");
    let period = period_dir(&out);
    let sha256 = sha256_file(&period.join("billing.csv"));
    let sums = read(&period.join("SHA256SUMS"));
    assert!(
        sums.lines().any(|l| l == format!("{sha256}  billing.csv")),
        "{sums}"
    );
    // Four report files, billing.csv, and the period's manifest.json and summary.md.
    assert_eq!(sums.lines().count(), 7, "{sums}");
    for record in ["manifest.json", "summary.md"] {
        let line = format!("{}  {record}", sha256_file(&period.join(record)));
        assert!(sums.lines().any(|l| l == line), "{record}: {sums}");
    }
    // The root seals the period's SHA256SUMS; billing.csv is the period's only.
    let root = read(&out.join("SHA256SUMS"));
    let seal = format!(
        "{}  {PERIOD}/SHA256SUMS",
        sha256_file(&period.join("SHA256SUMS"))
    );
    assert!(root.lines().any(|l| l == seal), "{root}");
    assert!(!root.contains("billing.csv"), "{root}");
    assert!(!out.join("billing.csv").exists());
    assert_eq!(
        delivery(&out)["derived_files"],
        serde_json::json!([{
            "path": "billing.csv",
            "bytes": std::fs::metadata(period.join("billing.csv")).unwrap().len(),
            "sha256": sha256,
            "source": billing::SOURCE,
        }])
    );
    assert_eq!(manifest(&out).get("derived_files"), None);
    // The root's three lines and the period's seven.
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .success()
        .stdout(predicates::str::contains(
            "verified 10 files in 1 period: all match",
        ));

    // A changed row is caught like a changed report file, by the whole trail's check and by
    // the period's.
    let path = period.join("billing.csv");
    let text = read(&path).replacen(",acme,", ",acme-renamed,", 1);
    std::fs::write(&path, text).unwrap();
    scratch
        .cmd()
        .args(["verify", "out"])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("changed: 2026-10/billing.csv"));
    scratch
        .cmd()
        .args(["verify", "out", "--period", PERIOD])
        .assert()
        .code(1)
        .stdout(predicates::str::contains("changed: 2026-10/billing.csv"));
}

#[test]
fn originals_stay_byte_exact_and_billing_csv_is_reproducible() {
    let scratch = Scratch::new(SCENARIO);
    scratch.run("first", &[]).success();
    scratch.run("second", &[]).success();
    // The files as a record lists them, relative to `dir`.
    let listed = |record: &Value, dir: &Path, out: &str| -> Vec<(String, String)> {
        record["reports"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| r["files"].as_array().unwrap().clone())
            .map(|f| {
                let path = f["path"].as_str().unwrap().to_owned();
                let sha256 = f["sha256"].as_str().unwrap().to_owned();
                // On disk exactly as recorded: deriving billing.csv changed nothing.
                assert_eq!(sha256_file(&dir.join(&path)), sha256, "{out}: {path}");
                (path, sha256)
            })
            .collect()
    };
    let files = |out: &str| -> Vec<(String, String)> {
        let dir = scratch.path(out);
        let delivered = listed(&delivery(&dir), &period_dir(&dir), out);
        // The run's record names the same files from the output folder.
        let rooted: Vec<(String, String)> = delivered
            .iter()
            .map(|(path, sha256)| (format!("{PERIOD}/{path}"), sha256.clone()))
            .collect();
        assert_eq!(listed(&manifest(&dir), &dir, out), rooted, "{out}");
        delivered
    };
    let first = files("first");
    assert_eq!(first.len(), 4);
    assert_eq!(
        first,
        files("second"),
        "the sandbox sent the same bytes twice"
    );
    assert_eq!(
        read(&period_dir(&scratch.path("first")).join("billing.csv")),
        read(&period_dir(&scratch.path("second")).join("billing.csv"))
    );
}
