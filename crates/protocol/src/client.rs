//! The client side of the TTP's credentials (feature `client`): one
//! implementation for the registry's re-keying, the tests and native batch
//! tools.
//!
//! - [`EcKey`]: a P-256 key that signs `ES256` JWTs through `josekit`
//!   (OpenSSL): client assertions (RFC 7523), subject tokens for a
//!   browser's token exchange (RFC 8693) and DPoP proofs (RFC 9449), and its
//!   RFC 7638 thumbprint (`jkt`).
//! - [`TtpClient`]: a back end at the TTP: it obtains a DPoP-bound access
//!   token with `client_credentials` + `private_key_jwt`, keeps it until
//!   shortly before it expires, and sends requests with
//!   `Authorization: DPoP <token>` and a fresh proof each.
//! - [`exchange`]: a browser's token exchange, for tests and tools that
//!   stand in for one.
//!
//! The shapes are in [`crate::auth`]; `docs/protocol.md` has the flow.

use std::sync::Mutex;

use base64ct::{Base64UrlUnpadded, Encoding};
use josekit::jwk::Jwk;
use josekit::jws::alg::ecdsa::EcdsaJwsSigner;
use josekit::jws::{self, JwsHeader};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::{EcGroup, EcKey as OpensslEcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use serde::Serialize;
use serde_json::{json, Map, Value};
use zeroize::Zeroizing;

pub use crate::auth::ath;
use crate::auth::{
    ClientAssertionClaims, DpopClaims, SubjectTokenClaims, TokenError, TokenResponse,
    CLIENT_ASSERTION_TYPE, DPOP_HEADER, GRANT_CLIENT_CREDENTIALS, GRANT_TOKEN_EXCHANGE, TOKEN_PATH,
    TOKEN_TYPE_DPOP, TOKEN_TYPE_JWT, TYP_DPOP, TYP_SUBJECT_TOKEN,
};
use crate::jwk::ec_thumbprint;

/// Lifetime of the client assertions [`TtpClient`] makes, in seconds.
pub const ASSERTION_SECONDS: i64 = 60;

/// A cached token is renewed this many seconds before it expires.
pub const RENEW_BEFORE_SECONDS: i64 = 30;

/// What went wrong on the client side.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The key is not a usable P-256 private key.
    #[error("the key is not a usable P-256 private key: {0}")]
    Key(String),
    /// Signing or randomness failed.
    #[error("signing failed: {0}")]
    Sign(String),
    /// The TTP could not be reached or answered unreadably.
    #[error("the TTP cannot be reached: {0}")]
    Http(#[from] reqwest::Error),
    /// The TTP refused: HTTP status and its code.
    #[error("the TTP refused: HTTP {status}, code {code}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// pseudoform's code from the answer, or `unknown`.
        code: String,
    },
}

/// A fresh P-256 private key as PKCS#8 PEM (for a client's key file).
pub fn generate_pem() -> Result<Zeroizing<Vec<u8>>, ClientError> {
    let key = || -> Result<Vec<u8>, openssl::error::ErrorStack> {
        let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
        PKey::from_ec_key(OpensslEcKey::generate(&group)?)?.private_key_to_pem_pkcs8()
    };
    key()
        .map(Zeroizing::new)
        .map_err(|e| ClientError::Key(e.to_string()))
}

/// A random 128-bit id, hex: the `jti` of every JWT made here.
pub fn random_jti() -> Result<String, ClientError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).map_err(|e| ClientError::Sign(e.to_string()))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The current time, seconds since the Unix epoch.
fn now() -> i64 {
    crate::unix_now()
}

/// A P-256 key pair that signs `ES256` JWTs.
pub struct EcKey {
    signer: EcdsaJwsSigner,
    jwk: Map<String, Value>,
    jkt: String,
    public_pem: String,
}

impl std::fmt::Debug for EcKey {
    /// The thumbprint only, never the key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EcKey")
            .field("jkt", &self.jkt)
            .finish_non_exhaustive()
    }
}

