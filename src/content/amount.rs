//! Exact decimal amounts: report files carry byte counts beyond an `f64`'s 53 bits once summed
//! over thousands of tenants, and billing must add them without rounding.

use std::fmt;

/// Fractional digits kept. Report values are integers or have a few decimals; nine covers both
/// with room, and an `i128` of nanos still holds 1.7 × 10²⁹.
const SCALE_DIGITS: u32 = 9;
const SCALE: i128 = 1_000_000_000;
/// The largest magnitude one value may have: 10¹⁸ (an exabyte, or 31 billion years of
/// point-seconds) is far beyond any usage, and keeps every sum of values exact: an `i128` of
/// nanos overflows only after 1.7 × 10¹¹ such values, more rows than a file can hold.
const MAX_WHOLE: i128 = 1_000_000_000_000_000_000;

/// Why a text is not an [`Amount`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotAnAmount {
    /// Not a decimal number at all.
    #[error("is not a number")]
    NotANumber,
    /// More precision than the nine decimal places an amount keeps.
    #[error("has more than 9 decimal places that are not zero")]
    TooPrecise,
    /// Larger than any usage could be.
    #[error("is beyond 10^18, more than any usage")]
    TooLarge,
}

/// A decimal number with nine fractional digits, stored as an integer count of 10⁻⁹.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(i128);

impl Amount {
    pub(crate) const ZERO: Amount = Amount(0);

    /// Parses `12`, `-3.5`, `+0.25`, `1e6`, `2.5E-3`; spaces around are allowed. `None` for
    /// anything else (empty text included), or for more than nine significant fractional
    /// digits that are not zeros, or a value too large.
    pub fn parse(text: &str) -> Option<Amount> {
        Amount::parse_why(text).ok()
    }

    /// A cell of nothing but up to 18 digits, which nearly every cell of a report is, read
    /// without the general path's searches (and without checking UTF-8 first: digits are);
    /// `None` for anything else, which [`Amount::parse_why`] then reads.
    pub(crate) fn parse_digits(cell: &[u8]) -> Option<Amount> {
        if cell.is_empty() || cell.len() > 18 {
            return None;
        }
        let mut value = 0u64;
        for &byte in cell {
            if !byte.is_ascii_digit() {
                return None;
            }
            value = value * 10 + u64::from(byte - b'0');
        }
        Some(Amount(i128::from(value) * SCALE))
    }

    /// [`Amount::parse`], saying why not.
    pub(crate) fn parse_why(text: &str) -> Result<Amount, NotAnAmount> {
        use NotAnAmount::{NotANumber, TooLarge, TooPrecise};
        let text = text.trim();
        let (negative, rest) = match text.as_bytes().first().ok_or(NotANumber)? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (mantissa, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (
                &rest[..at],
                rest[at + 1..].parse::<i32>().map_err(|_| NotANumber)?,
            ),
            None => (rest, 0),
        };
        let (whole, fraction) = mantissa.split_once('.').unwrap_or((mantissa, ""));
        if whole.is_empty() && fraction.is_empty() {
            return Err(NotANumber);
        }
        // Trailing zeros of the fraction change nothing, and would only overflow the digits.
        let fraction = fraction.trim_end_matches('0');
        // Every digit into one integer, without allocating: this runs for every cell of
        // every row of files that reach GiB.
        let mut all = whole.bytes().chain(fraction.bytes());
        // Up to 19 digits fit a u64, whose arithmetic is several times cheaper than an i128's;
        // that covers every value a report has.
        let mut small: u64 = 0;
        let mut count = 0;
        let mut digits: i128 = loop {
            match all.next() {
                None => break i128::from(small),
                Some(b) if !b.is_ascii_digit() => return Err(NotANumber),
                Some(b) if count < 19 => {
                    small = small * 10 + u64::from(b - b'0');
                    count += 1;
                }
                Some(b) => {
                    break i128::from(small)
                        .checked_mul(10)
                        .and_then(|d| d.checked_add(i128::from(b - b'0')))
                        .ok_or(TooLarge)?;
                }
            }
        };
        for b in all {
            if !b.is_ascii_digit() {
                return Err(NotANumber);
            }
            digits = digits
                .checked_mul(10)
                .and_then(|d| d.checked_add(i128::from(b - b'0')))
                .ok_or(TooLarge)?;
        }
        // Where the decimal point falls relative to nanos.
        let shift = i64::from(exponent) - fraction.len() as i64 + i64::from(SCALE_DIGITS);
        let value = if digits == 0 {
            0
        } else if shift >= 0 {
            u32::try_from(shift)
                .ok()
                .and_then(|s| 10i128.checked_pow(s))
                .and_then(|scale| digits.checked_mul(scale))
                .ok_or(TooLarge)?
        } else {
            // Digits below a nano must all be zeros.
            let Some(divisor) = u32::try_from(-shift)
                .ok()
                .and_then(|s| 10i128.checked_pow(s))
            else {
                return Err(TooPrecise);
            };
            if digits % divisor != 0 {
                return Err(TooPrecise);
            }
            digits / divisor
        };
        if value > MAX_WHOLE * SCALE {
            return Err(TooLarge);
        }
        Ok(Amount(if negative { -value } else { value }))
    }

