//! Generic SOAR webhook ticket connector for vowguard (`type = "soar_webhook"` under
//! `[tickets.<id>]`): Shuffle, Tines and StackStorm webhooks, Cortex XSOAR incident
//! creation, and any other webhook.
//!
//! * [`config`]: the `[tickets.<id>]` table ([`SoarConfig`], [`Flavor`]).
//! * [`encode`]: pure functions: the incident JSON, StackStorm's `{"trigger","payload"}`,
//!   the XSOAR incident / entry / close bodies, idempotency keys, the XSOAR advanced-key
//!   signature.
//! * [`TicketIndex`]: the connector's fingerprint → case map in
//!   `<data_dir>/state/ticket-<id>.json`, and one open at a time per fingerprint.
//! * [`system`]: [`SoarTickets`], the [`vowguard_core::TicketSystem`].
//!
//! Idempotency: webhooks have no dedup key of their own, so the connector remembers every
//! case it opened (durably, before `open` returns) and answers a repeated open from that
//! map. A retry whose first answer was lost reaches the target again, though, and Shuffle,
//! Tines and XSOAR ignore `Idempotency-Key`: so the dedup key is explicit. Every request
//! carries it as `Idempotency-Key` and `X-Vowguard-Dedup-Key` (the fingerprint for an
//! open, made header-safe by [`encode::idempotency_key`]) and, for webhooks, as the body's
//! `dedup_key` (in StackStorm's `payload`); XSOAR incidents carry it as the
//! `vowguard_dedup_key` label. A workflow deduplicates on it (Tines: a deduplicate action
//! on `dedup_key`; Shuffle: a cache lookup of `dedup_key` before creating the case; XSOAR:
//! a pre-process rule on the label); the same case opened twice has the same key.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use vowguard_core::{BuildContext, Error, TicketSystem};

pub mod config;
pub mod encode;
pub mod system;

pub use config::{Flavor, SoarConfig, XsoarKeyType};
pub use system::{SoarSecrets, SoarTickets};
pub use vowguard_core::TicketIndex;

/// The connector kind, as written in `type = "..."`.
pub const KIND: &str = "soar_webhook";

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn TicketSystem>, Error> {
    let config: SoarConfig = ctx.parse(table)?;
    config.validate(&format!("tickets.{}", ctx.id))?;
    let url = config
        .url_secret
        .as_ref()
        .map(|s| ctx.secret("url_secret", s))
        .transpose()?;
    let api_key = config
        .api_key
        .as_ref()
        .map(|s| ctx.secret("api_key", s))
        .transpose()?;
    let mut headers = BTreeMap::new();
    for (name, secret) in &config.headers {
        headers.insert(
            name.clone(),
            ctx.secret(&format!("headers.{name}"), secret)?,
        );
    }
    let secrets = SoarSecrets {
        url,
        headers,
        api_key,
    };
    let index = TicketIndex::load(ctx.id, ctx.data_dir)?;
    Ok(Arc::new(SoarTickets::new(ctx.id, &config, secrets, index)?))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::ticketing(
        KIND,
        "SOAR webhook (Shuffle, Tines, StackStorm, XSOAR, generic): one case per incident",
        build
    )
}
