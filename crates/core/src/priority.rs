//! Alert priorities, P0 (most urgent) to P4.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::event::Severity;

/// How urgent an alert is. Orders with the most urgent first: `P0Critical < P4Info`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Priority {
    /// Page now: a live wedding, guest data or payments at stake.
    P0Critical,
    /// Urgent, within the hour.
    P1High,
    /// Today.
    P2Medium,
    /// This week.
    P3Low,
    /// For the record.
    P4Info,
}

impl Priority {
    /// Every priority, most urgent first.
    pub const ALL: [Priority; 5] = [
        Priority::P0Critical,
        Priority::P1High,
        Priority::P2Medium,
        Priority::P3Low,
        Priority::P4Info,
    ];

    /// The canonical name, e.g. `P0_CRITICAL`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::P0Critical => "P0_CRITICAL",
            Self::P1High => "P1_HIGH",
            Self::P2Medium => "P2_MEDIUM",
            Self::P3Low => "P3_LOW",
            Self::P4Info => "P4_INFO",
        }
    }

    /// The short name, e.g. `P0`.
    pub fn short(self) -> &'static str {
        &self.as_str()[..2]
    }

    /// 0 for P0 .. 4 for P4.
    pub fn level(self) -> u8 {
        self as u8
    }

    /// The priority at `level` (clamped to 0..=4).
    pub fn from_level(level: u8) -> Self {
        Self::ALL[usize::from(level.min(4))]
    }

    /// The default mapping from event severity: critical→P0 … info→P4.
    pub fn from_severity(severity: Severity) -> Self {
        match severity {
            Severity::Critical => Self::P0Critical,
            Severity::High => Self::P1High,
            Severity::Medium => Self::P2Medium,
            Severity::Low => Self::P3Low,
            Severity::Info => Self::P4Info,
        }
    }

    /// This priority raised by `levels` (towards P0), saturating at P0.
    pub fn raised(self, levels: u8) -> Self {
        Self::from_level(self.level().saturating_sub(levels))
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Priority {
    type Err = String;

    /// Accepts `P0_CRITICAL` or `P0` (any case).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let upper = s.to_ascii_uppercase();
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == upper || p.short() == upper)
            .ok_or_else(|| {
                format!("unknown priority {s:?}: expected P0_CRITICAL, P1_HIGH, P2_MEDIUM, P3_LOW, P4_INFO (or P0..P4)")
            })
    }
}

impl Serialize for Priority {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Priority {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_and_order() {
        assert_eq!("p1".parse::<Priority>().unwrap(), Priority::P1High);
        assert_eq!(
            "P0_CRITICAL".parse::<Priority>().unwrap(),
            Priority::P0Critical
        );
        assert!("P5".parse::<Priority>().is_err());
        assert!(Priority::P0Critical < Priority::P4Info);
        assert_eq!(Priority::P2Medium.raised(1), Priority::P1High);
        assert_eq!(Priority::P0Critical.raised(3), Priority::P0Critical);
        assert_eq!(Priority::from_severity(Severity::Info), Priority::P4Info);
        assert_eq!(
            serde_json::to_string(&Priority::P3Low).unwrap(),
            "\"P3_LOW\""
        );
    }
}
