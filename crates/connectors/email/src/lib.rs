//! Email notifier for vowguard (`type = "email"`): delivers each alert as a
//! multipart/alternative email (text + HTML) over SMTP.
//!
//! * [`config`]: [`EmailConfig`], the `[notifiers.<id>]` table (host, port, `tls` mode,
//!   optional `ca_file`, AUTH credentials, sender and recipients).
//! * [`encode`]: pure message building: sanitised subject (no header injection), escaped
//!   HTML, priority headers, a stable `Message-ID`.
//! * [`notifier`]: [`EmailNotifier`], one pooled lettre transport per notifier, and
//!   [`classify`], the one place SMTP failures become vowguard errors.
//!
//! Security: `starttls` (the default) requires the upgrade and refuses a server that does
//! not offer it; `tls` is implicit TLS; `none` (plain) is only used when written
//! explicitly. Certificates are always verified (platform roots plus `ca_file`). TLS is
//! rustls with the aws-lc-rs provider, the same rustls the HTTP connectors use.

pub mod config;
pub mod encode;
pub mod notifier;
mod smtp;

use std::sync::Arc;

use vowguard_core::{BuildContext, Error, Notifier};

pub use config::{EmailConfig, TlsMode};
pub use encode::{BuiltMessage, EmailPriority, RenderedEmail, build_message, render};
pub use notifier::{EmailNotifier, KIND, classify};

fn build(ctx: &BuildContext<'_>, table: toml::Table) -> Result<Arc<dyn Notifier>, Error> {
    let config: EmailConfig = ctx.parse(table)?;
    let password = config
        .password
        .as_ref()
        .map(|secret| ctx.secret("password", secret))
        .transpose()?;
    let notifier = EmailNotifier::with_component(ctx.id, config, password, ctx.config_dir)?;
    Ok(Arc::new(notifier))
}

vowguard_core::inventory::submit! {
    vowguard_core::ConnectorFactory::notifier(
        "email",
        "Email over SMTP (STARTTLS / implicit TLS / local relay), text + HTML alerts",
        build
    )
}
