//! The performance benchmark: the real binary against the built-in sandbox, every figure
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

mod history;
mod measure;
mod polls;
mod scale;
mod stream;
mod vendor;
mod wall;

use measure::*;
use vendor::*;

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
    s.push_str("# generated by the benchmark (benches/bench/)\nversion: 1\n");
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
