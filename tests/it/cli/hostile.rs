//! Hostile or broken servers and hostile names: a clear per-report error or a safe path, never a
//! crash, an unbounded allocation, or a write outside the output folder.

use acronis_reports_sandbox::{Endpoint, FaultRule, Hostile, Scenario};

use crate::support::*;

/// Runs a two-tenant job where the first matching request meets `hostile`; returns the manifest.
fn run_against(endpoint: Endpoint, hostile: Hostile, status: Option<u16>) -> serde_json::Value {
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint,
            hostile: Some(hostile),
            status,
            times: 1,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme"), (GLOBEX, "globex")],
        "concurrency: 1\n",
    ));
    world.run(&job).assert().code(1);
    let manifest = manifest(&world.out());
    let reports = manifest["reports"].as_array().unwrap();
    let failed: Vec<_> = reports.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(
        failed.len(),
        1,
        "exactly the report that met the fault fails: {manifest}"
    );
    assert!(
        reports.iter().any(|r| r["status"] == "ok"),
        "the other report is unaffected"
    );
    // Whatever succeeded is intact: every file the records list (the ok report's two, and
    // any the failed one saved before its fault), checked.
    let listed: usize = reports
        .iter()
        .map(|r| r["files"].as_array().map_or(0, Vec::len))
        .sum();
    assert!(listed >= 2, "{manifest}");
    assert_eq!(check_sums(&world.out()), listed);
    assert!(world.stats().create_requests <= 2, "never created twice");
    failed[0]["error"].clone()
}

fn error_of(endpoint: Endpoint, hostile: Hostile, status: Option<u16>) -> String {
    let manifest = run_against(endpoint, hostile, status);
    let error = manifest.as_str().unwrap().to_owned();
    assert!(!error.contains('\n'), "one line: {error}");
    error
}

#[test]
fn html_error_page_instead_of_json() {
    let error = error_of(Endpoint::StoredList, Hostile::HtmlPage, None);
    assert!(
        error.contains("HTML page") && error.contains("502 Bad Gateway"),
        "{error}"
    );
    let error = error_of(Endpoint::Create, Hostile::HtmlPage, Some(502));
    assert!(
        error.contains("could not create") && error.contains("HTML page"),
        "{error}"
    );
}

#[test]
fn invalid_json_and_wrong_content_type() {
    let error = error_of(Endpoint::StoredList, Hostile::InvalidJson, None);
    assert!(error.contains("not valid JSON"), "{error}");
    let error = error_of(Endpoint::StoredList, Hostile::WrongContentType, None);
    assert!(
        error.contains("expected JSON but got text/plain"),
        "{error}"
    );
}

#[test]
fn endless_json_body_is_cut_off() {
    let error = error_of(Endpoint::StoredList, Hostile::EndlessBody, None);
    assert!(error.contains("larger than"), "{error}");
}

#[test]
fn stored_item_with_an_unexpected_shape() {
    let error = error_of(Endpoint::StoredList, Hostile::OddStoredItem, None);
    assert!(error.contains("stored item is not an object"), "{error}");
}

#[test]
fn download_far_larger_than_announced() {
    let error = error_of(Endpoint::Download, Hostile::Oversize, None);
    assert!(
        error.contains("more than") && error.contains("announced"),
        "{error}"
    );
    let error = error_of(Endpoint::Download, Hostile::EndlessBody, None);
    assert!(error.contains("announced"), "{error}");
}

