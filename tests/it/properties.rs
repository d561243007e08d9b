//! Property tests of the library's small, pure pieces: period arithmetic, durations, `Retry-After`,
//! path sanitising, the `SHA256SUMS` writer/reader and billing's sums; plus the fuzzers' regression inputs
//! (`fixtures/fuzz-regressions/`), each of which must give a result, never a panic.
//!
//! Failures are not persisted to `proptest-regressions/`: a minimal failing input that proptest
//! finds is written down here as a plain test instead.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use acronis_reports::billing;
use acronis_reports::checks::Inspection;
use acronis_reports::content::Amount;
use acronis_reports::disk::paths::{ensure_dir_inside, safe_component};
use acronis_reports::duration;
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

// -------------------------------------------------------------------------------------------------
// Periods
// -------------------------------------------------------------------------------------------------

/// Any day of the years 2000–2100; days 29–31 are folded onto the month's last day, so month ends
/// (and 29 February) come up often.
fn any_date() -> impl Strategy<Value = Date> {
    (2000i16..=2100, 1i8..=12, 1i8..=31).prop_map(|(year, month, day)| {
        let first = Date::new(year, month, 1).unwrap();
        Date::new(year, month, day.min(first.days_in_month())).unwrap()
    })
}

/// A start and end, often close together or a whole month, not always in order.
fn any_range() -> impl Strategy<Value = (Date, Date)> {
    prop_oneof![
        (any_date(), any_date()),
        (any_date(), -40i32..=40).prop_map(|(start, days)| {
            let end = start.checked_add(jiff::Span::new().days(days)).unwrap();
            (start, end)
        }),
        any_date().prop_map(|d| (d.first_of_month(), d.last_of_month())),
    ]
}

fn month_label(date: Date) -> String {
    format!("{:04}-{:02}", date.year(), date.month())
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn previous_month_is_the_whole_month_before_as_of(as_of in any_date()) {
        let p = PeriodSpec::PreviousMonth.resolve(as_of).unwrap();
        prop_assert_eq!(p.end, as_of.first_of_month().yesterday().unwrap());
        prop_assert_eq!(p.start.day(), 1);
        prop_assert_eq!(p.start, p.end.first_of_month());
        prop_assert_eq!(p.end, p.start.last_of_month());
        prop_assert!(p.is_whole_month());
        prop_assert!(p.end < as_of);
        prop_assert_eq!(p.label(), month_label(p.start));
        prop_assert_eq!(p.to_string(), p.label());
    }

    #[test]
    fn month_to_date_runs_from_the_first_to_the_day_before_as_of(as_of in any_date()) {
        match PeriodSpec::MonthToDate.resolve(as_of) {
            Err(_) => prop_assert_eq!(as_of.day(), 1),
            Ok(p) => {
                prop_assert!(as_of.day() > 1);
                prop_assert_eq!(p.start, as_of.first_of_month());
                prop_assert_eq!(p.end, as_of.yesterday().unwrap());
                prop_assert!(!p.is_whole_month());
                prop_assert_eq!(p.label(), format!("{}_{}", p.start, p.end));
            }
        }
    }

    #[test]
    fn a_month_resolves_whole_or_is_refused_iff_it_ends_after_as_of(
        year in 1990i16..=2110,
        month in 1i8..=12,
        as_of in any_date(),
    ) {
        let start = Date::new(year, month, 1).unwrap();
        let end = start.last_of_month();
        match (PeriodSpec::Month { year, month }).resolve(as_of) {
            Ok(p) => {
                prop_assert!(end <= as_of, "{year}-{month} resolved although it ends after {as_of}");
                prop_assert_eq!(p, Period { start, end });
                prop_assert!(p.is_whole_month());
                prop_assert_eq!(p.label(), format!("{year:04}-{month:02}"));
            }
            Err(e) => {
                prop_assert!(end > as_of, "{year}-{month} refused although it ends by {as_of}: {e}");
                let is_future = matches!(e, PeriodError::Future { .. });
                prop_assert!(is_future, "{}", e);
            }
        }
    }

    #[test]
    fn a_month_that_does_not_exist_is_refused(
        year in 1990i16..=2110,
        month in prop_oneof![i8::MIN..=0, 13i8..=i8::MAX],
        as_of in any_date(),
    ) {
        let result = (PeriodSpec::Month { year, month }).resolve(as_of);
        prop_assert!(matches!(result, Err(PeriodError::Invalid(_))), "{:?}", result);
    }

    #[test]
    fn a_range_is_refused_iff_reversed_or_in_the_future(
        (start, end) in any_range(),
        as_of in any_date(),
    ) {
        let result = (PeriodSpec::Range { start, end }).resolve(as_of);
        if start > end {
            prop_assert!(matches!(result, Err(PeriodError::Reversed { .. })), "{:?}", result);
        } else if end > as_of {
            prop_assert!(matches!(result, Err(PeriodError::Future { .. })), "{:?}", result);
        } else {
            prop_assert_eq!(result, Ok(Period { start, end }));
        }
    }

    #[test]
    fn labels_are_unique_per_period(a in any_range(), b in any_range()) {
        let order = |(x, y): (Date, Date)| Period { start: x.min(y), end: x.max(y) };
        let (a, b) = (order(a), order(b));
        prop_assert_eq!(a.label() == b.label(), a == b, "{:?} {:?} -> {} {}", a, b, a.label(), b.label());
        // A whole month is labelled YYYY-MM, anything else START_END.
        let expected = if a.is_whole_month() {
            month_label(a.start)
        } else {
            format!("{}_{}", a.start, a.end)
        };
        prop_assert_eq!(a.label(), expected);
    }

    #[test]
    fn month_keywords_round_trip(year in 1900i16..=9999, month in 1i8..=12) {
        let text = format!("{year:04}-{month:02}");
        let spec = PeriodSpec::parse_keyword(&text).unwrap();
        prop_assert_eq!(&spec, &PeriodSpec::Month { year, month });
        prop_assert_eq!(spec.to_string(), text);
    }

    #[test]
    fn period_parsers_never_panic(text in "\\PC{0,12}|[-+0-9 ]{0,12}") {
        let _ = PeriodSpec::parse_keyword(&text);
        let _ = PeriodSpec::parse_date(&text);
    }
}

