//! Bad input is refused before anything happens: exit 2, a message that names the problem (and
//! where, for job files), no report created, and the files already in the output folder untouched.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use acronis_reports_sandbox::Scenario;
use assert_cmd::Command;
use serde_json::Value;

use crate::support::*;

const OLD_CSV: &str = "2026-10/acme/usage_summary.csv_v2_0.csv";

/// A quick world whose output folder already holds files of an earlier run.
fn seeded_world() -> World {
    let world = World::quick();
    let out = world.out();
    std::fs::create_dir_all(out.join("2026-10/acme")).unwrap();
    std::fs::write(out.join("keep.txt"), "keep me\n").unwrap();
    std::fs::write(out.join(OLD_CSV), "an earlier run's file\n").unwrap();
    let sums = format!(
        "{}  {OLD_CSV}\n{}  keep.txt\n",
        sha256_file(&out.join(OLD_CSV)),
        sha256_file(&out.join("keep.txt"))
    );
    std::fs::write(out.join("SHA256SUMS"), sums).unwrap();
    world
}

/// Every file of the world's scratch folder with its bytes.
fn snapshot(world: &World) -> BTreeMap<String, Vec<u8>> {
    tree(world.dir.path())
        .into_iter()
        .map(|file| {
            let bytes = std::fs::read(world.dir.path().join(&file)).unwrap();
            (file, bytes)
        })
        .collect()
}

struct Refusal {
    stdout: String,
    stderr: String,
}

/// Runs `cmd`, which must be refused: exit 2, nothing created, no file written or changed.
fn refuse(world: &World, mut cmd: Command) -> Refusal {
    let before = snapshot(world);
    let output = cmd.assert().code(2).get_output().clone();
    assert_eq!(
        snapshot(world),
        before,
        "files changed although the command was refused"
    );
    assert_eq!(world.stats().create_requests, 0);
    let refusal = Refusal {
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    };
    assert!(!refusal.stderr.contains("panicked"), "{}", refusal.stderr);
    refusal
}

/// `run` with this job text against a seeded world must be refused; returns stderr.
fn refuse_job(text: &str) -> String {
    let world = seeded_world();
    let job = world.job(text);
    let stderr = refuse(&world, world.run(&job)).stderr;
    // A job-file error is found before any network traffic.
    assert_eq!(world.stats().token_requests, 0, "{stderr}");
    stderr
}

fn assert_mentions(text: &str, needles: &[&str]) {
    for needle in needles {
        assert!(text.contains(needle), "{needle:?} not in:\n{text}");
    }
}

// `job_text` writes `version: 1` and four polling lines, so `extra` starts on line 6.

#[test]
fn unknown_key_names_the_nearest_valid_key() {
    let stderr = refuse_job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  fromats: [csv_v2_0]\n",
    ));
    assert_mentions(
        &stderr,
        &["job.yml:7:3\n", "fromats", "did you mean `formats`"],
    );

    let stderr = refuse_job(&job_text(&[(ACME, "acme")], "concurency: 2\n"));
    assert_mentions(
        &stderr,
        &["job.yml:6:1\n", "concurency", "did you mean `concurrency`"],
    );
}

#[test]
fn unknown_kind_level_and_format_list_the_valid_values() {
    let cases: [(&str, &str, &[&str]); 3] = [
        (
            "defaults:\n  kind: usage_sumary\n",
            "job.yml:7:9\n",
            &[
                "usage_sumary",
                "usage_daily",
                "usage_summary",
                "usage_current",
                "usage_breakdown",
            ],
        ),
        (
            "defaults:\n  level: everyone\n",
            "job.yml:7:10\n",
            &[
                "everyone",
                "itself",
                "direct_partners",
                "all_partners",
                "all_customers",
                "accounts",
            ],
        ),
        (
            "defaults:\n  formats: [csv_v2_0, pdf]\n",
            "job.yml:7:23\n",
            &["pdf", "csv", "html", "json_v1", "csv_v2_0", "json_v2_0"],
        ),
    ];
    for (extra, position, words) in cases {
        let stderr = refuse_job(&job_text(&[(ACME, "acme")], extra));
        assert_mentions(&stderr, &[position]);
        assert_mentions(&stderr, words);
    }
}