#[test]
fn hostile_tenant_names_map_to_safe_unique_paths_inside_the_output_folder() {
    let names = [
        "../../escape",
        "a/b",
        "a\\\\b",
        "nul\\0byte",
        "CON",
        "con.txt",
        "tab\\there",
        "..",
        "Ünïcødé 顧客",
    ];
    let long = "x".repeat(300);
    let ids = [
        "00000000-0000-4000-8000-000000000001",
        "00000000-0000-4000-8000-000000000002",
        "00000000-0000-4000-8000-000000000003",
        "00000000-0000-4000-8000-000000000004",
        "00000000-0000-4000-8000-000000000005",
        "00000000-0000-4000-8000-000000000006",
        "00000000-0000-4000-8000-000000000007",
        "00000000-0000-4000-8000-000000000008",
        "00000000-0000-4000-8000-000000000009",
        "00000000-0000-4000-8000-00000000000a",
    ];
    let world = World::quick();
    let mut job = format!("version: 1\n{FAST_POLLING}defaults:\n  formats: [csv_v2_0]\ntenants:\n");
    for (id, name) in ids.iter().zip(names.iter().copied().chain([long.as_str()])) {
        job.push_str(&format!("  - id: {id}\n    name: \"{name}\"\n"));
    }
    let job = world.job(&job);
    world.run(&job).assert().success();
    let out = world.out();
    let files: Vec<String> = tree(&out)
        .into_iter()
        .filter(|f| f.starts_with("2026-10/") && f.matches('/').count() == 2)
        .collect();
    assert_eq!(files.len(), 10, "one distinct file per tenant: {files:?}");
    for file in &files {
        let parts: Vec<&str> = file.split('/').collect();
        assert_eq!(parts.len(), 3, "{file}");
        assert!(
            parts
                .iter()
                .all(|p| *p != ".." && *p != "." && !p.is_empty()),
            "{file}"
        );
        assert!(!parts[1].eq_ignore_ascii_case("con"), "{file}");
    }
    // Nothing escaped the output folder.
    let mut beside: Vec<String> = std::fs::read_dir(world.dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    beside.sort();
    assert_eq!(beside, ["job.yml", "out"]);
    assert_eq!(check_sums(&out), 10);
    world.cmd().arg("verify").arg(&out).assert().success();
}

#[cfg(unix)]
#[test]
fn existing_symlinks_in_the_output_folder_are_never_followed() {
    let world = World::quick();
    let outside = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(world.out()).unwrap();
    std::os::unix::fs::symlink(outside.path(), world.out().join("2026-10")).unwrap();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let assert = world.run(&job).assert().code(1);
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("symbolic link"), "{stderr}");
    assert_eq!(
        std::fs::read_dir(outside.path()).unwrap().count(),
        0,
        "nothing written outside"
    );
}

/// A `json_v2_0` body that is not JSON is checked while it downloads, with the parser's own
/// words, as the check of the finished file said them; the complete file stays for inspection.
#[test]
fn a_broken_json_report_is_named_by_the_streamed_check() {
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint: Endpoint::Download,
            hostile: Some(Hostile::InvalidJson),
            // A JSON file that does not read is fetched again: every attempt gets the fault.
            times: 3,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    // Without the size check, which would otherwise name the short body first.
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  formats: [json_v2_0]\nchecks:\n  size: off\n",
    ));
    world.run(&job).assert().code(1);
    let manifest = manifest(&world.out());
    let error = manifest["reports"][0]["error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("the json_v2_0 file failed its content check (kept as downloaded): not valid JSON: EOF while parsing a value at line 1 column 18"),
        "{error}"
    );
    let files = tree(&world.out());
    assert!(
        files.contains(&"2026-10/acme/usage_summary.json_v2_0.json".to_owned()),
        "{files:?}"
    );
    assert!(files.iter().all(|f| !f.contains(".partial")), "{files:?}");
}

