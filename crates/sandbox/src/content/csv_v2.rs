//! The csv_v2_0 layout: dotted column names in a shuffled order, one row per tenant × item.

use std::borrow::Cow;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Measure {
    Absolute,
    Delta,
    Effective,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Scope {
    Production,
    Total,
    Trial,
}

/// One `csv_v2_0` column.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Col {
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

pub(super) const USAGE_COLUMNS: [(Measure, Scope, &str); 9] = [
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
    pub(super) fn header(self, spec: &ReportSpec) -> &str {
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
pub(super) fn shuffle<T: Copy + PartialEq>(items: &mut [T], seed: &[&str]) {
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

pub(super) fn columns(spec: &ReportSpec) -> Vec<Col> {
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
pub(super) struct CsvRow<'a> {
    pub(super) tenant_id: &'a str,
    pub(super) tenant_kind: &'a str,
    pub(super) tenant_name: &'a str,
    pub(super) application_id: &'a str,
    pub(super) application_name: &'a str,
    pub(super) name: &'a str,
    pub(super) date: &'a str,
    pub(super) unit: &'a str,
    /// `(infra.id, infra.owner_id, infra.backend_type)`.
    pub(super) infra: Option<(&'a str, &'a str, &'a str)>,
    pub(super) usage: Usage,
    pub(super) sku: &'a str,
    pub(super) generated_at: &'a str,
    /// Zeros put in front of `usage.absolute.production`: padding's exact-length filler,
    /// which keeps the cell a valid number.
    pub(super) lead_zeros: usize,
}

pub(super) fn csv_field(out: &mut String, s: &str) {
    if s.contains([',', '"', '\n', '\r']) {
        out.push('"');
        out.push_str(&s.replace('"', "\"\""));
        out.push('"');
    } else {
        out.push_str(s);
    }
}

pub(super) fn csv_line(out: &mut String, fields: &[&str]) {
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        csv_field(out, f);
    }
    out.push('\n');
}

pub(super) fn write_csv_row(out: &mut String, cols: &[Col], r: &CsvRow) {
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

pub(super) fn render_csv_v2(ctx: &Ctx) -> String {
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
