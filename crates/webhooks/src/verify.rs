//! Signature verification, per scheme, on the raw request bytes.
//!
//! Every check is a pure function of the request (headers, body, the URL the sender
//! signed), the source's keys and the current time: no I/O, nothing parsed before the
//! signature holds (Twilio's form parameters are part of what is signed, so they are split,
//! never interpreted). Every signature the header carries is tried against every key (key
//! rotation on either side), each comparison in constant time.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

/// Longest delivery id taken from a header, in bytes (longer ones are refused as malformed).
pub const MAX_DELIVERY_ID_LEN: usize = 256;

/// Most signatures looked at in one header (the rest are ignored).
const MAX_SIGNATURES: usize = 16;

/// A key material, never printed.
#[derive(Clone)]
pub enum Key {
    /// An HMAC key (the raw bytes the sender keys its MAC with).
    Hmac(Vec<u8>),
    /// A Standard Webhooks `v1a` (Ed25519) public key (`whpk_`), with the signing key when
    /// the secret was a `whsk_` key (then `webhook sign` can sign).
    Ed25519 {
        /// The public key.
        public: ed25519_dalek::VerifyingKey,
        /// The signing key, when known.
        signing: Option<Box<ed25519_dalek::SigningKey>>,
    },
}

impl std::fmt::Debug for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Key::Hmac(_) => f.write_str("Key::Hmac([redacted])"),
            Key::Ed25519 { .. } => f.write_str("Key::Ed25519([redacted])"),
        }
    }
}

/// The hash of a generic HMAC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256.
    Sha256,
    /// HMAC-SHA512.
    Sha512,
    /// HMAC-SHA1 (legacy senders only).
    Sha1,
}

/// How a generic signature is written in its header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Encoding {
    /// Lower- or upper-case hex.
    Hex,
    /// Standard base64 with padding.
    Base64,
}

/// One part of what a generic sender signs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Part {
    /// Literal bytes.
    Text(String),
    /// The delivery id header's value.
    Id,
    /// The timestamp header's value.
    Timestamp,
    /// The raw body.
    Body,
}

/// A generic HMAC scheme for suppliers' and venues' systems.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GenericHmac {
    /// The header carrying the signature(s) (lower case).
    pub header: String,
    /// The MAC's hash.
    pub algorithm: Algorithm,
    /// How the MAC is written.
    pub encoding: Encoding,
    /// A prefix before each signature, e.g. `sha256=` (stripped).
    pub prefix: String,
    /// What is signed, e.g. `{timestamp}.{body}`.
    pub signed: Vec<Part>,
    /// The header carrying a unix timestamp (checked against the tolerance), lower case.
    pub timestamp_header: Option<String>,
    /// The header carrying a delivery id (the replay key), lower case.
    pub id_header: Option<String>,
}

impl GenericHmac {
    /// Parses a `signed` template: `{body}`, `{timestamp}` and `{id}` are replaced, the rest
    /// is literal. Refuses unknown placeholders and a template without `{body}`.
    pub fn parse_template(template: &str) -> Result<Vec<Part>, String> {
        let mut parts = Vec::new();
        let mut rest = template;
        while let Some(start) = rest.find('{') {
            if start > 0 {
                parts.push(Part::Text(rest[..start].to_owned()));
            }
            let Some(end) = rest[start..].find('}') else {
                return Err("an unclosed `{`".into());
            };
            let part = match &rest[start + 1..start + end] {
                "body" => Part::Body,
                "timestamp" => Part::Timestamp,
                "id" => Part::Id,
                other => {
                    return Err(format!(
                        "unknown placeholder `{{{other}}}`: expected {{body}}, {{timestamp}} or {{id}}"
                    ));
                }
            };
            parts.push(part);
            rest = &rest[start + end + 1..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_owned()));
        }
        if !parts.contains(&Part::Body) {
            return Err("the template must contain {body}".into());
        }
        Ok(parts)
    }
}