#[test]
fn future_and_reversed_periods_are_refused() {
    let stderr = refuse_job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  periods: [2026-12]\n",
    ));
    assert_mentions(&stderr, &["job.yml:7:13\n", "acme", "2026-12", AS_OF]);

    let stderr = refuse_job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  periods: [{start: 2026-10-15, end: 2026-10-01}]\n",
    ));
    assert_mentions(
        &stderr,
        &["job.yml:7:13\n", "acme", "2026-10-15", "2026-10-01"],
    );
}

#[test]
fn bare_number_duration_asks_for_a_unit() {
    let text = job_text(&[(ACME, "acme")], "");
    let bad = text.replace("  timeout: 20s\n", "  timeout: 30\n");
    assert_ne!(text, bad);
    let stderr = refuse_job(&bad);
    assert_mentions(&stderr, &["job.yml:5:12\n", "unit", "30s"]);
}

#[test]
fn duplicate_key_is_refused() {
    let stderr = refuse_job(&job_text(
        &[(ACME, "acme")],
        "concurrency: 2\nconcurrency: 3\n",
    ));
    assert_mentions(&stderr, &["job.yml:7:1\n", "duplicate", "concurrency"]);
}

#[test]
fn duplicate_key_message_gives_advice_a_user_can_follow() {
    let stderr = refuse_job(&job_text(
        &[(ACME, "acme")],
        "concurrency: 2\nconcurrency: 3\n",
    ));
    assert!(!stderr.contains("DuplicateKeyPolicy"), "{stderr}");
    assert!(!stderr.contains("Options"), "{stderr}");
}

#[test]
fn malformed_yaml_is_refused_with_its_position() {
    // An unclosed quote in the tenant's name on line 8.
    let stderr = refuse_job(&job_text(&[(ACME, "\"acme")], ""));
    assert_mentions(&stderr, &["job.yml:8:11\n", "quote"]);
}

#[test]
fn alias_bomb_is_refused_quickly() {
    // Eleven levels of ten aliases each: 10^11 strings if expanded.
    let mut text =
        String::from("version: 1\na0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..=11 {
        let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{aliases}]\n"));
    }
    text.push_str(&format!("tenants:\n  - id: {ACME}\n"));
    let started = Instant::now();
    let stderr = refuse_job(&text);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_mentions(&stderr, &["job.yml:2:1\n"]);

    // The same bomb where the job file expects a list of periods.
    let mut text = format!("version: 1\ntenants:\n  - id: {ACME}\n    periods:\n");
    text.push_str("      - &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
    for level in 1..=11 {
        let aliases = vec![format!("*a{}", level - 1); 10].join(", ");
        text.push_str(&format!("      - &a{level} [{aliases}]\n"));
    }
    let started = Instant::now();
    let stderr = refuse_job(&text);
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(5), "took {elapsed:?}");
    assert_mentions(&stderr, &["job.yml:5:"]);
}

#[test]
fn refused_credentials_stop_the_run_before_anything_is_created() {
    const WRONG: &str = "wrong-secret-5f2c9e1d";
    let world = seeded_world();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let mut cmd = world.run(&job);
    cmd.env("ACRONIS_CLIENT_SECRET", WRONG);
    let refusal = refuse(&world, cmd);
    assert_mentions(&refusal.stderr, &["authentication refused"]);
    assert!(!refusal.stderr.contains(WRONG), "{}", refusal.stderr);
    assert!(!refusal.stdout.contains(WRONG), "{}", refusal.stdout);
    assert!(world.stats().token_requests >= 1);
}

#[test]
fn a_refused_token_stops_the_run_at_the_first_refusal_and_writes_no_output() {
    const WRONG: &str = "wrong-token-7c1e0a9b";
    let world = seeded_world();
    let job = world.job(&job_text(
        &[(ACME, "acme"), (GLOBEX, "globex"), (INITECH, "initech")],
        "concurrency: 1\n",
    ));
    // The resume state folder may appear; nothing a user or an audit reads may change.
    let visible = |world: &World| {
        let mut files = snapshot(world);
        files.retain(|name, _| !name.contains(".acronis-reports"));
        files
    };
    let before = visible(&world);
    let output = world
        .run(&job)
        .env_remove("ACRONIS_CLIENT_ID")
        .env_remove("ACRONIS_CLIENT_SECRET")
        .env("ACRONIS_TOKEN", WRONG)
        .assert()
        .code(2)
        .get_output()
        .clone();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr),
    );
    assert_mentions(&stderr, &["authentication refused", "ACRONIS_TOKEN"]);
    assert!(
        !stderr.contains(WRONG) && !stdout.contains(WRONG),
        "{stderr}"
    );
    assert_eq!(visible(&world), before, "outputs changed although refused");
    assert_eq!(
        world.stats().create_requests,
        1,
        "the other reports were not started"
    );
}

