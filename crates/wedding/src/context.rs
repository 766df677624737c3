//! Wedding records and the pure computation of a [`WeddingContext`] at a point in time.
//!
//! Everything is computed in the wedding's own time zone: an event at 23:30 UTC on Friday is
//! already Saturday, the wedding day, for a wedding in `Australia/Sydney`.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDate, Offset, TimeZone, Utc, Weekday};
use chrono_tz::Tz;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use vowguard_core::{Season, WeddingContext, WeddingPhase};

/// What the platform knows about one wedding, as a provider returns it.
///
/// JSON form (unknown fields are ignored, so a host API can return more):
///
/// ```json
/// {"wedding_id": "w-1", "date": "2026-06-20", "timezone": "Europe/London",
///  "guest_count": 120, "vendor_count": 9, "venue": "Kew Gardens"}
/// ```
///
/// `timezone` is an IANA name and is validated when the record is read. `wedding_id` may be
/// left out where the id is already known (the key of a JSON-file object, the id requested
/// from an HTTP provider).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WeddingRecord {
    /// The wedding's id, as events carry it in `wedding_id`.
    #[serde(default)]
    pub wedding_id: String,
    /// The wedding date, in the wedding's own time zone.
    pub date: NaiveDate,
    /// The wedding's time zone.
    #[serde(serialize_with = "serialize_tz", deserialize_with = "deserialize_tz")]
    pub timezone: Tz,
    /// Number of guests, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_count: Option<u32>,
    /// Number of vendors booked, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vendor_count: Option<u32>,
    /// The venue's name, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub venue: Option<String>,
}

impl WeddingRecord {
    /// A record with only the required fields.
    pub fn new(wedding_id: impl Into<String>, date: NaiveDate, timezone: Tz) -> Self {
        Self {
            wedding_id: wedding_id.into(),
            date,
            timezone,
            guest_count: None,
            vendor_count: None,
            venue: None,
        }
    }
}

fn serialize_tz<S: Serializer>(tz: &Tz, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(tz.name())
}

fn deserialize_tz<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Tz, D::Error> {
    let name = String::deserialize(deserializer)?;
    parse_timezone(&name).map_err(serde::de::Error::custom)
}

/// Parses an IANA time zone name (`Europe/London`, `UTC`); the error says what was wrong.
pub fn parse_timezone(name: &str) -> Result<Tz, String> {
    name.trim().parse::<Tz>().map_err(|_| {
        format!(
            "unknown IANA time zone `{}` (expected a name like `Europe/London`)",
            name.chars().take(64).collect::<String>()
        )
    })
}

/// Which hemisphere's seasons apply to wedding dates.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Hemisphere {
    /// March–May spring, June–August summer, September–November autumn, December–February
    /// winter (the default).
    #[default]
    Northern,
    /// Seasons shifted by six months: December–February is summer.
    Southern,
}

impl fmt::Display for Hemisphere {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Northern => "northern",
            Self::Southern => "southern",
        })
    }
}

/// The longest `week_of_days` accepted.
pub const MAX_WEEK_OF_DAYS: u32 = 366;

/// How phases and seasons are derived.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct ContextOptions {
    /// Days before the wedding that count as `week_of` (default 7). 0 means there is no
    /// `week_of` phase: `planning` runs until the day before.
    pub week_of_days: u32,
    /// Whose seasons apply (default northern).
    pub hemisphere: Hemisphere,
}

impl Default for ContextOptions {
    fn default() -> Self {
        Self {
            week_of_days: 7,
            hemisphere: Hemisphere::Northern,
        }
    }
}

/// The meteorological season of `date`.
pub fn season_of(date: NaiveDate, hemisphere: Hemisphere) -> Season {
    let northern = match date.month() {
        3..=5 => Season::Spring,
        6..=8 => Season::Summer,
        9..=11 => Season::Autumn,
        _ => Season::Winter,
    };
    match hemisphere {
        Hemisphere::Northern => northern,
        Hemisphere::Southern => match northern {
            Season::Spring => Season::Autumn,
            Season::Summer => Season::Winter,
            Season::Autumn => Season::Spring,
            Season::Winter => Season::Summer,
        },
    }
}

/// The phase for a number of days until the wedding: more than `week_of_days` is
/// `planning`, `1..=week_of_days` is `week_of`, `0` is `day_of`, negative is `post_wedding`.
pub fn phase_for(days_until: i64, week_of_days: u32) -> WeddingPhase {
    match days_until {
        d if d < 0 => WeddingPhase::PostWedding,
        0 => WeddingPhase::DayOf,
        d if d <= i64::from(week_of_days) => WeddingPhase::WeekOf,
        _ => WeddingPhase::Planning,
    }
}

