//! The config loader: TOML text -> `Config` -> assembled components (what `vowguard
//! validate` and `run` do, without network). Never panics, and no error (nor the Debug form
//! of what was assembled) shows a secret: neither an inline value written under a secret
//! key nor a value resolved from `{ env = ... }`.
//!
//! `$S` in the input is replaced by a canary secret, so seeds can put it anywhere.
#![no_main]

use std::path::Path;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use vowguard_core::SecretLookup;
use vowguard_runtime::{Config, Environment, assemble};

/// The value every secret resolves to, and what `$S` becomes.
const CANARY: &str = "Vg5ecretCanary9Z";

/// Keys whose string value is a secret (an inline one is refused, but must not be shown).
const SECRET_KEYS: &[&str] = &[
    "admin_token",
    "token",
    "api_key",
    "password",
    "routing_key",
    "webhook_url",
    "bot_token",
    "auth_token",
    "secret",
];

struct Canary;

impl SecretLookup for Canary {
    fn var(&self, _name: &str) -> Option<String> {
        Some(CANARY.to_owned())
    }
}

/// Where the canary occurs: only as (part of) a string under a secret key, or elsewhere too.
fn canary_only_in_secrets(value: &toml::Value, key: Option<&str>) -> bool {
    match value {
        toml::Value::String(s) => {
            !s.contains(CANARY) || key.is_some_and(|k| SECRET_KEYS.contains(&k))
        }
        toml::Value::Table(t) => t
            .iter()
            .all(|(k, v)| !k.contains(CANARY) && canary_only_in_secrets(v, Some(k))),
        toml::Value::Array(items) => items.iter().all(|v| canary_only_in_secrets(v, None)),
        _ => true,
    }
}

/// For text that is not TOML: the canary is only on `secret_key = ...` lines.
fn canary_lines_are_secret_assignments(text: &str) -> bool {
    text.lines().filter(|l| l.contains(CANARY)).all(|line| {
        let Some((key, value)) = line.split_once('=') else {
            return false;
        };
        let key = key.trim().trim_matches('"');
        SECRET_KEYS.contains(&key) && !key.contains(CANARY) && value.trim_start().starts_with('"')
    })
}

/// The directory relative paths resolve against. The first call also points
/// `SSL_CERT_FILE` at one system certificate (and unsets `SSL_CERT_DIR`): every HTTP connector loads the trust store
/// when it is built, and loading all of it under instrumentation takes about a second.
fn config_dir() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        let one_cert = std::fs::read_dir("/etc/ssl/certs")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "pem"))
            .find_map(|p| std::fs::read(p).ok());
        if let Some(pem) = one_cert {
            let path = dir.path().join("one-cert.pem");
            std::fs::write(&path, pem).expect("write");
            // SAFETY: set once, before this process starts any other thread (this target
            // runs no runtime and libFuzzer runs inputs on one thread).
            unsafe {
                std::env::set_var("SSL_CERT_FILE", &path);
                std::env::remove_var("SSL_CERT_DIR");
            }
        }
        dir
    })
    .path()
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let config_dir = config_dir();
    let text = text.replace("$S", CANARY);
    // Whether the canary may legitimately be echoed (it is also a key, an id, a name...).
    let must_hide = match toml::from_str::<toml::Table>(&text) {
        Ok(table) => canary_only_in_secrets(&toml::Value::Table(table), None),
        Err(_) => canary_lines_are_secret_assignments(&text),
    };
    let config = match Config::parse(&text) {
        Ok(config) => config,
        Err(e) => {
            let message = e.to_string();
            assert!(
                !(must_hide && message.contains(CANARY)),
                "a config error shows a secret value:\n{message}"
            );
            return;
        }
    };
    // A resolved `{ env = ... }` secret is the canary too: when the text does not hold it,
    // any canary in the output came from a resolved secret.
    let must_hide = must_hide || !text.contains(CANARY);
    let env = Environment {
        config_dir,
        secrets: &Canary,
    };
    match assemble(&config, &env) {
        Ok(assembly) => {
            let debug = format!("{assembly:?}");
            assert!(
                !debug.contains(CANARY),
                "the assembled config's Debug form shows a secret"
            );
        }
        Err(e) => {
            let message = e.to_string();
            assert!(
                !(must_hide && message.contains(CANARY)),
                "an assembly error shows a secret value:\n{message}"
            );
        }
    }
});
