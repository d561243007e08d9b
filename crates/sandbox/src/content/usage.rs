//! The simulated usage: tenants, offering items and their values, derived from the report's
//! inputs by SHA-256, and the rows a report holds.

use jiff::civil::Date;
use sha2::{Digest, Sha256};

use super::*;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Unit {
    Bytes,
    Quantity,
    Seconds,
}

impl Unit {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Quantity => "quantity",
            Unit::Seconds => "seconds",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum App {
    Backup,
    DisasterRecovery,
}

impl App {
    pub(super) fn index(self) -> usize {
        match self {
            App::Backup => 0,
            App::DisasterRecovery => 1,
        }
    }

    pub(super) fn title(self) -> &'static str {
        match self {
            App::Backup => "Cyber Protection",
            App::DisasterRecovery => "Disaster Recovery",
        }
    }
}

/// Application UUIDs are made up (the real ones are not in the sources) but stable.
pub(super) fn application_ids() -> [String; 2] {
    [
        derived_uuid(&["application", "backup"]),
        derived_uuid(&["application", "disaster_recovery"]),
    ]
}

pub(super) struct Item {
    pub(super) offering_item: &'static str,
    pub(super) usage_name: &'static str,
    pub(super) unit: Unit,
    pub(super) sku: &'static str,
    pub(super) title: &'static str,
    pub(super) app: App,
}

pub(super) const EDITION: &str = "pck_per_workload";

pub(super) const STORAGE: usize = 0;
pub(super) const WORKSTATIONS: usize = 1;
/// The Disaster Recovery compute points item, whose name is a scenario knob.
pub(super) const COMPUTE: usize = 6;

pub(super) const ITEMS: [Item; 7] = [
    Item {
        offering_item: "pw_base_storage",
        usage_name: "storage",
        unit: Unit::Bytes,
        sku: "SP4ASTENS",
        title: "Backup storage",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_workstations",
        usage_name: "workstations",
        unit: Unit::Quantity,
        sku: "SP4AWSENS",
        title: "Workstations",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_servers",
        usage_name: "servers",
        unit: Unit::Quantity,
        sku: "SP4ASRENS",
        title: "Servers",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_vms",
        usage_name: "vms",
        unit: Unit::Quantity,
        sku: "SP4AVMENS",
        title: "Virtual machines",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_m365_seats",
        usage_name: "m365_seats",
        unit: Unit::Quantity,
        sku: "SP4AMSENS",
        title: "Microsoft 365 seats",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_mobiles",
        usage_name: "mobiles",
        unit: Unit::Quantity,
        sku: "SP4AMBENS",
        title: "Mobile devices",
        app: App::Backup,
    },
    Item {
        offering_item: "pw_base_adv_dr_compute_points",
        usage_name: "compute_points",
        unit: Unit::Seconds,
        sku: "SP4ADRENS",
        title: "Disaster Recovery compute points",
        app: App::DisasterRecovery,
    },
];

/// Storage backends of `infra_rows`.
pub(super) const BACKENDS: [&str; 3] = ["acronis", "azure", "google"];

pub(super) fn item_name(spec: &ReportSpec, item: usize) -> &'static str {
    if item == COMPUTE {
        spec.content.compute_points_item.as_str()
    } else {
        ITEMS[item].offering_item
    }
}

