//! Source passwords at rest: AES-256-GCM (aws-lc-rs) under a key that never enters the database,
//! the logs or the pages.
//!
//! The key is `VIGIE_SOURCES_KEY` (64 hex digits) when set, else the key file
//! (`{data_dir}/sources.key`): 32 random bytes written with mode 0600 the first time a key is
//! needed (or 64 hex digits, for a file an operator wrote). Each password gets a fresh random
//! nonce; the source's name is the associated data, so a ciphertext copied onto another source's
//! row does not decrypt.

use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use vigie_core::secret::{fill_random, hex};

/// The environment variable holding the key (64 hex digits).
pub const KEY_ENV: &str = "VIGIE_SOURCES_KEY";
/// The key file's name under the data directory.
pub const KEY_FILE: &str = "sources.key";

const KEY_LEN: usize = 32;

/// Why a password could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("{KEY_ENV} must be 64 hexadecimal digits (a 256-bit key)")]
    BadEnvKey,
    #[error("the key file {0} must hold 32 bytes or 64 hexadecimal digits")]
    BadKeyFile(String),
    #[error("cannot read or create the key file {0}: {1}")]
    KeyFile(String, String),
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("encryption failed")]
    Seal,
    /// The key changed (file replaced, other variable) or the stored value was altered.
    #[error(
        "the stored password cannot be decrypted: the sources key (VIGIE_SOURCES_KEY or the key file) is not the one it was saved with, or the stored value was altered; enter the password again"
    )]
    Open,
}

/// A 256-bit key; its bytes are never printed.
#[derive(Clone)]
pub struct SecretKey([u8; KEY_LEN]);

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(…)")
    }
}

impl SecretKey {
    pub fn from_bytes(bytes: [u8; KEY_LEN]) -> SecretKey {
        SecretKey(bytes)
    }

    /// A key from 64 hex digits (surrounding blanks ignored).
    pub fn from_hex(text: &str) -> Option<SecretKey> {
        let bytes = unhex(text.trim())?;
        Some(SecretKey(bytes.try_into().ok()?))
    }

    /// A fresh random key.
    pub fn random() -> Result<SecretKey, SecretsError> {
        let mut bytes = [0u8; KEY_LEN];
        fill_random(&mut bytes).map_err(|e| SecretsError::Random(e.to_string()))?;
        Ok(SecretKey(bytes))
    }

    fn aead(&self) -> Result<LessSafeKey, SecretsError> {
        UnboundKey::new(&AES_256_GCM, &self.0)
            .map(LessSafeKey::new)
            .map_err(|_| SecretsError::Seal)
    }
}

/// A password as stored: nonce and ciphertext (with its tag), both hex.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sealed {
    pub nonce: String,
    pub cipher: String,
}

/// Encrypts `password` for the source `name`, with a fresh random nonce.
pub fn seal(key: &SecretKey, name: &str, password: &str) -> Result<Sealed, SecretsError> {
    let mut nonce = [0u8; NONCE_LEN];
    fill_random(&mut nonce).map_err(|e| SecretsError::Random(e.to_string()))?;
    let mut data = password.as_bytes().to_vec();
    key.aead()?
        .seal_in_place_append_tag(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut data,
        )
        .map_err(|_| SecretsError::Seal)?;
    Ok(Sealed {
        nonce: hex(&nonce),
        cipher: hex(&data),
    })
}

/// Decrypts a password stored for the source `name`; a wrong key, another source's name or an
/// altered value are refused.
pub fn open(key: &SecretKey, name: &str, sealed: &Sealed) -> Result<String, SecretsError> {
    let nonce: [u8; NONCE_LEN] = unhex(&sealed.nonce)
        .and_then(|n| n.try_into().ok())
        .ok_or(SecretsError::Open)?;
    let mut data = unhex(&sealed.cipher).ok_or(SecretsError::Open)?;
    let plain = key
        .aead()?
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(name.as_bytes()),
            &mut data,
        )
        .map_err(|_| SecretsError::Open)?;
    String::from_utf8(plain.to_vec()).map_err(|_| SecretsError::Open)
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    let digit = |b: u8| char::from(b).to_digit(16);
    text.as_bytes()
        .chunks(2)
        .map(|p| u8::try_from(digit(p[0])? * 16 + digit(p[1])?).ok())
        .collect()
}

/// Where the key comes from, read (or created) on first need and then kept in memory.
pub struct KeyStore {
    env: Option<String>,
    file: PathBuf,
    cached: Mutex<Option<SecretKey>>,
}

impl std::fmt::Debug for KeyStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyStore")
            .field("from_env", &self.env.is_some())
            .field("file", &self.file)
            .finish()
    }
}

impl KeyStore {
    /// `env` is the value of `VIGIE_SOURCES_KEY`, if set; `file` the key file.
    pub fn new(env: Option<String>, file: PathBuf) -> KeyStore {
        KeyStore {
            env: env.filter(|v| !v.trim().is_empty()),
            file,
            cached: Mutex::new(None),
        }
    }

    /// From the process's `VIGIE_SOURCES_KEY`, else `{data_dir}/sources.key`.
    pub fn from_env(data_dir: &Path) -> KeyStore {
        KeyStore::new(std::env::var(KEY_ENV).ok(), data_dir.join(KEY_FILE))
    }

