//! The server key: what encrypts the secrets the server itself must use while nobody is
//! present (webhook signing secrets), kept out of the database (docs/design.md, "Living
//! with the keys"), so that a stolen database alone can neither read those secrets nor
//! forge a delivery.
//!
//! It comes from a key file that the server creates beside its configuration on first
//! start: 64 hex digits, mode 0600, written to a temporary file and linked into place so
//! that an existing key is never overwritten, even by a second server starting at once.

use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use hkdf::Hkdf;
use secrecy::{ExposeSecret, SecretBox};
use sha2::Sha256;
use zeroize::Zeroizing;

use crate::envelope::{self, KeyId};
use crate::{Binding, CryptoError, random_bytes};

/// The key id in the envelopes a server key writes.
const SERVER_KEY_ID: KeyId = KeyId(1);

/// Why the key file cannot be used. Names the file and what to do, never its content.
#[derive(Debug, thiserror::Error)]
pub enum ServerKeyError {
    #[error("cannot {action} the server key file {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error(
        "the server key file {} is accessible to group or others (mode {mode:o}); run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    Permissions { path: PathBuf, mode: u32 },
    #[error("the server key file {} is not a regular file", path.display())]
    NotAFile { path: PathBuf },
    #[error(
        "the server key file {} must hold exactly 64 hex digits (32 bytes); restore it from a backup",
        path.display()
    )]
    Malformed { path: PathBuf },
}

/// 32 bytes that never enter the database. Zeroized on drop, redacted in `Debug`, not
/// `Clone`.
pub struct ServerKey(SecretBox<[u8; 32]>);

impl ServerKey {
    fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(SecretBox::new(Box::new(bytes)))
    }

    /// HKDF of the master key under a label of its own, so it equals no other key
    /// derived from the master key.
    pub fn from_master(master: &crate::MasterKey) -> Self {
        Self::from_bytes(master.expand(b"server-key"))
    }

    /// Reads the key file at `path`, or creates it with a new random key when it does
    /// not exist. Refuses a file that group or others can access, or that does not hold
    /// exactly 32 bytes in hex: a server must not run on a key it cannot trust.
    pub fn load_or_create(path: &Path) -> Result<Self, ServerKeyError> {
        match fs::metadata(path) {
            Ok(_) => Self::load(path),
            Err(err) if err.kind() == io::ErrorKind::NotFound => Self::create(path),
            Err(source) => Err(io_error("inspect", path, source)),
        }
    }

    fn load(path: &Path) -> Result<Self, ServerKeyError> {
        let meta = fs::metadata(path).map_err(|e| io_error("inspect", path, e))?;
        if !meta.is_file() {
            return Err(ServerKeyError::NotAFile {
                path: path.to_owned(),
            });
        }
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            return Err(ServerKeyError::Permissions {
                path: path.to_owned(),
                mode,
            });
        }
        let text = Zeroizing::new(fs::read(path).map_err(|e| io_error("read", path, e))?);
        let bytes = parse_hex(text.trim_ascii()).ok_or_else(|| ServerKeyError::Malformed {
            path: path.to_owned(),
        })?;
        Ok(Self::from_bytes(*bytes))
    }

    fn create(path: &Path) -> Result<Self, ServerKeyError> {
        let bytes = Zeroizing::new(random_bytes::<32>());
        let mut text = Zeroizing::new(String::with_capacity(65));
        for b in bytes.iter() {
            text.push(char::from(HEX[usize::from(b >> 4)]));
            text.push(char::from(HEX[usize::from(b & 0xf)]));
        }
        text.push('\n');

        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        let name = path.file_name().ok_or_else(|| ServerKeyError::NotAFile {
            path: path.to_owned(),
        })?;
        let suffix: String = random_bytes::<8>()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        let temp = dir.join(format!(".{}.{suffix}.tmp", name.to_string_lossy()));

        let written = write_new(&temp, text.as_bytes());
        // A hard link, unlike rename, fails when the target exists: a key that another
        // process created meanwhile is kept, never replaced.
        let linked = written.and_then(|()| fs::hard_link(&temp, path));
        // The temporary name is only a staging step; failing to remove it loses nothing.
        let _ = fs::remove_file(&temp);
        match linked {
            Ok(()) => {
                // Makes the new directory entry durable; best effort, the key is in place.
                if let Ok(d) = File::open(dir) {
                    let _ = d.sync_all();
                }
                Ok(Self::from_bytes(*bytes))
            }
            Err(err) if err.kind() == io::ErrorKind::AlreadyExists => Self::load(path),
            Err(source) => Err(io_error("create", path, source)),
        }
    }

    fn expand(&self, label: &[u8]) -> [u8; 32] {
        let hk = Hkdf::<Sha256>::new(Some(b"tokenwarden/server-key/v1"), self.0.expose_secret());
        let mut out = [0u8; 32];
        // 32 bytes is far below HKDF-SHA-256's 8160-byte limit, so expand cannot fail.
        let _ = hk.expand(label, &mut out);
        out
    }

    /// A public fingerprint (64 hex digits), to store so that the server can tell when
    /// it starts with another key than the one its secrets were encrypted under.
    pub fn fingerprint(&self) -> String {
        self.expand(b"fingerprint")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }

    /// Encrypts `plaintext` for the one place `binding` names (for a webhook secret:
    /// `Binding::new(Purpose::WebhookSecret, &vault_id, endpoint_id)`).
    pub fn encrypt(&self, binding: &Binding<'_>, plaintext: &[u8]) -> Vec<u8> {
        let key = Zeroizing::new(self.expand(b"aead"));
        envelope::encrypt(&key, SERVER_KEY_ID, binding, plaintext)
    }

    /// Opens what [`ServerKey::encrypt`] made under the same binding.
    pub fn decrypt(
        &self,
        binding: &Binding<'_>,
        ciphertext: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        if envelope::key_id_of(ciphertext)? != SERVER_KEY_ID {
            return Err(CryptoError::Decrypt);
        }
        let key = Zeroizing::new(self.expand(b"aead"));
        let plain = envelope::decrypt(&key, binding, ciphertext)?;
        Ok(Zeroizing::new(plain.as_bytes().to_vec()))
    }
}

