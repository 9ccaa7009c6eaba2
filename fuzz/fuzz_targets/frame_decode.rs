//! Data-channel frame decoder (`ssm::message`) fed raw bytes.
//!
//! Pinned: `parse` never claims more bytes than it was given and agrees with `decode`; whatever
//! decodes re-encodes to a frame that decodes to the same fields (the decoder normalises
//! HeaderLength, padding and, for the lenient publication types, the digest, so the re-encoded
//! frame is compared field by field, not byte by byte), and a second encode is byte-identical.
#![no_main]

use libfuzzer_sys::fuzz_target;
use session_proxy::ssm::message::{Message, HEADER_SIZE, MAX_FRAME_LEN};

fuzz_target!(|data: &[u8]| {
    check_parse_agrees_with_decode(data);
    if let Ok(msg) = Message::decode(data) {
        check_round_trip(&msg);
    }
});

/// `parse` consumes a prefix of its input, and `decode` accepts exactly the inputs `parse`
/// consumes whole.
fn check_parse_agrees_with_decode(data: &[u8]) {
    let decoded = Message::decode(data);
    match Message::parse(data) {
        Ok(Some((msg, used))) => {
            assert!(
                used <= data.len(),
                "parse used {used} of {} bytes",
                data.len()
            );
            assert!(
                used <= MAX_FRAME_LEN,
                "frame of {used} bytes exceeds MAX_FRAME_LEN"
            );
            if used == data.len() {
                assert_eq!(
                    decoded,
                    Ok(msg),
                    "decode disagrees with parse on a whole frame"
                );
            } else {
                assert!(decoded.is_err(), "decode accepted trailing bytes");
                // The frame is self-delimiting: parsing just its bytes gives the same message.
                let again = data.get(..used).map(Message::decode);
                assert_eq!(again, Some(Ok(msg)), "frame prefix decodes differently");
            }
        }
        Ok(None) => assert!(decoded.is_err(), "decode accepted an incomplete frame"),
        Err(e) => assert_eq!(decoded, Err(e), "decode and parse report different errors"),
    }
}

fn check_round_trip(msg: &Message) {
    let wire = msg.to_bytes();
    assert_eq!(wire.len(), msg.encoded_len(), "encoded_len is wrong");
    assert_eq!(wire.len(), HEADER_SIZE + msg.payload.len());
    let back = match Message::decode(&wire) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded frame does not decode: {e}"),
    };
    assert_eq!(&back, msg, "fields changed across encode/decode");
    assert_eq!(
        back.to_bytes(),
        wire,
        "second encode differs from the first"
    );
}