/// A transfer that breaks on every attempt leaves nothing under the final name, and no
/// temporary file either, although its first half was already being checked.
#[test]
fn a_transfer_that_always_breaks_leaves_no_file() {
    let world = World::new(Scenario {
        pad_bytes: 4 * 1024 * 1024,
        faults: vec![FaultRule {
            endpoint: Endpoint::Download,
            truncate: true,
            times: 3,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  formats: [csv_v2_0]\n",
    ));
    world.run(&job).assert().code(1);
    let manifest = manifest(&world.out());
    let error = manifest["reports"][0]["error"].as_str().unwrap_or_default();
    assert!(error.contains("transfer broke"), "{error}");
    // The period's records say the report failed; no report file, whole or partial.
    let files = tree(&world.out());
    assert!(
        files
            .iter()
            .all(|f| !f.starts_with("2026-10/") || f.matches('/').count() == 1),
        "{files:?}"
    );
}

/// A server that echoes the `Authorization` header in an error: neither the token nor the
/// client secret reaches stderr, the annotations, the manifest or the summary, and every token
/// is masked in GitHub Actions before it could be printed.
/// A portal page answering a download as plain text, its title naming the token: the content
/// check quotes the title, and the record scrubs it.
#[test]
fn a_token_quoted_by_the_content_check_is_scrubbed() {
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint: Endpoint::Download,
            hostile: Some(Hostile::EchoAuthorization),
            status: Some(200),
            times: 100,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    // The page is shorter than the announced file: only the content check may stop it here.
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "checks:\n  size: off\ndefaults:\n  formats: [csv_v2_0]\n",
    ));
    world.run(&job).assert().code(1);
    let manifest = std::fs::read_to_string(world.out().join("manifest.json")).unwrap();
    let summary = std::fs::read_to_string(world.out().join("summary.md")).unwrap();
    assert!(
        manifest.contains("the body is an HTML page (\\\"Signed in as [redacted]\\\")"),
        "{manifest}"
    );
    assert!(
        summary.contains("Signed in as \\[redacted\\]")
            || summary.contains("Signed in as [redacted]"),
        "{summary}"
    );
}

#[test]
fn echoed_credentials_are_scrubbed_and_tokens_masked() {
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint: Endpoint::Create,
            hostile: Some(Hostile::EchoAuthorization),
            status: Some(400),
            times: 1,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let github_output = world.path("github_output");
    let output = world
        .run(&job)
        .args(["--ci", "github"])
        .env("GITHUB_OUTPUT", &github_output)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let masked: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("::add-mask::"))
        .collect();
    let secret = world.sandbox().client_secret().to_owned();
    assert!(masked.contains(&secret.as_str()), "{stdout}");
    // The secret, the Basic value and at least one token.
    assert!(masked.len() >= 3, "{stdout}");
    let manifest = std::fs::read_to_string(world.out().join("manifest.json")).unwrap();
    let summary = std::fs::read_to_string(world.out().join("summary.md")).unwrap();
    assert!(manifest.contains("[redacted]"), "{manifest}");
    let others: Vec<&str> = stdout
        .lines()
        .filter(|l| !l.starts_with("::add-mask::"))
        .collect();
    for value in &masked {
        for (name, text) in [
            ("stderr", stderr.as_str()),
            ("manifest", manifest.as_str()),
            ("summary", summary.as_str()),
        ] {
            assert!(!text.contains(value), "{value} in {name}: {text}");
        }
        assert!(
            !others.iter().any(|l| l.contains(value)),
            "{value} on stdout"
        );
    }
}

/// A tenant name holding a line break and a workflow command came out as a command of its own
/// in stderr under `--ci github`.
#[test]
fn names_never_become_workflow_commands() {
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint: Endpoint::Create,
            status: Some(400),
            times: 1,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(
        &[(ACME, "\"acme\\n::error::pwned\\n::add-mask::x\"")],
        "",
    ));
    let output = world
        .run(&job)
        .args(["--ci", "github"])
        .env("GITHUB_OUTPUT", world.path("github_output"))
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stderr.contains("pwned"), "the name is logged: {stderr}");
    for line in stderr.lines().chain(stdout.lines()) {
        let line = line.trim_start();
        // The injected mask is `x` and then whatever followed the name; the run's own masks of
        // the tokens it fetches are alphanumeric and may start with an `x` themselves.
        let injected_mask = line
            .strip_prefix("::add-mask::x")
            .is_some_and(|rest| !rest.starts_with(|c: char| c.is_ascii_alphanumeric()));
        assert!(
            !line.starts_with("::error::pwned") && !injected_mask,
            "{line}"
        );
    }
}
