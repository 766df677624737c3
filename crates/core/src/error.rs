//! The one error type of vowguard.
//!
//! Connectors map vendor responses onto an [`ErrorKind`]: rate limits and server errors are
//! retryable (with the server's `Retry-After` kept in [`Error::retry_after`]), client
//! errors are permanent. Messages never contain secrets: connectors build them from the
//! component id, the endpoint without credentials and the vendor's reason.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

/// Result alias with the vowguard [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, coarse enough to decide what to do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The configuration is wrong; fix it and restart.
    Config,
    /// The remote side could not be reached or answered with a server error (5xx). Retryable.
    Unavailable,
    /// The remote side asked us to slow down (HTTP 429 or a vendor code). Retryable.
    RateLimited,
    /// The call did not finish within its deadline. Retryable.
    Timeout,
    /// The remote side refused the data for good (4xx, invalid format). Not retryable.
    Rejected,
    /// Credentials were refused (401/403). Not retryable.
    Unauthorized,
    /// The event could not be encoded for this destination. Not retryable.
    Encode,
    /// Input (an event, a request body) is malformed. Not retryable.
    InvalidInput,
    /// Local I/O failed (data directory, dead-letter file).
    Io,
    /// A bug or an unexpected state inside vowguard.
    Internal,
}

impl ErrorKind {
    /// A short snake_case name, used in logs, metrics and dead-letter records.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Config => "config",
            Self::Unavailable => "unavailable",
            Self::RateLimited => "rate_limited",
            Self::Timeout => "timeout",
            Self::Rejected => "rejected",
            Self::Unauthorized => "unauthorized",
            Self::Encode => "encode",
            Self::InvalidInput => "invalid_input",
            Self::Io => "io",
            Self::Internal => "internal",
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error type shared by every vowguard crate and connector. Cheap to clone (the cause is
/// shared), so one failure can be reported for every event of a batch.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    component: Option<String>,
    status: Option<u16>,
    retry_after: Option<Duration>,
    source: Option<Arc<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a human message (which must not contain secrets).
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            message: message.into(),
            component: None,
            status: None,
            retry_after: None,
            source: None,
        }
    }

    /// A configuration error; `message` names the key and what to fix.
    pub fn config(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Config, message)
    }

    /// A retryable "remote unavailable" error.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// A permanent rejection by the remote side.
    pub fn rejected(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Rejected, message)
    }

    /// An encoding failure for one event.
    pub fn encode(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Encode, message)
    }

    /// Malformed input.
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }

    /// A local I/O failure.
    pub fn io(message: impl Into<String>, source: std::io::Error) -> Self {
        Self::new(ErrorKind::Io, message).with_source(source)
    }

    /// An internal error (a bug).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Internal, message)
    }

    /// Names the component (the id the user chose in the config) the error belongs to.
    pub fn with_component(mut self, id: impl Into<String>) -> Self {
        self.component = Some(id.into());
        self
    }

    /// Records the HTTP status (or vendor status) that caused the error.
    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self
    }

    /// Records how long the remote side asked us to wait before retrying.
    pub fn with_retry_after(mut self, after: Duration) -> Self {
        self.retry_after = Some(after);
        self
    }

    /// Attaches the underlying cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Arc::new(source));
        self
    }

    /// The same error with its message and component passed through `clean` (the
    /// [`Redactor`](crate::Redactor) uses it). A cause whose text `clean` changes is
    /// folded, cleaned, into the message and dropped, so no secret survives in the chain.
    pub(crate) fn map_text(mut self, clean: impl Fn(&str) -> std::borrow::Cow<'_, str>) -> Self {
        if let Some(source) = &self.source {
            let text = source.to_string();
            if let std::borrow::Cow::Owned(cleaned) = clean(&text) {
                self.message = format!("{}: {cleaned}", self.message);
                self.source = None;
            }
        }
        if let std::borrow::Cow::Owned(message) = clean(&self.message) {
            self.message = message;
        }
        if let Some(std::borrow::Cow::Owned(cleaned)) = self.component.as_deref().map(&clean) {
            self.component = Some(cleaned);
        }
        self
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The human message, without the component prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// The component id, when known.
    pub fn component(&self) -> Option<&str> {
        self.component.as_deref()
    }

    /// The HTTP or vendor status that caused the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        self.status
    }

    /// Whether trying the same operation again later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self.kind,
            ErrorKind::Unavailable | ErrorKind::RateLimited | ErrorKind::Timeout
        )
    }

    /// How long the remote side asked us to wait (from `Retry-After` or a vendor field).
    pub fn retry_after(&self) -> Option<Duration> {
        self.retry_after
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(component) = &self.component {
            write!(f, "{component}: ")?;
        }
        write!(f, "{}", self.message)?;
        if let Some(status) = self.status {
            write!(f, " (status {status})")?;
        }
        if let Some(source) = &self.source {
            write!(f, ": {source}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|s| s as &(dyn std::error::Error + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retryable_kinds() {
        assert!(Error::unavailable("x").is_retryable());
        assert!(Error::new(ErrorKind::RateLimited, "x").is_retryable());
        assert!(Error::new(ErrorKind::Timeout, "x").is_retryable());
        assert!(!Error::rejected("x").is_retryable());
        assert!(!Error::new(ErrorKind::Unauthorized, "x").is_retryable());
        assert!(!Error::config("x").is_retryable());
    }

    #[test]
    fn display_names_component_and_status() {
        let e = Error::rejected("incorrect index")
            .with_component("splunk")
            .with_status(400)
            .with_retry_after(Duration::from_secs(3));
        assert_eq!(e.to_string(), "splunk: incorrect index (status 400)");
        assert_eq!(e.retry_after(), Some(Duration::from_secs(3)));
    }
}