/// A signature scheme.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Scheme {
    /// Standard Webhooks: `webhook-id`, `webhook-timestamp`, `webhook-signature`
    /// (`v1,<b64>` HMAC-SHA256 and `v1a,<b64>` Ed25519) over `id.timestamp.body`.
    StandardWebhooks,
    /// GitHub: `X-Hub-Signature-256: sha256=<hex>` over the body; id `X-GitHub-Delivery`.
    GitHub,
    /// Stripe: `Stripe-Signature: t=<ts>,v1=<hex>...` over `t.body`.
    Stripe,
    /// Slack: `X-Slack-Signature: v0=<hex>` over `v0:ts:body`, `X-Slack-Request-Timestamp`.
    Slack,
    /// PagerDuty v3: `X-PagerDuty-Signature: v1=<hex>[,v1=<hex>]` over the body.
    PagerDuty,
    /// Twilio: `X-Twilio-Signature`, base64 HMAC-SHA1 over the public URL (plus the sorted
    /// form parameters, or the URL's `bodySHA256` for JSON bodies).
    Twilio {
        /// The URL Twilio calls, exactly as configured in Twilio (without the query).
        url: String,
    },
    /// A generic HMAC.
    GenericHmac(GenericHmac),
    /// Jira (Cloud and Data Center admin webhooks with a secret): `X-Hub-Signature:
    /// sha256=<hex>` over the body; id `X-Atlassian-Webhook-Identifier` when sent.
    Jira,
    /// ServiceNow (an outbound REST message from a business rule): a shared-secret HMAC
    /// header, or a bearer token.
    ServiceNow(ServiceNowAuth),
}

/// How a ServiceNow sender proves itself.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServiceNowAuth {
    /// An HMAC header, configured like `generic_hmac`.
    Hmac(GenericHmac),
    /// `Authorization: Bearer <secret>`, compared in constant time (digests of both sides,
    /// so neither the content nor the length of the secret shows in the timing).
    Bearer,
}

/// The request as received: header pairs (names in any case), the query string and the raw
/// body.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// Header name and value pairs.
    pub headers: &'a [(&'a str, &'a str)],
    /// The query string without `?`, if any.
    pub query: Option<&'a str>,
    /// The raw body.
    pub body: &'a [u8],
}

impl Request<'_> {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// Why a request is refused (the metric's `reason`; never shown to the sender).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Rejection {
    /// A header the scheme needs is absent.
    MissingHeader,
    /// A header is present but not in the scheme's format.
    Malformed,
    /// No signature matched any key.
    BadSignature,
    /// The signed timestamp is outside the tolerance.
    Stale,
}

impl Rejection {
    /// The metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rejection::MissingHeader => "missing_header",
            Rejection::Malformed => "malformed",
            Rejection::BadSignature => "bad_signature",
            Rejection::Stale => "stale_timestamp",
        }
    }
}

/// What a verified request told about itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    /// The sender's delivery id from a header, when the scheme has one.
    pub delivery_id: Option<String>,
    /// The signed timestamp, when the scheme has one.
    pub timestamp: Option<i64>,
    /// SHA-256 of what was signed: the replay key of schemes without a delivery id.
    pub digest: [u8; 32],
}

