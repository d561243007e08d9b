use super::*;

fn item(id: &str, format: &str, status: &str, created: &str) -> StoredItem {
    StoredItem {
        id: Some(id.into()),
        report_format: Some(format.into()),
        status: Some(status.into()),
        size: Some(10),
        created_at: Some(created.into()),
    }
}

const BOTH: [Format; 2] = [Format::CsvV2, Format::JsonV2];

#[test]
fn empty_list_and_unknown_statuses_are_pending() {
    assert_eq!(
        evaluate(&[], &BOTH),
        Evaluation::Pending {
            missing: BOTH.to_vec()
        }
    );
    for status in ["in_progress", "processing"] {
        let items = [
            item("a", "csv_v2_0", status, "1"),
            item("b", "json_v2_0", "saved", "1"),
        ];
        assert_eq!(
            evaluate(&items, &BOTH),
            Evaluation::Pending {
                missing: vec![Format::CsvV2]
            },
            "{status}"
        );
    }
}

#[test]
fn newest_saved_file_of_each_format_is_taken() {
    let items = [
        item("old", "csv_v2_0", "saved", "2026-11-01T06:00:00+00:00"),
        item("new", "csv_v2_0", "saved", "2026-11-01T07:00:00+00:00"),
        item("j", "json_v2_0", "saved", "2026-11-01T06:00:00+00:00"),
        item("x", "html", "saved", "2026-11-01T06:00:00+00:00"),
    ];
    let Evaluation::Ready(files) = evaluate(&items, &BOTH) else {
        panic!()
    };
    assert_eq!(files[0].stored_id, "new");
    assert_eq!(files[1].stored_id, "j");
}

#[test]
fn a_failed_format_fails_the_report_with_the_servers_word() {
    let items = [
        item("a", "csv_v2_0", "Failed", "1"),
        item("b", "json_v2_0", "saved", "1"),
    ];
    let Evaluation::Failed(reason) = evaluate(&items, &BOTH) else {
        panic!()
    };
    assert!(
        reason.contains("`Failed`") && reason.contains("csv_v2_0"),
        "{reason}"
    );
}

/// A sandbox whose stored list answers 404 `times` times, a client of it and a report
/// created there.
async fn not_listed_at_first(times: u32) -> (acronis_reports_sandbox::Sandbox, Client, String) {
    use crate::api::{ClientOptions, CreateReport, Credentials, PeriodDates, ReportParameters};
    use crate::report::{ReportKind, ReportLevel};
    use acronis_reports_sandbox::{Endpoint, FaultRule, Sandbox, Scenario};
    let scenario = Scenario {
        generation_delay: Duration::from_millis(100),
        faults: vec![FaultRule {
            endpoint: Endpoint::StoredList,
            status: Some(404),
            times,
            ..FaultRule::default()
        }],
        ..Scenario::default()
    };
    let sandbox = Sandbox::start(scenario, 0).await.unwrap();
    let client = Client::new(
        crate::api::api_base(&sandbox.base_url()).unwrap(),
        Credentials::Client {
            id: sandbox.client_id().to_owned(),
            secret: crate::secret::Secret::new(sandbox.client_secret()),
        },
        ClientOptions::default(),
    )
    .unwrap();
    let created = client
        .create_report(&CreateReport::once(ReportParameters {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            formats: vec![Format::CsvV2],
            period: PeriodDates {
                start: "2024-05-01".into(),
                end: "2024-05-31".into(),
            },
            hide_zero_usage: false,
            show_skus: true,
        }))
        .await
        .unwrap();
    (sandbox, client, created.id)
}

fn quick_polling() -> Polling {
    Polling {
        initial_interval: Duration::from_millis(50),
        max_interval: Duration::from_millis(200),
        timeout: Duration::from_secs(120),
    }
}