proptest! {
    #![proptest_config(config(2048))]

    /// What the loader accepts as a keyword is written back exactly as it was given: there is one
    /// spelling of each month (found by this property: `2000-+1` used to be accepted as 2000-01).
    #[test]
    fn accepted_keywords_are_canonical(
        text in "previous_month|month_to_date|[-+0-9]{4}-[-+0-9]{2}|\\+?[12][0-9]{3}-\\+?[0-9]{1,2}",
    ) {
        if let Ok(spec) = PeriodSpec::parse_keyword(&text) {
            prop_assert_eq!(spec.to_string(), text);
        }
    }
}

#[test]
fn period_keyword_with_plus_sign_is_refused() {
    assert!(PeriodSpec::parse_keyword("2026-+5").is_err());
}

// -------------------------------------------------------------------------------------------------
// Durations
// -------------------------------------------------------------------------------------------------

/// Millisecond-granular durations, with whole seconds, minutes and hours as likely as odd ones.
fn any_millis() -> impl Strategy<Value = u64> {
    prop_oneof![
        any::<u64>(),
        0u64..100_000,
        (0u64..1_000_000).prop_map(|s| s * 1_000),
        (0u64..1_000_000).prop_map(|m| m * 60_000),
        (0u64..1_000_000).prop_map(|h| h * 3_600_000),
        Just(u64::MAX),
        Just(u64::MAX / 3_600_000 * 3_600_000),
    ]
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn durations_round_trip(millis in any_millis()) {
        let d = Duration::from_millis(millis);
        let text = duration::format(d);
        prop_assert_eq!(duration::parse(&text), Ok(d), "{}", text);
        // The spelling is the shortest: no larger unit divides it.
        let number: u64 = text.trim_end_matches(char::is_alphabetic).parse().unwrap();
        let unit = text.trim_start_matches(|c: char| c.is_ascii_digit());
        let per_unit = match unit {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            other => panic!("unit {other:?} in {text}"),
        };
        prop_assert_eq!(u128::from(number) * per_unit, u128::from(millis));
        let larger = [1_000u64, 60_000, 3_600_000].into_iter().filter(|&u| u128::from(u) > per_unit);
        for u in larger {
            prop_assert!(millis == 0 || millis % u != 0, "{} could be written in a larger unit", text);
        }
    }

    #[test]
    fn bare_numbers_are_refused_naming_a_unit(number in 0u64..=u64::MAX, pad in "[ \t]{0,2}") {
        let text = format!("{pad}{number}{pad}");
        let err = duration::parse(&text).unwrap_err().to_string();
        prop_assert!(err.contains(&format!("{number}s")) && err.contains(&format!("{number}ms")), "{}", err);
    }

    #[test]
    fn durations_never_panic(text in "\\PC{0,16}|[0-9]{0,25} ?(ms|s|m|h|d|µs|)[ \t]?") {
        if let Ok(d) = duration::parse(&text) {
            // Anything accepted is a whole number of milliseconds that formats back to itself.
            prop_assert_eq!(duration::parse(&duration::format(d)), Ok(d));
            prop_assert_eq!(d.subsec_nanos() % 1_000_000, 0);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A bare number too large for a `u64` is refused for its missing unit too (found by this
    /// property: `100000000000000000000` used to be only "too large for a duration").
    #[test]
    fn huge_bare_numbers_are_refused_naming_a_unit(number in "[1-9][0-9]{19,40}") {
        let err = duration::parse(&number).unwrap_err().to_string();
        prop_assert!(err.contains("ms"), "{}", err);
    }
}

// -------------------------------------------------------------------------------------------------
// Retry-After
// -------------------------------------------------------------------------------------------------

/// 1970 to 2100, with nanoseconds half the time.
fn any_now() -> impl Strategy<Value = SystemTime> {
    (
        0u64..4_102_444_800,
        prop_oneof![Just(0u32), 0u32..1_000_000_000],
    )
        .prop_map(|(secs, nanos)| UNIX_EPOCH + Duration::new(secs, nanos))
}

fn whole_seconds(t: SystemTime) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(t.duration_since(UNIX_EPOCH).unwrap().as_secs())
}

proptest! {
    #![proptest_config(config(1024))]

    #[test]
    fn retry_after_seconds_parse_exactly(seconds in any::<u32>(), now in any_now(), pad in "[ \t]{0,2}") {
        let text = format!("{pad}{seconds}{pad}");
        prop_assert_eq!(parse_retry_after(&text, now), Some(Duration::from_secs(seconds.into())));
    }

    #[test]
    fn retry_after_date_in_the_future_gives_the_difference(now in any_now(), ahead in 1u64..1_000_000_000) {
        let when = whole_seconds(now) + Duration::from_secs(ahead);
        let text = httpdate::fmt_http_date(when);
        let delay = parse_retry_after(&text, now).unwrap();
        // `now` may have a fraction of a second that an HTTP date cannot carry.
        let fraction = now.duration_since(whole_seconds(now)).unwrap();
        prop_assert_eq!(delay, Duration::from_secs(ahead) - fraction, "{}", text);
    }

    #[test]
    fn retry_after_date_in_the_past_gives_zero(now in any_now(), behind in 0u64..4_000_000_000) {
        let now_secs = whole_seconds(now).duration_since(UNIX_EPOCH).unwrap().as_secs();
        let when = UNIX_EPOCH + Duration::from_secs(now_secs.saturating_sub(behind));
        let text = httpdate::fmt_http_date(when);
        prop_assert_eq!(parse_retry_after(&text, now), Some(Duration::ZERO), "{}", text);
    }

    #[test]
    fn retry_after_never_panics(
        text in "\\PC{0,40}\
                 |[-+0-9 ]{0,24}\
                 |(Mon|Tue|Sun|Sunday|xyz)?,? ?[0-9]{0,3}[ -]?(Jan|Feb|Nov|Dec|foo)?[ -]?[0-9]{0,5} [0-9]{0,3}:[0-9]{0,3}:[0-9]{0,3} ?(GMT|UTC|)",
        now in any_now(),
    ) {
        let _ = parse_retry_after(&text, now);
    }
}

// -------------------------------------------------------------------------------------------------
// Path sanitising
// -------------------------------------------------------------------------------------------------

const WINDOWS_RESERVED: [&str; 22] = [
    "CON", "PRN", "AUX", "NUL", "COM1", "COM2", "COM3", "COM4", "COM5", "COM6", "COM7", "COM8",
    "COM9", "LPT1", "LPT2", "LPT3", "LPT4", "LPT5", "LPT6", "LPT7", "LPT8", "LPT9",
];

/// Names from the pieces that break path handling, as well as any Unicode at all.
fn hostile_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("/".to_owned()),
        Just("\\".to_owned()),
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("\0".to_owned()),
        Just(" ".to_owned()),
        Just("_".to_owned()),
        Just("-".to_owned()),
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\t".to_owned()),
        Just("\u{7f}".to_owned()),
        Just("\u{85}".to_owned()),
        Just("\u{202e}".to_owned()),
        Just("\u{feff}".to_owned()),
        Just(":".to_owned()),
        Just("*?\"<>|".to_owned()),
        Just("~".to_owned()),
        Just("CON".to_owned()),
        Just("con".to_owned()),
        Just("Nul".to_owned()),
        Just("aux".to_owned()),
        Just("PRN".to_owned()),
        Just("COM1".to_owned()),
        Just("lpt9".to_owned()),
        Just(".txt".to_owned()),
        Just("acme".to_owned()),
        Just("Müller".to_owned()),
        Just("日本".to_owned()),
        Just("é".to_owned()),
        Just("e\u{301}".to_owned()),
        Just("🦀".to_owned()),
        "[0-9a-f]{8}".prop_map(|s| s),
        "\\PC{1,4}".prop_map(|s| s),
        "\\p{Cc}".prop_map(|s| s),
        (1usize..200, "[a-zé日]").prop_map(|(n, c)| c.repeat(n)),
    ];
    prop_oneof![
        1 => any::<String>(),
        1 => "\\PC{0,120}",
        4 => proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat()),
    ]
}

