//! Core types of vowguard, the security integration layer of a wedding platform.
//!
//! Everything else plugs into what this crate defines:
//!
//! * [`Event`] is the canonical security event (the ingest contract), with typed
//!   [`Enrichment`]s that enrichers fill in (threat intelligence, wedding context, geo,
//!   attack-pattern matches).
//! * [`Sink`], [`Enricher`] and [`Notifier`] are the three connector roles. A sink
//!   encodes each event once ([`Sink::encode`]) and reports an [`EventOutcome`] per event
//!   for every batch it sends; a notifier delivers one [`Alert`].
//! * [`Error`] is the one error type every connector maps vendor responses onto; its
//!   [`Error::is_retryable`] and [`Error::retry_after`] drive the shared [`RetryPolicy`].
//! * The [`registry`] lets every connector crate register a factory with
//!   `inventory::submit!`; the runtime builds components from configuration by `type`,
//!   handing each factory its [`ComponentConfig`] (typed values, no TOML type).
#![forbid(unsafe_code)]

pub mod alert;
pub mod audit;
mod component_config;
pub mod duration;
pub mod enrichment;
pub mod error;
pub mod event;
pub mod group_summary;
pub mod hex;
pub mod ingest;
pub mod jsonl_log;
mod params;
pub mod priority;
pub mod rate;
pub mod redact;
pub mod registry;
pub mod retry;
pub mod secret;
pub mod snapshot;
pub mod ticket;
pub mod ticket_index;
pub mod traits;
pub mod vuln;

pub use alert::{Alert, AlertAction, WeddingImpact};
pub use audit::{AuditRecord, AuditTrail, CheckpointRef, DeliveryOutcome, EventDigest, NoAudit};
pub use component_config::ComponentConfig;
pub use enrichment::{
    Enrichment, Geo, NotEnriched, PatternMatch, ProviderVerdict, Season, ThreatIntel, Verdict,
    VulnerabilityMatch, WeddingContext, WeddingPhase,
};
pub use error::{Error, ErrorKind, Result};
pub use event::{Category, Event, EventError, Outcome, Severity};
pub use group_summary::GroupSummary;
pub use jsonl_log::{JsonlLog, JsonlUsage, Rotation};
pub use params::{ParamValue, Params};
pub use priority::Priority;
pub use rate::TokenBucket;
pub use redact::Redactor;
pub use registry::{BuildContext, Builder, ConnectorFactory, Role, qualify_error};
pub use retry::RetryPolicy;
pub use secret::{ProcessEnv, SecretLookup, SecretMap, SecretRef, toml_error_parts};
pub use snapshot::SnapshotFile;
pub use ticket::{TicketDraft, TicketRef, TicketSystem, TicketUpdate};
pub use ticket_index::{TicketIndex, TicketIndexEntry};
pub use traits::{
    AlertGrouping, AlertRouting, BatchLimits, EncodedEvent, Enricher, EventOutcome, Notifier,
    RateLimit, Receipt, RoutedAlert, RoutingDryRun, Sink,
};
pub use vuln::{Asset, Finding, FindingPages, FindingState, Scanner, SyncSummary};

/// Re-exported so connector crates register factories without naming `inventory` themselves.
pub use inventory;
/// Re-exported so connectors and hosts share one `SecretString`.
pub use secrecy;
