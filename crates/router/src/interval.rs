//! Named time intervals (`[[time_intervals]]`): weekdays and times of day in an IANA time
//! zone, evaluated at an event's timestamp (so daylight-saving changes are handled by the
//! time-zone database, not by fixed offsets).

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};
use chrono_tz::Tz;
use vowguard_core::Error;

use crate::config::TimeIntervalConfig;

/// A compiled time interval.
#[derive(Debug, Clone)]
pub struct TimeInterval {
    name: String,
    tz: Tz,
    /// Accepted weekdays, Monday = 0; all true when none were listed.
    weekdays: [bool; 7],
    /// Minute-of-day ranges `[start, end)`; empty means all day.
    times: Vec<(u32, u32)>,
}

impl TimeInterval {
    /// Compiles one `[[time_intervals]]` entry; errors name the interval and the bad value.
    pub fn compile(config: &TimeIntervalConfig) -> Result<Self, Error> {
        let at = |what: &str, e: String| {
            Error::config(format!("`time_intervals ({}).{what}`: {e}", config.name))
        };
        if config.name.trim().is_empty() {
            return Err(Error::config("`time_intervals[].name`: must not be empty"));
        }
        let tz = parse_tz(&config.time_zone).map_err(|e| at("time_zone", e))?;
        let weekdays = parse_weekdays(&config.weekdays).map_err(|e| at("weekdays", e))?;
        let mut times = Vec::new();
        for range in &config.times {
            let start = parse_hhmm(&range.start).map_err(|e| at("times", e))?;
            let end = parse_hhmm(&range.end).map_err(|e| at("times", e))?;
            if start >= end {
                return Err(at(
                    "times",
                    format!("start {} is not before end {}", range.start, range.end),
                ));
            }
            times.push((start, end));
        }
        Ok(Self {
            name: config.name.clone(),
            tz,
            weekdays,
            times,
        })
    }

    /// The interval's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Whether `at` falls inside the interval (in the interval's time zone).
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let local = at.with_timezone(&self.tz);
        if !self.weekdays[local.weekday().num_days_from_monday() as usize] {
            return false;
        }
        let minute = local.hour() * 60 + local.minute();
        self.times.is_empty() || self.times.iter().any(|&(s, e)| minute >= s && minute < e)
    }
}

/// Parses an IANA time-zone name.
pub(crate) fn parse_tz(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>()
        .map_err(|_| format!("unknown IANA time zone {name:?} (e.g. \"Europe/London\", \"UTC\")"))
}

/// Parses a weekday name (`monday`, case-insensitive; 3-letter forms accepted).
pub(crate) fn parse_weekday(s: &str) -> Result<Weekday, String> {
    s.trim()
        .parse::<Weekday>()
        .map_err(|_| format!("unknown weekday {s:?}; expected monday..sunday"))
}

/// Parses `["saturday", "monday:friday"]` into a Monday-first set; empty means every day.
pub(crate) fn parse_weekdays(list: &[String]) -> Result<[bool; 7], String> {
    if list.is_empty() {
        return Ok([true; 7]);
    }
    let mut days = [false; 7];
    for item in list {
        match item.split_once(':') {
            Some((a, b)) => {
                let (a, b) = (parse_weekday(a)?, parse_weekday(b)?);
                let (a, b) = (a.num_days_from_monday(), b.num_days_from_monday());
                if a > b {
                    return Err(format!(
                        "range {item:?} runs backwards; write it Monday-first"
                    ));
                }
                for d in a..=b {
                    days[d as usize] = true;
                }
            }
            None => days[parse_weekday(item)?.num_days_from_monday() as usize] = true,
        }
    }
    Ok(days)
}

