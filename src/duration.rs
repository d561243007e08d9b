//! Durations as the job file writes them: `500ms`, `5s`, `2m`, `1h`.

use std::time::Duration;

/// Why a text is not a duration.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DurationError {
    /// No leading whole number.
    #[error("`{0}` is not a duration; write a whole number and a unit, e.g. 500ms, 5s, 2m or 1h")]
    NoNumber(String),
    /// A number without a unit.
    #[error("`{0}` has no unit; durations need one: {0}ms, {0}s, {0}m or {0}h")]
    NoUnit(String),
    /// A number followed by a unit that is not `ms`, `s`, `m` or `h`.
    #[error("`{unit}` is not a duration unit in `{text}`; use ms, s, m or h")]
    UnknownUnit {
        /// The unit as written.
        unit: String,
        /// The whole duration as written.
        text: String,
    },
    /// A number too large for a [`Duration`].
    #[error("`{0}` is too large for a duration")]
    TooLarge(String),
}

/// Parses `<whole number><unit>` with unit `ms`, `s`, `m` or `h`.
pub fn parse(text: &str) -> Result<Duration, DurationError> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(digits_end);
    if number.is_empty() {
        return Err(DurationError::NoNumber(text.to_owned()));
    }
    if unit.trim().is_empty() {
        return Err(DurationError::NoUnit(number.to_owned()));
    }
    let too_large = || DurationError::TooLarge(text.to_owned());
    let value: u64 = number.parse().map_err(|_| too_large())?;
    let millis_per_unit = match unit.trim() {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        other => {
            return Err(DurationError::UnknownUnit {
                unit: other.to_owned(),
                text: text.to_owned(),
            });
        }
    };
    value
        .checked_mul(millis_per_unit)
        .map(Duration::from_millis)
        .ok_or_else(too_large)
}

/// The shortest job-file spelling of a duration, for plans and summaries.
pub fn format(duration: Duration) -> String {
    let millis = duration.as_millis();
    match millis {
        m if m % 3_600_000 == 0 && m > 0 => format!("{}h", m / 3_600_000),
        m if m % 60_000 == 0 && m > 0 => format!("{}m", m / 60_000),
        m if m % 1_000 == 0 => format!("{}s", m / 1_000),
        m => format!("{m}ms"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_each_unit() {
        assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
    }

    #[test]
    fn bare_numbers_and_bad_units_say_what_is_wanted() {
        let err = parse("30").unwrap_err().to_string();
        assert!(err.contains("30s"), "{err}");
        assert!(
            parse("5 days")
                .unwrap_err()
                .to_string()
                .contains("use ms, s, m or h")
        );
        assert!(parse("fast").is_err());
        assert!(parse("-5s").is_err());
        assert!(parse("99999999999999999999h").is_err());
    }

    #[test]
    fn formats_round_trip() {
        for text in ["500ms", "5s", "2m", "1h", "90s", "0s"] {
            assert_eq!(format(parse(text).unwrap()), text);
        }
    }
}