impl fmt::Debug for ServerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServerKey([redacted])")
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn parse_hex(text: &[u8]) -> Option<Zeroizing<[u8; 32]>> {
    if text.len() != 64 {
        return None;
    }
    let digit = |c: u8| {
        char::from(c)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut bytes = Zeroizing::new([0u8; 32]);
    for (out, pair) in bytes.iter_mut().zip(text.chunks_exact(2)) {
        *out = (digit(pair[0])? << 4) | digit(pair[1])?;
    }
    Some(bytes)
}

/// Creates `path` (which must not exist) with mode 0600 and `content`, flushed to disk.
fn write_new(path: &Path, content: &[u8]) -> io::Result<()> {
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(content)?;
    file.sync_all()
}

fn io_error(action: &'static str, path: &Path, source: io::Error) -> ServerKeyError {
    ServerKeyError::Io {
        action,
        path: path.to_owned(),
        source,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_master_derived_key_differs_from_the_masters_other_derivations() {
        let m = crate::MasterKey::from_bytes([9; 32]);
        let k = super::ServerKey::from_master(&m);
        assert_eq!(
            k.fingerprint(),
            super::ServerKey::from_master(&crate::MasterKey::from_bytes([9; 32])).fingerprint()
        );
        assert_ne!(k.0.expose_secret(), &m.expand(b"slot-kek"));
        assert_ne!(k.0.expose_secret(), &m.fingerprint());
        assert_ne!(k.0.expose_secret(), &[9; 32]);
    }

    use tokenwarden_domain::VaultId;

    use super::*;
    use crate::Purpose;

    /// A fresh directory under the system temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new() -> Self {
            let suffix: String = random_bytes::<8>()
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            let dir = std::env::temp_dir().join(format!("tokenwarden-server-key-{suffix}"));
            fs::create_dir(&dir).unwrap();
            Self(dir)
        }

        fn key_path(&self) -> PathBuf {
            self.0.join("server.key")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn vault() -> VaultId {
        VaultId::generate(&mut rand::thread_rng())
    }

    fn key() -> ServerKey {
        ServerKey::from_bytes(random_bytes())
    }

    #[test]
    fn a_secret_round_trips_under_its_binding() {
        let (k, v) = (key(), vault());
        let b = Binding::new(Purpose::WebhookSecret, &v, "whe_1");
        let ct = k.encrypt(&b, b"webhook secret bytes");
        assert_eq!(
            ct.len(),
            b"webhook secret bytes".len() + crate::ENVELOPE_OVERHEAD
        );
        assert_eq!(
            k.decrypt(&b, &ct).unwrap().as_slice(),
            b"webhook secret bytes"
        );
    }

    #[test]
    fn a_ciphertext_moved_to_another_endpoint_vault_or_purpose_fails() {
        let (k, v, other) = (key(), vault(), vault());
        let ct = k.encrypt(&Binding::new(Purpose::WebhookSecret, &v, "whe_1"), b"s");
        for b in [
            Binding::new(Purpose::WebhookSecret, &v, "whe_2"),
            Binding::new(Purpose::WebhookSecret, &other, "whe_1"),
            Binding::new(Purpose::ClientSecret, &v, "whe_1"),
        ] {
            assert_eq!(
                k.decrypt(&b, &ct).unwrap_err(),
                CryptoError::Decrypt,
                "{b:?}"
            );
        }
    }

    #[test]
    fn another_server_key_or_altered_bytes_cannot_open_it() {
        let (k, v) = (key(), vault());
        let b = Binding::new(Purpose::WebhookSecret, &v, "whe_1");
        let ct = k.encrypt(&b, b"s");
        assert_eq!(key().decrypt(&b, &ct).unwrap_err(), CryptoError::Decrypt);
        for i in 0..ct.len() {
            let mut bad = ct.clone();
            bad[i] ^= 0x01;
            assert!(k.decrypt(&b, &bad).is_err(), "flip at byte {i} accepted");
        }
        assert_eq!(k.decrypt(&b, &ct[..3]).unwrap_err(), CryptoError::Malformed);
    }

    #[test]
    fn a_missing_key_file_is_created_0600_and_reloads_to_the_same_key() {
        let dir = TempDir::new();
        let path = dir.key_path();
        let created = ServerKey::load_or_create(&path).unwrap();

        let meta = fs::metadata(&path).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let text = fs::read_to_string(&path).unwrap();
        assert_eq!(text.len(), 65);
        assert!(text.trim_end().bytes().all(|b| HEX.contains(&b)));
        // Only the key file is left in the directory: no temporary file behind.
        assert_eq!(fs::read_dir(&dir.0).unwrap().count(), 1);

        let reloaded = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(reloaded.fingerprint(), created.fingerprint());
        let v = vault();
        let b = Binding::new(Purpose::WebhookSecret, &v, "whe_1");
        assert_eq!(
            reloaded
                .decrypt(&b, &created.encrypt(&b, b"s"))
                .unwrap()
                .as_slice(),
            b"s"
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            text,
            "the file was rewritten"
        );
    }

    #[test]
    fn an_existing_key_file_is_read_not_replaced() {
        let dir = TempDir::new();
        let path = dir.key_path();
        write_new(&path, format!("{}\n", "ab".repeat(32)).as_bytes()).unwrap();
        let loaded = ServerKey::load_or_create(&path).unwrap();
        assert_eq!(
            loaded.fingerprint(),
            ServerKey::from_bytes([0xab; 32]).fingerprint()
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{}\n", "ab".repeat(32))
        );
    }

    #[test]
    fn a_key_file_readable_by_group_or_others_is_refused() {
        let dir = TempDir::new();
        let path = dir.key_path();
        ServerKey::load_or_create(&path).unwrap();
        for mode in [0o640, 0o604, 0o644, 0o660] {
            fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
            let err = ServerKey::load_or_create(&path).unwrap_err();
            assert!(
                matches!(err, ServerKeyError::Permissions { mode: m, .. } if m == mode),
                "{mode:o}: {err:?}"
            );
            assert!(err.to_string().contains("chmod 600"));
        }
    }

    #[test]
    fn a_key_file_of_the_wrong_length_or_alphabet_is_refused_without_echoing_it() {
        let dir = TempDir::new();
        let path = dir.key_path();
        for content in [
            "ab".repeat(31),
            "ab".repeat(33),
            format!("{}zz", "ab".repeat(31)),
            String::new(),
        ] {
            let _ = fs::remove_file(&path);
            write_new(&path, content.as_bytes()).unwrap();
            let err = ServerKey::load_or_create(&path).unwrap_err();
            assert!(matches!(err, ServerKeyError::Malformed { .. }), "{err:?}");
            assert!(content.is_empty() || !err.to_string().contains(&content));
        }
    }

    #[test]
    fn a_directory_in_place_of_the_key_file_is_refused() {
        let dir = TempDir::new();
        let path = dir.key_path();
        fs::create_dir(&path).unwrap();
        assert!(matches!(
            ServerKey::load_or_create(&path).unwrap_err(),
            ServerKeyError::NotAFile { .. }
        ));
    }

    #[test]
    fn the_fingerprint_is_stable_hex_and_reveals_neither_key_nor_aead_key() {
        let k = ServerKey::from_bytes([7; 32]);
        let fp = k.fingerprint();
        assert_eq!(fp, ServerKey::from_bytes([7; 32]).fingerprint());
        assert_ne!(fp, ServerKey::from_bytes([8; 32]).fingerprint());
        assert_eq!(fp.len(), 64);
        assert_ne!(fp, "07".repeat(32));
        let aead_hex: String = k
            .expand(b"aead")
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_ne!(fp, aead_hex);
    }

    #[test]
    fn debug_prints_no_key() {
        let k = ServerKey::from_bytes([7; 32]);
        assert_eq!(format!("{k:?}"), "ServerKey([redacted])");
    }
}