/// Every rule a component must follow to be valid and harmless on Linux, macOS and Windows.
fn assert_safe(name: &str, safe: &str) -> Result<(), TestCaseError> {
    let show = format!("{name:?} -> {safe:?}");
    prop_assert!(!safe.is_empty(), "empty: {}", show);
    prop_assert!(safe.len() <= 100, "{} bytes: {}", safe.len(), show);
    prop_assert!(
        !safe
            .chars()
            .any(|c| matches!(c, '/' | '\\' | '\0') || c.is_control()),
        "separator, NUL or control character: {}",
        show
    );
    prop_assert!(
        !safe.contains(['<', '>', ':', '"', '|', '?', '*']),
        "character Windows refuses: {}",
        show
    );
    prop_assert!(safe != "." && safe != "..", "{}", show);
    prop_assert!(!safe.starts_with('.'), "starts with a dot: {}", show);
    prop_assert!(
        !safe.ends_with(['.', ' ']),
        "ends with a dot or space: {}",
        show
    );
    // Windows reserves `CON`, `con.txt`, `Com1.tar.gz`, …: the stem before the first dot counts.
    prop_assert!(!is_reserved_stem(safe), "Windows reserved name: {}", show);
    Ok(())
}

/// Whether the part before the first dot is a reserved Windows device name, in any case.
fn is_reserved_stem(name: &str) -> bool {
    let stem = name.split('.').next().unwrap().to_ascii_uppercase();
    WINDOWS_RESERVED.contains(&stem.as_str())
}

