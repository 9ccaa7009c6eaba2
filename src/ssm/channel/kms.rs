//! The KMSEncryption handshake action in both roles (reference §4.2, §4.3, §5), and the
//! sealing and opening of payloads once it is done.
//!
//! Neither role can answer at once: the client needs KMS GenerateDataKey, the agent KMS
//! Decrypt. The channel emits [`Event::KeyNeeded`](super::Event::KeyNeeded) and waits; the
//! caller runs the call and hands the result to [`Channel::provide_key`]. Then:
//! - client: HandshakeResponse with the ciphertext key, encryption on; answers the agent's
//!   EncChallengeRequest (8) by opening it with `K[0..32]` and sealing it again with `K[32..64]`;
//! - agent: EncChallengeRequest with 64 random bytes sealed, then on a matching
//!   EncChallengeResponse (9) HandshakeComplete with "This session is encrypted using AWS KMS."

use std::fmt;
use std::time::Instant;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::Bytes;
use serde_json::{json, Value};

use super::cipher::{CipherError, DataKey, SessionCipher};
use super::{Channel, Event, HandshakeFailure, Phase, Role};
use crate::ssm::message::{Message, PayloadType};
use crate::ssm::payload::{action_status, HandshakeRequest, HandshakeResponse};

/// The handshake action's name.
pub const KMS_ACTION: &str = "KMSEncryption";
/// What the agent tells the user once the session is encrypted.
pub const ENCRYPTED_MESSAGE: &str = "This session is encrypted using AWS KMS.";

/// The KMS call a channel waits for. `challenge` is the agent's random challenge when the
/// client acknowledged it: both ends then add `aws:ssm:RandomChallenge` to the context.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyRequest {
    /// Client: GenerateDataKey (64 bytes) under `key_id`.
    Generate {
        key_id: String,
        challenge: Option<String>,
    },
    /// Agent: Decrypt of the client's `ciphertext` blob.
    Decrypt {
        key_id: String,
        ciphertext: Vec<u8>,
        challenge: Option<String>,
    },
}

/// Agent role: what a KMS-encrypted session offers. The random values come from the caller
/// (the channel reads no OS RNG).
#[derive(Clone)]
pub struct KmsOffer {
    pub key_id: String,
    /// The handshake's `Challenge` (16 random bytes, sent base64).
    pub challenge: [u8; 16],
    /// The 64 random bytes of the EncChallengeRequest.
    pub proof: [u8; 64],
}

impl fmt::Debug for KmsOffer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "KmsOffer({})", self.key_id)
    }
}

/// Why an encrypted session cannot go on (the client side's view; an agent reports a
/// [`HandshakeFailure`] instead).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncryptionFailure {
    #[error("a {0} payload from the agent could not be decrypted: {1}")]
    Payload(&'static str, CipherError),
    #[error("the agent's encryption challenge could not be answered: {0}")]
    Challenge(String),
}

/// A KMS step in progress.
#[derive(Debug)]
pub(super) enum KmsWait {
    /// Client: the HandshakeResponse to send once GenerateDataKey answers.
    Generate {
        response: HandshakeResponse,
        challenge: Option<String>,
    },
    /// Agent: the client's answer is in; waiting for Decrypt of its key.
    Decrypt { client_version: String },
    /// Agent: EncChallengeRequest sent; waiting for the EncChallengeResponse.
    Challenged { client_version: String },
}

/// The KMSEncryption action of a HandshakeRequest as a key request, if it has a key id.
pub(super) fn generate_request(req: &HandshakeRequest) -> Option<KeyRequest> {
    let action = req
        .requested_client_actions
        .iter()
        .find(|a| a.action_type == KMS_ACTION)?;
    let p = &action.action_parameters;
    let key_id = p.get("KMSKeyId").and_then(Value::as_str)?.to_owned();
    let challenge = p
        .get("Challenge")
        .and_then(Value::as_str)
        .filter(|c| !c.is_empty())
        .map(str::to_owned);
    Some(KeyRequest::Generate { key_id, challenge })
}

/// The agent's KMSEncryption action parameters.
pub(super) fn offer_parameters(offer: &KmsOffer) -> Value {
    json!({"KMSKeyId": offer.key_id, "Challenge": B64.encode(offer.challenge)})
}

/// The name of a sealed payload type, for messages.
fn type_name(t: PayloadType) -> &'static str {
    match t {
        PayloadType::Output => "Output",
        PayloadType::StdErr => "StdErr",
        PayloadType::ExitCode => "ExitCode",
        _ => "stream",
    }
}