#[tokio::test]
async fn a_404_for_a_report_created_moments_ago_is_still_pending() {
    let (sandbox, client, id) = not_listed_at_first(3).await;
    let polling = quick_polling();
    let model = GenerationModel::new();
    let waiting = Waiting {
        report_id: &id,
        formats: &[Format::CsvV2],
        created: Instant::now(),
        created_here: true,
        expected: None,
    };
    let ready = wait_until_ready(&client, &waiting, &polling, &model)
        .await
        .expect("ready after the 404s");
    assert_eq!(ready.files.len(), 1);
    let timing = ready.timing.expect("a report created here is timed");
    assert!(timing.polls >= 4, "three 404s, then saved: {timing:?}");
    assert!(timing.pending_at_ms.is_some(), "a 404 then is pending");
    assert_eq!(sandbox.stats().faults_injected, 3);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_404_after_the_first_minute_or_for_a_report_of_an_earlier_run_fails() {
    let polling = quick_polling();
    let model = GenerationModel::new();
    let long_ago = Instant::now()
        .checked_sub(NOT_LISTED_YET_GRACE + Duration::from_secs(1))
        .expect("the clock is past a minute");
    for (created, created_here) in [(long_ago, true), (Instant::now(), false)] {
        let (sandbox, client, id) = not_listed_at_first(1).await;
        let waiting = Waiting {
            report_id: &id,
            formats: &[Format::CsvV2],
            created,
            created_here,
            expected: None,
        };
        let error = wait_until_ready(&client, &waiting, &polling, &model)
            .await
            .expect_err("a 404 fails");
        assert!(
            matches!(error, PollError::Api(ApiError::Status { status: 404, .. })),
            "{error}"
        );
        sandbox.shutdown().await;
    }
}

fn steady(model: &GenerationModel, pending_ms: u64, ready_ms: u64, times: usize) {
    for _ in 0..times {
        model.record(
            Some(Duration::from_millis(pending_ms)),
            Duration::from_millis(ready_ms),
        );
    }
}

#[test]
fn probes_start_a_step_early_and_regular_reports_a_step_late() {
    let model = GenerationModel::new();
    assert_eq!(model.aim(Role::Probe), None);
    steady(&model, 19_900, 20_100, 10);
    let probe = model.aim(Role::Probe).unwrap();
    let regular = model.aim(Role::Regular).unwrap();
    assert_eq!(probe.step, Duration::from_millis(600));
    assert_eq!(probe.first, Duration::from_millis(19_400));
    // Every time seen is 20 s: one poll there catches them all.
    assert_eq!(regular.first, Duration::from_millis(20_000));
    assert!(regular.until > Duration::from_secs(24));
}

#[test]
fn regular_reports_aim_a_step_past_the_earliest_time_seen_when_times_spread() {
    let model = GenerationModel::new();
    // The first sample, taken with nothing known, is a rough one and soon ignored.
    steady(&model, 19_900, 20_100, 1);
    for seconds in 15..=25 {
        steady(&model, seconds * 1000 - 100, seconds * 1000 + 100, 2);
    }
    let regular = model.aim(Role::Regular).unwrap();
    assert_eq!(regular.step, Duration::from_millis(600));
    assert_eq!(regular.first, Duration::from_millis(15_600));
}

#[test]
fn only_young_models_and_every_nth_report_probe() {
    let model = GenerationModel::new();
    assert_eq!(model.role(1), Role::Probe);
    // The first sample, taken with nothing known, is a rough one.
    steady(&model, 9_900, 10_100, GenerationModel::LEARNING + 1);
    assert_eq!(model.role(1), Role::Regular);
    assert_eq!(model.role(GenerationModel::PROBE_EVERY), Role::Probe);
}

#[test]
fn a_probe_saved_at_its_first_poll_pulls_the_aim_earlier() {
    let model = GenerationModel::new();
    steady(&model, 9_900, 10_100, 10);
    let before = model.aim(Role::Probe).unwrap();
    for _ in 0..GenerationModel::WINDOW {
        model.record(None, before.first);
    }
    let after = model.aim(Role::Probe).unwrap();
    assert!(after.first < before.first, "{before:?} → {after:?}");
    // A first poll made late says nothing, so it changes nothing.
    model.record(None, Duration::from_secs(60));
    assert_eq!(model.aim(Role::Probe), Some(after));
}

#[test]
fn a_scout_saved_at_its_very_first_poll_makes_the_next_reports_probe_earlier() {
    let model = GenerationModel::new();
    model.record(None, Duration::from_secs(10));
    assert!(model.aim(Role::Probe).unwrap().first <= Duration::from_secs(8));
}

#[test]
fn scouts_are_few_and_leave_their_place_to_others() {
    let model = GenerationModel::new();
    let scouts: Vec<_> = (0..GenerationModel::SCOUTS)
        .map(|_| model.try_scout().expect("a place"))
        .collect();
    assert!(model.try_scout().is_none());
    let staggers: std::collections::BTreeSet<u64> =
        scouts.iter().map(|s| (s.stagger * 100.0) as u64).collect();
    assert_eq!(staggers.len(), GenerationModel::SCOUTS);
    drop(scouts);
    assert!(model.try_scout().is_some());
    steady(&model, 900, 1_100, 1);
    assert!(
        model.try_scout().is_none(),
        "no scouting once something is known"
    );
}
#[test]
fn a_scout_keeps_to_its_own_series_even_after_a_late_poll() {
    let polling = Polling {
        initial_interval: Duration::from_secs(4),
        max_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(1800),
    };
    let model = GenerationModel::new();
    let mut schedule = Schedule::new(&model, &polling, true, None);
    let first = schedule.next();
    let stagger = schedule
        .scout
        .as_ref()
        .expect("the first report scouts")
        .stagger;
    let on_series = |at: Duration| {
        let n = (at.as_secs_f64() / 1.0).ln() / GenerationModel::SCOUT_RATIO.ln() - stagger;
        (n - n.round()).abs() < 1e-6
    };
    assert!(on_series(first), "{first:?}");
    let mut at = first;
    for late in [Duration::ZERO, Duration::from_millis(37), Duration::ZERO] {
        schedule.polled(at + late, true);
        let next = schedule.next();
        assert!(
            next >= at + late + GenerationModel::MIN_STEP,
            "{at:?} → {next:?}"
        );
        assert!(on_series(next), "{next:?}");
        at = next;
    }
    // Waiting reports are not scouts: they wait for news, with a rare look of their own.
    let mut others: Vec<Schedule> = (0..GenerationModel::SCOUTS)
        .map(|_| Schedule::new(&model, &polling, true, None))
        .collect();
    let times: Vec<Duration> = others.iter_mut().map(Schedule::next).collect();
    assert_eq!(
        times
            .iter()
            .filter(|t| **t == Duration::from_secs(20))
            .count(),
        1
    );
    drop(others);
    let mut resumed = Schedule::new(&model, &polling, false, None);
    assert_eq!(resumed.next(), Duration::from_secs(20));
    assert!(resumed.scout.is_none(), "a resumed report never scouts");
}

/// What a tenant's history of `seconds` (precisely bracketed) leads to expect.
fn history_of(seconds: f64) -> Expected {
    let dir = tempfile::tempdir().unwrap();
    let period = dir.path().join("2026-10");
    std::fs::create_dir_all(&period).unwrap();
    let ms = (seconds * 1000.0) as u64;
    std::fs::write(
        period.join("manifest.json"),
        format!(
            r#"{{"reports": [{{"tenant_id": "ede9f834-70b3-476c-83d9-736f9f8c7dae", "kind": "usage_summary", "level": "direct_partners", "timing": {{"ready_after_ms": {}, "pending_at_ms": {}, "polls": 2}}}}]}}"#,
            ms + 10,
            ms - 10
        ),
    )
    .unwrap();
    let job = crate::job::parse(
        std::path::Path::new("job.yml"),
        b"version: 1\ntenants:\n  - id: ede9f834-70b3-476c-83d9-736f9f8c7dae\n",
        "2026-12-02".parse().unwrap(),
    )
    .unwrap();
    let request = crate::plan::build(&job).reports.remove(0);
    crate::history::History::read(dir.path())
        .expected(&request)
        .expect("the tenant has history")
}

#[test]
fn a_report_with_history_polls_at_its_tenants_time_and_never_teaches_the_model() {
    let polling = Polling {
        initial_interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(1800),
    };
    let model = GenerationModel::new();
    let expected = history_of(120.0);
    let mut schedule = Schedule::new(&model, &polling, true, Some(expected));
    let first = schedule.next();
    assert_eq!(first, expected.first_poll(GenerationModel::MIN_STEP));
    assert!(first > Duration::from_secs(110) && first < Duration::from_secs(120));
    assert!(schedule.scout.is_none(), "no scout place taken");
    assert!(
        !schedule.measuring(),
        "its polls are not the model's samples"
    );
    // Whatever the model learns from the others does not move this report's polls.
    steady(&model, 9_900, 10_100, 10);
    assert_eq!(schedule.next(), first);
    schedule.polled(first, true);
    let second = schedule.next();
    assert!(
        second > first && second - first < Duration::from_secs(5),
        "{second:?}"
    );
    // Saved there: the record says how long it took, against what was expected.
    let timing = schedule.timing(second, 2);
    assert_eq!(timing.pending_at_ms, Some(history::millis(first)));
    assert_eq!(timing.expected_ms, Some(expected.millis()));
    assert_eq!(timing.changed, None);
}

#[test]
fn a_report_much_slower_than_its_history_is_polled_like_one_without() {
    let polling = Polling {
        initial_interval: Duration::from_secs(5),
        max_interval: Duration::from_secs(60),
        timeout: Duration::from_secs(1800),
    };
    let model = GenerationModel::new();
    steady(&model, 9_900, 10_100, 10);
    let expected = history_of(4.0);
    let mut schedule = Schedule::new(&model, &polling, true, Some(expected));
    let mut at = schedule.next();
    while schedule.changed.is_none() {
        schedule.polled(at, true);
        at = schedule.next();
        assert!(
            at < Duration::from_secs(60),
            "gave up on the history by then"
        );
    }
    assert_eq!(schedule.changed, Some(Changed::Slower));
    assert!(
        at >= Duration::from_secs(8),
        "only past twice the expected time: {at:?}"
    );
    // From here the model aims it, as any report without history: at the 10 s it learnt.
    let aim = model.aim(model.role(schedule.ticket)).unwrap();
    assert_eq!(at, aim.first);
    let timing = schedule.timing(Duration::from_secs(10), 12);
    assert_eq!(timing.changed, Some(Changed::Slower));
    assert!(
        !schedule.measuring(),
        "a changed tenant is no sample of the unknown ones"
    );
}

#[test]
fn a_report_saved_at_its_first_poll_before_a_precise_history_is_faster() {
    let polling = quick_polling();
    let model = GenerationModel::new();
    let expected = history_of(10.0);
    let mut schedule = Schedule::new(&model, &polling, true, Some(expected));
    let first = schedule.next();
    assert_eq!(schedule.timing(first, 1).changed, Some(Changed::Faster));
    schedule.polled(first, true);
    let second = schedule.next();
    assert_eq!(
        schedule.timing(second, 2).changed,
        None,
        "pending first: as expected"
    );
}

#[tokio::test]
async fn history_aims_only_reports_created_here() {
    // A report taken over from an earlier run was created at an unknown time: its tenant's
    // time says nothing about when it will be ready, and it is not timed.
    let (sandbox, client, id) = not_listed_at_first(0).await;
    let polling = quick_polling();
    let model = GenerationModel::new();
    let waiting = Waiting {
        report_id: &id,
        formats: &[Format::CsvV2],
        created: Instant::now(),
        created_here: false,
        expected: Some(history_of(3600.0)),
    };
    let waited = wait_until_ready(&client, &waiting, &polling, &model)
        .await
        .expect("ready");
    assert_eq!(waited.timing, None);
    sandbox.shutdown().await;
}
