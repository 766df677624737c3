//! The rustls client configuration: aws-lc-rs provider (the one reqwest already compiles),
//! system roots plus an optional CA file, optional client certificate for mutual TLS.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use vowguard_core::{Error, ErrorKind};

use crate::config::TlsConfig;

/// Builds the client config. Verification is always on; there is no switch to turn it off.
pub(crate) fn client_config(tls: &TlsConfig) -> Result<Arc<ClientConfig>, Error> {
    let mut roots = RootCertStore::empty();
    let native = rustls_native_certs::load_native_certs();
    let (added, _ignored) = roots.add_parsable_certificates(native.certs);
    if added == 0 {
        tracing::debug!(errors = ?native.errors, "syslog: no system root certificates found");
    }
    if let Some(ca_file) = &tls.ca_file {
        let certs = load_certs(ca_file, "tls.ca_file")?;
        for cert in certs {
            roots.add(cert).map_err(|e| {
                Error::config(format!(
                    "syslog: tls.ca_file {}: not a usable CA certificate",
                    ca_file.display()
                ))
                .with_source(e)
            })?;
        }
    }
    if roots.is_empty() {
        return Err(Error::config(
            "syslog: no trusted root certificates: the system has none (install ca-certificates) and tls.ca_file is not set",
        ));
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| Error::internal("syslog: TLS protocol versions").with_source(e))?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert_file, &tls.client_key_file) {
        (Some(cert_file), Some(key_file)) => {
            let chain = load_certs(cert_file, "tls.client_cert_file")?;
            let key = PrivateKeyDer::from_pem_file(key_file).map_err(|e| {
                Error::config(format!(
                    "syslog: tls.client_key_file {}: no readable PEM private key",
                    key_file.display()
                ))
                .with_source(e)
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                Error::config("syslog: tls.client_cert_file and tls.client_key_file do not form a usable client certificate")
                    .with_source(e)
            })?
        }
        (None, None) => builder.with_no_client_auth(),
        _ => {
            return Err(Error::config(
                "syslog: tls.client_cert_file and tls.client_key_file must be set together",
            ));
        }
    };
    Ok(Arc::new(config))
}

fn load_certs(path: &Path, key: &str) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|iter| iter.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            Error::config(format!(
                "syslog: {key} {}: cannot read PEM certificates",
                path.display()
            ))
            .with_source(e)
        })?;
    if certs.is_empty() {
        return Err(Error::config(format!(
            "syslog: {key} {}: contains no PEM certificate",
            path.display()
        )));
    }
    Ok(certs)
}

/// The name sent as SNI and verified against the certificate (a DNS name or an IP address).
pub(crate) fn server_name(name: &str) -> Result<ServerName<'static>, Error> {
    ServerName::try_from(name.to_owned()).map_err(|e| {
        Error::config(format!(
            "syslog: {name:?} is not a valid TLS server name (set tls.server_name)"
        ))
        .with_source(e)
    })
}

/// Maps a failed TLS handshake: our rejection of the server's certificate is a configuration
/// or security problem (not retryable); the server refusing our client certificate is
/// `Unauthorized`; anything else (reset, protocol errors) is retryable.
pub(crate) fn handshake_error(address: &str, err: std::io::Error) -> Error {
    let tls_err = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .cloned();
    match tls_err {
        Some(rustls::Error::InvalidCertificate(reason)) => Error::new(
            ErrorKind::Config,
            format!(
                "syslog: TLS handshake with {address} failed: the receiver's certificate was not accepted ({reason:?}); set tls.ca_file to the CA that signed it and tls.server_name to the name it carries"
            ),
        ),
        Some(rustls::Error::AlertReceived(alert))
            if matches!(
                alert,
                rustls::AlertDescription::BadCertificate
                    | rustls::AlertDescription::CertificateRequired
                    | rustls::AlertDescription::UnknownCA
                    | rustls::AlertDescription::CertificateUnknown
                    | rustls::AlertDescription::AccessDenied
            ) =>
        {
            Error::new(
                ErrorKind::Unauthorized,
                format!(
                    "syslog: TLS handshake with {address} failed: the receiver refused our client certificate (alert {alert:?}); check tls.client_cert_file"
                ),
            )
        }
        Some(other) => Error::unavailable(format!(
            "syslog: TLS handshake with {address} failed: {other}"
        )),
        None => Error::unavailable(format!("syslog: TLS handshake with {address} failed"))
            .with_source(err),
    }
}