/// Verifies `request` against `keys` at unix time `now` with `tolerance_secs`.
pub fn verify(
    scheme: &Scheme,
    keys: &[Key],
    request: &Request<'_>,
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, Rejection> {
    match scheme {
        Scheme::StandardWebhooks => standard(keys, request, now, tolerance_secs),
        Scheme::GitHub => {
            let header = request
                .header("x-hub-signature-256")
                .ok_or(Rejection::MissingHeader)?;
            let sig = header
                .trim()
                .strip_prefix("sha256=")
                .and_then(hex_decode)
                .ok_or(Rejection::Malformed)?;
            let delivery_id = delivery_header(request, "x-github-delivery")?;
            let parts: &[&[u8]] = &[request.body];
            check_hmac(keys, Algorithm::Sha256, parts, std::iter::once(sig))?;
            Ok(verified(delivery_id, None, parts))
        }
        Scheme::Stripe => {
            let header = request
                .header("stripe-signature")
                .ok_or(Rejection::MissingHeader)?;
            let mut ts = None;
            let mut sigs = Vec::new();
            for item in header.split(',') {
                let (k, v) = item.trim().split_once('=').ok_or(Rejection::Malformed)?;
                match k {
                    "t" if ts.is_none() => ts = Some(v),
                    "t" => return Err(Rejection::Malformed),
                    "v1" if sigs.len() < MAX_SIGNATURES => {
                        // An undecodable v1 entry cannot match; the others are still tried.
                        if let Some(sig) = hex_decode(v) {
                            sigs.push(sig);
                        }
                    }
                    _ => {}
                }
            }
            let ts_text = ts.ok_or(Rejection::Malformed)?;
            let ts = parse_ts(ts_text)?;
            if sigs.is_empty() {
                return Err(Rejection::Malformed);
            }
            let parts: &[&[u8]] = &[ts_text.as_bytes(), b".", request.body];
            check_hmac(keys, Algorithm::Sha256, parts, sigs.into_iter())?;
            fresh(ts, now, tolerance_secs)?;
            Ok(verified(None, Some(ts), parts))
        }
        Scheme::Slack => {
            let header = request
                .header("x-slack-signature")
                .ok_or(Rejection::MissingHeader)?;
            let ts_text = request
                .header("x-slack-request-timestamp")
                .ok_or(Rejection::MissingHeader)?
                .trim();
            let ts = parse_ts(ts_text)?;
            let sig = header
                .trim()
                .strip_prefix("v0=")
                .and_then(hex_decode)
                .ok_or(Rejection::Malformed)?;
            let parts: &[&[u8]] = &[b"v0:", ts_text.as_bytes(), b":", request.body];
            check_hmac(keys, Algorithm::Sha256, parts, std::iter::once(sig))?;
            fresh(ts, now, tolerance_secs)?;
            Ok(verified(None, Some(ts), parts))
        }
        Scheme::PagerDuty => {
            let header = request
                .header("x-pagerduty-signature")
                .ok_or(Rejection::MissingHeader)?;
            let sigs: Vec<Vec<u8>> = header
                .split(',')
                .filter_map(|s| s.trim().strip_prefix("v1=").and_then(hex_decode))
                .take(MAX_SIGNATURES)
                .collect();
            if sigs.is_empty() {
                return Err(Rejection::Malformed);
            }
            let parts: &[&[u8]] = &[request.body];
            check_hmac(keys, Algorithm::Sha256, parts, sigs.into_iter())?;
            Ok(verified(None, None, parts))
        }
        Scheme::Twilio { url } => twilio(url, keys, request),
        Scheme::GenericHmac(generic) => generic_hmac(generic, keys, request, now, tolerance_secs),
        Scheme::Jira => {
            let header = request
                .header("x-hub-signature")
                .ok_or(Rejection::MissingHeader)?;
            let sigs: Vec<Vec<u8>> = header
                .split(',')
                .filter_map(|s| s.trim().strip_prefix("sha256=").and_then(hex_decode))
                .take(MAX_SIGNATURES)
                .collect();
            if sigs.is_empty() {
                return Err(Rejection::Malformed);
            }
            let delivery_id = delivery_header(request, "x-atlassian-webhook-identifier")?;
            let parts: &[&[u8]] = &[request.body];
            check_hmac(keys, Algorithm::Sha256, parts, sigs.into_iter())?;
            Ok(verified(delivery_id, None, parts))
        }
        Scheme::ServiceNow(ServiceNowAuth::Hmac(generic)) => {
            generic_hmac(generic, keys, request, now, tolerance_secs)
        }
        Scheme::ServiceNow(ServiceNowAuth::Bearer) => bearer(keys, request),
    }
}

/// `Authorization: Bearer <token>` against every key, comparing SHA-256 digests in constant
/// time. The digest of the body is the replay fallback (nothing else is signed).
fn bearer(keys: &[Key], request: &Request<'_>) -> Result<Verified, Rejection> {
    let header = request
        .header("authorization")
        .ok_or(Rejection::MissingHeader)?;
    let (scheme, token) = header.trim().split_once(' ').ok_or(Rejection::Malformed)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(Rejection::Malformed);
    }
    let presented = Sha256::digest(token.trim().as_bytes());
    let mut ok = subtle::Choice::from(0u8);
    for key in keys {
        if let Key::Hmac(secret) = key {
            ok |= subtle::ConstantTimeEq::ct_eq(
                Sha256::digest(secret).as_slice(),
                presented.as_slice(),
            );
        }
    }
    if !bool::from(ok) {
        return Err(Rejection::BadSignature);
    }
    Ok(verified(None, None, &[request.body]))
}

