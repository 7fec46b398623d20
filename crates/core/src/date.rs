//! A proleptic Gregorian calendar date, enough for birth dates.

use alloc::string::String;

use core::fmt;

/// A calendar date that is known to exist (no 31 February).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CalendarDate {
    // Field order makes the derived ordering chronological.
    year: u16,
    month: u8,
    day: u8,
}

impl CalendarDate {
    /// 1970-01-01.
    pub const EPOCH: CalendarDate = CalendarDate {
        year: 1970,
        month: 1,
        day: 1,
    };

    /// The date `year-month-day`, or `None` if it does not exist.
    pub fn new(year: u16, month: u8, day: u8) -> Option<Self> {
        (year >= 1 && (1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then_some(CalendarDate { year, month, day })
    }

    /// The year.
    pub fn year(self) -> u16 {
        self.year
    }

    /// The month, 1 to 12.
    pub fn month(self) -> u8 {
        self.month
    }

    /// The day of the month, 1 to 31.
    pub fn day(self) -> u8 {
        self.day
    }

    /// The canonical form of the method: `YYYYMMDD`.
    pub fn to_compact(self) -> String {
        // The same as `format!("{:04}{:02}{:02}", …)`, without core::fmt
        // (size of the browser module).
        let mut out = String::with_capacity(8);
        push_padded(&mut out, self.year, 4);
        push_padded(&mut out, self.month.into(), 2);
        push_padded(&mut out, self.day.into(), 2);
        out
    }

    /// Today's date in UTC from the system clock (native targets only; the
    /// browser module passes the local date from JavaScript instead).
    #[cfg(feature = "std")]
    pub fn today_utc() -> Option<Self> {
        let secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?
            .as_secs();
        Self::from_days_since_epoch(i64::try_from(secs / 86_400).ok()?)
    }

    /// The date `days` after 1970-01-01 (civil-from-days, valid for years
    /// 1 to 65535).
    pub fn from_days_since_epoch(days: i64) -> Option<Self> {
        let z = days.checked_add(719_468)?;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = doy - (153 * mp + 2) / 5 + 1;
        let month = if mp < 10 { mp + 3 } else { mp - 9 };
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self::new(
            u16::try_from(year).ok()?,
            u8::try_from(month).ok()?,
            u8::try_from(day).ok()?,
        )
    }
}

impl fmt::Display for CalendarDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Appends `n` in decimal, zero-padded on the left to `width` digits.
fn push_padded(out: &mut String, n: u16, width: usize) {
    let mut digits = [0u8; 5];
    let mut rest = n;
    let mut len = 0;
    for slot in digits.iter_mut().rev() {
        *slot = b'0' + (rest % 10) as u8;
        rest /= 10;
        len += 1;
        if rest == 0 && len >= width {
            break;
        }
    }
    for &d in digits.iter().skip(digits.len() - len) {
        out.push(char::from(d));
    }
}

fn is_leap(year: u16) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calendar_rules() {
        assert!(CalendarDate::new(2000, 2, 29).is_some());
        assert!(CalendarDate::new(1900, 2, 29).is_none());
        assert!(CalendarDate::new(2024, 2, 29).is_some());
        assert!(CalendarDate::new(2023, 2, 29).is_none());
        assert!(CalendarDate::new(2023, 4, 31).is_none());
        assert!(CalendarDate::new(2023, 13, 1).is_none());
        assert!(CalendarDate::new(2023, 1, 0).is_none());
    }

    #[test]
    fn compact_form_equals_zero_padded_format() {
        for (year, month, day) in [
            (1, 1, 1),
            (999, 9, 9),
            (1890, 1, 1),
            (1980, 12, 31),
            (65535, 6, 15),
        ] {
            let date = CalendarDate::new(year, month, day).unwrap();
            assert_eq!(date.to_compact(), format!("{year:04}{month:02}{day:02}"));
        }
        for n in 0..=u16::MAX {
            let (mut two, mut four) = (String::new(), String::new());
            push_padded(&mut two, n, 2);
            push_padded(&mut four, n, 4);
            assert_eq!((two, four), (format!("{n:02}"), format!("{n:04}")));
        }
    }

    #[test]
    fn days_since_epoch() {
        assert_eq!(
            CalendarDate::from_days_since_epoch(0).unwrap().to_string(),
            "1970-01-01"
        );
        assert_eq!(
            CalendarDate::from_days_since_epoch(11_016)
                .unwrap()
                .to_string(),
            "2000-02-29"
        );
        assert_eq!(
            CalendarDate::from_days_since_epoch(-1).unwrap().to_string(),
            "1969-12-31"
        );
        assert_eq!(
            CalendarDate::from_days_since_epoch(20_415)
                .unwrap()
                .to_string(),
            "2025-11-23"
        );
        assert!(CalendarDate::new(2026, 1, 1).unwrap() > CalendarDate::new(2025, 12, 31).unwrap());
    }
}
