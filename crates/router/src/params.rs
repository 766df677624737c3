//! Receiver parameters of a route (`params`, `receiver_params.<id>`): the typed values
//! ([`ParamValue`], [`Params`], defined in `vowguard-core`) and their JSON form, which alerts
//! carry.

use serde_json::{Map, Value};
pub use vowguard_core::{ParamValue, Params};

/// The value as alerts carry it (`Alert::params` is JSON). A float that is not finite
/// (NaN, infinity) has no JSON form and becomes `null`.
pub(crate) fn to_json(value: &ParamValue) -> Value {
    match value {
        ParamValue::String(s) => Value::from(s.as_str()),
        ParamValue::Integer(i) => Value::from(*i),
        ParamValue::Float(f) => Value::from(*f),
        ParamValue::Bool(b) => Value::from(*b),
        ParamValue::List(items) => Value::Array(items.iter().map(to_json).collect()),
        ParamValue::Table(table) => Value::Object(params_to_json(table)),
        // `ParamValue` is non-exhaustive: a kind added later has no JSON form here yet.
        _ => Value::Null,
    }
}

/// The JSON object alerts carry for `params`.
pub(crate) fn params_to_json(params: &Params) -> Map<String, Value> {
    params
        .iter()
        .map(|(k, v)| (k.clone(), to_json(v)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_become_the_json_alerts_carry() {
        let params: Params = toml::from_str(
            r##"
channel = "#security"
channels = ["#a", "#b"]
count = 3
ratio = 0.5
urgent = true
when = 2026-06-20T10:05:00Z
nested = { key = "v", list = [1, 2] }
"##,
        )
        .unwrap();
        let json = params_to_json(&params);
        assert_eq!(
            Value::Object(json),
            serde_json::json!({
                "channel": "#security",
                "channels": ["#a", "#b"],
                "count": 3,
                "ratio": 0.5,
                "urgent": true,
                "when": "2026-06-20T10:05:00Z",
                "nested": { "key": "v", "list": [1, 2] },
            })
        );
    }
}
