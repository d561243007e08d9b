//! What serde cannot check: dates against the as-of day and rules across fields. Turns the
//! file's sections into the validated [`Job`], collecting every problem with its place.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use jiff::civil::Date;

use crate::disk::paths::safe_component;
use crate::duration;
use crate::output::compare::CompareOptions;
use crate::period::{Period, PeriodSpec};
use crate::report::{BillingMeasure, BillingRule, Format, ReportKind, ReportLevel};

use super::*;

#[derive(Default)]
pub(super) struct Validator {
    problems: Vec<Problem>,
}

impl Validator {
    fn problem(&mut self, pos: Pos, message: impl Into<String>) {
        // The messages put the fix after the first `; `; the snippet shows it as help.
        let message: String = message.into();
        let (message, help) = match message.split_once("; ") {
            Some((what, fix)) => (what.to_owned(), Some(fix.to_owned())),
            None => (message, None),
        };
        self.problems.push(Problem {
            pos: Some(pos),
            message,
            help,
        });
    }

    pub(super) fn validate(
        mut self,
        file: JobFile,
        path: &Path,
        sha256: String,
        as_of: Date,
    ) -> Result<Job, Vec<Problem>> {
        if *file.version.value() != 1 {
            self.problem(
                file.version.pos(),
                format!(
                    "unsupported job-file version {}; this tool reads version 1",
                    file.version.value()
                ),
            );
        }
        let concurrency = match &file.concurrency {
            Some(c) if !(1..=MAX_CONCURRENCY).contains(c.value()) => {
                self.problem(
                    c.pos(),
                    format!(
                        "concurrency must be between 1 and {MAX_CONCURRENCY}, not {}; write a whole number in that range (default 4)",
                        c.value()
                    ),
                );
                1
            }
            Some(c) => *c.value() as usize,
            None => 4,
        };
        let polling = self.polling(file.polling.as_ref());
        let sku_policy = file
            .checks
            .as_ref()
            .and_then(|c| c.skus.as_ref())
            .map_or(SkuPolicy::Required, |p| *p.value());
        let size_policy = file
            .checks
            .as_ref()
            .and_then(|c| c.size.as_ref())
            .map_or(SizePolicy::Required, |p| *p.value());
        let limits = self.limits(file.limits.as_ref());
        let billing = self.billing(file.billing.as_ref());
        let compare = CompareOptions {
            warn_change_percent: file
                .compare
                .as_ref()
                .and_then(|c| c.warn_change.as_ref())
                .map_or(CompareOptions::default().warn_change_percent, |t| {
                    t.value().0
                }),
        };
        let defaults = file.defaults.unwrap_or_default();
        let (tenants, discoveries) = self.tenants(&file.tenants, &defaults, as_of);
        if !self.problems.is_empty() {
            self.problems.sort_by_key(|p| p.pos);
            return Err(self.problems);
        }
        Ok(Job {
            path: path.to_owned(),
            sha256,
            as_of,
            base_url: file
                .api
                .and_then(|api| api.base_url)
                .map(|url| url.value().clone()),
            sku_policy,
            size_policy,
            limits,
            billing,
            compare,
            polling,
            concurrency,
            output_dir: file.output.and_then(|o| o.dir).map_or_else(
                || PathBuf::from("billing-reports"),
                |d| PathBuf::from(d.value()),
            ),
            cleanup: file.cleanup.map_or(Cleanup::Keep, |c| *c.value()),
            tenants,
            discoveries,
        })
    }

    fn billing(&mut self, section: Option<&BillingSection>) -> BillingRule {
        let mut rule = BillingRule::default();
        let Some(section) = section else {
            return rule;
        };
        if let Some(scope) = &section.scope {
            rule.scope = *scope.value();
        }
        if let Some(measure) = &section.measure {
            rule.measure = *measure.value();
        }
        if let Some(items) = &section.delta_items {
            if rule.measure != BillingMeasure::Auto {
                self.problem(
                    items.pos(),
                    format!(
                        "billing.delta_items only applies with `measure: auto`; with `measure: {}` every item is billed on that measure: remove delta_items or set measure to auto",
                        rule.measure
                    ),
                );
            }
            rule.delta_items.clear();
            for item in items.value() {
                let name = item.value().trim();
                if name.is_empty() {
                    self.problem(item.pos(), "an empty name in billing.delta_items; give an offering item name such as pw_compute_points");
                } else if !rule.delta_items.iter().any(|i| i == name) {
                    rule.delta_items.push(name.to_owned());
                }
            }
        }
        rule
    }

    fn limits(&mut self, section: Option<&LimitsSection>) -> Limits {
        let defaults = Limits::default();
        let Some(section) = section else {
            return defaults;
        };
        if let Some(size) = section.max_file_size.as_ref().filter(|s| s.value().0 == 0) {
            self.problem(size.pos(), "limits.max_file_size must be larger than zero");
        }
        if let Some(t) = section
            .download_timeout
            .as_ref()
            .filter(|t| t.value().0.is_zero())
        {
            self.problem(t.pos(), "limits.download_timeout must be longer than zero");
        }
        Limits {
            max_file_size: section
                .max_file_size
                .as_ref()
                .map_or(defaults.max_file_size, |s| s.value().0),
            download_timeout: section
                .download_timeout
                .as_ref()
                .map_or(defaults.download_timeout, |t| t.value().0),
        }
    }

