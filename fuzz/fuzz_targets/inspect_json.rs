//! The JSON SKU checker on arbitrary bytes: `Ok` or `Err`, never a panic (deep nesting included).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    if let Ok(facts) = acronis_reports::checks::inspect_json(bytes, true) {
        assert!(
            facts.sku_check.rows_without_sku <= facts.sku_check.rows,
            "{facts:?}"
        );
    }
});
