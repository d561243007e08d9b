//! The job-file loader on arbitrary bytes: it must return `Ok` or `Err`, never panic, and stay
//! within libFuzzer's time and memory limits (alias bombs, deep nesting, huge numbers, …). A job
//! that loads must also keep the promises the runner relies on.
#![no_main]

use std::collections::HashSet;
use std::path::Path;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|bytes: &[u8]| {
    let as_of = jiff::civil::date(2026, 11, 15);
    let Ok(job) = acronis_reports::job::parse(Path::new("job.yml"), bytes, as_of) else {
        return;
    };
    assert!(!job.tenants.is_empty());
    assert!((1..=1000).contains(&job.concurrency), "{}", job.concurrency);
    assert!(!job.polling.initial_interval.is_zero());
    let mut folders = HashSet::new();
    for tenant in &job.tenants {
        assert_eq!(
            tenant.dir_name,
            acronis_reports::disk::paths::safe_component(&tenant.name)
        );
        assert!(
            folders.insert(tenant.dir_name.to_lowercase()),
            "two tenants share the folder {:?}",
            tenant.dir_name
        );
        assert!(!tenant.formats.is_empty());
        assert!(!tenant.periods.is_empty());
        for period in &tenant.periods {
            assert!(
                period.start <= period.end && period.end <= as_of,
                "{period:?}"
            );
        }
    }
});
