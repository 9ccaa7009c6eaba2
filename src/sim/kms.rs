//! A simulated KMS API on the simulator's HTTP port (AWS JSON 1.1, `X-Amz-Target:
//! TrentService.GenerateDataKey` / `TrentService.Decrypt`, botocore's shapes), and the
//! simulated agent's [`KeyService`] over it.
//!
//! A ciphertext blob is `version ‖ key-id length (u16) ‖ key id ‖ nonce ‖ sealed data key`,
//! sealed under a per-process master key with the key id and the encryption context as
//! associated data. So, as in KMS, Decrypt with any other context fails
//! (`InvalidCiphertextException`), and keys the simulator does not hold are
//! `NotFoundException`.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use aes_gcm::aead::array::Array;
use aes_gcm::{AeadInOut, Aes256Gcm, KeyInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::sim::aws_error::{kind, ApiError};
use crate::ssm::channel::{DataKey, KeyRequest};
use crate::ssm::driver::BoxFuture;
use crate::ssm::kms::{
    KeyService, KmsError, CONTEXT_CHALLENGE, CONTEXT_SESSION_ID, CONTEXT_TARGET_ID,
};

/// `X-Amz-Target` prefix of the KMS service.
pub const TARGET_PREFIX: &str = "TrentService.";
/// Operations answered.
pub const OPERATIONS: [&str; 2] = ["GenerateDataKey", "Decrypt"];
const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
/// GenerateDataKey's NumberOfBytes limits (the KMS model).
const MAX_DATA_KEY: usize = 1024;

/// The simulator's KMS: the keys it holds and its master key. Clones share them.
#[derive(Clone)]
pub struct Kms(Arc<Mutex<Inner>>);

struct Inner {
    master: Aes256Gcm,
    keys: BTreeSet<String>,
}

impl Default for Kms {
    fn default() -> Self {
        let master: [u8; 32] = rand::random();
        Self(Arc::new(Mutex::new(Inner {
            master: Aes256Gcm::new(&Array::from(master)),
            keys: BTreeSet::new(),
        })))
    }
}

impl std::fmt::Debug for Kms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Kms(<redacted>)")
    }
}

/// The context as sealing sees it: sorted `key=value` pairs, NUL-separated.
fn canonical(key_id: &str, context: &BTreeMap<String, String>) -> Vec<u8> {
    let mut aad = key_id.as_bytes().to_vec();
    for (k, v) in context {
        aad.push(0);
        aad.extend_from_slice(k.as_bytes());
        aad.push(b'=');
        aad.extend_from_slice(v.as_bytes());
    }
    aad
}

impl Kms {
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Holds `key_id` (an ARN), so requests may name it.
    pub fn add_key(&self, key_id: &str) {
        self.lock().keys.insert(key_id.to_owned());
    }

    /// The ARN of a held key named by its ARN or by its bare id (the part after `key/`).
    fn resolve(&self, name: &str) -> Result<String, ApiError> {
        let inner = self.lock();
        let found = inner
            .keys
            .iter()
            .find(|k| *k == name || k.rsplit_once("key/").is_some_and(|(_, id)| id == name));
        found.cloned().ok_or_else(|| {
            ApiError::new(kind::KMS_NOT_FOUND, format!("Key '{name}' does not exist"))
        })
    }

    /// GenerateDataKey: `n` random bytes, and the blob that only this context opens.
    pub fn generate(
        &self,
        key_name: &str,
        n: usize,
        context: &BTreeMap<String, String>,
    ) -> Result<(String, Vec<u8>, Vec<u8>), ApiError> {
        let key_id = self.resolve(key_name)?;
        let plain: Vec<u8> = (0..n).map(|_| rand::random::<u8>()).collect();
        let nonce: [u8; NONCE_LEN] = rand::random();
        let mut sealed = plain.clone();
        let aad = canonical(&key_id, context);
        let tag = self
            .lock()
            .master
            .encrypt_inout_detached(&Array::from(nonce), &aad, sealed.as_mut_slice().into())
            .map_err(|_| ApiError::new(kind::VALIDATION, "data key too long"))?;
        let id_len = u16::try_from(key_id.len())
            .map_err(|_| ApiError::new(kind::VALIDATION, "key id too long"))?;
        let mut blob = vec![BLOB_VERSION];
        blob.extend_from_slice(&id_len.to_be_bytes());
        blob.extend_from_slice(key_id.as_bytes());
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        blob.extend_from_slice(tag.as_slice());
        Ok((key_id, plain, blob))
    }

