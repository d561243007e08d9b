//! Learning from last month: each report's generation time goes into its period's manifest; the
//! next month's run starts the slowest tenants first and aims each report's polls at its own
//! tenant's time, and says how its duration compared with what the trail led it to expect.

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use acronis_reports_sandbox::{Scenario, TenantBehaviour};

use crate::support::*;

const OCTOBER: &str = "2026-11-15";
const NOVEMBER: &str = "2026-12-02";

/// Tenants whose reports take 80, 160, 320 and 640 ms, listed quickest first.
const TENANTS: [(&str, &str, u64); 4] = [
    ("5ca1ab1e-0000-4000-8000-000000000001", "quick", 80),
    ("5ca1ab1e-0000-4000-8000-000000000002", "brisk", 160),
    ("5ca1ab1e-0000-4000-8000-000000000003", "steady", 320),
    ("5ca1ab1e-0000-4000-8000-000000000004", "slow", 640),
];

fn scenario(times: &[(&str, u64)]) -> Scenario {
    let mut scenario = quick_scenario();
    for (id, ms) in times {
        scenario.tenants.insert(
            (*id).to_owned(),
            TenantBehaviour {
                generation_delay: Some(Duration::from_millis(*ms)),
                ..Default::default()
            },
        );
    }
    scenario
}

fn world() -> World {
    World::new(scenario(
        &TENANTS
            .iter()
            .map(|(id, _, ms)| (*id, *ms))
            .collect::<Vec<_>>(),
    ))
}

/// One report at a time, so that the order reports start in is the order they are created.
fn one_at_a_time(world: &World) -> std::path::PathBuf {
    let tenants: Vec<(&str, &str)> = TENANTS.iter().map(|(id, name, _)| (*id, *name)).collect();
    world.job(&job_text(&tenants, "concurrency: 1\n"))
}

fn run(world: &World, job: &Path, out: &Path, as_of: &str) -> assert_cmd::Command {
    let mut cmd = world.cmd();
    cmd.arg("run")
        .arg(job)
        .arg("--out")
        .arg(out)
        .args(["--as-of", as_of]);
    cmd
}

/// Tenant names in the order this world's sandbox created their reports, from report `from` on.
fn created_order(world: &World, from: usize) -> Vec<String> {
    world.stats().reports[from..]
        .iter()
        .map(|r| {
            TENANTS
                .iter()
                .find(|(id, _, _)| *id == r.tenant_id)
                .map(|(_, name, _)| (*name).to_owned())
                .expect("a tenant of the job")
        })
        .collect()
}

fn polls(world: &World, from: usize) -> u64 {
    world.stats().reports[from..]
        .iter()
        .map(|r| r.stored_list_requests)
        .sum()
}

#[test]
fn next_month_starts_the_slowest_first_and_polls_less() {
    let world = world();
    let job = one_at_a_time(&world);
    let out = world.out();
    run(&world, &job, &out, OCTOBER).assert().success();
    assert_eq!(
        created_order(&world, 0),
        ["quick", "brisk", "steady", "slow"],
        "without history: the job's order"
    );
    let october = read_json(&out.join("2026-10/manifest.json"));
    for report in october["reports"].as_array().unwrap() {
        let timing = &report["timing"];
        let ready = timing["ready_after_ms"].as_u64().expect("timed");
        assert!(timing["polls"].as_u64().unwrap() >= 1, "{report}");
        assert!(timing.get("expected_ms").is_none(), "no history yet");
        let name = report["tenant_name"].as_str().unwrap();
        let truth = TENANTS.iter().find(|t| t.1 == name).unwrap().2;
        // The client's clock starts when the answer to the create arrives, just after the
        // server's.
        assert!(
            ready + 5 >= truth,
            "{name}: saved after {ready} ms, generated in {truth}"
        );
    }
    assert!(
        !read(&out.join("summary.md")).contains("## Duration"),
        "nothing to expect from without history"
    );
    let first_month_polls = polls(&world, 0);

    run(&world, &job, &out, NOVEMBER).assert().success();
    assert_eq!(
        created_order(&world, 4),
        ["slow", "steady", "brisk", "quick"],
        "longest first"
    );
    let second_month_polls = polls(&world, 4);
    assert!(
        second_month_polls < first_month_polls,
        "aimed polls: {second_month_polls} in November against {first_month_polls} in October"
    );
    // The results and outputs keep the plan's order, whatever order the reports ran in.
    let root = manifest(&out);
    let names: Vec<&str> = root["reports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["tenant_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["quick", "brisk", "steady", "slow"]);
    for report in root["reports"].as_array().unwrap() {
        assert!(
            report["timing"]["expected_ms"].as_u64().is_some(),
            "{report}"
        );
    }
    let summary = read(&out.join("summary.md"));
    assert!(summary.contains("## Duration"), "{summary}");
    assert!(
        summary.contains("recorded in 2026-10 led to expect"),
        "{summary}"
    );
    verify_clean(&world, &out);
}

