//! The TTP's two long-lived secrets on a PKCS#11 token (an HSM; SoftHSM2
//! in the tests), configured by `[hsm]` ([`HsmConfig`]):
//!
//! - the **master key**, an AES-256 secret-key object, with which the
//!   token itself encrypts and decrypts the OPRF key versions and binding
//!   keys (`CKM_AES_GCM`, the same 96-bit nonce, 128-bit tag and
//!   associated data as a master key in a file, so that a database moves
//!   from a key file to a token unchanged: [`import_master_key`]);
//! - the **signing key**, a P-256 key pair whose private half signs
//!   (`CKM_ECDSA` over the SHA-256 of the JWS signing input, which is what
//!   ES256 is) every nested JWS, access token, recipient-key statement and
//!   audit head.
//!
//! Both are made on the token sensitive and not extractable
//! ([`init`]): no call of this module, nor of anyone holding the PIN, can
//! read them out.
//!
//! What stays in the TTP's memory is what no PKCS#11 mechanism can do:
//! the ristretto255 scalar multiplication of the OPRF. Each key version's
//! scalar is decrypted by the token when a domain is first used and kept in
//! [`crate::keys::KeyCache`] (wiped on drop) until the key epoch changes —
//! a rotation or retirement drops and re-reads every domain's keys.
//!
//! PKCS#11 is process-wide: a module is initialised once ([`context`]) and
//! logged in once; sessions are pooled, one per thread in use at a time.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use anyhow::{anyhow, bail, Context};
use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as P11Error, RvError};
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::mechanism::Mechanism;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::AuthPin;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Environment variable holding the token's user PIN when `[hsm]` names
/// no `pin_file`.
pub const PIN_ENV: &str = "PSEUDOFORM_TTP_HSM_PIN";

/// Default label of the master key object.
pub const DEFAULT_MASTER_KEY_LABEL: &str = "pseudoform-ttp-master";

/// Default label of the signing key pair (both halves carry it).
pub const DEFAULT_SIGNING_KEY_LABEL: &str = "pseudoform-ttp-signing";

/// The DER of the OID of P-256 (`prime256v1`), the `CKA_EC_PARAMS` of the
/// signing key.
const P256_OID: [u8; 10] = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07];

/// Bytes of the GCM tag the token appends (the same as the `aes-gcm` crate's).
const TAG_BITS: u64 = 128;

/// `[hsm]`: where the TTP's master key and signing key live.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HsmConfig {
    /// The PKCS#11 module (for SoftHSM2 on Debian
    /// `/usr/lib/softhsm/libsofthsm2.so`).
    pub module: PathBuf,
    /// The label of the token (`softhsm2-util --init-token --label …`).
    pub token_label: String,
    /// File with the user PIN, which only its owner may read. When absent
    /// the PIN is read from [`PIN_ENV`]; giving both is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin_file: Option<PathBuf>,
    /// Label of the AES-256 master key object.
    #[serde(default = "default_master_label")]
    pub master_key_label: String,
    /// Label of the P-256 signing key pair.
    #[serde(default = "default_signing_label")]
    pub signing_key_label: String,
}

fn default_master_label() -> String {
    DEFAULT_MASTER_KEY_LABEL.to_owned()
}

fn default_signing_label() -> String {
    DEFAULT_SIGNING_KEY_LABEL.to_owned()
}

