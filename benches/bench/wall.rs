//! `wall` and `connections`: 1 000 reports at concurrency 100, against ideal and the zero-lag
//! floor; connections from the same run.

use super::*;

impl Bench {
    pub(super) fn wall_run(&self, n: usize, concurrency: usize, generation: Duration) -> WallRun {
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

    pub(super) fn wall_section(&mut self, w: &WallRun) {
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

    pub(super) fn connections_section(&mut self, w: &WallRun) {
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
}
