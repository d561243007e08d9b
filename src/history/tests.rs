use super::*;

const MIN_STEP: Duration = Duration::from_millis(50);

fn bracket(low: f64, high: f64) -> Sample {
    Sample {
        low: Some(low),
        high,
        changed: None,
    }
}

fn bound(high: f64) -> Sample {
    Sample {
        low: None,
        high,
        changed: None,
    }
}

fn changed(mut sample: Sample, how: Changed) -> Sample {
    sample.changed = Some(how);
    sample
}

fn secs(d: Duration) -> f64 {
    d.as_secs_f64()
}

/// Every poll of a report that is never saved, until the schedule gives up on its history.
fn polls(expected: &Expected) -> Vec<f64> {
    let mut at = vec![secs(expected.first_poll(MIN_STEP))];
    while let Some(next) = expected.next_poll(seconds(*at.last().unwrap()), MIN_STEP) {
        assert!(next > seconds(*at.last().unwrap()), "polls move forward");
        at.push(secs(next));
        assert!(at.len() < 200, "the schedule ends: {at:?}");
    }
    at
}

#[test]
fn the_median_of_three_months_ignores_one_odd_month() {
    let e = Expected::of(&[bracket(9.9, 10.1), bracket(29.9, 30.1), bracket(10.9, 11.1)]).unwrap();
    assert!((e.seconds - 11.0).abs() < 1e-9, "{e:?}");
    assert!(e.bounded);
}

#[test]
fn a_precise_history_is_polled_just_before_and_tightly_around_its_time() {
    let e = Expected::of(&[bracket(9.95, 10.05), bracket(9.9, 10.0)]).unwrap();
    let at = polls(&e);
    let first = at[0];
    assert!(first < 9.9 && first > 9.2, "just before: {at:?}");
    // Through the window, gaps of a few percent of the time: the lag stays that small.
    let in_window: Vec<f64> = at
        .windows(2)
        .filter(|w| w[0] < 10.5)
        .map(|w| w[1] - w[0])
        .collect();
    assert!(in_window.iter().all(|gap| *gap <= 0.35), "{at:?}");
    // A report saved at 10 s is seen within three polls.
    assert!(at.iter().position(|t| *t >= 10.0).unwrap() <= 3, "{at:?}");
    // Then sparser, and given up at twice the time.
    assert!(
        *at.last().unwrap() >= 20.0 && *at.last().unwrap() < 24.0,
        "{at:?}"
    );
    let late: Vec<f64> = at.windows(2).map(|w| (w[1] - w[0]) / w[0]).collect();
    assert!(late.iter().all(|share| *share <= 0.1 + 1e-9), "{late:?}");
}

#[test]
fn a_wide_bracket_opens_a_wide_window_with_a_bounded_share_of_lag() {
    // A first month that polled sparsely: somewhere between 1.25 s and 3.5 s.
    let e = Expected::of(&[bracket(1.25, 3.5)]).unwrap();
    let at = polls(&e);
    assert!(
        at[0] <= 1.25,
        "the window opens where it was last seen pending: {at:?}"
    );
    let gaps: Vec<f64> = at.windows(2).map(|w| (w[1] - w[0]) / w[0]).collect();
    assert!(gaps.iter().all(|share| *share <= 0.1 + 1e-9), "{gaps:?}");
    let to_saved = at.iter().position(|t| *t >= 3.5).unwrap();
    assert!(to_saved <= 16, "{at:?}");
}

#[test]
fn precise_months_outrank_rough_ones_and_brackets_outrank_bounds() {
    // A rough first month (3.5 s, polled sparsely) is outvoted by one precise month.
    let e = Expected::of(&[bracket(1.28, 1.32), bracket(1.25, 3.5)]).unwrap();
    assert!((e.seconds - 1.3).abs() < 1e-9, "{e:?}");
    assert!(e.from > 1.2, "the window is the precise month's: {e:?}");
    // An upper bound (saved at a first poll) is outvoted by any bracket.
    let e = Expected::of(&[bracket(0.36, 0.41), bound(0.5)]).unwrap();
    assert!((e.seconds - 0.385).abs() < 1e-9, "{e:?}");
    assert!(e.bounded);
}

