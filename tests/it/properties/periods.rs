//! Periods: keywords, ranges and month arithmetic.

use super::*;

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