    /// From a JSON number that arrived as a float: through its shortest text, which is what the
    /// file most likely wrote.
    pub(crate) fn from_f64(number: f64) -> Option<Amount> {
        if !number.is_finite() {
            return None;
        }
        Amount::parse(&format!("{number:e}"))
    }

    pub(crate) fn from_i128(whole: i128) -> Option<Amount> {
        if whole.abs() > MAX_WHOLE {
            return None;
        }
        whole.checked_mul(SCALE).map(Amount)
    }

    /// The exact sum, `None` when it does not fit.
    pub(crate) fn checked_add(self, other: Amount) -> Option<Amount> {
        self.0.checked_add(other.0).map(Amount)
    }

    /// For sums of values already summed exactly per line (see [`MAX_WHOLE`]: it cannot
    /// saturate on real input).
    pub(crate) fn saturating_add(self, other: Amount) -> Amount {
        Amount(self.0.saturating_add(other.0))
    }

    /// The difference of two sums (see [`Amount::saturating_add`]).
    pub(crate) fn saturating_sub(self, other: Amount) -> Amount {
        Amount(self.0.saturating_sub(other.0))
    }

    /// `self` ÷ `other` as a float, for showing a relative change: `None` when `other` is zero.
    pub(crate) fn ratio(self, other: Amount) -> Option<f64> {
        (other.0 != 0).then(|| self.0 as f64 / other.0 as f64)
    }

    /// Compares sizes, whatever the signs.
    pub(crate) fn abs_cmp(self, other: Amount) -> std::cmp::Ordering {
        self.0.unsigned_abs().cmp(&other.0.unsigned_abs())
    }

    /// Divided by `divisor` and rounded half away from zero to `decimals` (≤ 9) places.
    pub(crate) fn div_round(self, divisor: i128, decimals: u32) -> Amount {
        let step = 10i128.pow(SCALE_DIGITS - decimals.min(SCALE_DIGITS));
        let units = self.0 / step; // units of 10^-decimals, before the division
        let remainder = self.0 % step;
        // (units + remainder/step) / divisor, rounded: exact in integers.
        let numerator = units * step + remainder;
        let denominator = divisor * step;
        let quotient = numerator / denominator;
        let rest = numerator % denominator;
        let rounded = if rest.abs() * 2 >= denominator.abs() {
            quotient + numerator.signum() * denominator.signum()
        } else {
            quotient
        };
        Amount(rounded * step)
    }

    /// As a float, for display only (GiB): never for sums.
    pub(crate) fn as_f64(self) -> f64 {
        self.0 as f64 / SCALE as f64
    }

    /// Whether the amount is exactly zero.
    pub fn is_zero(self) -> bool {
        self.0 == 0
    }

    /// The count of 10⁻⁹ it is, for a compact encoding ([`super::spill`]).
    pub(super) fn nanos(self) -> i128 {
        self.0
    }

    /// The amount of `nanos` 10⁻⁹, as [`Amount::nanos`] gave it.
    pub(super) fn from_nanos(nanos: i128) -> Amount {
        Amount(nanos)
    }

