//! `doctor` against the sandbox and against wrong URLs; and `run` failing fast, with a hint, on
//! the same network mistakes.

use std::io::{Read as _, Write as _};
use std::time::{Duration, Instant};

use acronis_reports_sandbox::{Endpoint, FaultRule, Scenario, TenantBehaviour};
use assert_cmd::Command;
use base64::Engine as _;
use serde_json::Value;

use crate::support::*;

/// The partner of the sandbox's default tenant tree.
const PARTNER: &str = "3f1c0a52-7e0e-4d4b-9b0a-2f4cf0f0a001";
/// Far more than doctor or a refused run may take: each network step gives up within seconds.
const QUICK: Duration = Duration::from_secs(10);

struct Outcome {
    code: i32,
    stdout: String,
    stderr: String,
    took: Duration,
}

fn outcome(mut cmd: Command) -> Outcome {
    let started = Instant::now();
    let output = cmd.output().expect("the binary runs");
    let outcome = Outcome {
        code: output.status.code().expect("an exit code"),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        took: started.elapsed(),
    };
    assert!(!outcome.stderr.contains("panicked"), "{}", outcome.stderr);
    outcome
}

/// `doctor ARGS…` against the world's sandbox.
fn doctor(world: &World, args: &[&str]) -> Outcome {
    let mut cmd = world.cmd();
    cmd.arg("doctor").args(args);
    outcome(cmd)
}

/// A job of two tenants and the default tree's partner.
fn job(world: &World) -> String {
    let text = job_text(&[(ACME, "acme"), (GLOBEX, "globex")], "")
        + &format!("  - children_of: {PARTNER}\n");
    world.job(&text).display().to_string()
}

/// The line of the check titled `title` (the first, if several).
fn line<'a>(out: &'a Outcome, title: &str) -> &'a str {
    out.stdout
        .lines()
        .find(|l| l[4..].starts_with(&format!("{title}:")))
        .unwrap_or_else(|| panic!("no `{title}` line in:\n{}", out.stdout))
}

fn all_pass(out: &Outcome) {
    assert_eq!(out.code, 0, "{}\n{}", out.stdout, out.stderr);
    assert!(!out.stdout.is_empty());
    for l in out.stdout.lines() {
        assert!(
            l.starts_with("✔ "),
            "not a passed check: {l}\n{}",
            out.stdout
        );
    }
}

#[test]
fn a_good_set_up_passes_every_check_and_creates_nothing() {
    let world = World::quick();
    let job = job(&world);
    let out = doctor(&world, &[&job]);
    all_pass(&out);
    for title in [
        "job file",
        "data-center URL",
        "host resolves",
        "TCP connection",
        "API answers",
        "credentials",
        "API client's tenant",
        "job tenants",
        "children_of root",
    ] {
        line(&out, title);
    }
    assert!(line(&out, "data-center URL").contains("(from ACRONIS_BASE_URL)"));
    assert!(line(&out, "job tenants").contains("2 of 2 visible: acme, globex"));
    assert!(line(&out, "children_of root").contains(PARTNER));
    // Plain http on loopback: no TLS line.
    assert!(!out.stdout.contains("TLS"), "{}", out.stdout);
    assert!(
        out.stderr.contains("all 9 check(s) passed"),
        "{}",
        out.stderr
    );
    assert!(
        !out.stdout.contains(world.sandbox().client_secret()),
        "{}",
        out.stdout
    );
    let stats = world.stats();
    assert_eq!(stats.create_requests, 0);
    assert_eq!(stats.client_requests, 1);
    // The client's own tenant, two job tenants, the children_of root.
    assert_eq!(stats.tenant_requests, 4);
    assert_eq!(tree(world.dir.path()), ["job.yml"], "doctor wrote a file");
}

