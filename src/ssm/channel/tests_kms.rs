//! KMS-encrypted sessions (§5): a client and an agent channel joined by a perfect in-memory
//! link, with a fake key service that binds the challenge into its "ciphertext blob" the way
//! KMS binds the encryption context.

use std::time::{Duration, Instant};

use base64::Engine;
use proptest::prelude::*;

use super::*;
use crate::ssm::payload::HandshakeResponse;

const KEY_ID: &str = "arn:aws:kms:us-east-1:111122223333:key/test";

fn key_bytes() -> Vec<u8> {
    (0..64u8).map(|i| i.wrapping_mul(7)).collect()
}

/// GenerateDataKey/Decrypt stand-in. `refuse` makes GenerateDataKey fail with that reason.
#[derive(Default)]
struct FakeKms {
    refuse: Option<String>,
    seen: Vec<KeyRequest>,
}

impl FakeKms {
    fn answer(&mut self, req: KeyRequest) -> Result<DataKey, String> {
        self.seen.push(req.clone());
        match req {
            KeyRequest::Generate { challenge, .. } => match &self.refuse {
                Some(r) => Err(r.clone()),
                None => DataKey::new(&key_bytes(), format!("ctx:{challenge:?}").into_bytes())
                    .map_err(|e| e.to_string()),
            },
            KeyRequest::Decrypt {
                ciphertext,
                challenge,
                ..
            } if ciphertext == format!("ctx:{challenge:?}").into_bytes() => {
                DataKey::new(&key_bytes(), ciphertext).map_err(|e| e.to_string())
            }
            KeyRequest::Decrypt { .. } => Err("InvalidCiphertextException".into()),
        }
    }
}

fn offer() -> KmsOffer {
    KmsOffer {
        key_id: KEY_ID.into(),
        challenge: [5; 16],
        proof: [9; 64],
    }
}

struct Pair {
    now: Instant,
    client: Channel,
    agent: Channel,
    kms: FakeKms,
    /// Frames the agent sent, in order (to look at the wire).
    agent_wire: Vec<Message>,
    client_events: Vec<Event>,
    agent_events: Vec<Event>,
    /// Rewrites a client frame before the agent sees it.
    tamper: Option<Box<dyn FnMut(Message) -> Message>>,
}

impl Pair {
    fn new(kms: FakeKms) -> Self {
        let now = Instant::now();
        let mut agent_cfg = Config::new(Role::Agent);
        agent_cfg.session_type = "Standard_Stream".into();
        agent_cfg.require_handshake = false;
        agent_cfg.kms = Some(offer());
        Self {
            now,
            client: Channel::new(Config::new(Role::Client), now),
            agent: Channel::new(agent_cfg, now),
            kms,
            agent_wire: vec![],
            client_events: vec![],
            agent_events: vec![],
            tamper: None,
        }
    }

    /// Moves frames and answers key requests until nothing moves.
    fn pump(&mut self) {
        loop {
            let mut moved = false;
            while let Some(f) = self.agent.poll_transmit() {
                let msg = Message::decode(&f).unwrap();
                self.agent_wire.push(msg);
                self.client.handle_frame(self.now, &f).unwrap();
                moved = true;
            }
            while let Some(f) = self.client.poll_transmit() {
                let mut msg = Message::decode(&f).unwrap();
                if let Some(t) = self.tamper.as_mut() {
                    msg = t(msg);
                }
                self.agent.handle_message(self.now, msg);
                moved = true;
            }
            while let Some(ev) = self.client.poll_event() {
                if let Event::KeyNeeded(req) = &ev {
                    let key = self.kms.answer(req.clone());
                    self.client.provide_key(self.now, key);
                }
                self.client_events.push(ev);
                moved = true;
            }
            while let Some(ev) = self.agent.poll_event() {
                if let Event::KeyNeeded(req) = &ev {
                    let key = self.kms.answer(req.clone());
                    self.agent.provide_key(self.now, key);
                }
                self.agent_events.push(ev);
                moved = true;
            }
            if !moved {
                return;
            }
            self.now += Duration::from_millis(1);
        }
    }

    fn agent_failure(&self) -> Option<String> {
        self.agent_events.iter().find_map(|e| match e {
            Event::HandshakeFailed(f) => Some(f.to_string()),
            _ => None,
        })
    }
}

fn read_all(ch: &mut Channel) -> Vec<u8> {
    let mut out = vec![];
    let mut buf = [0u8; 4096];
    loop {
        let n = ch.read(&mut buf);
        if n == 0 {
            return out;
        }
        out.extend_from_slice(&buf[..n]);
    }
}

