//! Performance benchmark of issue 6: the real binary against the built-in sandbox, every figure
//! side by side with a baseline that mimics the vendor's example client (one report at a time,
//! fixed 2-second polls, whole body in memory). See `BENCHMARKS.md`.
//!
//! ```sh
//! cargo bench --bench bench                        # every case (about 5 minutes on 2 cores)
//! cargo bench --bench bench -- polls stream        # some cases: wall polls stream scale connections history
//! BENCH_SCALE=0.1 cargo bench --bench bench        # fewer reports and smaller files, for a quick look
//! ```
//!
//! Environment knobs: `BENCH_SCALE` (report counts and file sizes, default 1), `BENCH_TIME_SCALE`
//! (time scale of the `polls` case, default 0.1), `BENCH_POLL_JITTER` (generation jitter of the
//! `polls` case, default 0.05), `BENCH_BIN` (binary to measure instead of the one cargo built),
//! `BENCH_WRAP` (a command prefix for the binary, e.g. `perf record -g -o perf.data --`; peak RSS
//! then belongs to the wrapper), `BENCH_KEEP=1` (keep the scratch folder).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use acronis_reports::{job, plan, run};
use acronis_reports_sandbox::{CreatedReport, Sandbox, Scenario, Stats};
use futures_util::StreamExt as _;
use serde_json::Value;
use sha2::{Digest as _, Sha256};

const AS_OF: &str = "2026-11-27";
const PERIOD: &str = "2026-10";
const MIB: f64 = 1024.0 * 1024.0;
const CASES: [&str; 6] = ["wall", "polls", "stream", "scale", "connections", "history"];
/// Argument that makes this binary the baseline's download child (so its RSS is its own).
const CHILD_MODE: &str = "__baseline-fetch";
/// Argument that makes this binary a small launcher that runs a command and reports its rusage.
const MEASURE_MODE: &str = "__measure";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_MODE) {
        baseline_fetch_child(&args[1..]);
        return;
    }
    if args.first().map(String::as_str) == Some(MEASURE_MODE) {
        measure_child(&args[1..]);
        return;
    }
    // `cargo bench` adds `--bench`; anything else starting with `-` is ignored as well.
    let mut selected: Vec<&str> = Vec::new();
    for arg in args.iter().filter(|a| !a.starts_with('-')) {
        match CASES.iter().find(|c| **c == arg.as_str()) {
            Some(case) => selected.push(case),
            None => {
                eprintln!("unknown case `{arg}`; cases: {}", CASES.join(", "));
                std::process::exit(2);
            }
        }
    }
    if selected.is_empty() {
        // `cargo test --all-targets` runs this binary without `--bench`: that is no time for a
        // five-minute benchmark.
        if !args.iter().any(|a| a == "--bench") {
            eprintln!(
                "bench: skipped (run it with `cargo bench --bench bench`, or name a case: {})",
                CASES.join(", ")
            );
            return;
        }
        selected = CASES.to_vec();
    }
    let mut bench = Bench::new();
    bench.header();
    let mut wall: Option<WallRun> = None;
    for case in CASES.iter().filter(|c| selected.contains(c)) {
        match *case {
            "wall" => {
                let run = bench.wall_run(bench.count(1000, 10), 100, Duration::from_secs(3));
                bench.wall_section(&run);
                wall = Some(run);
            }
            "connections" => {
                let run = match wall.take() {
                    Some(run) => run,
                    None => bench.wall_run(bench.count(200, 10), 50, Duration::from_secs(1)),
                };
                bench.connections_section(&run);
            }
            "polls" => bench.polls(),
            "stream" => bench.stream(),
            "scale" => bench.scale(),
            "history" => bench.history(),
            _ => unreachable!(),
        }
    }
    bench.summary();
}

// ---------------------------------------------------------------------------------------------
// Configuration, tables, processes

struct Env {
    scale: f64,
    time_scale: f64,
    poll_jitter: f64,
    bin: PathBuf,
    wrap: Vec<String>,
    keep: bool,
}

fn env_f64(name: &str, default: f64) -> f64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a number")),
        Err(_) => default,
    }
}

impl Env {
    fn read() -> Env {
        let scale = env_f64("BENCH_SCALE", 1.0);
        let time_scale = env_f64("BENCH_TIME_SCALE", 0.1);
        let poll_jitter = env_f64("BENCH_POLL_JITTER", 0.05);
        assert!(scale > 0.0, "BENCH_SCALE must be > 0");
        assert!(time_scale > 0.0, "BENCH_TIME_SCALE must be > 0");
        assert!(
            (0.0..1.0).contains(&poll_jitter),
            "BENCH_POLL_JITTER must be in [0, 1)"
        );
        let bin = std::env::var_os("BENCH_BIN").map_or_else(
            || PathBuf::from(env!("CARGO_BIN_EXE_acronis-reports")),
            PathBuf::from,
        );
        let wrap = std::env::var("BENCH_WRAP")
            .map(|w| w.split_whitespace().map(str::to_owned).collect())
            .unwrap_or_default();
        Env {
            scale,
            time_scale,
            poll_jitter,
            bin,
            wrap,
            keep: std::env::var_os("BENCH_KEEP").is_some_and(|v| v != "0"),
        }
    }
}

/// One line of a result table.
struct Row {
    figure: String,
    ours: String,
    base: String,
    /// Ours relative to the baseline.
    vs: String,
    /// The value the target is about.
    checked: String,
    target: String,
    pass: Option<bool>,
}

fn row(figure: impl Into<String>, ours: impl Into<String>, base: impl Into<String>) -> Row {
    Row {
        figure: figure.into(),
        ours: ours.into(),
        base: base.into(),
        vs: String::new(),
        checked: String::new(),
        target: String::new(),
        pass: None,
    }
}

impl Row {
    fn vs(mut self, ours: f64, base: f64) -> Row {
        if base > 0.0 && ours.is_finite() && base.is_finite() {
            self.vs = format!("{}×", sig(ours / base));
        }
        self
    }

    fn check(mut self, checked: impl Into<String>, target: impl Into<String>, pass: bool) -> Row {
        self.checked = checked.into();
        self.target = target.into();
        self.pass = Some(pass);
        self
    }

    fn info(mut self, checked: impl Into<String>) -> Row {
        self.checked = checked.into();
        self
    }

    fn result(&self) -> &'static str {
        match self.pass {
            Some(true) => "PASS",
            Some(false) => "FAIL",
            None => "info",
        }
    }
}

struct Section {
    case: &'static str,
    title: String,
    rows: Vec<Row>,
    notes: Vec<String>,
}

/// Three significant digits, without exponent for everyday magnitudes.
fn sig(x: f64) -> String {
    let a = x.abs();
    if a >= 100.0 {
        format!("{x:.0}")
    } else if a >= 10.0 {
        format!("{x:.1}")
    } else if a >= 1.0 {
        format!("{x:.2}")
    } else if a >= 0.01 {
        format!("{x:.3}")
    } else {
        format!("{x:.2e}")
    }
}

fn secs(d: f64) -> String {
    format!("{} s", sig(d))
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

fn percentile(values: &[f64], q: f64) -> f64 {
    if values.is_empty() {
        return f64::NAN;
    }
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() - 1) as f64 * q).round() as usize;
    v[i]
}

fn median(values: &[f64]) -> f64 {
    percentile(values, 0.5)
}

/// What a finished child process cost, by the kernel's own accounting.
struct Proc {
    wall: Duration,
    /// Peak resident set size (KiB), from `wait4`.
    max_rss_kib: Option<u64>,
    /// The peak resident set size so far (`VmHWM`, KiB) every 20 ms while it ran, from its
    /// start (Linux; empty elsewhere).
    peak_rss_over_time: Vec<(Duration, u64)>,
    cpu: Option<Duration>,
    code: i32,
    stdout: String,
    stderr: String,
    exited_at: Instant,
}

#[cfg(unix)]
fn wait_child(child: std::process::Child) -> (i32, Option<u64>, Option<Duration>) {
    let pid = libc::pid_t::try_from(child.id()).expect("pid fits pid_t");
    let mut status: libc::c_int = 0;
    // SAFETY: rusage is plain old data; all-zero is a valid value.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: pid is our own un-reaped child; the pointers are valid for the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut usage) };
        if r == pid {
            break;
        }
        let err = std::io::Error::last_os_error();
        assert!(
            err.kind() == std::io::ErrorKind::Interrupted,
            "wait4 failed: {err}"
        );
    }
    // Reaped above: the handle must not wait again (dropping a Child never waits).
    drop(child);
    let code = if libc::WIFEXITED(status) {
        libc::WEXITSTATUS(status)
    } else {
        128 + libc::WTERMSIG(status)
    };
    let rss = u64::try_from(usage.ru_maxrss).unwrap_or(0);
    // Linux reports KiB, macOS bytes.
    let rss = if cfg!(target_os = "macos") {
        rss / 1024
    } else {
        rss
    };
    let tv = |t: libc::timeval| {
        Duration::from_secs(u64::try_from(t.tv_sec).unwrap_or(0))
            + Duration::from_micros(u64::try_from(t.tv_usec).unwrap_or(0))
    };
    (
        code,
        Some(rss),
        Some(tv(usage.ru_utime) + tv(usage.ru_stime)),
    )
}

#[cfg(not(unix))]
fn wait_child(mut child: std::process::Child) -> (i32, Option<u64>, Option<Duration>) {
    let status = child.wait().expect("wait for the child");
    (status.code().unwrap_or(-1), None, None)
}