impl EcKey {
    /// A fresh random key (a DPoP key lives as long as its process).
    pub fn generate() -> Result<Self, ClientError> {
        EcKey::from_pem(&generate_pem()?)
    }

    /// A key from a PEM P-256 private key (PKCS#8 or SEC 1).
    pub fn from_pem(pem: &[u8]) -> Result<Self, ClientError> {
        let bad = |e: &dyn std::fmt::Display| ClientError::Key(e.to_string());
        let key = PKey::private_key_from_pem(pem).map_err(|e| bad(&e))?;
        let ec = key.ec_key().map_err(|e| bad(&e))?;
        if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
            return Err(ClientError::Key("not on curve P-256".into()));
        }
        ec.check_key().map_err(|e| bad(&e))?;
        let mut ctx = BigNumContext::new().map_err(|e| bad(&e))?;
        let (mut x, mut y) = (
            BigNum::new().map_err(|e| bad(&e))?,
            BigNum::new().map_err(|e| bad(&e))?,
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .map_err(|e| bad(&e))?;
        let x = x.to_vec_padded(32).map_err(|e| bad(&e))?;
        let y = y.to_vec_padded(32).map_err(|e| bad(&e))?;
        let jkt = ec_thumbprint("P-256", &x, &y);
        let mut jwk = Map::new();
        jwk.insert("kty".into(), json!("EC"));
        jwk.insert("crv".into(), json!("P-256"));
        jwk.insert("x".into(), json!(Base64UrlUnpadded::encode_string(&x)));
        jwk.insert("y".into(), json!(Base64UrlUnpadded::encode_string(&y)));
        let public_pem = String::from_utf8(key.public_key_to_pem().map_err(|e| bad(&e))?)
            .map_err(|e| bad(&e))?;
        let der = Zeroizing::new(key.private_key_to_pkcs8().map_err(|e| bad(&e))?);
        let signer = jws::ES256
            .signer_from_der(der.as_slice())
            .map_err(|e| bad(&e))?;
        Ok(EcKey {
            signer,
            jwk,
            jkt,
            public_pem,
        })
    }

    /// A key from a PEM file that only its owner may read.
    pub fn from_file(path: &std::path::Path) -> Result<Self, ClientError> {
        let pem = Zeroizing::new(
            crate::secret_file::read(path)
                .map_err(|e| ClientError::Key(format!("{}: {e}", path.display())))?,
        );
        EcKey::from_pem(&pem)
    }

    /// The RFC 7638 thumbprint of the public key (`jkt`, and the `kid` of
    /// the assertions it signs).
    pub fn thumbprint(&self) -> &str {
        &self.jkt
    }

    /// The public key as a JWK (`kty`, `crv`, `x`, `y`).
    pub fn public_jwk(&self) -> Value {
        Value::Object(self.jwk.clone())
    }

    /// The public key as SPKI PEM, for the TTP's `public_keys`.
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// A compact JWS of `claims` with protected header `alg: ES256`, `typ`
    /// if given, and either `kid` (the thumbprint) or the public `jwk`.
    pub fn sign(
        &self,
        typ: Option<&str>,
        embed_jwk: bool,
        claims: &impl Serialize,
    ) -> Result<String, ClientError> {
        let mut header = JwsHeader::new();
        if let Some(typ) = typ {
            header.set_token_type(typ);
        }
        if embed_jwk {
            let jwk =
                Jwk::from_map(self.jwk.clone()).map_err(|e| ClientError::Sign(e.to_string()))?;
            header.set_jwk(jwk);
        } else {
            header.set_key_id(&self.jkt);
        }
        let payload = serde_json::to_vec(claims).map_err(|e| ClientError::Sign(e.to_string()))?;
        jws::serialize_compact(&payload, &header, &self.signer)
            .map_err(|e| ClientError::Sign(e.to_string()))
    }