#[test]
fn a_tenant_much_slower_than_its_history_still_completes() {
    let world = world();
    let job = one_at_a_time(&world);
    let out = world.out();
    run(&world, &job, &out, "2026-10-02").assert().success();

    // In October the quick tenant takes ten times as long.
    let mut times: Vec<(&str, u64)> = TENANTS.iter().map(|(id, _, ms)| (*id, *ms)).collect();
    times[0].1 = 800;
    let slower = World::new(scenario(&times));
    run(&slower, &job, &out, "2026-11-02").assert().success();
    let october = read_json(&out.join("2026-10/manifest.json"));
    for report in october["reports"].as_array().unwrap() {
        if report["tenant_name"] == "quick" {
            assert_eq!(report["status"], "ok");
            assert_eq!(report["timing"]["changed"], "slower", "{report}");
            assert!(report["timing"]["ready_after_ms"].as_u64().unwrap() >= 790);
        } else {
            assert!(report["timing"].get("changed").is_none(), "{report}");
        }
    }
    let summary = read(&out.join("summary.md"));
    assert!(
        summary.contains("much slower than its history"),
        "{summary}"
    );
    assert!(summary.contains("| quick (`"), "{summary}");

    // November knows the new time: the once quick tenant now starts first.
    let november = World::new(scenario(&times));
    run(&november, &job, &out, NOVEMBER).assert().success();
    let first = november
        .stats()
        .reports
        .first()
        .map(|r| r.tenant_id.clone());
    assert_eq!(first.as_deref(), Some(TENANTS[0].0), "its new time leads");
}

#[test]
fn history_can_come_from_another_folder() {
    let world = world();
    let job = one_at_a_time(&world);
    let earlier = world.path("earlier");
    run(&world, &job, &earlier, OCTOBER).assert().success();

    let fresh = world.path("fresh");
    run(&world, &job, &fresh, NOVEMBER)
        .arg("--history")
        .arg(&earlier)
        .assert()
        .success();
    assert_eq!(created_order(&world, 4)[0], "slow");
    let summary = read(&fresh.join("summary.md"));
    assert!(
        summary.contains("recorded in 2026-10 led to expect"),
        "{summary}"
    );
    assert!(
        !fresh.join("2026-10").exists(),
        "history is read, never copied"
    );

    // --no-history: the job's order again, even with a trail in the output folder.
    run(&world, &job, &earlier, NOVEMBER)
        .arg("--no-history")
        .assert()
        .success();
    assert_eq!(
        created_order(&world, 8),
        ["quick", "brisk", "steady", "slow"]
    );

    let missing = run(&world, &job, &fresh, NOVEMBER)
        .arg("--history")
        .arg(world.path("nowhere"))
        .assert()
        .code(2)
        .get_output()
        .clone();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        stderr.contains("--history") && stderr.contains("not a folder"),
        "{stderr}"
    );
}