/// A second name that is like the first: the variations most likely to clean up the same way.
fn neighbour(name: &str, how: u8, c: char) -> String {
    match how % 10 {
        0 => name.replace('/', "\\"),
        1 => name.replace(['/', '\\', '\0', '\n'], "_"),
        2 => format!("{name}{c}"),
        3 => format!("{c}{name}"),
        4 => format!("{name}."),
        5 => format!("{name} "),
        6 => name.to_uppercase(),
        7 => name.chars().rev().collect(),
        8 => name.chars().skip(1).collect(),
        _ => format!("{name}/"),
    }
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn safe_components_are_safe(name in hostile_name()) {
        assert_safe(&name, &safe_component(&name))?;
    }

    #[test]
    fn safe_components_of_neighbours_differ(
        name in hostile_name(),
        how in any::<u8>(),
        c in prop_oneof![Just('/'), Just('\\'), Just('.'), Just(' '), Just('_'), Just('\0'), any::<char>()],
    ) {
        let other = neighbour(&name, how, c);
        if other != name {
            prop_assert_ne!(safe_component(&name), safe_component(&other), "{:?} and {:?}", name, other);
        }
    }
}

proptest! {
    // Each case makes up to 80 names: fewer cases, as many names in all.
    #![proptest_config(config(128))]

    #[test]
    fn a_set_of_names_maps_to_as_many_components(
        names in proptest::collection::vec(hostile_name(), 1..40),
        hows in proptest::collection::vec(any::<u8>(), 0..20),
    ) {
        // The names, their neighbours, and some repeats.
        let mut all = names.clone();
        for (i, how) in hows.iter().enumerate() {
            all.push(neighbour(&names[i % names.len()], *how, '_'));
            all.push(names[(i * 7) % names.len()].clone());
        }
        let distinct_inputs: HashSet<&String> = all.iter().collect();
        let distinct_outputs: HashSet<String> = all.iter().map(|n| safe_component(n)).collect();
        prop_assert_eq!(distinct_outputs.len(), distinct_inputs.len());
    }
}

