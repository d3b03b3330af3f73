//! The decoders of stored ciphertexts (crates/crypto/src/envelope.rs, sealing.rs):
//! `DataKey::decrypt`, `Kek::unwrap` (key slots) and `SealingPrivateKey::open`, which
//! read whatever bytes the database hands back.

use proptest::prelude::*;
use tokenwarden_crypto::{
    Binding, CryptoError, DataKey, ENVELOPE_OVERHEAD, Kek, KeyId, Purpose, SealingPrivateKey,
};
use tokenwarden_domain::VaultId;

use crate::harness::{Outcome, Target, arbitrary_bytes, ensure};

/// Header (5) + HPKE encapsulated key (32) + tag (16).
const SEALED_OVERHEAD: usize = 5 + 32 + 16;
const SEALING_KEY_ID: u32 = 3;

/// Fixed keys, so that the corpus can hold real ciphertexts made under them.
struct Keys {
    vault: VaultId,
    dek: DataKey,
    kek: Kek,
    sealing: SealingPrivateKey,
}

impl Keys {
    fn new() -> Self {
        Self {
            vault: VaultId::parse("vlt_fuzz0000000000000000").unwrap(),
            dek: DataKey::derive_from_secret(b"tokenwarden fuzz corpus", b"dek"),
            kek: Kek::from_candidate([7; 32]),
            sealing: SealingPrivateKey::from_bytes(KeyId(SEALING_KEY_ID), &[9; 32]).unwrap(),
        }
    }

    fn binding(&self, purpose: Purpose) -> Binding<'_> {
        Binding::new(purpose, &self.vault, "conn-1").within("app_fuzz")
    }
}

fn header(version: u8, key_id: u32) -> Vec<u8> {
    let mut h = vec![version];
    h.extend_from_slice(&key_id.to_be_bytes());
    h
}

/// Envelopes with a plausible header and a body of a length near every threshold the
/// decoders test, plus real ones with one byte changed.
fn structured() -> impl Strategy<Value = Vec<u8>> {
    let version = prop::sample::select(vec![0u8, 1, 2, 3, 255]);
    let key_id = prop_oneof![Just(0u32), Just(SEALING_KEY_ID), Just(1), any::<u32>()];
    let body_len = prop_oneof![0usize..80, Just(24 + 16 - 1), Just(24 + 16), Just(32 + 16)];
    prop_oneof![
        (version, key_id, body_len, any::<u8>()).prop_map(|(v, id, n, fill)| {
            let mut e = header(v, id);
            e.extend(std::iter::repeat_n(fill, n));
            e
        }),
        (
            any::<prop::sample::Index>(),
            any::<u8>(),
            0..3usize,
            arbitrary_bytes()
        )
            .prop_map(|(at, bit, kind, plain)| {
                let keys = Keys::new();
                let mut real = match kind {
                    0 => keys.dek.encrypt(&keys.binding(Purpose::TokenSet), &plain),
                    1 => keys.kek.wrap(&keys.dek, &keys.binding(Purpose::ApiKeySlot)),
                    _ => keys
                        .sealing
                        .public_key()
                        .seal(&keys.binding(Purpose::SealedTokenSet), &plain)
                        .unwrap(),
                };
                let i = at.index(real.len());
                real[i] ^= 1 << (bit % 8);
                real
            }),
        arbitrary_bytes(),
    ]
}

fn only_expected(result: &Result<impl Sized, CryptoError>, what: &str) -> Outcome {
    ensure(!matches!(result, Err(CryptoError::InvalidKey)), || {
        format!("{what}: a stored ciphertext made the key invalid")
    })
}

