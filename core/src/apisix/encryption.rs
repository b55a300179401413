//! APISIX data encryption (`apisix/core/data_encryption.lua`): with a
//! keyring configured on the data plane, `encrypt_fields` of plugins and ssl
//! keys are stored as `base64(AES-CBC(key = keyring[0], IV = keyring[0][..16],
//! PKCS#7))`. The data plane decrypts with each keyring entry in turn. The
//! encryption is deterministic (the IV is fixed), so an unchanged value
//! encrypts to the same bytes and is never rewritten.
//!
//! APISIX settings: `apisix.data_encryption.keyring` must hold the same
//! first key as `--data-encryption-keyring`; without a keyring here, values
//! are written in plain text, which needs
//! `apisix.data_encryption.enable_encrypt_fields: false` on the data planes
//! (ssl keys in PEM work either way).

use aes::cipher::{BlockEncryptMut, KeyIvInit, block_padding::Pkcs7};
use base64::Engine;

/// The keys, first one used to encrypt. Each is 16 (AES-128) or 32 bytes (AES-256).
#[derive(Clone, PartialEq, Eq)]
pub struct Keyring {
    keys: Vec<Vec<u8>>,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        write!(f, "Keyring({} keys)", self.keys.len())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("the data-encryption keyring is empty")]
    Empty,
    #[error(
        "data-encryption key #{index} is {len} bytes; APISIX needs 16 (AES-128) or 32 (AES-256)"
    )]
    BadLength { index: usize, len: usize },
}

impl Keyring {
    pub fn new(keys: &[String]) -> Result<Keyring, KeyringError> {
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        for (index, key) in keys.iter().enumerate() {
            if !matches!(key.len(), 16 | 32) {
                return Err(KeyringError::BadLength {
                    index,
                    len: key.len(),
                });
            }
        }
        Ok(Keyring {
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        })
    }

    /// Encrypts with the first key, as APISIX's Admin API would.
    pub fn encrypt(&self, plaintext: &str) -> String {
        let key = &self.keys[0];
        let iv = &key[..16];
        let bytes = plaintext.as_bytes();
        let ciphertext = if key.len() == 16 {
            cbc::Encryptor::<aes::Aes128>::new_from_slices(key, iv)
                .expect("a 16-byte key and IV")
                .encrypt_padded_vec_mut::<Pkcs7>(bytes)
        } else {
            cbc::Encryptor::<aes::Aes256>::new_from_slices(key, iv)
                .expect("a 32-byte key and 16-byte IV")
                .encrypt_padded_vec_mut::<Pkcs7>(bytes)
        };
        base64::engine::general_purpose::STANDARD.encode(ciphertext)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_apisix_test_vector() {
        // t/node/data_encrypt.t: "bar" with key edd1c9f0985e76a2.
        let keyring = Keyring::new(&["edd1c9f0985e76a2".into()]).unwrap();
        assert_eq!(keyring.encrypt("bar"), "77+NmbYqNfN+oLm0aX5akg==");
        assert_eq!(keyring.encrypt("bar"), keyring.encrypt("bar"));
    }

    #[test]
    fn aes_256_keys_work_and_bad_lengths_are_refused() {
        let keyring = Keyring::new(&["0123456789abcdef0123456789abcdef".into()]).unwrap();
        assert_ne!(
            keyring.encrypt("bar"),
            Keyring::new(&["0123456789abcdef".into()])
                .unwrap()
                .encrypt("bar")
        );
        assert_eq!(
            Keyring::new(&["short".into()]),
            Err(KeyringError::BadLength { index: 0, len: 5 })
        );
        assert_eq!(Keyring::new(&[]), Err(KeyringError::Empty));
        assert!(!format!("{keyring:?}").contains("0123"));
    }
}