/// Runs a command to completion with stdout and stderr in files (no pipe can fill up).
///
/// On Linux a process's peak RSS (`ru_maxrss`) includes the high-water mark of the address space
/// it was forked from, carried over at `exec`: a child of this (large) bench process would report
/// at least the bench's own peak. So the command is started by a fresh, small copy of this binary
/// in [`MEASURE_MODE`], which forks the command from its own small address space, waits for it
/// with `wait4` and writes down what the kernel accounted.
#[cfg(unix)]
fn run_process(cmd: Command, scratch: &Path) -> Proc {
    let out_path = scratch.join(".proc-stdout");
    let err_path = scratch.join(".proc-stderr");
    let usage_path = scratch.join(".proc-usage");
    let _ = std::fs::remove_file(&usage_path);
    let _ = std::fs::remove_file(usage_path.with_extension("rss"));
    let mut launcher = Command::new(std::env::current_exe().expect("own path"));
    launcher
        .arg(MEASURE_MODE)
        .arg(&usage_path)
        .arg(cmd.get_program())
        .args(cmd.get_args());
    if let Some(dir) = cmd.get_current_dir() {
        launcher.current_dir(dir);
    }
    for (key, value) in cmd.get_envs() {
        match value {
            Some(value) => launcher.env(key, value),
            None => launcher.env_remove(key),
        };
    }
    launcher
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let status = launcher
        .status()
        .unwrap_or_else(|e| panic!("cannot start the launcher for {cmd:?}: {e}"));
    let exited_at = Instant::now();
    let usage = std::fs::read_to_string(&usage_path).unwrap_or_default();
    let fields: Vec<u64> = usage
        .split_whitespace()
        .filter_map(|f| f.parse().ok())
        .collect();
    let [code, wall_us, rss_kib, cpu_us] = fields[..] else {
        panic!("the launcher for {cmd:?} failed ({status}): {usage}");
    };
    let peak_rss_over_time = std::fs::read_to_string(usage_path.with_extension("rss"))
        .unwrap_or_default()
        .lines()
        .filter_map(|line| {
            let (us, kib) = line.split_once(' ')?;
            Some((Duration::from_micros(us.parse().ok()?), kib.parse().ok()?))
        })
        .collect();
    Proc {
        wall: Duration::from_micros(wall_us),
        max_rss_kib: Some(rss_kib),
        peak_rss_over_time,
        cpu: Some(Duration::from_micros(cpu_us)),
        code: i32::try_from(code).unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        exited_at,
    }
}

#[cfg(not(unix))]
fn run_process(mut cmd: Command, scratch: &Path) -> Proc {
    let out_path = scratch.join(".proc-stdout");
    let err_path = scratch.join(".proc-stderr");
    cmd.stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"));
    let started = Instant::now();
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    let (code, max_rss_kib, cpu) = wait_child(child);
    let exited_at = Instant::now();
    Proc {
        wall: exited_at - started,
        max_rss_kib,
        peak_rss_over_time: Vec::new(),
        cpu,
        code,
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
        exited_at,
    }
}

