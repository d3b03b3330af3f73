//! `ApiKey::parse` (crates/crypto/src/api_key.rs) and `ApiKeyId::parse` (domain): what
//! an `Authorization: Bearer` header can put in front of them.

use proptest::prelude::*;
use tokenwarden_crypto::ApiKey;
use tokenwarden_domain::ApiKeyId;

use crate::harness::{Outcome, Target, arbitrary_bytes, ensure};

const BASE62: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const LEN: usize = 4 + 16 + 1 + 40 + 6;

/// The checksum as docs/design.md ("API keys") documents it, written out independently of the parser:
/// CRC32 of `twk_<id>_<secret>`, six base62 digits, most significant first.
fn documented_checksum(body: &str) -> String {
    let mut n = crc32(body.as_bytes());
    let mut digits = [0u8; 6];
    for d in digits.iter_mut().rev() {
        *d = BASE62[(n % 62) as usize];
        n /= 62;
    }
    String::from_utf8(digits.to_vec()).unwrap()
}

/// CRC-32/ISO-HDLC (the zlib one), bit by bit: slow and obviously right.
fn crc32(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// A key built from the documented format.
fn documented_key() -> impl Strategy<Value = String> {
    ("[a-z0-9]{16}", "[A-Za-z0-9]{40}").prop_map(|(id, secret)| {
        let body = format!("twk_{id}_{secret}");
        let sum = documented_checksum(&body);
        format!("{body}{sum}")
    })
}

/// Keys of the right shape, then damaged the ways a paste or a forger would.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        documented_key().prop_map(String::into_bytes),
        // One byte changed anywhere, to anything.
        (documented_key(), any::<prop::sample::Index>(), any::<u8>()).prop_map(|(k, i, b)| {
            let mut k = k.into_bytes();
            k[i.index(LEN)] = b;
            k
        }),
        // One character replaced by another base62 one (a typo).
        (documented_key(), 4..LEN, 0..62usize).prop_map(|(k, i, c)| {
            let mut k = k.into_bytes();
            k[i] = BASE62[c];
            k
        }),
        // The right length in bytes, but with a multi-byte character at a boundary.
        (
            documented_key(),
            prop::sample::select(vec![3usize, 19, 20, 21, 60, 61, 65])
        )
            .prop_map(|(k, i)| {
                let mut k = k.into_bytes();
                k.splice(i..i + 2, "é".bytes());
                k
            }),
        // Whitespace, case and prefix games around a valid key.
        (
            documented_key(),
            prop::sample::select(vec![" ", "\n", "\0", "Bearer "])
        )
            .prop_map(|(k, s)| format!("{s}{k}").into_bytes()),
        documented_key().prop_map(|k| k.to_uppercase().into_bytes()),
        documented_key().prop_map(|k| k.replacen("twk_", "TWK_", 1).into_bytes()),
        "[a-z0-9_]{0,70}".prop_map(String::into_bytes),
        arbitrary_bytes(),
    ]
}

fn check(input: &[u8]) -> Outcome {
    let text = String::from_utf8_lossy(input);
    let _ = ApiKeyId::parse(&text).map(|id| {
        assert_eq!(id.as_str(), text, "an id is its text");
    });
    match ApiKey::parse(&text) {
        Ok(key) => {
            ensure(key.expose_secret() == text, || {
                "the key is not its text".into()
            })?;
            ensure(text.len() == LEN, || {
                format!("accepted {} bytes", text.len())
            })?;
            ensure(key.id().as_str() == &text[4..20], || {
                "the id is not at 4..20".into()
            })?;
            let body = &text[..LEN - 6];
            ensure(documented_checksum(body) == text[LEN - 6..], || {
                "accepted a key whose checksum is not the documented one".into()
            })?;
            let debug = format!("{key:?}");
            ensure(!debug.contains(&text[21..LEN]), || {
                format!("Debug shows the secret: {debug}")
            })?;
            // Deterministic derivation: the same text gives the same lookup hash.
            let again = ApiKey::parse(&text).unwrap();
            ensure(
                again
                    .derive()
                    .lookup_hash
                    .matches(key.derive().lookup_hash.as_bytes()),
                || "the lookup hash differs between two parses".into(),
            )?;
            // Any one-character typo (another base62 character) is refused.
            for i in (4..LEN).filter(|&i| i != 20) {
                let mut typo = text.as_bytes().to_vec();
                let at = BASE62.iter().position(|&b| b == typo[i]).unwrap_or(0);
                typo[i] = BASE62[(at + 1 + i % 61) % 62];
                let typo = String::from_utf8(typo).unwrap();
                ensure(ApiKey::parse(&typo).is_err(), || {
                    format!("a typo at {i} was accepted")
                })?;
            }
        }
        Err(_) => {
            // What the documented format accepts, the parser must accept too.
            let shaped = text.len() == LEN
                && text.starts_with("twk_")
                && text.as_bytes()[20] == b'_'
                && text[4..20]
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
                && text[21..].bytes().all(|b| b.is_ascii_alphanumeric());
            ensure(
                !(shaped && documented_checksum(&text[..LEN - 6]) == text[LEN - 6..]),
                || "a key in the documented format was refused".into(),
            )?;
        }
    }
    Ok(())
}

#[test]
fn api_key_parser_accepts_exactly_the_documented_format() {
    let fresh = ApiKey::generate();
    Target::new(
        "api_key",
        &[
            b"twk_",
            b"_",
            b"0",
            b"z",
            b"Z",
            b"\xc3\xa9",
            b" ",
            b"Bearer ",
        ],
    )
    .seed("generated key", fresh.expose_secret().as_bytes())
    .default_cases(3000)
    .run(structured(), check);
}

#[test]
fn generated_keys_parse_back_to_the_same_id_and_material() {
    for _ in 0..64 {
        let key = ApiKey::generate();
        let text = key.expose_secret();
        let parsed = ApiKey::parse(text).unwrap();
        assert_eq!(parsed.id(), key.id());
        assert_eq!(documented_checksum(&text[..LEN - 6]), text[LEN - 6..]);
        assert!(
            parsed
                .derive()
                .lookup_hash
                .matches(key.derive().lookup_hash.as_bytes())
        );
    }
}