fn verified(delivery_id: Option<String>, timestamp: Option<i64>, parts: &[&[u8]]) -> Verified {
    let mut hash = Sha256::new();
    for part in parts {
        hash.update(part);
    }
    Verified {
        delivery_id,
        timestamp,
        digest: hash.finalize().into(),
    }
}

fn delivery_header(request: &Request<'_>, name: &str) -> Result<Option<String>, Rejection> {
    match request.header(name) {
        None => Ok(None),
        Some(id) if id.is_empty() || id.len() > MAX_DELIVERY_ID_LEN => Err(Rejection::Malformed),
        Some(id) => Ok(Some(id.to_owned())),
    }
}

fn parse_ts(text: &str) -> Result<i64, Rejection> {
    if text.is_empty() || text.len() > 12 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Rejection::Malformed);
    }
    text.parse().map_err(|_| Rejection::Malformed)
}

fn fresh(ts: i64, now: i64, tolerance_secs: i64) -> Result<(), Rejection> {
    if (now - ts).abs() > tolerance_secs {
        Err(Rejection::Stale)
    } else {
        Ok(())
    }
}

/// Whether any of `signatures` is the HMAC of `parts` under any HMAC key (constant-time
/// comparisons; every pair is tried, so the time does not say which key matched).
fn check_hmac(
    keys: &[Key],
    algorithm: Algorithm,
    parts: &[&[u8]],
    signatures: impl Iterator<Item = Vec<u8>>,
) -> Result<(), Rejection> {
    let macs: Vec<Vec<u8>> = keys
        .iter()
        .filter_map(|k| match k {
            Key::Hmac(key) => Some(mac(algorithm, key, parts)),
            Key::Ed25519 { .. } => None,
        })
        .collect();
    let mut ok = subtle::Choice::from(0u8);
    for sig in signatures.take(MAX_SIGNATURES) {
        for mac in &macs {
            ok |= subtle::ConstantTimeEq::ct_eq(mac.as_slice(), sig.as_slice());
        }
    }
    if bool::from(ok) {
        Ok(())
    } else {
        Err(Rejection::BadSignature)
    }
}

/// The HMAC of the concatenated `parts`.
pub fn mac(algorithm: Algorithm, key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    fn run<M: Mac + hmac::digest::KeyInit>(key: &[u8], parts: &[&[u8]]) -> Vec<u8> {
        let mut m = <M as hmac::digest::KeyInit>::new_from_slice(key)
            .expect("HMAC takes keys of any length");
        for part in parts {
            m.update(part);
        }
        m.finalize().into_bytes().to_vec()
    }
    match algorithm {
        Algorithm::Sha256 => run::<Hmac<Sha256>>(key, parts),
        Algorithm::Sha512 => run::<Hmac<sha2::Sha512>>(key, parts),
        Algorithm::Sha1 => run::<Hmac<sha1::Sha1>>(key, parts),
    }
}