    /// An RFC 7523 client assertion of `client_id` for `audience` (the
    /// TTP's issuer), valid [`ASSERTION_SECONDS`] from `now`.
    pub fn client_assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: i64,
    ) -> Result<String, ClientError> {
        let claims = ClientAssertionClaims {
            iss: client_id.to_owned(),
            sub: client_id.to_owned(),
            aud: json!(audience),
            exp: now + ASSERTION_SECONDS,
            iat: Some(now),
            jti: random_jti()?,
        };
        self.sign(Some("JWT"), false, &claims)
    }

    /// A subject token ([`SubjectTokenClaims`], `typ`
    /// [`TYP_SUBJECT_TOKEN`]): what a provider's login signs for a
    /// clinician's browser.
    pub fn subject_token(&self, claims: &SubjectTokenClaims) -> Result<String, ClientError> {
        self.sign(Some(TYP_SUBJECT_TOKEN), false, claims)
    }

    /// A DPoP proof for `method` on `url` (no query), with `ath` of the
    /// access token when one is sent.
    pub fn dpop_proof(
        &self,
        method: &str,
        url: &str,
        access_token: Option<&str>,
        now: i64,
    ) -> Result<String, ClientError> {
        let claims = DpopClaims {
            jti: random_jti()?,
            htm: method.to_owned(),
            htu: url.to_owned(),
            iat: now,
            ath: access_token.map(ath),
        };
        self.sign(Some(TYP_DPOP), true, &claims)
    }

    /// A registry's submitter proof (docs/protocol.md): a DPoP proof for
    /// `POST` on `url` (the registry's public submissions or batch URL)
    /// with `rec`, the digest of the record or the batch it is for.
    pub fn submitter_proof(&self, url: &str, rec: &str, now: i64) -> Result<String, ClientError> {
        let claims = json!({
            "jti": random_jti()?,
            "htm": "POST",
            "htu": url,
            "iat": now,
            "rec": rec,
        });
        self.sign(Some(TYP_DPOP), true, &claims)
    }
}

/// The status and `code` of an error answer (a [`TokenError`] or an
/// [`crate::ErrorBody`]; `unknown` if it has none).
pub async fn refusal_of(response: reqwest::Response) -> (u16, String) {
    let status = response.status().as_u16();
    let code = response
        .json::<Value>()
        .await
        .ok()
        .and_then(|v| v.get("code").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "unknown".into());
    (status, code)
}

/// An error answer as a [`ClientError::Refused`].
async fn refusal(response: reqwest::Response) -> ClientError {
    let (status, code) = refusal_of(response).await;
    ClientError::Refused { status, code }
}

/// POSTs a token request (form-urlencoded) with a DPoP proof of
/// `dpop_key`, from `origin` if given, and reads the answer.
async fn token_request(
    http: &reqwest::Client,
    ttp: &str,
    form: &[(&str, &str)],
    dpop_key: &EcKey,
    origin: Option<&str>,
) -> Result<TokenResponse, ClientError> {
    let url = format!("{}{TOKEN_PATH}", ttp.trim_end_matches('/'));
    let proof = dpop_key.dpop_proof("POST", &url, None, now())?;
    let mut request = http.post(&url).header(DPOP_HEADER, proof).form(form);
    if let Some(origin) = origin {
        request = request.header("origin", origin);
    }
    let response = request.send().await?;
    if !response.status().is_success() {
        return Err(refusal(response).await);
    }
    let token: TokenResponse = response.json().await?;
    if token.token_type != TOKEN_TYPE_DPOP {
        return Err(ClientError::Refused {
            status: 200,
            code: "token.notDpop".into(),
        });
    }
    Ok(token)
}

/// A browser's token exchange (RFC 8693): `subject_token` (signed by the
/// provider for `dpop_key`'s thumbprint and `origin`) for an access token
/// bound to `dpop_key`, sent from `origin`.
pub async fn exchange(
    http: &reqwest::Client,
    ttp: &str,
    subject_token: &str,
    dpop_key: &EcKey,
    origin: &str,
) -> Result<TokenResponse, ClientError> {
    let form = [
        ("grant_type", GRANT_TOKEN_EXCHANGE),
        ("subject_token", subject_token),
        ("subject_token_type", TOKEN_TYPE_JWT),
    ];
    token_request(http, ttp, &form, dpop_key, Some(origin)).await
}