    /// The text with exactly `decimals` fractional digits (rounded half away from zero).
    pub fn fixed(self, decimals: u32) -> String {
        let rounded = self.div_round(1, decimals);
        let text = rounded.to_string();
        let current = text.split_once('.').map_or(0, |(_, f)| f.len());
        let mut text = text;
        if decimals > 0 && current == 0 {
            text.push('.');
        }
        for _ in current..decimals as usize {
            text.push('0');
        }
        text
    }
}

impl Amount {
    /// Appends the text [`fmt::Display`] gives to `out`, without the formatting machinery or
    /// 128-bit division where the value fits 64 bits (every real one): `billing.csv` writes a
    /// dozen amounts per line, and millions of lines.
    pub(crate) fn push_to(self, out: &mut String) {
        let Ok(magnitude) = u64::try_from(self.0.unsigned_abs()) else {
            use fmt::Write as _;
            // A String takes any text.
            let _ = write!(out, "{self}");
            return;
        };
        if self.0 < 0 {
            out.push('-');
        }
        let scale = SCALE as u64;
        push_digits(out, magnitude / scale, 1);
        let fraction = magnitude % scale;
        if fraction != 0 {
            out.push('.');
            let mut digits = SCALE_DIGITS as usize;
            let mut fraction = fraction;
            while fraction.is_multiple_of(10) {
                fraction /= 10;
                digits -= 1;
            }
            push_digits(out, fraction, digits);
        }
    }
}

/// `value` in decimal, zero-padded to at least `width` digits (at most 20).
pub(crate) fn push_digits(out: &mut String, mut value: u64, width: usize) {
    let mut digits = [b'0'; 20];
    let mut at = digits.len();
    while value > 0 || digits.len() - at < width.min(20) {
        at -= 1;
        digits[at] = b'0' + (value % 10) as u8;
        value /= 10;
    }
    for &digit in &digits[at..] {
        out.push(char::from(digit));
    }
}

