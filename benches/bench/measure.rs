//! Running the binary as the kernel accounts it: wall time, CPU time and peak memory of a child
//! process (started by a small copy of the bench, so that its peak RSS is its own).

use super::*;

/// What a finished child process cost, by the kernel's own accounting.
pub(super) struct Proc {
    pub(super) wall: Duration,
    /// Peak resident set size (KiB), from `wait4`.
    pub(super) max_rss_kib: Option<u64>,
    /// The peak resident set size so far (`VmHWM`, KiB) every 20 ms while it ran, from its
    /// start (Linux; empty elsewhere).
    pub(super) peak_rss_over_time: Vec<(Duration, u64)>,
    pub(super) cpu: Option<Duration>,
    pub(super) code: i32,
    pub(super) stdout: String,
    pub(super) stderr: String,
    pub(super) exited_at: Instant,
}

#[cfg(unix)]
pub(super) fn wait_child(child: std::process::Child) -> (i32, Option<u64>, Option<Duration>) {
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
pub(super) fn wait_child(mut child: std::process::Child) -> (i32, Option<u64>, Option<Duration>) {
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
pub(super) fn run_process(cmd: Command, scratch: &Path) -> Proc {
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
pub(super) fn run_process(mut cmd: Command, scratch: &Path) -> Proc {
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
pub(super) fn measure_child(args: &[String]) {
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

pub(super) fn tail(text: &str, lines: usize) -> String {
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}