/// The error answer of the token endpoint, if `body` is one.
pub fn token_error(body: &Value) -> Option<TokenError> {
    serde_json::from_value(body.clone()).ok()
}

/// A cached access token and when it expires.
#[derive(Debug)]
struct Cached {
    token: String,
    expires_at: i64,
}

/// A back end at the TTP: `client_credentials` with `private_key_jwt`,
/// DPoP-bound tokens, a fresh proof per request.
#[derive(Debug)]
pub struct TtpClient {
    http: reqwest::Client,
    ttp: String,
    issuer: String,
    client_id: String,
    client_key: EcKey,
    dpop_key: EcKey,
    provider: Option<String>,
    scope: Option<String>,
    cached: Mutex<Option<Cached>>,
}

impl TtpClient {
    /// A client of the TTP at `ttp` (its public URL) as `client_id`, whose
    /// assertions `client_key` signs; the DPoP key is a fresh one.
    /// The assertions' audience is `ttp` unless [`TtpClient::issuer`] says
    /// otherwise.
    pub fn new(
        http: reqwest::Client,
        ttp: &str,
        client_id: &str,
        client_key: EcKey,
    ) -> Result<Self, ClientError> {
        let ttp = ttp.trim_end_matches('/').to_owned();
        Ok(TtpClient {
            http,
            issuer: ttp.clone(),
            ttp,
            client_id: client_id.to_owned(),
            client_key,
            dpop_key: EcKey::generate()?,
            provider: None,
            scope: None,
            cached: Mutex::new(None),
        })
    }

    /// The TTP's `issuer`, when it is not its public URL.
    pub fn issuer(mut self, issuer: &str) -> Self {
        self.issuer = issuer.to_owned();
        self
    }

    /// A processor's client acting for `provider` (the `provider` parameter).
    pub fn acting_for(mut self, provider: &str) -> Self {
        self.provider = Some(provider.to_owned());
        self
    }

