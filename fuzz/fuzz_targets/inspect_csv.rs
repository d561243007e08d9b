//! The CSV SKU checker on arbitrary bytes: `Ok` or `Err`, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(facts) = acronis_reports::checks::inspect_csv(bytes, true) {
        assert!(
            facts.sku_check.rows_without_sku <= facts.sku_check.rows,
            "{facts:?}"
        );
    }
});
