//! AES-256-GCM of KMS-encrypted sessions (reference §5). The 64-byte KMS data key splits into
//! one key per direction: `K[0..32]` agent→client, `K[32..64]` client→agent. The wire form of
//! an encrypted payload is `nonce(12) ‖ ciphertext ‖ tag(16)`, no associated data.
//!
//! Nonces are a counter from a random start (the agent's scheme: three little-endian u32 words
//! incremented with carry). The start comes from the caller: this module reads no OS RNG.
//! Key material is zeroized on drop and never shown by `Debug`.

use std::fmt;

use aes_gcm::aead::array::Array;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use zeroize::Zeroizing;

use super::Role;

/// Bytes an encrypted payload adds: the nonce in front and the tag behind.
pub const OVERHEAD: usize = NONCE_LEN + TAG_LEN;
/// Bytes of the data key KMS generates for a session (`NumberOfBytes` = 64).
pub const DATA_KEY_LEN: usize = 64;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const HALF: usize = DATA_KEY_LEN / 2;

/// Why a payload could not be sealed or opened, or a key could not be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CipherError {
    #[error("KMS returned a {0}-byte data key; a session key is 64 bytes")]
    KeyLength(usize),
    #[error("an encrypted payload of {0} bytes is shorter than its nonce and tag (28 bytes)")]
    TooShort(usize),
    #[error("an encrypted payload failed authentication (wrong key or altered data)")]
    Decrypt,
    #[error("a payload could not be encrypted")]
    Encrypt,
}

/// A session's KMS data key: the 64 plaintext bytes (zeroized on drop) and the ciphertext
/// blob KMS wraps them in (not secret: only KMS can open it).
pub struct DataKey {
    plaintext: Zeroizing<[u8; DATA_KEY_LEN]>,
    ciphertext: Vec<u8>,
}

impl DataKey {
    pub fn new(plaintext: &[u8], ciphertext: Vec<u8>) -> Result<Self, CipherError> {
        let mut key = Zeroizing::new([0u8; DATA_KEY_LEN]);
        if plaintext.len() != DATA_KEY_LEN {
            return Err(CipherError::KeyLength(plaintext.len()));
        }
        key.copy_from_slice(plaintext);
        Ok(Self {
            plaintext: key,
            ciphertext,
        })
    }

    /// The KMS ciphertext blob (`KMSCipherTextKey` in the HandshakeResponse).
    pub fn ciphertext(&self) -> &[u8] {
        &self.ciphertext
    }
}

/// Never the key bytes.
impl fmt::Debug for DataKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "DataKey(<redacted>, {}-byte blob)",
            self.ciphertext.len()
        )
    }
}

/// Seals what this end sends and opens what it receives.
pub struct SessionCipher {
    seal: Aes256Gcm,
    open: Aes256Gcm,
    nonce: [u32; 3],
}

impl fmt::Debug for SessionCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SessionCipher(<redacted>)")
    }
}

impl SessionCipher {
    /// The cipher of `role`'s end, its nonce counter starting at `nonce_start`.
    pub fn new(key: &DataKey, role: Role, nonce_start: [u8; NONCE_LEN]) -> Self {
        let (agent_to_client, client_to_agent) = key.plaintext.split_at(HALF);
        let (seal, open) = match role {
            Role::Agent => (agent_to_client, client_to_agent),
            Role::Client => (client_to_agent, agent_to_client),
        };
        // Both halves are 32 bytes by construction; `new_from_slice` cannot fail on them.
        let make = |k: &[u8]| Aes256Gcm::new(&Array::try_from(k).unwrap_or_default());
        let mut words = [0u32; 3];
        for (w, b) in words.iter_mut().zip(nonce_start.chunks_exact(4)) {
            *w = u32::from_le_bytes(b.try_into().unwrap_or_default());
        }
        Self {
            seal: make(seal),
            open: make(open),
            nonce: words,
        }
    }

    /// `plaintext` as `nonce ‖ ciphertext ‖ tag` under this end's sending key.
    pub fn seal(&mut self, plaintext: &[u8]) -> Result<Vec<u8>, CipherError> {
        let nonce = self.next_nonce();
        let mut out = Vec::with_capacity(plaintext.len() + OVERHEAD);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(plaintext);
        let body = out.get_mut(NONCE_LEN..).ok_or(CipherError::Encrypt)?;
        let tag = self
            .seal
            .encrypt_inout_detached(&Array::from(nonce), &[], body.into())
            .map_err(|_| CipherError::Encrypt)?;
        out.extend_from_slice(tag.as_slice());
        Ok(out)
    }

    /// Opens a payload the peer sealed under its sending key.
    pub fn open(&self, wire: &[u8]) -> Result<Vec<u8>, CipherError> {
        if wire.len() < OVERHEAD {
            return Err(CipherError::TooShort(wire.len()));
        }
        let (nonce, rest) = wire.split_at(NONCE_LEN);
        let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce = Array::try_from(nonce).map_err(|_| CipherError::Decrypt)?;
        let tag = Array::try_from(tag).map_err(|_| CipherError::Decrypt)?;
        let mut plain = body.to_vec();
        self.open
            .decrypt_inout_detached(&nonce, &[], plain.as_mut_slice().into(), &tag)
            .map_err(|_| CipherError::Decrypt)?;
        Ok(plain)
    }

    /// The current counter as 12 bytes, then the counter plus one (with carry).
    fn next_nonce(&mut self) -> [u8; NONCE_LEN] {
        let mut n = [0u8; NONCE_LEN];
        for (dst, w) in n.chunks_exact_mut(4).zip(self.nonce) {
            dst.copy_from_slice(&w.to_le_bytes());
        }
        for w in &mut self.nonce {
            *w = w.wrapping_add(1);
            if *w != 0 {
                break;
            }
        }
        n
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn key() -> DataKey {
        let k: Vec<u8> = (0..64).collect();
        DataKey::new(&k, vec![9; 10]).unwrap()
    }

    #[test]
    fn what_one_end_seals_only_the_other_end_opens() {
        let mut agent = SessionCipher::new(&key(), Role::Agent, [0; 12]);
        let mut client = SessionCipher::new(&key(), Role::Client, [7; 12]);
        let wire = agent.seal(b"hello").unwrap();
        assert_eq!(wire.len(), 5 + OVERHEAD);
        assert_eq!(client.open(&wire).unwrap(), b"hello");
        assert_eq!(agent.open(&wire), Err(CipherError::Decrypt), "own key");
        let back = client.seal(b"world").unwrap();
        assert_eq!(agent.open(&back).unwrap(), b"world");
    }

    #[test]
    fn nonces_count_up_with_carry_across_words() {
        let mut c = SessionCipher::new(
            &key(),
            Role::Agent,
            [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0],
        );
        let a = c.seal(b"").unwrap();
        let b = c.seal(b"").unwrap();
        assert_eq!(
            a.get(..12).unwrap(),
            [0xff, 0xff, 0xff, 0xff, 1, 0, 0, 0, 0, 0, 0, 0]
        );
        assert_eq!(b.get(..12).unwrap(), [0, 0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0]);
    }

    #[test]
    fn a_wrong_length_key_and_short_payloads_are_errors() {
        assert_eq!(
            DataKey::new(&[1; 32], vec![]).unwrap_err(),
            CipherError::KeyLength(32)
        );
        let c = SessionCipher::new(&key(), Role::Client, [0; 12]);
        assert_eq!(c.open(&[0; 27]), Err(CipherError::TooShort(27)));
        assert!(!format!("{:?}", key()).contains("1, 2, 3"));
    }
}
