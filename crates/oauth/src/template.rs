//! Templating of connect-session `{placeholders}` in provider URLs: finding the names
//! a URL uses and filling in checked values.

use std::collections::BTreeMap;

/// Names of `{...}` placeholders in a URL as written (`{tenant}` in a host stays as is;
/// in a path the URL parser writes it `%7Btenant%7D`).
pub(crate) fn placeholders(url: &str) -> Vec<String> {
    let text = url.replace("%7B", "{").replace("%7D", "}");
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(start) = rest.find('{') {
        let after = &rest[start + 1..];
        let Some(end) = after.find('}') else { break };
        out.push(after[..end].to_owned());
        rest = &after[end + 1..];
    }
    out
}

/// Replaces each `{name}` (or its percent-encoded form) with its value. Values must
/// already be checked against their `ParamKind` (`crate::quirks`).
pub(crate) fn fill(url: &str, values: &BTreeMap<String, String>) -> String {
    let mut text = url.to_owned();
    for (name, value) in values {
        text = text
            .replace(&format!("{{{name}}}"), value)
            .replace(&format!("%7B{name}%7D"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_found_in_hosts_and_encoded_paths_and_filled() {
        let url = "https://login.example/%7Btenant%7D/x/{shop}";
        assert_eq!(placeholders(url), ["tenant", "shop"]);
        let values = BTreeMap::from([
            ("tenant".to_owned(), "t1".to_owned()),
            ("shop".to_owned(), "s".to_owned()),
        ]);
        assert_eq!(fill(url, &values), "https://login.example/t1/x/s");
    }
}