#[test]
fn a_wrong_secret_names_the_variables_and_never_the_secret() {
    const WRONG: &str = "wrong-secret-4b8d1f0e";
    let world = World::quick();
    let mut cmd = world.cmd();
    cmd.env("ACRONIS_CLIENT_SECRET", WRONG).arg("doctor");
    let out = outcome(cmd);
    assert_eq!(out.code, 2, "{}", out.stdout);
    let refused = line(&out, "credentials");
    assert!(refused.starts_with("✘ "), "{refused}");
    for name in ["ACRONIS_CLIENT_ID", "ACRONIS_CLIENT_SECRET", "HTTP 401"] {
        assert!(refused.contains(name), "{name} not in: {refused}");
    }
    let basic = base64::engine::general_purpose::STANDARD
        .encode(format!("{}:{WRONG}", world.sandbox().client_id()));
    for leak in [WRONG, &basic[..12]] {
        assert!(
            !out.stdout.contains(leak) && !out.stderr.contains(leak),
            "{leak} leaked:\n{}{}",
            out.stdout,
            out.stderr
        );
    }
    // The checks before it passed; the one after it did not run.
    assert!(line(&out, "API answers").starts_with("✔ "));
    assert!(
        !out.stdout.contains("API client's tenant"),
        "{}",
        out.stdout
    );
}

/// A token from the sandbox's token endpoint, over a plain socket.
#[test]
fn a_token_is_checked_by_an_authenticated_read() {
    let world = World::quick();
    let token = fetch_token(&world);
    let mut cmd = world.cmd();
    cmd.env_remove("ACRONIS_CLIENT_SECRET")
        .env("ACRONIS_TOKEN", &token)
        .arg("doctor");
    let out = outcome(cmd);
    all_pass(&out);
    assert!(line(&out, "credentials").contains("ACRONIS_TOKEN"));
    line(&out, "API client's tenant");

    let mut cmd = world.cmd();
    cmd.env_remove("ACRONIS_CLIENT_ID")
        .env_remove("ACRONIS_CLIENT_SECRET")
        .env("ACRONIS_TOKEN", "not-a-token-9c2e")
        .arg("doctor");
    let out = outcome(cmd);
    assert_eq!(out.code, 2);
    let refused = line(&out, "credentials");
    assert!(
        refused.starts_with("✘ ") && refused.contains("check ACRONIS_TOKEN"),
        "{refused}"
    );
    assert!(!out.stdout.contains("not-a-token-9c2e"), "{}", out.stdout);
}