/// Payload types sealed by `role` when it sends them (§5 table).
fn sealed_by(role: Role, t: PayloadType) -> bool {
    match role {
        Role::Client => t == PayloadType::Output,
        Role::Agent => matches!(
            t,
            PayloadType::Output | PayloadType::StdErr | PayloadType::ExitCode
        ),
    }
}

impl Channel {
    /// Hands the channel the KMS result it asked for with [`Event::KeyNeeded`]. An `Err`
    /// carries the reason, sent to the agent (client role) or reported (agent role).
    pub fn provide_key(&mut self, now: Instant, key: Result<DataKey, String>) {
        self.latest = self.latest.max(now);
        match self.kms_wait.take() {
            Some(KmsWait::Generate {
                response,
                challenge,
            }) => self.answer_kms_action(now, response, challenge.is_some(), key),
            Some(KmsWait::Decrypt { client_version }) => {
                self.send_enc_challenge(now, client_version, key);
            }
            other => self.kms_wait = other,
        }
    }

    /// Client: the HandshakeResponse, its KMSEncryption action answered with the key or why
    /// there is none. Encryption is on from here, as in the plugin.
    fn answer_kms_action(
        &mut self,
        now: Instant,
        mut response: HandshakeResponse,
        acknowledge: bool,
        key: Result<DataKey, String>,
    ) {
        let kms = response
            .processed_client_actions
            .iter_mut()
            .find(|p| p.action_type == KMS_ACTION);
        match (kms, key) {
            (Some(p), Ok(key)) => {
                // ChallengeAcknowledgement true when a Challenge came: the agent then adds it to
                // the Decrypt context, as we did to GenerateDataKey's (§5).
                let result = json!({
                    "KMSCipherTextKey": B64.encode(key.ciphertext()),
                    "KMSCipherTextHash": null,
                    "ChallengeAcknowledgement": acknowledge,
                });
                p.action_status = action_status::SUCCESS;
                p.action_result = result;
                p.error.clear();
                let start = self.nonce_start();
                self.cipher = Some(SessionCipher::new(&key, Role::Client, start));
            }
            (Some(p), Err(reason)) => {
                p.action_status = action_status::FAILED;
                p.error = reason;
            }
            (None, _) => {}
        }
        self.transmit_stream(
            now,
            PayloadType::HandshakeResponse,
            Bytes::from(response.to_bytes()),
        );
    }

