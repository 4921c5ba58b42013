//! Secrets: argon2id password hashes, random API tokens and their stored digests.
//!
//! Tokens are long random strings, so a fast keyed-free digest (BLAKE2b) is enough to store them:
//! unlike passwords they cannot be guessed from a dictionary. Passwords go through argon2id.

use argon2::Argon2;
use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use blake2::{Blake2b512, Digest};

#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    #[error("the system random source failed: {0}")]
    Random(String),
    #[error("password hashing failed: {0}")]
    Hash(String),
}

/// Fills `buf` from the operating system's random source.
pub fn fill_random(buf: &mut [u8]) -> Result<(), SecretError> {
    getrandom::fill(buf).map_err(|e| SecretError::Random(e.to_string()))
}

/// Compares two secrets in time independent of where they differ.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

/// An argon2id hash in PHC format (`$argon2id$v=19$…`), salted.
pub fn hash_password(password: &str) -> Result<String, SecretError> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| SecretError::Hash(e.to_string()))
}

/// Whether `password` matches the stored PHC hash. A malformed hash never matches.
pub fn verify_password(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(hash) => Argon2::default()
            .verify_password(password.as_bytes(), &hash)
            .is_ok(),
        Err(_) => false,
    }
}

/// A new API token: a recognisable prefix (so secret scanners and people can tell what it is)
/// and 256 random bits.
pub fn new_token(prefix: &str) -> Result<String, SecretError> {
    let mut bytes = [0u8; 32];
    fill_random(&mut bytes)?;
    Ok(format!("{prefix}_{}", hex(&bytes)))
}

/// The digest a token is stored and looked up by.
pub fn token_digest(token: &str) -> String {
    let digest = Blake2b512::digest(token.as_bytes());
    hex(&digest[..32])
}

/// A one-time password readable on a terminal: no look-alike characters.
pub fn new_password() -> Result<String, SecretError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut bytes = [0u8; 20];
    fill_random(&mut bytes)?;
    // 256 is not a multiple of the alphabet's size; the small bias does not matter at 20 chars
    // of a 55-letter alphabet (over 110 bits).
    Ok(bytes
        .iter()
        .map(|b| char::from(ALPHABET[usize::from(*b) % ALPHABET.len()]))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn password_hash_verifies_only_the_right_password() -> Result<(), SecretError> {
        let hash = hash_password("correct horse")?;
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password("correct horse", &hash));
        assert!(!verify_password("correct horsf", &hash));
        assert!(!verify_password("correct horse", "not a hash"));
        Ok(())
    }

    #[test]
    fn tokens_are_random_and_digests_stable() -> Result<(), SecretError> {
        let a = new_token("vgt")?;
        let b = new_token("vgt")?;
        assert_ne!(a, b);
        assert!(a.starts_with("vgt_") && a.len() == 4 + 64, "{a}");
        assert_eq!(token_digest(&a), token_digest(&a));
        assert_ne!(token_digest(&a), token_digest(&b));
        assert_eq!(token_digest(&a).len(), 64);
        let p = new_password()?;
        assert_eq!(p.chars().count(), 20);
        Ok(())
    }
}
