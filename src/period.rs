//! Billing periods: what a job file says (`previous_month`, `2026-10`, …) and the dates it means.

use std::fmt;

use jiff::civil::Date;
use serde::{Deserialize, Serialize};

/// A period as written in the job file, before the as-of date gives it dates.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PeriodSpec {
    /// `previous_month`: the whole month before the as-of date.
    PreviousMonth,
    /// `month_to_date`: the first of the as-of date's month up to the day before it.
    MonthToDate,
    /// `YYYY-MM`: one whole calendar month.
    Month {
        /// The year (1900 to 9999).
        year: i16,
        /// The month, 1 to 12.
        month: i8,
    },
    /// `{start, end}`: any days, both inclusive.
    Range {
        /// The first day.
        start: Date,
        /// The last day (inclusive).
        end: Date,
    },
}

/// Inclusive dates of one report.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    /// The first day.
    pub start: Date,
    /// The last day (inclusive).
    pub end: Date,
}

/// Why a period cannot be reported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PeriodError {
    /// A period that ends after the as-of date: the API refuses periods in the future.
    #[error(
        "period {period} ends on {end}, after the as-of date {as_of}; the API refuses periods in the future (pass an earlier period or a later --as-of)"
    )]
    Future {
        /// The period as written.
        period: String,
        /// Its last day.
        end: Date,
        /// The day the job was evaluated as of.
        as_of: Date,
    },
    /// A range whose start is after its end.
    #[error("period starts on {start}, after it ends on {end}; swap `start` and `end`")]
    Reversed {
        /// The first day as written.
        start: Date,
        /// The last day as written.
        end: Date,
    },
    /// `month_to_date` on the first of a month, where it holds no day.
    #[error(
        "month_to_date is empty on {as_of}, the first of the month: it ends yesterday, because today's usage is not final until the usage data is refreshed at UTC midnight; use previous_month for the month that just ended"
    )]
    MonthToDateOnTheFirst {
        /// The day the job was evaluated as of.
        as_of: Date,
    },
    /// Any other malformed period; the text says what and how to write it.
    #[error("{0}")]
    Invalid(String),
}

impl PeriodSpec {
    /// Parses the string forms: `previous_month`, `month_to_date` and `YYYY-MM`.
    pub fn parse_keyword(text: &str) -> Result<Self, PeriodError> {
        match text {
            "previous_month" => return Ok(Self::PreviousMonth),
            "month_to_date" => return Ok(Self::MonthToDate),
            _ => {}
        }
        let invalid = || {
            PeriodError::Invalid(format!(
                "unknown period `{text}`; use previous_month, month_to_date, a month as YYYY-MM, or {{start: YYYY-MM-DD, end: YYYY-MM-DD}}"
            ))
        };
        let (year, month) = text.split_once('-').ok_or_else(invalid)?;
        let digits =
            |part: &str, len: usize| part.len() == len && part.bytes().all(|b| b.is_ascii_digit());
        if !digits(year, 4) || !digits(month, 2) {
            return Err(invalid());
        }
        let year: i16 = year.parse().map_err(|_| invalid())?;
        let month: i8 = month.parse().map_err(|_| invalid())?;
        if !(1..=12).contains(&month) || !(1900..=9999).contains(&year) {
            return Err(invalid());
        }
        Ok(Self::Month { year, month })
    }

    /// Parses a date written `YYYY-MM-DD` (and nothing looser).
    pub fn parse_date(text: &str) -> Result<Date, PeriodError> {
        let valid_shape =
            text.len() == 10 && text.as_bytes()[4] == b'-' && text.as_bytes()[7] == b'-';
        valid_shape
            .then(|| text.parse::<Date>().ok())
            .flatten()
            .ok_or_else(|| {
                PeriodError::Invalid(format!("`{text}` is not a date; write YYYY-MM-DD"))
            })
    }

    /// Gives the period its dates. `as_of` is the day the run is for (normally today, UTC).
    pub fn resolve(&self, as_of: Date) -> Result<Period, PeriodError> {
        let period = match *self {
            Self::PreviousMonth => {
                let first_of_this_month = as_of.first_of_month();
                let end = first_of_this_month
                    .yesterday()
                    .map_err(|e| PeriodError::Invalid(e.to_string()))?;
                Period {
                    start: end.first_of_month(),
                    end,
                }
            }
            // Usage data is refreshed daily at UTC midnight, so the as-of day's own usage is not
            // final yet: the month so far ends the day before.
            Self::MonthToDate => {
                if as_of.day() == 1 {
                    return Err(PeriodError::MonthToDateOnTheFirst { as_of });
                }
                let end = as_of
                    .yesterday()
                    .map_err(|e| PeriodError::Invalid(e.to_string()))?;
                Period {
                    start: as_of.first_of_month(),
                    end,
                }
            }
            Self::Month { year, month } => {
                let start =
                    Date::new(year, month, 1).map_err(|e| PeriodError::Invalid(e.to_string()))?;
                Period {
                    start,
                    end: start.last_of_month(),
                }
            }
            Self::Range { start, end } => {
                if start > end {
                    return Err(PeriodError::Reversed { start, end });
                }
                Period { start, end }
            }
        };
        if period.end > as_of {
            return Err(PeriodError::Future {
                period: period.label(),
                end: period.end,
                as_of,
            });
        }
        Ok(period)
    }
}

impl fmt::Display for PeriodSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::PreviousMonth => f.write_str("previous_month"),
            Self::MonthToDate => f.write_str("month_to_date"),
            Self::Month { year, month } => write!(f, "{year:04}-{month:02}"),
            Self::Range { start, end } => write!(f, "{{start: {start}, end: {end}}}"),
        }
    }
}