impl HsmConfig {
    /// Resolves the relative paths against `base` (the configuration's folder).
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = self.pin_file.as_mut() {
            if p.is_relative() {
                *p = base.join(&*p);
            }
        }
    }

    /// Checks what can be checked without the token.
    pub(crate) fn validate(&self) -> anyhow::Result<()> {
        if self.token_label.is_empty() || self.token_label.len() > 32 {
            bail!("[hsm] token_label must be 1 to 32 bytes (a PKCS#11 token label)");
        }
        if self.master_key_label.is_empty() || self.signing_key_label.is_empty() {
            bail!("[hsm] master_key_label and signing_key_label must not be empty");
        }
        if self.master_key_label == self.signing_key_label {
            bail!("[hsm] master_key_label and signing_key_label must differ");
        }
        Ok(())
    }

    /// The user PIN: from `pin_file` or [`PIN_ENV`], exactly one of them.
    fn pin(&self) -> anyhow::Result<AuthPin> {
        let env = std::env::var(PIN_ENV).ok().map(Zeroizing::new);
        let text = match (&self.pin_file, env) {
            (Some(_), Some(_)) => {
                bail!("both [hsm] pin_file and {PIN_ENV} are set; give the PIN one way")
            }
            (Some(path), None) => {
                let bytes =
                    Zeroizing::new(pseudoform_protocol::secret_file::read(path).with_context(
                        || format!("cannot read the token's PIN file {}", path.display()),
                    )?);
                let text = std::str::from_utf8(&bytes)
                    .map_err(|_| anyhow!("the token's PIN file is not text"))?;
                Zeroizing::new(text.trim().to_owned())
            }
            (None, Some(text)) => Zeroizing::new(text.trim().to_owned()),
            (None, None) => bail!("no PIN for the token: set [hsm] pin_file or {PIN_ENV}"),
        };
        if text.is_empty() {
            bail!("the token's PIN is empty");
        }
        Ok(AuthPin::from(text.as_str()))
    }
}

/// A logged-in token: the module's context, the slot, and a pool of
/// sessions.
pub struct Token {
    context: Pkcs11,
    slot: Slot,
    label: String,
    pin: AuthPin,
    sessions: Mutex<Vec<Session>>,
}

impl std::fmt::Debug for Token {
    /// Never the PIN.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Token")
            .field("label", &self.label)
            .finish_non_exhaustive()
    }
}

/// The context of the module at `path`, initialised once per process
/// (a second `C_Initialize` of a module is an error in PKCS#11).
fn context(path: &Path) -> anyhow::Result<Pkcs11> {
    static CONTEXTS: OnceLock<Mutex<Vec<(PathBuf, Pkcs11)>>> = OnceLock::new();
    let mut contexts = CONTEXTS
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .map_err(|_| anyhow!("the PKCS#11 contexts are poisoned"))?;
    if let Some((_, context)) = contexts.iter().find(|(p, _)| p == path) {
        return Ok(context.clone());
    }
    let context = Pkcs11::new(path)
        .with_context(|| format!("cannot load the PKCS#11 module {}", path.display()))?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) => {}
        Err(P11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => {}
        Err(e) => {
            return Err(anyhow!(
                "cannot initialise the PKCS#11 module {}: {e}",
                path.display()
            ))
        }
    }
    contexts.push((path.to_owned(), context.clone()));
    Ok(context)
}

impl Token {
    /// Opens the token of `config` and logs in with its PIN.
    pub fn open(config: &HsmConfig) -> anyhow::Result<Arc<Token>> {
        config.validate()?;
        let pin = config.pin()?;
        let context = context(&config.module)?;
        let mut found = None;
        for slot in context
            .get_slots_with_initialized_token()
            .context("cannot list the PKCS#11 slots")?
        {
            let info = context
                .get_token_info(slot)
                .context("cannot read a PKCS#11 token's information")?;
            if info.label().trim_end() == config.token_label {
                if found.is_some() {
                    bail!(
                        "two PKCS#11 tokens are labelled {:?}; labels must be unique",
                        config.token_label
                    );
                }
                found = Some((slot, info));
            }
        }
        let (slot, info) = found.ok_or_else(|| {
            anyhow!(
                "no initialised PKCS#11 token labelled {:?} in module {}",
                config.token_label,
                config.module.display()
            )
        })?;
        // A locked PIN cannot log in, and a wrong PIN at the last try would
        // lock the token for every replica: neither is tried.
        if info.user_pin_locked() {
            bail!("the PIN of token {:?} is locked", config.token_label);
        }
        if info.user_pin_final_try() {
            bail!(
                "token {:?} locks its PIN at the next wrong try: not logging in (check the PIN, then log in once with the token's own tool to reset the count)",
                config.token_label
            );
        }
        let token = Token {
            context,
            slot,
            label: config.token_label.clone(),
            pin,
            sessions: Mutex::new(Vec::new()),
        };
        // Log in now: a wrong PIN stops the start, not the first request.
        let session = token.open_session()?;
        token.give_back(session);
        Ok(Arc::new(token))
    }

