use super::*;
use crate::results::FileResult;
use crate::results::fixtures::contract_run;
use sha2::{Digest, Sha256};

fn tenant(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

/// Report `i` of the plan: one file whose content names it.
fn report(i: usize) -> ReportResult {
    let mut report = contract_run().reports.get(0).unwrap();
    report.tenant_id = tenant(i);
    report.tenant_name = format!("t{i}");
    report.plan_index = i;
    let path = format!("2026-10/t{i}/usage_summary.csv_v2_0.csv");
    let content = format!("{path}\n");
    report.files = vec![FileResult {
        path,
        bytes: content.len() as u64,
        sha256: hex::encode(Sha256::digest(content.as_bytes())),
        ..report.files[0].clone()
    }];
    report
}

/// Writes a shard folder as `run` would, holding `reports`.
fn write_shard(
    dir: &Path,
    index: u32,
    total: u32,
    plan_reports: usize,
    reports: Vec<ReportResult>,
    change: impl FnOnce(&mut RunResult),
) {
    for report in &reports {
        let path = dir.join(&report.files[0].path);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, format!("{}\n", report.files[0].path)).unwrap();
    }
    let mut result = RunResult {
        reports: ReportLog::of(reports).unwrap(),
        shard: Some(ShardInfo {
            index,
            total,
            plan_reports,
        }),
        started_at: format!("2026-11-01T06:0{index}:00Z").parse().unwrap(),
        finished_at: format!("2026-11-01T07:0{index}:00Z").parse().unwrap(),
        ..contract_run()
    };
    change(&mut result);
    output::write_outputs(dir, result).unwrap();
}

/// The reports 0..n split into `total` shards as `run --shard` splits them.
fn split(n: usize, total: u32) -> Vec<Vec<ReportResult>> {
    let reports: Vec<ReportResult> = (0..n).map(report).collect();
    let identities: Vec<Identity<'_>> = reports.iter().map(Identity::of_result).collect();
    let mut shards = vec![Vec::new(); total as usize];
    for (report, shard) in reports.iter().zip(shard::assign(&identities, total)) {
        shards[shard as usize - 1].push(report.clone());
    }
    shards
}

struct Setup {
    root: tempfile::TempDir,
    dirs: Vec<PathBuf>,
}

/// Shard folders of 10 reports in 3 shards; `change(index, result)` alters a shard's record.
fn setup(parts: Vec<Vec<ReportResult>>, mut change: impl FnMut(u32, &mut RunResult)) -> Setup {
    let root = tempfile::tempdir().unwrap();
    let total = parts.len() as u32;
    let plan_reports = parts
        .iter()
        .flatten()
        .map(|r| r.plan_index + 1)
        .max()
        .unwrap_or(0);
    let dirs = parts
        .into_iter()
        .enumerate()
        .map(|(i, reports)| {
            let index = i as u32 + 1;
            let dir = root.path().join(format!("shard-{index}"));
            write_shard(&dir, index, total, plan_reports, reports, |r| {
                change(index, r)
            });
            dir
        })
        .collect();
    Setup { root, dirs }
}

