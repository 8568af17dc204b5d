//! Stripe's webhook signature: the header `Stripe-Signature: t=<unix
//! seconds>,v1=<hex HMAC-SHA256 of "t.payload">` keyed with the whole
//! `whsec_…` secret. A signature is good when one `v1` matches (compared in
//! constant time) and `t` is within the tolerance of now, either way.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How far a signature's time may be from now (Stripe's own default).
pub const TOLERANCE_SECS: i64 = 300;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignatureError {
    #[error("no Stripe-Signature header")]
    Missing,
    #[error("the Stripe-Signature header has no timestamp or no v1 signature")]
    Malformed,
    #[error("the signature is more than {TOLERANCE_SECS} s from now")]
    OutOfTolerance,
    #[error("no signature matches")]
    Mismatch,
}

/// Checks `header` over `payload` at `now` (unix seconds).
pub fn verify(
    payload: &[u8],
    header: Option<&str>,
    secret: &str,
    now: i64,
) -> Result<(), SignatureError> {
    let header = header.ok_or(SignatureError::Missing)?;
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", value)) => timestamp = value.parse::<i64>().ok(),
            Some(("v1", value)) => {
                if let Ok(bytes) = hex::decode(value) {
                    signatures.push(bytes);
                }
            }
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or(SignatureError::Malformed)?;
    if signatures.is_empty() {
        return Err(SignatureError::Malformed);
    }
    if (now - timestamp).abs() > TOLERANCE_SECS {
        return Err(SignatureError::OutOfTolerance);
    }
    let expected = sign(payload, secret, timestamp);
    if signatures
        .iter()
        .any(|signature| bool::from(signature.as_slice().ct_eq(&expected)))
    {
        Ok(())
    } else {
        Err(SignatureError::Mismatch)
    }
}

/// The raw HMAC a `v1` entry carries (hex-encoded in the header).
pub fn sign(payload: &[u8], secret: &str, timestamp: i64) -> Vec<u8> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac.finalize().into_bytes().to_vec()
}

/// A whole header, as Stripe would send it: for tests and tools.
pub fn header(payload: &[u8], secret: &str, timestamp: i64) -> String {
    format!(
        "t={timestamp},v1={}",
        hex::encode(sign(payload, secret, timestamp))
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_800_000_000;

    #[test]
    fn a_signature_made_with_the_secret_is_good_and_anything_else_is_not() {
        let body = br#"{"id":"evt_1"}"#;
        let good = header(body, SECRET, NOW);
        assert_eq!(verify(body, Some(&good), SECRET, NOW + 10), Ok(()));
        assert_eq!(
            verify(body, None, SECRET, NOW),
            Err(SignatureError::Missing)
        );
        assert_eq!(
            verify(body, Some("v1=00"), SECRET, NOW),
            Err(SignatureError::Malformed)
        );
        assert_eq!(
            verify(b"{\"id\":\"evt_2\"}", Some(&good), SECRET, NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(body, Some(&good), "whsec_other", NOW),
            Err(SignatureError::Mismatch)
        );
        assert_eq!(
            verify(body, Some(&good), SECRET, NOW + TOLERANCE_SECS + 1),
            Err(SignatureError::OutOfTolerance)
        );
        // One good entry among several is enough (Stripe rolls secrets so).
        let both = format!(
            "t={NOW},v1={},{}",
            "ab".repeat(32),
            &good[good.find("v1").unwrap_or(0)..]
        );
        assert_eq!(verify(body, Some(&both), SECRET, NOW), Ok(()));
    }
}