    /// A new read-write session, logged in (the login is the
    /// application's: once done, every session of the process shares it).
    fn open_session(&self) -> anyhow::Result<Session> {
        let session = self
            .context
            .open_rw_session(self.slot)
            .with_context(|| format!("cannot open a session on token {:?}", self.label))?;
        match session.login(UserType::User, Some(&self.pin)) {
            Ok(()) | Err(P11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => Ok(session),
            Err(P11Error::Pkcs11(RvError::PinIncorrect, _)) => {
                bail!("the PIN of token {:?} is wrong", self.label)
            }
            Err(P11Error::Pkcs11(RvError::PinLocked, _)) => {
                bail!("the PIN of token {:?} is locked", self.label)
            }
            Err(e) => Err(anyhow!("cannot log in to token {:?}: {e}", self.label)),
        }
    }

    fn give_back(&self, session: Session) {
        if let Ok(mut pool) = self.sessions.lock() {
            pool.push(session);
        }
    }

    /// Runs `f` in a pooled session. A session whose call failed is not
    /// given back (it may be the session that broke).
    fn with_session<T>(
        &self,
        f: impl FnOnce(&Session) -> cryptoki::error::Result<T>,
    ) -> anyhow::Result<T> {
        let pooled = self
            .sessions
            .lock()
            .map_err(|_| anyhow!("the token's sessions are poisoned"))?
            .pop();
        let session = match pooled {
            Some(session) => session,
            None => self.open_session()?,
        };
        let result = f(&session);
        if result.is_ok() {
            self.give_back(session);
        }
        result.map_err(|e| anyhow!("token {:?}: {e}", self.label))
    }

    /// The one object of `class` labelled `label`, if any.
    fn find(&self, class: ObjectClass, label: &str) -> anyhow::Result<Option<ObjectHandle>> {
        let template = [
            Attribute::Class(class),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let handles = self.with_session(|s| s.find_objects(&template))?;
        match handles.as_slice() {
            [] => Ok(None),
            [one] => Ok(Some(*one)),
            _ => bail!(
                "token {:?} holds more than one object labelled {label:?} of the same class",
                self.label
            ),
        }
    }

    fn require(&self, class: ObjectClass, label: &str, what: &str) -> anyhow::Result<ObjectHandle> {
        self.find(class, label)?.ok_or_else(|| {
            anyhow!(
                "token {:?} holds no {what} labelled {label:?} (pseudoform-ttp hsm-init makes it)",
                self.label
            )
        })
    }

    /// Whether a key labelled `label` is sensitive and not extractable.
    fn guarded(&self, key: ObjectHandle) -> anyhow::Result<bool> {
        let attributes = self.with_session(|s| {
            s.get_attributes(key, &[AttributeType::Sensitive, AttributeType::Extractable])
        })?;
        let mut sensitive = false;
        let mut extractable = true;
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(v) => sensitive = v,
                Attribute::Extractable(v) => extractable = v,
                _ => {}
            }
        }
        Ok(sensitive && !extractable)
    }
}

/// The master key on the token: AES-256-GCM done by the token.
#[derive(Clone, Debug)]
pub struct TokenAesKey {
    token: Arc<Token>,
    handle: ObjectHandle,
}

impl TokenAesKey {
    /// The master key labelled `label`; refused when it could be read out.
    pub fn open(token: &Arc<Token>, label: &str) -> anyhow::Result<Self> {
        let handle = token.require(ObjectClass::SECRET_KEY, label, "master key")?;
        if !token.guarded(handle)? {
            bail!("the master key {label:?} on token {:?} is extractable or not sensitive; make a new one with hsm-init", token.label);
        }
        let attributes = token.with_session(|s| {
            s.get_attributes(handle, &[AttributeType::KeyType, AttributeType::ValueLen])
        })?;
        let aes = attributes
            .iter()
            .any(|a| matches!(a, Attribute::KeyType(k) if *k == KeyType::AES));
        let bytes = attributes.iter().find_map(|a| match a {
            Attribute::ValueLen(n) => Some(u64::from(*n)),
            _ => None,
        });
        if !aes || bytes != Some(32) {
            bail!(
                "the master key {label:?} on token {:?} is not an AES-256 key",
                token.label
            );
        }
        Ok(TokenAesKey {
            token: Arc::clone(token),
            handle,
        })
    }

