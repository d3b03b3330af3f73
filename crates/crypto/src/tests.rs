//! The crypto invariants of docs/design.md ("The key hierarchy"), as tests.

use std::collections::HashSet;

use tokenwarden_domain::{Password, VaultId};

use crate::envelope::nonce_of;
use crate::*;

fn vault() -> VaultId {
    VaultId::generate(&mut rand::thread_rng())
}

#[test]
fn data_key_round_trips_a_plaintext() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let b = Binding::new(Purpose::TokenSet, &v, "conn-1");
    let ct = dek.encrypt(&b, b"hello tokens");
    assert_eq!(ct.len(), b"hello tokens".len() + ENVELOPE_OVERHEAD);
    assert_eq!(dek.decrypt(&b, &ct).unwrap().as_bytes(), b"hello tokens");
}

#[test]
fn any_flipped_byte_fails_to_decrypt() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let b = Binding::new(Purpose::TokenSet, &v, "conn-1");
    let ct = dek.encrypt(&b, b"secret token set");
    for i in 0..ct.len() {
        for bit in [0x01, 0x80] {
            let mut bad = ct.clone();
            bad[i] ^= bit;
            assert!(dek.decrypt(&b, &bad).is_err(), "flip at byte {i} accepted");
        }
    }
}

#[test]
fn a_ciphertext_moved_to_another_row_column_or_vault_fails() {
    let v = vault();
    let other_vault = vault();
    let dek = DataKey::generate(KeyId(1));
    let ct = dek.encrypt(&Binding::new(Purpose::TokenSet, &v, "conn-1"), b"x");
    let elsewhere = [
        Binding::new(Purpose::TokenSet, &v, "conn-2"),
        Binding::new(Purpose::ClientSecret, &v, "conn-1"),
        Binding::new(Purpose::TokenSet, &other_vault, "conn-1"),
    ];
    for b in &elsewhere {
        assert_eq!(
            dek.decrypt(b, &ct).unwrap_err(),
            CryptoError::Decrypt,
            "{b:?}"
        );
    }
}

#[test]
fn a_ciphertext_whose_context_changed_fails() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let ct = dek.encrypt(
        &Binding::new(Purpose::TokenSet, &v, "conn-1").within("app_a"),
        b"x",
    );
    assert!(
        dek.decrypt(
            &Binding::new(Purpose::TokenSet, &v, "conn-1").within("app_a"),
            &ct
        )
        .is_ok()
    );
    assert!(
        dek.decrypt(
            &Binding::new(Purpose::TokenSet, &v, "conn-1").within("app_b"),
            &ct
        )
        .is_err()
    );
    assert!(
        dek.decrypt(&Binding::new(Purpose::TokenSet, &v, "conn-1"), &ct)
            .is_err()
    );
    // Field boundaries are length-prefixed: moving bytes between object and context fails.
    assert!(
        dek.decrypt(&Binding::new(Purpose::TokenSet, &v, "conn-1app_a"), &ct)
            .is_err()
    );
}

#[test]
fn the_wrong_key_fails() {
    let v = vault();
    let b = Binding::new(Purpose::TokenSet, &v, "c");
    let ct = DataKey::generate(KeyId(1)).encrypt(&b, b"x");
    assert!(DataKey::generate(KeyId(1)).decrypt(&b, &ct).is_err());
    // A key of another generation is refused from the header alone.
    assert!(DataKey::generate(KeyId(2)).decrypt(&b, &ct).is_err());
}

#[test]
fn truncated_input_fails() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let b = Binding::new(Purpose::TokenSet, &v, "c");
    let ct = dek.encrypt(&b, b"some plaintext");
    for len in 0..ct.len() {
        assert!(
            dek.decrypt(&b, &ct[..len]).is_err(),
            "length {len} accepted"
        );
    }
}

#[test]
fn a_million_encryptions_never_repeat_a_nonce() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let b = Binding::new(Purpose::TokenSet, &v, "c");
    let mut seen = HashSet::with_capacity(1_000_000);
    for _ in 0..1_000_000 {
        let ct = dek.encrypt(&b, b"");
        let nonce: [u8; 24] = nonce_of(&ct).try_into().unwrap();
        assert!(seen.insert(nonce), "repeated nonce");
    }
}

#[test]
fn a_slot_opens_only_with_its_kek_and_binding() {
    let v = vault();
    let dek = DataKey::generate(KeyId(3));
    let key = ApiKey::generate();
    let b = Binding::new(Purpose::ApiKeySlot, &v, key.id().as_str());
    let slot = key.derive().kek.wrap(&dek, &b);
    let opened = key.derive().kek.unwrap(&b, &slot).unwrap();
    assert_eq!(opened.expose_secret(), dek.expose_secret());
    assert_eq!(opened.id(), KeyId(3));
    assert!(ApiKey::generate().derive().kek.unwrap(&b, &slot).is_err());
    let other = Binding::new(Purpose::PasswordSlot, &v, key.id().as_str());
    assert!(key.derive().kek.unwrap(&other, &slot).is_err());
}

