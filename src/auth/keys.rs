//! Verifying keys for JWTs and the one function that checks a token's
//! signature with one of them.
//!
//! The issuer's configuration pins the algorithms it accepts; a token's
//! `alg` only selects among those, and a key is only ever used with the
//! algorithm family of its own type (an RSA public key can never serve as
//! an HMAC secret, which defeats the classic RS/HS confusion). Keys come
//! from JWKs or SPKI PEM; RSA keys under 2048 bits are refused.

use std::rc::Rc;

use base64ct::{Base64UrlUnpadded, Encoding};
use ed25519_compact::PublicKey as Ed25519PublicKey;
use jwt_compact::alg::{Ed25519, Es256, Hs256, Hs256Key, Hs384, Hs384Key, Hs512, Hs512Key, Rsa};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, UntrustedToken, ValidationError};
use p256::ecdsa::VerifyingKey as P256VerifyingKey;
use p256::pkcs8::DecodePublicKey;
use rsa::RsaPublicKey;
use rsa::traits::PublicKeyParts;
use serde::Deserialize;
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};

use crate::platform::PublicJwk;

/// The algorithms Portico verifies.
pub const SUPPORTED_ALGORITHMS: [&str; 11] = [
    "HS256", "HS384", "HS512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256",
    "EdDSA",
];

const MIN_RSA_BITS: usize = 2048;
const MIN_HMAC_BYTES: usize = 32;

/// JOSE header fields that Portico refuses to act on: a token may not
/// choose its own key (`jwk`, `x5c`, and `jku`/`x5u` in the base header),
/// and no critical extension is understood.
#[derive(Clone, Debug, Default, Deserialize)]
pub struct RiskyHeaderFields {
    pub crit: Option<Value>,
    pub jwk: Option<Value>,
    pub x5c: Option<Value>,
}

pub type Token<'a> = UntrustedToken<'a, RiskyHeaderFields>;

/// The key itself.
#[derive(Clone, Debug)]
pub enum KeyMaterial {
    Hmac(Vec<u8>),
    Rsa(RsaPublicKey),
    P256(P256VerifyingKey),
    Ed25519(Ed25519PublicKey),
}

/// A key and what its JWK said about it.
#[derive(Clone, Debug)]
pub struct VerifyingKey {
    pub kid: Option<String>,
    /// The JWK's `alg`, when given: the key is then used with it only.
    pub alg: Option<String>,
    pub material: KeyMaterial,
    /// The key as the runtime's own crypto takes it (asymmetric keys only).
    pub public: Option<Rc<PublicJwk>>,
}

impl PartialEq for VerifyingKey {
    fn eq(&self, other: &Self) -> bool {
        self.kid == other.kid && self.alg == other.alg && self.fingerprint() == other.fingerprint()
    }
}

impl Eq for VerifyingKey {}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("not a usable JWK: {0}")]
    BadJwk(String),
    #[error("not a usable PEM public key: {0}")]
    BadPem(String),
    #[error("RSA keys must have at least {MIN_RSA_BITS} bits")]
    WeakRsa,
    #[error("HMAC secrets must have at least {MIN_HMAC_BYTES} bytes")]
    WeakHmac,
    #[error("the key is a private key; configure the public key only")]
    Private,
}