    /// `plaintext` encrypted under `nonce` and `aad`: the ciphertext with
    /// the 16-byte tag appended.
    pub fn encrypt(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        plaintext: &[u8],
    ) -> anyhow::Result<Vec<u8>> {
        let mut iv = *nonce;
        self.token.with_session(|s| {
            let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
            s.encrypt(&Mechanism::AesGcm(params), self.handle, plaintext)
        })
    }

    /// The plaintext of `ciphertext` (tag appended), if it opens under
    /// `nonce` and `aad`.
    pub fn decrypt(
        &self,
        nonce: &[u8; 12],
        aad: &[u8],
        ciphertext: &[u8],
    ) -> anyhow::Result<Zeroizing<Vec<u8>>> {
        let mut iv = *nonce;
        self.token
            .with_session(|s| {
                let params = GcmParams::new(&mut iv, aad, TAG_BITS.into())?;
                s.decrypt(&Mechanism::AesGcm(params), self.handle, ciphertext)
            })
            .map(Zeroizing::new)
    }
}

/// The signing key pair on the token: the private half's handle and the
/// public point (uncompressed, 65 bytes).
#[derive(Clone, Debug)]
pub struct TokenEcKey {
    token: Arc<Token>,
    private: ObjectHandle,
    point: Vec<u8>,
}

impl TokenEcKey {
    /// The key pair labelled `label`; refused when its private half could
    /// be read out or it is not on P-256.
    pub fn open(token: &Arc<Token>, label: &str) -> anyhow::Result<Self> {
        let private = token.require(ObjectClass::PRIVATE_KEY, label, "private signing key")?;
        let public = token.require(ObjectClass::PUBLIC_KEY, label, "public signing key")?;
        if !token.guarded(private)? {
            bail!("the signing key {label:?} on token {:?} is extractable or not sensitive; make a new one with hsm-init", token.label);
        }
        let attributes = token.with_session(|s| {
            s.get_attributes(public, &[AttributeType::EcParams, AttributeType::EcPoint])
        })?;
        let mut params = None;
        let mut point = None;
        for attribute in attributes {
            match attribute {
                Attribute::EcParams(v) => params = Some(v),
                Attribute::EcPoint(v) => point = Some(v),
                _ => {}
            }
        }
        if params.as_deref() != Some(P256_OID.as_slice()) {
            bail!(
                "the signing key {label:?} on token {:?} is not on curve P-256",
                token.label
            );
        }
        let point = point
            .and_then(|p| uncompressed_point(&p))
            .ok_or_else(|| anyhow!("the public signing key {label:?} has no usable EC point"))?;
        Ok(TokenEcKey {
            token: Arc::clone(token),
            private,
            point,
        })
    }

    /// The public point, uncompressed (`04 || x || y`).
    pub fn point(&self) -> &[u8] {
        &self.point
    }

    /// The raw ECDSA signature (`r || s`, 64 bytes) of a SHA-256 digest.
    pub fn sign_digest(&self, digest: &[u8; 32]) -> anyhow::Result<Vec<u8>> {
        let signature = self
            .token
            .with_session(|s| s.sign(&Mechanism::Ecdsa, self.private, digest))?;
        if signature.len() != 64 {
            bail!(
                "the token gave a P-256 signature of {} bytes",
                signature.len()
            );
        }
        Ok(signature)
    }
}

/// The uncompressed point of a `CKA_EC_POINT`: the DER OCTET STRING the
/// standard asks for, or the bare point some tokens give.
fn uncompressed_point(value: &[u8]) -> Option<Vec<u8>> {
    match value {
        [0x04, 0x41, rest @ ..] if rest.len() == 65 && rest.first() == Some(&0x04) => {
            Some(rest.to_vec())
        }
        [0x04, ..] if value.len() == 65 => Some(value.to_vec()),
        _ => None,
    }
}

/// What [`init`] made or found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Inventory {
    /// The master key is on the token, sensitive and not extractable.
    pub master_key: bool,
    /// The signing key pair is on the token, its private half sensitive and
    /// not extractable.
    pub signing_key: bool,
}

