//! Email notifier for vowguard (`type = "email"`): delivers each alert as a
//! multipart/alternative email (text + HTML) over SMTP.
//!
//! * [`EmailNotifier::builder`] makes a notifier in code, taking the resolved password
//!   directly; [`EmailConfig`] (the `[notifiers.<id>]` table: host, port, `tls` mode,
//!   optional `ca_file`, AUTH credentials, sender and recipients) turns into the same
//!   builder with [`EmailConfig::into_builder`].
//! * [`encode`]: pure message building: sanitised subject (no header injection), escaped
//!   HTML, priority headers, a stable `Message-ID`.
//! * [`EmailNotifier`]: one pooled lettre transport per notifier; one function maps SMTP
//!   failures onto vowguard errors.
//!
//! Security: `starttls` (the default) requires the upgrade and refuses a server that does
//! not offer it; `tls` is implicit TLS; `none` (plain) is only used when written
//! explicitly. Certificates are always verified (platform roots plus `ca_file`). TLS is
//! rustls with the aws-lc-rs provider, the same rustls the HTTP connectors use.

mod builder;
mod config;
pub mod encode;
mod notifier;
mod smtp;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

pub use builder::EmailNotifierBuilder;
pub use config::{EmailConfig, TlsMode};
pub use encode::{BuiltMessage, EmailPriority, RenderedEmail, build_message, render};
pub use notifier::{EmailNotifier, KIND};

fn build(
    ctx: &BuildContext<'_>,
    table: vowguard_core::ComponentConfig,
) -> Result<Arc<dyn Notifier>, Error> {
    let config: EmailConfig = ctx.parse(table)?;
    let password = config
        .password
        .as_ref()
        .map(|secret| ctx.secret("password", secret))
        .transpose()?;
    // The builder's errors carry the component and name the full key (`notifiers.<id>.to[1]`).
    let notifier = config
        .into_builder(password)
        .config_dir(ctx.config_dir)
        .id(ctx.id)
        .build()?;
    Ok(Arc::new(notifier))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        "email",
        "Email over SMTP (STARTTLS / implicit TLS / local relay), text + HTML alerts",
        build
    )
}
