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
mod jobs;
mod measure;
mod polls;
mod scale;
mod stream;
mod table;
mod timeline;
mod vendor;
mod wall;

use jobs::*;
use measure::*;
use table::*;
use timeline::*;
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
