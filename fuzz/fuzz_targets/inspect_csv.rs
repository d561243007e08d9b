//! The content and SKU checks of a csv_v2_0 file on arbitrary bytes: a verdict, never a panic
//! or an error (the bytes come from memory).
#![no_main]

use std::sync::Arc;

use acronis_reports::checks::Inspection;
use acronis_reports::report::{BillingRule, Format};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let inspection = Inspection {
        format: Format::CsvV2,
        check_skus: true,
        rule: Arc::new(BillingRule::default()),
    };
    let facts = inspection.inspect(bytes).expect("reading memory cannot fail");
    assert!(
        facts.sku_check.rows_without_sku <= facts.sku_check.rows,
        "{facts:?}"
    );
});