fn standard(
    keys: &[Key],
    request: &Request<'_>,
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, Rejection> {
    let id = request
        .header("webhook-id")
        .ok_or(Rejection::MissingHeader)?;
    let ts_text = request
        .header("webhook-timestamp")
        .ok_or(Rejection::MissingHeader)?;
    let header = request
        .header("webhook-signature")
        .ok_or(Rejection::MissingHeader)?;
    if id.is_empty() || id.len() > MAX_DELIVERY_ID_LEN || id.contains('.') {
        return Err(Rejection::Malformed);
    }
    let ts = parse_ts(ts_text)?;
    let parts: &[&[u8]] = &[id.as_bytes(), b".", ts_text.as_bytes(), b".", request.body];
    let mut v1 = Vec::new();
    let mut v1a = Vec::new();
    for entry in header
        .split(' ')
        .filter(|s| !s.is_empty())
        .take(MAX_SIGNATURES)
    {
        let Some((version, sig)) = entry.split_once(',') else {
            continue;
        };
        let Ok(sig) = B64.decode(sig) else { continue };
        match version {
            "v1" => v1.push(sig),
            "v1a" => v1a.push(sig),
            _ => {}
        }
    }
    if v1.is_empty() && v1a.is_empty() {
        return Err(Rejection::Malformed);
    }
    let mut ok = check_hmac(keys, Algorithm::Sha256, parts, v1.into_iter()).is_ok();
    if !ok && !v1a.is_empty() {
        let message = [id.as_bytes(), b".", ts_text.as_bytes(), b".", request.body].concat();
        for key in keys {
            let Key::Ed25519 { public, .. } = key else {
                continue;
            };
            for sig in &v1a {
                if let Ok(sig) = ed25519_dalek::Signature::from_slice(sig)
                    && public.verify_strict(&message, &sig).is_ok()
                {
                    ok = true;
                }
            }
        }
    }
    if !ok {
        return Err(Rejection::BadSignature);
    }
    fresh(ts, now, tolerance_secs)?;
    Ok(verified(Some(id.to_owned()), Some(ts), parts))
}

/// The string Twilio signs: the URL (with the request's query) and, for form bodies, every
/// parameter's name and value in name order. `None`: a JSON body whose `bodySHA256` does
/// not match.
fn twilio_signed(url: &str, request: &Request<'_>) -> Option<Vec<u8>> {
    let mut signed = url.as_bytes().to_vec();
    let query = request.query.unwrap_or("");
    if !query.is_empty() {
        signed.push(b'?');
        signed.extend_from_slice(query.as_bytes());
    }
    let body_sha = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "bodySHA256")
        .map(|(_, v)| v.into_owned());
    if let Some(expected) = body_sha {
        let actual = hex_encode(&Sha256::digest(request.body));
        let same: bool = subtle::ConstantTimeEq::ct_eq(
            actual.as_bytes(),
            expected.to_ascii_lowercase().as_bytes(),
        )
        .into();
        return same.then_some(signed);
    }
    let mut params: Vec<(String, String)> = form_urlencoded::parse(request.body)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    params.sort();
    for (k, v) in params {
        signed.extend_from_slice(k.as_bytes());
        signed.extend_from_slice(v.as_bytes());
    }
    Some(signed)
}

fn twilio(url: &str, keys: &[Key], request: &Request<'_>) -> Result<Verified, Rejection> {
    let header = request
        .header("x-twilio-signature")
        .ok_or(Rejection::MissingHeader)?;
    let sig = B64
        .decode(header.trim())
        .map_err(|_| Rejection::Malformed)?;
    let delivery_id = delivery_header(request, "i-twilio-idempotency-token")?;
    let signed = twilio_signed(url, request).ok_or(Rejection::BadSignature)?;
    check_hmac(
        keys,
        Algorithm::Sha1,
        &[signed.as_slice()],
        std::iter::once(sig),
    )?;
    Ok(verified(
        delivery_id,
        None,
        &[signed.as_slice(), request.body],
    ))
}