    /// Asks for `scope` (`evaluate` or `rekey`) instead of the role's default.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = Some(scope.to_owned());
        self
    }

    /// The DPoP key the tokens are bound to.
    pub fn dpop_key(&self) -> &EcKey {
        &self.dpop_key
    }

    /// Asks the TTP for a new access token.
    pub async fn fetch_token(&self) -> Result<TokenResponse, ClientError> {
        let assertion = self
            .client_key
            .client_assertion(&self.client_id, &self.issuer, now())?;
        let mut form = vec![
            ("grant_type", GRANT_CLIENT_CREDENTIALS),
            ("client_id", self.client_id.as_str()),
            ("client_assertion_type", CLIENT_ASSERTION_TYPE),
            ("client_assertion", assertion.as_str()),
        ];
        if let Some(provider) = &self.provider {
            form.push(("provider", provider));
        }
        if let Some(scope) = &self.scope {
            form.push(("scope", scope));
        }
        token_request(&self.http, &self.ttp, &form, &self.dpop_key, None).await
    }

    /// A valid access token: the cached one, or a new one once it is
    /// within [`RENEW_BEFORE_SECONDS`] of expiring.
    pub async fn token(&self) -> Result<String, ClientError> {
        let now = now();
        if let Ok(cached) = self.cached.lock() {
            if let Some(c) = cached
                .as_ref()
                .filter(|c| c.expires_at - RENEW_BEFORE_SECONDS > now)
            {
                return Ok(c.token.clone());
            }
        }
        let fresh = self.fetch_token().await?;
        if let Ok(mut cached) = self.cached.lock() {
            *cached = Some(Cached {
                token: fresh.access_token.clone(),
                expires_at: now + fresh.expires_in,
            });
        }
        Ok(fresh.access_token)
    }

    /// `request` (to `url`, with `method`) with `Authorization: DPoP` and a
    /// fresh proof for `token`.
    pub fn authorize(
        &self,
        request: reqwest::RequestBuilder,
        method: &str,
        url: &str,
        token: &str,
    ) -> Result<reqwest::RequestBuilder, ClientError> {
        let proof = self.dpop_key.dpop_proof(method, url, Some(token), now())?;
        Ok(request
            .header("authorization", format!("{TOKEN_TYPE_DPOP} {token}"))
            .header(DPOP_HEADER, proof))
    }

    /// POSTs `body` as JSON to `path` of the TTP with the token and a proof.
    pub async fn post_json(
        &self,
        path: &str,
        body: &impl Serialize,
    ) -> Result<reqwest::Response, ClientError> {
        let token = self.token().await?;
        let url = format!("{}{path}", self.ttp);
        let request = self.authorize(self.http.post(&url).json(body), "POST", &url, &token)?;
        Ok(request.send().await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(jws: &str) -> (Value, Value) {
        let mut parts = jws.split('.');
        let mut part = || {
            let bytes = Base64UrlUnpadded::decode_vec(parts.next().unwrap()).unwrap();
            serde_json::from_slice::<Value>(&bytes).unwrap()
        };
        (part(), part())
    }

    #[test]
    fn proofs_assertions_and_subject_tokens() {
        let key = EcKey::generate().unwrap();
        assert_eq!(key.thumbprint().len(), 43);
        let verifier = jws::ES256
            .verifier_from_pem(key.public_pem().as_bytes())
            .unwrap();

        let proof = key
            .dpop_proof(
                "POST",
                "https://ttp.example.nl/v1/evaluate",
                Some("tok"),
                1000,
            )
            .unwrap();
        jws::deserialize_compact(&proof, &verifier).unwrap();
        let (header, claims) = payload(&proof);
        assert_eq!(header["typ"], TYP_DPOP);
        assert_eq!(header["alg"], "ES256");
        assert_eq!(header["jwk"], key.public_jwk());
        assert!(header["jwk"].get("d").is_none(), "no private part");
        assert_eq!(claims["htu"], "https://ttp.example.nl/v1/evaluate");
        assert_eq!(claims["iat"], 1000);
        assert_eq!(claims["ath"], ath("tok"));
        // RFC 9449 §4.2: ath of the example token "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU".
        assert_eq!(
            ath("Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"),
            "fUHyO2r2Z3DZ53EsNrWBb0xWXoaNy59IiKCAqksmQEo"
        );
        let second = key.dpop_proof("POST", "u", None, 1000).unwrap();
        assert_ne!(payload(&second).1["jti"], claims["jti"], "a fresh jti each");

        let assertion = key
            .client_assertion("ura:00000001", "https://ttp", 1000)
            .unwrap();
        jws::deserialize_compact(&assertion, &verifier).unwrap();
        let (header, claims) = payload(&assertion);
        assert_eq!(header["kid"], key.thumbprint());
        assert_eq!(claims["iss"], "ura:00000001");
        assert_eq!(claims["sub"], "ura:00000001");
        assert_eq!(claims["exp"], 1000 + ASSERTION_SECONDS);

        let subject = SubjectTokenClaims {
            iss: "ura:00000001".into(),
            aud: "https://ttp".into(),
            sub: "clinician-1".into(),
            iat: 1000,
            exp: 1060,
            jti: random_jti().unwrap(),
            cnf: crate::auth::Cnf {
                jkt: key.thumbprint().into(),
            },
            origin: "https://form.example.nl".into(),
            provider: None,
        };
        let token = key.subject_token(&subject).unwrap();
        let (header, claims) = payload(&token);
        assert_eq!(header["typ"], TYP_SUBJECT_TOKEN);
        assert!(claims.get("provider").is_none());
        assert_eq!(claims["cnf"]["jkt"], key.thumbprint());
    }

    #[test]
    fn keys_from_pem_and_debug() {
        let pem = generate_pem().unwrap();
        let a = EcKey::from_pem(&pem).unwrap();
        let b = EcKey::from_pem(&pem).unwrap();
        assert_eq!(a.thumbprint(), b.thumbprint());
        assert!(!format!("{a:?}").contains("PRIVATE"));
        assert!(EcKey::from_pem(b"not a key").is_err());
    }
}