    fn polling(&mut self, section: Option<&PollingSection>) -> Polling {
        let get = |field: Option<&At<DurationValue>>, default: u64| {
            field.map_or(Duration::from_secs(default), |d| d.value().0)
        };
        let initial_interval = get(section.and_then(|s| s.initial_interval.as_ref()), 5);
        let polling = Polling {
            initial_interval,
            // An initial interval above the default cap raises the cap with it.
            max_interval: section
                .and_then(|s| s.max_interval.as_ref())
                .map_or(Duration::from_secs(60).max(initial_interval), |d| {
                    d.value().0
                }),
            timeout: get(section.and_then(|s| s.timeout.as_ref()), 30 * 60),
        };
        if let Some(section) = section {
            for (name, field) in [
                ("initial_interval", &section.initial_interval),
                ("max_interval", &section.max_interval),
                ("timeout", &section.timeout),
            ] {
                if let Some(f) = field.as_ref().filter(|f| f.value().0.is_zero()) {
                    self.problem(
                        f.pos(),
                        format!("polling.{name} must be longer than zero; e.g. 5s"),
                    );
                }
            }
            if let Some(max) = &section.max_interval
                && polling.max_interval < polling.initial_interval
            {
                self.problem(
                    max.pos(),
                    format!(
                        "polling.max_interval ({}) is shorter than polling.initial_interval ({}); make it at least as long",
                        duration::format(polling.max_interval),
                        duration::format(polling.initial_interval)
                    ),
                );
            }
        }
        polling
    }

    fn tenants(
        &mut self,
        entries: &At<Vec<TenantEntry>>,
        defaults: &ReportSettings,
        as_of: Date,
    ) -> (Vec<Tenant>, Vec<Discovery>) {
        if entries.value().is_empty() {
            self.problem(
                entries.pos(),
                "no tenants; list at least one under `tenants:` as `- id: <tenant UUID>`",
            );
        }
        let mut seen_names: HashMap<String, Pos> = HashMap::new();
        let mut seen_reports: BTreeMap<(String, Period, ReportKind, ReportLevel), Pos> =
            BTreeMap::new();
        let mut tenants = Vec::with_capacity(entries.value().len());
        let mut discoveries = Vec::new();
        for entry in entries.value() {
            let (id_field, discovery) = match (&entry.id, &entry.children_of) {
                (Some(id), None) => {
                    self.refuse_discovery_keys(entry);
                    (id, false)
                }
                (None, Some(parent)) => (&**parent, true),
                (Some(id), Some(_)) => {
                    self.problem(
                        id.pos(),
                        "an entry has either `id` (one tenant) or `children_of` (a partner's children), not both; keep one of them",
                    );
                    continue;
                }
                (None, None) => {
                    self.problem(
                        entries.pos(),
                        "a tenant entry has neither `id` nor `children_of`; add `id: <tenant UUID>` for one tenant, or `children_of: <partner UUID>` for a partner's children",
                    );
                    continue;
                }
            };
            let id = id_field.value().trim().to_ascii_lowercase();
            if !is_uuid(&id) {
                self.problem(
                    id_field.pos(),
                    format!(
                        "tenant id `{}` is not a UUID; use the tenant's UUID (e.g. ede9f834-70b3-476c-83d9-736f9f8c7dae) and put a label in `name`",
                        id_field.value()
                    ),
                );
            }
            let name = if discovery {
                if let Some(name) = &entry.name {
                    self.problem(
                        name.pos(),
                        "`name` labels one tenant; children found with `children_of` are labelled by their names on the server",
                    );
                }
                format!("children of {id}")
            } else {
                entry
                    .name
                    .as_ref()
                    .map_or_else(|| id.clone(), |n| n.value().trim().to_owned())
            };
            let name_pos = entry.name.as_ref().map_or(id_field.pos(), At::pos);
            if name.is_empty() {
                self.problem(
                    name_pos,
                    "tenant name is empty; give a label or leave `name` out",
                );
            }
            let dir_name = safe_component(&name);
            // Folder names must differ even on case-insensitive file systems (macOS, Windows).
            if !discovery && let Some(first) = seen_names.insert(dir_name.to_lowercase(), name_pos)
            {
                self.problem(
                    name_pos,
                    format!(
                        "tenant name `{name}` is already used on line {} (names label output folders and must be unique, ignoring case); give one of them another `name`",
                        first.line
                    ),
                );
            }
            let kind = pick(entry.kind.as_deref(), defaults.kind.as_ref())
                .unwrap_or(ReportKind::UsageSummary);
            let level = pick(entry.level.as_deref(), defaults.level.as_ref())
                .unwrap_or(ReportLevel::DirectPartners);
            let formats = self.formats(entry.formats.as_deref().or(defaults.formats.as_ref()));
            let periods_field = entry.periods.as_deref().or(defaults.periods.as_ref());
            let periods = self.periods(periods_field, &name, as_of, id_field.pos());
            if !discovery {
                for period in &periods {
                    let key = (id.clone(), *period, kind, level);
                    if let Some(first) = seen_reports.insert(key, id_field.pos()) {
                        self.problem(
                            id_field.pos(),
                            format!(
                                "tenant {name} asks for the {kind} / {level} report of {period} a second time (first on line {}); remove the duplicate",
                                first.line
                            ),
                        );
                    }
                }
            }
            let tenant = Tenant {
                id,
                name,
                dir_name,
                kind,
                level,
                formats,
                hide_zero_usage: pick(
                    entry.hide_zero_usage.as_deref(),
                    defaults.hide_zero_usage.as_ref(),
                )
                .unwrap_or(false),
                show_skus: pick(entry.show_skus.as_deref(), defaults.show_skus.as_ref())
                    .unwrap_or(true),
                periods,
            };
            if discovery {
                discoveries.push(self.discovery(entry, tenant, tenants.len()));
            } else {
                tenants.push(tenant);
            }
        }
        (tenants, discoveries)
    }