fn generic_parts<'a>(
    generic: &'a GenericHmac,
    id: &'a str,
    ts: &'a str,
    body: &'a [u8],
) -> Vec<&'a [u8]> {
    generic
        .signed
        .iter()
        .map(|p| match p {
            Part::Text(t) => t.as_bytes(),
            Part::Id => id.as_bytes(),
            Part::Timestamp => ts.as_bytes(),
            Part::Body => body,
        })
        .collect()
}

fn generic_hmac(
    generic: &GenericHmac,
    keys: &[Key],
    request: &Request<'_>,
    now: i64,
    tolerance_secs: i64,
) -> Result<Verified, Rejection> {
    let header = request
        .header(&generic.header)
        .ok_or(Rejection::MissingHeader)?;
    let ts_text = match &generic.timestamp_header {
        Some(name) => Some(request.header(name).ok_or(Rejection::MissingHeader)?.trim()),
        None => None,
    };
    let ts = ts_text.map(parse_ts).transpose()?;
    let delivery_id = match &generic.id_header {
        Some(name) => Some(delivery_header(request, name)?.ok_or(Rejection::MissingHeader)?),
        None => None,
    };
    let sigs: Vec<Vec<u8>> = header
        .split([',', ' '])
        .filter(|s| !s.is_empty())
        .filter_map(|s| s.strip_prefix(generic.prefix.as_str()))
        .filter_map(|s| match generic.encoding {
            Encoding::Hex => hex_decode(s),
            Encoding::Base64 => B64.decode(s).ok(),
        })
        .take(MAX_SIGNATURES)
        .collect();
    if sigs.is_empty() {
        return Err(Rejection::Malformed);
    }
    let id_text = delivery_id.clone().unwrap_or_default();
    let parts = generic_parts(generic, &id_text, ts_text.unwrap_or(""), request.body);
    check_hmac(keys, generic.algorithm, &parts, sigs.into_iter())?;
    if let Some(ts) = ts {
        fresh(ts, now, tolerance_secs)?;
    }
    Ok(verified(delivery_id, ts, &parts))
}

/// The headers a sender of `scheme` sends with `body` (for `vowguard webhook sign` and
/// tests), signed with `key`. `id` and `timestamp` are used where the scheme has them.
/// `None` when the key cannot sign for the scheme (an Ed25519 public key).
pub fn sign(
    scheme: &Scheme,
    key: &Key,
    id: &str,
    timestamp: i64,
    query: Option<&str>,
    body: &[u8],
) -> Option<Vec<(String, String)>> {
    let ts = timestamp.to_string();
    let hmac_key = match key {
        Key::Hmac(k) => Some(k.as_slice()),
        Key::Ed25519 { .. } => None,
    };
    let h = |name: &str, value: String| (name.to_owned(), value);
    Some(match scheme {
        Scheme::StandardWebhooks => {
            let parts: &[&[u8]] = &[id.as_bytes(), b".", ts.as_bytes(), b".", body];
            let signature = match key {
                Key::Hmac(k) => format!("v1,{}", B64.encode(mac(Algorithm::Sha256, k, parts))),
                Key::Ed25519 { signing, .. } => {
                    use ed25519_dalek::Signer as _;
                    let sig = signing.as_ref()?.sign(&parts.concat());
                    format!("v1a,{}", B64.encode(sig.to_bytes()))
                }
            };
            vec![
                h("webhook-id", id.to_owned()),
                h("webhook-timestamp", ts),
                h("webhook-signature", signature),
            ]
        }
        Scheme::GitHub => vec![
            h(
                "X-Hub-Signature-256",
                format!(
                    "sha256={}",
                    hex_encode(&mac(Algorithm::Sha256, hmac_key?, &[body]))
                ),
            ),
            h("X-GitHub-Delivery", id.to_owned()),
        ],
        Scheme::Stripe => {
            let sig = mac(Algorithm::Sha256, hmac_key?, &[ts.as_bytes(), b".", body]);
            vec![h(
                "Stripe-Signature",
                format!("t={ts},v1={}", hex_encode(&sig)),
            )]
        }
        Scheme::Slack => {
            let sig = mac(
                Algorithm::Sha256,
                hmac_key?,
                &[b"v0:", ts.as_bytes(), b":", body],
            );
            vec![
                h("X-Slack-Request-Timestamp", ts),
                h("X-Slack-Signature", format!("v0={}", hex_encode(&sig))),
            ]
        }
        Scheme::PagerDuty => vec![h(
            "X-PagerDuty-Signature",
            format!(
                "v1={}",
                hex_encode(&mac(Algorithm::Sha256, hmac_key?, &[body]))
            ),
        )],
        Scheme::Twilio { url } => {
            let request = Request {
                headers: &[],
                query,
                body,
            };
            let signed = twilio_signed(url, &request)?;
            vec![
                h(
                    "X-Twilio-Signature",
                    B64.encode(mac(Algorithm::Sha1, hmac_key?, &[signed.as_slice()])),
                ),
                h("I-Twilio-Idempotency-Token", id.to_owned()),
            ]
        }
        Scheme::GenericHmac(generic) | Scheme::ServiceNow(ServiceNowAuth::Hmac(generic)) => {
            sign_generic(generic, hmac_key?, id, &ts, body)
        }
        Scheme::Jira => {
            let mut headers = vec![h(
                "X-Hub-Signature",
                format!(
                    "sha256={}",
                    hex_encode(&mac(Algorithm::Sha256, hmac_key?, &[body]))
                ),
            )];
            if !id.is_empty() {
                headers.push(h("X-Atlassian-Webhook-Identifier", id.to_owned()));
            }
            headers
        }
        Scheme::ServiceNow(ServiceNowAuth::Bearer) => {
            let token = std::str::from_utf8(hmac_key?).ok()?;
            vec![h("Authorization", format!("Bearer {token}"))]
        }
    })
}

