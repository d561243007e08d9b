//! `history`: heavy-tailed per-tenant times, two months into one trail.

use super::*;

impl Bench {
    /// Two months into one trail: month one knows nothing, month two has month one's times.
    pub(super) fn history(&mut self) {
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
}

/// What one month of the `history` case measured, from the sandbox's timeline.
pub(super) struct HistoryMonth {
    /// True generation times (seconds) in creation order.
    pub(super) min: f64,
    pub(super) median: f64,
    pub(super) max: f64,
    pub(super) sum: f64,
    pub(super) longest_first: f64,
    pub(super) plan_order: f64,
    pub(super) polls: f64,
    pub(super) max_polls: u64,
    pub(super) fixed_polls: f64,
    /// Lag from ready to the first download, % of each report's own time.
    pub(super) lags: Vec<f64>,
    /// How many of the slowest `concurrency` reports were among the first `concurrency` created.
    pub(super) slowest_first: usize,
}

impl HistoryMonth {
    pub(super) fn of(stats: &Stats, concurrency: usize) -> HistoryMonth {
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