/// `__measure USAGE_FILE PROGRAM ARGS...`: runs the program (stdio, directory and environment
/// inherited), and writes `exit-code wall-µs peak-RSS-KiB CPU-µs` to USAGE_FILE.
fn measure_child(args: &[String]) {
    let [usage_path, program, rest @ ..] = args else {
        panic!("usage: {MEASURE_MODE} USAGE_FILE PROGRAM ARGS...");
    };
    let started = Instant::now();
    let child = Command::new(program)
        .args(rest)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {program}: {e}"));
    let sampling = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let sampler = {
        let status = PathBuf::from(format!("/proc/{}/status", child.id()));
        let sampling = sampling.clone();
        std::thread::spawn(move || {
            let mut lines = String::new();
            while sampling.load(std::sync::atomic::Ordering::Relaxed) {
                let hwm = std::fs::read_to_string(&status).ok().and_then(|text| {
                    let line = text.lines().find(|l| l.starts_with("VmHWM:"))?;
                    line.split_whitespace().nth(1)?.parse::<u64>().ok()
                });
                if let Some(kib) = hwm {
                    let _ = writeln!(lines, "{} {kib}", started.elapsed().as_micros());
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            lines
        })
    };
    let (code, rss, cpu) = wait_child(child);
    let wall = started.elapsed();
    sampling.store(false, std::sync::atomic::Ordering::Relaxed);
    let samples = sampler.join().unwrap_or_default();
    std::fs::write(Path::new(usage_path).with_extension("rss"), samples)
        .expect("write the RSS samples");
    std::fs::write(
        usage_path,
        format!(
            "{} {} {} {}\n",
            u32::try_from(code).unwrap_or(255),
            wall.as_micros(),
            rss.unwrap_or(0),
            cpu.unwrap_or_default().as_micros()
        ),
    )
    .expect("write the usage file");
}

fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

/// A sandbox on this process's runtime, with an estimate of its timeline origin.
struct Sb {
    sandbox: Sandbox,
    /// Taken just before the sandbox started: its `*_us` timestamps count from (just after) here.
    epoch: Instant,
}

impl Sb {
    fn us(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }
}

/// The job files the cases use: `tenants` tenants × one period, csv_v2_0 with SKUs checked.
struct JobSpec {
    tenants: usize,
    concurrency: usize,
    /// initial_interval, max_interval, timeout; `None` keeps the built-in defaults.
    polling: Option<(Duration, Duration, Duration)>,
}

fn tenant_id(i: usize) -> String {
    format!("5ca1ab1e-0000-4000-8000-{:012x}", i + 1)
}

fn job_yaml(spec: &JobSpec) -> String {
    let mut s = String::with_capacity(64 * spec.tenants + 512);
    s.push_str("# generated by benches/bench.rs\nversion: 1\n");
    s.push_str("defaults:\n  kind: usage_summary\n  level: direct_partners\n");
    s.push_str("  formats: [csv_v2_0]\n  show_skus: true\n");
    let _ = writeln!(s, "  periods: [{PERIOD}]");
    s.push_str("checks:\n  skus: required\n");
    if let Some((initial, max, timeout)) = spec.polling {
        let _ = writeln!(
            s,
            "polling:\n  initial_interval: {}ms\n  max_interval: {}ms\n  timeout: {}ms",
            initial.as_millis().max(1),
            max.as_millis().max(1),
            timeout.as_millis().max(1)
        );
    }
    let _ = writeln!(s, "concurrency: {}", spec.concurrency.clamp(1, 1000));
    s.push_str("tenants:\n");
    for i in 0..spec.tenants {
        let _ = writeln!(s, "  - id: {}\n    name: t{:05}", tenant_id(i), i + 1);
    }
    s
}

/// The exact `POST /reports` bodies `run` would send for a job, via the library.
fn create_bodies(path: &Path, yaml: &str) -> Vec<Value> {
    let as_of: jiff::civil::Date = AS_OF.parse().expect("as-of date");
    let job = job::parse(path, yaml.as_bytes(), as_of).expect("generated job is valid");
    plan::build(&job)
        .reports
        .iter()
        .map(|r| serde_json::to_value(run::create_body(r)).expect("create body"))
        .collect()
}

/// Greedy list scheduling of `durations` (creation order) on `slots` slots: the makespan a
/// client with zero polling lag would reach with the same generation times.
fn greedy_makespan(durations: &[f64], slots: usize) -> f64 {
    let mut heap: BinaryHeap<Reverse<u64>> = (0..slots.max(1)).map(|_| Reverse(0)).collect();
    let mut end = 0;
    for d in durations {
        let Reverse(free) = heap.pop().expect("a slot");
        let done = free + (d * 1e6) as u64;
        end = end.max(done);
        heap.push(Reverse(done));
    }
    end as f64 / 1e6
}

fn lags_pct(reports: &[CreatedReport], generation: Duration) -> Vec<f64> {
    reports
        .iter()
        .filter_map(|r| {
            let first = r.first_download_us?;
            let lag = first.saturating_sub(r.ready_us) as f64 / 1e6;
            Some(100.0 * lag / generation.as_secs_f64())
        })
        .collect()
}

/// Reports in creation order, split into the first wave (which runs blind) and the later ones.
fn waves(
    reports: &[CreatedReport],
    concurrency: usize,
) -> (Vec<CreatedReport>, Vec<CreatedReport>) {
    let mut by_creation = reports.to_vec();
    by_creation.sort_by_key(|r| r.created_us);
    let later = by_creation.split_off(concurrency.min(by_creation.len()));
    (by_creation, later)
}

/// Polls per report and lag of a wave.
fn wave(reports: &[CreatedReport], generation: Duration) -> String {
    let polls = reports
        .iter()
        .map(|r| r.stored_list_requests as f64)
        .sum::<f64>()
        / reports.len().max(1) as f64;
    let lags = lags_pct(reports, generation);
    format!(
        "{} polls, lag p50 {} % / p95 {} %",
        sig(polls),
        sig(median(&lags)),
        sig(percentile(&lags, 0.95))
    )
}

/// What a wall run spent beyond its reports' generation times: the time outside the server's
/// span (start-up before the first create, outputs after the last download), each report's
/// lag + download, and the gap between a report finishing and the next one being created in
/// its slot.
fn above_floor(w: &WallRun) -> String {
    let reports = &w.stats.reports;
    let first_create = reports.iter().map(|r| r.created_us).min().unwrap_or(0);
    let mut dones: Vec<u64> = reports.iter().filter_map(|r| r.download_done_us).collect();
    dones.sort_unstable();
    let span = dones
        .last()
        .copied()
        .unwrap_or(first_create)
        .saturating_sub(first_create) as f64
        / 1e6;
    let outside = w.ours.wall.as_secs_f64() - span;
    let mean_ms = |values: &[f64]| 1e3 * values.iter().sum::<f64>() / values.len().max(1) as f64;
    // Mean time between two moments of each report; then "saved → downloaded" split at the
    // poll that first saw the report saved: polling lag, the client's own latency until it
    // asked for the file, the transfer.
    let split = |from: fn(&CreatedReport) -> Option<u64>, to: fn(&CreatedReport) -> Option<u64>| {
        let values: Vec<f64> = reports
            .iter()
            .filter_map(|r| Some(to(r)?.saturating_sub(from(r)?) as f64 / 1e6))
            .collect();
        mean_ms(&values)
    };
    let after_ready = split(|r| Some(r.ready_us), |r| r.download_done_us);
    let polling = split(|r| Some(r.ready_us), |r| r.first_saved_list_us);
    let to_request = split(|r| r.first_saved_list_us, |r| r.first_download_us);
    let transfer = split(|r| r.first_download_us, |r| r.download_done_us);
    // Only reports that finished, so that the k-th create and the k-th end stay paired.
    let mut creates: Vec<u64> = reports
        .iter()
        .filter(|r| r.download_done_us.is_some())
        .map(|r| r.created_us)
        .collect();
    creates.sort_unstable();
    // The k-th create past the first wave took the slot the (k − C)-th finished report left.
    let gaps: Vec<f64> = creates
        .iter()
        .skip(w.concurrency)
        .zip(&dones)
        .map(|(created, done)| created.saturating_sub(*done) as f64 / 1e6)
        .collect();
    format!(
        "outside the server's span {} (start-up + outputs); per report: saved → downloaded {} ms (saved → seen by a poll {} ms, → download asked {} ms, → transferred {} ms), downloaded → next create {} ms (means)",
        secs(outside),
        sig(after_ready),
        sig(polling),
        sig(to_request),
        sig(transfer),
        sig(mean_ms(&gaps))
    )
}

/// Pulls a body on loopback with reqwest, optionally hashing it on the same task; MiB/s.
async fn pull(url: &str, token: &str, hash: bool) -> f64 {
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let started = Instant::now();
    let mut body = http
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .expect("download")
        .bytes_stream();
    let mut n = 0u64;
    let mut hasher = Sha256::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.expect("chunk");
        if hash {
            hasher.update(&chunk);
        }
        n += chunk.len() as u64;
    }
    std::hint::black_box(hasher.finalize());
    n as f64 / MIB / started.elapsed().as_secs_f64()
}

fn total_requests(stats: &Stats) -> u64 {
    stats.token_requests
        + stats.create_requests
        + stats.stored_list_requests
        + stats.download_requests
        + stats.delete_requests
}

// ---------------------------------------------------------------------------------------------
// The baseline: the vendor's example approach, with reqwest directly

struct Vendor {
    http: reqwest::Client,
    base: String,
    token: String,
}

/// One baseline report: how long its download + write + hash took.
struct VendorReport {
    download: Duration,
}

impl Vendor {
    async fn login(sandbox: &Sandbox) -> Vendor {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("http client");
        let base = format!("{}/api/2", sandbox.base_url());
        let answer: Value = http
            .post(format!("{base}/idp/token"))
            .basic_auth(sandbox.client_id(), Some(sandbox.client_secret()))
            .header("content-type", "application/x-www-form-urlencoded")
            .body("grant_type=client_credentials")
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("token")
            .json()
            .await
            .expect("token json");
        let token = answer["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        Vendor { http, base, token }
    }

    async fn create(&self, body: &Value) -> String {
        let answer: Value = self
            .http
            .post(format!("{}/reports", self.base))
            .bearer_auth(&self.token)
            .json(body)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("create")
            .json()
            .await
            .expect("create json");
        answer["id"].as_str().expect("report id").to_owned()
    }

    /// Sleep a fixed interval, list the stored files, until every format is saved.
    async fn wait_saved(&self, id: &str, formats: usize, every: Duration) -> Vec<String> {
        loop {
            tokio::time::sleep(every).await;
            let answer: Value = self
                .http
                .get(format!("{}/reports/{id}/stored", self.base))
                .bearer_auth(&self.token)
                .send()
                .await
                .and_then(reqwest::Response::error_for_status)
                .expect("stored list")
                .json()
                .await
                .expect("stored json");
            let saved: Vec<String> = answer["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|i| i["status"] == "saved")
                .filter_map(|i| i["id"].as_str().map(str::to_owned))
                .collect();
            if saved.len() >= formats {
                return saved;
            }
        }
    }

    fn download_url(&self, id: &str, stored: &str) -> String {
        format!("{}/reports/{id}/stored/{stored}", self.base)
    }

    /// `response.bytes()`, then write, then hash: the whole body in memory.
    async fn download_whole(&self, id: &str, stored: &str, dest: &Path) -> Duration {
        let started = Instant::now();
        let body = self
            .http
            .get(self.download_url(id, stored))
            .bearer_auth(&self.token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("download")
            .bytes()
            .await
            .expect("download body");
        std::fs::write(dest, &body).expect("write download");
        let _ = hex::encode(Sha256::digest(&body));
        started.elapsed()
    }

    /// One report start to end, as the vendor's example does it.
    async fn one_report(&self, body: &Value, every: Duration, dir: &Path) -> VendorReport {
        let id = self.create(body).await;
        let stored = self.wait_saved(&id, 1, every).await;
        let mut download = Duration::ZERO;
        for (i, s) in stored.iter().enumerate() {
            download += self
                .download_whole(&id, s, &dir.join(format!("{id}.{i}")))
                .await;
        }
        VendorReport { download }
    }
}

/// The baseline's download in a process of its own, so that its peak RSS can be measured:
/// `__baseline-fetch REPORT_ID STORED_ID DEST`, with the URL and token in the environment.
fn baseline_fetch_child(args: &[String]) {
    let [id, stored, dest] = args else {
        panic!("usage: {CHILD_MODE} REPORT_ID STORED_ID DEST");
    };
    let base = std::env::var("BENCH_CHILD_BASE").expect("BENCH_CHILD_BASE");
    let token = std::env::var("BENCH_CHILD_TOKEN").expect("BENCH_CHILD_TOKEN");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .expect("client");
        let t0 = Instant::now();
        let body = http
            .get(format!("{base}/reports/{id}/stored/{stored}"))
            .bearer_auth(&token)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .expect("download")
            .bytes()
            .await
            .expect("body");
        let t1 = Instant::now();
        std::fs::write(dest, &body).expect("write");
        let t2 = Instant::now();
        let sha = hex::encode(Sha256::digest(&body));
        let t3 = Instant::now();
        println!(
            "{} {} {} {} {sha}",
            body.len(),
            (t1 - t0).as_secs_f64(),
            (t2 - t1).as_secs_f64(),
            (t3 - t2).as_secs_f64()
        );
    });
}

// ---------------------------------------------------------------------------------------------
// The bench

struct Bench {
    env: Env,
    rt: tokio::runtime::Runtime,
    /// Removed at the end unless BENCH_KEEP is set.
    scratch: Scratch,
    sections: Vec<Section>,
    started: Instant,
}

/// Everything the `wall` and `connections` sections need from one wall run.
struct WallRun {
    n: usize,
    concurrency: usize,
    generation: Duration,
    ours: Proc,
    stats: Stats,
    base_n: usize,
    base_wall: f64,
    base_stats: Stats,
    base_download_median: f64,
}

impl Bench {
    fn new() -> Bench {
        let env = Env::read();
        assert!(
            env.bin.is_file(),
            "no binary at {}: build it (cargo build --release) or set BENCH_BIN",
            env.bin.display()
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let dir = tempfile::Builder::new()
            .prefix("acronis-reports-bench.")
            .tempdir()
            .expect("scratch folder");
        let scratch = if env.keep {
            Scratch::Kept(dir.keep())
        } else {
            Scratch::Temp(dir)
        };
        Bench {
            env,
            rt,
            scratch,
            sections: Vec::new(),
            started: Instant::now(),
        }
    }

    fn count(&self, full: usize, min: usize) -> usize {
        ((full as f64 * self.env.scale).round() as usize).max(min)
    }

    fn header(&self) {
        let cpu = std::fs::read_to_string("/proc/cpuinfo")
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("model name"))
                    .and_then(|l| l.split_once(':'))
                    .map(|(_, m)| m.trim().to_owned())
            })
            .unwrap_or_else(|| "unknown CPU".into());
        let cores = std::thread::available_parallelism().map_or(0, usize::from);
        println!("acronis-reports benchmark · {}", jiff::Timestamp::now());
        println!("machine: {cores} core(s), {cpu}");
        println!("binary:  {}", self.env.bin.display());
        println!(
            "knobs:   BENCH_SCALE={} BENCH_TIME_SCALE={} BENCH_POLL_JITTER={}{}",
            self.env.scale,
            self.env.time_scale,
            self.env.poll_jitter,
            if self.env.wrap.is_empty() {
                String::new()
            } else {
                format!(
                    " BENCH_WRAP=`{}` (peak RSS is the wrapper's)",
                    self.env.wrap.join(" ")
                )
            }
        );
        println!("scratch: {}", self.scratch.path().display());
        println!(
            "load:    {} (other work on the machine skews wall times and throughput)",
            loadavg()
        );
    }

    fn sandbox(&self, scenario: Scenario) -> Sb {
        let epoch = Instant::now();
        let sandbox = self
            .rt
            .block_on(Sandbox::start(scenario, 0))
            .expect("sandbox starts");
        Sb { sandbox, epoch }
    }

    fn stop(&self, sb: Sb) {
        self.rt.block_on(sb.sandbox.shutdown());
    }

    fn dir(&self, name: &str) -> PathBuf {
        let dir = self.scratch.path().join(name);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).expect("clear scratch subfolder");
        }
        std::fs::create_dir_all(&dir).expect("scratch subfolder");
        dir
    }

    /// The binary, with a clean environment pointed at `sandbox` if given.
    fn bin(&self, args: &[OsString], sandbox: Option<&Sandbox>) -> Command {
        let mut cmd = match self.env.wrap.split_first() {
            Some((program, rest)) => {
                let mut cmd = Command::new(program);
                cmd.args(rest).arg(&self.env.bin);
                cmd
            }
            None => Command::new(&self.env.bin),
        };
        cmd.args(args)
            .current_dir(self.scratch.path())
            .env_remove("RUST_LOG")
            .env_remove("ACRONIS_TOKEN")
            .env_remove("ACRONIS_BASE_URL")
            .env_remove("ACRONIS_CLIENT_ID")
            .env_remove("ACRONIS_CLIENT_SECRET")
            .env("NO_COLOR", "1");
        if let Some(sandbox) = sandbox {
            cmd.env("ACRONIS_BASE_URL", sandbox.base_url())
                .env("ACRONIS_CLIENT_ID", sandbox.client_id())
                .env("ACRONIS_CLIENT_SECRET", sandbox.client_secret());
        }
        cmd
    }

    /// `run JOB --out OUT --as-of AS_OF --fresh -q` against the sandbox.
    fn run_job(&self, name: &str, spec: &JobSpec, sb: &Sb) -> (Proc, PathBuf) {
        let dir = self.dir(name);
        let job = dir.join("job.yml");
        std::fs::write(&job, job_yaml(spec)).expect("write job");
        let out = dir.join("out");
        let args: Vec<OsString> = vec![
            "-q".into(),
            "run".into(),
            job.into(),
            "--out".into(),
            out.clone().into(),
            "--as-of".into(),
            AS_OF.into(),
            "--fresh".into(),
        ];
        let proc = run_process(self.bin(&args, Some(&sb.sandbox)), &dir);
        if proc.code != 0 {
            eprintln!(
                "warning: `run` of {name} exited {}:\n{}",
                proc.code,
                tail(&proc.stderr, 15)
            );
        }
        (proc, out)
    }

    fn section(&mut self, section: Section) {
        print_section(&section);
        self.sections.push(section);
    }

    // -- wall ----------------------------------------------------------------------------------

    fn wall_run(&self, n: usize, concurrency: usize, generation: Duration) -> WallRun {
        let concurrency = concurrency.min(n);
        eprintln!(
            "[wall] {n} reports, G = {generation:?} ±30 %, concurrency {concurrency}: running the binary…"
        );
        let scenario = Scenario {
            generation_delay: generation,
            generation_jitter: 0.3,
            ..Scenario::default()
        };
        let sb = self.sandbox(scenario.clone());
        let spec = JobSpec {
            tenants: n,
            concurrency,
            polling: None,
        };
        let (ours, _) = self.run_job("wall", &spec, &sb);
        let stats = sb.sandbox.stats();
        self.stop(sb);

        // The baseline: the same kind of reports, one at a time, fixed 2 s polls.
        let base_n = 5.min(n);
        eprintln!("[wall] baseline: {base_n} reports one at a time, fixed 2 s polls…");
        let sb = self.sandbox(scenario);
        let dir = self.dir("wall-baseline");
        let bodies = create_bodies(
            &dir.join("job.yml"),
            &job_yaml(&JobSpec {
                tenants: base_n,
                concurrency: 1,
                polling: None,
            }),
        );
        let (base_wall, downloads) = self.rt.block_on(async {
            let started = Instant::now();
            let vendor = Vendor::login(&sb.sandbox).await;
            let mut downloads = Vec::new();
            for body in &bodies {
                let r = vendor.one_report(body, Duration::from_secs(2), &dir).await;
                downloads.push(r.download.as_secs_f64());
            }
            (started.elapsed().as_secs_f64(), downloads)
        });
        let base_stats = sb.sandbox.stats();
        self.stop(sb);
        WallRun {
            n,
            concurrency,
            generation,
            ours,
            stats,
            base_n,
            base_wall,
            base_stats,
            base_download_median: median(&downloads),
        }
    }

    fn wall_section(&mut self, w: &WallRun) {
        let g = w.generation.as_secs_f64();
        let rounds = (w.n as f64 / w.concurrency as f64).max(1.0);
        let t_dl = w.base_download_median;
        let ideal = rounds * (g + t_dl);
        let durations: Vec<f64> = w
            .stats
            .reports
            .iter()
            .map(|r| r.ready_us.saturating_sub(r.created_us) as f64 / 1e6 + t_dl)
            .collect();
        let floor = greedy_makespan(&durations, w.concurrency);
        let ours = w.ours.wall.as_secs_f64();
        let base = w.base_wall * w.n as f64 / w.base_n as f64;
        let ratio = ours / ideal;
        let polls = w.stats.stored_list_requests as f64 / w.n as f64;
        let base_polls = w.base_stats.stored_list_requests as f64 / w.base_n as f64;
        let lags = lags_pct(&w.stats.reports, w.generation);
        let base_lags = lags_pct(&w.base_stats.reports, w.generation);
        let ok = w.ours.code == 0 && w.stats.reports.len() == w.n;
        let (first_wave, later) = waves(&w.stats.reports, w.concurrency);
        let rows = vec![
            row(
                "wall time",
                secs(ours),
                format!("{} (extrapolated ×{})", secs(base), w.n / w.base_n),
            )
            .vs(ours, base)
            .check(
                format!("{}× ideal", sig(ratio)),
                "≤ 1.10× ideal",
                ok && ratio <= 1.10,
            ),
            row("ideal: N/C × (G + download)", secs(ideal), "")
                .info(format!("download {} ms (baseline median)", sig(t_dl * 1e3))),
            row("floor: greedy, same draws, zero lag", secs(floor), "")
                .info(format!("ours {}× floor", sig(ours / floor))),
            row("floor → ours: where the time goes", "", "").info(above_floor(w)),
            row("polls / report", sig(polls), sig(base_polls)).vs(polls, base_polls),
            row(
                "first wave / later waves",
                format!(
                    "{} / {}",
                    wave(&first_wave, w.generation),
                    wave(&later, w.generation)
                ),
                "",
            )
            .info(format!("{} + {} reports", first_wave.len(), later.len())),
            row(
                "lag saved → download, median",
                format!("{} % G", sig(median(&lags))),
                format!("{} % G", sig(median(&base_lags))),
            ),
            row(
                "lag saved → download, p95",
                format!("{} % G", sig(percentile(&lags, 0.95))),
                format!("{} % G", sig(percentile(&base_lags, 0.95))),
            ),
            row(
                "peak RSS (binary)",
                w.ours.max_rss_kib.map_or("?".into(), mib),
                "in-process",
            ),
            row(
                "CPU time (binary)",
                w.ours.cpu.map_or("?".into(), |c| secs(c.as_secs_f64())),
                "",
            )
            .info(format!("exit {}", w.ours.code)),
        ];
        let notes = vec![
            format!(
                "{} reports × csv_v2_0, sandbox G = {g} s with uniform jitter ±30 %, concurrency {}, the job's default polling (5s / 60s); the binary's own wall time, process start to exit.",
                w.n, w.concurrency
            ),
            format!(
                "baseline: {} reports one at a time, fixed 2 s polls, `bytes()` then write then hash; its wall time is extrapolated linearly to {} reports.",
                w.base_n, w.n
            ),
            "ideal = N/C × (G + one download), the issue's definition. floor = greedy list scheduling of the sandbox's actual generation times (+ one download each) on C slots with zero polling lag: what a perfect poller could reach with these draws.".into(),
        ];
        self.section(Section {
            case: "wall",
            title: format!(
                "wall: {} reports, G = {g} s ±30 %, concurrency {}",
                w.n, w.concurrency
            ),
            rows,
            notes,
        });
    }

    fn connections_section(&mut self, w: &WallRun) {
        let requests = total_requests(&w.stats);
        let base_requests = total_requests(&w.base_stats);
        let conns = w.stats.connections;
        let per_c = conns as f64 / w.concurrency as f64;
        let rows = vec![
            row(
                "TCP connections",
                conns.to_string(),
                w.base_stats.connections.to_string(),
            )
            .check(
                format!("{}× concurrency", sig(per_c)),
                "≤ 1.2× concurrency",
                per_c <= 1.2,
            ),
            row(
                "requests",
                requests.to_string(),
                format!("{base_requests} ({} reports)", w.base_n),
            )
            .info(format!(
                "{} requests / connection",
                sig(requests as f64 / conns.max(1) as f64)
            )),
            row(
                "requests / report",
                sig(requests as f64 / w.n as f64),
                sig(base_requests as f64 / w.base_n as f64),
            )
            .vs(
                requests as f64 / w.n as f64,
                base_requests as f64 / w.base_n as f64,
            ),
        ];
        let notes = vec![
            format!(
                "counted by the sandbox (TCP connections accepted) during the wall run: {} reports, concurrency {}.",
                w.n, w.concurrency
            ),
            "HTTP/2: the sandbox speaks plain HTTP/1.1 on loopback, so this run is HTTP/1.1 with keep-alive. The client is built with reqwest's `http2` feature and rustls, so against an https:// data center that offers h2 via ALPN it uses HTTP/2 (one multiplexed connection per host); h2c over plain http is not attempted.".into(),
            "baseline: one reqwest::Client (pooled), one report at a time, so one connection; a client without a session would open one per request.".into(),
        ];
        self.section(Section {
            case: "connections",
            title: "connections: keep-alive reuse".into(),
            rows,
            notes,
        });
    }

    // -- polls ---------------------------------------------------------------------------------

    fn polls(&mut self) {
        let ts = self.env.time_scale;
        let jitter = self.env.poll_jitter;
        let n = self.count(200, 8);
        let concurrency = (n / 4).max(1);
        let scaled = |d: Duration| d.mul_f64(ts);
        let fixed = scaled(Duration::from_secs(2));
        let mut rows = Vec::new();
        for real in [20u64, 90] {
            let g = scaled(Duration::from_secs(real));
            eprintln!(
                "[polls] G = {real} s (scaled: {g:?}), {n} reports, concurrency {concurrency}: running the binary…"
            );
            let scenario = Scenario {
                generation_delay: g,
                generation_jitter: jitter,
                ..Scenario::default()
            };
            let sb = self.sandbox(scenario.clone());
            let spec = JobSpec {
                tenants: n,
                concurrency,
                polling: Some((
                    scaled(Duration::from_secs(5)),
                    scaled(Duration::from_secs(60)),
                    scaled(Duration::from_secs(30 * 60)),
                )),
            };
            let (ours, _) = self.run_job(&format!("polls-{real}"), &spec, &sb);
            let stats = sb.sandbox.stats();
            self.stop(sb);

            let base_n = 3.min(n);
            eprintln!(
                "[polls] baseline: {base_n} reports one at a time, fixed {fixed:?} polls (2 s scaled)…"
            );
            let sb = self.sandbox(scenario);
            let dir = self.dir(&format!("polls-{real}-baseline"));
            let bodies = create_bodies(
                &dir.join("job.yml"),
                &job_yaml(&JobSpec {
                    tenants: base_n,
                    concurrency: 1,
                    polling: None,
                }),
            );
            self.rt.block_on(async {
                let vendor = Vendor::login(&sb.sandbox).await;
                for body in &bodies {
                    vendor.one_report(body, fixed, &dir).await;
                }
            });
            let base_stats = sb.sandbox.stats();
            self.stop(sb);

            let polls = stats.stored_list_requests as f64 / n as f64;
            let base_polls = base_stats.stored_list_requests as f64 / base_n as f64;
            let per_report: Vec<f64> = stats
                .reports
                .iter()
                .map(|r| r.stored_list_requests as f64)
                .collect();
            let lags = lags_pct(&stats.reports, g);
            let base_lags = lags_pct(&base_stats.reports, g);
            let ok = ours.code == 0 && lags.len() == n;
            let p50 = median(&lags);
            let p95 = percentile(&lags, 0.95);
            rows.push(
                row(
                    format!("G={real}s: polls / report"),
                    format!("{} (max {})", sig(polls), percentile(&per_report, 1.0)),
                    sig(base_polls),
                )
                .vs(polls, base_polls)
                .check(
                    format!("{}× fixed-2s", sig(polls / base_polls)),
                    "≤ 0.25× fixed-2s",
                    ok && polls <= 0.25 * base_polls,
                ),
            );
            rows.push(
                row(
                    format!("G={real}s: lag saved → download, median"),
                    format!("{} % G", sig(p50)),
                    format!("{} % G", sig(median(&base_lags))),
                )
                .check(format!("{} % G", sig(p50)), "≤ 10 % G", ok && p50 <= 10.0),
            );
            rows.push(
                row(
                    format!("G={real}s: lag saved → download, p95"),
                    format!("{} % G", sig(p95)),
                    format!("{} % G", sig(percentile(&base_lags, 0.95))),
                )
                .check(format!("{} % G", sig(p95)), "≤ 10 % G", ok && p95 <= 10.0),
            );
            // The first wave runs blind; later ones can aim at what it taught.
            let (first_wave, later) = waves(&stats.reports, concurrency);
            rows.push(
                row(
                    format!("G={real}s: first wave / later waves"),
                    format!("{} / {}", wave(&first_wave, g), wave(&later, g)),
                    "",
                )
                .info(format!("{} + {} reports", first_wave.len(), later.len())),
            );
            let gs = g.as_secs_f64();
            let ideal = (n as f64 / concurrency as f64) * gs;
            rows.push(
                row(
                    format!("G={real}s: wall time (scaled)"),
                    secs(ours.wall.as_secs_f64()),
                    format!(
                        "{} / report, one at a time",
                        secs(median_turnaround(&base_stats.reports))
                    ),
                )
                .info(format!(
                    "{}× N/C×G; {} / report; exit {}",
                    sig(ours.wall.as_secs_f64() / ideal),
                    secs(median_turnaround(&stats.reports)),
                    ours.code
                )),
            );
        }
        let notes = vec![
            format!(
                "time-scaled by {ts}: sandbox G = 20 s → {} s and 90 s → {} s; the job's polling is the documented default scaled the same way (initial_interval 5s → {} ms, max_interval 60s → {} ms, timeout 30m → {} s); the baseline's fixed 2 s polls → {} ms. Polls/report and lag in % of G are invariant under the scaling (loopback round trips are ~1 ms, < 1 % of the smallest scaled interval).",
                20.0 * ts,
                90.0 * ts,
                5000.0 * ts,
                60000.0 * ts,
                1800.0 * ts,
                2000.0 * ts
            ),
            format!(
                "{n} reports at concurrency {concurrency} (four waves, so later reports could learn from earlier ones); generation jitter ±{} % (BENCH_POLL_JITTER). Baseline: 3 reports one at a time.",
                jitter * 100.0
            ),
            "lag = first download request − (creation + the report's drawn generation time), both by the sandbox's clock (CreatedReport.first_download_us − ready_us).".into(),
            "feasibility: with uniform jitter ±j, the ready time of a report falls in a window of 2j·G; keeping every lag ≤ 0.1·G needs polls at most 0.1·G apart across that window, i.e. ≥ 20j polls, while the budget at G = 20 s is 2.5 polls (¼ of 10). So the two targets can both hold only for j ≲ 0.1 at G = 20 s; at j = 0.3 (the wall case's jitter) they conflict.".into(),
        ];
        self.section(Section {
            case: "polls",
            title: format!("polls: G = 20 s and 90 s, time-scaled ×{ts}"),
            rows,
            notes,
        });
    }

    // -- history -------------------------------------------------------------------------------

    /// Two months into one trail: month one knows nothing, month two has month one's times.
    fn history(&mut self) {
        let n = self.count(60, 20);
        let concurrency = 10.min(n);
        // Real partners: a fixed part, then a heavy tail, the same tenant as slow every month.
        let scenario = Scenario {
            generation_delay: Duration::from_millis(1200),
            generation_spread: 1.15,
            generation_floor: Duration::from_millis(500),
            ..Scenario::default()
        };
        let dir = self.dir("history");
        let out = dir.join("out");
        let spec = JobSpec {
            tenants: n,
            concurrency,
            // The documented defaults (5s / 60s / 30m) on the same ×0.1 scale as the times.
            polling: Some((
                Duration::from_millis(500),
                Duration::from_secs(6),
                Duration::from_secs(180),
            )),
        };
        let mut months = Vec::new();
        for period in ["2026-09", "2026-10"] {
            eprintln!(
                "[history] {period}: {n} reports, heavy-tailed per-tenant times, concurrency {concurrency}: running the binary…"
            );
            let job = dir.join(format!("job-{period}.yml"));
            let yaml = job_yaml(&spec).replace(
                &format!("periods: [{PERIOD}]"),
                &format!("periods: [{period}]"),
            );
            std::fs::write(&job, yaml).expect("write job");
            let sb = self.sandbox(scenario.clone());
            let args: Vec<OsString> = vec![
                "-q".into(),
                "run".into(),
                job.into(),
                "--out".into(),
                out.clone().into(),
                "--as-of".into(),
                AS_OF.into(),
            ];
            let proc = run_process(self.bin(&args, Some(&sb.sandbox)), &dir);
            if proc.code != 0 {
                eprintln!(
                    "warning: `run` of {period} exited {}:\n{}",
                    proc.code,
                    tail(&proc.stderr, 15)
                );
            }
            let stats = sb.sandbox.stats();
            self.stop(sb);
            months.push((period, proc, stats));
        }
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        for (i, (period, proc, stats)) in months.iter().enumerate() {
            let second = i == 1;
            let label = format!("month {} ({period})", i + 1);
            let m = HistoryMonth::of(stats, concurrency);
            let ok = proc.code == 0 && m.lags.len() == n;
            let wall = proc.wall.as_secs_f64();
            let ratio = wall / m.longest_first;
            let wall_row = row(
                format!("{label}: wall ÷ longest-first makespan"),
                secs(wall),
                secs(m.longest_first),
            )
            .vs(wall, m.longest_first);
            rows.push(if second {
                wall_row.check(format!("{}×", sig(ratio)), "≤ 1.10×", ok && ratio <= 1.10)
            } else {
                wall_row.info(format!(
                    "{}× (plan order, zero lag: {})",
                    sig(ratio),
                    secs(m.plan_order)
                ))
            });
            let polls_row = row(
                format!("{label}: polls / report"),
                format!("{} (max {})", sig(m.polls), m.max_polls),
                format!("{} (fixed, 5 % of median)", sig(m.fixed_polls)),
            )
            .vs(m.polls, m.fixed_polls);
            let share = m.polls / m.fixed_polls;
            rows.push(if second {
                polls_row.check(
                    format!("{}× fixed", sig(share)),
                    "≤ 0.25× fixed",
                    ok && share <= 0.25,
                )
            } else {
                polls_row.info(format!("{}× fixed", sig(share)))
            });
            let p95 = percentile(&m.lags, 0.95);
            let lag_row = row(
                format!("{label}: lag saved → download, p95 of own time"),
                format!("{} %", sig(p95)),
                "",
            );
            rows.push(if second {
                lag_row.check(
                    format!("{} % (median {} %)", sig(p95), sig(median(&m.lags))),
                    "≤ 10 %",
                    ok && p95 <= 10.0,
                )
            } else {
                lag_row.info(format!(
                    "median {} %; exit {}",
                    sig(median(&m.lags)),
                    proc.code
                ))
            });
            if second {
                rows.push(
                    row(
                        format!("{label}: start order"),
                        format!(
                            "{} of the {concurrency} slowest in the first wave",
                            m.slowest_first
                        ),
                        "",
                    )
                    .info(format!("exit {}", proc.code)),
                );
                if let Some(line) = std::fs::read_to_string(out.join("summary.md"))
                    .ok()
                    .and_then(|t| {
                        t.lines()
                            .find(|l| l.starts_with("This run took"))
                            .map(str::to_owned)
                    })
                {
                    notes.push(format!("the binary's own summary (month two): {line}"));
                }
            } else {
                notes.push(format!(
                    "true generation times (sandbox, the same both months): min {}, median {}, max {}, sum {}; longest-first makespan on {concurrency} slots {}, plan order {}",
                    secs(m.min),
                    secs(m.median),
                    secs(m.max),
                    secs(m.sum),
                    secs(m.longest_first),
                    secs(m.plan_order)
                ));
            }
        }
        notes.push("sandbox: generation_delay 1.2 s (the median), generation_spread 1.15 (log-normal σ), generation_floor 500 ms, no jitter: each tenant's time is drawn once from its id, so month two's tenants take what they took in month one. Job polling: 500ms / 6s / 3min (the defaults ×0.1, as in `polls`). Both months write into one output folder: month two reads month one's `2026-09/manifest.json`.".into());
        notes.push("longest-first makespan: the true times sorted longest first, then greedy list scheduling on the slots with zero polling lag (what a perfect client reaches); fixed polling: ceil(t ÷ (0.05 × median t)) polls per report; lag: first download request − ready, as a share of that report's own generation time.".into());
        self.section(Section {
            case: "history",
            title: format!("history: {n} tenants, heavy-tailed times, two months into one trail"),
            rows,
            notes,
        });
    }

    // -- stream --------------------------------------------------------------------------------

    fn stream(&mut self) {
        let scale = self.env.scale.min(1.0);
        let sizes: Vec<u64> = [100.0, 1024.0]
            .iter()
            .map(|m: &f64| ((m * scale).round() as u64).max(16))
            .collect();
        let mut rows = Vec::new();
        let mut notes = Vec::new();
        let mut rss = Vec::new();
        let mut base_rss = Vec::new();
        let mut last_file: Option<(PathBuf, u64, String)> = None;
        let mut ours_tput = Vec::new();
        // The binary's user + system CPU seconds of each run, whole (download to exit).
        let mut ours_cpu = Vec::new();
        let mut ceiling = None;
        for (i, size_mib) in sizes.iter().enumerate() {
            let pad = size_mib * 1024 * 1024;
            let label = size_label(*size_mib);
            eprintln!("[stream] {label}: the binary…");
            let scenario = Scenario {
                generation_delay: Duration::ZERO,
                gzip: false,
                pad_bytes: pad,
                ..Scenario::default()
            };
            let sb = self.sandbox(scenario);
            let spec = JobSpec {
                tenants: 1,
                concurrency: 1,
                polling: Some((
                    Duration::from_millis(50),
                    Duration::from_millis(50),
                    Duration::from_secs(600),
                )),
            };
            let (ours, out) = self.run_job(&format!("stream-{size_mib}"), &spec, &sb);
            let stats = sb.sandbox.stats();
            let report = stats.reports.first().cloned();
            let exit_us = sb.us(ours.exited_at);
            let (file, sha) = report_file(&out).unwrap_or_default();
            // Without SHA256SUMS the run failed before billing.csv: any .csv is the report.
            let file = file.or_else(|| find_file(&out, "csv"));
            let bytes = file
                .as_ref()
                .and_then(|f| std::fs::metadata(f).ok())
                .map_or(0, |m| m.len());
            let (dl_s, e2e_s) = match &report {
                Some(CreatedReport {
                    first_download_us: Some(first),
                    download_done_us: Some(done),
                    ..
                }) => (
                    done.saturating_sub(*first) as f64 / 1e6,
                    exit_us.saturating_sub(*first) as f64 / 1e6,
                ),
                _ => (f64::NAN, f64::NAN),
            };
            let tput = bytes as f64 / MIB / dl_s;
            let e2e = bytes as f64 / MIB / e2e_s;
            ours_tput.push(tput);

            // The baseline's download, in a process of its own.
            eprintln!("[stream] {label}: the baseline (bytes() in a child process)…");
            let dir = self.dir(&format!("stream-{size_mib}-baseline"));
            let bodies = create_bodies(
                &dir.join("job.yml"),
                &job_yaml(&JobSpec {
                    tenants: 1,
                    concurrency: 1,
                    polling: None,
                }),
            );
            let (vendor_token, vendor_base, id, stored) = self.rt.block_on(async {
                let vendor = Vendor::login(&sb.sandbox).await;
                let id = vendor.create(&bodies[0]).await;
                let stored = vendor
                    .wait_saved(&id, 1, Duration::from_millis(50))
                    .await
                    .remove(0);
                (vendor.token.clone(), vendor.base.clone(), id, stored)
            });
            let mut cmd = Command::new(std::env::current_exe().expect("own path"));
            cmd.arg(CHILD_MODE)
                .arg(&id)
                .arg(&stored)
                .arg(dir.join("baseline.csv"))
                .env("BENCH_CHILD_BASE", &vendor_base)
                .env("BENCH_CHILD_TOKEN", &vendor_token);
            let base = run_process(cmd, &dir);
            let parts: Vec<&str> = base.stdout.split_whitespace().collect();
            let num = |i: usize| parts.get(i).and_then(|p| p.parse::<f64>().ok());
            let (base_bytes, b_dl, b_wr, b_hash) = (
                num(0).unwrap_or(0.0),
                num(1).unwrap_or(f64::NAN),
                num(2).unwrap_or(f64::NAN),
                num(3).unwrap_or(f64::NAN),
            );
            if base.code != 0 {
                eprintln!(
                    "warning: baseline child exited {}: {}",
                    base.code,
                    tail(&base.stderr, 5)
                );
            }
            let base_tput = base_bytes / MIB / (b_dl + b_wr + b_hash);
            let same = parts.get(4).is_some_and(|s| *s == sha);

            // What the sandbox can serve at all: a client that discards the bytes; and what
            // receiving plus SHA-256 alone reach on these cores, beside the sandbox.
            if i + 1 == sizes.len() {
                let url = format!("{vendor_base}/reports/{id}/stored/{stored}");
                eprintln!(
                    "[stream] {label}: references (curl piped to openssl; a discarding, then a hashing client)…"
                );
                // The same two steps as plain tools in a pipe, for a reference outside Rust.
                let mut piped = Command::new("sh");
                piped
                    .args([
                        "-c",
                        "curl -sf -H \"Authorization: Bearer $BENCH_TOKEN\" \"$BENCH_URL\" | openssl dgst -sha256",
                    ])
                    .env("BENCH_TOKEN", &vendor_token)
                    .env("BENCH_URL", &url);
                let piped = run_process(piped, self.scratch.path());
                // CPU of the pipe: the shell's rusage counts its children, curl and openssl.
                let piped = (piped.code == 0 && piped.stdout.contains(&sha)).then(|| {
                    (
                        bytes as f64 / MIB / piped.wall.as_secs_f64(),
                        piped.cpu.map_or(f64::NAN, |c| c.as_secs_f64()),
                    )
                });
                ceiling = Some((
                    self.rt.block_on(pull(&url, &vendor_token, false)),
                    self.rt.block_on(pull(&url, &vendor_token, true)),
                    piped,
                ));
            }
            self.stop(sb);

            rss.push(ours.max_rss_kib.unwrap_or(0));
            base_rss.push(base.max_rss_kib.unwrap_or(0));
            let ours_rss = ours.max_rss_kib.unwrap_or(0);
            rows.push(
                row(
                    format!("{label}: download + hash (+ write)"),
                    format!("{} MiB/s", sig(tput)),
                    format!("{} MiB/s", sig(base_tput)),
                )
                .vs(tput, base_tput)
                .info(format!(
                    "ours {} s, baseline {} s (get {} + write {} + hash {})",
                    sig(dl_s),
                    sig(b_dl + b_wr + b_hash),
                    sig(b_dl),
                    sig(b_wr),
                    sig(b_hash)
                )),
            );
            rows.push(
                row(
                    format!("{label}: first download → exit"),
                    format!("{} MiB/s", sig(e2e)),
                    "",
                )
                .info(format!(
                    "{} s incl. fsync, billing.csv (from the lines the check kept), manifest",
                    sig(e2e_s)
                )),
            );
            rows.push(
                row(
                    format!("{label}: peak RSS"),
                    mib(ours_rss),
                    mib(base.max_rss_kib.unwrap_or(0)),
                )
                .vs(ours_rss as f64, base.max_rss_kib.unwrap_or(0) as f64)
                .check(
                    mib(ours_rss),
                    "≤ 32 MiB",
                    ours.code == 0 && ours_rss > 0 && ours_rss <= 32 * 1024,
                ),
            );
            ours_cpu.push(ours.cpu.map_or(f64::NAN, |c| c.as_secs_f64()));
            rows.push(
                row(
                    format!("{label}: CPU time"),
                    ours.cpu.map_or("?".into(), |c| secs(c.as_secs_f64())),
                    base.cpu.map_or("?".into(), |c| secs(c.as_secs_f64())),
                )
                .info(format!(
                    "exit {}; same sha256 as baseline: {}",
                    ours.code,
                    if same { "yes" } else { "NO" }
                )),
            );
            if let Some(file) = file {
                // Keep only the biggest file, for openssl.
                if let Some((old, _, _)) = last_file.replace((file, bytes, sha)) {
                    let _ = std::fs::remove_file(old);
                }
            }
            let _ = std::fs::remove_file(dir.join("baseline.csv"));
        }

        // openssl (and sha256sum) on the same bytes, warm in the page cache.
        let Some((file, bytes, sha)) = last_file else {
            self.section(Section {
                case: "stream",
                title: "stream".into(),
                rows,
                notes: vec!["the binary wrote no file; see the warnings above".into()],
            });
            return;
        };
        warm_cache(&file);
        let label = size_label(sizes[sizes.len() - 1]);
        // Best of 3: the wall time, the CPU time (user + system, by the kernel's accounting of
        // the child, not its wall time) and the output of the best wall time.
        let tool = |program: &str, args: &[&str]| -> Option<(f64, f64, String)> {
            let mut best: Option<(f64, f64, String)> = None;
            for _ in 0..3 {
                let mut cmd = Command::new(program);
                cmd.args(args).arg(&file);
                let p = run_process(cmd, self.scratch.path());
                if p.code != 0 {
                    return None;
                }
                let t = p.wall.as_secs_f64();
                let cpu = p.cpu.map_or(f64::NAN, |c| c.as_secs_f64());
                best = Some(match best {
                    Some((b, c, out)) if b <= t => (b, c.min(cpu), out),
                    Some((_, c, _)) => (t, c.min(cpu), p.stdout),
                    None => (t, cpu, p.stdout),
                });
            }
            best
        };
        let openssl = tool("openssl", &["dgst", "-sha256"]);
        let sha256sum = tool("sha256sum", &[]);
        let (reference, reference_cpu, reference_name, digest) = match (&openssl, &sha256sum) {
            (Some((t, cpu, out)), _) => (
                bytes as f64 / MIB / t,
                *cpu,
                "openssl dgst -sha256",
                out.clone(),
            ),
            (None, Some((t, cpu, out))) => {
                notes.push("openssl is not installed: compared with sha256sum instead.".into());
                (bytes as f64 / MIB / t, *cpu, "sha256sum", out.clone())
            }
            (None, None) => (f64::NAN, f64::NAN, "none", String::new()),
        };
        let gib = bytes as f64 / (MIB * 1024.0);
        let big = ours_tput.last().copied().unwrap_or(f64::NAN);
        // Issue 20: the whole run's CPU per GiB against hashing the same bytes.
        let (cpu, cpu_ref) = (
            ours_cpu.last().copied().unwrap_or(f64::NAN) / gib,
            reference_cpu / gib,
        );
        rows.push(
            row(
                format!("{label}: CPU per GiB, whole run"),
                format!("{} s", sig(cpu)),
                format!("{} s ({reference_name})", sig(cpu_ref)),
            )
            .vs(cpu, cpu_ref)
            .check(
                format!("{}× {reference_name}", sig(cpu / cpu_ref)),
                "≤ 3×",
                cpu / cpu_ref <= 3.0,
            ),
        );
        let piped = ceiling.and_then(|(_, _, piped)| piped);
        if let Some((piped, piped_cpu)) = piped {
            rows.push(
                row(
                    format!("{label}: download vs curl piped to {reference_name}"),
                    format!("{} MiB/s", sig(big)),
                    format!("{} MiB/s", sig(piped)),
                )
                .vs(big, piped)
                .check(
                    format!(
                        "{}× the pipe (which took {} s of CPU)",
                        sig(big / piped),
                        sig(piped_cpu)
                    ),
                    "> 1×",
                    big > piped,
                ),
            );
        }
        // The target of issue 6, retired by issue 20: out of reach with the server on the same
        // 2 cores (see BENCHMARKS.md).
        rows.push(
            row(
                format!("{label}: ours vs {reference_name}"),
                format!("{} MiB/s", sig(big)),
                format!("{} MiB/s", sig(reference)),
            )
            .vs(big, reference)
            .info(format!(
                "{}× {reference_name} (the retired ≥ 0.8× target)",
                sig(big / reference)
            )),
        );
        if let Some((t, _, _)) = &sha256sum {
            rows.push(
                row(
                    "sha256sum on the same bytes",
                    format!("{} MiB/s", sig(bytes as f64 / MIB / t)),
                    "",
                )
                .info("reference"),
            );
        }
        if let Some((discard, hash, piped)) = ceiling {
            rows.push(
                row(
                    "sandbox ceiling (client discards)",
                    format!("{} MiB/s", sig(discard)),
                    "",
                )
                .info("loopback + sandbox, no hashing"),
            );
            rows.push(
                row(
                    "receive + SHA-256 only, one task",
                    format!("{} MiB/s", sig(hash)),
                    "",
                )
                .info(format!(
                    "{}× openssl: no check, no write",
                    sig(hash / reference)
                )),
            );
            if let Some((piped, _)) = piped {
                rows.push(
                    row(
                        "curl piped to openssl dgst -sha256",
                        format!("{} MiB/s", sig(piped)),
                        "",
                    )
                    .info(format!(
                        "{}× openssl: the same two steps as plain tools, no check, no write",
                        sig(piped / reference)
                    )),
                );
            }
        }
        if rss.len() >= 2 {
            let (a, b) = (rss[0] as f64, rss[rss.len() - 1] as f64);
            let (ba, bb) = (base_rss[0] as f64, base_rss[base_rss.len() - 1] as f64);
            rows.push(
                row(
                    format!("RSS growth {} → {label}", size_label(sizes[0])),
                    format!("{}×", sig(b / a)),
                    format!("{}×", sig(bb / ba)),
                )
                .check(format!("{}×", sig(b / a)), "≤ 1.10× (flat)", b / a <= 1.10),
            );
        }
        let matches = digest.contains(&sha) && !sha.is_empty();
        notes.push("one stored csv_v2_0 report padded by the sandbox (pad_bytes), G = 0, gzip off (bodies over 8 MiB are streamed uncompressed anyway); the sandbox runs in the bench process, the binary and the baseline each in a process of their own (peak RSS from wait4).".into());
        notes.push("ours = bytes / (download_done_us − first_download_us) on the sandbox's clock: the time the binary took to pull, hash, check and write the body. baseline = bytes / (get with bytes() + write + hash), timed inside its process.".into());
        notes.push("CPU per GiB = user + system CPU seconds (rusage of the process, from wait4) ÷ the report's GiB: the binary's whole run (download, hash, checks, billing.csv, the other outputs), openssl's digest of the same file (the least of 3 runs); the sandbox serving the file is not counted.".into());
        notes.push(format!(
            "{reference_name} was timed on the binary's own output file (best of 3, warm page cache); its digest {} the binary's SHA256SUMS entry.",
            if matches { "matches" } else { "does NOT match" }
        ));
        let _ = std::fs::remove_file(&file);
        self.section(Section {
            case: "stream",
            title: format!("stream: {} and {label}, loopback", size_label(sizes[0])),
            rows,
            notes,
        });
    }

    // -- scale ---------------------------------------------------------------------------------

    fn scale(&mut self) {
        let dir = self.dir("scale");
        let tenants = 10_000;
        eprintln!("[scale] validate and plan of a {tenants}-tenant job…");
        let spec = JobSpec {
            tenants,
            concurrency: 200,
            polling: Some((
                Duration::from_millis(50),
                Duration::from_millis(200),
                Duration::from_secs(600),
            )),
        };
        let yaml = job_yaml(&spec);
        let job = dir.join("job.yml");
        std::fs::write(&job, &yaml).expect("write job");
        let measure = |args: &[&str]| -> (f64, u64, i32) {
            let mut walls = Vec::new();
            let mut rss = 0;
            let mut code = 0;
            for _ in 0..5 {
                let mut full: Vec<OsString> = args.iter().map(OsString::from).collect();
                if args.first() != Some(&"--version") {
                    full.push(job.clone().into());
                    full.push("--as-of".into());
                    full.push(AS_OF.into());
                }
                let p = run_process(self.bin(&full, None), &dir);
                walls.push(p.wall.as_secs_f64());
                rss = rss.max(p.max_rss_kib.unwrap_or(0));
                code = code.max(p.code);
            }
            (median(&walls), rss, code)
        };
        let (v_t, v_rss, v_code) = measure(&["validate"]);
        let (p_t, p_rss, p_code) = measure(&["plan"]);
        let (j_t, j_rss, j_code) = measure(&["plan", "--json"]);
        let (f_t, f_rss, _) = measure(&["--version"]);
        // The floor of reading the file at all: an untyped YAML parse, in process.
        let mut parse = Vec::new();
        for _ in 0..3 {
            let t = Instant::now();
            let value: Value = serde_saphyr::from_str(&yaml).expect("yaml parses");
            std::hint::black_box(value);
            parse.push(t.elapsed().as_secs_f64());
        }
        let parse = median(&parse);
        let floor_t = f_t + parse;
        let ms = |t: f64| format!("{} ms", sig(t * 1e3));
        let mut rows = Vec::new();
        for (name, t, rss, code) in [
            ("validate", v_t, v_rss, v_code),
            ("plan", p_t, p_rss, p_code),
            ("plan --json", j_t, j_rss, j_code),
        ] {
            rows.push(
                row(
                    format!("{name}: wall"),
                    ms(t),
                    format!("{} (floor)", ms(floor_t)),
                )
                .vs(t, floor_t)
                .check(ms(t), "< 200 ms", code == 0 && t < 0.2),
            );
            rows.push(
                row(
                    format!("{name}: peak RSS"),
                    mib(rss),
                    format!("{} (floor)", mib(f_rss)),
                )
                .vs(rss as f64, f_rss as f64)
                .check(mib(rss), "< 100 MiB", code == 0 && rss < 100 * 1024),
            );
        }

        // A run's memory stays flat with the number of reports: checked within the largest run
        // (its peak against the peak reached by half-time, when about half its reports are
        // done), and shown across runs. A 1 000-report run at G = 50 ms ends after about 1.5 s,
        // before its 200 connections' buffers and the blocking pool reach their steady size,
        // so it shows warm-up and the job's size along with any growth per report.
        let big = self.count(10_000, 100);
        let mid = self.count(5_000, 50);
        let small = self.count(1_000, 10);
        let mut runs = Vec::new();
        for n in [small, mid, big] {
            eprintln!("[scale] a {n}-report run (G = 50 ms, concurrency 200)…");
            let scenario = Scenario {
                generation_delay: Duration::from_millis(50),
                ..Scenario::default()
            };
            let sb = self.sandbox(scenario);
            let spec = JobSpec {
                tenants: n,
                concurrency: 200,
                polling: Some((
                    Duration::from_millis(50),
                    Duration::from_millis(200),
                    Duration::from_secs(600),
                )),
            };
            let (p, out) = self.run_job(&format!("scale-run-{n}"), &spec, &sb);
            let stats = sb.sandbox.stats();
            self.stop(sb);
            // Loading an n-tenant job costs memory of its own, before any report runs: the
            // run's own growth is what it adds on top of `validate` of the same file.
            let run_dir = out.parent().unwrap_or(&out).to_path_buf();
            let validate: Vec<OsString> = vec![
                "validate".into(),
                run_dir.join("job.yml").into(),
                "--as-of".into(),
                AS_OF.into(),
            ];
            let v = run_process(self.bin(&validate, None), &run_dir);
            let _ = std::fs::remove_dir_all(&run_dir);
            let rss = p.max_rss_kib.unwrap_or(0) as f64;
            runs.push((n, p, stats, rss, v.max_rss_kib.unwrap_or(0) as f64));
        }
        let (n1, p1, _, r1, v1) = &runs[0];
        let (nm, pm, _, rm, _) = &runs[1];
        let (n2, p2, s2, r2, v2) = &runs[2];
        let all_ok = p1.code == 0 && pm.code == 0 && p2.code == 0;
        let per_report = |(ra, na): (f64, usize), (rb, nb): (f64, usize)| {
            (rb - ra) * 1024.0 / (nb as f64 - na as f64).max(1.0)
        };
        let half_time = p2.wall / 2;
        let at_half = p2
            .peak_rss_over_time
            .iter()
            .take_while(|(at, _)| *at <= half_time)
            .last()
            .map(|&(_, kib)| kib as f64);
        let flat = row(
            format!("run of {n2} reports: peak RSS"),
            mib(*r2 as u64),
            at_half.map_or_else(
                || "no samples (Linux only)".to_owned(),
                |kib| format!("{} at half-time", mib(kib as u64)),
            ),
        );
        rows.push(match at_half {
            Some(half) => flat.vs(*r2, half).check(
                format!(
                    "{}× the peak at half-time, {} B per report of the second half",
                    sig(r2 / half),
                    sig((r2 - half) * 1024.0 / (*n2 as f64 / 2.0))
                ),
                "≤ 1.10× (flat)",
                all_ok && r2 / half <= 1.10,
            ),
            None => flat.info("the in-run check needs /proc".to_owned()),
        });
        let cross_run = |n: usize, r: f64, why: &str| {
            row(
                format!("run of {n2} reports vs {n}: peak RSS"),
                mib(*r2 as u64),
                format!("{} ({n} reports)", mib(r as u64)),
            )
            .vs(*r2, r)
            .info(format!(
                "{}× the {n}-report run, {} B per extra report{why}",
                sig(r2 / r),
                sig(per_report((r, n), (*r2, *n2)))
            ))
        };
        rows.push(cross_run(*nm, *rm, ""));
        rows.push(cross_run(
            *n1,
            *r1,
            ": warm-up and the job's size, see the notes",
        ));
        let (above1, above2) = ((r1 - v1).max(0.0), (r2 - v2).max(0.0));
        rows.push(
            row(
                format!("run of {n2} reports: RSS above `validate` of its job"),
                mib(above2 as u64),
                format!("{} ({n1} reports)", mib(above1 as u64)),
            )
            .vs(above2, above1)
            .info(format!(
                "`validate` alone: {} ({n2} tenants), {} ({n1} tenants)",
                mib(*v2 as u64),
                mib(*v1 as u64)
            )),
        );
        rows.push(
            row(
                format!("run of {n2} reports: wall"),
                secs(p2.wall.as_secs_f64()),
                format!("{} ({n1} reports)", secs(p1.wall.as_secs_f64())),
            )
            .info(format!(
                "{} ms CPU per report; {} polls/report",
                sig(p2.cpu.map_or(f64::NAN, |c| c.as_secs_f64()) * 1e3 / *n2 as f64),
                sig(s2.stored_list_requests as f64 / *n2 as f64)
            )),
        );
        let notes = vec![
            format!(
                "a generated job of {tenants} tenants × 1 period ({} KiB of YAML); `validate`, `plan`, `plan --json` with stdout to /dev/null, median wall of 5 runs, the largest peak RSS.",
                yaml.len() / 1024
            ),
            format!(
                "floor (there is no vendor equivalent): `acronis-reports --version` (process start: {}, {}) plus an untyped in-process YAML parse of the same file ({}).",
                ms(f_t),
                mib(f_rss),
                ms(parse)
            ),
            format!(
                "runs: {n1}, {nm} and {n2} reports × csv_v2_0, sandbox G = 50 ms, concurrency 200, polling 50ms/200ms; peak RSS of the binary from wait4. A finished report's record goes to a temporary file (24 bytes stay per report); billing.csv, summary.md, SHA256SUMS and manifest.json read the records back one at a time. What still grows with the run is the job itself: its YAML parse (see the `validate` figures) and the plan. The check is within the {n2}-report run: its peak RSS against the peak it had reached at half-time (VmHWM sampled every 20 ms), so growth per finished report shows while warm-up (connections' buffers, the blocking pool's threads and their allocator arenas, reached in the first seconds) does not. The {n1}-report run ends before that warm-up is over, which the cross-run rows show along with the job's size."
            ),
        ];
        self.section(Section {
            case: "scale",
            title: format!("scale: a {tenants}-tenant job, and {n1} vs {n2}-report runs"),
            rows,
            notes,
        });
    }

    // -- summary -------------------------------------------------------------------------------

    fn summary(&self) {
        let mut md = String::new();
        let _ = writeln!(
            md,
            "Run {} on {} core(s), {} s in all, load average at the end {} (BENCH_SCALE={}, BENCH_TIME_SCALE={}, BENCH_POLL_JITTER={}).\n",
            jiff::Timestamp::now().strftime("%Y-%m-%d %H:%M UTC"),
            std::thread::available_parallelism().map_or(0, usize::from),
            self.started.elapsed().as_secs(),
            loadavg(),
            self.env.scale,
            self.env.time_scale,
            self.env.poll_jitter
        );
        md.push_str(
            "| case | figure | ours | baseline | vs baseline | checked | target | result |\n",
        );
        md.push_str("| --- | --- | --- | --- | --- | --- | --- | --- |\n");
        for s in &self.sections {
            for r in &s.rows {
                let _ = writeln!(
                    md,
                    "| {} | {} | {} | {} | {} | {} | {} | {} |",
                    s.case,
                    r.figure,
                    r.ours,
                    r.base,
                    r.vs,
                    r.checked,
                    r.target,
                    match r.pass {
                        Some(true) => "PASS",
                        Some(false) => "**FAIL**",
                        None => "",
                    }
                );
            }
        }
        let (pass, fail) = self
            .sections
            .iter()
            .flat_map(|s| &s.rows)
            .fold((0, 0), |(p, f), r| match r.pass {
                Some(true) => (p + 1, f),
                Some(false) => (p, f + 1),
                None => (p, f),
            });
        let _ = writeln!(md, "\n{pass} target(s) met, {fail} missed.");
        println!("\n==== summary (paste into BENCHMARKS.md) ====\n");
        println!("{md}");
        if let Scratch::Kept(path) = &self.scratch {
            println!("kept the scratch folder {}", path.display());
        }
    }
}

