//! `Retry-After`: seconds or an HTTP date, never a wait past the limit.

use super::*;

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
