//! Sharded runs (`run --shard I/N`, GitLab's `CI_NODE_INDEX`/`CI_NODE_TOTAL`) and `merge`: the
//! merged folder equals an unsharded run of the same job, and shards that do not belong
//! together are refused without writing anything.

use std::path::{Path, PathBuf};
use std::time::Duration;

use acronis_reports_sandbox::{Scenario, TenantBehaviour};
use assert_cmd::Command;
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::support::*;

/// `count` tenants with UUIDs derived from their number, named `tenant-001`, ….
fn tenants(count: usize) -> Vec<(String, String)> {
    (1..=count)
        .map(|i| {
            let h = hex::encode(Sha256::digest(format!("shard-merge tenant {i}")));
            let id = format!(
                "{}-{}-4{}-8{}-{}",
                &h[0..8],
                &h[8..12],
                &h[13..16],
                &h[17..20],
                &h[20..32]
            );
            (id, format!("tenant-{i:03}"))
        })
        .collect()
}

fn job_for(tenants: &[(String, String)], extra: &str) -> String {
    let pairs: Vec<(&str, &str)> = tenants
        .iter()
        .map(|(id, name)| (id.as_str(), name.as_str()))
        .collect();
    job_text(&pairs, extra)
}

/// The binary pointed at `server`, working in `dir`.
fn cmd(server: &Served, dir: &Path) -> Command {
    let mut cmd = bare_cmd();
    cmd.current_dir(dir).envs(server.credentials());
    cmd
}

fn quick_deterministic() -> Scenario {
    Scenario {
        generation_delay: Duration::from_millis(50),
        deterministic_ids: true,
        ..Scenario::default()
    }
}

/// A text without the lines that contain any of `needles`.
fn without_lines(text: &str, needles: &[&str]) -> String {
    text.lines()
        .filter(|line| !needles.iter().any(|n| line.contains(n)))
        .map(|line| format!("{line}\n"))
        .collect()
}

/// The report files and run files of a folder, without the resume state.
fn visible_tree(dir: &Path) -> Vec<String> {
    tree(dir)
        .into_iter()
        .filter(|p| !p.starts_with('.'))
        .collect()
}

