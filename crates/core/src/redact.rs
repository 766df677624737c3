//! [`Redactor`]: the one place vendor text is cleaned of secrets (and, where asked, phone
//! numbers) before vowguard stores, sends or logs it.
//!
//! Vendors echo what they were sent: an API key in a 401 message, a webhook URL in a 404,
//! the recipient's number in an SMS error. Every connector builds a `Redactor` from the
//! secrets it was configured with and passes every [`Error`] and [`EventOutcome`] it returns
//! through it, so what reaches dead letters, `not_enriched` reasons, the notification log
//! and the logs never carries a secret.
//!
//! ```
//! use vowguard_core::{Error, Redactor};
//! use vowguard_core::secrecy::SecretString;
//! let redactor = Redactor::new().secret(&SecretString::from("k-123456"));
//! let error = redactor.error(Error::rejected("401: key k-123456 is invalid"));
//! assert_eq!(error.to_string(), "401: key [redacted] is invalid");
//! ```

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use secrecy::{ExposeSecret, SecretString};

use crate::error::Error;
use crate::traits::EventOutcome;

/// What a secret is replaced with.
pub const REDACTED: &str = "[redacted]";

/// Shortest URL path segment or query value treated as a secret (shorter parts, such as
/// `services` or `v2`, are routing, not credentials).
const MIN_URL_SECRET_LEN: usize = 10;

/// Fewest digits in a run that [`Redactor::phone_numbers`] masks.
const MIN_PHONE_DIGITS: usize = 7;

/// Removes a connector's secrets (and optionally phone numbers) from vendor text.
///
/// Cheap to clone (the secrets are shared). `Debug` shows how many secrets it holds, never
/// them.
#[derive(Clone, Default)]
pub struct Redactor {
    /// Longest first, so a secret containing another is replaced whole.
    secrets: Arc<Vec<SecretString>>,
    phone_numbers: bool,
}

impl fmt::Debug for Redactor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redactor")
            .field("secrets", &self.secrets.len())
            .field("phone_numbers", &self.phone_numbers)
            .finish()
    }
}

impl Redactor {
    /// A redactor that removes nothing yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Also removes `secret` (as given and trimmed). Empty secrets are ignored.
    #[must_use]
    pub fn secret(self, secret: &SecretString) -> Self {
        self.text(secret.expose_secret())
    }

    /// Also removes `value`, a secret held as plain text (an account id in a URL path).
    #[must_use]
    pub fn text(mut self, value: &str) -> Self {
        let mut secrets: Vec<SecretString> = self.secrets.as_ref().clone();
        for candidate in [value, value.trim()] {
            if !candidate.is_empty() && !secrets.iter().any(|s| s.expose_secret() == candidate) {
                secrets.push(SecretString::from(candidate.to_owned()));
            }
        }
        secrets.sort_by_key(|s| std::cmp::Reverse(s.expose_secret().len()));
        self.secrets = Arc::new(secrets);
        self
    }

    /// Also removes the secret parts of a URL (a Slack or Teams webhook, an endpoint with
    /// credentials): the user name and password, the path and query as a whole, every
    /// path segment and query value of at least 10 characters.
    #[must_use]
    pub fn url(mut self, url: &str) -> Self {
        let url = url.trim();
        let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
        let (authority, rest) = match after_scheme.find(['/', '?', '#']) {
            Some(i) => after_scheme.split_at(i),
            None => (after_scheme, ""),
        };
        if let Some((userinfo, _)) = authority.rsplit_once('@') {
            for part in userinfo.split(':') {
                self = self.text(part);
            }
        }
        let rest = rest.trim_start_matches('/');
        if rest.len() >= MIN_URL_SECRET_LEN {
            self = self.text(rest);
        }
        for part in rest.split(['/', '?', '&', '#', '=']) {
            if part.len() >= MIN_URL_SECRET_LEN {
                self = self.text(part);
            }
        }
        self
    }

    /// Also masks phone numbers (an optional `+` and at least 7 digits, single spaces,
    /// `-`, `.` or parentheses between them): all but the first three and last two digits
    /// become `*` (for fewer than 10 digits, all but the last two).
    #[must_use]
    pub fn phone_numbers(mut self) -> Self {
        self.phone_numbers = true;
        self
    }

    /// `text` without the secrets (each replaced by `[redacted]`) and, when asked, with
    /// phone numbers masked.
    pub fn redact<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for secret in self.secrets.iter() {
            let secret = secret.expose_secret();
            if out.contains(secret) {
                out = Cow::Owned(out.replace(secret, REDACTED));
            }
        }
        if self.phone_numbers
            && let Cow::Owned(masked) = mask_phone_numbers(&out)
        {
            out = Cow::Owned(masked);
        }
        out
    }

    /// `error` with its message, component and cause redacted (a cause whose text carries a
    /// secret is folded, redacted, into the message).
    pub fn error(&self, error: Error) -> Error {
        error.map_text(|text| self.redact(text))
    }

    /// `result` with its error redacted.
    pub fn result<T>(&self, result: Result<T, Error>) -> Result<T, Error> {
        result.map_err(|e| self.error(e))
    }

    /// `outcome` with its error redacted.
    pub fn outcome(&self, outcome: EventOutcome) -> EventOutcome {
        match outcome {
            EventOutcome::Delivered => EventOutcome::Delivered,
            EventOutcome::Retry(e) => EventOutcome::Retry(self.error(e)),
            EventOutcome::Rejected(e) => EventOutcome::Rejected(self.error(e)),
        }
    }

    /// Every outcome of a batch, redacted.
    pub fn outcomes(&self, outcomes: Vec<EventOutcome>) -> Vec<EventOutcome> {
        outcomes.into_iter().map(|o| self.outcome(o)).collect()
    }
}

