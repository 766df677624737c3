//! The inbound webhook verifiers and payload mappers on arbitrary requests: nothing panics;
//! a request the fuzzer made up never verifies (it does not know the key); the same body
//! signed by the sender's side always verifies, and its mapping (any bytes as the vendor's
//! payload) ends in events or a payload error, never a panic.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use vowguard_core::SecretMap;
use vowguard_webhooks::{Refusal, Request, Source, WebhookConfig};

#[derive(Debug, Arbitrary)]
struct Input {
    scheme: u8,
    headers: Vec<(String, String)>,
    query: Option<String>,
    body: Vec<u8>,
    id: String,
    skew: i16,
}

const TABLES: &[&str] = &[
    "type = \"standard_webhooks\"\nsecret = { env = \"STD\" }",
    "type = \"github\"\nsecret = { env = \"K\" }",
    "type = \"stripe\"\nsecret = { env = \"K\" }",
    "type = \"slack\"\nsecret = { env = \"K\" }",
    "type = \"pagerduty\"\nsecret = { env = \"K\" }",
    "type = \"twilio\"\nsecret = { env = \"K\" }\nurl = \"https://hooks.example.com/v1/webhooks/sms\"",
    "type = \"generic_hmac\"\nsecret = { env = \"K\" }\nheader = \"X-Sig\"\nencoding = \"base64\"\nprefix = \"v=\"\nsigned = \"{id}.{timestamp}.{body}\"\ntimestamp_header = \"X-Ts\"\nid_header = \"X-Id\"\n[mapping]\nevents = \"/a\"\naction = \"/k\"\nseverity = \"/s\"",
    "type = \"jira\"\nsecret = { env = \"K\" }\nstatuses = { \"Triage\" = \"acknowledged\" }",
    "type = \"servicenow\"\nsecret = { env = \"K\" }\nauth = \"hmac\"\nheader = \"X-SN-Signature\"\nencoding = \"base64\"\nsigned = \"{timestamp}.{body}\"\ntimestamp_header = \"X-SN-Timestamp\"",
    "type = \"servicenow\"\nsecret = { env = \"K\" }\nauth = \"bearer\"",
];

fn source(index: u8) -> Source {
    let secrets = SecretMap::new()
        .with("STD", "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD")
        .with("K", "fuzz-key");
    let table = TABLES[usize::from(index) % TABLES.len()];
    let config: WebhookConfig = toml::from_str(table).unwrap();
    config
        .build("fuzz", &secrets, std::path::Path::new("."))
        .unwrap()
}

fuzz_target!(|input: Input| {
    let source = source(input.scheme);
    let now = 1_700_000_000;
    let headers: Vec<(&str, &str)> = input
        .headers
        .iter()
        .take(16)
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = Request {
        headers: &headers,
        query: input.query.as_deref(),
        body: &input.body,
    };
    // Made up: never verified.
    assert!(matches!(
        source.accept(&request, now),
        Err(Refusal::Unverified(_))
    ));
    // Signed by the sender's side: always verified (then mapped or refused as a payload).
    let id: String = input
        .id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(64)
        .collect();
    let id = if id.is_empty() { "msg".to_owned() } else { id };
    let ts = now + i64::from(input.skew) % 300;
    let signed = vowguard_webhooks::verify::sign(
        &source.scheme,
        &source.keys[0],
        &id,
        ts,
        input.query.as_deref(),
        &input.body,
    );
    let Some(signed) = signed else { return };
    let pairs: Vec<(&str, &str)> = signed
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    let request = Request {
        headers: &pairs,
        query: input.query.as_deref(),
        body: &input.body,
    };
    match source.accept(&request, now) {
        Ok(delivery) => assert!(delivery.mapped.events.len() <= 100),
        Err(Refusal::Payload(_)) => {}
        // A Twilio JSON query whose bodySHA256 does not match the body is refused.
        Err(Refusal::Unverified(_))
            if input
                .query
                .as_deref()
                .is_some_and(|q| q.contains("bodySHA256")) => {}
        Err(e) => panic!("a signed request was refused: {e:?}"),
    }
});