#[test]
fn a_kms_handshake_completes_and_data_moves_sealed_both_ways() {
    let mut p = Pair::new(FakeKms::default());
    p.pump();
    assert!(p.client.is_ready() && p.agent.is_ready());
    let said = p.client_events.iter().find_map(|e| match e {
        Event::Ready {
            customer_message, ..
        } => Some(customer_message.clone()),
        _ => None,
    });
    assert_eq!(said.as_deref(), Some(ENCRYPTED_MESSAGE));
    // The challenge was acknowledged, so both KMS calls carry it in their context.
    let challenge = Some(base64::engine::general_purpose::STANDARD.encode([5u8; 16]));
    assert!(p.kms.seen.iter().all(|r| match r {
        KeyRequest::Generate { challenge: c, .. } | KeyRequest::Decrypt { challenge: c, .. } =>
            *c == challenge,
    }));

    let down = b"agent output that must not be on the wire";
    assert_eq!(p.agent.write(p.now, down), down.len());
    p.pump();
    assert_eq!(read_all(&mut p.client), down);
    let wire = p
        .agent_wire
        .iter()
        .find(|m| m.payload_type == PayloadType::Output)
        .unwrap();
    assert_eq!(wire.payload.len(), down.len() + OVERHEAD);
    assert!(!wire.payload.windows(6).any(|w| w == &down[..6]));

    let up = b"keystrokes";
    assert_eq!(p.client.write(p.now, up), up.len());
    p.pump();
    assert_eq!(read_all(&mut p.agent), up);
    assert_eq!(p.agent.stats().encrypted_sent, 1);
    assert_eq!(p.client.stats().decrypted_received, 1);
    assert_eq!(p.client.stats().encrypted_sent, 1);
    assert_eq!(p.agent.stats().decrypted_received, 1);
}

#[test]
fn a_wrong_answer_to_the_encryption_challenge_fails_the_session() {
    let mut p = Pair::new(FakeKms::default());
    // A well-formed answer under the right key, but not the agent's bytes.
    p.tamper = Some(Box::new(|mut m: Message| {
        if m.payload_type == PayloadType::EncChallengeResponse {
            let key = DataKey::new(&key_bytes(), vec![]).unwrap();
            let mut c = SessionCipher::new(&key, Role::Client, [1; 12]);
            let wrong = c.seal(&[8; 64]).unwrap();
            let b64 = base64::engine::general_purpose::STANDARD.encode(wrong);
            m.payload = Bytes::from(serde_json::json!({ "Challenge": b64 }).to_string());
        }
        m
    }));
    p.pump();
    assert!(!p.agent.is_ready());
    let failure = p.agent_failure().unwrap();
    assert!(failure.contains("does not match"), "{failure}");
}

#[test]
fn a_refused_generate_data_key_answers_the_action_failed_with_the_reason() {
    let reason = "kms:GenerateDataKey on key arn:x was refused: not allowed";
    let mut p = Pair::new(FakeKms {
        refuse: Some(reason.into()),
        ..FakeKms::default()
    });
    let responses = std::rc::Rc::new(std::cell::RefCell::new(vec![]));
    let seen = responses.clone();
    p.tamper = Some(Box::new(move |m: Message| {
        if m.payload_type == PayloadType::HandshakeResponse {
            seen.borrow_mut()
                .push(HandshakeResponse::from_bytes(&m.payload).unwrap());
        }
        m
    }));
    p.pump();
    let resp = responses.borrow().first().cloned().unwrap();
    let kms = resp
        .processed_client_actions
        .iter()
        .find(|a| a.action_type == KMS_ACTION)
        .unwrap();
    assert_eq!(
        kms.action_status,
        crate::ssm::payload::action_status::FAILED
    );
    assert_eq!(kms.error, reason);
    assert!(p.agent_failure().unwrap().contains(reason));
    assert!(!p.client.is_ready());
}

#[test]
fn a_key_the_agent_cannot_decrypt_fails_its_handshake_with_the_kms_reason() {
    let mut p = Pair::new(FakeKms::default());
    p.tamper = Some(Box::new(|mut m: Message| {
        if m.payload_type == PayloadType::HandshakeResponse {
            let text = String::from_utf8(m.payload.to_vec()).unwrap();
            // A blob generated under another context.
            let other = base64::engine::general_purpose::STANDARD.encode(b"ctx:None");
            let re = serde_json::from_str::<serde_json::Value>(&text).unwrap();
            let mut re = re;
            re["ProcessedClientActions"][1]["ActionResult"]["KMSCipherTextKey"] =
                serde_json::json!(other);
            m.payload = Bytes::from(re.to_string());
        }
        m
    }));
    p.pump();
    let failure = p.agent_failure().unwrap();
    assert!(failure.contains("InvalidCiphertextException"), "{failure}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]
    #[test]
    fn garbage_in_an_encrypted_payload_never_panics_nor_reaches_the_reader(
        payload in proptest::collection::vec(any::<u8>(), 0..200),
        ptype in prop_oneof![Just(PayloadType::Output), Just(PayloadType::StdErr), Just(PayloadType::ExitCode)],
    ) {
        let mut p = Pair::new(FakeKms::default());
        p.pump();
        prop_assert!(p.client.is_ready());
        let seq = p.agent_wire.iter().map(|m| m.sequence_number).max().unwrap_or(0) + 1;
        let msg = Message {
            message_type: crate::ssm::message::MessageType::OutputStreamData,
            schema_version: 1,
            created_date: 1,
            sequence_number: seq,
            flags: 0,
            message_id: uuid::Uuid::from_u128(0xfeed),
            payload_type: ptype,
            payload: Bytes::from(payload),
        };
        p.client.handle_message(p.now, msg);
        let mut buf = [0u8; 512];
        prop_assert_eq!(p.client.read_typed(&mut buf), None);
        prop_assert_eq!(p.client.stats().decrypt_failures, 1);
        let failed = std::iter::from_fn(|| p.client.poll_event())
            .any(|e| matches!(e, Event::EncryptionFailed(_)));
        prop_assert!(failed);
    }
}