/// Masks every phone-number-looking run in `text` (see [`Redactor::phone_numbers`]).
pub fn mask_phone_numbers(text: &str) -> Cow<'_, str> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = String::with_capacity(text.len());
    let mut changed = false;
    let mut i = 0;
    while i < chars.len() {
        let starts = chars[i].is_ascii_digit()
            || (matches!(chars[i], '+' | '(')
                && chars.get(i + 1).is_some_and(char::is_ascii_digit));
        if !starts {
            out.push(chars[i]);
            i += 1;
            continue;
        }
        // The run: digits, with single separators between digits.
        let mut end = i;
        let mut digits = 0usize;
        let mut j = i;
        while j < chars.len() {
            let c = chars[j];
            if c.is_ascii_digit() {
                digits += 1;
                j += 1;
                end = j;
            } else if (j == i && matches!(c, '+' | '('))
                || (matches!(c, ' ' | '-' | '.' | '(' | ')')
                    && chars
                        .get(j + 1)
                        .is_some_and(|n| n.is_ascii_digit() || *n == '('))
            {
                j += 1;
            } else if c == ')' && j > i {
                j += 1;
                end = j;
            } else {
                break;
            }
        }
        if digits < MIN_PHONE_DIGITS {
            out.extend(&chars[i..end.max(i + 1)]);
            i = end.max(i + 1);
            continue;
        }
        let keep_head = if digits >= 10 { 3 } else { 0 };
        let mut seen = 0usize;
        for &c in &chars[i..end] {
            if c.is_ascii_digit() {
                seen += 1;
                if seen <= keep_head || seen > digits - 2 {
                    out.push(c);
                } else {
                    out.push('*');
                }
            } else {
                out.push(c);
            }
        }
        changed = true;
        i = end;
    }
    if changed {
        Cow::Owned(out)
    } else {
        Cow::Borrowed(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorKind;

    #[test]
    fn removes_secrets_longest_first() {
        let r = Redactor::new()
            .secret(&SecretString::from("abc123"))
            .secret(&SecretString::from(" abc123xyz\n"));
        assert_eq!(
            r.redact("k=abc123xyz, j=abc123"),
            "k=[redacted], j=[redacted]"
        );
        assert!(matches!(r.redact("nothing here"), Cow::Borrowed(_)));
        assert!(!format!("{r:?}").contains("abc123"));
        let empty = Redactor::new().secret(&SecretString::from(""));
        assert_eq!(empty.redact("abc"), "abc");
    }

    #[test]
    fn url_parts() {
        let r = Redactor::new()
            .url("https://user:p4ssw0rd@hooks.example.com/services/T0/B0/XXXXsecretXXXX?sig=0123456789abcdef&v=1");
        let text =
            "posted to /services/T0/B0/XXXXsecretXXXX with sig=0123456789abcdef by user:p4ssw0rd";
        let out = r.redact(text);
        for secret in ["XXXXsecretXXXX", "0123456789abcdef", "p4ssw0rd"] {
            assert!(!out.contains(secret), "{out}");
        }
        // Short routing segments are kept.
        assert!(out.contains("posted to /services/T0/B0/"), "{out}");
    }

    #[test]
    fn errors_lose_secrets_in_message_component_and_cause() {
        let r = Redactor::new().secret(&SecretString::from("tok-99999"));
        let cause = std::io::Error::other("server said tok-99999");
        let e = Error::new(ErrorKind::Unauthorized, "HTTP 401: bad tok-99999")
            .with_component("c")
            .with_status(401)
            .with_source(cause);
        let e = r.error(e);
        let text = e.to_string();
        assert!(!text.contains("tok-99999"), "{text}");
        assert!(text.contains("server said [redacted]"), "{text}");
        assert_eq!(e.kind(), ErrorKind::Unauthorized);
        assert_eq!(e.status(), Some(401));
        let o = r.outcome(EventOutcome::Rejected(Error::rejected("x tok-99999")));
        assert!(matches!(o, EventOutcome::Rejected(e) if e.message() == "x [redacted]"));
    }

    #[test]
    fn masks_phone_numbers() {
        let r = Redactor::new().phone_numbers();
        assert_eq!(
            r.redact("The 'To' number +15005550001 is not a valid phone number."),
            "The 'To' number +150******01 is not a valid phone number."
        );
        assert_eq!(
            r.redact("call +44 7700 900123 now"),
            "call +44 7*** ****23 now"
        );
        assert_eq!(r.redact("(415) 555-0100"), "(415) ***-**00");
        assert_eq!(r.redact("5550100"), "*****00");
        // Short numbers (error codes, counts) stay.
        assert_eq!(
            r.redact("Twilio error 21211: 3 of 12"),
            "Twilio error 21211: 3 of 12"
        );
        assert!(matches!(r.redact("no digits"), Cow::Borrowed(_)));
    }
}
