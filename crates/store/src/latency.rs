//! Latency histograms with log-linear buckets (8 per power of two, about 12.5 % wide), so
//! percentiles over millions of events come from a few hundred rows, and the objectives
//! the platform promises.

use serde::{Deserialize, Serialize};

/// A latency objective of the platform.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Objective {
    /// What it covers: `delivery`, `notification` or `enrichment`.
    pub kind: &'static str,
    /// The bound in milliseconds.
    pub within_ms: u64,
}

impl Objective {
    /// Events reach each SIEM within 5 seconds.
    pub const DELIVERY: Objective = Objective {
        kind: "delivery",
        within_ms: 5_000,
    };
    /// Alerts reach each channel within 30 seconds.
    pub const NOTIFICATION: Objective = Objective {
        kind: "notification",
        within_ms: 30_000,
    };
    /// Enrichment takes at most 10 seconds.
    pub const ENRICHMENT: Objective = Objective {
        kind: "enrichment",
        within_ms: 10_000,
    };
}

const LINEAR: u64 = 16;
const SUB_BITS: u32 = 3;

/// The bucket of a latency.
pub(crate) fn bucket_of(ms: u64) -> i64 {
    if ms < LINEAR {
        return ms as i64;
    }
    let exp = 63 - ms.leading_zeros(); // >= 4
    let sub = (ms >> (exp - SUB_BITS)) & ((1 << SUB_BITS) - 1);
    (LINEAR + u64::from(exp - 4) * (1 << SUB_BITS) + sub) as i64
}

/// The largest latency in bucket `bucket` (what a percentile reports: "at most").
pub(crate) fn bucket_upper(bucket: i64) -> u64 {
    let bucket = bucket.max(0) as u64;
    if bucket < LINEAR {
        return bucket;
    }
    let exp = (bucket - LINEAR) / (1 << SUB_BITS) + 4;
    let sub = (bucket - LINEAR) % (1 << SUB_BITS);
    if exp >= 63 {
        return u64::MAX;
    }
    let lower = (1u64 << exp) + (sub << (exp - u64::from(SUB_BITS)));
    lower + (1u64 << (exp - u64::from(SUB_BITS))) - 1
}

/// Percentiles (`q` in 0..=1) from `(bucket, count)` pairs sorted by bucket.
pub(crate) fn percentile(buckets: &[(i64, u64)], q: f64) -> Option<u64> {
    let total: u64 = buckets.iter().map(|(_, n)| n).sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0;
    for (bucket, n) in buckets {
        seen += n;
        if seen >= rank {
            return Some(bucket_upper(*bucket));
        }
    }
    buckets.last().map(|(b, _)| bucket_upper(*b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_latency_falls_in_a_bucket_whose_bounds_contain_it() {
        let mut x = 0x9e37_79b9_7f4a_7c15_u64; // seeded xorshift
        for ms in (0..5000).chain((0..20_000).map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % 10_000_000
        })) {
            let b = bucket_of(ms);
            assert!(bucket_upper(b) >= ms, "{ms} in bucket {b}");
            if b > 0 {
                assert!(bucket_upper(b - 1) < ms, "{ms} in bucket {b}");
            }
            // at most 12.5 % above the value
            assert!(bucket_upper(b) as f64 <= ms as f64 * 1.125 + 1.0, "{ms}");
        }
    }

    #[test]
    fn percentiles_come_from_cumulative_counts() {
        let b = |ms| bucket_of(ms);
        let buckets = vec![(b(1), 50), (b(100), 45), (b(6000), 5)];
        assert_eq!(percentile(&buckets, 0.5), Some(1));
        assert_eq!(percentile(&buckets, 0.95), Some(bucket_upper(b(100))));
        assert!(percentile(&buckets, 0.99).unwrap() >= 6000);
        assert_eq!(percentile(&[], 0.5), None);
    }
}
