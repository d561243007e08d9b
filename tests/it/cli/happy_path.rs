use crate::support::*;
use acronis_reports_sandbox::Scenario;

#[test]
fn several_tenants_two_formats_verified_and_checksummed() {
    let world = World::quick();
    let job = world.job(&job_text(
        &[(ACME, "acme"), (GLOBEX, "globex"), (INITECH, "initech")],
        "concurrency: 3\n",
    ));
    world.run(&job).assert().success();

    let out = world.out();
    let files = tree(&out);
    for tenant in ["acme", "globex", "initech"] {
        for file in ["usage_summary.csv_v2_0.csv", "usage_summary.json_v2_0.json"] {
            let path = format!("2026-10/{tenant}/{file}");
            assert!(files.contains(&path), "{path} missing from {files:?}");
        }
    }
    assert!(files.contains(&"SHA256SUMS".to_owned()));
    assert_eq!(check_sums(&out), 6);
    // No temporary file is left behind.
    assert!(files.iter().all(|f| !f.contains(".partial")), "{files:?}");

    let manifest = manifest(&out);
    assert_eq!(manifest["manifest_version"], 1);
    assert_eq!(manifest["as_of"], AS_OF);
    let reports = manifest["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 3);
    for report in reports {
        assert_eq!(report["status"], "ok", "{report}");
        assert_eq!(report["error"], serde_json::Value::Null);
        assert_eq!(report["period"]["start"], "2026-10-01");
        assert_eq!(report["period"]["end"], "2026-10-31");
        for file in report["files"].as_array().unwrap() {
            let path = out.join(file["path"].as_str().unwrap());
            assert_eq!(file["sha256"], sha256_file(&path));
            assert_eq!(file["bytes"], std::fs::metadata(&path).unwrap().len());
            assert_eq!(file["sku_check"]["status"], "ok");
            assert_eq!(file["sku_check"]["rows_without_sku"], 0);
            #[cfg(unix)]
            {
                // Readable by the team as the umask allows, like SHA256SUMS beside them.
                use std::os::unix::fs::PermissionsExt;
                let mode = |p: &std::path::Path| {
                    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
                };
                assert_eq!(mode(&path), mode(&out.join("SHA256SUMS")), "{path:?}");
            }
        }
    }
    // One report per tenant, created exactly once.
    let stats = world.stats();
    assert_eq!(stats.create_requests, 3);
    assert_eq!(stats.reports.len(), 3);

    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("acme") && summary.contains("globex"),
        "{summary}"
    );

    world.cmd().arg("verify").arg(&out).assert().success();
}

#[test]
fn verify_catches_a_changed_and_a_missing_file() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let out = world.out();
    let csv = out.join("2026-10/acme/usage_summary.csv_v2_0.csv");
    let mut bytes = std::fs::read(&csv).unwrap();
    bytes.push(b'\n');
    std::fs::write(&csv, bytes).unwrap();
    let output = world
        .cmd()
        .arg("verify")
        .arg(&out)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains("changed") && text.contains("usage_summary.csv_v2_0.csv"),
        "{text}"
    );

    std::fs::remove_file(out.join("2026-10/acme/usage_summary.json_v2_0.json")).unwrap();
    let output = world
        .cmd()
        .arg("verify")
        .arg(&out)
        .assert()
        .code(1)
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8_lossy(&output);
    assert!(
        text.contains("missing") && text.contains("usage_summary.json_v2_0.json"),
        "{text}"
    );
}

#[test]
fn run_with_built_in_sandbox_needs_no_credentials() {
    let dir = tempfile::tempdir().unwrap();
    let job = dir.path().join("job.yml");
    std::fs::write(&job, job_text(&[(ACME, "acme")], "")).unwrap();
    let scenario = dir.path().join("scenario.yml");
    std::fs::write(&scenario, "generation_delay: 100ms\n").unwrap();
    bare_cmd()
        .current_dir(dir.path())
        .args([
            "run",
            "job.yml",
            "--sandbox",
            "--sandbox-scenario",
            "scenario.yml",
            "--as-of",
            AS_OF,
        ])
        .assert()
        .success();
    let out = dir.path().join("billing-reports");
    assert_eq!(check_sums(&out), 2);
}