    /// A store that always gives `key` (tests).
    pub fn fixed(key: SecretKey) -> KeyStore {
        KeyStore {
            env: None,
            file: PathBuf::new(),
            cached: Mutex::new(Some(key)),
        }
    }

    /// The key: the variable's, else the file's (created when missing).
    pub fn key(&self) -> Result<SecretKey, SecretsError> {
        if let Ok(cached) = self.cached.lock()
            && let Some(key) = cached.as_ref()
        {
            return Ok(key.clone());
        }
        let key = match &self.env {
            Some(text) => SecretKey::from_hex(text).ok_or(SecretsError::BadEnvKey)?,
            None => load_or_create(&self.file)?,
        };
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(key.clone());
        }
        Ok(key)
    }
}

fn load_or_create(path: &Path) -> Result<SecretKey, SecretsError> {
    let shown = path.display().to_string();
    let io = |e: std::io::Error| SecretsError::KeyFile(shown.clone(), e.to_string());
    match std::fs::read(path) {
        Ok(bytes) => return parse_key_file(&bytes).ok_or(SecretsError::BadKeyFile(shown)),
        Err(e) if e.kind() == ErrorKind::NotFound => {}
        Err(e) => return Err(io(e)),
    }
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(io)?;
    }
    let key = SecretKey::random()?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    match options.open(path) {
        Ok(mut file) => {
            file.write_all(&key.0).map_err(io)?;
            file.sync_all().map_err(io)?;
            tracing::info!(file = %shown, "Created the key that encrypts source passwords; back it up with the database.");
            Ok(key)
        }
        // Another process created it first: use theirs.
        Err(e) if e.kind() == ErrorKind::AlreadyExists => {
            let bytes = std::fs::read(path).map_err(io)?;
            parse_key_file(&bytes).ok_or(SecretsError::BadKeyFile(shown))
        }
        Err(e) => Err(io(e)),
    }
}

fn parse_key_file(bytes: &[u8]) -> Option<SecretKey> {
    if let Ok(raw) = <[u8; KEY_LEN]>::try_from(bytes) {
        return Some(SecretKey(raw));
    }
    SecretKey::from_hex(std::str::from_utf8(bytes).ok()?)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn round_trip_with_fresh_nonces() {
        let key = SecretKey::random().unwrap();
        let a = seal(&key, "events", "s3cret-é").unwrap();
        let b = seal(&key, "events", "s3cret-é").unwrap();
        assert_ne!(a.nonce, b.nonce);
        assert_ne!(a.cipher, b.cipher);
        assert!(!a.cipher.contains(&hex("s3cret".as_bytes())));
        assert_eq!(open(&key, "events", &a).unwrap(), "s3cret-é");
        assert_eq!(open(&key, "events", &b).unwrap(), "s3cret-é");
    }

    #[test]
    fn wrong_key_refused() {
        let sealed = seal(&SecretKey::random().unwrap(), "events", "pw").unwrap();
        let other = SecretKey::random().unwrap();
        assert!(matches!(
            open(&other, "events", &sealed),
            Err(SecretsError::Open)
        ));
    }

    #[test]
    fn tampered_ciphertext_refused() {
        let key = SecretKey::random().unwrap();
        let mut sealed = seal(&key, "events", "password").unwrap();
        let first = sealed.cipher.remove(0);
        sealed
            .cipher
            .insert(0, if first == '0' { '1' } else { '0' });
        assert!(matches!(
            open(&key, "events", &sealed),
            Err(SecretsError::Open)
        ));
        assert!(matches!(
            open(
                &key,
                "events",
                &Sealed {
                    nonce: "zz".into(),
                    cipher: "00".into()
                }
            ),
            Err(SecretsError::Open)
        ));
    }

    #[test]
    fn name_swapped_refused() {
        let key = SecretKey::random().unwrap();
        let sealed = seal(&key, "events", "password").unwrap();
        assert!(matches!(
            open(&key, "other", &sealed),
            Err(SecretsError::Open)
        ));
    }

    #[test]
    fn key_file_created_once_with_mode_0600() {
        let dir = std::env::temp_dir().join(format!("vigie-key-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("sub").join(KEY_FILE);
        let first = KeyStore::new(None, path.clone()).key().unwrap();
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let again = KeyStore::new(None, path.clone()).key().unwrap();
        assert_eq!(first.0, again.0);
        std::fs::write(&path, b"short").unwrap();
        assert!(matches!(
            KeyStore::new(None, path.clone()).key(),
            Err(SecretsError::BadKeyFile(_))
        ));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn env_key_wins_and_is_checked() {
        let hex_key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
        let ks = KeyStore::new(Some(hex_key.into()), PathBuf::from("/nonexistent/x"));
        assert_eq!(ks.key().unwrap().0[1], 0x11);
        let bad = KeyStore::new(Some("abc".into()), PathBuf::from("/nonexistent/x"));
        assert!(matches!(bad.key(), Err(SecretsError::BadEnvKey)));
        assert!(!format!("{:?}", ks.key().unwrap()).contains("0011"));
    }
}
