//! Whole runs through the library, against the built-in sandbox over loopback HTTP: what the
//! command line does between parsing its arguments and choosing an exit code.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use acronis_reports_sandbox::{Sandbox, Scenario};

use super::*;
use crate::content::spill::one_store_at_a_time;
use crate::run::Event;

const AS_OF: &str = "2026-11-27";

/// An environment, as the session reads it.
type Lookup = dyn Fn(&str) -> Option<String>;

fn job_yaml(tenants: usize) -> String {
    let mut yaml = String::from(
        "version: 1\n\
         polling: {initial_interval: 20ms, max_interval: 100ms, timeout: 60s}\n\
         concurrency: 3\n\
         defaults: {formats: [csv_v2_0], periods: [previous_month]}\n\
         tenants:\n",
    );
    for n in 1..=tenants {
        yaml.push_str(&format!(
            "  - id: 20000000-0000-4000-8000-{n:012}\n    name: customer-{n}\n"
        ));
    }
    yaml
}

fn job(dir: &Path, tenants: usize) -> Job {
    let path = dir.join("job.yml");
    let yaml = job_yaml(tenants);
    std::fs::write(&path, &yaml).expect("job file");
    crate::job::parse(&path, yaml.as_bytes(), AS_OF.parse().expect("date")).expect("job")
}

fn no_ci() -> ci::Context {
    ci::Context::from_env(None, None, None, |_| None)
}

fn request(out_dir: &Path) -> Request {
    Request {
        connection: ConnectionOptions {
            base_url: None,
            sandbox: Some(None),
        },
        out_dir: Some(out_dir.to_owned()),
        shard: None,
        fresh: false,
        history: HistorySource::Output,
        ci: no_ci(),
    }
}

/// [`request`] to a real API at `base_url` instead of the built-in sandbox.
fn request_to(base_url: String, out_dir: &Path) -> Request {
    Request {
        connection: ConnectionOptions {
            base_url: Some(base_url),
            sandbox: None,
        },
        ..request(out_dir)
    }
}

fn no_env(_: &str) -> Option<String> {
    None
}

/// What a run showed its frontend.
#[derive(Default)]
struct Recorder {
    cancel: CancellationToken,
    /// Cancel as soon as the reports are about to start, as a signal would.
    cancel_at_start: bool,
    started: Vec<usize>,
    finished: usize,
    events: Arc<Mutex<Vec<Event>>>,
}

struct Collect(Arc<Mutex<Vec<Event>>>);

impl Observer for Collect {
    fn on(&self, event: Event) {
        self.0.lock().expect("events").push(event);
    }
}

impl Frontend for Recorder {
    fn starting(&mut self, reports: usize) -> Arc<dyn Observer> {
        self.started.push(reports);
        if self.cancel_at_start {
            self.cancel.cancel();
        }
        Arc::new(Collect(self.events.clone()))
    }

    fn finished(&mut self) {
        self.finished += 1;
    }

    fn cancel(&self) -> CancellationToken {
        self.cancel.clone()
    }

    fn interrupted(&self) -> Option<u8> {
        self.cancel.is_cancelled().then_some(130)
    }
}

fn deliver(
    job: Job,
    request: Request,
    env: &dyn Fn(&str) -> Option<String>,
    frontend: &mut Recorder,
) -> Result<Delivered, SessionError> {
    let _one = one_store_at_a_time();
    let prepared = Prepared::new(job, request, env)?;
    runtime(prepared.concurrency())
        .expect("runtime")
        .block_on(prepared.deliver(frontend))
}

fn sha256sums(dir: &Path) -> String {
    std::fs::read_to_string(dir.join(output::SHA256SUMS)).expect("root SHA256SUMS")
}