#[test]
fn a_history_of_upper_bounds_only_opens_its_window_well_before_them() {
    let e = Expected::of(&[bound(0.5)]).unwrap();
    assert!(!e.bounded);
    assert!((secs(e.first_poll(MIN_STEP)) - 0.3).abs() < 1e-9, "{e:?}");
    // Saved at that first poll says nothing new: the history said it could be that quick.
    assert!(!e.saved_early(Duration::from_millis(300)));
}

#[test]
fn a_detected_change_starts_the_history_anew() {
    // Slower: the run that found it measured the new time; the months before describe the old.
    let e = Expected::of(&[
        bracket(5.0, 5.1),
        changed(bracket(4.9, 5.2), Changed::Slower),
        bracket(0.99, 1.01),
    ])
    .unwrap();
    assert!(e.seconds > 4.9, "{e:?}");
    let e = Expected::of(&[
        changed(bracket(4.0, 6.0), Changed::Slower),
        bracket(0.99, 1.01),
        bracket(0.99, 1.01),
    ])
    .unwrap();
    assert!((e.seconds - 5.0).abs() < 1e-9, "{e:?}");
    // Faster: only an upper bound is known, so the tenant is one without history until it is
    // measured again; then only the new measurements count.
    let faster = changed(bound(0.9), Changed::Faster);
    assert_eq!(Expected::of(&[faster, bracket(0.99, 1.01)]), None);
    let e = Expected::of(&[bracket(0.49, 0.51), faster, bracket(0.99, 1.01)]).unwrap();
    assert!((e.seconds - 0.5).abs() < 1e-9, "{e:?}");
}

#[test]
fn saved_at_a_first_poll_before_a_precise_history_is_faster() {
    let e = Expected::of(&[bracket(9.95, 10.05)]).unwrap();
    assert!(e.saved_early(e.first_poll(MIN_STEP)));
    assert!(!e.saved_early(Duration::from_secs(11)));
}

#[test]
fn nothing_a_record_holds_can_make_a_duration_panic() {
    for value in [f64::NAN, f64::INFINITY, -1.0, 1e300] {
        let e = Expected::new(value, value, value, true);
        let _ = e.first_poll(MIN_STEP);
        let _ = e.next_poll(Duration::from_secs(1), MIN_STEP);
        let _ = e.time();
    }
}

fn expected(seconds: f64) -> Option<Expected> {
    Expected::of(&[bracket(seconds * 0.99, seconds * 1.01)])
}

#[test]
fn the_slowest_start_first_and_unknown_tenants_at_the_median() {
    let plan = [
        expected(1.0),
        None,
        expected(9.0),
        expected(3.0),
        None,
        expected(0.5),
        expected(3.0),
    ];
    // Known: 0.5, 1, 3, 3, 9 → the unknown ones count as 3 and keep their plan order among
    // the equal times.
    assert_eq!(start_order(&plan), [2, 1, 3, 4, 6, 0, 5]);
}

#[test]
fn without_history_the_order_is_the_plans() {
    assert_eq!(start_order(&[None, None, None]), [0, 1, 2]);
    assert!(start_order(&[]).is_empty());
    assert_eq!(filled(&[None, None]), None);
}

#[test]
fn makespan_is_greedy_list_scheduling() {
    assert_eq!(makespan(&[], 4), 0.0);
    assert_eq!(makespan(&[9.0, 3.0, 3.0, 2.0, 1.0], 2), 9.0);
    assert_eq!(makespan(&[3.0, 3.0, 2.0, 2.0, 2.0], 2), 7.0);
    assert_eq!(makespan(&[1.0, 1.0, 1.0], 0), 3.0, "one slot at least");
}

fn write_period(dir: &Path, label: &str, manifest: &str) {
    let folder = dir.join(label);
    fs::create_dir_all(&folder).unwrap();
    fs::write(folder.join("manifest.json"), manifest).unwrap();
}