impl VerifyingKey {
    /// A key from a JWK (as a JSON object). `use` other than `sig` is refused.
    pub fn from_jwk(value: &Value) -> Result<VerifyingKey, KeyError> {
        let object = value
            .as_object()
            .ok_or_else(|| KeyError::BadJwk("a JWK is a JSON object".to_owned()))?;
        let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_owned);
        if let Some(usage) = text("use")
            && usage != "sig"
        {
            return Err(KeyError::BadJwk(format!("'use' is '{usage}', not 'sig'")));
        }
        let kty = text("kty").unwrap_or_default();
        if kty != "oct" && (object.contains_key("d") || object.contains_key("p")) {
            return Err(KeyError::Private);
        }
        let jwk: JsonWebKey<'_> =
            serde_json::from_value(value.clone()).map_err(|e| KeyError::BadJwk(e.to_string()))?;
        let material = match &jwk {
            JsonWebKey::Symmetric { secret } => {
                let bytes: &[u8] = secret.as_ref();
                if bytes.len() < MIN_HMAC_BYTES {
                    return Err(KeyError::WeakHmac);
                }
                KeyMaterial::Hmac(bytes.to_vec())
            }
            JsonWebKey::Rsa { .. } => {
                let key =
                    RsaPublicKey::try_from(&jwk).map_err(|e| KeyError::BadJwk(e.to_string()))?;
                checked_rsa(key)?
            }
            JsonWebKey::EllipticCurve { .. } => KeyMaterial::P256(
                P256VerifyingKey::try_from(&jwk).map_err(|e| KeyError::BadJwk(e.to_string()))?,
            ),
            JsonWebKey::KeyPair { .. } => KeyMaterial::Ed25519(
                Ed25519PublicKey::try_from(&jwk).map_err(|e| KeyError::BadJwk(e.to_string()))?,
            ),
            _ => return Err(KeyError::BadJwk(format!("unsupported key type '{kty}'"))),
        };
        Ok(VerifyingKey::new(text("kid"), text("alg"), material))
    }

    /// A key from an SPKI PEM (`-----BEGIN PUBLIC KEY-----`): RSA, P-256 or Ed25519.
    pub fn from_pem(pem: &str, kid: Option<String>) -> Result<VerifyingKey, KeyError> {
        let material = if let Ok(key) = RsaPublicKey::from_public_key_pem(pem) {
            checked_rsa(key)?
        } else if let Ok(key) = P256VerifyingKey::from_public_key_pem(pem) {
            KeyMaterial::P256(key)
        } else if let Ok(key) = Ed25519PublicKey::from_pem(pem) {
            KeyMaterial::Ed25519(key)
        } else if pem.contains("PRIVATE KEY") {
            return Err(KeyError::Private);
        } else {
            return Err(KeyError::BadPem(
                "expected an RSA, P-256 or Ed25519 public key in SPKI PEM form".to_owned(),
            ));
        };
        Ok(VerifyingKey::new(kid, None, material))
    }

    /// An HMAC secret given as raw bytes.
    pub fn hmac(secret: &[u8], kid: Option<String>) -> Result<VerifyingKey, KeyError> {
        if secret.len() < MIN_HMAC_BYTES {
            return Err(KeyError::WeakHmac);
        }
        Ok(VerifyingKey::new(
            kid,
            None,
            KeyMaterial::Hmac(secret.to_vec()),
        ))
    }

    fn new(kid: Option<String>, alg: Option<String>, material: KeyMaterial) -> VerifyingKey {
        let public = public_jwk(&material).map(|jwk| {
            let id = Sha256::digest(fingerprint(&material))
                .iter()
                .map(|byte| format!("{byte:02x}"))
                .collect();
            Rc::new(PublicJwk {
                id,
                jwk: jwk.to_string(),
            })
        });
        VerifyingKey {
            kid,
            alg,
            material,
            public,
        }
    }

    /// Whether this key may verify tokens signed with `alg`.
    pub fn supports(&self, alg: &str) -> bool {
        if self.alg.as_deref().is_some_and(|own| own != alg) {
            return false;
        }
        match &self.material {
            KeyMaterial::Hmac(_) => matches!(alg, "HS256" | "HS384" | "HS512"),
            KeyMaterial::Rsa(_) => {
                matches!(
                    alg,
                    "RS256" | "RS384" | "RS512" | "PS256" | "PS384" | "PS512"
                )
            }
            KeyMaterial::P256(_) => alg == "ES256",
            KeyMaterial::Ed25519(_) => alg == "EdDSA",
        }
    }

    /// Check `token`'s signature (its `alg` must be one this key supports)
    /// and return its claims, unvalidated beyond the signature.
    pub fn verify(&self, token: &Token<'_>) -> Result<Claims<Map<String, Value>>, ValidationError> {
        let alg = token.algorithm();
        if !self.supports(alg) {
            return Err(ValidationError::AlgorithmMismatch {
                expected: self
                    .alg
                    .clone()
                    .unwrap_or_else(|| "a matching key".to_owned()),
                actual: alg.to_owned(),
            });
        }
        let claims = match (&self.material, alg) {
            (KeyMaterial::Hmac(secret), "HS256") => {
                Hs256
                    .validator(&Hs256Key::new(secret))
                    .validate(token)?
                    .into_parts()
                    .1
            }
            (KeyMaterial::Hmac(secret), "HS384") => {
                Hs384
                    .validator(&Hs384Key::new(secret))
                    .validate(token)?
                    .into_parts()
                    .1
            }
            (KeyMaterial::Hmac(secret), "HS512") => {
                Hs512
                    .validator(&Hs512Key::new(secret))
                    .validate(token)?
                    .into_parts()
                    .1
            }
            (KeyMaterial::Rsa(key), _) => {
                Rsa::with_name(alg)
                    .validator(key)
                    .validate(token)?
                    .into_parts()
                    .1
            }
            (KeyMaterial::P256(key), _) => Es256.validator(key).validate(token)?.into_parts().1,
            (KeyMaterial::Ed25519(key), _) => {
                Ed25519.validator(key).validate(token)?.into_parts().1
            }
            (KeyMaterial::Hmac(_), other) => {
                return Err(ValidationError::AlgorithmMismatch {
                    expected: "HS256, HS384 or HS512".to_owned(),
                    actual: other.to_owned(),
                });
            }
        };
        Ok(claims)
    }

    /// Bytes that identify the key material, for equality.
    fn fingerprint(&self) -> Vec<u8> {
        fingerprint(&self.material)
    }
}

