//! Configuration of the `sms` notifier (Twilio).

use serde::{Deserialize, Serialize};
use vowguard_core::{Error, SecretRef};
use vowguard_http::HttpOptions;

use crate::encode::is_gsm7;

/// Twilio's API host.
pub const DEFAULT_API_BASE_URL: &str = "https://api.twilio.com";
/// Longest accepted `link_base`, in characters (it is part of every two-segment message).
pub const MAX_LINK_BASE_CHARS: usize = 100;

/// `[notifiers.<id>]` with `type = "sms"`.
///
/// ```toml
/// [notifiers.oncall-sms]
/// type = "sms"
/// account_sid = "AC0123456789abcdef0123456789abcdef"
/// auth_token = { env = "TWILIO_AUTH_TOKEN" }
/// from = "+15005550006"                 # or messaging_service_sid = "MG..."
/// to = ["+447700900123", "+15551234567"]
/// link_base = "https://sec.example.org/a/"
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct SmsConfig {
    /// The Twilio Account SID, `AC` and 32 hex digits (not a secret).
    pub account_sid: String,
    /// The account's auth token (or an API key secret). A secret.
    pub auth_token: SecretRef,
    /// The sending number, E.164. Exactly one of `from` and `messaging_service_sid`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// A Messaging Service SID, `MG` and 32 hex digits, instead of `from`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messaging_service_sid: Option<String>,
    /// Recipients, E.164 (`+` then 8 to 15 digits, the first not 0). Routes may replace
    /// them with the `recipients` parameter. Default: none (every route must then set it).
    #[serde(default)]
    pub to: Vec<String>,
    /// Base URL of the Twilio API; default `https://api.twilio.com` (tests use a mock).
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// When set, messages end with this URL followed by the alert id (instead of a short
    /// reference), e.g. `https://sec.example.org/a/`. At most 100 GSM-7 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub link_base: Option<String>,
    /// HTTP client timeouts.
    #[serde(default)]
    pub http: HttpOptions,
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

/// Who messages are sent from.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Sender {
    /// A phone number (`From`).
    Number(String),
    /// A Messaging Service (`MessagingServiceSid`).
    MessagingService(String),
}

impl SmsConfig {
    /// A configuration sending from `from` to `to`, with every other default.
    pub fn new(
        account_sid: impl Into<String>,
        auth_token: SecretRef,
        from: impl Into<String>,
        to: Vec<String>,
    ) -> Self {
        Self {
            account_sid: account_sid.into(),
            auth_token,
            from: Some(from.into()),
            messaging_service_sid: None,
            to,
            api_base_url: default_api_base_url(),
            link_base: None,
            http: HttpOptions::default(),
        }
    }

    /// The non-secret values, as the builder holds them.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            account_sid: self.account_sid.clone(),
            from: self.from.clone(),
            messaging_service_sid: self.messaging_service_sid.clone(),
            to: self.to.clone(),
            api_base_url: self.api_base_url.clone(),
            link_base: self.link_base.clone(),
        }
    }

    /// [`Settings::validate`] of this configuration.
    #[cfg(test)]
    pub(crate) fn validate(&self, prefix: &str) -> Result<Sender, Error> {
        self.settings().validate(prefix)
    }
}

/// Every non-secret value of an SMS notifier (what [`SmsConfig`] holds besides the token).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Settings {
    pub(crate) account_sid: String,
    pub(crate) from: Option<String>,
    pub(crate) messaging_service_sid: Option<String>,
    pub(crate) to: Vec<String>,
    pub(crate) api_base_url: String,
    pub(crate) link_base: Option<String>,
}

impl Settings {
    /// Defaults for the account `account_sid`: no sender, no recipients.
    pub(crate) fn new(account_sid: String) -> Self {
        Self {
            account_sid,
            from: None,
            messaging_service_sid: None,
            to: Vec::new(),
            api_base_url: default_api_base_url(),
            link_base: None,
        }
    }

    /// Checks every value serde cannot; `prefix` is the component's config path (e.g.
    /// `notifiers.oncall-sms`), and errors name the key at fault.
    pub(crate) fn validate(&self, prefix: &str) -> Result<Sender, Error> {
        let key = |field: &str| format!("{prefix}.{field}");
        check_sid(&key("account_sid"), &self.account_sid, "AC")?;
        let sender = match (&self.from, &self.messaging_service_sid) {
            (Some(from), None) => {
                check_e164(&key("from"), from)?;
                Sender::Number(from.clone())
            }
            (None, Some(sid)) => {
                check_sid(&key("messaging_service_sid"), sid, "MG")?;
                Sender::MessagingService(sid.clone())
            }
            (Some(_), Some(_)) => {
                return Err(Error::config(format!(
                    "`{}` and `{}`: set only one of them",
                    key("from"),
                    key("messaging_service_sid")
                )));
            }
            (None, None) => {
                return Err(Error::config(format!(
                    "`{prefix}`: set `from` (an E.164 number) or `messaging_service_sid` (MG...)"
                )));
            }
        };
        for (i, number) in self.to.iter().enumerate() {
            check_e164(&key(&format!("to[{i}]")), number)?;
        }
        vowguard_http::parse_url(&key("api_base_url"), &self.api_base_url)?;
        if let Some(link) = &self.link_base {
            vowguard_http::parse_url(&key("link_base"), link)?;
            if link.chars().count() > MAX_LINK_BASE_CHARS || !link.chars().all(is_gsm7) {
                return Err(Error::config(format!(
                    "`{}`: must be at most {MAX_LINK_BASE_CHARS} characters of the GSM-7 alphabet \
                     (it is part of every SMS)",
                    key("link_base")
                )));
            }
        }
        Ok(sender)
    }
}