proptest! {
    #![proptest_config(config(256))]

    /// A name that needed cleaning gets `-` and a hash appended. A tenant named exactly like that
    /// result must not land in the same folder (found by this property: `""` and
    /// `tenant-e3b0c442`, `a/b` and `a_b-c14cddc0` used to collide).
    #[test]
    fn a_cleaned_name_does_not_collide_with_its_result(name in hostile_name()) {
        let safe = safe_component(&name);
        if safe != name {
            prop_assert_ne!(safe_component(&safe), safe.clone(), "{:?} and {:?} both map to {:?}", name, safe, safe);
        }
    }
}

/// Names that end like a changed name, in any case, next to the names they would be mistaken for.
fn hashed_looking_name() -> impl Strategy<Value = String> {
    (hostile_name(), "-[0-9a-fA-F]{8}|[0-9a-f]{8}|-[0-9a-f]{7}").prop_map(|(name, end)| {
        let safe = safe_component(&name);
        let stem = safe
            .rsplit_once('-')
            .map_or(safe.as_str(), |(stem, _)| stem);
        format!("{stem}{end}")
    })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn hashed_looking_names_are_safe_and_distinct(a in hashed_looking_name(), b in hostile_name()) {
        let (safe_a, safe_b) = (safe_component(&a), safe_component(&b));
        assert_safe(&a, &safe_a)?;
        if a != b {
            prop_assert_ne!(&safe_a, &safe_b, "{:?} and {:?}", a, b);
        }
        let again = safe_component(&safe_a);
        if safe_a != a {
            prop_assert_ne!(again, safe_a, "{:?}", a);
        }
    }
}

#[test]
fn safe_component_of_a_cleaned_name_is_a_different_name() {
    let first = safe_component("a/b");
    assert_ne!(first, "a/b");
    assert_ne!(safe_component(&first), first, "`a/b` and `{first}` collide");
}

/// Found by `safe_components_are_safe`: `CON.txt` used to map to `CON.txt-09c8cc7e`.
#[test]
fn reserved_stem_with_an_extension_is_not_kept() {
    for name in [
        "con.txt",
        "CON.txt",
        "CON.._",
        "NUL.tar.gz",
        "com1.csv",
        "Lpt9.x",
    ] {
        let safe = safe_component(name);
        assert!(!is_reserved_stem(&safe), "{name:?} -> {safe:?}");
    }
}

/// Two names that clean up to the same `Acme_Corp` get the same 32-bit hash: found by a birthday
/// search over 2^17 such names, which takes a fraction of a second. The job validator refuses
/// the pair as a duplicate and discovery renames the second, but the function itself collides.
#[test]
fn names_with_the_same_cleaned_form_and_short_hash_do_not_collide() {
    let (a, b) = ("Acme//?>?>Corp", "Acme/\\>\\<<Corp");
    assert_ne!(safe_component(a), safe_component(b));
}

/// Relative paths made of the pieces that try to climb out.
fn hostile_relative() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just("..".to_owned()),
        Just(".".to_owned()),
        Just("/".to_owned()),
        Just("//".to_owned()),
        Just("\\".to_owned()),
        Just("\\..\\".to_owned()),
        Just("../".to_owned()),
        Just("/etc".to_owned()),
        Just("~".to_owned()),
        Just("link".to_owned()),
        Just("file".to_owned()),
        Just("a".to_owned()),
        Just("b".to_owned()),
        Just("\0".to_owned()),
        Just("C:".to_owned()),
        Just(" ".to_owned()),
        "\\PC{1,3}".prop_map(|s| s),
    ];
    prop_oneof![
        "\\PC{0,20}",
        proptest::collection::vec(piece, 0..8).prop_map(|pieces| pieces.concat()),
    ]
}

fn entries(dir: &Path) -> BTreeSet<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect()
}

/// Every path under `dir`, not following symbolic links.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let path = entry.path();
        out.push(path.clone());
        if entry.file_type().unwrap().is_dir() {
            walk(&path, out);
        }
    }
}