fn parse_hhmm(s: &str) -> Result<u32, String> {
    let err = || format!("invalid time {s:?}; expected HH:MM between 00:00 and 24:00");
    let (h, m) = s.trim().split_once(':').ok_or_else(err)?;
    if h.len() != 2 || m.len() != 2 {
        return Err(err());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| err())?, m.parse().map_err(|_| err())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(err());
    }
    Ok(h * 60 + m)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::TimeRangeConfig;

    fn interval(tz: &str, weekdays: &[&str], times: &[(&str, &str)]) -> TimeInterval {
        TimeInterval::compile(&TimeIntervalConfig {
            name: "i".into(),
            time_zone: tz.into(),
            weekdays: weekdays.iter().map(|s| (*s).to_owned()).collect(),
            times: times
                .iter()
                .map(|(s, e)| TimeRangeConfig {
                    start: (*s).into(),
                    end: (*e).into(),
                })
                .collect(),
        })
        .unwrap()
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn office_hours_follow_london_daylight_saving() {
        let office = interval("Europe/London", &["monday:friday"], &[("09:00", "17:00")]);
        // Summer (BST = UTC+1): 08:30Z is 09:30 local.
        assert!(office.contains(at("2026-07-01T08:30:00Z")));
        assert!(!office.contains(at("2026-07-01T16:30:00Z")), "17:30 BST");
        // Winter (GMT): 08:30Z is 08:30 local.
        assert!(!office.contains(at("2026-01-07T08:30:00Z")));
        assert!(office.contains(at("2026-01-07T16:30:00Z")));
        // The DST switch on Sunday 29 March 2026 at 01:00Z: Monday after is BST.
        assert!(office.contains(at("2026-03-30T08:00:00Z")), "09:00 BST");
        assert!(
            !office.contains(at("2026-03-27T08:00:00Z")),
            "08:00 GMT on the Friday before"
        );
        // Saturday is not a weekday.
        assert!(!office.contains(at("2026-07-04T10:00:00Z")));
    }

    #[test]
    fn weekday_is_taken_in_the_interval_time_zone() {
        let saturday_ny = interval("America/New_York", &["saturday"], &[]);
        // 2026-06-20 is a Saturday; 02:00Z on Saturday is still Friday 22:00 in New York.
        assert!(!saturday_ny.contains(at("2026-06-20T02:00:00Z")));
        assert!(
            saturday_ny.contains(at("2026-06-21T02:00:00Z")),
            "Sat 22:00 EDT"
        );
        let saturday_tokyo = interval("Asia/Tokyo", &["sat"], &[]);
        assert!(
            saturday_tokyo.contains(at("2026-06-19T16:00:00Z")),
            "Sat 01:00 JST"
        );
        // New York's autumn change (1 Nov 2026 06:00Z): nights follow local time.
        let night = interval("America/New_York", &[], &[("00:00", "06:00")]);
        assert!(night.contains(at("2026-10-31T09:00:00Z")), "05:00 EDT");
        assert!(!night.contains(at("2026-11-07T11:30:00Z")), "06:30 EST");
        assert!(night.contains(at("2026-11-07T10:30:00Z")), "05:30 EST");
        let all_day = interval("UTC", &[], &[("00:00", "24:00")]);
        assert!(all_day.contains(at("2026-11-07T23:59:00Z")));
    }

    type Case<'a> = (&'a str, &'a [&'a str], &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn bad_intervals_are_config_errors() {
        let cases: [Case<'_>; 5] = [
            ("Mars/Olympus", &[], &[], "unknown IANA time zone"),
            ("UTC", &["funday"], &[], "unknown weekday"),
            ("UTC", &["friday:monday"], &[], "runs backwards"),
            ("UTC", &[], &[("17:00", "09:00")], "not before end"),
            ("UTC", &[], &[("9:00", "10:00")], "invalid time"),
        ];
        for (tz, days, times, why) in cases {
            let err = TimeInterval::compile(&TimeIntervalConfig {
                name: "x".into(),
                time_zone: tz.into(),
                weekdays: days.iter().map(|s| (*s).to_owned()).collect(),
                times: times
                    .iter()
                    .map(|(s, e)| TimeRangeConfig {
                        start: (*s).into(),
                        end: (*e).into(),
                    })
                    .collect(),
            })
            .unwrap_err()
            .to_string();
            assert!(
                err.contains(why) && err.contains("time_intervals (x)"),
                "{err}"
            );
        }
    }
}