impl Period {
    /// Whether the period is exactly one calendar month, first day to last.
    pub fn is_whole_month(&self) -> bool {
        self.start.day() == 1 && self.end == self.start.last_of_month()
    }

    /// The folder name of this period: `YYYY-MM` for a whole month, else `START_END`.
    pub fn label(&self) -> String {
        if self.is_whole_month() {
            format!("{:04}-{:02}", self.start.year(), self.start.month())
        } else {
            format!("{}_{}", self.start, self.end)
        }
    }

    /// The period a folder name stands for: the inverse of [`Period::label`], `None` for a
    /// name that is not one.
    pub(crate) fn from_label(label: &str) -> Option<Period> {
        let period = match label.split_once('_') {
            Some((start, end)) => Period {
                start: start.parse().ok()?,
                end: end.parse().ok()?,
            },
            None => {
                let start: Date = format!("{label}-01").parse().ok()?;
                Period {
                    start,
                    end: start.last_of_month(),
                }
            }
        };
        (period.start <= period.end && period.label() == label).then_some(period)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    #[test]
    fn previous_month_crosses_the_year() {
        let p = PeriodSpec::PreviousMonth
            .resolve(date(2026, 1, 15))
            .unwrap();
        assert_eq!((p.start, p.end), (date(2025, 12, 1), date(2025, 12, 31)));
        assert_eq!(p.label(), "2025-12");
    }

    #[test]
    fn previous_month_of_march_in_a_leap_year() {
        let p = PeriodSpec::PreviousMonth.resolve(date(2028, 3, 1)).unwrap();
        assert_eq!((p.start, p.end), (date(2028, 2, 1), date(2028, 2, 29)));
    }

    #[test]
    fn month_to_date_ends_the_day_before_as_of() {
        let p = PeriodSpec::MonthToDate.resolve(date(2026, 11, 27)).unwrap();
        assert_eq!((p.start, p.end), (date(2026, 11, 1), date(2026, 11, 26)));
        assert_eq!(p.label(), "2026-11-01_2026-11-26");
        let second = PeriodSpec::MonthToDate.resolve(date(2026, 11, 2)).unwrap();
        assert_eq!(
            (second.start, second.end),
            (date(2026, 11, 1), date(2026, 11, 1))
        );
        // On the last day the month is not complete yet: it still ends the day before.
        let last = PeriodSpec::MonthToDate.resolve(date(2026, 11, 30)).unwrap();
        assert!(!last.is_whole_month());
    }

    #[test]
    fn month_to_date_on_the_first_is_refused_with_previous_month_suggested() {
        let err = PeriodSpec::MonthToDate
            .resolve(date(2026, 12, 1))
            .unwrap_err();
        assert_eq!(
            err,
            PeriodError::MonthToDateOnTheFirst {
                as_of: date(2026, 12, 1)
            }
        );
        assert!(err.to_string().contains("previous_month"), "{err}");
    }

    #[test]
    fn explicit_month_and_labels() {
        let spec = PeriodSpec::parse_keyword("2026-02").unwrap();
        let p = spec.resolve(date(2026, 11, 1)).unwrap();
        assert_eq!((p.start, p.end), (date(2026, 2, 1), date(2026, 2, 28)));
        assert_eq!(p.label(), "2026-02");
        assert!(PeriodSpec::parse_keyword("2026-13").is_err());
        assert!(PeriodSpec::parse_keyword("2026-1").is_err());
        assert!(PeriodSpec::parse_keyword("last_month").is_err());
    }

    #[test]
    fn future_and_reversed_periods_are_refused() {
        let as_of = date(2026, 11, 15);
        let err = PeriodSpec::parse_keyword("2026-11")
            .unwrap()
            .resolve(as_of)
            .unwrap_err();
        assert!(matches!(err, PeriodError::Future { .. }), "{err}");
        let reversed = PeriodSpec::Range {
            start: date(2026, 10, 10),
            end: date(2026, 10, 1),
        };
        assert!(matches!(
            reversed.resolve(as_of),
            Err(PeriodError::Reversed { .. })
        ));
    }

    #[test]
    fn range_that_is_a_whole_month_is_labelled_as_month() {
        let p = PeriodSpec::Range {
            start: date(2026, 10, 1),
            end: date(2026, 10, 31),
        }
        .resolve(date(2026, 11, 1))
        .unwrap();
        assert_eq!(p.label(), "2026-10");
    }

    #[test]
    fn labels_read_back() {
        for (label, start, end) in [
            ("2026-10", date(2026, 10, 1), date(2026, 10, 31)),
            ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
            (
                "2026-11-01_2026-11-26",
                date(2026, 11, 1),
                date(2026, 11, 26),
            ),
        ] {
            let period = Period::from_label(label).unwrap();
            assert_eq!((period.start, period.end), (start, end), "{label}");
        }
        for not_a_label in [
            "acme",
            "2026-13",
            "2026-10-01_2026-10-31",
            "2026-11-26_2026-11-01",
            "2026-1",
            ".acronis-reports",
        ] {
            assert_eq!(Period::from_label(not_a_label), None, "{not_a_label}");
        }
    }

    #[test]
    fn dates_must_be_iso() {
        assert!(PeriodSpec::parse_date("2026-10-01").is_ok());
        assert!(PeriodSpec::parse_date("2026-1-01").is_err());
        assert!(PeriodSpec::parse_date("2026-02-30").is_err());
    }
}