#[test]
fn a_password_slot_opens_with_the_password_only() {
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let kdf = PasswordKdf::new_random();
    let pw = Password::parse("a long passphrase".into()).unwrap();
    let b = Binding::new(Purpose::PasswordSlot, &v, "acc");
    let slot = kdf.derive(&pw).unwrap().kek.wrap(&dek, &b);
    assert!(kdf.derive(&pw).unwrap().kek.unwrap(&b, &slot).is_ok());
    let wrong = Password::parse("a long passphrasf".into()).unwrap();
    assert!(kdf.derive(&wrong).unwrap().kek.unwrap(&b, &slot).is_err());
}

#[test]
fn sealed_token_sets_open_with_the_private_key_and_binding_only() {
    let v = vault();
    let (sk, pk) = SealingPrivateKey::generate(KeyId(1));
    let b = Binding::new(Purpose::SealedTokenSet, &v, "conn-1");
    let sealed = pk.seal(&b, b"{\"access_token\":\"x\"}").unwrap();
    assert_eq!(
        sk.open(&b, &sealed).unwrap().as_bytes(),
        b"{\"access_token\":\"x\"}"
    );
    let (other_sk, _) = SealingPrivateKey::generate(KeyId(1));
    assert!(other_sk.open(&b, &sealed).is_err());
    assert!(
        sk.open(
            &Binding::new(Purpose::SealedTokenSet, &v, "conn-2"),
            &sealed
        )
        .is_err()
    );
    let mut flipped = sealed.clone();
    let last = flipped.len() - 1;
    flipped[last] ^= 1;
    assert!(sk.open(&b, &flipped).is_err());
    for len in 0..sealed.len() {
        assert!(sk.open(&b, &sealed[..len]).is_err());
    }
    // The private key survives its round trip through the DEK.
    let dek = DataKey::generate(KeyId(1));
    let pb = Binding::new(Purpose::SealingPrivateKey, &v, v.as_str());
    let stored = dek.encrypt(&pb, &sk.to_bytes());
    let restored =
        SealingPrivateKey::from_bytes(KeyId(1), dek.decrypt(&pb, &stored).unwrap().as_bytes())
            .unwrap();
    assert!(restored.open(&b, &sealed).is_ok());
    assert_eq!(restored.public_key().to_bytes(), pk.to_bytes());
}

#[test]
fn master_keys_parse_from_hex_and_base64_and_fingerprint_stably() {
    let hex = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
    let a = MasterKey::parse(hex).unwrap();
    let b = MasterKey::parse("ABEiM0RVZneImaq7zN3u/wARIjNEVWZ3iJmqu8zd7v8=").unwrap();
    assert_eq!(a.fingerprint(), b.fingerprint());
    assert!(MasterKey::parse("too short").is_err());
    assert!(MasterKey::parse(&hex[..62]).is_err());
    let v = vault();
    let dek = DataKey::generate(KeyId(1));
    let bind = Binding::new(Purpose::MasterSlot, &v, v.as_str());
    let slot = a.kek().wrap(&dek, &bind);
    assert!(b.kek().unwrap(&bind, &slot).is_ok());
}

#[test]
fn debug_of_every_secret_type_prints_no_secret() {
    let dek = DataKey::generate(KeyId(1));
    let dek_hex: String = dek
        .expose_secret()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let dek_dbg = format!("{dek:?}");
    assert!(!dek_dbg.contains(&dek_hex));
    assert!(!dek_dbg.contains(&format!("{:?}", dek.expose_secret())));

    let key = ApiKey::generate();
    let material = key.derive();
    let secret_part = &key.expose_secret()[21..];
    for dbg in [
        format!("{key:?}"),
        format!("{material:?}"),
        format!("{:?}", material.kek),
    ] {
        assert!(!dbg.contains(secret_part), "{dbg}");
        assert!(
            !dbg.contains(&format!("{:?}", material.lookup_hash.as_bytes())),
            "{dbg}"
        );
    }

    let master = MasterKey::from_bytes([7; 32]);
    assert!(!format!("{master:?}").contains("7, 7"));
    let (sk, _) = SealingPrivateKey::generate(KeyId(1));
    assert!(!format!("{sk:?}").contains(&format!("{:?}", sk.to_bytes().as_slice())));
    let pw = PasswordKdf::new_random()
        .derive(&Password::parse("hunter22hunter22".into()).unwrap())
        .unwrap();
    assert!(!format!("{pw:?}").contains(&format!("{:?}", pw.verifier.0)));
    let v = vault();
    let b = Binding::new(Purpose::TokenSet, &v, "c");
    let plain = dek
        .decrypt(&b, &dek.encrypt(&b, b"plaintext-canary"))
        .unwrap();
    let dbg = format!("{plain:?}");
    assert!(!dbg.contains("canary") && !dbg.contains("112"), "{dbg}");
}