#[test]
fn an_invisible_tenant_is_named_with_the_likely_cause() {
    let mut scenario = quick_scenario();
    scenario.tenants.insert(
        GLOBEX.to_owned(),
        TenantBehaviour {
            unknown: true,
            ..TenantBehaviour::default()
        },
    );
    let world = World::new(scenario);
    let job = job(&world);
    let out = doctor(&world, &[&job]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    assert!(line(&out, "job tenants").contains("1 of 2 visible: acme"));
    let invisible = line(&out, "tenant");
    assert!(invisible.starts_with("✘ "), "{invisible}");
    for words in [
        "globex",
        GLOBEX,
        "HTTP 404",
        "not an ancestor",
        "another data center",
    ] {
        assert!(invisible.contains(words), "{words} not in: {invisible}");
    }
    assert!(line(&out, "children_of root").starts_with("✔ "));
    assert_eq!(out.stdout.matches("✘").count(), 1, "{}", out.stdout);

    // A 403 is the same story (the first read is of the client's own tenant, whose name is only
    // a courtesy).
    let world = World::new(Scenario {
        faults: vec![FaultRule {
            endpoint: Endpoint::Tenant,
            status: Some(403),
            times: 2,
            ..FaultRule::default()
        }],
        ..quick_scenario()
    });
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let out = doctor(&world, &[&job.display().to_string()]);
    assert_eq!(out.code, 2, "{}", out.stdout);
    let invisible = line(&out, "tenant");
    assert!(
        invisible.contains("acme") && invisible.contains("HTTP 403"),
        "{invisible}"
    );
    assert!(line(&out, "API client's tenant").starts_with("✔ "));
}

#[test]
fn a_host_that_does_not_resolve_is_said_in_seconds() {
    let world = World::quick();
    let mut cmd = world.cmd();
    cmd.env("ACRONIS_BASE_URL", "https://something.invalid")
        .arg("doctor");
    let out = outcome(cmd);
    assert!(out.took < QUICK, "took {:?}", out.took);
    assert_eq!(out.code, 2);
    let failed = line(&out, "host resolves");
    for words in [
        "✘ ",
        "something.invalid does not resolve",
        "check ACRONIS_BASE_URL",
        "API client",
    ] {
        assert!(failed.contains(words), "{words} not in: {failed}");
    }
    // One failure, one line; nothing after it ran.
    assert_eq!(out.stdout.lines().count(), 2, "{}", out.stdout);
    assert_eq!(world.stats().connections, 0);
}

#[test]
fn https_against_a_plain_http_port_is_said_in_seconds() {
    let world = World::quick();
    let http = world.sandbox().base_url();
    let https = http.replacen("http://", "https://", 1);
    let mut cmd = world.cmd();
    cmd.env("ACRONIS_BASE_URL", &https).arg("doctor");
    let out = outcome(cmd);
    assert!(out.took < QUICK, "took {:?}", out.took);
    assert_eq!(out.code, 2);
    let failed = line(&out, "TLS");
    for words in [
        "✘ ",
        "does not speak TLS",
        &format!("write {http}"),
        "ACRONIS_BASE_URL",
    ] {
        assert!(failed.contains(words), "{words} not in: {failed}");
    }
    assert!(line(&out, "TCP connection").starts_with("✔ "));
    assert_eq!(world.stats().token_requests, 0);
}

/// Over TLS (a sandbox offering HTTP/2, as a data center does): the TLS line passes when the
/// certificate is trusted, and says what to do when it is not.
#[test]
fn tls_is_checked_and_an_untrusted_certificate_is_named() {
    let world = World::tls(quick_scenario());
    let mut cmd = world.cmd();
    world.trust_ca(&mut cmd);
    cmd.arg("doctor");
    let out = outcome(cmd);
    all_pass(&out);
    assert!(line(&out, "TLS").contains("certificate is trusted"));

    let mut cmd = world.cmd();
    cmd.arg("doctor");
    let out = outcome(cmd);
    assert!(out.took < QUICK, "took {:?}", out.took);
    assert_eq!(out.code, 2);
    let failed = line(&out, "TLS");
    for words in ["✘ ", "is not trusted", "SSL_CERT_FILE"] {
        assert!(failed.contains(words), "{words} not in: {failed}");
    }
    assert_eq!(
        world.stats().token_requests,
        1,
        "only the trusted run asked for a token"
    );
}

/// Behind a proxy the proxy resolves and connects: a proxy that cannot be reached is named,
/// not the data center's host.
#[test]
fn an_unreachable_proxy_is_named() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut cmd = bare_cmd();
    cmd.env("ACRONIS_BASE_URL", "https://eu2-cloud.acronis.com")
        .env("ACRONIS_TOKEN", "token-value-1234")
        .env("HTTPS_PROXY", format!("http://{closed}"))
        .arg("doctor");
    let out = outcome(cmd);
    assert!(out.took < QUICK, "took {:?}", out.took);
    assert_eq!(out.code, 2);
    let failed = line(&out, "proxy");
    for words in ["✘ ", "HTTPS_PROXY", "eu2-cloud.acronis.com:443"] {
        assert!(failed.contains(words), "{words} not in: {failed}");
    }
    assert!(!out.stdout.contains("host resolves"), "{}", out.stdout);
}