enum Scratch {
    Temp(tempfile::TempDir),
    Kept(PathBuf),
}

impl Scratch {
    fn path(&self) -> &Path {
        match self {
            Scratch::Temp(dir) => dir.path(),
            Scratch::Kept(path) => path,
        }
    }
}

/// What one month of the `history` case measured, from the sandbox's timeline.
struct HistoryMonth {
    /// True generation times (seconds) in creation order.
    min: f64,
    median: f64,
    max: f64,
    sum: f64,
    longest_first: f64,
    plan_order: f64,
    polls: f64,
    max_polls: u64,
    fixed_polls: f64,
    /// Lag from ready to the first download, % of each report's own time.
    lags: Vec<f64>,
    /// How many of the slowest `concurrency` reports were among the first `concurrency` created.
    slowest_first: usize,
}

impl HistoryMonth {
    fn of(stats: &Stats, concurrency: usize) -> HistoryMonth {
        let time = |r: &CreatedReport| r.ready_us.saturating_sub(r.created_us) as f64 / 1e6;
        let mut by_creation = stats.reports.clone();
        by_creation.sort_by_key(|r| r.created_us);
        // Plan order is tenant order (t00001, …): their ids sort the same way.
        let mut by_plan = stats.reports.clone();
        by_plan.sort_by(|a, b| a.tenant_id.cmp(&b.tenant_id));
        let times: Vec<f64> = by_plan.iter().map(time).collect();
        let mut sorted = times.clone();
        sorted.sort_by(|a, b| b.total_cmp(a));
        let median_t = median(&times);
        let step = 0.05 * median_t;
        let n = times.len().max(1) as f64;
        let lags: Vec<f64> = stats
            .reports
            .iter()
            .filter_map(|r| {
                let lag = r.first_download_us?.saturating_sub(r.ready_us) as f64 / 1e6;
                Some(100.0 * lag / time(r).max(1e-6))
            })
            .collect();
        let slowest: Vec<&str> = {
            let mut all: Vec<&CreatedReport> = stats.reports.iter().collect();
            all.sort_by(|a, b| time(b).total_cmp(&time(a)));
            all.iter()
                .take(concurrency)
                .map(|r| r.id.as_str())
                .collect()
        };
        HistoryMonth {
            min: sorted.last().copied().unwrap_or(0.0),
            median: median_t,
            max: sorted.first().copied().unwrap_or(0.0),
            sum: times.iter().sum(),
            longest_first: greedy_makespan(&sorted, concurrency),
            plan_order: greedy_makespan(&times, concurrency),
            polls: stats.stored_list_requests as f64 / n,
            max_polls: stats
                .reports
                .iter()
                .map(|r| r.stored_list_requests)
                .max()
                .unwrap_or(0),
            fixed_polls: times.iter().map(|t| (t / step).ceil()).sum::<f64>() / n,
            lags,
            slowest_first: by_creation
                .iter()
                .take(concurrency)
                .filter(|r| slowest.contains(&r.id.as_str()))
                .count(),
        }
    }
}