/// The calendar date of `at` in `tz`.
///
/// At the very edges of chrono's range, where the local time cannot be represented, the
/// UTC date is used instead (this never panics).
pub fn local_date(at: DateTime<Utc>, tz: Tz) -> NaiveDate {
    let utc = at.naive_utc();
    let offset = tz.offset_from_utc_datetime(&utc).fix();
    utc.checked_add_offset(offset).unwrap_or(utc).date()
}

/// The context of `record` for an event at `at`, with the default [`ContextOptions`].
pub fn context_at(record: &WeddingRecord, at: DateTime<Utc>) -> WeddingContext {
    context_with(record, at, ContextOptions::default())
}

/// The context of `record` for an event at `at`.
///
/// `days_until` is the wedding date minus the event's local date in the wedding's time
/// zone (whole calendar days, so DST changes never shift it); the phase follows from it
/// ([`phase_for`]). `weekend` and `season` describe the wedding date itself. The wedding
/// day is `day_of` from local midnight to local midnight; the night after is
/// `post_wedding`.
pub fn context_with(
    record: &WeddingRecord,
    at: DateTime<Utc>,
    options: ContextOptions,
) -> WeddingContext {
    let today = local_date(at, record.timezone);
    let days_until = record.date.signed_duration_since(today).num_days();
    WeddingContext {
        wedding_id: record.wedding_id.clone(),
        date: record.date,
        timezone: record.timezone.name().to_owned(),
        phase: phase_for(days_until, options.week_of_days),
        days_until,
        weekend: matches!(record.date.weekday(), Weekday::Sat | Weekday::Sun),
        season: season_of(record.date, options.hemisphere),
        guest_count: record.guest_count,
        vendor_count: record.vendor_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn rec(date: NaiveDate, tz: &str) -> WeddingRecord {
        WeddingRecord::new("w-1", date, parse_timezone(tz).unwrap())
    }

    #[test]
    fn phase_boundaries_utc() {
        // Saturday 20 June 2026.
        let r = rec(d(2026, 6, 20), "UTC");
        let cases = [
            ("2026-06-12T12:00:00Z", 8, WeddingPhase::Planning),
            ("2026-06-12T23:59:59Z", 8, WeddingPhase::Planning),
            ("2026-06-13T00:00:00Z", 7, WeddingPhase::WeekOf),
            ("2026-06-19T23:59:59Z", 1, WeddingPhase::WeekOf),
            ("2026-06-20T00:00:00Z", 0, WeddingPhase::DayOf),
            ("2026-06-20T23:59:59Z", 0, WeddingPhase::DayOf),
            ("2026-06-21T00:00:00Z", -1, WeddingPhase::PostWedding),
            ("2027-06-21T00:00:00Z", -366, WeddingPhase::PostWedding),
            ("2025-01-01T00:00:00Z", 535, WeddingPhase::Planning),
        ];
        for (at, days, phase) in cases {
            let c = context_at(&r, t(at));
            assert_eq!((c.days_until, c.phase), (days, phase), "{at}");
        }
        let c = context_at(&r, t("2026-06-20T10:00:00Z"));
        assert_eq!(c.wedding_id, "w-1");
        assert_eq!(c.timezone, "UTC");
        assert!(c.weekend);
        assert_eq!(c.season, Season::Summer);
    }

    #[test]
    fn sydney_is_already_the_wedding_day() {
        // 23:30 UTC on Friday 19 June is 09:30 on Saturday 20 June in Sydney (AEST, +10).
        let r = rec(d(2026, 6, 20), "Australia/Sydney");
        let c = context_at(&r, t("2026-06-19T23:30:00Z"));
        assert_eq!((c.days_until, c.phase), (0, WeddingPhase::DayOf));
        assert_eq!(c.timezone, "Australia/Sydney");
        // 13:59 UTC on the 20th is 23:59 local: still the day; 14:00 UTC is the 21st.
        assert_eq!(
            context_at(&r, t("2026-06-20T13:59:59Z")).phase,
            WeddingPhase::DayOf
        );
        assert_eq!(
            context_at(&r, t("2026-06-20T14:00:00Z")).phase,
            WeddingPhase::PostWedding
        );
        // The same instant is still the week before in UTC.
        let utc = rec(d(2026, 6, 20), "UTC");
        assert_eq!(
            context_at(&utc, t("2026-06-19T23:30:00Z")).phase,
            WeddingPhase::WeekOf
        );
    }

    #[test]
    fn auckland_and_los_angeles() {
        // Auckland in January is NZDT (+13): 11:00 UTC on the 9th is 00:00 on the 10th.
        let r = rec(d(2027, 1, 10), "Pacific/Auckland");
        assert_eq!(context_at(&r, t("2027-01-09T10:59:59Z")).days_until, 1);
        assert_eq!(context_at(&r, t("2027-01-09T11:00:00Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2027-01-10T10:59:59Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2027-01-10T11:00:00Z")).days_until, -1);
        // Los Angeles in June is PDT (-7): 06:59 UTC on the 21st is still the 20th.
        let r = rec(d(2026, 6, 20), "America/Los_Angeles");
        assert_eq!(
            context_at(&r, t("2026-06-20T06:59:59Z")).phase,
            WeddingPhase::WeekOf
        );
        assert_eq!(
            context_at(&r, t("2026-06-20T07:00:00Z")).phase,
            WeddingPhase::DayOf
        );
        assert_eq!(
            context_at(&r, t("2026-06-21T06:59:59Z")).phase,
            WeddingPhase::DayOf
        );
        assert_eq!(
            context_at(&r, t("2026-06-21T07:00:00Z")).phase,
            WeddingPhase::PostWedding
        );
    }

    #[test]
    fn us_dst_change_weekend() {
        // US DST starts Sunday 8 March 2026 at 02:00 local (PST -8 -> PDT -7).
        let r = rec(d(2026, 3, 8), "America/Los_Angeles");
        let c = context_at(&r, t("2026-03-08T08:00:00Z")); // 00:00 PST
        assert_eq!((c.days_until, c.phase), (0, WeddingPhase::DayOf));
        assert!(c.weekend);
        assert_eq!(c.season, Season::Spring);
        assert_eq!(context_at(&r, t("2026-03-08T07:59:59Z")).days_until, 1);
        // The day is 23 hours long: it ends at 07:00 UTC on the 9th (00:00 PDT).
        assert_eq!(context_at(&r, t("2026-03-09T06:59:59Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2026-03-09T07:00:00Z")).days_until, -1);
        // DST ends Sunday 1 November 2026: a 25-hour day, 07:00 UTC to 08:00 UTC next day.
        let r = rec(d(2026, 11, 1), "America/Los_Angeles");
        assert_eq!(context_at(&r, t("2026-11-01T06:59:59Z")).days_until, 1);
        assert_eq!(context_at(&r, t("2026-11-01T07:00:00Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2026-11-02T07:59:59Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2026-11-02T08:00:00Z")).days_until, -1);
        // Across DST, whole days are counted, never 23/25-hour spans.
        let r = rec(d(2026, 3, 14), "America/Los_Angeles");
        assert_eq!(context_at(&r, t("2026-03-07T09:00:00Z")).days_until, 7);
        assert_eq!(
            context_at(&r, t("2026-03-07T09:00:00Z")).phase,
            WeddingPhase::WeekOf
        );
    }

    #[test]
    fn leap_day_and_year_end() {
        let r = rec(d(2028, 2, 29), "Europe/London");
        assert_eq!(context_at(&r, t("2028-02-28T12:00:00Z")).days_until, 1);
        assert_eq!(context_at(&r, t("2028-02-29T12:00:00Z")).days_until, 0);
        assert_eq!(context_at(&r, t("2028-03-01T00:00:00Z")).days_until, -1);
        assert_eq!(context_at(&r, t("2027-02-28T12:00:00Z")).days_until, 366);
        assert!(!context_at(&r, t("2028-02-29T12:00:00Z")).weekend); // a Tuesday
        let r = rec(d(2027, 1, 1), "Pacific/Auckland");
        // 11:00 UTC on 31 December is midnight of New Year's Day in Auckland.
        assert_eq!(context_at(&r, t("2026-12-31T11:00:00Z")).days_until, 0);
    }

    #[test]
    fn weekend_days() {
        for (day, weekend) in [
            (19, false), // Friday
            (20, true),  // Saturday
            (21, true),  // Sunday
            (22, false), // Monday
        ] {
            let r = rec(d(2026, 6, day), "UTC");
            assert_eq!(
                context_at(&r, t("2026-01-01T00:00:00Z")).weekend,
                weekend,
                "{day}"
            );
        }
    }

    #[test]
    fn seasons_both_hemispheres() {
        use Season::*;
        let expected = [
            (1, Winter, Summer),
            (2, Winter, Summer),
            (3, Spring, Autumn),
            (5, Spring, Autumn),
            (6, Summer, Winter),
            (8, Summer, Winter),
            (9, Autumn, Spring),
            (11, Autumn, Spring),
            (12, Winter, Summer),
        ];
        for (month, north, south) in expected {
            let date = d(2026, month, 15);
            assert_eq!(season_of(date, Hemisphere::Northern), north, "{month}");
            assert_eq!(season_of(date, Hemisphere::Southern), south, "{month}");
        }
        let r = rec(d(2026, 12, 19), "Australia/Sydney");
        let c = context_with(
            &r,
            t("2026-06-01T00:00:00Z"),
            ContextOptions {
                hemisphere: Hemisphere::Southern,
                ..ContextOptions::default()
            },
        );
        assert_eq!(c.season, Summer);
    }

    #[test]
    fn week_of_window_is_configurable() {
        let r = rec(d(2026, 6, 20), "UTC");
        let at = t("2026-06-06T12:00:00Z"); // 14 days before
        let opts = |n| ContextOptions {
            week_of_days: n,
            ..ContextOptions::default()
        };
        assert_eq!(context_with(&r, at, opts(7)).phase, WeddingPhase::Planning);
        assert_eq!(context_with(&r, at, opts(14)).phase, WeddingPhase::WeekOf);
        assert_eq!(context_with(&r, at, opts(13)).phase, WeddingPhase::Planning);
        let eve = t("2026-06-19T12:00:00Z");
        assert_eq!(context_with(&r, eve, opts(0)).phase, WeddingPhase::Planning);
    }

    #[test]
    fn record_json_validates_timezone() {
        let r: WeddingRecord = serde_json::from_str(
            r#"{"wedding_id":"w-1","date":"2026-06-20","timezone":"Europe/London","guest_count":120,"extra":1}"#,
        )
        .unwrap();
        assert_eq!(r.timezone, Tz::Europe__London);
        assert_eq!(r.guest_count, Some(120));
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["timezone"], "Europe/London");
        let err = serde_json::from_str::<WeddingRecord>(
            r#"{"wedding_id":"w-1","date":"2026-06-20","timezone":"Mars/Olympus"}"#,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("unknown IANA time zone `Mars/Olympus`"),
            "{err}"
        );
    }

    fn any_tz() -> impl Strategy<Value = Tz> {
        (0..chrono_tz::TZ_VARIANTS.len()).prop_map(|i| chrono_tz::TZ_VARIANTS[i])
    }

    proptest! {
        #[test]
        fn never_panics_and_phase_agrees(
            secs in -8_200_000_000_000i64..8_200_000_000_000,
            near in any::<bool>(),
            offset_days in -400i64..400,
            far_days in -95_000_000i32..95_000_000,
            tz in any_tz(),
            week in 0u32..=MAX_WEEK_OF_DAYS,
            southern in any::<bool>(),
        ) {
            let at = DateTime::from_timestamp(secs, 0).unwrap_or(DateTime::<Utc>::MIN_UTC);
            // Half the cases put the wedding near the event (every phase), half anywhere.
            let date = if near {
                at.date_naive()
                    .checked_add_signed(chrono::TimeDelta::days(offset_days))
                    .unwrap_or(NaiveDate::MIN)
            } else {
                NaiveDate::from_num_days_from_ce_opt(far_days).unwrap_or(NaiveDate::MIN)
            };
            let r = WeddingRecord::new("w", date, tz);
            let hemisphere = if southern { Hemisphere::Southern } else { Hemisphere::Northern };
            let c = context_with(&r, at, ContextOptions { week_of_days: week, hemisphere });
            let expected = if c.days_until < 0 {
                WeddingPhase::PostWedding
            } else if c.days_until == 0 {
                WeddingPhase::DayOf
            } else if c.days_until <= i64::from(week) {
                WeddingPhase::WeekOf
            } else {
                WeddingPhase::Planning
            };
            prop_assert_eq!(c.phase, expected);
            // The local date is within a day of the UTC date.
            let utc_days = date.signed_duration_since(at.date_naive()).num_days();
            prop_assert!((c.days_until - utc_days).abs() <= 1);
        }

        #[test]
        fn extreme_instants_never_panic(tz in any_tz(), max in any::<bool>()) {
            let at = if max { DateTime::<Utc>::MAX_UTC } else { DateTime::<Utc>::MIN_UTC };
            for date in [NaiveDate::MIN, NaiveDate::MAX] {
                let _ = context_at(&WeddingRecord::new("w", date, tz), at);
            }
        }
    }
}