proptest! {
    #![proptest_config(config(256))]

    #[test]
    fn ensure_dir_inside_never_writes_outside(relatives in proptest::collection::vec(hostile_relative(), 1..4)) {
        let outer = tempfile::tempdir().unwrap();
        let base = outer.path().join("base");
        let outside = outer.path().join("outside");
        std::fs::create_dir(&base).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(base.join("file"), b"x").unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(&outside, base.join("link")).unwrap();
        let before = entries(outer.path());

        for relative in &relatives {
            if let Ok(dir) = ensure_dir_inside(&base, relative) {
                prop_assert!(dir.starts_with(&base), "{:?} -> {:?}", relative, dir);
                prop_assert!(dir.is_dir(), "{:?} -> {:?}", relative, dir);
                let real = dir.canonicalize().unwrap();
                prop_assert!(real.starts_with(base.canonicalize().unwrap()), "{:?} -> {:?}", relative, real);
            }
        }

        prop_assert_eq!(entries(outer.path()), before, "{:?}", relatives);
        prop_assert_eq!(entries(&outside).len(), 0, "{:?} wrote through the link", relatives);
        let mut inside = Vec::new();
        walk(&base, &mut inside);
        for path in inside {
            let meta = std::fs::symlink_metadata(&path).unwrap();
            let known = path == base.join("file") || path == base.join("link");
            prop_assert!(known || meta.is_dir(), "{:?} made {:?}", relatives, path);
        }
    }
}

// -------------------------------------------------------------------------------------------------
// SHA256SUMS
// -------------------------------------------------------------------------------------------------

/// Any non-empty name without NUL, with the characters `sha256sum` escapes made likely.
fn checksum_name() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        Just(" ".to_owned()),
        Just("  ".to_owned()),
        Just("\\".to_owned()),
        Just("\\n".to_owned()),
        Just("\n".to_owned()),
        Just("\r".to_owned()),
        Just("\r\n".to_owned()),
        Just("*".to_owned()),
        Just("#".to_owned()),
        Just("\t".to_owned()),
        Just("/".to_owned()),
        Just("日本".to_owned()),
        Just("\u{2028}".to_owned()),
        "[a-z.]{1,6}".prop_map(|s| s),
        "[^\0]{1,3}".prop_map(|s| s),
    ];
    prop_oneof![
        "[^\0]{1,30}",
        proptest::collection::vec(piece, 1..8).prop_map(|pieces| pieces.concat()),
    ]
}

fn checksum_entry() -> impl Strategy<Value = ChecksumEntry> {
    (checksum_name(), "[0-9a-f]{64}").prop_map(|(path, sha256)| ChecksumEntry { path, sha256 })
}

proptest! {
    #![proptest_config(config(512))]

    #[test]
    fn checksums_round_trip(entries in proptest::collection::vec(checksum_entry(), 0..12)) {
        let text = checksums::render_entries(&entries);
        let mut expected = entries.clone();
        expected.sort_by(|a, b| (&a.path, &a.sha256).cmp(&(&b.path, &b.sha256)));
        prop_assert_eq!(checksums::parse(&text), Ok(expected), "{:?}", text);
        // One line per entry: no name can break a line.
        prop_assert_eq!(text.matches('\n').count(), entries.len());
    }

    #[test]
    fn checksum_parser_never_panics(text in "\\PC{0,100}|(\\\\?[0-9a-fA-F]{60,66}( |  | \\*)[^\0]{0,10}\r?\n){0,3}") {
        let _ = checksums::parse(&text);
    }
}

fn sha256_hex(content: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex::encode(Sha256::digest(content))
}

/// The names `sha256sum` has to escape, or could misread, checked by the real tool.
#[test]
fn coreutils_sha256sum_checks_awkward_names() {
    let Ok(probe) = std::process::Command::new("sha256sum")
        .arg("--version")
        .output()
    else {
        eprintln!("sha256sum is not on PATH; skipping");
        return;
    };
    assert!(probe.status.success());
    let names = [
        "with space.csv",
        " leading space",
        "trailing space ",
        "two  spaces",
        "back\\slash.csv",
        "\\leading backslash",
        "ends with backslash\\",
        "literal \\n not a newline",
        "new\nline.csv",
        "\nleading newline",
        "carriage\rreturn.csv",
        "crlf\r\n.csv",
        "tab\there",
        "*star",
        "#hash",
        "Müller GmbH — 日本 🦀.json",
        "sub dir/nested \\ and\nnewline",
    ];
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub dir")).unwrap();
    let mut entries = Vec::new();
    for name in names {
        let content = format!("content of {name:?}\n");
        std::fs::write(dir.path().join(name), &content).unwrap();
        entries.push(ChecksumEntry {
            path: name.to_owned(),
            sha256: sha256_hex(content.as_bytes()),
        });
    }
    let text = checksums::render_entries(&entries);
    std::fs::write(dir.path().join("SHA256SUMS"), &text).unwrap();
    let out = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sha256sum -c failed on\n{text}\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(stdout.matches(": OK").count(), names.len(), "{stdout}");

    // A changed file is caught, so the check above did look at the files.
    std::fs::write(dir.path().join(names[8]), "changed").unwrap();
    let out = std::process::Command::new("sha256sum")
        .args(["--strict", "-c", "SHA256SUMS"])
        .current_dir(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
}

// -------------------------------------------------------------------------------------------------
// Fuzz regressions: every input the fuzzers found must give a result, never a panic
// -------------------------------------------------------------------------------------------------

fn regression_inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/fuzz-regressions");
    let mut inputs: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&format!("{target}-")))
        })
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    inputs.sort();
    // A test over no inputs would pass whatever the code does.
    assert!(
        !inputs.is_empty(),
        "no {target}-* inputs in {}",
        dir.display()
    );
    inputs
}