/// What the token of `config` holds of the TTP's keys.
pub fn inventory(config: &HsmConfig) -> anyhow::Result<Inventory> {
    let token = Token::open(config)?;
    let master = token.find(ObjectClass::SECRET_KEY, &config.master_key_label)?;
    let private = token.find(ObjectClass::PRIVATE_KEY, &config.signing_key_label)?;
    let public = token.find(ObjectClass::PUBLIC_KEY, &config.signing_key_label)?;
    Ok(Inventory {
        master_key: match master {
            Some(h) => token.guarded(h)?,
            None => false,
        },
        signing_key: match (private, public) {
            (Some(h), Some(_)) => token.guarded(h)?,
            _ => false,
        },
    })
}

/// How [`init`] gets the keys.
#[derive(Debug, Default)]
pub struct InitSource<'a> {
    /// Import this master key (a database made with a key file moves to
    /// the token) instead of generating one.
    pub master_key: Option<&'a Zeroizing<[u8; 32]>>,
    /// Import this P-256 private key (PEM; the registries' pins stay)
    /// instead of generating one.
    pub signing_key_pem: Option<&'a [u8]>,
}

/// What [`init`] did with each key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Made {
    /// Generated on the token.
    Generated,
    /// Imported from a file.
    Imported,
    /// Already on the token; left as it was.
    Kept,
}

/// Makes the master key and the signing key pair on the token of
/// `config` that are not there yet, sensitive and not extractable: a new
/// `signing_key_label` thus gets a new key pair next to the kept master
/// key (the signing key's rotation). Refuses, changing nothing, when both
/// are there already, or when a key to import is there already.
pub fn init(config: &HsmConfig, source: &InitSource<'_>) -> anyhow::Result<(Made, Made)> {
    let token = Token::open(config)?;
    let master_there = token
        .find(ObjectClass::SECRET_KEY, &config.master_key_label)?
        .is_some();
    let private_there = token
        .find(ObjectClass::PRIVATE_KEY, &config.signing_key_label)?
        .is_some();
    let public_there = token
        .find(ObjectClass::PUBLIC_KEY, &config.signing_key_label)?
        .is_some();
    if private_there != public_there {
        bail!(
            "token {:?} holds only one half of the signing key pair {:?}; nothing was changed",
            config.token_label,
            config.signing_key_label
        );
    }
    let taken = |label: &str| {
        anyhow!(
            "token {:?} already holds a key labelled {label:?}; nothing was changed",
            config.token_label
        )
    };
    if master_there && private_there {
        return Err(taken(&config.master_key_label));
    }
    if master_there && source.master_key.is_some() {
        return Err(taken(&config.master_key_label));
    }
    if private_there && source.signing_key_pem.is_some() {
        return Err(taken(&config.signing_key_label));
    }
    // Everything that can be refused is checked before the first object is
    // made; an object made by this call is destroyed again when a later
    // step fails, so that a failed init leaves the token as it was.
    let imported_pair = match source.signing_key_pem {
        Some(pem) if !private_there => Some(p256_parts(pem)?),
        _ => None,
    };
    let mut made = Vec::new();
    let result = make_keys(
        &token,
        config,
        source.master_key.filter(|_| !master_there),
        master_there,
        imported_pair.as_ref(),
        private_there,
        &mut made,
    );
    if result.is_err() {
        for handle in made {
            // Best effort: the error of the step that failed is the one reported.
            let _ = token.with_session(|s| s.destroy_object(handle));
        }
    }
    result
}

