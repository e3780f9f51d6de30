//! `--to-datetime` values: `YYYY-MM-DDTHH:MM:SS[.fff]` in UTC, optionally ending in `Z` or an
//! offset `±HH:MM`, to milliseconds since the UNIX epoch.

/// Parses `s` into milliseconds since the UNIX epoch; the error says what format is expected.
pub fn parse_datetime(s: &str) -> Result<i64, String> {
    let bad = |why: &str| {
        format!("invalid date-time '{s}': {why} (expected YYYY-MM-DDTHH:MM:SS[.sss], UTC, optionally ending in Z or ±HH:MM)")
    };
    let (main, offset_min) = split_zone(s).ok_or_else(|| bad("bad time zone"))?;
    let (date, time) = main
        .split_once(['T', 't'])
        .ok_or_else(|| bad("no 'T' between date and time"))?;
    let num = |part: &str, what: &str, digits: usize| -> Result<i64, String> {
        if part.len() != digits || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad(&format!("{what} must be {digits} digits")));
        }
        part.parse::<i64>().map_err(|_| bad(what))
    };
    let d: Vec<&str> = date.split('-').collect();
    if d.len() != 3 {
        return Err(bad("the date must be YYYY-MM-DD"));
    }
    let (year, month, day) = (
        num(d[0], "year", 4)?,
        num(d[1], "month", 2)?,
        num(d[2], "day", 2)?,
    );
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return Err(bad("no such date"));
    }
    let (hms, frac) = match time.split_once('.') {
        Some((hms, frac)) => (hms, Some(frac)),
        None => (time, None),
    };
    let t: Vec<&str> = hms.split(':').collect();
    if t.len() != 3 {
        return Err(bad("the time must be HH:MM:SS"));
    }
    let (h, m, sec) = (
        num(t[0], "hour", 2)?,
        num(t[1], "minute", 2)?,
        num(t[2], "second", 2)?,
    );
    if h > 23 || m > 59 || sec > 59 {
        return Err(bad("no such time"));
    }
    let millis = match frac {
        None => 0,
        Some(f) if !f.is_empty() && f.len() <= 9 && f.bytes().all(|b| b.is_ascii_digit()) => {
            let padded = format!("{f:0<3}");
            padded[..3].parse::<i64>().map_err(|_| bad("fraction"))?
        }
        Some(_) => return Err(bad("the fraction of a second must be 1 to 9 digits")),
    };
    let days = days_from_civil(year, month, day);
    Ok(((days * 24 + h) * 60 + m - offset_min) * 60_000 + sec * 1000 + millis)
}

/// Splits off a trailing `Z` or `±HH:MM`; returns the rest and the offset in minutes.
fn split_zone(s: &str) -> Option<(&str, i64)> {
    if let Some(rest) = s.strip_suffix(['Z', 'z']) {
        return Some((rest, 0));
    }
    // An offset needs a time before it: look after the 'T' only.
    let t = s.find(['T', 't'])?;
    match s[t..].rfind(['+', '-']) {
        None => Some((s, 0)),
        Some(i) => {
            let i = t + i;
            let zone = &s[i + 1..];
            let (hh, mm) = zone.split_once(':').unwrap_or((zone, "00"));
            let ok = |x: &str| x.len() == 2 && x.bytes().all(|b| b.is_ascii_digit());
            if !ok(hh) || !ok(mm) {
                return None;
            }
            let minutes = hh.parse::<i64>().ok()? * 60 + mm.parse::<i64>().ok()?;
            let sign = if s.as_bytes()[i] == b'-' { -1 } else { 1 };
            Some((&s[..i], sign * minutes))
        }
    }
}

fn is_leap(y: i64) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i64, m: i64) -> i64 {
    match m {
        2 if is_leap(y) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

#[cfg(test)]
mod tests {
    use super::parse_datetime;

    #[test]
    fn parses_utc_forms() {
        assert_eq!(parse_datetime("1970-01-01T00:00:00").unwrap(), 0);
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56").unwrap(),
            1_709_210_096_000
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.789").unwrap(),
            1_709_210_096_789
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56.7Z").unwrap(),
            1_709_210_096_700
        );
        assert_eq!(
            parse_datetime("2024-02-29T12:34:56Z").unwrap(),
            1_709_210_096_000
        );
    }

    #[test]
    fn parses_offsets() {
        let utc = parse_datetime("2024-02-29T12:34:56").unwrap();
        assert_eq!(parse_datetime("2024-02-29T14:34:56+02:00").unwrap(), utc);
        assert_eq!(parse_datetime("2024-02-29T10:04:56-02:30").unwrap(), utc);
    }

    #[test]
    fn rejects_nonsense() {
        for s in [
            "",
            "2024-02-30T00:00:00",
            "2023-02-29T00:00:00",
            "2024-13-01T00:00:00",
            "2024-01-01 00:00:00",
            "2024-01-01T24:00:00",
            "2024-1-01T00:00:00",
            "2024-01-01T00:00",
            "2024-01-01T00:00:00.",
            "2024-01-01T00:00:00+2",
            "yesterday",
        ] {
            let e = parse_datetime(s).unwrap_err();
            assert!(e.contains("YYYY-MM-DDTHH:MM:SS"), "{s}: {e}");
        }
    }
}
