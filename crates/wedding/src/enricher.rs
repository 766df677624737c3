//! [`WeddingContextEnricher`]: turns any [`WeddingContextProvider`] into an
//! [`Enricher`] (kind `wedding_context`).

use std::time::Duration;

use async_trait::async_trait;
use vowguard_core::{Enricher, Enrichment, Error, Event};

use crate::context::{ContextOptions, context_with};
use crate::provider::WeddingContextProvider;

/// The connector kind of the wedding-context enricher.
pub const WEDDING_CONTEXT_KIND: &str = "wedding_context";

/// Default time one enrichment may take.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(1_500);

/// Adds [`vowguard_core::WeddingContext`] to events that carry a `wedding_id`.
///
/// * no `wedding_id` (or an empty one): empty [`Enrichment`];
/// * the provider does not know the wedding: empty [`Enrichment`] (not an error);
/// * the provider fails: the error (the pipeline marks the event "not enriched by" this
///   enricher and delivers it anyway).
///
/// The context is computed for the event's own timestamp, so replays get the phase the
/// event had when it happened.
#[derive(Debug)]
pub struct WeddingContextEnricher<P> {
    provider: P,
    options: ContextOptions,
    timeout: Duration,
}

impl<P: WeddingContextProvider> WeddingContextEnricher<P> {
    /// An enricher asking `provider`, deriving phases and seasons with `options`.
    pub fn new(provider: P, options: ContextOptions) -> Self {
        Self {
            provider,
            options,
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets how long one enrichment may take ([`Enricher::timeout`]).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The provider asked.
    pub fn provider(&self) -> &P {
        &self.provider
    }

    /// The options in use.
    pub fn options(&self) -> ContextOptions {
        self.options
    }
}

#[async_trait]
impl<P: WeddingContextProvider> Enricher for WeddingContextEnricher<P> {
    fn kind(&self) -> &'static str {
        WEDDING_CONTEXT_KIND
    }

    fn timeout(&self) -> Duration {
        self.timeout
    }

    async fn enrich(&self, event: &Event) -> Result<Enrichment, Error> {
        let Some(wedding_id) = event.wedding_id.as_deref().filter(|id| !id.is_empty()) else {
            return Ok(Enrichment::default());
        };
        let Some(record) = self.provider.wedding(wedding_id).await? else {
            return Ok(Enrichment::default());
        };
        Ok(Enrichment {
            wedding: Some(context_with(&record, event.timestamp, self.options)),
            ..Enrichment::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{WeddingRecord, parse_timezone};
    use crate::provider::StaticProvider;
    use chrono::{DateTime, NaiveDate, Utc};
    use vowguard_core::{Category, ErrorKind, Severity, WeddingPhase};

    #[derive(Debug)]
    struct Failing;

    #[async_trait]
    impl WeddingContextProvider for Failing {
        async fn wedding(&self, _: &str) -> Result<Option<WeddingRecord>, Error> {
            Err(Error::unavailable("platform API down"))
        }
    }

    fn event(wedding_id: Option<&str>, at: &str) -> Event {
        let mut e = Event::new(Category::DataExport, "guest_list.export", Severity::High);
        e.wedding_id = wedding_id.map(str::to_owned);
        e.timestamp = DateTime::parse_from_rfc3339(at)
            .unwrap()
            .with_timezone(&Utc);
        e
    }

    fn enricher() -> WeddingContextEnricher<StaticProvider> {
        let mut r = WeddingRecord::new(
            "w-1",
            NaiveDate::from_ymd_opt(2026, 6, 20).unwrap(),
            parse_timezone("Europe/London").unwrap(),
        );
        r.guest_count = Some(150);
        r.vendor_count = Some(12);
        WeddingContextEnricher::new(StaticProvider::new([r]), ContextOptions::default())
    }

    #[tokio::test]
    async fn enriches_events_with_a_known_wedding() {
        let e = enricher();
        assert_eq!(e.kind(), "wedding_context");
        // 23:30 UTC on the 19th is 00:30 BST on the 20th: the wedding day.
        let out = e
            .enrich(&event(Some("w-1"), "2026-06-19T23:30:00Z"))
            .await
            .unwrap();
        let w = out.wedding.unwrap();
        assert_eq!(w.phase, WeddingPhase::DayOf);
        assert_eq!(w.days_until, 0);
        assert_eq!(w.guest_count, Some(150));
        assert_eq!(w.vendor_count, Some(12));
        assert_eq!(w.timezone, "Europe/London");
        assert!(w.weekend);
    }

    #[tokio::test]
    async fn no_or_unknown_wedding_is_empty_not_an_error() {
        let e = enricher();
        for id in [None, Some(""), Some("w-unknown")] {
            let out = e.enrich(&event(id, "2026-06-19T23:30:00Z")).await.unwrap();
            assert!(out.is_empty(), "{id:?}");
        }
    }

    #[tokio::test]
    async fn provider_errors_are_errors() {
        let e = WeddingContextEnricher::new(Failing, ContextOptions::default())
            .with_timeout(Duration::from_millis(250));
        assert_eq!(e.timeout(), Duration::from_millis(250));
        let err = e
            .enrich(&event(Some("w-1"), "2026-06-19T23:30:00Z"))
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Unavailable);
        // No wedding id: the provider is not even asked.
        assert!(
            e.enrich(&event(None, "2026-06-19T23:30:00Z"))
                .await
                .unwrap()
                .is_empty()
        );
    }
}
