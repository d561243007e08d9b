//! Writers: pure functions from a run's results to text ([`checksums`], [`manifest`],
//! [`summary`], [`timing`], [`compare`], [`junit`]; [`billing`] streams `billing.csv`), and
//! [`delivery`], the one place that puts their text on disk, committed through the [`trail`].

pub mod billing;
pub mod checksums;
pub mod compare;
pub(crate) mod delivery;
pub(crate) mod junit;
pub(crate) mod manifest;
pub mod summary;
pub(crate) mod timing;
pub(crate) mod trail;

use billing::BILLING_CSV;

#[cfg(test)]
pub(crate) use delivery::KILL_AT;
pub(crate) use delivery::write_delivery;
#[cfg(test)]
pub(crate) use delivery::write_outputs;
pub(crate) use delivery::{kill_point, write_hashed};

pub(crate) const SHA256SUMS: &str = "SHA256SUMS";
pub(crate) const MANIFEST: &str = "manifest.json";
/// The name of each delivery's Markdown summary.
pub const SUMMARY: &str = "summary.md";
pub(crate) const BILLING: &str = BILLING_CSV;

/// `a, b and c`, with at most `at_most` items named and the rest counted.
pub(crate) fn and_list(items: &[String], at_most: usize) -> String {
    use std::fmt::Write as _;
    let shown = &items[..items.len().min(at_most)];
    let mut text = match shown {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    };
    if items.len() > shown.len() {
        let _ = write!(text, " (and {} more)", items.len() - shown.len());
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_tenant_folder_can_take_a_records_name() {
        let records = [
            SHA256SUMS,
            MANIFEST,
            SUMMARY,
            crate::output::billing::BILLING_CSV,
        ];
        assert_eq!(records, crate::disk::paths::DELIVERY_RECORDS);
    }
}