fn refusal(setup: &Setup) -> String {
    let out = setup.root.path().join("merged");
    match merge(&setup.dirs, &out) {
        Err(MergeError::Refused(message)) => {
            assert!(!out.exists(), "{message}");
            message
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn merges_a_consistent_split_in_plan_order() {
    let setup = setup(split(10, 3), |_, _| {});
    let out = setup.root.path().join("merged");
    let mut dirs = setup.dirs.clone();
    dirs.reverse();
    let merged = merge(&dirs, &out).unwrap();
    assert_eq!((merged.shards, merged.copied), (3, 10));
    let result = &merged.result;
    assert_eq!(result.shard, None);
    let order: Vec<usize> = result
        .reports
        .iter()
        .map(|r| r.unwrap().plan_index)
        .collect();
    assert_eq!(order, (0..10).collect::<Vec<_>>());
    assert_eq!(result.started_at, "2026-11-01T06:01:00Z".parse().unwrap());
    assert_eq!(result.finished_at, "2026-11-01T07:03:00Z".parse().unwrap());
    assert_eq!(
        fs::read_to_string(out.join(MANIFEST)).unwrap(),
        output::manifest::render(result)
    );
    assert!(verify::verify(&out).unwrap().is_clean());
}

#[test]
fn refuses_shards_of_different_runs() {
    for (what, needle) in [
        ("base_url", "different APIs"),
        ("as_of", "different days"),
        ("job", "different job files"),
        ("tool", "different versions"),
    ] {
        let setup = setup(split(10, 3), |index, result| {
            if index == 2 {
                match what {
                    "base_url" => result.base_url = "https://us5-cloud.acronis.com".into(),
                    "as_of" => result.as_of = jiff::civil::date(2026, 11, 2),
                    "job" => result.job.sha256 = "ef".repeat(32),
                    _ => result.tool.version = "9.9.9".into(),
                }
            }
        });
        let message = refusal(&setup);
        assert!(message.contains(needle), "{what}: {message}");
        assert!(message.contains("shard-2 (shard 2/3)"), "{what}: {message}");
    }
}

#[test]
fn sandboxes_on_different_ports_count_as_one_api() {
    let setup = setup(split(4, 2), |index, result| {
        result.base_url = format!("http://127.0.0.1:{}", 40000 + index);
    });
    let out = setup.root.path().join("merged");
    let merged = merge(&setup.dirs, &out).unwrap();
    assert_eq!(merged.result.base_url, "http://127.0.0.1:40001");
    assert!(is_loopback("http://localhost:8787"));
    assert!(is_loopback("http://[::1]:8787"));
    assert!(!is_loopback("https://eu2-cloud.acronis.com"));
}

#[test]
fn refuses_a_different_number_of_shards() {
    let mut parts = split(10, 3);
    parts.truncate(2);
    let setup = setup(parts, |index, result| {
        if index == 2 {
            result.shard.as_mut().unwrap().total = 4;
        }
    });
    assert!(refusal(&setup).contains("split differently"));
}

#[test]
fn refuses_a_report_in_two_shards() {
    let mut parts = split(10, 3);
    let extra = parts[0][0].clone();
    parts[1].push(extra.clone());
    let message = refusal(&setup(parts, |_, _| {}));
    assert!(message.contains("is in two shards"), "{message}");
    assert!(message.contains(&extra.tenant_id), "{message}");
}

#[test]
fn refuses_shards_that_are_not_one_plan() {
    // A report missing from its shard (the shards saw different tenant lists), in the middle
    // of the plan or at its end.
    for dropped in [4, 9] {
        let mut parts = split(10, 3);
        for part in &mut parts {
            part.retain(|r| r.plan_index != dropped);
        }
        let message = refusal(&setup(parts, |_, result| {
            result.shard.as_mut().unwrap().plan_reports = 10;
        }));
        assert!(
            message.contains(&format!("no shard holds plan position {dropped} ")),
            "{message}"
        );
    }

    // Shards of plans of different sizes.
    let message = refusal(&setup(split(10, 3), |index, result| {
        if index == 3 {
            result.shard.as_mut().unwrap().plan_reports = 11;
        }
    }));
    assert!(message.contains("ran different plans"), "{message}");

    // A report in a shard it does not belong to.
    let mut parts = split(10, 3);
    let moved = parts[0].pop().unwrap();
    parts[2].push(moved);
    parts[2].sort_by_key(|r| r.plan_index);
    let message = refusal(&setup(parts, |_, _| {}));
    assert!(message.contains("belongs to shard 1/3"), "{message}");

    // Two different reports at one plan position.
    let mut parts = split(10, 3);
    let position = parts[0][0].plan_index;
    parts[1][0].plan_index = position;
    let message = refusal(&setup(parts, |_, _| {}));
    assert!(
        message.contains(&format!("both hold plan position {position}")),
        "{message}"
    );
}

#[test]
fn lists_are_short_and_readable() {
    let items = |n: usize| (1..=n).map(|i| i.to_string()).collect::<Vec<_>>();
    assert_eq!(list(&items(1)), "1");
    assert_eq!(list(&items(3)), "1, 2 and 3");
    assert!(list(&items(25)).ends_with("19 and 20 (and 5 more)"));
}
