//! Reading the fields of a token response: non-empty strings, `expires_in` in its
//! many spellings, scopes as a string or an array, dotted paths for extras, and the
//! removal of anything secret from what is kept as extras.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::quirks::ExpiryUnit;

pub(crate) fn take_string(fields: &mut Map<String, Value>, name: &str) -> Option<String> {
    match fields.remove(name) {
        Some(Value::String(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// `expires_in` as a non-negative integer, or a string holding one (seen in the wild,
/// and every value in a form-encoded body is a string).
pub(crate) fn expiry(value: &Value, unit: ExpiryUnit, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    let seconds = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0)
                .map(|f| f as u64)
        })?,
        Value::String(s) => s.trim().parse::<u64>().ok()?,
        _ => return None,
    };
    let seconds = match unit {
        ExpiryUnit::Seconds => seconds,
        ExpiryUnit::Milliseconds => seconds / 1000,
    };
    let delta = chrono::Duration::try_seconds(i64::try_from(seconds).ok()?)?;
    now.checked_add_signed(delta)
}

/// The value at a dotted path (`team.id`).
pub(crate) fn lookup<'a>(fields: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('.');
    let mut value = fields.get(parts.next()?)?;
    for part in parts {
        value = value.as_object()?.get(part)?;
    }
    Some(value)
}

pub(crate) fn parse_scopes(value: Value) -> Option<Vec<String>> {
    match value {
        // RFC 6749 §3.3 says space-delimited; GitHub answers comma-delimited.
        Value::String(s) => Some(
            s.split([' ', ','])
                .filter(|scope| !scope.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(|item| match item {
                    Value::String(s) => Some(s),
                    _ => None,
                })
                .collect(),
        ),
        _ => None,
    }
}

/// Removes, at any depth, every field whose name says it is a token or a secret
/// (Slack nests a user's `access_token` under `authed_user`), so that `extras` can be
/// shown and stored as metadata.
pub(crate) fn strip_secrets(fields: &mut Map<String, Value>) {
    fields.retain(|name, _| {
        let name = name.to_ascii_lowercase();
        !(name.ends_with("token") || name.ends_with("secret") || name.contains("password"))
    });
    for value in fields.values_mut() {
        strip_value(value);
    }
}

fn strip_value(value: &mut Value) {
    match value {
        Value::Object(map) => strip_secrets(map),
        Value::Array(items) => items.iter_mut().for_each(strip_value),
        _ => {}
    }
}
