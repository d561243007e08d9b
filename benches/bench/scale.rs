//! `scale`: job files of 10 000 tenants (validate, plan) and runs of 1 000 to 10 000 reports
//! with flat memory.

use super::*;

impl Bench {
    pub(super) fn scale(&mut self) {
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
}
