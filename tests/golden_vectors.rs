//! The worked byte examples of reference §11, produced by the official plugin's own serializer,
//! must encode and decode byte for byte.

use bytes::Bytes;
use session_proxy::ssm::message::{Message, MessageType, PayloadType};
use session_proxy::ssm::payload::{
    action_status, Acknowledge, Flag, HandshakeResponse, ProcessedClientAction,
};
use uuid::Uuid;

const CREATED: u64 = 1_700_000_000_000;

fn hex(s: &str) -> Vec<u8> {
    hex::decode(s).expect("valid hex in test vector")
}

fn msg(
    t: MessageType,
    seq: i64,
    flags: u64,
    id: &str,
    pt: PayloadType,
    payload: Vec<u8>,
) -> Message {
    Message {
        message_type: t,
        schema_version: 1,
        created_date: CREATED,
        sequence_number: seq,
        flags,
        message_id: Uuid::parse_str(id).expect("uuid"),
        payload_type: pt,
        payload: Bytes::from(payload),
    }
}

fn roundtrip(expected_hex: &str, m: &Message) {
    let want = hex(expected_hex);
    assert_eq!(hex::encode(m.to_bytes()), expected_hex, "encoding differs");
    assert_eq!(m.encoded_len(), want.len());
    let back = Message::decode(&want).expect("decodes");
    assert_eq!(&back, m, "decoding differs");
}

const EX1_KEYSTROKES: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe5680000000000000000000000000000000000a508b5f073f31b16dd01e56bff48483e1d887ce0f8672e4914d9000e801cd74ecd805dd9366c0bc42dc16adc0197dc2f00000001000000036c730d";
const EX2_ACK: &str = "0000007461636b6e6f776c65646765202020202020202020202020202020202020202020000000010000018bcfe568000000000000000000000000000000000344445555555555551111111122223333174559529a018e6f425a65eac9d1ecbd5d98d38d729b75881e5f647e0b773ed200000000000000b07b2241636b6e6f776c65646765644d65737361676554797065223a226f75747075745f73747265616d5f64617461222c2241636b6e6f776c65646765644d6573736167654964223a2230663165326433632d346235612d363937382d383739362d613562346333643265316630222c2241636b6e6f776c65646765644d65737361676553657175656e63654e756d626572223a352c22497353657175656e7469616c4d657373616765223a747275657d";
const EX3_FLAG_TERMINATE: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800000000000000000700000000000000008d7e6f5a4b3c2d1e5b4c3d2e1f0a4b9c433ebf5bc03dffa38536673207a21281612cef5faa9bc7a4d5b9be2fdb12cf1a0000000a0000000400000002";
const EX4_SIZE: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe56800000000000000000100000000000000008d7e6f5a4b3c2d1e5b4c3d2e1f0a4b9cedf7359c89077b608a6b3e8b19e63bbfc7aa724989a05ea371a9966a6e9db7cc00000003000000167b22636f6c73223a3132302c22726f7773223a34307d";
const EX5_HANDSHAKE_RESPONSE: &str = "00000074696e7075745f73747265616d5f64617461202020202020202020202020202020000000010000018bcfe5680000000000000000000000000000000000a508b5f073f31b16dd01e56bff48483ec15970f285b82fe29690a5c8f2ce9b2f4267eae1785947d095631a5cd98cfa4000000006000000937b22436c69656e7456657273696f6e223a22312e322e3635302e30222c2250726f636573736564436c69656e74416374696f6e73223a5b7b22416374696f6e54797065223a2253657373696f6e54797065222c22416374696f6e537461747573223a312c22416374696f6e526573756c74223a6e756c6c2c224572726f72223a22227d5d2c224572726f7273223a6e756c6c7d";

#[test]
fn example1_keystrokes_match_plugin_bytes() {
    let m = msg(
        MessageType::InputStreamData,
        0,
        0,
        "dd01e56b-ff48-483e-a508-b5f073f31b16",
        PayloadType::Output,
        b"ls\r".to_vec(),
    );
    roundtrip(EX1_KEYSTROKES, &m);
}

