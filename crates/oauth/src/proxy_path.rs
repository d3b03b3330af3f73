//! The proxied path's rules: which raw (still percent-encoded) paths may follow
//! `/v1/proxy/{connection_id}`, and [`ProxyPathError`] naming the rule a path breaks.
//!

//! The path is checked as the caller sent it (still percent-encoded): a proxy that
//! decoded first and checked afterwards would let `%2e%2e` or `%2f` through to an
//! upstream that decodes again. Anything that could be read as a dot segment or an
//! extra separator, at any level of decoding, is refused rather than normalised.

use percent_encoding::percent_decode;

/// Longest path accepted after `/v1/proxy/{connection_id}`.
pub const MAX_PATH_LEN: usize = 4096;

/// Why a proxied path was refused. Names the rule, never echoes the path.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ProxyPathError {
    /// A non-empty path must start with `/`.
    #[error("the path must start with `/`")]
    NoLeadingSlash,
    /// `//` would let some servers read the next segment as a host or reset the path.
    #[error("the path must not contain an empty segment (`//`)")]
    EmptySegment,
    /// `.` or `..`, plain or percent-encoded, also with matrix parameters (`..;x`,
    /// `.%3b`), which servers that strip them read as a dot segment.
    #[error("the path must not contain `.` or `..` segments")]
    DotSegment,
    /// `%2e`, `%2f` or `%5c`, or a separator that appears after decoding.
    #[error("the path must not contain encoded dots, slashes or backslashes")]
    EncodedSeparator,
    /// WHATWG URL parsers read `\` as `/`.
    #[error("the path must not contain a backslash")]
    Backslash,
    /// NUL and other control characters, plain or encoded.
    #[error("the path must not contain control characters")]
    Control,
    /// `%` not followed by two hex digits.
    #[error("the path contains an invalid percent-escape")]
    BadEscape,
    /// A character outside RFC 3986 `pchar` (query and fragment have no place here).
    #[error("the path contains a character not allowed in a URL path")]
    Character,
    /// Longer than [`MAX_PATH_LEN`].
    #[error("the path is too long")]
    TooLong,
    /// The built URL left the base (a last check; the rules above should prevent it).
    #[error("the path leads outside the provider's API base URL")]
    OutsideBase,
}

/// RFC 3986 §3.3 `pchar` plus `/`, with `%` checked separately.
fn is_path_char(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'-' | b'.'
                | b'_'
                | b'~'
                | b'!'
                | b'$'
                | b'&'
                | b'\''
                | b'('
                | b')'
                | b'*'
                | b'+'
                | b','
                | b';'
                | b'='
                | b':'
                | b'@'
                | b'/'
                | b'%'
        )
}

fn has_encoded_separator(s: &[u8]) -> bool {
    s.windows(3).any(|w| {
        w[0] == b'%'
            && matches!(
                (w[1].to_ascii_lowercase(), w[2].to_ascii_lowercase()),
                (b'2', b'e') | (b'2', b'f') | (b'5', b'c')
            )
    })
}

fn valid_escapes(s: &[u8]) -> bool {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b'%' {
            let hex = |j: usize| s.get(j).is_some_and(u8::is_ascii_hexdigit);
            if !(hex(i + 1) && hex(i + 2)) {
                return false;
            }
            i += 3;
        } else {
            i += 1;
        }
    }
    true
}

/// The part of a segment before its first `;` or `%3b` (in either case): what a server
/// that strips matrix parameters (Tomcat, Spring: `/..;jsessionid=x/`) reads as the
/// segment.
fn before_parameters(s: &[u8]) -> &[u8] {
    let mut i = 0;
    while i < s.len() {
        if s[i] == b';' {
            return &s[..i];
        }
        if s[i] == b'%'
            && s.get(i + 1) == Some(&b'3')
            && s.get(i + 2).is_some_and(|b| b.eq_ignore_ascii_case(&b'b'))
        {
            return &s[..i];
        }
        i += 1;
    }
    s
}

