//! Combining provider answers into one verdict and score.

use vowguard_core::{ProviderVerdict, Verdict};

/// The score band of each verdict, inclusive: Malicious 75..=100, Suspicious 25..=74,
/// Benign 0..=24, Unknown 0..=0.
pub fn band(verdict: Verdict) -> (u8, u8) {
    match verdict {
        Verdict::Malicious => (75, 100),
        Verdict::Suspicious => (25, 74),
        Verdict::Benign => (0, 24),
        Verdict::Unknown => (0, 0),
    }
}

/// The score used for a provider that gives only a verdict: Malicious 75, Suspicious 50,
/// Benign 10, Unknown 0.
pub fn default_score(verdict: Verdict) -> u8 {
    match verdict {
        Verdict::Malicious => 75,
        Verdict::Suspicious => 50,
        Verdict::Benign => 10,
        Verdict::Unknown => 0,
    }
}

/// One answer's normalised score: its own score clamped into its verdict's [`band`], or
/// [`default_score`] when it gives none. Unknown answers score 0.
pub fn normalised_score(answer: &ProviderVerdict) -> u8 {
    let (low, high) = band(answer.verdict);
    answer
        .score
        .map_or_else(|| default_score(answer.verdict), |s| s.clamp(low, high))
}

/// Combines provider answers into one verdict and a 0..=100 threat score.
///
/// * verdict = the worst verdict of any answer (Malicious > Suspicious > Benign > Unknown);
///   Unknown only when no answer knows the indicator (or there are no answers);
/// * score = the highest [`normalised_score`] of any answer: each provider's own 0..=100
///   score clamped into its verdict's band (Malicious 75..=100, Suspicious 25..=74,
///   Benign 0..=24), or 75 / 50 / 10 when it gives only a verdict; Unknown answers count 0.
///
/// Because bands do not overlap, the score always lies in the band of the combined verdict.
///
/// Example: MISP Malicious 95, AbuseIPDB Suspicious 40, OTX Benign (no score), VirusTotal
/// Unknown gives `(Malicious, 95)`; AbuseIPDB Benign 60 alone gives `(Benign, 24)`.
pub fn combine(answers: &[ProviderVerdict]) -> (Verdict, u8) {
    let verdict = answers
        .iter()
        .map(|a| a.verdict)
        .max()
        .unwrap_or(Verdict::Unknown);
    let score = answers.iter().map(normalised_score).max().unwrap_or(0);
    (verdict, score)
}

/// Rank of a Traffic Light Protocol tag (higher is more restrictive), case-insensitive:
/// `tlp:red` 5, `tlp:amber+strict` 4, `tlp:amber` 3, `tlp:green` 2, `tlp:clear` / `tlp:white`
/// 1; `None` for anything else.
pub fn tlp_rank(tag: &str) -> Option<u8> {
    match tag.trim().to_ascii_lowercase().as_str() {
        "tlp:red" => Some(5),
        "tlp:amber+strict" => Some(4),
        "tlp:amber" => Some(3),
        "tlp:green" => Some(2),
        "tlp:clear" | "tlp:white" => Some(1),
        _ => None,
    }
}

/// The more restrictive of two TLP markings (by [`tlp_rank`]; an unranked marking loses
/// to a ranked one, and the first wins a tie).
pub fn most_restrictive_tlp(a: Option<String>, b: Option<String>) -> Option<String> {
    match (a, b) {
        (Some(a), Some(b)) => {
            if tlp_rank(&b).unwrap_or(0) > tlp_rank(&a).unwrap_or(0) {
                Some(b)
            } else {
                Some(a)
            }
        }
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(verdict: Verdict, score: Option<u8>) -> ProviderVerdict {
        ProviderVerdict {
            provider: "p".into(),
            indicator: "203.0.113.7".into(),
            verdict,
            score,
        }
    }

    type Case = (&'static [(Verdict, Option<u8>)], (Verdict, u8));

    #[test]
    fn goldens() {
        use Verdict::*;
        let cases: &[Case] = &[
            (&[], (Unknown, 0)),
            (&[(Unknown, None)], (Unknown, 0)),
            (&[(Unknown, Some(80))], (Unknown, 0)),
            (&[(Benign, None)], (Benign, 10)),
            (&[(Benign, Some(60))], (Benign, 24)),
            (&[(Suspicious, None)], (Suspicious, 50)),
            (&[(Suspicious, Some(3))], (Suspicious, 25)),
            (&[(Malicious, None)], (Malicious, 75)),
            (&[(Malicious, Some(40))], (Malicious, 75)),
            (&[(Malicious, Some(100))], (Malicious, 100)),
            (&[(Benign, None), (Unknown, None)], (Benign, 10)),
            (
                &[
                    (Malicious, Some(95)),
                    (Suspicious, Some(40)),
                    (Benign, None),
                    (Unknown, None),
                ],
                (Malicious, 95),
            ),
            (
                &[(Suspicious, Some(70)), (Benign, Some(20))],
                (Suspicious, 70),
            ),
        ];
        for (answers, expected) in cases {
            let answers: Vec<_> = answers.iter().map(|(v, s)| answer(*v, *s)).collect();
            assert_eq!(combine(&answers), *expected, "{answers:?}");
        }
    }

    #[test]
    fn tlp_ordering() {
        let t = |s: &str| Some(s.to_owned());
        assert_eq!(
            most_restrictive_tlp(t("tlp:green"), t("tlp:amber")),
            t("tlp:amber")
        );
        assert_eq!(
            most_restrictive_tlp(t("tlp:red"), t("tlp:amber+strict")),
            t("tlp:red")
        );
        assert_eq!(
            most_restrictive_tlp(t("tlp:amber"), t("tlp:amber+strict")),
            t("tlp:amber+strict")
        );
        assert_eq!(
            most_restrictive_tlp(t("tlp:clear"), t("tlp:white")),
            t("tlp:clear")
        );
        assert_eq!(most_restrictive_tlp(None, t("tlp:green")), t("tlp:green"));
        assert_eq!(
            most_restrictive_tlp(t("odd"), t("tlp:clear")),
            t("tlp:clear")
        );
        assert_eq!(tlp_rank("TLP:RED"), Some(5));
        assert_eq!(tlp_rank("osint"), None);
    }

    #[test]
    fn score_always_in_verdict_band() {
        use Verdict::*;
        let verdicts = [Unknown, Benign, Suspicious, Malicious];
        for a in verdicts {
            for b in verdicts {
                for s in [
                    None,
                    Some(0),
                    Some(24),
                    Some(25),
                    Some(74),
                    Some(75),
                    Some(100),
                ] {
                    let (v, score) = combine(&[answer(a, s), answer(b, Some(50))]);
                    let (low, high) = band(v);
                    assert!((low..=high).contains(&score), "{a:?} {b:?} {s:?}");
                }
            }
        }
    }
}