/// A loopback server that answers every request with a sign-in page, as a captive portal or
/// a web site at the wrong URL does; returns its `http://` URL.
fn portal() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
                head.push(byte[0]);
            }
            let body = "<html><head><title>Sign in</title></head></html>";
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

#[test]
fn a_server_that_is_not_the_api_is_named() {
    let mut cmd = bare_cmd();
    cmd.env("ACRONIS_BASE_URL", portal())
        .env("ACRONIS_TOKEN", "token-value-1234")
        .arg("doctor");
    let out = outcome(cmd);
    assert_eq!(out.code, 2);
    let failed = line(&out, "API answers");
    for words in [
        "✘ ",
        "HTTP 200",
        "text/html",
        "Sign in",
        "not the Acronis API",
        "ACRONIS_BASE_URL",
    ] {
        assert!(failed.contains(words), "{words} not in: {failed}");
    }
    assert!(!out.stdout.contains("credentials"), "{}", out.stdout);
}

#[test]
fn a_url_without_a_scheme_says_to_add_one() {
    let world = World::quick();
    let mut cmd = world.cmd();
    cmd.env("ACRONIS_BASE_URL", "eu2-cloud.acronis.com")
        .arg("doctor")
        .arg("--json");
    let out = outcome(cmd);
    assert_eq!(out.code, 2);
    let report: Value = serde_json::from_str(&out.stdout).expect("JSON on stdout");
    let first = &report["checks"][0];
    assert_eq!(first["check"], "base_url");
    assert_eq!(first["status"], "fail");
    let detail = first["detail"].as_str().unwrap();
    for words in [
        "has no scheme",
        "https://eu2-cloud.acronis.com",
        "ACRONIS_BASE_URL",
    ] {
        assert!(detail.contains(words), "{words} not in: {detail}");
    }
    assert_eq!(first["hint"], "this URL was read from ACRONIS_BASE_URL");
    assert_eq!(world.stats().connections, 0);
}

#[test]
fn a_test_report_is_created_checked_and_deleted() {
    let world = World::quick();
    let job = job(&world);
    let out = doctor(&world, &[&job, "--create-test-report"]);
    all_pass(&out);
    assert!(line(&out, "test report").contains("for acme"));
    assert!(line(&out, "SKU column").contains("has a SKU (column `sku`)"));
    line(&out, "test report deleted");
    let stats = world.stats();
    assert_eq!(stats.create_requests, 1);
    assert_eq!(stats.delete_requests, 1);
    assert_eq!(stats.reports.len(), 1);
    let report = &stats.reports[0];
    assert!(report.deleted, "the test report was left behind");
    assert_eq!(report.tenant_id, ACME);
    assert_eq!(
        (report.kind.as_str(), report.level.as_str()),
        ("usage_current", "itself")
    );
    assert_eq!(report.formats, ["csv_v2_0"]);
    assert_eq!(
        tree(world.dir.path()),
        ["job.yml"],
        "doctor left a file behind"
    );
}

#[test]
fn a_test_report_without_skus_fails_and_is_still_deleted() {
    let mut scenario = quick_scenario();
    scenario.tenants.insert(
        ACME.to_owned(),
        TenantBehaviour {
            no_skus: true,
            ..TenantBehaviour::default()
        },
    );
    let world = World::new(scenario);
    let job = job(&world);
    let out = doctor(&world, &[&job, "--create-test-report"]);
    assert_eq!(out.code, 2);
    let sku = line(&out, "SKU column");
    assert!(
        sku.starts_with("✘ ") && sku.contains("lack a SKU") && sku.contains("checks.skus"),
        "{sku}"
    );
    assert!(line(&out, "test report deleted").starts_with("✔ "));
    let stats = world.stats();
    assert_eq!((stats.create_requests, stats.delete_requests), (1, 1));
    assert!(stats.reports[0].deleted);
}