fn request(tenant: &str) -> ReportRequest {
    let job = crate::job::parse(
        Path::new("job.yml"),
        format!("version: 1\ntenants:\n  - id: {tenant}\n").as_bytes(),
        "2026-12-02".parse().unwrap(),
    )
    .unwrap();
    crate::plan::build(&job).reports.remove(0)
}

const A: &str = "ede9f834-70b3-476c-83d9-736f9f8c7dae";
const B: &str = "0b5e2a3c-1f0e-4c52-9d53-2a1c7b0e9a11";

fn report(tenant: &str, timing: &str) -> String {
    format!(
        r#"{{"tenant_id": "{tenant}", "kind": "usage_summary", "level": "direct_partners", "timing": {timing}}}"#
    )
}

#[test]
fn reads_the_latest_periods_and_leaves_out_what_does_not_read() {
    let dir = tempfile::tempdir().unwrap();
    let t = |ms: u64| {
        format!(
            r#"{{"ready_after_ms": {ms}, "pending_at_ms": {}, "polls": 2}}"#,
            ms - 20
        )
    };
    // Four periods: only the latest three count.
    write_period(
        dir.path(),
        "2026-07",
        &format!(r#"{{"reports": [{}]}}"#, report(A, &t(90_000))),
    );
    for (label, ms) in [("2026-08", 2_000), ("2026-09", 2_100), ("2026-10", 1_900)] {
        write_period(
            dir.path(),
            label,
            &format!(
                r#"{{"reports": [{}, {}, {}, {}, {}, {}]}}"#,
                report(A, &t(ms)),
                report(B, r#"{"ready_after_ms": -5, "polls": 1}"#),
                report(B, r#"{"ready_after_ms": "soon"}"#),
                report(B, r#"{"ready_after_ms": 1e300}"#),
                r#"{"tenant_id": 7, "timing": {"ready_after_ms": 100}}"#,
                r#"{"tenant_id": "x", "kind": "usage_summary", "level": "direct_partners"}"#,
            ),
        );
    }
    let history = History::read(dir.path());
    assert_eq!(history.periods(), ["2026-10", "2026-09", "2026-08"]);
    let e = history.expected(&request(A)).expect("A has history");
    assert!((e.seconds - 1.99).abs() < 1e-9, "{e:?}");
    // In any letter case: a tenant id is a UUID.
    assert!(history.expected(&request(&A.to_uppercase())).is_some());
    assert_eq!(history.expected(&request(B)), None, "garbage is no history");
}

#[test]
fn a_damaged_or_missing_record_is_no_history() {
    let dir = tempfile::tempdir().unwrap();
    assert!(History::read(dir.path()).is_empty());
    assert!(History::read(&dir.path().join("nowhere")).is_empty());
    write_period(dir.path(), "2026-10", "{ not json");
    write_period(dir.path(), "2026-09", r#"{"reports": "none"}"#);
    write_period(dir.path(), "2026-08", r#"[1, 2, 3]"#);
    fs::create_dir_all(dir.path().join("not-a-period")).unwrap();
    fs::write(
        dir.path().join("not-a-period/manifest.json"),
        format!(
            r#"{{"reports": [{}]}}"#,
            report(A, r#"{"ready_after_ms": 1000}"#)
        ),
    )
    .unwrap();
    let history = History::read(dir.path());
    assert!(history.is_empty());
    assert!(history.periods().is_empty());
}

#[test]
fn the_estimate_schedules_the_expected_times_longest_first() {
    let dir = tempfile::tempdir().unwrap();
    let t = r#"{"ready_after_ms": 4000, "pending_at_ms": 3990, "polls": 2}"#;
    write_period(
        dir.path(),
        "2026-10",
        &format!(r#"{{"reports": [{}]}}"#, report(A, t)),
    );
    let history = History::read(dir.path());
    let plan = [request(A), request(B), request(B)];
    let e = estimate(&history, &plan, 2).expect("history exists");
    assert_eq!((e.known, e.reports, e.slots), (1, 3, 2));
    // 4 s on one slot; the two unknown ones at the median (4 s) one after the other.
    assert!((e.duration.as_secs_f64() - 7.99).abs() < 1e-3, "{e:?}");
    assert_eq!(estimate(&History::none(), &plan, 2), None);
}
