//! Ticket codes a door can check without a network (SPEC §15).
//!
//! A code is the base64url (no padding) of 96 bytes:
//!
//! | bytes  | what |
//! |--------|------|
//! | 0..16  | the ticket's id (UUID, big-endian as written) |
//! | 16..32 | the event's id |
//! | 32..96 | Ed25519 signature over bytes 0..32 with the deployment's key |
//!
//! so 128 URL-safe characters. A scanner that has the event's public key
//! (`GET /events/{id}/checkin/key`: the raw 32 bytes, base64url) checks the
//! signature and that the event id is the door's; nothing else is needed.
//! Ed25519 signatures are deterministic: a ticket's code never changes.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use uuid::Uuid;

/// Characters in every code.
pub const CODE_LEN: usize = 128;
const SIGNED_LEN: usize = 32;
const RAW_LEN: usize = SIGNED_LEN + 64;

/// The deployment's signing key.
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("a ticket signing key is the base64url of 32 bytes")]
pub struct BadKey;

impl Signer {
    /// A new random key, as its base64url seed (for keeping).
    pub fn generate_seed() -> String {
        let mut seed = [0u8; 32];
        rand::fill(&mut seed);
        URL_SAFE_NO_PAD.encode(seed)
    }

    /// From a base64url seed (`TICKET_SIGNING_KEY`, or the one kept in the
    /// database).
    pub fn from_seed(seed: &str) -> Result<Self, BadKey> {
        let bytes = URL_SAFE_NO_PAD.decode(seed.trim()).map_err(|_| BadKey)?;
        let seed: [u8; 32] = bytes.try_into().map_err(|_| BadKey)?;
        Ok(Self {
            key: SigningKey::from_bytes(&seed),
        })
    }

    /// The public key as base64url of its raw 32 bytes.
    pub fn public_key(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.verifying_key().to_bytes())
    }

    pub fn code(&self, ticket_id: Uuid, event_id: Uuid) -> String {
        let mut raw = [0u8; RAW_LEN];
        raw[..16].copy_from_slice(ticket_id.as_bytes());
        raw[16..32].copy_from_slice(event_id.as_bytes());
        let signature = self.key.sign(&raw[..SIGNED_LEN]);
        raw[SIGNED_LEN..].copy_from_slice(&signature.to_bytes());
        URL_SAFE_NO_PAD.encode(raw)
    }

    /// The ticket a code names, if this key signed it for `event_id`.
    pub fn verify(&self, code: &str, event_id: Uuid) -> Option<Uuid> {
        verify(&self.key.verifying_key(), code, event_id)
    }
}

/// What a scanner does offline: the ticket id, if the code is well formed,
/// for `event_id`, and signed by `public_key`.
pub fn verify(public_key: &VerifyingKey, code: &str, event_id: Uuid) -> Option<Uuid> {
    if code.len() != CODE_LEN {
        return None;
    }
    let raw = URL_SAFE_NO_PAD.decode(code).ok()?;
    let raw: [u8; RAW_LEN] = raw.try_into().ok()?;
    let ticket_id = Uuid::from_bytes(raw[..16].try_into().ok()?);
    let signed_for = Uuid::from_bytes(raw[16..32].try_into().ok()?);
    if signed_for != event_id {
        return None;
    }
    let signature = Signature::from_bytes(&raw[SIGNED_LEN..].try_into().ok()?);
    public_key
        .verify_strict(&raw[..SIGNED_LEN], &signature)
        .ok()?;
    Some(ticket_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_verifies_for_its_event_and_key_and_nothing_else() {
        let signer = Signer::from_seed(&Signer::generate_seed()).unwrap();
        let (ticket, event) = (Uuid::now_v7(), Uuid::now_v7());
        let code = signer.code(ticket, event);
        assert_eq!(code.len(), CODE_LEN);
        assert!(
            code.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        assert_eq!(signer.code(ticket, event), code, "deterministic");
        assert_eq!(signer.verify(&code, event), Some(ticket));
        assert_eq!(signer.verify(&code, Uuid::now_v7()), None, "another event");
        let other = Signer::from_seed(&Signer::generate_seed()).unwrap();
        assert_eq!(other.verify(&code, event), None, "another key");
        for at in [0, 40, 127] {
            let mut altered = code.clone().into_bytes();
            altered[at] = if altered[at] == b'A' { b'B' } else { b'A' };
            let altered = String::from_utf8(altered).unwrap();
            assert_eq!(signer.verify(&altered, event), None, "altered at {at}");
        }
        assert_eq!(signer.verify(&code[..127], event), None, "truncated");
        assert_eq!(signer.verify("garbage", event), None);
        assert_eq!(Signer::from_seed("short").map(|_| ()), Err(BadKey));
    }
}