    fn refuse_discovery_keys(&mut self, entry: &TenantEntry) {
        let positions = [
            ("kinds", entry.kinds.as_deref().map(At::pos)),
            ("include", entry.include.as_deref().map(At::pos)),
            ("exclude", entry.exclude.as_deref().map(At::pos)),
            ("recursive", entry.recursive.as_deref().map(At::pos)),
            (
                "include_disabled",
                entry.include_disabled.as_deref().map(At::pos),
            ),
            ("include_trial", entry.include_trial.as_deref().map(At::pos)),
        ];
        for (key, pos) in positions {
            if let Some(pos) = pos {
                self.problem(
                    pos,
                    format!("`{key}` only applies to `children_of` entries, not to a tenant given by `id`; remove it, or write `children_of:` instead of `id:` to report on the tenant's children"),
                );
            }
        }
    }

    fn discovery(&mut self, entry: &TenantEntry, template: Tenant, after: usize) -> Discovery {
        let patterns = |field: Option<&At<Vec<At<String>>>>| -> Vec<String> {
            field
                .map(|list| {
                    list.value()
                        .iter()
                        .map(|p| p.value().trim().to_owned())
                        .collect()
                })
                .unwrap_or_default()
        };
        let kinds = match entry.kinds.as_deref() {
            Some(kinds) if kinds.value().is_empty() => {
                self.problem(
                    kinds.pos(),
                    "`kinds` is empty; list at least one, e.g. [customer]",
                );
                Vec::new()
            }
            Some(kinds) => kinds.value().iter().map(|k| *k.value()).collect(),
            None => vec![TenantKind::Customer],
        };
        let flag = |field: Option<&At<bool>>| field.is_some_and(|f| *f.value());
        Discovery {
            parent_id: template.id.clone(),
            kinds,
            include: patterns(entry.include.as_deref()),
            exclude: patterns(entry.exclude.as_deref()),
            recursive: flag(entry.recursive.as_deref()),
            include_disabled: flag(entry.include_disabled.as_deref()),
            include_trial: flag(entry.include_trial.as_deref()),
            template,
            after,
        }
    }

    fn formats(&mut self, field: Option<&At<Vec<At<Format>>>>) -> Vec<Format> {
        let Some(field) = field else {
            return vec![Format::CsvV2, Format::JsonV2];
        };
        if field.value().is_empty() {
            self.problem(
                field.pos(),
                "`formats` is empty; list at least one, e.g. [csv_v2_0]",
            );
        }
        let mut formats: Vec<Format> = Vec::new();
        for format in field.value() {
            if formats.contains(format.value()) {
                self.problem(
                    format.pos(),
                    format!("format {} is listed twice; remove one", format.value()),
                );
            } else {
                formats.push(*format.value());
            }
        }
        formats
    }

    fn periods(
        &mut self,
        field: Option<&At<Vec<At<PeriodValue>>>>,
        tenant: &str,
        as_of: Date,
        tenant_pos: Pos,
    ) -> Vec<Period> {
        let specs: Vec<(PeriodSpec, Pos)> = match field {
            None => vec![(PeriodSpec::PreviousMonth, tenant_pos)],
            Some(list) => {
                if list.value().is_empty() {
                    self.problem(
                        list.pos(),
                        "`periods` is empty; list at least one, e.g. [previous_month]",
                    );
                }
                list.value()
                    .iter()
                    .map(|p| (p.value().0.clone(), p.pos()))
                    .collect()
            }
        };
        let mut periods = Vec::with_capacity(specs.len());
        for (spec, pos) in specs {
            match spec.resolve(as_of) {
                Ok(period) if periods.contains(&period) => self.problem(
                    pos,
                    format!("tenant {tenant}: period {period} is listed twice"),
                ),
                Ok(period) => periods.push(period),
                Err(e) => self.problem(pos, format!("tenant {tenant}: {e}")),
            }
        }
        periods
    }
}

fn pick<T: Copy>(own: Option<&At<T>>, default: Option<&At<T>>) -> Option<T> {
    own.or(default).map(|v| *v.value())
}