/// Runs `f` on every saved input of `target`, on a thread with a small stack like the fuzzer's.
fn returns_for_every_input(target: &str, f: fn(&[u8])) {
    for (path, bytes) in regression_inputs(target) {
        let result = std::thread::Builder::new()
            .stack_size(2 * 1024 * 1024)
            .spawn(move || f(&bytes))
            .unwrap()
            .join();
        assert!(result.is_ok(), "{} panicked", path.display());
    }
}

fn as_of() -> Date {
    jiff::civil::date(2026, 11, 15)
}

#[test]
fn fuzz_regressions_job_parse() {
    returns_for_every_input("job_parse", |bytes| {
        let _ = acronis_reports::job::parse(Path::new("job.yml"), bytes, as_of());
    });
}

fn inspect(format: Format, bytes: &[u8]) {
    let inspection = Inspection {
        format,
        check_skus: true,
        rule: Arc::new(BillingRule::default()),
    };
    let facts = inspection
        .inspect(bytes)
        .expect("reading memory cannot fail");
    assert!(facts.sku_check.rows_without_sku <= facts.sku_check.rows);
}

#[test]
fn fuzz_regressions_inspect_csv() {
    returns_for_every_input("inspect_csv", |bytes| inspect(Format::CsvV2, bytes));
}

#[test]
fn fuzz_regressions_inspect_json() {
    returns_for_every_input("inspect_json", |bytes| inspect(Format::JsonV2, bytes));
}

// -------------------------------------------------------------------------------------------------
// Billing: the sum of billable values per tenant and item is the vendor's rule applied to the rows
// -------------------------------------------------------------------------------------------------

/// The vendor's csv_v2_0 columns, in their documented order.
const VENDOR_COLUMNS: [&str; 17] = [
    "tenant.id",
    "tenant.kind",
    "application.id",
    "edition",
    "name",
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
];

const ITEMS: [&str; 6] = [
    "pw_base_storage",
    "pw_base_workstations",
    "compute_points",
    "pw_compute_points",
    "dre_compute_points",
    "p_dre_compute_points",
];

/// One generated row: tenant index, item index, backend index, nine values in hundredths.
type GeneratedRow = (usize, usize, usize, [u64; 9]);

fn any_row() -> impl Strategy<Value = GeneratedRow> {
    (
        0usize..4,
        0usize..ITEMS.len(),
        0usize..3,
        proptest::array::uniform9(0u64..10_000_000_000),
    )
}

fn hundredths(value: u64) -> String {
    if value.is_multiple_of(100) {
        (value / 100).to_string()
    } else {
        format!("{}.{:02}", value / 100, value % 100)
    }
}

/// What the rule gives, in hundredths of the billed unit, per (tenant, item, backend): each
/// run of rows of one key is one line (compute points are rounded per line, as billed).
fn expected_billing(rows: &[GeneratedRow]) -> BTreeMap<(String, String, String), u128> {
    let mut sums: BTreeMap<(String, String, String), u128> = BTreeMap::new();
    let mut runs: Vec<((String, String, String), u128)> = Vec::new();
    for (tenant, item, backend, values) in rows {
        // Tenants 0 and 1 are customers (scope total), 2 and 3 partners (scope production);
        // compute-point items bill on delta, the rest on absolute.
        let customer = *tenant < 2;
        let delta = *item >= 2;
        let column = match (delta, customer) {
            (false, false) => 0,
            (false, true) => 1,
            (true, false) => 3,
            (true, true) => 4,
        };
        let key = (
            format!("t{tenant}"),
            ITEMS[*item].to_owned(),
            ["", "azure", "google"][*backend].to_owned(),
        );
        match runs.last_mut() {
            Some((last, sum)) if *last == key => *sum += u128::from(values[column]),
            _ => runs.push((key, u128::from(values[column]))),
        }
    }
    for (key, mut sum) in runs {
        if key.1.contains("compute_points") {
            // Point-seconds to points, 2 decimals, half away from zero: hundredths of a second
            // ÷ 3600 are hundredths of a point.
            sum = (sum + 1800) / 3600;
        }
        *sums.entry(key).or_default() += sum;
    }
    sums
}