    /// Decrypt: the data key sealed in `blob`, if `context` is the one it was made with.
    pub fn decrypt(
        &self,
        blob: &[u8],
        context: &BTreeMap<String, String>,
    ) -> Result<(String, Vec<u8>), ApiError> {
        let invalid = || {
            let why = "The ciphertext is invalid, or its encryption context differs from the one it was made with.";
            ApiError::new(kind::KMS_INVALID_CIPHERTEXT, why)
        };
        let (&version, rest) = blob.split_first().ok_or_else(invalid)?;
        let (len, rest) = rest.split_at_checked(2).ok_or_else(invalid)?;
        let len = usize::from(u16::from_be_bytes(len.try_into().map_err(|_| invalid())?));
        let (key_id, rest) = rest.split_at_checked(len).ok_or_else(invalid)?;
        let (nonce, rest) = rest.split_at_checked(NONCE_LEN).ok_or_else(invalid)?;
        let body_len = rest.len().checked_sub(TAG_LEN).ok_or_else(invalid)?;
        let (body, tag) = rest.split_at(body_len);
        if version != BLOB_VERSION {
            return Err(invalid());
        }
        let key_id = std::str::from_utf8(key_id).map_err(|_| invalid())?;
        let key_id = self.resolve(key_id)?;
        let nonce = Array::try_from(nonce).map_err(|_| invalid())?;
        let tag = Array::try_from(tag).map_err(|_| invalid())?;
        let mut plain = body.to_vec();
        self.lock()
            .master
            .decrypt_inout_detached(
                &nonce,
                &canonical(&key_id, context),
                plain.as_mut_slice().into(),
                &tag,
            )
            .map_err(|_| invalid())?;
        Ok((key_id, plain))
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct GenerateIn {
    key_id: Option<String>,
    number_of_bytes: Option<i64>,
    key_spec: Option<String>,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct DecryptIn {
    ciphertext_blob: Option<String>,
    key_id: Option<String>,
    #[serde(default)]
    encryption_context: BTreeMap<String, String>,
}

/// Handles one KMS operation (routing, authentication and content type already checked).
pub fn dispatch(kms: &Kms, op: &str, body: &[u8]) -> Result<Value, ApiError> {
    let serialization = |e: serde_json::Error| {
        ApiError::new(
            kind::SERIALIZATION,
            format!("Could not parse request body: {e}"),
        )
    };
    match op {
        "GenerateDataKey" => {
            let req: GenerateIn = serde_json::from_slice(body).map_err(serialization)?;
            generate_data_key(kms, req)
        }
        "Decrypt" => {
            let req: DecryptIn = serde_json::from_slice(body).map_err(serialization)?;
            decrypt(kms, req)
        }
        other => Err(ApiError::new(
            kind::UNKNOWN_OPERATION,
            format!("{TARGET_PREFIX}{other} is not an operation the simulator answers"),
        )),
    }
}

fn generate_data_key(kms: &Kms, req: GenerateIn) -> Result<Value, ApiError> {
    let Some(key_name) = req.key_id else {
        return Err(ApiError::validation(&[
            "Value null at 'keyId' failed to satisfy constraint: Member must not be null".into(),
        ]));
    };
    let n = match (req.number_of_bytes, req.key_spec.as_deref()) {
        (Some(n), None) => usize::try_from(n)
            .ok()
            .filter(|n| (1..=MAX_DATA_KEY).contains(n)),
        (None, Some("AES_256")) => Some(32),
        (None, Some("AES_128")) => Some(16),
        _ => None,
    };
    let Some(n) = n else {
        return Err(ApiError::new(
            kind::VALIDATION,
            "Please specify either number of bytes (1 to 1024) or key spec (AES_128 or AES_256).",
        ));
    };
    let (key_id, plain, blob) = kms.generate(&key_name, n, &req.encryption_context)?;
    Ok(json!({
        "CiphertextBlob": B64.encode(blob),
        "Plaintext": B64.encode(plain),
        "KeyId": key_id,
    }))
}

fn decrypt(kms: &Kms, req: DecryptIn) -> Result<Value, ApiError> {
    let blob = req
        .ciphertext_blob
        .and_then(|b| B64.decode(b).ok())
        .ok_or_else(|| {
            ApiError::validation(&[
                "Value at 'ciphertextBlob' failed to satisfy constraint: Member must be base64 and not null".into(),
            ])
        })?;
    let (key_id, plain) = kms.decrypt(&blob, &req.encryption_context)?;
    if let Some(asked) = req.key_id {
        if kms.resolve(&asked)? != key_id {
            return Err(ApiError::new(
                kind::KMS_INCORRECT_KEY,
                "The key ID in the request does not identify the key that encrypted the ciphertext.",
            ));
        }
    }
    Ok(json!({
        "KeyId": key_id,
        "Plaintext": B64.encode(plain),
        "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
    }))
}

/// The simulated agent's key service: Decrypt with the agent's own context (its session id
/// and instance id), as the real agent calls KMS.
pub struct AgentKeys {
    pub kms: Kms,
    pub session_id: String,
    pub instance_id: String,
}

impl KeyService for AgentKeys {
    fn fetch(&self, req: KeyRequest) -> BoxFuture<Result<DataKey, KmsError>> {
        let result = match req {
            KeyRequest::Decrypt {
                key_id,
                ciphertext,
                challenge,
            } => {
                let mut context = BTreeMap::from([
                    (CONTEXT_SESSION_ID.to_owned(), self.session_id.clone()),
                    (CONTEXT_TARGET_ID.to_owned(), self.instance_id.clone()),
                ]);
                if let Some(c) = challenge {
                    context.insert(CONTEXT_CHALLENGE.to_owned(), c);
                }
                self.kms
                    .decrypt(&ciphertext, &context)
                    .map_err(|e| KmsError::from_code("kms:Decrypt", &key_id, e.kind, &e.message))
                    .and_then(|(_, plain)| {
                        DataKey::new(&plain, ciphertext).map_err(|e| KmsError::Malformed {
                            operation: "kms:Decrypt",
                            message: e.to_string(),
                        })
                    })
            }
            KeyRequest::Generate { .. } => Err(KmsError::Unavailable),
        };
        Box::pin(async move { result })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:kms:us-east-1:111122223333:key/1234abcd";

    fn ctx(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn decrypt_opens_only_with_the_context_the_key_was_made_with() {
        let kms = Kms::default();
        kms.add_key(ARN);
        let c = ctx(&[("aws:ssm:SessionId", "s-1"), ("aws:ssm:TargetId", "i-1")]);
        let (id, plain, blob) = kms.generate("1234abcd", 64, &c).unwrap();
        assert_eq!(id, ARN);
        assert_eq!(kms.decrypt(&blob, &c).unwrap().1, plain);
        let wrong = ctx(&[("aws:ssm:SessionId", "s-1"), ("aws:ssm:TargetId", "i-2")]);
        let e = kms.decrypt(&blob, &wrong).unwrap_err();
        assert_eq!(e.kind, kind::KMS_INVALID_CIPHERTEXT);
        for cut in 0..blob.len() {
            assert!(kms.decrypt(&blob[..cut], &c).is_err());
        }
    }

    #[test]
    fn unknown_keys_are_not_found() {
        let kms = Kms::default();
        kms.add_key(ARN);
        let e = kms.generate("arn:aws:kms:us-east-1:1:key/other", 64, &BTreeMap::new());
        assert_eq!(e.unwrap_err().kind, kind::KMS_NOT_FOUND);
        let other = Kms::default();
        other.add_key(ARN);
        let (_, _, blob) = other.generate(ARN, 64, &BTreeMap::new()).unwrap();
        // Another master key: the blob is not ours.
        assert!(kms.decrypt(&blob, &BTreeMap::new()).is_err());
    }
}