fn fingerprint(material: &KeyMaterial) -> Vec<u8> {
    match material {
        KeyMaterial::Hmac(secret) => secret.clone(),
        KeyMaterial::Rsa(key) => {
            let mut bytes = key.n().to_bytes_be();
            bytes.extend(key.e().to_bytes_be());
            bytes
        }
        KeyMaterial::P256(key) => key.to_encoded_point(false).as_bytes().to_vec(),
        KeyMaterial::Ed25519(key) => key.as_ref().to_vec(),
    }
}

/// The public JWK of an asymmetric key, with only the members WebCrypto
/// reads (no `alg`, `use` or `kid`: the core decides what the key is for).
fn public_jwk(material: &KeyMaterial) -> Option<Value> {
    let b64 = |bytes: &[u8]| Base64UrlUnpadded::encode_string(bytes);
    match material {
        KeyMaterial::Hmac(_) => None,
        KeyMaterial::Rsa(key) => Some(json!({
            "kty": "RSA",
            "n": b64(&key.n().to_bytes_be()),
            "e": b64(&key.e().to_bytes_be()),
        })),
        KeyMaterial::P256(key) => {
            let point = key.to_encoded_point(false);
            Some(json!({
                "kty": "EC",
                "crv": "P-256",
                "x": b64(point.x()?),
                "y": b64(point.y()?),
            }))
        }
        KeyMaterial::Ed25519(key) => Some(json!({
            "kty": "OKP",
            "crv": "Ed25519",
            "x": b64(key.as_ref()),
        })),
    }
}

fn checked_rsa(key: RsaPublicKey) -> Result<KeyMaterial, KeyError> {
    if key.size() * 8 < MIN_RSA_BITS {
        return Err(KeyError::WeakRsa);
    }
    Ok(KeyMaterial::Rsa(key))
}