#[test]
fn example2_acknowledge_matches_plugin_bytes() {
    let ack = Acknowledge {
        message_type: "output_stream_data".into(),
        message_id: "0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0".into(),
        sequence_number: 5,
        is_sequential: true,
    };
    let m = msg(
        MessageType::Acknowledge,
        0,
        3,
        "11111111-2222-3333-4444-555555555555",
        PayloadType::Undefined,
        ack.to_bytes(),
    );
    roundtrip(EX2_ACK, &m);
    let back = Message::decode(&hex(EX2_ACK)).expect("decodes");
    assert_eq!(
        Acknowledge::from_bytes(&back.payload).expect("ack json"),
        ack
    );
}

#[test]
fn example3_terminate_flag_matches_plugin_bytes() {
    let m = msg(
        MessageType::InputStreamData,
        7,
        0,
        "5b4c3d2e-1f0a-4b9c-8d7e-6f5a4b3c2d1e",
        PayloadType::Flag,
        Flag::TerminateSession.to_bytes().to_vec(),
    );
    roundtrip(EX3_FLAG_TERMINATE, &m);
    let back = Message::decode(&hex(EX3_FLAG_TERMINATE)).expect("decodes");
    assert_eq!(
        Flag::from_bytes(&back.payload).expect("flag"),
        Flag::TerminateSession
    );
}

#[test]
fn example4_terminal_size_matches_plugin_bytes() {
    let m = msg(
        MessageType::InputStreamData,
        1,
        0,
        "5b4c3d2e-1f0a-4b9c-8d7e-6f5a4b3c2d1e",
        PayloadType::Size,
        br#"{"cols":120,"rows":40}"#.to_vec(),
    );
    roundtrip(EX4_SIZE, &m);
}

#[test]
fn example5_handshake_response_matches_plugin_bytes() {
    let resp = HandshakeResponse {
        client_version: "1.2.650.0".into(),
        processed_client_actions: vec![ProcessedClientAction {
            action_type: "SessionType".into(),
            action_status: action_status::SUCCESS,
            action_result: serde_json::Value::Null,
            error: String::new(),
        }],
        errors: None,
    };
    let m = msg(
        MessageType::InputStreamData,
        0,
        0,
        "dd01e56b-ff48-483e-a508-b5f073f31b16",
        PayloadType::HandshakeResponse,
        resp.to_bytes(),
    );
    roundtrip(EX5_HANDSHAKE_RESPONSE, &m);
    let back = Message::decode(&hex(EX5_HANDSHAKE_RESPONSE)).expect("decodes");
    assert_eq!(
        HandshakeResponse::from_bytes(&back.payload).expect("json"),
        resp
    );
}

#[test]
fn message_id_halves_are_swapped_on_the_wire() {
    let id = Uuid::parse_str("dd01e56b-ff48-483e-a508-b5f073f31b16").expect("uuid");
    assert_eq!(
        hex::encode(session_proxy::ssm::message::uuid_to_wire(&id)),
        "a508b5f073f31b16dd01e56bff48483e"
    );
}

#[test]
fn every_prefix_of_a_vector_needs_more_and_consumes_nothing() {
    for v in [
        EX1_KEYSTROKES,
        EX2_ACK,
        EX3_FLAG_TERMINATE,
        EX4_SIZE,
        EX5_HANDSHAKE_RESPONSE,
    ] {
        let b = hex(v);
        for n in 0..b.len() {
            assert_eq!(
                Message::parse(&b[..n]).expect("prefix is not an error"),
                None,
                "prefix {n}"
            );
        }
        let (_, used) = Message::parse(&b).expect("ok").expect("complete");
        assert_eq!(used, b.len());
    }
}

#[test]
fn corrupted_payload_is_rejected_by_digest() {
    let mut b = hex(EX1_KEYSTROKES);
    let last = b.len() - 1;
    b[last] ^= 1;
    assert_eq!(
        Message::decode(&b),
        Err(session_proxy::ssm::message::DecodeError::PayloadDigest)
    );
}
