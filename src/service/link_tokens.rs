//! Link JWTs: what the QR code holds. HS256 with the link secret, which the
//! mobile app holds too; it is never the staff-token key, so holding the
//! app's secret cannot forge a staff login.

use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The algorithm of every link we create, recorded on the link.
pub const LINK_ALGORITHM: &str = "HS256";

/// The claims of SPEC section 5. `sub` is the subject's name and
/// `birthdate` its `YYYY-MM-DD` birth date, for the app to show.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkClaims {
    pub jti: String,
    pub iss: String,
    pub aud: String,
    pub iat: i64,
    pub exp: i64,
    pub sub: String,
    pub birthdate: String,
}

pub struct LinkTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl LinkTokens {
    pub fn new(secret: &SecretString) -> anyhow::Result<Self> {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // Issuer, audience and times are checked against the stored link
        // and the injectable clock by the caller.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            validation,
        })
    }

    /// The same claims always give the same token, so a link's token can be
    /// re-created instead of stored.
    pub fn sign(&self, claims: &LinkClaims) -> Result<String> {
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &self.encoding)
            .map_err(Error::internal)
    }

    /// The claims if the token is an HS256 JWT signed with the link secret.
    pub fn verify(&self, token: &str) -> Option<LinkClaims> {
        jsonwebtoken::decode::<LinkClaims>(token, &self.decoding, &self.validation)
            .ok()
            .map(|data| data.claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims() -> LinkClaims {
        LinkClaims {
            jti: "abc".into(),
            iss: "https://idm.example".into(),
            aud: "https://idm.example".into(),
            iat: 1_700_000_000,
            exp: 1_700_086_400,
            sub: "Ada".into(),
            birthdate: "1980-01-02".into(),
        }
    }

    #[test]
    fn signing_is_deterministic_and_verifies() {
        let tokens = LinkTokens::new(&SecretString::from("k".repeat(32))).unwrap();
        let a = tokens.sign(&claims()).unwrap();
        assert_eq!(a, tokens.sign(&claims()).unwrap());
        assert_eq!(tokens.verify(&a), Some(claims()));
    }

    #[test]
    fn other_keys_and_algorithms_are_refused() {
        let tokens = LinkTokens::new(&SecretString::from("k".repeat(32))).unwrap();
        let other = LinkTokens::new(&SecretString::from("o".repeat(32))).unwrap();
        assert_eq!(tokens.verify(&other.sign(&claims()).unwrap()), None);
        let hs512 = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims(),
            &EncodingKey::from_secret("k".repeat(32).as_bytes()).unwrap(),
        )
        .unwrap();
        assert_eq!(tokens.verify(&hs512), None);
        assert_eq!(tokens.verify("not.a.jwt"), None);
    }
}