proptest! {
    #![proptest_config(config(64))]

    #[test]
    fn billable_sums_per_tenant_and_item_follow_the_rule(
        rows in proptest::collection::vec(any_row(), 0..40),
        order in Just(VENDOR_COLUMNS.to_vec()).prop_shuffle(),
        sku_header in prop_oneof![Just("sku"), Just("SKU"), Just("offering_item.sku")],
        crlf in any::<bool>(),
        grouped in any::<bool>(),
    ) {
        let mut rows = rows;
        if grouped {
            // As the vendor writes them: the rows of a tenant and item next to each other.
            rows.sort_by_key(|(tenant, item, backend, _)| (*tenant, *item, *backend));
        }
        let newline = if crlf { "\r\n" } else { "\n" };
        let mut header: Vec<&str> = order.clone();
        header.push(sku_header);
        header.insert(1, "report.extra");
        let mut text = header.join(",") + newline;
        for (tenant, item, backend, values) in &rows {
            let cells: Vec<String> = header
                .iter()
                .map(|column| match *column {
                    "tenant.id" => format!("t{tenant}"),
                    "tenant.kind" => (if *tenant < 2 { "customer" } else { "partner" }).to_owned(),
                    "name" => ITEMS[*item].to_owned(),
                    "infra.backend_type" => ["", "azure", "google"][*backend].to_owned(),
                    "report.extra" => "\"x, y\"".to_owned(),
                    c if c.starts_with("usage.") => {
                        let at = VENDOR_COLUMNS.iter().position(|v| v == &c).unwrap() - 8;
                        hundredths(values[at])
                    }
                    c if c == sku_header => format!("SKU{item}"),
                    _ => String::new(),
                })
                .collect();
            text.push_str(&cells.join(","));
            text.push_str(newline);
        }
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("r.csv"), &text).unwrap();
        let report = ReportResult {
            tenant_id: "p".into(),
            tenant_name: "p".into(),
            period: Period { start: jiff::civil::date(2026, 10, 1), end: jiff::civil::date(2026, 10, 31) },
            kind: ReportKind::UsageSummary,
            level: ReportLevel::DirectPartners,
            report_id: None,
            status: Status::Ok,
            error: None,
            files: vec![FileResult {
                format: Format::CsvV2,
                path: "r.csv".into(),
                stored_report_id: "s".into(),
                bytes: 0,
                sha256: String::new(),
                sku_check: SkuCheck::SKIPPED,
                content_check: ContentCheck::SKIPPED,
            }],
            dr_compute_points: None,
            warnings: Vec::new(),
            plan_index: 0,
            timing: None,
        };
        let mut out = Vec::new();
        let written = billing::write(
            dir.path(),
            &ReportLog::of(vec![report]).unwrap(),
            &BillingRule::default(),
            &mut out,
        ).unwrap();
        // Rows of one key apart from each other give a line each, and say so; never otherwise.
        for (_, warning) in &written.warnings {
            prop_assert!(warning.contains("are not next to each other"), "{}", warning);
        }
        if grouped {
            prop_assert_eq!(written.warnings.len(), 0);
        }
        let mut reader = csv::Reader::from_reader(out.as_slice());
        let columns = reader.headers().unwrap().clone();
        let at = |name: &str| columns.iter().position(|c| c == name).unwrap();
        let mut billed: BTreeMap<(String, String, String), u128> = BTreeMap::new();
        for record in reader.records() {
            let record = record.unwrap();
            let value = Amount::parse(&record[at("billable_value")]).unwrap();
            let hundredths: u128 = value.fixed(2).replace('.', "").parse().unwrap();
            let key = (
                record[at("tenant_id")].to_owned(),
                record[at("offering_item")].to_owned(),
                record[at("infra_backend_type")].to_owned(),
            );
            let lines = billed.entry(key).or_default();
            // A key's lines are summed here; compute points round per line, as billed.
            *lines += hundredths;
        }
        prop_assert_eq!(billed, expected_billing(&rows));
    }
}
