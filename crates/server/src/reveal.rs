//! [`Revealed`]: a secret that an answer hands to its owner once (a new API key, an
//! access token, a URL that carries a state or a link token). It serialises as the
//! plain string, because that is the answer's purpose, and prints `[redacted]` in
//! `Debug`, so that a response logged or formatted by mistake shows nothing.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};

pub struct Revealed(SecretString);

impl Revealed {
    pub fn new(secret: impl Into<String>) -> Self {
        Self(SecretString::from(secret.into()))
    }
}

impl From<SecretString> for Revealed {
    fn from(secret: SecretString) -> Self {
        Self(secret)
    }
}

impl From<tokenwarden_oauth::AccessToken> for Revealed {
    fn from(token: tokenwarden_oauth::AccessToken) -> Self {
        Self(token.into_secret())
    }
}

impl fmt::Debug for Revealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl Serialize for Revealed {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.0.expose_secret())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revealed_secret_serialises_plainly_and_debugs_redacted() {
        let r = Revealed::new("twk_secret_value");
        assert_eq!(format!("{r:?}"), "[redacted]");
        assert_eq!(serde_json::to_string(&r).unwrap(), "\"twk_secret_value\"");
    }
}