#[test]
fn a_run_against_the_sandbox_delivers_every_report_and_shows_each() {
    let scratch = tempfile::tempdir().expect("temp");
    let out = scratch.path().join("out");
    let mut frontend = Recorder::default();
    let delivered = deliver(
        job(scratch.path(), 4),
        request(&out),
        &no_env,
        &mut frontend,
    )
    .expect("delivered");
    assert_eq!(delivered.interrupted, None);
    assert_eq!(delivered.result.reports.len(), 4);
    assert_eq!(delivered.result.ok_count(), 4);
    assert_eq!(delivered.file_count(), 4);
    assert_eq!(delivered.out_dir, out);
    assert_eq!(frontend.started, [4]);
    assert_eq!(frontend.finished, 1);
    let events = frontend.events.lock().expect("events");
    let created = events
        .iter()
        .filter(|e| matches!(e, Event::Created { resumed: false, .. }))
        .count();
    assert_eq!(created, 4, "{events:?}");
    // The delivery is committed: the root seal, the record and the summary are there, and the
    // record says which job and API produced it.
    assert!(!sha256sums(&out).is_empty());
    let manifest = std::fs::read_to_string(out.join(output::MANIFEST)).expect("manifest");
    assert!(
        manifest.contains(&delivered.result.job.sha256),
        "{manifest}"
    );
    assert!(out.join(output::SUMMARY).is_file());
    assert!(delivered.result.base_url.starts_with("http://127.0.0.1:"));
}

#[test]
fn a_run_stopped_at_the_start_writes_its_record_and_says_so() {
    let scratch = tempfile::tempdir().expect("temp");
    let out = scratch.path().join("out");
    let mut frontend = Recorder {
        cancel_at_start: true,
        ..Recorder::default()
    };
    let delivered = deliver(
        job(scratch.path(), 3),
        request(&out),
        &no_env,
        &mut frontend,
    )
    .expect("delivered");
    assert_eq!(delivered.interrupted, Some(130));
    assert_eq!(delivered.result.ok_count(), 0);
    assert_eq!(delivered.result.reports.len(), 3);
    assert_eq!(frontend.finished, 1);
    assert!(out.join(output::MANIFEST).is_file());
}

#[test]
fn a_shard_runs_its_part_of_the_plan_and_records_which() {
    let scratch = tempfile::tempdir().expect("temp");
    let out = scratch.path().join("out");
    let mut request = request(&out);
    request.shard = Some(ShardSpec { index: 2, total: 3 });
    let mut frontend = Recorder::default();
    let delivered =
        deliver(job(scratch.path(), 6), request, &no_env, &mut frontend).expect("delivered");
    let shard = delivered.result.shard.as_ref().expect("shard record");
    assert_eq!((shard.index, shard.total, shard.plan_reports), (2, 3, 6));
    let expected = shard::select(&crate::plan::build(&job(scratch.path(), 6)), 2, 3)
        .reports
        .len();
    assert!(expected > 0 && expected < 6);
    assert_eq!(frontend.started, [expected]);
    assert_eq!(delivered.result.ok_count(), expected);
}

#[test]
fn missing_credentials_stop_the_run_before_anything_is_written() {
    let scratch = tempfile::tempdir().expect("temp");
    let out = scratch.path().join("out");
    let half = |name: &str| (name == "ACRONIS_CLIENT_ID").then(|| "someone".to_owned());
    let blank = |name: &str| (name == "ACRONIS_CLIENT_SECRET").then(|| "  ".to_owned());
    let cases: [(&Lookup, &str); 3] = [
        (
            &no_env,
            "no credentials: set ACRONIS_CLIENT_ID and ACRONIS_CLIENT_SECRET",
        ),
        (
            &half,
            "ACRONIS_CLIENT_ID is set but ACRONIS_CLIENT_SECRET is not; set both",
        ),
        (&blank, "no credentials"),
    ];
    for (env, expected) in cases {
        let request = request_to("https://eu2-cloud.acronis.com".into(), &out);
        let error = Prepared::new(job(scratch.path(), 1), request, env).expect_err("refused");
        assert!(error.to_string().starts_with(expected), "{error}");
        assert!(error.nothing_attempted());
    }
    assert!(!out.exists());
}

#[test]
fn refused_credentials_leave_no_folder_and_no_secret_in_the_message() {
    let runtime = runtime(0).expect("runtime");
    let sandbox = runtime
        .block_on(Sandbox::start(Scenario::default(), 0))
        .expect("sandbox");
    let scratch = tempfile::tempdir().expect("temp");
    let out = scratch.path().join("out");
    let request = request_to(sandbox.base_url(), &out);
    let wrong_secret = "not-the-sandbox-secret-7f3a";
    let env = |name: &str| match name {
        "ACRONIS_CLIENT_ID" => Some(sandbox.client_id().to_owned()),
        "ACRONIS_CLIENT_SECRET" => Some(wrong_secret.to_owned()),
        _ => None,
    };
    let mut frontend = Recorder::default();
    let error = deliver(job(scratch.path(), 2), request, &env, &mut frontend).expect_err("refused");
    assert!(matches!(error, SessionError::Api(_)), "{error:?}");
    assert!(error.nothing_attempted());
    assert!(!error.to_string().contains(wrong_secret), "{error}");
    assert!(!format!("{error:?}").contains(wrong_secret), "{error:?}");
    assert!(frontend.started.is_empty());
    assert!(!out.exists());
    runtime.block_on(sandbox.shutdown());
}

