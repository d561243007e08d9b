//! Deterministic report files.
//!
//! Every byte is derived from the report's inputs through SHA-256, never from
//! the clock or an RNG, so two sandboxes given the same request produce
//! byte-identical files and end-to-end tests can compare checksums across runs.

use std::borrow::Cow;

use bytes::Bytes;
use jiff::civil::Date;
use serde::Serialize;
use sha2::{Digest, Sha256};

use super::scenario::{ComputePointsItem, Layout};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Daily,
    Summary,
    Current,
    Breakdown,
}

impl Kind {
    pub(crate) const NAMES: [&'static str; 4] = [
        "usage_daily",
        "usage_summary",
        "usage_current",
        "usage_breakdown",
    ];

    pub(crate) fn parse(s: &str) -> Option<Kind> {
        Some(match s {
            "usage_daily" => Kind::Daily,
            "usage_summary" => Kind::Summary,
            "usage_current" => Kind::Current,
            "usage_breakdown" => Kind::Breakdown,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Kind::Daily => "usage_daily",
            Kind::Summary => "usage_summary",
            Kind::Current => "usage_current",
            Kind::Breakdown => "usage_breakdown",
        }
    }

    /// Numeric kind in `json_v2_0` params. Only 4 = day-by-day is documented;
    /// the others continue the sequence as a plausible guess.
    fn json_code(self) -> u32 {
        match self {
            Kind::Daily => 4,
            Kind::Summary => 5,
            Kind::Current => 6,
            Kind::Breakdown => 7,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Level {
    /// Only the report tenant's own usage.
    Itself,
    DirectPartners,
    AllPartners,
    AllCustomers,
    Accounts,
}

impl Level {
    pub(crate) const NAMES: [&'static str; 5] = [
        "itself",
        "direct_partners",
        "all_partners",
        "all_customers",
        "accounts",
    ];

    pub(crate) fn parse(s: &str) -> Option<Level> {
        Some(match s {
            "itself" => Level::Itself,
            "direct_partners" => Level::DirectPartners,
            "all_partners" => Level::AllPartners,
            "all_customers" => Level::AllCustomers,
            "accounts" => Level::Accounts,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Level::Itself => "itself",
            Level::DirectPartners => "direct_partners",
            Level::AllPartners => "all_partners",
            Level::AllCustomers => "all_customers",
            Level::Accounts => "accounts",
        }
    }

    /// Documented numeric `report_level` of `json_v2_0` (`itself` has none documented: 0 is a
    /// guess).
    fn json_code(self) -> u32 {
        match self {
            Level::Itself => 0,
            Level::DirectPartners => 1,
            Level::AllCustomers => 2,
            Level::Accounts => 3,
            Level::AllPartners => 4,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Format {
    Csv,
    Html,
    JsonV1,
    CsvV2,
    JsonV2,
}

impl Format {
    pub(crate) const NAMES: [&'static str; 5] = ["csv", "html", "json_v1", "csv_v2_0", "json_v2_0"];

    pub(crate) fn parse(s: &str) -> Option<Format> {
        Some(match s {
            "csv" => Format::Csv,
            "html" => Format::Html,
            "json_v1" => Format::JsonV1,
            "csv_v2_0" => Format::CsvV2,
            "json_v2_0" => Format::JsonV2,
            _ => return None,
        })
    }

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Format::Csv => "csv",
            Format::Html => "html",
            Format::JsonV1 => "json_v1",
            Format::CsvV2 => "csv_v2_0",
            Format::JsonV2 => "json_v2_0",
        }
    }

    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Format::Csv | Format::CsvV2 => "text/csv; charset=utf-8",
            Format::Html => "text/html; charset=utf-8",
            Format::JsonV1 | Format::JsonV2 => "application/json",
        }
    }
}

/// Everything the file content depends on.
#[derive(Clone, Debug)]
pub(crate) struct ReportSpec {
    /// Lower-case canonical UUID, so letter case does not change the content.
    pub tenant_id: String,
    pub kind: Kind,
    pub level: Level,
    pub start: Date,
    pub end: Date,
    pub show_skus: bool,
    pub hide_zero_usage: bool,
    pub no_skus: bool,
    /// The scenario's layout knobs as they apply to this report's tenant.
    pub content: ContentOptions,
}

/// Layout knobs with every default filled in (`scenario::ContentKnobs` says what each does).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ContentOptions {
    pub layout: Layout,
    pub sku_column: String,
    pub extra_columns: bool,
    pub reorder_columns: bool,
    pub edition_column: bool,
    pub compute_points_item: ComputePointsItem,
    pub infra_rows: bool,
    pub customer_trial: bool,
    pub partner_trial: bool,
}

impl Default for ContentOptions {
    fn default() -> Self {
        ContentOptions {
            layout: Layout::Vendor,
            sku_column: "sku".to_owned(),
            extra_columns: false,
            reorder_columns: false,
            edition_column: true,
            compute_points_item: ComputePointsItem::default(),
            infra_rows: false,
            customer_trial: true,
            partner_trial: true,
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Unit {
    Bytes,
    Quantity,
    Seconds,
}

impl Unit {
    fn as_str(self) -> &'static str {
        match self {
            Unit::Bytes => "bytes",
            Unit::Quantity => "quantity",
            Unit::Seconds => "seconds",
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum App {
    Backup,
    DisasterRecovery,
}

impl App {
    fn index(self) -> usize {
        match self {
            App::Backup => 0,
            App::DisasterRecovery => 1,
        }
    }

    fn title(self) -> &'static str {
        match self {
            App::Backup => "Cyber Protection",
            App::DisasterRecovery => "Disaster Recovery",
        }
    }
}

/// Application UUIDs are made up (the real ones are not in the sources) but stable.
fn application_ids() -> [String; 2] {
    [
        derived_uuid(&["application", "backup"]),
        derived_uuid(&["application", "disaster_recovery"]),
    ]
}

struct Item {
    offering_item: &'static str,
    usage_name: &'static str,
    unit: Unit,
    sku: &'static str,
    title: &'static str,
    app: App,
}

const EDITION: &str = "pck_per_workload";

const STORAGE: usize = 0;
const WORKSTATIONS: usize = 1;
/// The Disaster Recovery compute points item, whose name is a scenario knob.
const COMPUTE: usize = 6;

const ITEMS: [Item; 7] = [
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
const BACKENDS: [&str; 3] = ["acronis", "azure", "google"];

fn item_name(spec: &ReportSpec, item: usize) -> &'static str {
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

fn num(parts: &[&str]) -> u64 {
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

struct Tenant {
    uuid: String,
    /// The API v1 numeric id `json_v2_0` rows carry as `tenant_id`.
    number: u64,
    name: String,
    kind: &'static str,
    has_dr: bool,
    /// Carries trial usage next to (or instead of) production.
    trial: bool,
}

/// Realistic company-name tails; some need CSV quoting or are non-ASCII on purpose.
const NAME_SUFFIXES: [&str; 6] = [
    "",
    ", Inc.",
    " GmbH",
    " \"Nord\" AG",
    " Müller & Söhne",
    " S.A.",
];

fn tenant_number(uuid: &str) -> u64 {
    100_000 + num(&["tenant-number", uuid]) % 9_900_000
}

fn tenants(spec: &ReportSpec, stale: bool) -> Vec<Tenant> {
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

const GIB: u64 = 1 << 30;

/// A tenant's usage of one item over the period (end state; for compute points, consumption).
fn base_value(t: &Tenant, item: usize, backend: &str, salt: &str) -> u64 {
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

fn optional(h: u64, v: u64) -> u64 {
    if h.is_multiple_of(3) { 0 } else { v }
}

/// Day-to-day variation of ±10 % around the base value.
fn day_value(base: u64, t: &Tenant, item: usize, backend: &str, day: &str, salt: &str) -> u64 {
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

fn percent(v: u64, pct: u64) -> u64 {
    u64::try_from(u128::from(v) * u128::from(pct) / 100).unwrap_or(u64::MAX)
}

fn unit_step(item: usize) -> u64 {
    if ITEMS[item].unit == Unit::Seconds {
        36
    } else {
        1
    }
}

fn round_to_unit(item: usize, v: u64) -> u64 {
    let step = unit_step(item);
    v / step * step
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Split {
    production: u64,
    trial: u64,
}

impl Split {
    fn total(self) -> u64 {
        self.production.saturating_add(self.trial)
    }

    fn get(self, scope: Scope) -> u64 {
        match scope {
            Scope::Production => self.production,
            Scope::Total => self.total(),
            Scope::Trial => self.trial,
        }
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Usage {
    absolute: Split,
    delta: Split,
    effective: Split,
}

impl Usage {
    fn get(&self, measure: Measure, scope: Scope) -> u64 {
        match measure {
            Measure::Absolute => self.absolute.get(scope),
            Measure::Delta => self.delta.get(scope),
            Measure::Effective => self.effective.get(scope),
        }
    }

    /// `json_v2_0`'s `value`: what was consumed in the period for compute points, the state at
    /// the end for everything else (the measure the vendor bills each on).
    fn value(&self, item: usize) -> u64 {
        if item == COMPUTE {
            self.delta.total()
        } else {
            self.absolute.total()
        }
    }
}

/// How a tenant's figure for one item divides into production and trial.
fn split(t: &Tenant, item: usize, base: u64) -> Split {
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
fn scope_measures(item: usize, base: u64, h: u64, daily: bool) -> (u64, u64, u64) {
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

fn usage(
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

struct Period {
    start: Date,
    end: Date,
    /// `YYYY-MM-DD` of `start`.
    date: String,
    /// RFC 3339 of `start`'s midnight UTC.
    range_start: String,
}

fn periods(spec: &ReportSpec) -> Vec<Period> {
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

struct Row {
    tenant: usize,
    item: usize,
    /// Index into `BACKENDS` for an infrastructure row.
    backend: Option<usize>,
    period: usize,
    usage: Usage,
}

/// Everything one rendered file draws on.
struct Ctx<'a> {
    spec: &'a ReportSpec,
    tenants: Vec<Tenant>,
    periods: Vec<Period>,
    rows: Vec<Row>,
    apps: [String; 2],
    /// `(infra.id, infra.owner_id)` per backend.
    infra: Vec<(String, String)>,
    generated_at: String,
}

impl<'a> Ctx<'a> {
    fn new(spec: &'a ReportSpec, stale: bool) -> Self {
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

    fn sku(&self, item: usize) -> &'static str {
        sku_cell(self.spec, &ITEMS[item])
    }
}

fn gen_date(spec: &ReportSpec) -> i64 {
    unix_midnight(spec.end) + 86_400
}

fn sku_cell(spec: &ReportSpec, item: &Item) -> &'static str {
    if spec.show_skus && !spec.no_skus {
        item.sku
    } else {
        ""
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Measure {
    Absolute,
    Delta,
    Effective,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Scope {
    Production,
    Total,
    Trial,
}

/// One `csv_v2_0` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Col {
    TenantId,
    TenantKind,
    TenantName,
    ApplicationId,
    ApplicationName,
    Edition,
    Name,
    Date,
    UsageUnit,
    InfraId,
    InfraOwnerId,
    InfraBackendType,
    Usage(Measure, Scope),
    GeneratedAt,
    Sku,
}

const USAGE_COLUMNS: [(Measure, Scope, &str); 9] = [
    (
        Measure::Absolute,
        Scope::Production,
        "usage.absolute.production",
    ),
    (Measure::Absolute, Scope::Total, "usage.absolute.total"),
    (Measure::Absolute, Scope::Trial, "usage.absolute.trial"),
    (Measure::Delta, Scope::Production, "usage.delta.production"),
    (Measure::Delta, Scope::Total, "usage.delta.total"),
    (Measure::Delta, Scope::Trial, "usage.delta.trial"),
    (
        Measure::Effective,
        Scope::Production,
        "usage.effective.production",
    ),
    (Measure::Effective, Scope::Total, "usage.effective.total"),
    (Measure::Effective, Scope::Trial, "usage.effective.trial"),
];

/// Column and key names the SKU column must not take (see `scenario::check_sku_column`).
pub(crate) const RESERVED_NAMES: [&str; 36] = [
    "tenant.id",
    "tenant.kind",
    "tenant.name",
    "application.id",
    "application.name",
    "edition",
    "name",
    "date",
    "usage.unit",
    "infra.id",
    "infra.owner_id",
    "infra.backend_type",
    "usage.absolute.production",
    "usage.absolute.total",
    "usage.absolute.trial",
    "usage.delta.production",
    "usage.delta.total",
    "usage.delta.trial",
    "usage.effective.production",
    "usage.effective.total",
    "usage.effective.trial",
    "report.generated_at",
    "tenant_uuid",
    "tenant_id",
    "tenant_name",
    "tenant_kind",
    "application_id",
    "application_name",
    "infra_id",
    "infra_backend_type",
    "measurement_unit",
    "usage_name",
    "offering_item",
    "range_start",
    "value",
    "absolute_value",
];

impl Col {
    fn header(self, spec: &ReportSpec) -> &str {
        match self {
            Col::TenantId => "tenant.id",
            Col::TenantKind => "tenant.kind",
            Col::TenantName => "tenant.name",
            Col::ApplicationId => "application.id",
            Col::ApplicationName => "application.name",
            Col::Edition => "edition",
            Col::Name => "name",
            Col::Date => "date",
            Col::UsageUnit => "usage.unit",
            Col::InfraId => "infra.id",
            Col::InfraOwnerId => "infra.owner_id",
            Col::InfraBackendType => "infra.backend_type",
            Col::Usage(m, s) => USAGE_COLUMNS
                .iter()
                .find(|(cm, cs, _)| *cm == m && *cs == s)
                .map_or("usage", |(_, _, name)| name),
            Col::GeneratedAt => "report.generated_at",
            Col::Sku => &spec.content.sku_column,
        }
    }
}

/// A deterministic shuffle that never leaves the order as it was.
fn shuffle<T: Copy + PartialEq>(items: &mut [T], seed: &[&str]) {
    let original = items.to_vec();
    for i in (1..items.len()).rev() {
        let mut parts = seed.to_vec();
        let idx = i.to_string();
        parts.push(&idx);
        let j = (num(&parts) % (i as u64 + 1)) as usize;
        items.swap(i, j);
    }
    if items == original.as_slice() {
        items.rotate_left(1);
    }
}

fn columns(spec: &ReportSpec) -> Vec<Col> {
    let o = &spec.content;
    let mut cols = vec![Col::TenantId, Col::TenantKind];
    if o.extra_columns {
        cols.push(Col::TenantName);
    }
    cols.push(Col::ApplicationId);
    if o.extra_columns {
        cols.push(Col::ApplicationName);
    }
    if o.edition_column {
        cols.push(Col::Edition);
    }
    cols.push(Col::Name);
    if matches!(spec.kind, Kind::Daily | Kind::Breakdown) {
        cols.push(Col::Date);
    }
    if o.extra_columns {
        cols.push(Col::UsageUnit);
    }
    cols.extend([Col::InfraId, Col::InfraOwnerId, Col::InfraBackendType]);
    cols.extend(USAGE_COLUMNS.iter().map(|(m, s, _)| Col::Usage(*m, *s)));
    if o.extra_columns {
        cols.push(Col::GeneratedAt);
    }
    if spec.show_skus {
        cols.push(Col::Sku);
    }
    if o.reorder_columns {
        shuffle(&mut cols, &["reorder-csv", &spec.tenant_id]);
    }
    cols
}

/// The text of one `csv_v2_0` row, shared by report rows and padding rows.
struct CsvRow<'a> {
    tenant_id: &'a str,
    tenant_kind: &'a str,
    tenant_name: &'a str,
    application_id: &'a str,
    application_name: &'a str,
    name: &'a str,
    date: &'a str,
    unit: &'a str,
    /// `(infra.id, infra.owner_id, infra.backend_type)`.
    infra: Option<(&'a str, &'a str, &'a str)>,
    usage: Usage,
    sku: &'a str,
    generated_at: &'a str,
    /// Zeros put in front of `usage.absolute.production`: padding's exact-length filler,
    /// which keeps the cell a valid number.
    lead_zeros: usize,
}

fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

fn write_csv_row(out: &mut String, cols: &[Col], r: &CsvRow) {
    for (i, col) in cols.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let cell: Cow<str> = match col {
            Col::TenantId => r.tenant_id.into(),
            Col::TenantKind => r.tenant_kind.into(),
            Col::TenantName => r.tenant_name.into(),
            Col::ApplicationId => r.application_id.into(),
            Col::ApplicationName => r.application_name.into(),
            Col::Edition => EDITION.into(),
            Col::Name => r.name.into(),
            Col::Date => r.date.into(),
            Col::UsageUnit => r.unit.into(),
            Col::InfraId => r.infra.map_or("", |i| i.0).into(),
            Col::InfraOwnerId => r.infra.map_or("", |i| i.1).into(),
            Col::InfraBackendType => r.infra.map_or("", |i| i.2).into(),
            Col::Usage(m, s) => {
                let v = r.usage.get(*m, *s);
                if r.lead_zeros > 0 && *m == Measure::Absolute && *s == Scope::Production {
                    format!("{}{v}", "0".repeat(r.lead_zeros)).into()
                } else {
                    v.to_string().into()
                }
            }
            Col::GeneratedAt => r.generated_at.into(),
            Col::Sku => r.sku.into(),
        };
        csv_field(out, &cell);
    }
    out.push('\n');
}

fn render_csv_v2(ctx: &Ctx) -> String {
    let spec = ctx.spec;
    let cols = columns(spec);
    let mut out = String::with_capacity(ctx.rows.len() * 260 + 512);
    let header: Vec<&str> = cols.iter().map(|c| c.header(spec)).collect();
    csv_line(&mut out, &header);
    for r in &ctx.rows {
        let t = &ctx.tenants[r.tenant];
        let item = &ITEMS[r.item];
        let period = &ctx.periods[r.period];
        let infra = r.backend.and_then(|b| {
            let (id, owner) = ctx.infra.get(b)?;
            Some((id.as_str(), owner.as_str(), *BACKENDS.get(b)?))
        });
        let row = CsvRow {
            tenant_id: &t.uuid,
            tenant_kind: t.kind,
            tenant_name: &t.name,
            application_id: &ctx.apps[item.app.index()],
            application_name: item.app.title(),
            name: item_name(spec, r.item),
            date: &period.date,
            unit: item.unit.as_str(),
            infra,
            usage: r.usage,
            sku: ctx.sku(r.item),
            generated_at: &ctx.generated_at,
            lead_zeros: 0,
        };
        write_csv_row(&mut out, &cols, &row);
    }
    out
}

/// A JSON value with keys kept in the order given (serde_json's map would sort them).
enum JVal {
    Null,
    Num(u64),
    Str(String),
    Obj(Vec<(String, JVal)>),
}

fn write_json_str(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
}

fn write_json(out: &mut String, v: &JVal) {
    match v {
        JVal::Null => out.push_str("null"),
        JVal::Num(n) => out.push_str(&n.to_string()),
        JVal::Str(s) => write_json_str(out, s),
        JVal::Obj(fields) => {
            out.push('{');
            for (i, (k, v)) in fields.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json_str(out, k);
                out.push(':');
                write_json(out, v);
            }
            out.push('}');
        }
    }
}

/// Put `value` at a dotted path, reusing an object already there (matched regardless of case,
/// as `Offering_Item.SKU` means the `offering_item` object).
fn insert_path(fields: &mut Vec<(String, JVal)>, path: &[&str], value: JVal) {
    match path {
        [] => {}
        [last] => fields.push(((*last).to_owned(), value)),
        [head, rest @ ..] => {
            let existing = fields
                .iter_mut()
                .find(|(k, v)| k.eq_ignore_ascii_case(head) && matches!(v, JVal::Obj(_)));
            if let Some((_, JVal::Obj(inner))) = existing {
                insert_path(inner, rest, value);
            } else {
                let mut inner = Vec::new();
                insert_path(&mut inner, rest, value);
                fields.push(((*head).to_owned(), JVal::Obj(inner)));
            }
        }
    }
}

/// One key of a `json_v2_0` row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    TenantUuid,
    TenantId,
    TenantName,
    TenantKind,
    ApplicationId,
    ApplicationName,
    Edition,
    InfraId,
    InfraBackendType,
    MeasurementUnit,
    Name,
    UsageName,
    OfferingItem,
    RangeStart,
    Value,
    AbsoluteValue,
    Type,
    Sku,
}

fn json_keys(spec: &ReportSpec) -> Vec<Key> {
    let o = &spec.content;
    let mut keys = vec![Key::TenantUuid, Key::TenantId];
    if o.extra_columns {
        keys.extend([Key::TenantName, Key::TenantKind]);
    }
    keys.push(Key::ApplicationId);
    if o.extra_columns {
        keys.push(Key::ApplicationName);
    }
    if o.edition_column {
        keys.push(Key::Edition);
    }
    keys.extend([
        Key::InfraId,
        Key::InfraBackendType,
        Key::MeasurementUnit,
        Key::Name,
        Key::UsageName,
        Key::OfferingItem,
        Key::RangeStart,
        Key::Value,
        Key::AbsoluteValue,
        Key::Type,
    ]);
    if spec.show_skus {
        keys.push(Key::Sku);
    }
    if o.reorder_columns {
        shuffle(&mut keys, &["reorder-json", &spec.tenant_id]);
    }
    keys
}

fn json_row(ctx: &Ctx, keys: &[Key], r: &Row) -> JVal {
    let spec = ctx.spec;
    let t = &ctx.tenants[r.tenant];
    let item = &ITEMS[r.item];
    let mut fields: Vec<(String, JVal)> = Vec::with_capacity(keys.len() + 1);
    let mut sku_at = None;
    for key in keys {
        let (name, value) = match key {
            Key::TenantUuid => ("tenant_uuid", JVal::Str(t.uuid.clone())),
            Key::TenantId => ("tenant_id", JVal::Num(t.number)),
            Key::TenantName => ("tenant_name", JVal::Str(t.name.clone())),
            Key::TenantKind => ("tenant_kind", JVal::Str(t.kind.to_owned())),
            Key::ApplicationId => (
                "application_id",
                JVal::Str(ctx.apps[item.app.index()].clone()),
            ),
            Key::ApplicationName => ("application_name", JVal::Str(item.app.title().to_owned())),
            Key::Edition => ("edition", JVal::Str(EDITION.to_owned())),
            Key::InfraId => (
                "infra_id",
                r.backend
                    .and_then(|b| ctx.infra.get(b))
                    .map_or(JVal::Null, |(id, _)| JVal::Str(id.clone())),
            ),
            Key::InfraBackendType => match r.backend.and_then(|b| BACKENDS.get(b)) {
                Some(b) => ("infra_backend_type", JVal::Str((*b).to_owned())),
                None => continue,
            },
            Key::MeasurementUnit => ("measurement_unit", JVal::Str(item.unit.as_str().to_owned())),
            Key::Name => ("name", JVal::Str(item_name(spec, r.item).to_owned())),
            Key::UsageName => ("usage_name", JVal::Str(item.usage_name.to_owned())),
            Key::OfferingItem => {
                let quota = if item.unit == Unit::Quantity {
                    let h = num(&["quota", &t.uuid, item.offering_item]);
                    if h.is_multiple_of(2) {
                        JVal::Num(50 + h % 50)
                    } else {
                        JVal::Null
                    }
                } else {
                    JVal::Null
                };
                (
                    "offering_item",
                    JVal::Obj(vec![
                        ("quota".to_owned(), quota),
                        ("status".to_owned(), JVal::Num(1)),
                    ]),
                )
            }
            Key::RangeStart => (
                "range_start",
                JVal::Str(ctx.periods[r.period].range_start.clone()),
            ),
            Key::Value => ("value", JVal::Num(r.usage.value(r.item))),
            Key::AbsoluteValue => ("absolute_value", JVal::Num(r.usage.absolute.total())),
            Key::Type => (
                "type",
                JVal::Str(
                    if r.item == COMPUTE {
                        "infra"
                    } else {
                        "feature"
                    }
                    .to_owned(),
                ),
            ),
            Key::Sku => {
                sku_at = Some(fields.len());
                continue;
            }
        };
        fields.push((name.to_owned(), value));
    }
    if let Some(at) = sku_at {
        let sku = JVal::Str(ctx.sku(r.item).to_owned());
        let path: Vec<&str> = spec.content.sku_column.split('.').collect();
        let nests_in_existing = path.len() > 1
            && fields
                .iter()
                .any(|(k, v)| k.eq_ignore_ascii_case(path[0]) && matches!(v, JVal::Obj(_)));
        if nests_in_existing {
            insert_path(&mut fields, &path, sku);
        } else {
            // Built apart so it lands where the key order put the SKU.
            let mut holder = Vec::new();
            insert_path(&mut holder, &path, sku);
            for (offset, field) in holder.into_iter().enumerate() {
                fields.insert((at + offset).min(fields.len()), field);
            }
        }
    }
    JVal::Obj(fields)
}

#[derive(Serialize)]
struct JsonV2Params<'a> {
    kind: u32,
    gen_date: i64,
    begin_date: i64,
    end_date: i64,
    group_id: u64,
    name: &'a str,
    report_level: u32,
    report_type: u32,
}

fn group_id(spec: &ReportSpec) -> u64 {
    1_000_000 + num(&["group", &spec.tenant_id]) % 9_000_000
}

fn render_json_v2(ctx: &Ctx) -> Vec<u8> {
    let spec = ctx.spec;
    let end_next_day = gen_date(spec);
    let params = JsonV2Params {
        kind: spec.kind.json_code(),
        gen_date: end_next_day,
        begin_date: unix_midnight(spec.start),
        end_date: end_next_day - 1,
        group_id: group_id(spec),
        name: &ctx.tenants[0].name,
        report_level: spec.level.json_code(),
        report_type: 1,
    };
    let keys = json_keys(spec);
    let mut out = String::with_capacity(ctx.rows.len() * 420 + 256);
    out.push_str("{\"params\":");
    // Only strings and integers: serialisation cannot fail.
    out.push_str(&serde_json::to_string(&params).unwrap_or_default());
    out.push_str(",\"tenants\":[");
    for (i, r) in ctx.rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json(&mut out, &json_row(ctx, &keys, r));
    }
    out.push_str("]}");
    out.into_bytes()
}

/// `layout: unknown`: a well-formed file that has nothing a report reader looks for.
fn render_unknown(ctx: &Ctx, format: Format) -> Vec<u8> {
    let mut out = String::new();
    if format == Format::JsonV2 {
        out.push_str("{\"data\":[");
        for (i, r) in ctx.rows.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&format!("{{\"foo\":{}}}", r.usage.absolute.total()));
        }
        out.push_str("]}");
    } else {
        out.push_str("Col A,Col B,Col C\n");
        for r in &ctx.rows {
            let a = &ctx.tenants[r.tenant].uuid;
            let b = ITEMS[r.item].title;
            csv_line(&mut out, &[a, b, &r.usage.absolute.total().to_string()]);
        }
    }
    out.into_bytes()
}

/// `layout: html`: what a captive portal or an expired SSO session answers instead of a file.
const LOGIN_PAGE: &str = "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Sign in</title></head><body><h1>Sign in</h1><form method=\"post\" action=\"/login\"><label>Login <input name=\"login\"></label><label>Password <input type=\"password\" name=\"password\"></label><button type=\"submit\">Sign in</button></form></body></html>\n";

/// The `Content-Type` a stored file is served with.
pub(crate) fn content_type(spec: &ReportSpec, format: Format) -> &'static str {
    if spec.content.layout == Layout::Html {
        Format::Html.content_type()
    } else {
        format.content_type()
    }
}

fn html_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(c),
        }
    }
    out
}

/// UNIX time of `d`'s midnight UTC (dates reaching here are validated, so the fallback is
/// never used).
pub(crate) fn unix_midnight(d: Date) -> i64 {
    d.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .map_or(0, |z| z.timestamp().as_second())
}

/// `2019-08-08T07:36:58+00:00`, the form the docs show for `created_at`.
pub(crate) fn rfc3339_utc(secs: i64) -> String {
    jiff::Timestamp::from_second(secs)
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH)
        .strftime("%Y-%m-%dT%H:%M:%S+00:00")
        .to_string()
}

/// Render one stored file (without padding).
pub(crate) fn render(spec: &ReportSpec, format: Format, stale: bool) -> Vec<u8> {
    if spec.content.layout == Layout::Html {
        return LOGIN_PAGE.as_bytes().to_vec();
    }
    let ctx = Ctx::new(spec, stale);
    match format {
        Format::CsvV2 | Format::JsonV2 if spec.content.layout == Layout::Unknown => {
            render_unknown(&ctx, format)
        }
        Format::CsvV2 => render_csv_v2(&ctx).into_bytes(),
        Format::JsonV2 => render_json_v2(&ctx),
        Format::JsonV1 => render_json_v1(&ctx),
        Format::Csv => render_legacy_csv(&ctx).into_bytes(),
        Format::Html => render_html(&ctx).into_bytes(),
    }
}

#[derive(Serialize)]
struct JsonV1<'a> {
    report: JsonV1Report<'a>,
    usages: Vec<JsonV1Usage<'a>>,
}

#[derive(Serialize)]
struct JsonV1Report<'a> {
    tenant_id: &'a str,
    tenant_name: &'a str,
    group_id: u64,
    kind: &'a str,
    level: &'a str,
    period_start: String,
    period_end: String,
}

#[derive(Serialize)]
struct JsonV1Usage<'a> {
    tenant_id: &'a str,
    tenant_name: &'a str,
    tenant_kind: &'a str,
    edition: &'a str,
    offering_item: &'a str,
    name: &'a str,
    unit: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    sku: Option<&'a str>,
    start: String,
    end: String,
    value: u64,
}

fn render_json_v1(ctx: &Ctx) -> Vec<u8> {
    let spec = ctx.spec;
    let doc = JsonV1 {
        report: JsonV1Report {
            tenant_id: &ctx.tenants[0].uuid,
            tenant_name: &ctx.tenants[0].name,
            group_id: group_id(spec),
            kind: spec.kind.as_str(),
            level: spec.level.as_str(),
            period_start: spec.start.to_string(),
            period_end: spec.end.to_string(),
        },
        usages: ctx
            .rows
            .iter()
            .map(|r| {
                let t = &ctx.tenants[r.tenant];
                let item = &ITEMS[r.item];
                let period = &ctx.periods[r.period];
                JsonV1Usage {
                    tenant_id: &t.uuid,
                    tenant_name: &t.name,
                    tenant_kind: t.kind,
                    edition: EDITION,
                    offering_item: item_name(spec, r.item),
                    name: item.usage_name,
                    unit: item.unit.as_str(),
                    sku: spec.show_skus.then(|| ctx.sku(r.item)),
                    start: period.start.to_string(),
                    end: period.end.to_string(),
                    value: r.usage.value(r.item),
                }
            })
            .collect(),
    };
    serde_json::to_vec(&doc).unwrap_or_default()
}

/// Human units for the legacy table formats: GB for storage and, per the docs,
/// DR compute points already divided by 3600.
fn legacy_value(item: &Item, value: u64) -> (String, &'static str) {
    match item.unit {
        Unit::Bytes => (
            format_hundredths(u128::from(value) * 100 / u128::from(GIB)),
            "GB",
        ),
        Unit::Seconds => (format_hundredths(u128::from(value) * 100 / 3600), "points"),
        Unit::Quantity => (value.to_string(), "pcs"),
    }
}

fn format_hundredths(v: u128) -> String {
    format!("{}.{:02}", v / 100, v % 100)
}

const LEGACY_HEADER: [&str; 10] = [
    "Customer",
    "Customer ID",
    "Type",
    "Edition",
    "Service",
    "Usage",
    "Unit",
    "SKU",
    "From",
    "To",
];

fn legacy_cells(ctx: &Ctx, r: &Row) -> [String; 10] {
    let t = &ctx.tenants[r.tenant];
    let item = &ITEMS[r.item];
    let period = &ctx.periods[r.period];
    let (value, unit) = legacy_value(item, r.usage.value(r.item));
    let service = match r.backend.and_then(|b| BACKENDS.get(b)) {
        Some(b) => format!("{} ({b})", item.title),
        None => item.title.to_owned(),
    };
    [
        t.name.clone(),
        t.uuid.clone(),
        t.kind.to_owned(),
        EDITION.to_owned(),
        service,
        value,
        unit.to_owned(),
        ctx.sku(r.item).to_owned(),
        period.start.to_string(),
        period.end.to_string(),
    ]
}

fn render_legacy_csv(ctx: &Ctx) -> String {
    let mut out = String::with_capacity(ctx.rows.len() * 140);
    csv_line(&mut out, &LEGACY_HEADER);
    for r in &ctx.rows {
        let cells = legacy_cells(ctx, r);
        let refs: Vec<&str> = cells.iter().map(String::as_str).collect();
        csv_line(&mut out, &refs);
    }
    out
}

fn render_html(ctx: &Ctx) -> String {
    let spec = ctx.spec;
    let mut out = String::with_capacity(ctx.rows.len() * 300);
    let title = format!(
        "Usage report for {} ({} to {})",
        ctx.tenants[0].name, spec.start, spec.end
    );
    out.push_str("<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>");
    out.push_str(&html_escape(&title));
    out.push_str("</title></head>\n<body>\n<h1>");
    out.push_str(&html_escape(&title));
    out.push_str("</h1>\n<table>\n<thead><tr>");
    for h in LEGACY_HEADER {
        out.push_str("<th>");
        out.push_str(h);
        out.push_str("</th>");
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for r in &ctx.rows {
        out.push_str("<tr>");
        for c in legacy_cells(ctx, r) {
            out.push_str("<td>");
            out.push_str(&html_escape(&c));
            out.push_str("</td>");
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table>\n</body>\n</html>\n");
    out
}

/// Extra `csv_v2_0` rows, generated on demand so a multi-GiB body never sits in memory.
///
/// Each row is a distinct made-up customer using one `pw_padding` seat, in the report's own
/// columns. Every row has the same length except the last, which absorbs the remainder (as
/// leading zeros of a number) so the padding is exactly `pad_bytes` long (or one row long when
/// `pad_bytes` is smaller than a row).
#[derive(Clone, Debug)]
pub(crate) struct Padding {
    rows: u64,
    row_len: u64,
    extra: u64,
    /// Row text before and after the 12-digit row number.
    prefix: Vec<u8>,
    suffix: Vec<u8>,
    /// The same for the last row, which carries the `extra` filler.
    last_prefix: Vec<u8>,
    last_suffix: Vec<u8>,
}

/// Stands where the row number goes; a control character no real cell contains and that
/// needs no CSV quoting.
const ROW_NUMBER_MARK: char = '\u{1}';

/// A padding row's text split around its row number.
fn padding_template(spec: &ReportSpec, cols: &[Col], lead_zeros: usize) -> (Vec<u8>, Vec<u8>) {
    // The row number replaces the UUID's last group (12 hex digits; decimal digits are hex
    // too), so every padding row is a distinct, valid tenant id.
    let uuid = derived_uuid(&["padding", &spec.tenant_id]);
    let tenant_id = format!("{}{ROW_NUMBER_MARK}", uuid.get(..24).unwrap_or(&uuid));
    let apps = application_ids();
    let generated_at = rfc3339_utc(gen_date(spec));
    let date = spec.start.to_string();
    // A SKU like the real rows, so clients checking SKU presence are not misled.
    let sku = if spec.show_skus && !spec.no_skus {
        "SP4APDENS"
    } else {
        ""
    };
    let row = CsvRow {
        tenant_id: &tenant_id,
        tenant_kind: "customer",
        tenant_name: "Padding",
        application_id: &apps[App::Backup.index()],
        application_name: App::Backup.title(),
        name: "pw_padding",
        date: &date,
        unit: Unit::Quantity.as_str(),
        infra: None,
        usage: Usage {
            absolute: Split {
                production: 1,
                trial: 0,
            },
            delta: Split::default(),
            effective: Split {
                production: 1,
                trial: 0,
            },
        },
        sku,
        generated_at: &generated_at,
        lead_zeros,
    };
    let mut line = String::new();
    write_csv_row(&mut line, cols, &row);
    let (before, after) = line.split_once(ROW_NUMBER_MARK).unwrap_or((&line, ""));
    (before.as_bytes().to_vec(), after.as_bytes().to_vec())
}

impl Padding {
    pub(crate) fn new(spec: &ReportSpec, pad_bytes: u64) -> Option<Padding> {
        if pad_bytes == 0 {
            return None;
        }
        let cols = columns(spec);
        let (prefix, suffix) = padding_template(spec, &cols, 0);
        let row_len = (prefix.len() + 12 + suffix.len()) as u64;
        let (rows, extra) = if pad_bytes < row_len {
            (1, 0)
        } else {
            (pad_bytes / row_len, pad_bytes % row_len)
        };
        let (last_prefix, last_suffix) =
            padding_template(spec, &cols, usize::try_from(extra).unwrap_or(0));
        Some(Padding {
            rows,
            row_len,
            extra,
            prefix,
            suffix,
            last_prefix,
            last_suffix,
        })
    }

    pub(crate) fn len(&self) -> u64 {
        self.rows * self.row_len + self.extra
    }

    pub(crate) fn rows(&self) -> u64 {
        self.rows
    }

    pub(crate) fn write_rows(&self, from: u64, to: u64, out: &mut Vec<u8>) {
        // The row number as 12 digits, counted up in place: formatting each of the millions of
        // rows of a GiB body made the sandbox, not the client, the limit of streaming benches.
        let mut digits = [b'0'; 12];
        let mut n = from;
        for digit in digits.iter_mut().rev() {
            *digit = b'0' + (n % 10) as u8;
            n /= 10;
        }
        for i in from..to.min(self.rows) {
            let last = i + 1 == self.rows;
            out.extend_from_slice(if last {
                &self.last_prefix
            } else {
                &self.prefix
            });
            out.extend_from_slice(&digits);
            for digit in digits.iter_mut().rev() {
                if *digit == b'9' {
                    *digit = b'0';
                } else {
                    *digit += 1;
                    break;
                }
            }
            out.extend_from_slice(if last {
                &self.last_suffix
            } else {
                &self.suffix
            });
        }
    }
}

/// The decoded bytes of one stored file: the rendered report plus optional padding.
#[derive(Debug)]
pub(crate) struct StoredBody {
    pub base: Bytes,
    pub padding: Option<Padding>,
    pub content_type: &'static str,
}

impl StoredBody {
    pub(crate) fn build(spec: &ReportSpec, format: Format, stale: bool, pad_bytes: u64) -> Self {
        let padding = if format == Format::CsvV2 && !stale && spec.content.layout == Layout::Vendor
        {
            Padding::new(spec, pad_bytes)
        } else {
            None
        };
        StoredBody {
            base: Bytes::from(render(spec, format, stale)),
            padding,
            content_type: content_type(spec, format),
        }
    }

    pub(crate) fn len(&self) -> u64 {
        self.base.len() as u64 + self.padding.as_ref().map_or(0, Padding::len)
    }

    /// The whole body in memory; callers only do this below the streaming threshold.
    pub(crate) fn to_bytes(&self) -> Bytes {
        match &self.padding {
            None => self.base.clone(),
            Some(p) => {
                let mut out = Vec::with_capacity(self.len() as usize);
                out.extend_from_slice(&self.base);
                p.write_rows(0, p.rows(), &mut out);
                Bytes::from(out)
            }
        }
    }
}

/// Yields a stored body in chunks of roughly `CHUNK` bytes.
pub(crate) struct ChunkCursor {
    body: std::sync::Arc<StoredBody>,
    base_sent: bool,
    next_row: u64,
}

const CHUNK: usize = 64 * 1024;

impl ChunkCursor {
    pub(crate) fn new(body: std::sync::Arc<StoredBody>) -> Self {
        ChunkCursor {
            body,
            base_sent: false,
            next_row: 0,
        }
    }

    pub(crate) fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.base_sent {
            self.base_sent = true;
            if !self.body.base.is_empty() {
                return Some(self.body.base.clone());
            }
        }
        let p = self.body.padding.as_ref()?;
        if self.next_row >= p.rows() {
            return None;
        }
        let per_chunk = (CHUNK as u64 / p.row_len).max(1);
        let to = (self.next_row + per_chunk).min(p.rows());
        let mut out = Vec::with_capacity(CHUNK + p.extra as usize + p.row_len as usize);
        p.write_rows(self.next_row, to, &mut out);
        self.next_row = to;
        Some(Bytes::from(out))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, BTreeSet};

    use super::*;

    const DEFAULT_HEADER: &str = "tenant.id,tenant.kind,application.id,edition,name,infra.id,infra.owner_id,infra.backend_type,usage.absolute.production,usage.absolute.total,usage.absolute.trial,usage.delta.production,usage.delta.total,usage.delta.trial,usage.effective.production,usage.effective.total,usage.effective.trial";

    fn spec(kind: Kind) -> ReportSpec {
        ReportSpec {
            tenant_id: "ede9f834-70b3-476c-83d9-736f9f8c7dae".into(),
            kind,
            level: Level::DirectPartners,
            start: "2024-05-01".parse().unwrap(),
            end: "2024-05-31".parse().unwrap(),
            show_skus: true,
            hide_zero_usage: false,
            no_skus: false,
            content: ContentOptions::default(),
        }
    }

    fn with(f: impl FnOnce(&mut ReportSpec)) -> ReportSpec {
        let mut s = spec(Kind::Summary);
        f(&mut s);
        s
    }

    type CsvRecord = BTreeMap<String, String>;

    /// Header and rows keyed by column name, as a by-name reader sees them.
    fn csv_of(bytes: &[u8]) -> (Vec<String>, Vec<CsvRecord>) {
        let mut r = csv::ReaderBuilder::new()
            .has_headers(true)
            .from_reader(bytes);
        let header: Vec<String> = r.headers().unwrap().iter().map(str::to_owned).collect();
        let rows = r
            .records()
            .map(|rec| {
                let rec = rec.unwrap();
                assert_eq!(rec.len(), header.len());
                header
                    .iter()
                    .cloned()
                    .zip(rec.iter().map(str::to_owned))
                    .collect()
            })
            .collect();
        (header, rows)
    }

    fn csv(spec: &ReportSpec) -> (Vec<String>, Vec<CsvRecord>) {
        csv_of(&render(spec, Format::CsvV2, false))
    }

    fn json(spec: &ReportSpec) -> serde_json::Value {
        serde_json::from_slice(&render(spec, Format::JsonV2, false)).unwrap()
    }

    fn json_rows(spec: &ReportSpec) -> Vec<serde_json::Value> {
        json(spec)["tenants"].as_array().unwrap().clone()
    }

    /// Keys of a JSON object in document order (serde_json's map sorts them).
    fn json_key_order(body: &[u8]) -> Vec<String> {
        let text = std::str::from_utf8(body).unwrap();
        let first = text.find("\"tenants\":[{").unwrap() + "\"tenants\":[".len();
        let end = first + text[first..].find("},{").unwrap_or(text.len() - first);
        let row = &text[first..end];
        let mut keys = Vec::new();
        let mut depth = 0;
        let mut chars = row.char_indices().peekable();
        while let Some((i, c)) = chars.next() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '"' => {
                    let close = i + 1 + row[i + 1..].find('"').unwrap();
                    if depth == 1 && row[close + 1..].starts_with(':') {
                        keys.push(row[i + 1..close].to_owned());
                    }
                    while chars.peek().is_some_and(|(j, _)| *j <= close) {
                        chars.next();
                    }
                }
                _ => {}
            }
        }
        keys
    }

    fn n(r: &CsvRecord, col: &str) -> u64 {
        r[col].parse().unwrap()
    }

    const COMPUTE_NAMES: [&str; 5] = [
        "pw_base_adv_dr_compute_points",
        "compute_points",
        "pw_compute_points",
        "dre_compute_points",
        "p_dre_compute_points",
    ];

    fn is_compute(r: &CsvRecord) -> bool {
        COMPUTE_NAMES.contains(&r["name"].as_str())
    }

    #[test]
    fn same_inputs_same_bytes() {
        for f in Format::NAMES {
            let f = Format::parse(f).unwrap();
            for k in [Kind::Daily, Kind::Summary, Kind::Current, Kind::Breakdown] {
                assert_eq!(render(&spec(k), f, false), render(&spec(k), f, false));
            }
        }
        let knobs = with(|s| {
            s.content.reorder_columns = true;
            s.content.extra_columns = true;
            s.content.infra_rows = true;
        });
        assert_eq!(
            render(&knobs, Format::JsonV2, false),
            render(&knobs, Format::JsonV2, false)
        );
        let mut other = spec(Kind::Summary);
        other.tenant_id = "0b4b1a7e-0000-4000-8000-000000000001".into();
        assert_ne!(
            render(&other, Format::CsvV2, false),
            render(&spec(Kind::Summary), Format::CsvV2, false)
        );
        assert_ne!(
            render(&spec(Kind::Summary), Format::CsvV2, true),
            render(&spec(Kind::Summary), Format::CsvV2, false)
        );
    }

    #[test]
    fn default_header_is_the_vendor_columns_then_sku() {
        let text = String::from_utf8(render(&spec(Kind::Summary), Format::CsvV2, false)).unwrap();
        assert_eq!(
            text.lines().next(),
            Some(format!("{DEFAULT_HEADER},sku").as_str())
        );
        let no_skus = with(|s| s.show_skus = false);
        let text = String::from_utf8(render(&no_skus, Format::CsvV2, false)).unwrap();
        assert_eq!(text.lines().next(), Some(DEFAULT_HEADER));
        // Day-by-day kinds add a date right after the item name.
        for kind in [Kind::Daily, Kind::Breakdown] {
            let (header, rows) = csv(&spec(kind));
            let name = header.iter().position(|h| h == "name").unwrap();
            assert_eq!(header[name + 1], "date");
            assert_eq!(
                rows.iter().filter(|r| r["date"] == "2024-05-17").count() * 31,
                rows.len()
            );
        }
        let (header, _) = csv(&spec(Kind::Current));
        assert!(!header.contains(&"date".to_owned()));
    }

    #[test]
    fn rows_are_consistent_measures() {
        for kind in [Kind::Summary, Kind::Daily, Kind::Current] {
            for n_tenant in 0..10 {
                let mut s = spec(kind);
                s.tenant_id = derived_uuid(&["t", &n_tenant.to_string()]);
                let (_, rows) = csv(&s);
                for r in &rows {
                    assert!(!r["tenant.id"].is_empty() && !r["application.id"].is_empty());
                    assert!(uuid::Uuid::parse_str(&r["application.id"]).is_ok());
                    assert!(!r["name"].is_empty());
                    assert_eq!(r["edition"], EDITION);
                    assert!(r["infra.id"].is_empty() && r["infra.owner_id"].is_empty());
                    assert!(r["infra.backend_type"].is_empty());
                    for m in ["absolute", "delta", "effective"] {
                        let p = n(r, &format!("usage.{m}.production"));
                        let t = n(r, &format!("usage.{m}.trial"));
                        assert_eq!(n(r, &format!("usage.{m}.total")), p + t, "{r:?}");
                    }
                    for scope in ["production", "trial", "total"] {
                        let abs = n(r, &format!("usage.absolute.{scope}"));
                        assert!(n(r, &format!("usage.delta.{scope}")) <= abs, "{r:?}");
                        assert!(n(r, &format!("usage.effective.{scope}")) <= abs, "{r:?}");
                    }
                    if is_compute(r) {
                        for (col, v) in r.iter().filter(|(k, _)| k.starts_with("usage.")) {
                            assert!(v.parse::<u64>().unwrap().is_multiple_of(36), "{col}");
                        }
                    }
                    assert!(!r["sku"].is_empty());
                }
            }
        }
    }

    #[test]
    fn each_tenant_row_is_its_own_usage_not_a_sum() {
        let (_, rows) = csv(&spec(Kind::Summary));
        let subject = spec(Kind::Summary).tenant_id;
        let items: BTreeSet<&str> = rows.iter().map(|r| r["name"].as_str()).collect();
        let (mut compared, mut equal) = (0, 0);
        for item in items {
            let of_item = rows.iter().filter(|r| r["name"] == item);
            let (own, children): (Vec<_>, Vec<_>) =
                of_item.partition(|r| r["tenant.id"] == subject);
            assert_eq!(own.len(), 1, "one row of the partner's own per item");
            for col in ["usage.absolute.total", "usage.delta.total"] {
                let sum: u64 = children.iter().map(|r| n(r, col)).sum();
                if sum > 0 {
                    compared += 1;
                    // Small counts may match by chance; bytes never do.
                    if n(own[0], col) == sum {
                        assert_ne!(item, "pw_base_storage");
                        equal += 1;
                    }
                }
            }
        }
        assert!(
            compared >= 4 && equal * 3 < compared,
            "{equal} of {compared}"
        );
        // One row per tenant × item: a billing sum over a tenant's rows is its usage.
        let pairs: BTreeSet<(&str, &str)> = rows
            .iter()
            .map(|r| (r["tenant.id"].as_str(), r["name"].as_str()))
            .collect();
        assert_eq!(pairs.len(), rows.len());
    }

    #[test]
    fn scope_rule_matters_for_partners_and_customers() {
        let (_, rows) = csv(&spec(Kind::Summary));
        let trial = |kind: &str| {
            rows.iter()
                .any(|r| r["tenant.kind"] == kind && n(r, "usage.absolute.trial") > 0)
        };
        assert!(trial("partner") && trial("customer"));
        assert!(
            rows.iter()
                .any(|r| r["tenant.kind"] == "partner" && n(r, "usage.absolute.production") > 0)
        );
        let off = with(|s| {
            s.content.customer_trial = false;
            s.content.partner_trial = false;
        });
        assert!(
            csv(&off)
                .1
                .iter()
                .all(|r| n(r, "usage.absolute.trial") == 0)
        );
        // Forced: every report with customers has one in trial.
        for i in 0..30 {
            let s = with(|s| s.tenant_id = derived_uuid(&["trial", &i.to_string()]));
            assert!(
                csv(&s)
                    .1
                    .iter()
                    .any(|r| r["tenant.kind"] == "customer" && n(r, "usage.absolute.trial") > 0)
            );
        }
    }

    #[test]
    fn levels_choose_the_tenants() {
        let kinds = |s: &ReportSpec| -> BTreeMap<String, String> {
            csv(s)
                .1
                .into_iter()
                .map(|r| (r["tenant.id"].clone(), r["tenant.kind"].clone()))
                .collect()
        };
        let subject = spec(Kind::Summary).tenant_id;
        let itself = kinds(&with(|s| s.level = Level::Itself));
        assert_eq!(itself.len(), 1);
        assert_eq!(itself[&subject], "partner");
        let partners = kinds(&with(|s| s.level = Level::AllPartners));
        assert!(partners.len() >= 3 && partners.values().all(|k| k == "partner"));
        let mut saw_child_partner = false;
        for i in 0..20 {
            let s = with(|s| s.tenant_id = derived_uuid(&["lvl", &i.to_string()]));
            let k = kinds(&s);
            assert_eq!(k[&s.tenant_id], "partner");
            let children: Vec<&String> = k
                .iter()
                .filter(|(id, _)| **id != s.tenant_id)
                .map(|(_, v)| v)
                .collect();
            assert!(children.iter().filter(|k| **k == "customer").count() >= 1);
            let child_partners = children.iter().filter(|k| **k == "partner").count();
            assert!(child_partners <= 1);
            saw_child_partner |= child_partners == 1;
        }
        assert!(saw_child_partner);
        assert_eq!(
            json(&with(|s| s.level = Level::Itself))["params"]["report_level"],
            0
        );
    }

    #[test]
    fn hide_zero_usage_drops_rows_with_every_measure_zero() {
        let all_zero = |r: &CsvRecord| {
            r.iter()
                .filter(|(k, _)| k.starts_with("usage."))
                .all(|(_, v)| v == "0")
        };
        let (_, rows) = csv(&spec(Kind::Summary));
        assert!(rows.iter().any(all_zero), "mobiles are never used");
        let hidden = with(|s| s.hide_zero_usage = true);
        let (_, kept) = csv(&hidden);
        assert!(!kept.is_empty() && !kept.iter().any(all_zero));
        assert_eq!(kept.len(), rows.iter().filter(|r| !all_zero(r)).count());
        assert_eq!(json_rows(&hidden).len(), kept.len());
    }

    #[test]
    fn dr_row_present_in_every_report() {
        for i in 0..30 {
            for level in [Level::Itself, Level::DirectPartners] {
                let s = with(|s| {
                    s.tenant_id = derived_uuid(&["t", &i.to_string()]);
                    s.hide_zero_usage = true;
                    s.level = level;
                });
                let (_, rows) = csv(&s);
                let dr: Vec<_> = rows
                    .iter()
                    .filter(|r| r["name"] == "pw_base_adv_dr_compute_points")
                    .collect();
                assert!(dr.len() >= if level == Level::Itself { 1 } else { 2 });
                for r in dr {
                    let v = n(r, "usage.delta.total");
                    assert!(v >= 7200 && v.is_multiple_of(36), "{v}");
                }
            }
        }
    }

    /// Both files describe the same usage: the mapping a client compares them with.
    fn assert_csv_matches_json(s: &ReportSpec) {
        let (_, rows) = csv(s);
        let items = json_rows(s);
        assert_eq!(items.len(), rows.len());
        let sku_path: Vec<String> = s.content.sku_column.split('.').map(str::to_owned).collect();
        for (r, j) in rows.iter().zip(&items) {
            assert_eq!(j["tenant_uuid"], r["tenant.id"].as_str());
            assert!(j["tenant_id"].is_u64());
            assert_eq!(j["application_id"], r["application.id"].as_str());
            assert_eq!(j["name"], r["name"].as_str());
            let compute = is_compute(r);
            let value = if compute {
                "usage.delta.total"
            } else {
                "usage.absolute.total"
            };
            assert_eq!(j["value"].as_u64().unwrap(), n(r, value));
            assert_eq!(
                j["absolute_value"].as_u64().unwrap(),
                n(r, "usage.absolute.total")
            );
            assert_eq!(j["type"], if compute { "infra" } else { "feature" });
            assert_eq!(j["offering_item"]["status"], 1);
            let day = r.get("date").cloned().unwrap_or_else(|| {
                if s.kind == Kind::Current {
                    s.end.to_string()
                } else {
                    s.start.to_string()
                }
            });
            assert_eq!(j["range_start"], format!("{day}T00:00:00+00:00").as_str());
            match r["infra.id"].as_str() {
                "" => {
                    assert!(j["infra_id"].is_null());
                    assert!(j.get("infra_backend_type").is_none());
                }
                id => {
                    assert_eq!(j["infra_id"], id);
                    assert_eq!(j["infra_backend_type"], r["infra.backend_type"].as_str());
                }
            }
            if s.show_skus {
                let mut at = j;
                for part in &sku_path {
                    let key = at
                        .as_object()
                        .unwrap()
                        .keys()
                        .find(|k| k.eq_ignore_ascii_case(part))
                        .unwrap();
                    at = &at[key];
                }
                assert_eq!(at, r[&s.content.sku_column].as_str());
            } else {
                assert!(j.get("sku").is_none());
            }
            assert!(j.get("tenant_kind").is_none() || s.content.extra_columns);
        }
    }

    #[test]
    fn json_v2_matches_csv_v2() {
        for kind in [Kind::Summary, Kind::Daily, Kind::Current] {
            assert_csv_matches_json(&spec(kind));
        }
        assert_csv_matches_json(&with(|s| s.show_skus = false));
        assert_csv_matches_json(&with(|s| {
            s.content.infra_rows = true;
            s.content.reorder_columns = true;
            s.content.extra_columns = true;
            s.content.sku_column = "offering_item.sku".into();
        }));
        let v = json(&spec(Kind::Daily));
        assert_eq!(v["params"]["kind"], 4);
        assert_eq!(v["params"]["begin_date"], 1_714_521_600);
        assert_eq!(v["params"]["gen_date"], 1_717_200_000);
        let keys = json_key_order(&render(&spec(Kind::Summary), Format::JsonV2, false));
        assert_eq!(
            keys,
            [
                "tenant_uuid",
                "tenant_id",
                "application_id",
                "edition",
                "infra_id",
                "measurement_unit",
                "name",
                "usage_name",
                "offering_item",
                "range_start",
                "value",
                "absolute_value",
                "type",
                "sku"
            ]
        );
    }

    #[test]
    fn sku_column_knob() {
        for name in ["SKU", "offering_item.sku", "Offering_Item.SKU", "sku_code"] {
            let s = with(|s| s.content.sku_column = name.into());
            let (header, rows) = csv(&s);
            assert_eq!(header.last().map(String::as_str), Some(name));
            assert!(rows.iter().all(|r| !r[name].is_empty()));
            assert_csv_matches_json(&s);
        }
        let nested = json_rows(&with(|s| s.content.sku_column = "offering_item.sku".into()));
        assert_eq!(nested[0]["offering_item"]["sku"], "SP4ASTENS");
        assert!(nested[0].get("sku").is_none());
        let cased = json_rows(&with(|s| s.content.sku_column = "Offering_Item.SKU".into()));
        assert_eq!(cased[0]["offering_item"]["SKU"], "SP4ASTENS");
        let elsewhere = json_rows(&with(|s| s.content.sku_column = "product.sku".into()));
        assert_eq!(elsewhere[0]["product"]["sku"], "SP4ASTENS");
        // A partner without SKU access: the column is there, every cell empty.
        let no_access = with(|s| s.no_skus = true);
        assert!(csv(&no_access).1.iter().all(|r| r["sku"].is_empty()));
        assert!(json_rows(&no_access).iter().all(|j| j["sku"] == ""));
    }

    #[test]
    fn extra_reordered_and_editionless_columns() {
        let (plain, _) = csv(&spec(Kind::Summary));
        let extra = with(|s| s.content.extra_columns = true);
        let (header, rows) = csv(&extra);
        for col in [
            "tenant.name",
            "application.name",
            "usage.unit",
            "report.generated_at",
        ] {
            assert!(header.contains(&col.to_owned()), "{col}");
        }
        assert_ne!(
            header.last().map(String::as_str),
            Some("report.generated_at")
        );
        assert!(rows.iter().any(|r| r["tenant.name"].contains(',')
            || r["tenant.name"].contains('"')
            || r["tenant.name"].contains('ü')));
        assert!(
            rows.iter()
                .all(|r| ["bytes", "quantity", "seconds"].contains(&r["usage.unit"].as_str()))
        );
        let j = json_rows(&extra);
        assert!(j[0]["tenant_kind"].is_string() && j[0]["tenant_name"].is_string());

        let shuffled = with(|s| s.content.reorder_columns = true);
        let (order, rows) = csv(&shuffled);
        assert_ne!(order, plain);
        assert_eq!(
            order.iter().collect::<BTreeSet<_>>(),
            plain.iter().collect::<BTreeSet<_>>()
        );
        assert_eq!(rows, csv(&spec(Kind::Summary)).1, "same cells, other order");
        let keys = json_key_order(&render(&shuffled, Format::JsonV2, false));
        let plain_keys = json_key_order(&render(&spec(Kind::Summary), Format::JsonV2, false));
        assert_ne!(keys, plain_keys);
        assert_eq!(
            keys.iter().collect::<BTreeSet<_>>(),
            plain_keys.iter().collect::<BTreeSet<_>>()
        );

        let editionless = with(|s| s.content.edition_column = false);
        assert!(!csv(&editionless).0.contains(&"edition".to_owned()));
        assert!(
            json_rows(&editionless)
                .iter()
                .all(|j| j.get("edition").is_none())
        );
    }

    #[test]
    fn compute_points_item_knob() {
        for item in [
            ComputePointsItem::PwBaseAdvDrComputePoints,
            ComputePointsItem::ComputePoints,
            ComputePointsItem::PwComputePoints,
            ComputePointsItem::DreComputePoints,
            ComputePointsItem::PDreComputePoints,
        ] {
            let s = with(|s| s.content.compute_points_item = item);
            let (_, rows) = csv(&s);
            let dr: Vec<_> = rows.iter().filter(|r| r["name"] == item.as_str()).collect();
            assert!(!dr.is_empty(), "{}", item.as_str());
            let others = COMPUTE_NAMES.iter().filter(|n| **n != item.as_str());
            for other in others {
                assert!(rows.iter().all(|r| r["name"] != *other));
            }
            let j: Vec<_> = json_rows(&s)
                .into_iter()
                .filter(|j| j["name"] == item.as_str())
                .collect();
            assert_eq!(j.len(), dr.len());
            assert!(j.iter().all(|j| j["usage_name"] == "compute_points"
                && j["measurement_unit"] == "seconds"
                && j["type"] == "infra"));
            // The figures do not depend on the name.
            let default_rows = csv(&spec(Kind::Summary)).1;
            let values = |rows: &[CsvRecord]| -> Vec<String> {
                rows.iter()
                    .filter(|r| is_compute(r))
                    .map(|r| r["usage.delta.total"].clone())
                    .collect()
            };
            assert_eq!(values(&rows), values(&default_rows));
        }
    }

    #[test]
    fn infra_rows_split_storage_per_backend() {
        let s = with(|s| s.content.infra_rows = true);
        let (_, rows) = csv(&s);
        let storage: Vec<_> = rows
            .iter()
            .filter(|r| r["name"] == "pw_base_storage")
            .collect();
        let tenants: BTreeSet<&str> = rows.iter().map(|r| r["tenant.id"].as_str()).collect();
        assert_eq!(storage.len(), tenants.len() * 3);
        for r in &storage {
            assert!(["acronis", "azure", "google"].contains(&r["infra.backend_type"].as_str()));
            assert!(uuid::Uuid::parse_str(&r["infra.id"]).is_ok());
            assert!(uuid::Uuid::parse_str(&r["infra.owner_id"]).is_ok());
        }
        assert!(
            rows.iter()
                .filter(|r| r["name"] != "pw_base_storage")
                .all(|r| r["infra.id"].is_empty())
        );
        assert_csv_matches_json(&s);
    }

    #[test]
    fn layouts_unknown_and_html() {
        let unknown = with(|s| s.content.layout = Layout::Unknown);
        let text = String::from_utf8(render(&unknown, Format::CsvV2, false)).unwrap();
        assert!(text.starts_with("Col A,Col B,Col C\n"), "{text}");
        assert!(csv_of(text.as_bytes()).1.len() > 5);
        let j = json(&unknown);
        assert!(j["data"][0]["foo"].is_u64());
        assert!(j.get("tenants").is_none());
        assert_eq!(
            content_type(&unknown, Format::CsvV2),
            "text/csv; charset=utf-8"
        );

        let html = with(|s| s.content.layout = Layout::Html);
        for f in Format::NAMES {
            let f = Format::parse(f).unwrap();
            let body = String::from_utf8(render(&html, f, false)).unwrap();
            assert!(body.starts_with("<!DOCTYPE html><html><head>"));
            assert!(body.contains("<title>Sign in</title>"));
            assert_eq!(content_type(&html, f), "text/html; charset=utf-8");
        }
        // Neither gets padding: it is rows of the vendor layout.
        assert!(
            StoredBody::build(&html, Format::CsvV2, false, 10_000)
                .padding
                .is_none()
        );
    }

    #[test]
    fn legacy_formats_convert_dr_to_points() {
        let s = spec(Kind::Summary);
        let (_, rows) = csv(&s);
        let secs = n(
            rows.iter()
                .find(|r| is_compute(r) && n(r, "usage.delta.total") > 0)
                .unwrap(),
            "usage.delta.total",
        );
        let legacy = String::from_utf8(render(&s, Format::Csv, false)).unwrap();
        let points = format_hundredths(u128::from(secs) * 100 / 3600);
        assert!(legacy.contains(&format!("{points},points")), "{points}");
        let html = String::from_utf8(render(&s, Format::Html, false)).unwrap();
        assert!(html.contains("<table>") && html.contains("points"));
        serde_json::from_slice::<serde_json::Value>(&render(&s, Format::JsonV1, false)).unwrap();
    }

    #[test]
    fn padding_rows_are_numbered_in_twelve_digits_from_any_start() {
        let padding = Padding::new(&spec(Kind::Summary), 100_000_000).unwrap();
        let prefix = String::from_utf8(padding.prefix.clone()).unwrap();
        let suffix = String::from_utf8(padding.suffix.clone()).unwrap();
        for (from, to) in [(0u64, 3u64), (8, 12), (999, 1001), (99_999, 100_001)] {
            let mut out = Vec::new();
            padding.write_rows(from, to, &mut out);
            let expected: String = (from..to)
                .map(|i| format!("{prefix}{i:012}{suffix}"))
                .collect();
            assert_eq!(String::from_utf8(out).unwrap(), expected);
        }
    }

    #[test]
    fn padding_rows_are_rows_of_the_layout() {
        let variants = [
            spec(Kind::Summary),
            spec(Kind::Daily),
            with(|s| {
                s.content.reorder_columns = true;
                s.content.extra_columns = true;
                s.content.sku_column = "SKU".into();
            }),
            with(|s| s.show_skus = false),
        ];
        for s in variants {
            for pad in [1u64, 150, 1_000, 10_007] {
                let body = StoredBody::build(&s, Format::CsvV2, false, pad);
                let (header, rows) = csv_of(&body.to_bytes());
                assert_eq!(header, csv(&s).0);
                let padded: Vec<_> = rows.iter().filter(|r| r["name"] == "pw_padding").collect();
                assert_eq!(padded.len() as u64, body.padding.as_ref().unwrap().rows());
                let ids: BTreeSet<&str> = padded.iter().map(|r| r["tenant.id"].as_str()).collect();
                assert_eq!(ids.len(), padded.len(), "distinct tenants");
                for r in padded {
                    assert!(uuid::Uuid::parse_str(&r["tenant.id"]).is_ok());
                    assert_eq!(n(r, "usage.absolute.production"), 1);
                    assert_eq!(r["tenant.kind"], "customer");
                    if s.show_skus {
                        assert_eq!(r[&s.content.sku_column], "SP4APDENS");
                    }
                }
            }
        }
    }

    #[test]
    fn padding_is_exact_and_streams() {
        let s = spec(Kind::Summary);
        for pad in [1u64, 150, 151, 10_000, 1_000_003] {
            let body = std::sync::Arc::new(StoredBody::build(&s, Format::CsvV2, false, pad));
            let whole = body.to_bytes();
            assert_eq!(whole.len() as u64, body.len());
            let row_len = body.padding.as_ref().unwrap().row_len;
            let base = body.base.len() as u64;
            if pad >= row_len {
                assert_eq!(body.len(), base + pad);
            } else {
                assert_eq!(body.len(), base + row_len);
            }
            let mut cursor = ChunkCursor::new(body.clone());
            let mut streamed = Vec::new();
            while let Some(c) = cursor.next_chunk() {
                streamed.extend_from_slice(&c);
            }
            assert_eq!(streamed, whole.to_vec());
            csv_of(&whole);
        }
    }

    #[test]
    fn time_helpers() {
        assert_eq!(rfc3339_utc(1_565_249_818), "2019-08-08T07:36:58+00:00");
        assert_eq!(unix_midnight("2024-03-01".parse().unwrap()), 1_709_251_200);
        assert_eq!(unix_midnight("1970-01-01".parse().unwrap()), 0);
    }

    /// `cargo test --lib dump_default_files -- --ignored --nocapture` prints the files of a
    /// default usage_summary report with SKUs.
    #[test]
    #[ignore]
    fn dump_default_files() {
        let s = spec(Kind::Summary);
        println!(
            "{}",
            String::from_utf8(render(&s, Format::CsvV2, false)).unwrap()
        );
        println!(
            "{}",
            String::from_utf8(render(&s, Format::JsonV2, false)).unwrap()
        );
    }
}