/// The objects of [`init`], each handle it makes pushed to `made`.
fn make_keys(
    token: &Token,
    config: &HsmConfig,
    master_key: Option<&Zeroizing<[u8; 32]>>,
    master_there: bool,
    imported_pair: Option<&(Zeroizing<Vec<u8>>, Vec<u8>)>,
    private_there: bool,
    made: &mut Vec<ObjectHandle>,
) -> anyhow::Result<(Made, Made)> {
    let guarded = |label: &str| {
        vec![
            Attribute::Token(true),
            Attribute::Private(true),
            Attribute::Sensitive(true),
            Attribute::Extractable(false),
            Attribute::Label(label.as_bytes().to_vec()),
        ]
    };
    let mut master = guarded(&config.master_key_label);
    master.extend([
        Attribute::Encrypt(true),
        Attribute::Decrypt(true),
        Attribute::Wrap(false),
        Attribute::Unwrap(false),
        Attribute::Derive(false),
    ]);
    let master_made = match master_key {
        _ if master_there => Made::Kept,
        Some(key) => {
            master.extend([
                Attribute::Class(ObjectClass::SECRET_KEY),
                Attribute::KeyType(KeyType::AES),
                Attribute::Value(key.to_vec()),
            ]);
            made.push(token.with_session(|s| s.create_object(&master))?);
            Made::Imported
        }
        None => {
            master.push(Attribute::ValueLen(32.into()));
            made.push(token.with_session(|s| s.generate_key(&Mechanism::AesKeyGen, &master))?);
            Made::Generated
        }
    };
    let mut private = guarded(&config.signing_key_label);
    private.extend([Attribute::Sign(true), Attribute::Derive(false)]);
    let public_common = [
        Attribute::Token(true),
        Attribute::Private(false),
        Attribute::Verify(true),
        Attribute::Label(config.signing_key_label.as_bytes().to_vec()),
        Attribute::EcParams(P256_OID.to_vec()),
    ];
    let signing_made = match imported_pair {
        _ if private_there => Made::Kept,
        Some((scalar, point)) => {
            private.extend([
                Attribute::Class(ObjectClass::PRIVATE_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcParams(P256_OID.to_vec()),
                Attribute::Value(scalar.to_vec()),
            ]);
            let mut public = public_common.to_vec();
            let mut octets = vec![0x04, 0x41];
            octets.extend_from_slice(point);
            public.extend([
                Attribute::Class(ObjectClass::PUBLIC_KEY),
                Attribute::KeyType(KeyType::EC),
                Attribute::EcPoint(octets),
            ]);
            made.push(token.with_session(|s| s.create_object(&private))?);
            made.push(token.with_session(|s| s.create_object(&public))?);
            Made::Imported
        }
        None => {
            let (public, private) = token.with_session(|s| {
                s.generate_key_pair(&Mechanism::EccKeyPairGen, &public_common, &private)
            })?;
            made.extend([public, private]);
            Made::Generated
        }
    };
    Ok((master_made, signing_made))
}

/// The private scalar (32 bytes) and uncompressed public point of a PEM
/// P-256 private key.
fn p256_parts(pem: &[u8]) -> anyhow::Result<(Zeroizing<Vec<u8>>, Vec<u8>)> {
    use openssl::bn::BigNumContext;
    use openssl::ec::PointConversionForm;
    let key = openssl::pkey::PKey::private_key_from_pem(pem)
        .map_err(|_| anyhow!("the signing key to import is not a PEM private key"))?;
    let ec = key
        .ec_key()
        .map_err(|_| anyhow!("the signing key to import is not an EC key"))?;
    if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
        bail!("the signing key to import is not on curve P-256");
    }
    let scalar = Zeroizing::new(ec.private_key().to_vec_padded(32)?);
    let mut ctx = BigNumContext::new()?;
    let point =
        ec.public_key()
            .to_bytes(ec.group(), PointConversionForm::UNCOMPRESSED, &mut ctx)?;
    Ok((scalar, point))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ec_points_are_read_in_both_encodings() {
        let mut bare = vec![0x04];
        bare.extend([7u8; 64]);
        let mut der = vec![0x04, 0x41];
        der.extend(&bare);
        assert_eq!(uncompressed_point(&der).unwrap(), bare);
        assert_eq!(uncompressed_point(&bare).unwrap(), bare);
        assert!(uncompressed_point(&bare[..64]).is_none());
        let mut compressed = vec![0x02];
        compressed.extend([7u8; 32]);
        assert!(uncompressed_point(&compressed).is_none());
    }

    #[test]
    fn labels_are_checked() {
        let mut config = HsmConfig {
            module: "/usr/lib/softhsm/libsofthsm2.so".into(),
            token_label: "pseudoform".into(),
            pin_file: None,
            master_key_label: default_master_label(),
            signing_key_label: default_signing_label(),
        };
        assert!(config.validate().is_ok());
        config.signing_key_label = config.master_key_label.clone();
        assert!(config.validate().is_err());
        config.signing_key_label = default_signing_label();
        config.token_label = "x".repeat(33);
        assert!(config.validate().is_err());
    }
}