#[test]
fn missing_credentials_name_the_variables() {
    let world = seeded_world();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));

    let mut cmd = world.run(&job);
    cmd.env_remove("ACRONIS_CLIENT_ID")
        .env_remove("ACRONIS_CLIENT_SECRET");
    let refusal = refuse(&world, cmd);
    assert_mentions(
        &refusal.stderr,
        &[
            "ACRONIS_CLIENT_ID",
            "ACRONIS_CLIENT_SECRET",
            "ACRONIS_TOKEN",
        ],
    );

    // Half a client is no client.
    let mut cmd = world.run(&job);
    cmd.env_remove("ACRONIS_CLIENT_SECRET");
    let refusal = refuse(&world, cmd);
    assert_mentions(&refusal.stderr, &["ACRONIS_CLIENT_SECRET"]);

    assert_eq!(world.stats().token_requests, 0);
}

#[test]
fn plain_http_to_a_remote_host_is_refused() {
    let world = seeded_world();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let mut cmd = world.run(&job);
    cmd.args(["--base-url", "http://example.com"]);
    let refusal = refuse(&world, cmd);
    assert_mentions(&refusal.stderr, &["https", "http://example.com"]);

    // The same URL from the job file, with nothing overriding it.
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "api:\n  base_url: http://example.com\n",
    ));
    let mut cmd = world.run(&job);
    cmd.env_remove("ACRONIS_BASE_URL");
    let refusal = refuse(&world, cmd);
    assert_mentions(&refusal.stderr, &["https"]);
    assert_eq!(world.stats().token_requests, 0);
}

#[test]
fn validate_plan_and_schema_print_without_touching_the_network() {
    let world = seeded_world();
    let before = snapshot(&world);
    let job = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  hide_zero_usage: true\n  show_skus: true\n",
    ));
    let before_job = {
        let mut files = before.clone();
        files.insert("job.yml".into(), std::fs::read(&job).unwrap());
        files
    };

    let output = world
        .cmd()
        .arg("validate")
        .arg(&job)
        .args(["--as-of", AS_OF])
        .assert()
        .success()
        .get_output()
        .clone();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_mentions(&stdout, &[ACME, "2026-10", "csv_v2_0", "json_v2_0"]);

    let output = world
        .cmd()
        .args(["plan", "--json", "--as-of", AS_OF])
        .arg(&job)
        .assert()
        .success()
        .get_output()
        .clone();
    let text = String::from_utf8_lossy(&output.stdout);
    assert_mentions(
        &text,
        &["\"schedule\"", "\"once\"", "\"result_action\":\"save\""],
    );
    let plan: Value = serde_json::from_str(&text).expect("plan --json prints JSON");
    let request = &plan["reports"][0]["request"];
    assert_eq!(request["schedule"]["type"], "once", "{request}");
    assert_eq!(request["result_action"], "save", "{request}");
    let parameters = &request["parameters"];
    assert_eq!(parameters["tenant_id"], ACME, "{parameters}");
    assert_eq!(
        parameters["hide_zero_usage"],
        Value::Bool(true),
        "{parameters}"
    );
    assert_eq!(parameters["show_skus"], Value::Bool(true), "{parameters}");
    assert_eq!(parameters["period"]["start"], "2026-10-01", "{parameters}");
    assert_eq!(parameters["period"]["end"], "2026-10-31", "{parameters}");

    let output = world
        .cmd()
        .arg("schema")
        .assert()
        .success()
        .get_output()
        .clone();
    let schema: Value = serde_json::from_slice(&output.stdout).expect("schema prints JSON");
    assert!(schema["properties"]["tenants"].is_object(), "{schema}");

    let bad = world.job(&job_text(
        &[(ACME, "acme")],
        "defaults:\n  kind: usage_sumary\n",
    ));
    let mut cmd = world.cmd();
    cmd.arg("validate").arg(&bad).args(["--as-of", AS_OF]);
    let refusal = refuse(&world, cmd);
    assert_mentions(&refusal.stderr, &["job.yml:7:9\n", "usage_summary"]);

    std::fs::write(&job, &before_job["job.yml"]).unwrap();
    assert_eq!(
        snapshot(&world),
        before_job,
        "validate/plan/schema wrote files"
    );
    let stats = world.stats();
    assert_eq!(stats.token_requests, 0);
    assert_eq!(stats.create_requests, 0);
}