/// Checks an E.164 number: `+` then 8 to 15 digits, the first not 0.
pub fn validate_e164(number: &str) -> Result<(), String> {
    let digits = number.strip_prefix('+').ok_or("must start with +")?;
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("may only contain digits after +".into());
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(format!("must have 8 to 15 digits, has {}", digits.len()));
    }
    if digits.starts_with('0') {
        return Err("the country code cannot start with 0".into());
    }
    Ok(())
}

fn check_e164(key: &str, number: &str) -> Result<(), Error> {
    validate_e164(number).map_err(|why| {
        Error::config(format!(
            "`{key}`: {} is not an E.164 number ({why}), e.g. \"+447700900123\"",
            crate::notifier::mask(number)
        ))
    })
}

fn check_sid(key: &str, sid: &str, prefix: &str) -> Result<(), Error> {
    let ok = sid.len() == 34
        && sid.starts_with(prefix)
        && sid[2..].bytes().all(|b| b.is_ascii_hexdigit());
    if ok {
        Ok(())
    } else {
        Err(Error::config(format!(
            "`{key}`: expected {prefix} followed by 32 hex digits (from the Twilio console), got {} characters",
            sid.chars().count()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SID: &str = "AC0123456789abcdef0123456789abcdef";

    fn config() -> SmsConfig {
        SmsConfig::new(
            SID,
            SecretRef::Env("T".into()),
            "+15005550006",
            vec!["+447700900123".into()],
        )
    }

    #[test]
    fn e164_rules() {
        for ok in ["+12345678", "+447700900123", "+123456789012345"] {
            assert!(validate_e164(ok).is_ok(), "{ok}");
        }
        for bad in [
            "447700900123",
            "+1234567",
            "+1234567890123456",
            "+0447700900",
            "+44 7700 900123",
            "+44770090012a",
            "",
            "+",
        ] {
            assert!(validate_e164(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn valid_config_and_sender() {
        assert_eq!(
            config().validate("n").unwrap(),
            Sender::Number("+15005550006".into())
        );
        let mut c = config();
        c.from = None;
        c.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".into());
        assert!(matches!(
            c.validate("n").unwrap(),
            Sender::MessagingService(_)
        ));
    }

    #[test]
    fn errors_name_the_key() {
        let mut c = config();
        c.to.push("+0123456789".into());
        let e = c.validate("notifiers.sms").unwrap_err().to_string();
        assert!(
            e.contains("`notifiers.sms.to[1]`")
                && e.contains("+012*****89")
                && !e.contains("+0123456789"),
            "{e}"
        );

        let mut c = config();
        c.account_sid = "AB123".into();
        assert!(
            c.validate("notifiers.sms")
                .unwrap_err()
                .to_string()
                .contains("`notifiers.sms.account_sid`")
        );

        let mut c = config();
        c.from = Some("12345".into());
        assert!(
            c.validate("notifiers.sms")
                .unwrap_err()
                .to_string()
                .contains("`notifiers.sms.from`")
        );

        let mut c = config();
        c.messaging_service_sid = Some("MG0123456789abcdef0123456789abcdef".into());
        assert!(
            c.validate("notifiers.sms")
                .unwrap_err()
                .to_string()
                .contains("only one")
        );

        let mut c = config();
        c.from = None;
        assert!(
            c.validate("notifiers.sms")
                .unwrap_err()
                .to_string()
                .contains("messaging_service_sid")
        );

        let mut c = config();
        c.link_base = Some(format!("https://x.example/{}", "a".repeat(100)));
        assert!(
            c.validate("notifiers.sms")
                .unwrap_err()
                .to_string()
                .contains("`notifiers.sms.link_base`")
        );

        let err = toml::from_str::<SmsConfig>(&format!(
            "account_sid = \"{SID}\"\nauth_token = {{ env = \"T\" }}\nfrom = \"+15005550006\"\nrecipients = []"
        ))
        .unwrap_err()
        .to_string();
        assert!(err.contains("recipients"), "{err}");
    }
}
