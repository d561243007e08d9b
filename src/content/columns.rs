//! Which column (or JSON key) holds which field. Names are compared without case and without
//! surrounding spaces or a byte-order mark; each field accepts the vendor's name first, then the
//! spellings a JSON usage object or a later layout may use.

use super::Measure;

/// A field of a usage row other than a measure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Field {
    TenantId,
    TenantKind,
    TenantName,
    OfferingItem,
    UsageName,
    Edition,
    InfraBackend,
    Unit,
    Day,
}

impl Field {
    pub(super) const ALL: [Field; 9] = [
        Field::TenantId,
        Field::TenantKind,
        Field::TenantName,
        Field::OfferingItem,
        Field::UsageName,
        Field::Edition,
        Field::InfraBackend,
        Field::Unit,
        Field::Day,
    ];

    /// Accepted names, best first. `tenant_uuid` comes before `tenant_id`, which in the JSON
    /// usage object is the API v1 number.
    pub(super) fn names(self) -> &'static [&'static str] {
        match self {
            Field::TenantId => &["tenant.id", "tenant_uuid", "tenant.uuid", "tenant_id"],
            Field::TenantKind => &["tenant.kind", "tenant_kind"],
            Field::TenantName => &["tenant.name", "tenant_name"],
            Field::OfferingItem => &["name", "offering_item.name", "offering_item"],
            Field::UsageName => &["usage_name", "usage.name"],
            Field::Edition => &["edition", "offering_item.edition"],
            Field::InfraBackend => &["infra.backend_type", "infra_backend_type"],
            Field::Unit => &["measurement_unit", "usage.unit", "unit", "measurement.unit"],
            Field::Day => &["date", "day", "usage.date", "range_start"],
        }
    }
}

/// The columns the vendor's own parser of `csv_v2_0` requires (`edition` aside, which it
/// defaults) and that billing needs: a file without one of them is not one we can bill from.
pub const EXPECTED_CSV_COLUMNS: [&str; 12] = [
    "tenant.id",
    "tenant.kind",
    "name",
    "usage.absolute.production",
    "usage.absolute.total",
    "usage.absolute.trial",
    "usage.delta.production",
    "usage.delta.total",
    "usage.delta.trial",
    "usage.effective.production",
    "usage.effective.total",
    "usage.effective.trial",
];

/// A column name as compared: trimmed, without a byte-order mark, lower case.
pub(super) fn normalise(name: &str) -> String {
    name.trim_start_matches('\u{feff}')
        .trim()
        .to_ascii_lowercase()
}

/// Whether `name` is a SKU column: `sku`, or a dotted name whose last part is `sku` (the
/// header's real name is not public), in any case.
pub fn is_sku_name(name: &str) -> bool {
    let name = normalise(name);
    name == "sku" || name.ends_with(".sku")
}

/// Where each field and measure is, by position in a list of names (CSV header, JSON keys).
#[derive(Clone, Debug, Default)]
pub(super) struct Positions {
    pub(crate) fields: [Option<usize>; 9],
    pub(crate) measures: [Option<usize>; 11],
    pub(crate) sku: Option<usize>,
}

impl Positions {
    /// Finds every field in `names` (already [`normalise`]d); the first name of a field's list
    /// that occurs wins, and among equal names the first column.
    pub(crate) fn find(names: &[String]) -> Positions {
        let at = |wanted: &str| names.iter().position(|n| n == wanted);
        let mut positions = Positions::default();
        for (slot, field) in positions.fields.iter_mut().zip(Field::ALL) {
            *slot = field.names().iter().find_map(|name| at(name));
        }
        for (slot, measure) in positions.measures.iter_mut().zip(Measure::ALL) {
            *slot = at(measure.name());
        }
        positions.sku = names
            .iter()
            .position(|n| n == "sku")
            .or_else(|| names.iter().position(|n| n.ends_with(".sku")));
        positions
    }

    /// The names we read that `names` holds more than once, in reading order: which of two
    /// equal columns (or keys) holds the value is not said, so a file must give each once.
    pub fn read_twice<'a>(&'a self, names: &'a [String]) -> impl Iterator<Item = &'a String> {
        self.fields
            .iter()
            .chain(&self.measures)
            .chain(std::iter::once(&self.sku))
            .flatten()
            .map(|&at| &names[at])
            .filter(move |name| names.iter().filter(|n| n == name).count() > 1)
    }

    pub(crate) fn field(&self, field: Field) -> Option<usize> {
        self.fields[field as usize]
    }
}