impl fmt::Display for Amount {
    /// The shortest exact text: `12`, `-3.5`, `0.000000001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        let whole = magnitude / SCALE as u128;
        let fraction = magnitude % SCALE as u128;
        if fraction == 0 {
            return write!(f, "{sign}{whole}");
        }
        let digits = format!("{fraction:09}");
        write!(f, "{sign}{whole}.{}", digits.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(text: &str) -> Amount {
        Amount::parse(text).unwrap_or_else(|| panic!("{text} should parse"))
    }

    #[test]
    fn digits_read_as_the_general_path_reads_them() {
        for text in [
            "0",
            "7",
            "000",
            "0001",
            "123456789012345678",
            "999999999999999999",
            "1234567890123456789",
            "",
            "-1",
            "+1",
            "1.5",
            " 1",
            "1 ",
            "1e3",
            "12a",
            "١٢",
        ] {
            match Amount::parse_digits(text.as_bytes()) {
                Some(amount) => assert_eq!(Ok(amount), Amount::parse_why(text), "{text}"),
                None => assert!(
                    text.len() > 18 || !text.bytes().all(|b| b.is_ascii_digit()) || text.is_empty(),
                    "{text}"
                ),
            }
        }
    }

    #[test]
    fn pushed_text_is_the_displayed_text() {
        let mut values: Vec<i128> = vec![0, 1, -1, 5, 10, 999, 1_000_000_000, -500_000_000];
        for exponent in 0..38 {
            let power = 10i128.pow(exponent);
            values.extend([power, power - 1, power + 7, -power, -(power + 123_456_789)]);
        }
        values.extend([
            i128::from(u64::MAX),
            i128::from(u64::MAX) + 1,
            -i128::from(u64::MAX),
            i128::MAX,
            i128::MIN + 1,
        ]);
        let mut pushed = String::new();
        for value in values {
            pushed.clear();
            Amount(value).push_to(&mut pushed);
            assert_eq!(pushed, Amount(value).to_string(), "{value}");
        }
        let mut digits = String::new();
        push_digits(&mut digits, 42, 5);
        push_digits(&mut digits, 0, 1);
        push_digits(&mut digits, u64::MAX, 1);
        assert_eq!(digits, format!("000420{}", u64::MAX));
    }

    #[test]
    fn parses_integers_decimals_and_exponents() {
        assert_eq!(a("12").to_string(), "12");
        assert_eq!(a(" -3.50 ").to_string(), "-3.5");
        assert_eq!(a("+0.25").to_string(), "0.25");
        assert_eq!(a(".5").to_string(), "0.5");
        assert_eq!(a("5.").to_string(), "5");
        assert_eq!(a("1e6").to_string(), "1000000");
        assert_eq!(a("2.5E-3").to_string(), "0.0025");
        assert_eq!(a("0.000000001").to_string(), "0.000000001");
        assert_eq!(a("1.0000000000").to_string(), "1");
        assert_eq!(a("-0").to_string(), "0");
        assert_eq!(a("1000000000000000000").to_string(), "1000000000000000000");
        assert_eq!(a("0e999").to_string(), "0");
    }

    #[test]
    fn refuses_what_is_not_a_plain_number() {
        for text in [
            "",
            " ",
            "-",
            ".",
            "1,5",
            "1.2.3",
            "abc",
            "NaN",
            "inf",
            "1e",
            "0x10",
            "1 2",
            "0.0000000001",
            "1e400",
            "1_000",
            "１２",
            "٣",
            "+-5",
        ] {
            assert_eq!(Amount::parse(text), None, "{text:?}");
        }
    }

    #[test]
    fn says_why_a_number_is_refused() {
        use NotAnAmount::*;
        assert_eq!(Amount::parse_why("1.12345678901234567890"), Err(TooPrecise));
        assert_eq!(Amount::parse_why("1e400"), Err(TooLarge));
        assert_eq!(Amount::parse_why("1000000000000000001"), Err(TooLarge));
        assert_eq!(Amount::parse_why("-1e19"), Err(TooLarge));
        assert_eq!(Amount::parse_why("0x10"), Err(NotANumber));
        assert_eq!(Amount::from_i128(i128::from(u64::MAX)), None);
    }

    #[test]
    fn integers_and_decimals_of_every_length_parse_as_the_standard_library_says() {
        // Across the 19-digit boundary where parsing moves from u64 to i128.
        for length in 1..=18 {
            let digits: String = (0..length)
                .map(|i| char::from(b'1' + (i % 9) as u8))
                .collect();
            let whole: i128 = digits.parse().unwrap();
            assert_eq!(a(&digits).to_string(), digits, "{digits}");
            // The same digits with the point nine places in: always within nanos.
            if length > 9 {
                let (int, frac) = digits.split_at(length - 9);
                let text = format!("{int}.{frac}");
                assert_eq!(a(&text).0, whole, "{text}");
            }
        }
        // 20 and 25 digits, all fractional zeros but the last ones: 19+ digits in all.
        assert_eq!(a("1.0000000000000000000").to_string(), "1");
        assert_eq!(
            a("12345678901.123456789").to_string(),
            "12345678901.123456789"
        );
        assert!(matches!(
            Amount::parse_why("0.0000000000000000001"),
            Err(NotAnAmount::TooPrecise)
        ));
    }

    #[test]
    fn sums_stay_exact_beyond_f64() {
        let big = a("9007199254740993"); // 2^53 + 1
        assert_eq!(big.saturating_add(a("1")).to_string(), "9007199254740994");
    }

    #[test]
    fn divides_and_rounds_half_away_from_zero() {
        assert_eq!(a("7200").div_round(3600, 2).to_string(), "2");
        assert_eq!(a("18").div_round(3600, 2).to_string(), "0.01"); // 0.005 → 0.01
        assert_eq!(a("17").div_round(3600, 2).to_string(), "0"); // 0.00472 → 0.00
        assert_eq!(a("-18").div_round(3600, 2).to_string(), "-0.01");
        assert_eq!(a("1.005").div_round(1, 2).to_string(), "1.01");
        assert_eq!(a("5").fixed(2), "5.00");
        assert_eq!(a("0.125").fixed(2), "0.13");
        assert_eq!(a("1073741824").div_round(1 << 30, 4).fixed(4), "1.0000");
    }

    #[test]
    fn floats_arrive_as_their_shortest_text() {
        assert_eq!(
            Amount::from_f64(0.1).map(|a| a.to_string()),
            Some("0.1".into())
        );
        assert_eq!(
            Amount::from_f64(1e17).map(|a| a.to_string()),
            Some("100000000000000000".into())
        );
        assert_eq!(Amount::from_f64(f64::NAN), None);
    }
}
