//! Staff access tokens: HS256 JWTs signed with the staff-token key, which is
//! never the link secret the mobile app holds.

use chrono::{DateTime, Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Marks a token as a staff token, so no other JWT we sign can stand in.
const STAFF_TOKEN_TYPE: &str = "staff";

/// Tolerated clock difference between instances for `nbf`.
const NBF_LEEWAY_SECS: i64 = 30;

#[derive(Debug, Serialize, Deserialize)]
pub struct StaffClaims {
    /// The user id.
    pub identity: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    /// The user's token version when issued; a bump revokes the token.
    pub ver: i64,
    pub typ: String,
}

pub struct StaffTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    lifetime: Duration,
}

impl StaffTokens {
    pub fn new(key: &secrecy::SecretString, lifetime: Duration) -> anyhow::Result<Self> {
        let bytes = key.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // Times are checked against the injectable clock below.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.validate_aud = false;
        validation.required_spec_claims.clear();
        Ok(Self {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            validation,
            lifetime,
        })
    }

    pub fn lifetime(&self) -> Duration {
        self.lifetime
    }

    pub fn issue_claims(
        &self,
        user_id: &str,
        token_version: i64,
        now: DateTime<Utc>,
    ) -> Result<String> {
        let claims = StaffClaims {
            identity: user_id.to_owned(),
            iat: now.timestamp(),
            nbf: now.timestamp(),
            exp: (now + self.lifetime).timestamp(),
            ver: token_version,
            typ: STAFF_TOKEN_TYPE.into(),
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(Error::internal)
    }

    /// Checks signature, algorithm, type and times. Whether the user still
    /// exists with the same token version is the caller's check.
    pub fn verify(&self, token: &str, now: DateTime<Utc>) -> Result<StaffClaims> {
        let invalid = || Error::Unauthorized("Invalid or expired token".into());
        let data = jsonwebtoken::decode::<StaffClaims>(token, &self.decoding, &self.validation)
            .map_err(|_| invalid())?;
        let claims = data.claims;
        let now = now.timestamp();
        if claims.typ != STAFF_TOKEN_TYPE || now >= claims.exp || claims.nbf > now + NBF_LEEWAY_SECS
        {
            return Err(invalid());
        }
        Ok(claims)
    }
}
