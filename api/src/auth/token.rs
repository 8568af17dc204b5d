//! Stateless access tokens: `base64url(claims) "." base64url(HMAC-SHA256(claims))`.
//! The role travels in the token because it never changes after registration.

use std::time::Duration;

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD as B64};
use entity::prelude::Role;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub role: Role,
    /// Expiry, seconds since the Unix epoch.
    pub exp: i64,
}

#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("invalid token signature")]
    BadSignature,
    #[error("token expired")]
    Expired,
}

#[derive(Clone)]
pub struct TokenKeys {
    mac: HmacSha256,
    ttl: Duration,
}

impl TokenKeys {
    pub fn new(secret: &[u8], ttl: Duration) -> Self {
        Self {
            // HMAC takes keys of any length, so this cannot fail.
            mac: HmacSha256::new_from_slice(secret).unwrap_or_else(|_| unreachable!()),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub fn issue(&self, user: Uuid, role: Role) -> String {
        let claims = Claims {
            sub: user,
            role,
            exp: chrono::Utc::now().timestamp() + self.ttl.as_secs() as i64,
        };
        // Serialising a struct of a uuid, an enum and an integer cannot fail.
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap_or_default());
        let signature = B64.encode(self.sign(payload.as_bytes()));
        format!("{payload}.{signature}")
    }

    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        let (payload, signature) = token.split_once('.').ok_or(TokenError::Malformed)?;
        let signature = B64.decode(signature).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac.clone();
        mac.update(payload.as_bytes());
        mac.verify_slice(&signature)
            .map_err(|_| TokenError::BadSignature)?;
        let claims: Claims = B64
            .decode(payload)
            .ok()
            .and_then(|json| serde_json::from_slice(&json).ok())
            .ok_or(TokenError::Malformed)?;
        if claims.exp <= chrono::Utc::now().timestamp() {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }

    fn sign(&self, payload: &[u8]) -> Vec<u8> {
        let mut mac = self.mac.clone();
        mac.update(payload);
        mac.finalize().into_bytes().to_vec()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ttl: u64) -> TokenKeys {
        TokenKeys::new(&[7u8; 32], Duration::from_secs(ttl))
    }

    #[test]
    fn issued_tokens_verify_and_carry_their_claims() {
        let user = Uuid::now_v7();
        let claims = keys(60)
            .verify(&keys(60).issue(user, Role::Customer))
            .unwrap();
        assert_eq!((claims.sub, claims.role), (user, Role::Customer));
    }

    #[test]
    fn tampered_forged_and_garbage_tokens_are_rejected() {
        let token = keys(60).issue(Uuid::now_v7(), Role::Customer);
        let (payload, signature) = token.split_once('.').unwrap();
        let promoted = B64.encode(
            String::from_utf8(B64.decode(payload).unwrap())
                .unwrap()
                .replace("customer", "organizer"),
        );
        assert_eq!(
            keys(60).verify(&format!("{promoted}.{signature}")),
            Err(TokenError::BadSignature)
        );
        let other_key = TokenKeys::new(&[8u8; 32], Duration::from_secs(60));
        assert_eq!(other_key.verify(&token), Err(TokenError::BadSignature));
        assert_eq!(keys(60).verify("garbage"), Err(TokenError::Malformed));
        assert_eq!(keys(60).verify("a.b!"), Err(TokenError::Malformed));
    }

    #[test]
    fn expired_tokens_are_rejected() {
        let keys = keys(0);
        let token = keys.issue(Uuid::now_v7(), Role::Organizer);
        assert_eq!(keys.verify(&token), Err(TokenError::Expired));
    }
}