/// Hash of length-prefixed parts, so ("ab","c") and ("a","bc") differ.
pub(crate) fn digest(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        h.update((p.len() as u64).to_le_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

pub(super) fn num(parts: &[&str]) -> u64 {
    let d = digest(parts);
    let mut first = [0u8; 8];
    first.copy_from_slice(&d[..8]);
    u64::from_le_bytes(first)
}

/// A name-based UUID (version 5 layout) so child tenants keep their ids across runs.
pub(crate) fn derived_uuid(parts: &[&str]) -> String {
    let d = digest(parts);
    let mut b = [0u8; 16];
    b.copy_from_slice(&d[..16]);
    b[6] = (b[6] & 0x0f) | 0x50;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

pub(super) struct Tenant {
    pub(super) uuid: String,
    /// The API v1 numeric id `json_v2_0` rows carry as `tenant_id`.
    pub(super) number: u64,
    pub(super) name: String,
    pub(super) kind: &'static str,
    pub(super) has_dr: bool,
    /// Carries trial usage next to (or instead of) production.
    pub(super) trial: bool,
}

/// Realistic company-name tails; some need CSV quoting or are non-ASCII on purpose.
pub(super) const NAME_SUFFIXES: [&str; 6] = [
    "",
    ", Inc.",
    " GmbH",
    " \"Nord\" AG",
    " Müller & Söhne",
    " S.A.",
];

pub(super) fn tenant_number(uuid: &str) -> u64 {
    100_000 + num(&["tenant-number", uuid]) % 9_900_000
}

pub(super) fn tenants(spec: &ReportSpec, stale: bool) -> Vec<Tenant> {
    let tid = spec.tenant_id.as_str();
    let opts = &spec.content;
    let short = tid.get(..8).unwrap_or(tid);
    let mut subject_name = format!("Partner {short}");
    if stale {
        subject_name.push_str(" (stale)");
    }
    // The report tenant always uses some DR, so every report (even `itself`) has a DR row.
    let mut out = vec![Tenant {
        uuid: tid.to_owned(),
        number: tenant_number(tid),
        name: subject_name,
        kind: "partner",
        has_dr: true,
        trial: opts.partner_trial,
    }];
    if spec.level == Level::Itself {
        return out;
    }
    let children = 2 + num(&["children", tid]) % 4;
    let forced_dr = 1 + num(&["dr-forced", tid]) % children;
    // Levels other than all_partners list customers, and for some tenants one sub-partner.
    let child_partner = num(&["child-partner", tid])
        .is_multiple_of(3)
        .then(|| 1 + num(&["child-partner-ix", tid]) % children);
    let is_partner = |i: u64| spec.level == Level::AllPartners || Some(i) == child_partner;
    let customers: Vec<u64> = (1..=children).filter(|i| !is_partner(*i)).collect();
    // At least one customer has trial usage, so the scope rule always shows.
    let forced_trial = num(&["trial-forced", tid])
        .checked_rem(customers.len() as u64)
        .and_then(|k| customers.get(usize::try_from(k).ok()?))
        .copied();
    for i in 1..=children {
        let idx = i.to_string();
        let suffix_ix = num(&["suffix", tid, &idx]) % NAME_SUFFIXES.len() as u64;
        let suffix = NAME_SUFFIXES[suffix_ix as usize];
        let uuid = derived_uuid(&["child", tid, &idx]);
        let (label, kind, trial) = if is_partner(i) {
            ("Partner", "partner", opts.partner_trial)
        } else {
            let trial = Some(i) == forced_trial || num(&["trial", tid, &idx]).is_multiple_of(3);
            ("Customer", "customer", opts.customer_trial && trial)
        };
        out.push(Tenant {
            number: tenant_number(&uuid),
            uuid,
            name: format!("{label} {i:02} of {short}{suffix}"),
            kind,
            has_dr: i == forced_dr || num(&["dr", tid, &idx]).is_multiple_of(2),
            trial,
        });
    }
    out
}

pub(super) const GIB: u64 = 1 << 30;

/// A tenant's usage of one item over the period (end state; for compute points, consumption).
pub(super) fn base_value(t: &Tenant, item: usize, backend: &str, salt: &str) -> u64 {
    let h = num(&["value", &t.uuid, ITEMS[item].offering_item, backend, salt]);
    let h2 = h >> 20;
    match item {
        0 => (10 + h % 110) * GIB + h2 % GIB,
        1 => 1 + h % 40,
        2 => optional(h, 1 + h2 % 6),
        3 => optional(h, 1 + h2 % 12),
        4 => optional(h, 5 + h2 % 60),
        // Nobody backs up phones here: a guaranteed zero row for hide_zero_usage.
        5 => 0,
        _ => {
            if t.has_dr {
                // Multiples of 36 s make points (value / 3600) exact to 2 decimals.
                36 * (200 + h2 % 19_800)
            } else {
                0
            }
        }
    }
}

pub(super) fn optional(h: u64, v: u64) -> u64 {
    if h.is_multiple_of(3) { 0 } else { v }
}

/// Day-to-day variation of ±10 % around the base value.
pub(super) fn day_value(
    base: u64,
    t: &Tenant,
    item: usize,
    backend: &str,
    day: &str,
    salt: &str,
) -> u64 {
    if base == 0 {
        return 0;
    }
    let h = num(&[
        "day",
        &t.uuid,
        ITEMS[item].offering_item,
        backend,
        day,
        salt,
    ]);
    let v = percent(base, 90 + h % 21);
    round_to_unit(item, v).max(unit_step(item))
}

pub(super) fn percent(v: u64, pct: u64) -> u64 {
    u64::try_from(u128::from(v) * u128::from(pct) / 100).unwrap_or(u64::MAX)
}

pub(super) fn unit_step(item: usize) -> u64 {
    if ITEMS[item].unit == Unit::Seconds {
        36
    } else {
        1
    }
}

pub(super) fn round_to_unit(item: usize, v: u64) -> u64 {
    let step = unit_step(item);
    v / step * step
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Split {
    pub(super) production: u64,
    pub(super) trial: u64,
}

impl Split {
    pub(super) fn total(self) -> u64 {
        self.production.saturating_add(self.trial)
    }

    pub(super) fn get(self, scope: Scope) -> u64 {
        match scope {
            Scope::Production => self.production,
            Scope::Total => self.total(),
            Scope::Trial => self.trial,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(super) struct Usage {
    pub(super) absolute: Split,
    pub(super) delta: Split,
    pub(super) effective: Split,
}

impl Usage {
    pub(super) fn get(&self, measure: Measure, scope: Scope) -> u64 {
        match measure {
            Measure::Absolute => self.absolute.get(scope),
            Measure::Delta => self.delta.get(scope),
            Measure::Effective => self.effective.get(scope),
        }
    }

    /// `json_v2_0`'s `value`: what was consumed in the period for compute points, the state at
    /// the end for everything else (the measure the vendor bills each on).
    pub(super) fn value(&self, item: usize) -> u64 {
        if item == COMPUTE {
            self.delta.total()
        } else {
            self.absolute.total()
        }
    }
}

/// How a tenant's figure for one item divides into production and trial.
pub(super) fn split(t: &Tenant, item: usize, base: u64) -> Split {
    let production_only = Split {
        production: base,
        trial: 0,
    };
    if !t.trial || base == 0 {
        return production_only;
    }
    if t.kind == "partner" {
        // A few trial seats next to production ones, on one item only.
        if item == WORKSTATIONS {
            let h = num(&["partner-trial", &t.uuid]);
            return Split {
                production: base,
                trial: 1 + h % 5,
            };
        }
        return production_only;
    }
    match num(&["trial-mode", &t.uuid, ITEMS[item].offering_item]) % 3 {
        0 => Split {
            production: 0,
            trial: base,
        },
        1 => production_only,
        _ => {
            let trial = round_to_unit(item, base / 2);
            Split {
                production: base - trial,
                trial,
            }
        }
    }
}

/// Absolute, delta and effective of one scope from its base figure.
pub(super) fn scope_measures(item: usize, base: u64, h: u64, daily: bool) -> (u64, u64, u64) {
    if base == 0 {
        return (0, 0, 0);
    }
    let effective_pct = 80 + (h >> 16) % 21;
    if ITEMS[item].unit == Unit::Seconds {
        // Compute points accumulate: the base is what the period consumed, the absolute adds
        // what earlier periods did.
        let absolute = base.saturating_add(36 * (h % 50_000));
        let effective = round_to_unit(item, percent(absolute, effective_pct));
        (absolute, base, effective)
    } else {
        let grown = if daily { (h >> 8) % 6 } else { (h >> 8) % 51 };
        (base, percent(base, grown), percent(base, effective_pct))
    }
}

pub(super) fn usage(
    spec: &ReportSpec,
    t: &Tenant,
    item: usize,
    backend: &str,
    day: &str,
    salt: &str,
) -> Usage {
    let daily = matches!(spec.kind, Kind::Daily | Kind::Breakdown);
    let mut base = base_value(t, item, backend, salt);
    if daily {
        base = day_value(base, t, item, backend, day, salt);
    }
    let s = split(t, item, base);
    let key = |scope: &str| {
        num(&[
            "measures",
            &t.uuid,
            ITEMS[item].offering_item,
            backend,
            day,
            salt,
            scope,
        ])
    };
    let (ap, dp, ep) = scope_measures(item, s.production, key("production"), daily);
    let (at, dt, et) = scope_measures(item, s.trial, key("trial"), daily);
    Usage {
        absolute: Split {
            production: ap,
            trial: at,
        },
        delta: Split {
            production: dp,
            trial: dt,
        },
        effective: Split {
            production: ep,
            trial: et,
        },
    }
}

pub(super) struct Period {
    pub(super) start: Date,
    pub(super) end: Date,
    /// `YYYY-MM-DD` of `start`.
    pub(super) date: String,
    /// RFC 3339 of `start`'s midnight UTC.
    pub(super) range_start: String,
}

pub(super) fn periods(spec: &ReportSpec) -> Vec<Period> {
    let bounds = match spec.kind {
        Kind::Summary => vec![(spec.start, spec.end)],
        Kind::Current => vec![(spec.end, spec.end)],
        Kind::Daily | Kind::Breakdown => {
            let mut out = Vec::new();
            let mut d = spec.start;
            while d <= spec.end {
                out.push((d, d));
                match d.tomorrow() {
                    Ok(next) => d = next,
                    Err(_) => break,
                }
            }
            out
        }
    };
    bounds
        .into_iter()
        .map(|(start, end)| Period {
            start,
            end,
            date: start.to_string(),
            range_start: rfc3339_utc(unix_midnight(start)),
        })
        .collect()
}

pub(super) struct Row {
    pub(super) tenant: usize,
    pub(super) item: usize,
    /// Index into `BACKENDS` for an infrastructure row.
    pub(super) backend: Option<usize>,
    pub(super) period: usize,
    pub(super) usage: Usage,
}

/// Everything one rendered file draws on.
pub(super) struct Ctx<'a> {
    pub(super) spec: &'a ReportSpec,
    pub(super) tenants: Vec<Tenant>,
    pub(super) periods: Vec<Period>,
    pub(super) rows: Vec<Row>,
    pub(super) apps: [String; 2],
    /// `(infra.id, infra.owner_id)` per backend.
    pub(super) infra: Vec<(String, String)>,
    pub(super) generated_at: String,
}

impl<'a> Ctx<'a> {
    pub(super) fn new(spec: &'a ReportSpec, stale: bool) -> Self {
        let salt = if stale { "stale" } else { "" };
        let tenants = tenants(spec, stale);
        let periods = periods(spec);
        // Rows are each tenant's own usage, never a sum over other rows: the vendor's billing
        // adds up every row of a tenant, so an aggregate row would be billed twice.
        let mut rows = Vec::new();
        for (t, tenant) in tenants.iter().enumerate() {
            for item in 0..ITEMS.len() {
                let backends: &[Option<usize>] = if spec.content.infra_rows && item == STORAGE {
                    &[Some(0), Some(1), Some(2)]
                } else {
                    &[None]
                };
                for &backend in backends {
                    let backend_name = backend.and_then(|b| BACKENDS.get(b)).unwrap_or(&"");
                    for (p, period) in periods.iter().enumerate() {
                        let usage = usage(spec, tenant, item, backend_name, &period.date, salt);
                        if spec.hide_zero_usage && usage == Usage::default() {
                            continue;
                        }
                        rows.push(Row {
                            tenant: t,
                            item,
                            backend,
                            period: p,
                            usage,
                        });
                    }
                }
            }
        }
        let infra = BACKENDS
            .iter()
            .map(|b| {
                (
                    derived_uuid(&["infra", &spec.tenant_id, b]),
                    derived_uuid(&["infra-owner", &spec.tenant_id, b]),
                )
            })
            .collect();
        Ctx {
            spec,
            tenants,
            periods,
            rows,
            apps: application_ids(),
            infra,
            generated_at: rfc3339_utc(gen_date(spec)),
        }
    }

    pub(super) fn sku(&self, item: usize) -> &'static str {
        sku_cell(self.spec, &ITEMS[item])
    }
}

pub(super) fn gen_date(spec: &ReportSpec) -> i64 {
    unix_midnight(spec.end) + 86_400
}

pub(super) fn sku_cell(spec: &ReportSpec, item: &Item) -> &'static str {
    if spec.show_skus && !spec.no_skus {
        item.sku
    } else {
        ""
    }
}