/// One segment at one level of decoding (level 0 is the raw text).
fn check_segment_level(s: &[u8], level: usize) -> Result<(), ProxyPathError> {
    let name = before_parameters(s);
    if name == b"." || name == b".." {
        return Err(ProxyPathError::DotSegment);
    }
    if s.iter().any(|b| b.is_ascii_control()) {
        return Err(ProxyPathError::Control);
    }
    if s.contains(&b'\\') {
        return Err(if level == 0 {
            ProxyPathError::Backslash
        } else {
            ProxyPathError::EncodedSeparator
        });
    }
    if (level > 0 && s.contains(&b'/')) || has_encoded_separator(s) {
        return Err(ProxyPathError::EncodedSeparator);
    }
    Ok(())
}

/// Checks one raw segment and every decoding of it, so that an upstream that decodes
/// twice (`%252e` → `%2e` → `.`) sees nothing the rules refuse either.
fn check_segment(raw: &[u8]) -> Result<(), ProxyPathError> {
    if raw.is_empty() {
        return Err(ProxyPathError::EmptySegment);
    }
    let mut current = raw.to_vec();
    for level in 0..4 {
        check_segment_level(&current, level)?;
        if !current.contains(&b'%') {
            return Ok(());
        }
        let decoded: Vec<u8> = percent_decode(&current).collect();
        if decoded == current {
            return Ok(());
        }
        current = decoded;
    }
    // Four levels of encoding is no legitimate client's doing.
    Err(ProxyPathError::EncodedSeparator)
}

/// Checks a raw (still percent-encoded) path as it follows `/v1/proxy/{connection_id}`:
/// empty, or `/` followed by segments separated by single slashes; a trailing slash is
/// kept.
pub fn check_proxy_path(raw_path: &str) -> Result<(), ProxyPathError> {
    let bytes = raw_path.as_bytes();
    if bytes.len() > MAX_PATH_LEN {
        return Err(ProxyPathError::TooLong);
    }
    if bytes.is_empty() {
        return Ok(());
    }
    if bytes.iter().any(|b| b.is_ascii_control()) {
        return Err(ProxyPathError::Control);
    }
    if bytes.contains(&b'\\') {
        return Err(ProxyPathError::Backslash);
    }
    // Non-ASCII bytes are outside pchar too.
    if !bytes.iter().all(|b| is_path_char(*b)) {
        return Err(ProxyPathError::Character);
    }
    if !valid_escapes(bytes) {
        return Err(ProxyPathError::BadEscape);
    }
    let Some(rest) = raw_path.strip_prefix('/') else {
        return Err(ProxyPathError::NoLeadingSlash);
    };
    if rest.is_empty() {
        return Ok(());
    }
    let rest = rest.strip_suffix('/').unwrap_or(rest);
    for segment in rest.split('/') {
        check_segment(segment.as_bytes())?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matrix_parameters_on_a_dot_segment_are_refused_at_every_level_of_decoding() {
        for path in [
            "/..;",
            "/.;",
            "/..;jsessionid=x",
            "/a/..;/b",
            "/a/.;/b",
            "/..%3b",
            "/.%3B",
            "/..%3Bx=1",
            "/..%253b",
            "/..%25253b",
            "/%2e%2e;x",
            "/%2E%2E%3B",
            "/.%2e%3b",
            "/%252e%252e%253b/x",
            "/%2e;",
        ] {
            assert!(check_proxy_path(path).is_err(), "{path:?}");
        }
        // A segment that only starts with dots, or whose parameters hold them, is not a
        // dot segment.
        for path in [
            "/...;x",
            "/.well-known;x",
            "/..a;b",
            "/a;..",
            "/a;.",
            "/a%3b..",
            "/;x",
            "/a;",
            "/x..;",
            "/v1;..;/b",
        ] {
            assert_eq!(check_proxy_path(path), Ok(()), "{path:?}");
        }
    }
}