fn sign_generic(
    generic: &GenericHmac,
    key: &[u8],
    id: &str,
    ts: &str,
    body: &[u8],
) -> Vec<(String, String)> {
    let parts = generic_parts(generic, id, ts, body);
    let sig = mac(generic.algorithm, key, &parts);
    let encoded = match generic.encoding {
        Encoding::Hex => hex_encode(&sig),
        Encoding::Base64 => B64.encode(sig),
    };
    let mut headers = vec![(
        generic.header.clone(),
        format!("{}{encoded}", generic.prefix),
    )];
    if let Some(name) = &generic.timestamp_header {
        headers.push((name.clone(), ts.to_owned()));
    }
    if let Some(name) = &generic.id_header {
        headers.push((name.clone(), id.to_owned()));
    }
    headers
}

/// Lower-case hex.
pub fn hex_encode(bytes: &[u8]) -> String {
    vowguard_core::hex::encode(bytes)
}

/// Decodes hex (either case); `None` for odd lengths or other characters.
pub fn hex_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.as_bytes();
    if !text.len().is_multiple_of(2) || text.len() > 1024 {
        return None;
    }
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    };
    text.chunks(2)
        .map(|pair| Some(digit(pair[0])? << 4 | digit(pair[1])?))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_round_trips() {
        assert_eq!(
            hex_decode(&hex_encode(&[0, 1, 0xab, 0xff])).unwrap(),
            [0, 1, 0xab, 0xff]
        );
        assert_eq!(hex_decode("ABcd").unwrap(), [0xab, 0xcd]);
        assert!(hex_decode("abc").is_none());
        assert!(hex_decode("zz").is_none());
    }

    #[test]
    fn templates_parse() {
        assert_eq!(
            GenericHmac::parse_template("{timestamp}.{body}").unwrap(),
            vec![Part::Timestamp, Part::Text(".".into()), Part::Body]
        );
        assert!(GenericHmac::parse_template("{timestamp}").is_err());
        assert!(GenericHmac::parse_template("{nope}{body}").is_err());
        assert!(GenericHmac::parse_template("{body").is_err());
    }
}