    /// Agent, after a successful HandshakeResponse: ask for the Decrypt of the client's key.
    pub(super) fn start_kms_decrypt(&mut self, now: Instant, resp: HandshakeResponse) {
        let Some(offer) = self.cfg.kms.as_ref() else {
            return;
        };
        let action = resp
            .processed_client_actions
            .iter()
            .find(|p| p.action_type == KMS_ACTION);
        let result = action.map(|p| &p.action_result);
        let blob = result
            .and_then(|r| r.get("KMSCipherTextKey"))
            .and_then(Value::as_str)
            .and_then(|b| B64.decode(b).ok());
        let Some(ciphertext) = blob else {
            return self.fail_handshake("the client sent no usable KMSCipherTextKey".into());
        };
        let acknowledged = result
            .and_then(|r| r.get("ChallengeAcknowledgement"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        let request = KeyRequest::Decrypt {
            key_id: offer.key_id.clone(),
            ciphertext,
            challenge: acknowledged.then(|| B64.encode(offer.challenge)),
        };
        self.kms_wait = Some(KmsWait::Decrypt {
            client_version: resp.client_version,
        });
        self.handshake_deadline = Some(now + self.cfg.handshake_timeout);
        self.events.push_back(Event::KeyNeeded(request));
    }

    /// Agent: with the key decrypted, seal the proof bytes and send them as the challenge.
    fn send_enc_challenge(
        &mut self,
        now: Instant,
        client_version: String,
        key: Result<DataKey, String>,
    ) {
        let key = match key {
            Ok(k) => k,
            Err(reason) => return self.fail_handshake(format!("KMS Decrypt failed: {reason}")),
        };
        let Some(proof) = self.cfg.kms.as_ref().map(|o| o.proof) else {
            return;
        };
        let start = self.nonce_start();
        let mut cipher = SessionCipher::new(&key, Role::Agent, start);
        let sealed = match cipher.seal(&proof) {
            Ok(s) => s,
            Err(e) => return self.fail_handshake(e.to_string()),
        };
        self.cipher = Some(cipher);
        let body = json!({"Challenge": B64.encode(sealed)}).to_string();
        self.transmit_stream(now, PayloadType::EncChallengeRequest, Bytes::from(body));
        self.kms_wait = Some(KmsWait::Challenged { client_version });
        self.handshake_deadline = Some(now + self.cfg.handshake_timeout);
    }

    /// Client: open the agent's challenge and seal it again the other way.
    pub(super) fn on_enc_challenge_request(&mut self, now: Instant, msg: &Message) {
        let answer = self.reseal_challenge(&msg.payload);
        match answer {
            Ok(sealed) => {
                let body = json!({"Challenge": B64.encode(sealed)}).to_string();
                self.transmit_stream(now, PayloadType::EncChallengeResponse, Bytes::from(body));
            }
            Err(reason) => {
                let failure = EncryptionFailure::Challenge(reason);
                self.events.push_back(Event::EncryptionFailed(failure));
            }
        }
    }

    fn reseal_challenge(&mut self, payload: &[u8]) -> Result<Vec<u8>, String> {
        let raw = challenge_bytes(payload)?;
        let cipher = self
            .cipher
            .as_mut()
            .ok_or("it came before any data key was agreed")?;
        let plain = cipher.open(&raw).map_err(|e| e.to_string())?;
        cipher.seal(&plain).map_err(|e| e.to_string())
    }

    /// Agent: check the client's answer; a match completes the handshake.
    pub(super) fn on_enc_challenge_response(&mut self, now: Instant, msg: &Message) {
        let Some(KmsWait::Challenged { client_version }) = self.kms_wait.take() else {
            return;
        };
        let expected = self.cfg.kms.as_ref().map(|o| o.proof);
        let opened = challenge_bytes(&msg.payload).and_then(|raw| {
            let cipher = self.cipher.as_ref().ok_or("no key")?;
            cipher.open(&raw).map_err(|e| e.to_string())
        });
        match (opened, expected) {
            (Ok(got), Some(want)) if got == want => {
                self.handshake_deadline = None;
                self.complete_handshake(now, client_version, ENCRYPTED_MESSAGE);
            }
            (Ok(_), _) => self.fail_handshake(
                "the client's answer to the encryption challenge does not match".into(),
            ),
            (Err(e), _) => self.fail_handshake(format!(
                "the client's answer to the encryption challenge is unusable: {e}"
            )),
        }
    }

    fn fail_handshake(&mut self, reason: String) {
        self.phase = Phase::Failed;
        self.kms_wait = None;
        self.handshake_deadline = None;
        self.events
            .push_back(Event::HandshakeFailed(HandshakeFailure::Refused(reason)));
    }

    /// Seals an outgoing payload when encryption is on and `ptype` is sealed by this role.
    pub(super) fn seal_outgoing(&mut self, ptype: PayloadType, chunk: Bytes) -> Option<Bytes> {
        let role = self.cfg.role;
        let Some(cipher) = self.cipher.as_mut().filter(|_| sealed_by(role, ptype)) else {
            return Some(chunk);
        };
        match cipher.seal(&chunk) {
            Ok(s) => {
                self.stats.encrypted_sent += 1;
                Some(Bytes::from(s))
            }
            Err(e) => {
                let failure = EncryptionFailure::Payload(type_name(ptype), e);
                self.events.push_back(Event::EncryptionFailed(failure));
                None
            }
        }
    }

    /// Opens an incoming payload sealed by the peer. A payload that does not open is a
    /// protocol error reported as an event (never delivered as garbage).
    pub(super) fn open_incoming(&mut self, mut msg: Message) -> Option<Message> {
        let peer = match self.cfg.role {
            Role::Client => Role::Agent,
            Role::Agent => Role::Client,
        };
        let Some(cipher) = self
            .cipher
            .as_ref()
            .filter(|_| sealed_by(peer, msg.payload_type))
        else {
            return Some(msg);
        };
        match cipher.open(&msg.payload) {
            Ok(plain) => {
                self.stats.decrypted_received += 1;
                msg.payload = Bytes::from(plain);
                Some(msg)
            }
            Err(e) => {
                self.stats.decrypt_failures += 1;
                let failure = EncryptionFailure::Payload(type_name(msg.payload_type), e);
                self.events.push_back(Event::EncryptionFailed(failure));
                None
            }
        }
    }

    /// A random-looking nonce start from the channel's id stream (seeded by the caller).
    fn nonce_start(&mut self) -> [u8; 12] {
        let id = self.next_id();
        let mut n = [0u8; 12];
        n.copy_from_slice(id.as_bytes().get(..12).unwrap_or(&[0; 12]));
        n
    }
}

/// The base64 `Challenge` of an EncChallengeRequest/Response payload.
fn challenge_bytes(payload: &[u8]) -> Result<Vec<u8>, String> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| e.to_string())?;
    let text = v
        .get("Challenge")
        .and_then(Value::as_str)
        .ok_or("no Challenge field")?;
    B64.decode(text).map_err(|e| e.to_string())
}
