//! NATS messages: any bytes a (compromised) collector can publish. The
//! decoder must refuse what is too large, of another version or
//! malformed, and what it accepts must re-encode to bytes that decode to
//! the same envelope (compared as bytes: a forged score may be NaN).
#![no_main]
use daisi::messages::Envelope;
use libfuzzer_sys::fuzz_target;

const MAX: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Ok(env) = Envelope::decode(data, MAX) else {
        return;
    };
    let once = env.encode();
    let back = Envelope::decode(&once, usize::MAX).expect("an encoded envelope decodes");
    assert_eq!(
        back.encode(),
        once,
        "encode(decode(encode(x))) == encode(x)"
    );
});