#[test]
fn seven_shards_merge_into_exactly_the_unsharded_output() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = scratch.path();
    let tenants = tenants(300);
    std::fs::write(dir.join("job.yml"), job_for(&tenants, "concurrency: 50\n")).unwrap();

    // The whole job against one sandbox …
    let first = Served::on_port(quick_deterministic(), 0);
    let port = first.sandbox().local_addr().port();
    cmd(&first, dir)
        .args(["run", "job.yml", "--out", "full", "--as-of", AS_OF])
        .assert()
        .success();
    let first_stats = first.stop();
    assert_eq!(first_stats.create_requests, 300);

    // … and as 7 shards, run side by side like a CI matrix, against a second instance (same
    // scenario, same port) that has seen none of the first run's requests.
    let second = Served::on_port(quick_deterministic(), port);
    std::thread::scope(|scope| {
        let runs: Vec<_> = (1..=7)
            .map(|i| {
                let mut cmd = cmd(&second, dir);
                cmd.args(["run", "job.yml", "--as-of", AS_OF])
                    .args(["--out", &format!("shard-{i}")])
                    .args(["--shard", &format!("{i}/7")]);
                scope.spawn(move || cmd.assert().success())
            })
            .collect();
        for run in runs {
            run.join().expect("shard run");
        }
    });
    let second_stats = second.stop();
    assert_eq!(
        second_stats.create_requests, 300,
        "each report created once"
    );

    let mut sizes = Vec::new();
    for i in 1..=7 {
        let shard = dir.join(format!("shard-{i}"));
        let manifest = manifest(&shard);
        assert_eq!(
            manifest["shard"],
            serde_json::json!({"index": i, "total": 7, "plan_reports": 300})
        );
        let count = manifest["reports"].as_array().unwrap().len();
        sizes.push(count);
        assert_eq!(check_sums(&shard), 2 * count);
        let summary = read(&shard.join("summary.md"));
        assert!(summary.contains(&format!("shard {i} of 7")), "{summary}");
    }
    assert_eq!(sizes.iter().sum::<usize>(), 300);
    assert!(
        sizes.iter().all(|&n| n == 42 || n == 43),
        "balanced: {sizes:?}"
    );

    // Merge, giving the shards in no particular order.
    let mut merge = bare_cmd();
    merge.current_dir(dir).arg("merge");
    for i in [4, 1, 7, 2, 6, 3, 5] {
        merge.arg(format!("shard-{i}"));
    }
    let stdout = merge
        .args(["--out", "merged"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let stdout = String::from_utf8_lossy(&stdout);
    assert!(
        stdout.contains("merged 7 shard(s): 300 of 300 report(s) ok, 600 file(s)"),
        "{stdout}"
    );

    let (full, merged) = (dir.join("full"), dir.join("merged"));
    assert_eq!(
        file_sums(&full),
        file_sums(&merged),
        "the files of SHA256SUMS"
    );
    assert_eq!(check_sums(&merged), 600);
    // The run's times, and how long each report took to generate: the run's own measurements.
    let times = [
        "\"started_at\":",
        "\"finished_at\":",
        "\"ready_after_ms\":",
        "\"pending_at_ms\":",
        "\"polls\":",
    ];
    let (full_manifest, merged_manifest) = (
        read(&full.join("manifest.json")),
        read(&merged.join("manifest.json")),
    );
    assert_eq!(
        without_lines(&full_manifest, &times),
        without_lines(&merged_manifest, &times),
        "manifest.json apart from the times"
    );
    for record in ["2026-10/manifest.json", "2026-10/billing.csv"] {
        assert_eq!(
            without_lines(&read(&full.join(record)), &times),
            without_lines(&read(&merged.join(record)), &times),
            "{record} apart from the times"
        );
    }
    let merged_value: Value = serde_json::from_str(&merged_manifest).unwrap();
    assert!(merged_value.get("shard").is_none());
    // Earliest start and latest end of the shards.
    let shard_times: Vec<Value> = (1..=7)
        .map(|i| manifest(&dir.join(format!("shard-{i}"))))
        .collect();
    let earliest = shard_times
        .iter()
        .map(|m| {
            m["started_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap()
        })
        .min()
        .unwrap();
    let latest = shard_times
        .iter()
        .map(|m| {
            m["finished_at"]
                .as_str()
                .unwrap()
                .parse::<jiff::Timestamp>()
                .unwrap()
        })
        .max()
        .unwrap();
    let at = |key: &str| {
        merged_value[key]
            .as_str()
            .unwrap()
            .parse::<jiff::Timestamp>()
            .unwrap()
    };
    assert_eq!((at("started_at"), at("finished_at")), (earliest, latest));
    // Reports in plan order.
    let positions: Vec<u64> = merged_value["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["plan_index"].as_u64().unwrap())
        .collect();
    assert_eq!(positions, (0..300).collect::<Vec<u64>>());

    // summary.md: only the line with the run's times differs.
    assert_eq!(
        without_lines(&read(&full.join("summary.md")), &["Run from "]),
        without_lines(&read(&merged.join("summary.md")), &["Run from "]),
        "summary.md apart from the times"
    );
    assert_eq!(visible_tree(&full), visible_tree(&merged));

    // The files are copies: editing a shard's file afterwards leaves the merged folder as sealed.
    assert!(stdout.contains("600 file(s) copied into"), "{stdout}");
    {
        let shard_1 = manifest(&dir.join("shard-1"));
        let path = shard_1["reports"][0]["files"][0]["path"].as_str().unwrap();
        let in_shard = dir.join("shard-1").join(path);
        let mut file = std::fs::OpenOptions::new()
            .append(true)
            .open(&in_shard)
            .unwrap();
        std::io::Write::write_all(&mut file, b"edited later\n").unwrap();
    }
    bare_cmd().arg("verify").arg(&merged).assert().success();
}

#[test]
fn gitlab_node_variables_choose_the_shard() {
    let world = World::quick();
    let tenants = tenants(5);
    let job = world.job(&job_for(&tenants, ""));
    let run = |out: &str| {
        let mut cmd = world.cmd();
        cmd.arg("run")
            .arg(&job)
            .args(["--as-of", AS_OF, "--out"])
            .arg(world.path(out));
        cmd
    };
    let ids = |out: &str| -> Vec<String> {
        manifest(&world.path(out))["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tenant_id"].as_str().unwrap().to_owned())
            .collect()
    };

    run("flag").args(["--shard", "2/3"]).assert().success();
    run("env")
        .env("CI_NODE_INDEX", "2")
        .env("CI_NODE_TOTAL", "3")
        .assert()
        .success();
    assert_eq!(
        manifest(&world.path("env"))["shard"],
        serde_json::json!({"index": 2, "total": 3, "plan_reports": 5})
    );
    assert_eq!(ids("env"), ids("flag"));
    assert!(!ids("env").is_empty() && ids("env").len() < 5);

    // The flag wins over the variables; --no-shard ignores them; one variable alone is no shard
    // (GitLab sets CI_NODE_TOTAL=1 in every job).
    run("flag-wins")
        .env("CI_NODE_INDEX", "1")
        .env("CI_NODE_TOTAL", "3")
        .args(["--shard", "2/3"])
        .assert()
        .success();
    assert_eq!(ids("flag-wins"), ids("flag"));
    for (out, index) in [("no-shard", Some("2")), ("total-only", None)] {
        let mut cmd = run(out);
        cmd.env("CI_NODE_TOTAL", "3");
        if let Some(index) = index {
            cmd.env("CI_NODE_INDEX", index).arg("--no-shard");
        }
        cmd.assert().success();
        let manifest = manifest(&world.path(out));
        assert!(manifest.get("shard").is_none(), "{out}");
        assert_eq!(manifest["reports"].as_array().unwrap().len(), 5, "{out}");
    }

    // Bad values stop the run before anything happens, naming the variable.
    for (index, total, needle) in [
        ("4", "3", "CI_NODE_INDEX=4 with CI_NODE_TOTAL=3"),
        ("0", "3", "numbered from 1"),
        ("1", "many", "CI_NODE_TOTAL=`many`"),
        ("x", "3", "CI_NODE_INDEX=`x`"),
    ] {
        let assert = run("bad")
            .env("CI_NODE_INDEX", index)
            .env("CI_NODE_TOTAL", total)
            .assert()
            .code(2);
        let stderr = stderr_of(&assert);
        assert!(stderr.contains(needle), "{index}/{total}: {stderr}");
        assert!(!world.path("bad").exists());
    }
    for (value, needle) in [
        ("0/3", "numbered from 1"),
        ("4/3", "no shard 4 of 3"),
        ("3", "I/N"),
        ("1/0", "at least 1 shard"),
    ] {
        let assert = run("bad").args(["--shard", value]).assert().code(2);
        let stderr = stderr_of(&assert);
        assert!(
            stderr.contains("--shard") && stderr.contains(needle),
            "{value}: {stderr}"
        );
    }
    assert!(!world.path("bad").exists());
    // Nothing was created for the refused runs.
    assert_eq!(
        world.stats().create_requests as usize,
        3 * ids("flag").len() + 2 * 5
    );
}

/// Copies a folder with everything in it (a shard folder downloaded twice, say).
fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

#[test]
fn merge_refuses_shards_that_do_not_belong_together() {
    let tenants = tenants(6);
    // One tenant's report fails: a shard holding it exits 1, and so does the merge.
    let failing = tenants[0].0.clone();
    let mut scenario = quick_scenario();
    scenario.tenants.insert(
        failing.clone(),
        TenantBehaviour {
            fail: true,
            ..TenantBehaviour::default()
        },
    );
    let world = World::new(scenario);
    let job = world.job(&job_for(&tenants, ""));
    let other_job = world.path("other.yml");
    std::fs::write(&other_job, job_for(&tenants[1..], "")).unwrap();
    let shard = |job: &Path, i: u32, out: &str| -> PathBuf {
        let out = world.path(out);
        let code = world
            .cmd()
            .arg("run")
            .arg(job)
            .args(["--as-of", AS_OF, "--shard", &format!("{i}/3"), "--out"])
            .arg(&out)
            .output()
            .unwrap()
            .status
            .code();
        assert!(matches!(code, Some(0 | 1)), "{code:?}");
        out
    };
    let s1 = shard(&job, 1, "s1");
    let s2 = shard(&job, 2, "s2");
    let s3 = shard(&job, 3, "s3");
    let other_2 = shard(&other_job, 2, "other-2");
    let twin_2 = world.path("s2-again");
    copy_dir(&s2, &twin_2);
    let tampered_1 = world.path("s1-tampered");
    copy_dir(&s1, &tampered_1);
    let victim = manifest(&tampered_1)["reports"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r["files"].as_array().unwrap().clone())
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .next();
    match &victim {
        Some(path) => std::fs::write(tampered_1.join(path), "not the report\n").unwrap(),
        // Shard 1 holds only the failing report: tamper with its checksums instead.
        None => std::fs::write(tampered_1.join("SHA256SUMS"), "bad\n").unwrap(),
    }
    let whole = world.path("whole");
    let _ = world
        .cmd()
        .arg("run")
        .arg(&job)
        .args(["--as-of", AS_OF, "--out"])
        .arg(&whole)
        .output()
        .unwrap();

    let merge = |shards: &[&Path], out: &Path| {
        let mut cmd = world.cmd();
        cmd.arg("merge").args(shards).arg("--out").arg(out);
        cmd
    };
    let out = world.path("merged");
    let nowhere = world.path("nowhere");
    let refusals: Vec<(Vec<&Path>, &str)> = vec![
        (vec![&s1, &s2, &twin_2, &s3], "shard 2/3 is given twice"),
        (vec![&s1, &s3], "shard 2/3 missing"),
        (
            vec![&s3, &s1],
            "shard 2/3 missing: merge needs the folders of all 3 shards",
        ),
        (vec![&s1, &other_2, &s3], "different job files"),
        (vec![&tampered_1, &s2, &s3], "does not verify"),
        (
            vec![&s1, &s2, &s3, &whole],
            "is not the output of a sharded run",
        ),
        (vec![&s1, &nowhere, &s3], "nowhere"),
    ];
    for (shards, needle) in &refusals {
        let assert = merge(shards, &out).assert().code(2);
        let stderr = stderr_of(&assert);
        assert!(stderr.contains(needle), "{needle}: {stderr}");
        assert!(stderr.contains("nothing was written"), "{stderr}");
        assert!(!out.exists(), "{needle}: wrote {:?}", tree(&out));
    }
    let stderr = stderr_of(&merge(&[&tampered_1, &s2, &s3], &out).assert().code(2));
    if let Some(path) = &victim {
        assert!(stderr.contains(&format!("changed: {path}")), "{stderr}");
    }

    // --out must be new or empty, and outside the shards.
    let busy = world.path("busy");
    std::fs::create_dir_all(&busy).unwrap();
    std::fs::write(busy.join("keep.txt"), "mine").unwrap();
    let stderr = stderr_of(&merge(&[&s1, &s2, &s3], &busy).assert().code(2));
    assert!(stderr.contains("is not empty"), "{stderr}");
    assert_eq!(tree(&busy), ["keep.txt"]);
    let inside = s1.join("merged");
    let stderr = stderr_of(&merge(&[&s1, &s2, &s3], &inside).assert().code(2));
    assert!(stderr.contains("inside the shard folder"), "{stderr}");
    assert!(!inside.exists());

    // The real thing: the failed report is carried over, so the merge exits 1 like the run.
    let empty = world.path("empty");
    std::fs::create_dir_all(&empty).unwrap();
    merge(&[&s3, &s2, &s1], &empty).assert().code(1);
    let merged = manifest(&empty);
    let reports = merged["reports"].as_array().unwrap();
    assert_eq!(reports.len(), 6);
    let failed: Vec<&Value> = reports.iter().filter(|r| r["status"] == "failed").collect();
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["tenant_id"], failing.as_str());
    world.cmd().arg("verify").arg(&empty).assert().success();
    assert_eq!(file_sums(&empty), file_sums(&whole));

    let help = world.cmd().args(["merge", "--help"]).assert().success();
    let help = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
    assert!(
        help.contains("SHARD_DIR") && help.contains("--out") && help.contains("copied into"),
        "{help}"
    );
}