/// A token is not checked before the run (there is no token to fetch): the server refuses it at
/// the first report, after the folder was opened.
#[test]
fn a_refused_token_takes_back_the_folder_it_created_and_leaves_an_earlier_one() {
    let runtime = runtime(0).expect("runtime");
    let sandbox = runtime
        .block_on(Sandbox::start(Scenario::default(), 0))
        .expect("sandbox");
    let scratch = tempfile::tempdir().expect("temp");
    let token = "not-a-token-of-the-sandbox-51c2";
    let env = |name: &str| (name == "ACRONIS_TOKEN").then(|| token.to_owned());
    let refused = |out: &Path| {
        let request = request_to(sandbox.base_url(), out);
        deliver(
            job(scratch.path(), 2),
            request,
            &env,
            &mut Recorder::default(),
        )
        .expect_err("refused")
    };

    let fresh = scratch.path().join("fresh");
    let error = refused(&fresh);
    assert!(
        matches!(error, SessionError::CredentialsRefused(_)),
        "{error:?}"
    );
    assert!(error.nothing_attempted());
    assert!(!error.to_string().contains(token), "{error}");
    assert!(!fresh.exists(), "a refused run leaves no folder behind");

    // A folder that was there keeps what it held; nothing of this run is added to it.
    let earlier = scratch.path().join("earlier");
    std::fs::create_dir(&earlier).expect("folder");
    std::fs::write(earlier.join("notes.txt"), "mine").expect("file");
    refused(&earlier);
    let names: Vec<_> = std::fs::read_dir(&earlier)
        .expect("folder")
        .map(|entry| entry.expect("entry").file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
    assert_eq!(
        std::fs::read(earlier.join("notes.txt")).expect("kept"),
        b"mine"
    );
    assert!(sandbox.stats().reports.is_empty(), "no report was created");
    runtime.block_on(sandbox.shutdown());
}

#[test]
fn folders_that_cannot_be_used_are_named_before_the_run() {
    let scratch = tempfile::tempdir().expect("temp");
    let file = scratch.path().join("a-file");
    std::fs::write(&file, "x").expect("file");
    let error =
        Prepared::new(job(scratch.path(), 1), request(&file), &no_env).expect_err("refused");
    assert_eq!(
        error.to_string(),
        format!(
            "output folder {} exists and is not a folder",
            file.display()
        )
    );
    let mut request = request(&scratch.path().join("out"));
    request.history = HistorySource::Dir(scratch.path().join("no-such-trail"));
    let error = Prepared::new(job(scratch.path(), 1), request, &no_env).expect_err("refused");
    assert!(
        error.to_string().starts_with(&format!(
            "--history {}: not a folder",
            scratch.path().join("no-such-trail").display()
        )),
        "{error}"
    );
    assert_eq!(std::fs::read(&file).expect("file"), b"x");
}

#[test]
fn the_shard_comes_from_the_flag_or_from_gitlabs_variables() {
    let gitlab: HashMap<&str, &str> = [("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "4")].into();
    let env = |name: &str| gitlab.get(name).map(|v| (*v).to_owned());
    let given = ShardSpec { index: 1, total: 2 };
    assert_eq!(
        resolve_shard(ShardChoice::Given(given), &env).expect("given"),
        Some(given)
    );
    assert_eq!(resolve_shard(ShardChoice::All, &env).expect("all"), None);
    assert_eq!(
        resolve_shard(ShardChoice::FromCi, &env).expect("from CI"),
        Some(ShardSpec { index: 2, total: 4 })
    );
    assert_eq!(
        resolve_shard(ShardChoice::FromCi, &no_env).expect("none"),
        None
    );
    let bad = |name: &str| (name.starts_with("CI_NODE_")).then(|| "zero".to_owned());
    let error = resolve_shard(ShardChoice::FromCi, &bad).expect_err("refused");
    let message = error.to_string();
    assert!(message.contains("CI_NODE_"), "{message}");
    assert!(
        message.ends_with("(or pass --shard I/N, or --no-shard)"),
        "{message}"
    );
}