#[test]
fn dr_compute_points_are_converted_in_manifest_and_summary() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    world.run(&job).assert().success();
    let manifest = manifest(&world.out());
    let points = manifest["reports"][0]["dr_compute_points"]
        .as_f64()
        .expect("DR points present");
    // The csv_v2_0 file carries point-seconds, one row per tenant: each row's billable value
    // (absolute: the sandbox's item is not one of the vendor's delta items; total for a
    // customer, production for a partner) ÷ 3600 to 2 decimals, summed.
    let mut reader =
        csv::Reader::from_path(world.out().join("2026-10/acme/usage_summary.csv_v2_0.csv"))
            .unwrap();
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let mut hundredths = 0u64;
    for record in reader.records() {
        let record = record.unwrap();
        if !record[at("name")].ends_with("compute_points") {
            continue;
        }
        let scope = if &record[at("tenant.kind")] == "customer" {
            "total"
        } else {
            "production"
        };
        let seconds: u64 = record[at(&format!("usage.absolute.{scope}"))]
            .parse()
            .unwrap();
        hundredths += (seconds * 100 + 1800) / 3600;
    }
    assert!(hundredths > 0);
    assert_eq!(
        format!("{points:.2}"),
        format!("{}.{:02}", hundredths / 100, hundredths % 100)
    );
    let summary = std::fs::read_to_string(world.out().join("summary.md")).unwrap();
    assert!(summary.contains(&format!("{points:.2}")), "{summary}");
}

/// A report large enough to be written around the page cache (direct I/O, in aligned blocks,
/// the tail through the cache) arrives whole and in order: the sandbox numbers its padding
/// rows, so a lost, doubled or misplaced block would break the sequence.
#[test]
fn a_large_report_is_written_whole_and_in_order() {
    let world = World::new(Scenario {
        pad_bytes: LARGE_REPORT_PAD,
        ..quick_scenario()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  formats: [csv_v2_0]\n",
    ));
    world.run(&job).assert().success();
    let out = world.out();
    let path = out.join("2026-10/acme/usage_summary.csv_v2_0.csv");
    let bytes = std::fs::read(&path).unwrap();
    assert!(bytes.len() > 20 * 1024 * 1024, "{}", bytes.len());
    let manifest = manifest(&out);
    let file = &manifest["reports"][0]["files"][0];
    assert_eq!(file["bytes"], bytes.len());
    assert_eq!(file["sha256"], sha256_file(&path));
    let text = String::from_utf8(bytes).unwrap();
    // The sandbox numbers its padding rows in the last group of their tenant ids.
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let at = |name: &str| header.iter().position(|h| h == name).unwrap();
    let numbers: Vec<u64> = reader
        .records()
        .map(Result::unwrap)
        .filter(|record| &record[at("name")] == "pw_padding")
        .map(|record| {
            let id = &record[at("tenant.id")];
            id[id.len() - 12..].parse().unwrap()
        })
        .collect();
    assert!(numbers.len() > 100_000, "{}", numbers.len());
    assert!(
        numbers.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "padding rows out of sequence"
    );
    // Every row was checked for its SKU on the way.
    let rows = text
        .lines()
        .skip(1)
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(file["sku_check"]["rows"], rows);
    world.cmd().arg("verify").arg(&out).assert().success();
}

#[test]
fn level_itself_reaches_the_server_and_the_manifest() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], "defaults:\n  level: itself\n"));
    world.run(&job).assert().success();
    let stats = world.stats();
    assert_eq!(stats.reports.len(), 1);
    assert_eq!(stats.reports[0].level, "itself");
    let manifest = manifest(&world.out());
    assert_eq!(manifest["reports"][0]["level"], "itself", "{manifest}");
    assert_eq!(manifest["reports"][0]["status"], "ok", "{manifest}");
}