/// Median time from creation to the first download request, in seconds.
fn median_turnaround(reports: &[CreatedReport]) -> f64 {
    let t: Vec<f64> = reports
        .iter()
        .filter_map(|r| Some(r.first_download_us?.saturating_sub(r.created_us) as f64 / 1e6))
        .collect();
    median(&t)
}

/// `100 MiB`, `1 GiB`.
fn size_label(mib: u64) -> String {
    if mib >= 1024 && mib.is_multiple_of(1024) {
        format!("{} GiB", mib / 1024)
    } else {
        format!("{mib} MiB")
    }
}

/// The 1, 5 and 15-minute load averages, where the OS tells them.
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|| "unknown".into())
}

/// Reads a file once, in small pieces, so it is in the page cache (and not in our memory).
fn warm_cache(path: &Path) {
    use std::io::Read as _;
    if let Ok(mut f) = std::fs::File::open(path) {
        let mut buf = vec![0u8; 1 << 20];
        while f.read(&mut buf).is_ok_and(|n| n > 0) {}
    }
}

/// The report file as a `SHA256SUMS` names it, and its digest. The trail's root `SHA256SUMS`
/// seals each period's, which names the files: `billing.csv` (derived from the report, and
/// larger) ends in .csv too and must not stand in for it.
fn report_file(out: &Path) -> Option<(Option<PathBuf>, String)> {
    let mut sums = vec![out.join("SHA256SUMS")];
    while let Some(list) = sums.pop() {
        let dir = list.parent()?.to_owned();
        for line in std::fs::read_to_string(&list).ok()?.lines() {
            let Some((sha, path)) = line.split_once(char::is_whitespace) else {
                continue;
            };
            let path = path.trim_start().trim_start_matches('*');
            let name = path.rsplit('/').next().unwrap_or(path);
            if name == "SHA256SUMS" {
                sums.push(dir.join(path));
            } else if name.ends_with(".csv") && name != "billing.csv" {
                return Some((Some(dir.join(path)), sha.to_owned()));
            }
        }
    }
    None
}

