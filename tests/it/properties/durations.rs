//! Durations as job files write them.

use super::*;

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
