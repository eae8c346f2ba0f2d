//! The run's secrets in the shared store: the first instance to start
//! puts its keys there, and every instance adopts what it finds, so a
//! token signed by one instance verifies on any other.

use std::collections::HashMap;

use super::{SharedStore, Unavailable};
use crate::auth::csrf::CsrfKey;
use crate::auth::jwt::JwtKeys;
use crate::fingerprint::common::hex;
use crate::fingerprint::decode_hex;
use crate::tls::TlsMaterial;

/// The keys every instance must share.
#[derive(Clone, Debug)]
pub struct SharedKeys {
    /// Signs access tokens.
    pub jwt: JwtKeys,
    /// Signs CSRF tokens.
    pub csrf: CsrfKey,
    /// Signs companion cookies.
    pub companion: CsrfKey,
    /// Seals the sensor's nonces.
    pub sensor: CsrfKey,
    /// Seals clearances.
    pub clearance: CsrfKey,
    /// Salts the served records, so every instance serves the same ones.
    pub salt: u64,
    /// The HTTPS listeners' CA and certificate, so a client trusts one CA.
    pub tls: TlsMaterial,
}

impl SharedStore {
    /// Offers `mine` as the run's keys and returns the run's keys: `mine`
    /// if no instance offered before, the earlier ones otherwise.
    pub async fn adopt_keys(&self, mine: &SharedKeys) -> Result<SharedKeys, Unavailable> {
        let offer = [
            ("jwt_kid", mine.jwt.kid().to_owned()),
            ("jwt", hex(mine.jwt.secret())),
            ("csrf", hex(&mine.csrf.bytes())),
            ("companion", hex(&mine.companion.bytes())),
            ("sensor", hex(&mine.sensor.bytes())),
            ("clearance", hex(&mine.clearance.bytes())),
            ("salt", mine.salt.to_string()),
            ("tls_ca", mine.tls.ca_pem.clone()),
            ("tls_cert", mine.tls.server_pem.0.clone()),
            ("tls_key", mine.tls.server_pem.1.clone()),
        ];
        let mut pipe = redis::pipe();
        pipe.atomic();
        for (field, value) in &offer {
            pipe.cmd("HSETNX")
                .arg(self.key("keys"))
                .arg(*field)
                .arg(value)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        self.keys().await
    }

    /// The run's keys as stored now.
    pub async fn keys(&self) -> Result<SharedKeys, Unavailable> {
        let all: HashMap<String, String> = redis::cmd("HGETALL")
            .arg(self.key("keys"))
            .query_async(&mut self.conn())
            .await?;
        let bytes = |f: &str| {
            all.get(f)
                .and_then(|h| decode_hex(h))
                .ok_or_else(|| Unavailable(format!("the stored key `{f}` is missing or not hex")))
        };
        let key = |f: &str| {
            let b = bytes(f)?;
            <[u8; 32]>::try_from(b.as_slice())
                .map(CsrfKey::from_bytes)
                .map_err(|_| Unavailable(format!("the stored key `{f}` is not 32 bytes")))
        };
        let kid = all.get("jwt_kid").cloned().unwrap_or_default();
        let text = |f: &str| {
            all.get(f)
                .cloned()
                .ok_or_else(|| Unavailable(format!("the stored key `{f}` is missing")))
        };
        let salt = text("salt")?
            .parse()
            .map_err(|_| Unavailable("the stored salt is not a number".into()))?;
        let tls = TlsMaterial::from_pem(text("tls_ca")?, (text("tls_cert")?, text("tls_key")?))
            .map_err(|e| Unavailable(format!("the stored certificate: {e}")))?;
        Ok(SharedKeys {
            salt,
            tls,
            jwt: JwtKeys::from_secret(kid, &bytes("jwt")?),
            csrf: key("csrf")?,
            companion: key("companion")?,
            sensor: key("sensor")?,
            clearance: key("clearance")?,
        })
    }

    /// The id of the run's signing key as stored now; `None` when the
    /// store lost it.
    pub async fn signing_kid(&self) -> Result<Option<String>, Unavailable> {
        let kid = redis::cmd("HGET")
            .arg(self.key("keys"))
            .arg("jwt_kid")
            .query_async(&mut self.conn())
            .await?;
        Ok(kid)
    }

    /// Replaces the run's signing key with `jwt`, for every instance.
    pub async fn rotate_jwt(&self, jwt: &JwtKeys) -> Result<(), Unavailable> {
        redis::cmd("HSET")
            .arg(self.key("keys"))
            .arg("jwt_kid")
            .arg(jwt.kid())
            .arg("jwt")
            .arg(hex(jwt.secret()))
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }
}