fn find_file(dir: &Path, ext: &str) -> Option<PathBuf> {
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if !path.ends_with(".acronis-reports") {
                    stack.push(path);
                }
            } else if path.extension().is_some_and(|e| e == ext) && !path.ends_with("billing.csv") {
                return Some(path);
            }
        }
    }
    None
}

fn print_section(s: &Section) {
    println!("\n== {} ==", s.title);
    let header = [
        "figure", "ours", "baseline", "vs base", "checked", "target", "result",
    ];
    let cells: Vec<[String; 7]> = s
        .rows
        .iter()
        .map(|r| {
            [
                r.figure.clone(),
                r.ours.clone(),
                r.base.clone(),
                r.vs.clone(),
                r.checked.clone(),
                r.target.clone(),
                r.result().to_owned(),
            ]
        })
        .collect();
    let mut widths = header.map(|h| h.chars().count());
    for c in &cells {
        for (w, cell) in widths.iter_mut().zip(c) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cols: &[String]| {
        let mut out = String::new();
        for (i, (cell, w)) in cols.iter().zip(widths).enumerate() {
            if i > 0 {
                out.push_str("  ");
            }
            let pad = w - cell.chars().count();
            out.push_str(cell);
            if i + 1 < cols.len() {
                out.push_str(&" ".repeat(pad));
            }
        }
        println!("{}", out.trim_end());
    };
    line(&header.map(str::to_owned));
    for c in &cells {
        line(c);
    }
    for note in &s.notes {
        println!("  · {note}");
    }
}