#[test]
fn a_damaged_history_is_a_warning_never_a_failed_run() {
    let world = world();
    let job = one_at_a_time(&world);
    let history = world.path("history");
    let period = |label: &str, text: &str| {
        std::fs::create_dir_all(history.join(label)).unwrap();
        std::fs::write(history.join(label).join("manifest.json"), text).unwrap();
    };
    let (quick, slow) = (TENANTS[0].0, TENANTS[3].0);
    let report = |tenant: &str, timing: &str| {
        format!(
            r#"{{"tenant_id": "{tenant}", "kind": "usage_summary", "level": "direct_partners", "timing": {timing}}}"#
        )
    };
    period("2026-10", "{ this is not JSON");
    period(
        "2026-09",
        &format!(
            r#"{{"reports": [{}, {}, {}, {}, {}, {{"tenant_id": 7}}, "a string"]}}"#,
            report(quick, r#"{"ready_after_ms": -300, "polls": 2}"#),
            report(quick, r#"{"ready_after_ms": 1e308, "pending_at_ms": 5}"#),
            report(quick, r#"{"ready_after_ms": "soon"}"#),
            report(slow, r#"{"pending_at_ms": 100}"#),
            report(slow, r#"[1, 2]"#),
        ),
    );
    period("2026-08", r#"{"reports": {"not": "a list"}}"#);
    let assert = run(&world, &job, &world.out(), NOVEMBER)
        .arg("--history")
        .arg(&history)
        .assert()
        .success();
    let stderr = String::from_utf8_lossy(&assert.get_output().stderr).into_owned();
    assert!(stderr.contains("is not JSON"), "{stderr}");
    assert!(stderr.contains("timing that does not read"), "{stderr}");
    assert_eq!(
        created_order(&world, 0),
        ["quick", "brisk", "steady", "slow"],
        "nothing usable: the job's order"
    );
    assert!(!read(&world.out().join("summary.md")).contains("## Duration"));
}

#[test]
fn shards_keep_their_reports_whatever_the_history() {
    let world = world();
    let job = one_at_a_time(&world);
    let out = world.out();
    run(&world, &job, &out, OCTOBER).assert().success();
    let tenants_of = |dir: &Path| -> BTreeSet<String> {
        manifest(dir)["reports"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["tenant_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut all = BTreeSet::new();
    for shard in ["1/2", "2/2"] {
        let name = shard.replace('/', "-");
        let with = world.path(&format!("with-{name}"));
        let without = world.path(&format!("without-{name}"));
        run(&world, &job, &with, NOVEMBER)
            .args(["--shard", shard, "--history"])
            .arg(&out)
            .assert()
            .success();
        assert!(
            read(&with.join("summary.md")).contains("## Duration"),
            "the shard used the history"
        );
        run(&world, &job, &without, NOVEMBER)
            .args(["--shard", shard, "--no-history"])
            .assert()
            .success();
        assert_eq!(tenants_of(&with), tenants_of(&without), "shard {shard}");
        all.extend(tenants_of(&with));
    }
    assert_eq!(all.len(), TENANTS.len(), "the shards cover the job");
}

fn verify_clean(world: &World, out: &Path) {
    world.cmd().arg("verify").arg(out).assert().success();
}

/// A report's time counts from when its create request was sent: an answer that arrives late,
/// while the report already generates, never makes the report look faster than it was (the next
/// month would then take it for a tenant that got faster).
#[test]
fn a_late_answer_to_a_create_never_shortens_a_reports_recorded_time() {
    let (id, name, _) = TENANTS[0];
    let mut scenario = scenario(&[(id, 100)]);
    scenario.create_answer_delay = Duration::from_millis(400);
    let world = World::new(scenario);
    let job = world.job(&job_text(&[(id, name)], "concurrency: 1\n"));
    let out = world.out();
    run(&world, &job, &out, "2026-11-02").assert().success();
    let october = read_json(&out.join("2026-10/manifest.json"));
    let timing = &october["reports"][0]["timing"];
    let ready_after = timing["ready_after_ms"].as_u64().expect("a recorded time");
    assert!(
        ready_after >= 400,
        "generated in 100 ms, answered after 400: recorded {ready_after} ms ({timing})"
    );
}