/// A token straight from the sandbox's token endpoint, over a plain socket.
/// Runs of letters and digits that look like a sandbox token (48 mixed-case alphanumerics; the
/// id token has 64): long and with upper-case letters, which hashes and UUIDs never have.
fn token_shaped(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|run| {
            run.len() >= 32
                && run.chars().any(|c| c.is_ascii_uppercase())
                && run.chars().any(|c| c.is_ascii_lowercase())
        })
        .map(str::to_owned)
        .collect()
}

/// stdout, stderr and every file under the output folder, as text.
fn everything_written(world: &World, output: &std::process::Output) -> Vec<(String, String)> {
    let mut texts = vec![
        (
            "stdout".to_owned(),
            String::from_utf8_lossy(&output.stdout).into_owned(),
        ),
        (
            "stderr".to_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ),
    ];
    for file in tree(&world.out()) {
        let bytes = std::fs::read(world.out().join(&file)).unwrap();
        texts.push((file, String::from_utf8_lossy(&bytes).into_owned()));
    }
    texts
}

#[test]
fn secrets_and_tokens_never_reach_logs_or_files() {
    const SECRET: &str = "Xq7-very-distinctive-client-secret-93kf";
    let world = World::new(Scenario {
        client_secret: SECRET.into(),
        ..quick_scenario()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], ""));

    // Client credentials at the most verbose log level.
    let output = world
        .run(&job)
        .args(["-v", "-v"])
        .assert()
        .success()
        .get_output()
        .clone();
    let texts = everything_written(&world, &output);
    assert!(
        texts[1].1.contains("DEBUG"),
        "no debug log:\n{}",
        texts[1].1
    );
    assert!(texts.len() > 4, "{texts:?}");
    for (name, text) in &texts {
        assert!(!text.contains(SECRET), "the client secret is in {name}");
        let lower = text.to_ascii_lowercase();
        assert!(!lower.contains("bearer"), "a bearer header is in {name}");
        assert!(
            !lower.contains("authorization"),
            "an auth header is in {name}"
        );
        assert_eq!(token_shaped(text), Vec::<String>::new(), "in {name}");
    }

    // A ready token, used as is: it must not appear either.
    let token = fetch_token(&world);
    assert_eq!(
        token_shaped(&token),
        vec![token.clone()],
        "the detector sees tokens"
    );
    std::fs::remove_dir_all(world.out()).unwrap();
    let tokens_before = world.stats().token_requests;
    let output = world
        .run(&job)
        .args(["-v", "-v"])
        .env_remove("ACRONIS_CLIENT_ID")
        .env_remove("ACRONIS_CLIENT_SECRET")
        .env("ACRONIS_TOKEN", &token)
        .assert()
        .success()
        .get_output()
        .clone();
    assert_eq!(world.stats().token_requests, tokens_before);
    assert_eq!(check_sums(&world.out()), 2);
    for (name, text) in everything_written(&world, &output) {
        assert!(!text.contains(&token), "the access token is in {name}");
        assert!(!text.contains(SECRET), "the client secret is in {name}");
    }
}

/// `--as-of 9999-12-31` let future periods pass; `--as-of 0001-01-01` gave period `0000-12`.
#[test]
fn an_as_of_in_the_future_or_before_2000_is_refused() {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    for (day, says) in [
        ("9999-12-31", "after today"),
        ("0001-01-01", "before the year 2000"),
    ] {
        let assert = world
            .cmd()
            .args(["validate"])
            .arg(&job)
            .args(["--as-of", day])
            .assert()
            .code(2);
        let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
        assert!(stderr.contains(says), "{day}: {stderr}");
    }
    world
        .cmd()
        .args(["validate"])
        .arg(&job)
        .args(["--as-of", "2999-01-15", "--allow-future-as-of"])
        .assert()
        .success();
}
