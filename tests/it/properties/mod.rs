//! Property tests of the library's small, pure pieces: period arithmetic, durations, `Retry-After`,
//! path sanitising, the `SHA256SUMS` writer/reader and billing's sums; plus the fuzzers' regression inputs
//! (`fixtures/fuzz-regressions/`), each of which must give a result, never a panic.
//!
//! Failures are not persisted to `proptest-regressions/`: a minimal failing input that proptest
//! finds is written down here as a plain test instead.

mod billing_sums;
mod durations;
mod fuzz_regressions;
mod paths;
mod periods;
mod retry_after;
mod sha256sums;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acronis_reports::checks::Inspection;
use acronis_reports::content::Amount;
use acronis_reports::disk::paths::{ensure_dir_inside, safe_component};
use acronis_reports::duration;
use acronis_reports::output::billing;
use acronis_reports::output::checksums::{self, ChecksumEntry};
use acronis_reports::period::{Period, PeriodError, PeriodSpec};
use acronis_reports::report::{BillingRule, Format, ReportKind, ReportLevel};
use acronis_reports::results::{
    ContentCheck, FileResult, ReportLog, ReportResult, SkuCheck, Status,
};
use acronis_reports::retry::parse_retry_after;
use jiff::civil::Date;
use proptest::prelude::*;
use proptest::test_runner::Config;

fn config(cases: u32) -> Config {
    Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    }
}