fn check(keys: &Keys, input: &[u8]) -> Outcome {
    let bad_header = |version: u8| input.len() < 5 || input[0] != version;

    let token_set = keys.binding(Purpose::TokenSet);
    let opened = keys.dek.decrypt(&token_set, input);
    only_expected(&opened, "DataKey::decrypt")?;
    if bad_header(1) {
        ensure(matches!(opened, Err(CryptoError::Malformed)), || {
            "an envelope without a version-1 header was not called malformed".into()
        })?;
    }
    if let Ok(plain) = &opened {
        ensure(
            plain.as_bytes().len() + ENVELOPE_OVERHEAD == input.len(),
            || "decrypted to the wrong length".into(),
        )?;
        ensure(input[1..5] == [0, 0, 0, 0], || {
            "opened under another key id".into()
        })?;
        // Any one bit flipped anywhere: the AEAD must refuse it.
        for i in 0..input.len() {
            let mut flipped = input.to_vec();
            flipped[i] ^= 0x20;
            ensure(keys.dek.decrypt(&token_set, &flipped).is_err(), || {
                format!("a bit flipped at {i} still decrypts")
            })?;
        }
        // Bound to its row: another object or purpose does not open it.
        let elsewhere = Binding::new(Purpose::TokenSet, &keys.vault, "conn-2").within("app_fuzz");
        ensure(keys.dek.decrypt(&elsewhere, input).is_err(), || {
            "opened under another row's binding".into()
        })?;
    }

    let slot = keys.kek.unwrap(&keys.binding(Purpose::ApiKeySlot), input);
    only_expected(&slot, "Kek::unwrap")?;
    if bad_header(1) {
        ensure(matches!(slot, Err(CryptoError::Malformed)), || {
            "a slot without a version-1 header was not called malformed".into()
        })?;
    }
    if let Ok(dek) = &slot {
        ensure(input.len() == ENVELOPE_OVERHEAD + 32, || {
            "a slot of the wrong size opened".into()
        })?;
        ensure(dek.id().0.to_be_bytes() == input[1..5], || {
            "the unwrapped key does not carry the slot's key id".into()
        })?;
    }

    let sealed = keys
        .sealing
        .open(&keys.binding(Purpose::SealedTokenSet), input);
    only_expected(&sealed, "SealingPrivateKey::open")?;
    if bad_header(2) {
        ensure(matches!(sealed, Err(CryptoError::Malformed)), || {
            "a sealed box without a version-2 header was not called malformed".into()
        })?;
    }
    if let Ok(plain) = &sealed {
        ensure(
            plain.as_bytes().len() + SEALED_OVERHEAD == input.len(),
            || "opened to the wrong length".into(),
        )?;
        ensure(input[1..5] == SEALING_KEY_ID.to_be_bytes(), || {
            "opened a box sealed to another key id".into()
        })?;
    }

    // Round trips, with the input as the plaintext.
    let envelope = keys.dek.encrypt(&token_set, input);
    let back = keys.dek.decrypt(&token_set, &envelope);
    ensure(back.as_ref().is_ok_and(|p| p.as_bytes() == input), || {
        "encrypt then decrypt did not give the plaintext back".into()
    })?;
    let boxed = keys
        .sealing
        .public_key()
        .seal(&keys.binding(Purpose::SealedTokenSet), input)
        .map_err(|e| proptest::test_runner::TestCaseError::fail(format!("seal: {e}")))?;
    let back = keys
        .sealing
        .open(&keys.binding(Purpose::SealedTokenSet), &boxed);
    ensure(back.as_ref().is_ok_and(|p| p.as_bytes() == input), || {
        "seal then open did not give the plaintext back".into()
    })?;
    Ok(())
}

#[test]
fn ciphertext_decoders_refuse_every_altered_or_foreign_envelope() {
    let keys = Keys::new();
    let plain = b"{\"access_token\":\"fuzz\"}";
    let target = Target::new(
        "ciphertext",
        &[
            b"\x01\0\0\0\0",
            b"\x02\0\0\0\x03",
            b"\x01",
            b"\x02",
            b"\0\0\0\0",
        ],
    )
    .seed(
        "fresh token set",
        keys.dek.encrypt(&keys.binding(Purpose::TokenSet), plain),
    )
    .seed(
        "fresh slot",
        keys.kek.wrap(&keys.dek, &keys.binding(Purpose::ApiKeySlot)),
    )
    .seed(
        "fresh sealed set",
        keys.sealing
            .public_key()
            .seal(&keys.binding(Purpose::SealedTokenSet), plain)
            .unwrap(),
    )
    .default_cases(1500);
    target.run(structured(), |input| check(&keys, input));
}

/// Ciphertexts written by an earlier build (`corpus/ciphertext/ok-*`) still open: the
/// stored format and the associated data do not drift.
#[test]
fn corpus_ciphertexts_from_earlier_builds_still_open() {
    let keys = Keys::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ciphertext");
    let read = |name: &str| std::fs::read(dir.join(name)).unwrap();
    let plain = keys
        .dek
        .decrypt(&keys.binding(Purpose::TokenSet), &read("ok-token-set"))
        .unwrap();
    assert_eq!(plain.as_bytes(), b"{\"access_token\":\"fuzz\"}");
    let dek = keys
        .kek
        .unwrap(&keys.binding(Purpose::ApiKeySlot), &read("ok-api-key-slot"))
        .unwrap();
    assert_eq!(dek.expose_secret(), keys.dek.expose_secret());
    let plain = keys
        .sealing
        .open(
            &keys.binding(Purpose::SealedTokenSet),
            &read("ok-sealed-token-set"),
        )
        .unwrap();
    assert_eq!(plain.as_bytes(), b"{\"access_token\":\"fuzz\"}");
}

/// Writes the `ok-*` corpus files; run once by hand after a deliberate format change
/// (`cargo test -p tokenwarden-fuzz --test fuzz -- --ignored write_ciphertext_corpus`).
#[test]
#[ignore = "writes corpus files"]
fn write_ciphertext_corpus() {
    let keys = Keys::new();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/ciphertext");
    let plain = b"{\"access_token\":\"fuzz\"}";
    std::fs::write(
        dir.join("ok-token-set"),
        keys.dek.encrypt(&keys.binding(Purpose::TokenSet), plain),
    )
    .unwrap();
    std::fs::write(
        dir.join("ok-api-key-slot"),
        keys.kek.wrap(&keys.dek, &keys.binding(Purpose::ApiKeySlot)),
    )
    .unwrap();
    std::fs::write(
        dir.join("ok-sealed-token-set"),
        keys.sealing
            .public_key()
            .seal(&keys.binding(Purpose::SealedTokenSet), plain)
            .unwrap(),
    )
    .unwrap();
}
