//! Birth date: ISO `YYYY-MM-DD`, Dutch `DD-MM-YYYY` (separators `-`, `/`,
//! `.`; one-digit day and month allowed) or the canonical `YYYYMMDD`; a real
//! date between 1890-01-01 and today. Canonical form `YYYYMMDD`.

use alloc::string::String;

use crate::{CalendarDate, Rule};

/// The earliest birth date the method accepts.
pub const EARLIEST: (u16, u8, u8) = (1890, 1, 1);

fn digits(part: &str, min: usize, max: usize) -> Result<u16, Rule> {
    if part.len() < min || part.len() > max || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rule::Format);
    }
    part.parse().map_err(|_| Rule::Format)
}

fn parse(value: &str) -> Result<(u16, u16, u16), Rule> {
    if value.len() == 8 && value.bytes().all(|b| b.is_ascii_digit()) {
        // `get` rather than `split_at`: no panic path (and its formatting
        // code) in the browser module.
        let part = |range| value.get(range).ok_or(Rule::Format);
        return Ok((
            digits(part(0..4)?, 4, 4)?,
            digits(part(4..6)?, 2, 2)?,
            digits(part(6..8)?, 2, 2)?,
        ));
    }
    let separator = value
        .chars()
        .find(|c| matches!(c, '-' | '/' | '.'))
        .ok_or(Rule::Format)?;
    let mut parts = value.split(separator);
    let (Some(a), Some(b), Some(c), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(Rule::Format);
    };
    if a.len() == 4 {
        Ok((digits(a, 4, 4)?, digits(b, 1, 2)?, digits(c, 1, 2)?))
    } else {
        Ok((digits(c, 4, 4)?, digits(b, 1, 2)?, digits(a, 1, 2)?))
    }
}

/// Normalises a birth date (already trimmed, non-empty).
pub(super) fn birth_date(value: &str, today: CalendarDate) -> Result<String, Rule> {
    let (year, month, day) = parse(value)?;
    let date = CalendarDate::new(
        year,
        u8::try_from(month).map_err(|_| Rule::Calendar)?,
        u8::try_from(day).map_err(|_| Rule::Calendar)?,
    )
    .ok_or(Rule::Calendar)?;
    let (ey, em, ed) = EARLIEST;
    if CalendarDate::new(ey, em, ed).is_some_and(|earliest| date < earliest) {
        return Err(Rule::TooEarly);
    }
    if date > today {
        return Err(Rule::Future);
    }
    Ok(date.to_compact())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn today() -> CalendarDate {
        CalendarDate::new(2026, 11, 23).unwrap()
    }

    #[test]
    fn formats() {
        for input in [
            "1980-03-07",
            "07-03-1980",
            "7-3-1980",
            "7/3/1980",
            "07.03.1980",
            "1980/3/7",
            "19800307",
        ] {
            assert_eq!(birth_date(input, today()).unwrap(), "19800307", "{input}");
        }
    }

    #[test]
    fn bounds() {
        assert_eq!(birth_date("2026-11-23", today()).unwrap(), "20261123");
        assert_eq!(birth_date("2026-11-24", today()), Err(Rule::Future));
        assert_eq!(birth_date("1890-01-01", today()).unwrap(), "18900101");
        assert_eq!(birth_date("1889-12-31", today()), Err(Rule::TooEarly));
        assert_eq!(birth_date("31-02-1980", today()), Err(Rule::Calendar));
        assert_eq!(birth_date("1980-03/07", today()), Err(Rule::Format));
        assert_eq!(birth_date("80-03-07", today()), Err(Rule::Format));
        assert_eq!(birth_date("1980-003-07", today()), Err(Rule::Format));
    }
}
