//! Searching stolen bytes for secrets: a SQLite file with its WAL and shared memory,
//! the encodings a secret may be stored in, and a search for many needles at once.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};

pub(crate) fn read_files(db_path: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut files = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db_path.display()));
        if let Ok(bytes) = std::fs::read(&path) {
            files.push((path, bytes));
        }
    }
    files
}

pub(crate) fn encodings(bytes: &[u8]) -> Vec<Vec<u8>> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        bytes.to_vec(),
        hex.clone().into_bytes(),
        hex.to_uppercase().into_bytes(),
        STANDARD.encode(bytes).into_bytes(),
        STANDARD_NO_PAD.encode(bytes).into_bytes(),
        URL_SAFE.encode(bytes).into_bytes(),
        URL_SAFE_NO_PAD.encode(bytes).into_bytes(),
    ]
}

/// Finds any needle (each at least 16 bytes) in any file: every 16-byte window of the
/// files is looked up among the needles' first 16 bytes, and a hit is confirmed whole.
pub(crate) fn find_any(files: &[(PathBuf, Vec<u8>)], needles: &[(String, Vec<u8>)]) -> Vec<String> {
    let mut by_prefix: HashMap<&[u8], Vec<&(String, Vec<u8>)>> = HashMap::new();
    for needle in needles {
        assert!(needle.1.len() >= 16, "{} is too short to search", needle.0);
        by_prefix.entry(&needle.1[..16]).or_default().push(needle);
    }
    let mut found = Vec::new();
    for (path, bytes) in files {
        for (i, window) in bytes.windows(16).enumerate() {
            if let Some(candidates) = by_prefix.get(window) {
                for (what, needle) in candidates {
                    if bytes[i..].starts_with(needle) {
                        found.push(format!("{what} at {} offset {i}", path.display()));
                    }
                }
            }
        }
    }
    found
}