#[test]
fn json_has_every_check_with_its_status() {
    let world = World::quick();
    let job = job(&world);
    let mut cmd = world.cmd();
    cmd.args(["doctor", "--json", &job]);
    let out = outcome(cmd);
    assert_eq!(out.code, 0, "{}", out.stdout);
    let report: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(report["ok"], true);
    let checks = report["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks
        .iter()
        .map(|c| c["check"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "job_file",
            "base_url",
            "dns",
            "tcp",
            "api",
            "credentials",
            "client_tenant",
            "tenant",
            "children_of"
        ]
    );
    for check in checks {
        assert_eq!(check["status"], "pass", "{check}");
        assert!(
            check["title"].is_string() && check["detail"].is_string(),
            "{check}"
        );
        assert!(check.get("hint").is_none(), "{check}");
    }
    assert_eq!(checks[8]["tenant_id"], PARTNER);

    // A failure carries its hint; the checks it stopped are there, skipped.
    let mut cmd = world.cmd();
    cmd.env("ACRONIS_CLIENT_SECRET", "wrong")
        .args(["doctor", "--json"]);
    let out = outcome(cmd);
    assert_eq!(out.code, 2);
    let report: Value = serde_json::from_str(&out.stdout).expect("one JSON document");
    assert_eq!(report["ok"], false);
    let checks = report["checks"].as_array().unwrap();
    let credentials = checks.iter().find(|c| c["check"] == "credentials").unwrap();
    assert_eq!(credentials["status"], "fail");
    assert!(
        credentials["hint"]
            .as_str()
            .unwrap()
            .contains("ACRONIS_CLIENT_SECRET")
    );
    let last = checks.last().unwrap();
    assert_eq!(
        (last["check"].as_str(), last["status"].as_str()),
        (Some("client_tenant"), Some("skipped"))
    );
}

/// `run` with ACRONIS_BASE_URL set to `url`: refused at once, naming the variable.
fn run_refused(url: &str) -> (Outcome, World) {
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let mut cmd = world.run(&job);
    cmd.env("ACRONIS_BASE_URL", url);
    let out = outcome(cmd);
    assert!(out.took < QUICK, "{url}: took {:?}", out.took);
    assert_eq!(out.code, 2, "{url}: {}", out.stderr);
    assert!(
        out.stderr.contains("check ACRONIS_BASE_URL"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("management console"), "{}", out.stderr);
    assert!(!world.out().exists(), "{url}: an output folder appeared");
    (out, world)
}

#[test]
fn run_says_what_to_fix_at_once_for_the_three_network_mistakes() {
    let (out, _) = run_refused("https://something.invalid");
    assert!(
        out.stderr.contains("something.invalid does not resolve"),
        "{}",
        out.stderr
    );

    let (out, _) = run_refused("eu2-cloud.acronis.com");
    assert!(
        out.stderr
            .contains("has no scheme; write https://eu2-cloud.acronis.com"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("relative URL"), "{}", out.stderr);

    // The world's own sandbox speaks plain HTTP: https:// against it.
    let world = World::quick();
    let job = world.job(&job_text(&[(ACME, "acme")], ""));
    let http = world.sandbox().base_url();
    let mut cmd = world.run(&job);
    cmd.env("ACRONIS_BASE_URL", http.replacen("http://", "https://", 1));
    let out = outcome(cmd);
    assert!(out.took < QUICK, "took {:?}", out.took);
    assert_eq!(out.code, 2, "{}", out.stderr);
    for words in [
        "does not speak TLS",
        &format!("write {http}"),
        "check ACRONIS_BASE_URL",
    ] {
        assert!(out.stderr.contains(words), "{words} not in: {}", out.stderr);
    }
    assert!(
        !out.stderr
            .contains("received corrupt message of type InvalidContentType;"),
        "{}",
        out.stderr
    );
    // Tried once: no retry storm against the port.
    assert_eq!(world.stats().connections, 1);
    assert_eq!(world.stats().token_requests, 0);
}
