//! Re-pseudonymisation after a key rotation at the TTP.
//!
//! For every stored label of key version `from` (whose record has no label
//! of the same type under `to` yet), the registry draws a fresh random
//! scalar `s`, sends `s·N` to the TTP's `POST /v1/rekey`, gets back
//! `(k_to/k_from)·s·N` and removes `s` again: `N' = k_to·H(x)`, the label the
//! same person gets from new submissions under version `to`. The TTP sees only
//! uniformly random elements (a fresh `s` per element, so it cannot even tell
//! which of them are equal); the registry never sees `k`. New labels are
//! stored as current, the old ones kept as not current.
//!
//! The registry authenticates as the TTP's *recipient* caller
//! ([`Authority::Client`]): `private_key_jwt` with its own P-256 key and
//! DPoP-bound tokens of scope `rekey` ([`TtpClient`]); a recipient caller
//! can only re-key, never evaluate. A static bearer token
//! ([`Authority::DevelopmentToken`]) is only for a TTP in development mode.

use std::sync::Arc;

use anyhow::Context;
use curve25519_dalek::scalar::Scalar;
use pseudoform_core::encoding;
use pseudoform_core::oprf::{self, Blind};
use pseudoform_protocol::client::{EcKey, TtpClient};
use pseudoform_protocol::registry::label;
use pseudoform_protocol::ttp::{RekeyRequest, RekeyResponse};
use pseudoform_protocol::ErrorBody;

use crate::store::{Store, VersionedPseudonym};

/// The TTP's re-keying endpoint.
const REKEY_PATH: &str = "/v1/rekey";

/// Default number of elements per `POST /v1/rekey`.
pub const DEFAULT_CHUNK: usize = 1000;

/// How the registry authenticates at the TTP.
#[derive(Clone, Debug)]
pub enum Authority {
    /// The registry's recipient caller: `private_key_jwt` + DPoP, scope
    /// `rekey`.
    Client(Arc<TtpClient>),
    /// DEVELOPMENT ONLY: a static bearer token of a TTP in development mode.
    DevelopmentToken(String),
}

impl Authority {
    /// The registry's recipient caller `client_id` at the TTP `ttp_url`
    /// (its public URL; `issuer` if the TTP's issuer differs), with its
    /// client key `key`.
    pub fn client(
        ttp_url: &str,
        client_id: &str,
        key: EcKey,
        issuer: Option<&str>,
    ) -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let mut client = TtpClient::new(http, ttp_url, client_id, key)
            .context("cannot make the TTP client")?
            .scope(pseudoform_protocol::auth::SCOPE_REKEY);
        if let Some(issuer) = issuer {
            client = client.issuer(issuer);
        }
        Ok(Authority::Client(Arc::new(client)))
    }
}

/// What to re-key, and where.
#[derive(Clone, Debug)]
pub struct Rekey {
    /// Base URL of the TTP (`http://127.0.0.1:8080`).
    pub ttp_url: String,
    /// How the registry authenticates.
    pub authority: Authority,
    /// The registry's organisation.
    pub recipient_organization: String,
    /// The registry's scope.
    pub recipient_scope: String,
    /// Key version the stored labels were made under.
    pub from: u32,
    /// Key version to move them to.
    pub to: u32,
    /// Elements per request (at least 1).
    pub chunk: usize,
}

/// What a rekey did.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RekeyReport {
    /// Labels of version `from` that were sent to the TTP.
    pub sent: usize,
    /// New labels of version `to` that were stored.
    pub added: usize,
}

/// One element blinded for the TTP, with its factor kept to remove it.
struct Blinded {
    factor: Blind,
    element: String,
}

fn blind_label(stored: &VersionedPseudonym) -> anyhow::Result<Blinded> {
    let (_, b64) = stored
        .label
        .rsplit_once(':')
        .context("a stored label is malformed")?;
    let n_bytes = encoding::decode_array::<32>(b64)
        .map_err(|_| anyhow::anyhow!("a stored label is malformed"))?;
    let n = oprf::decode_element(&n_bytes)
        .map_err(|_| anyhow::anyhow!("a stored label is not a group element"))?;
    let mut random = zeroize::Zeroizing::new([0u8; 64]);
    getrandom::getrandom(random.as_mut()).context("no randomness")?;
    let factor = Blind::from_uniform_bytes(&random)
        .map_err(|_| anyhow::anyhow!("drawing a blinding factor failed"))?;
    let s: Option<Scalar> = Scalar::from_canonical_bytes(*factor.to_bytes()).into();
    let s = zeroize::Zeroizing::new(s.context("drawing a blinding factor failed")?);
    let element = encoding::encode((n * *s).compress().as_bytes());
    Ok(Blinded { factor, element })
}

impl Rekey {
    /// Runs the rekey against `store`.
    pub async fn run(&self, store: &Store) -> anyhow::Result<RekeyReport> {
        anyhow::ensure!(
            self.from > 0 && self.to > 0 && self.from != self.to,
            "from and to must be two different key versions"
        );
        let todo = store
            .pseudonyms_to_rekey(self.from, self.to)
            .context("reading the labels to rekey failed")?;
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .build()
            .context("cannot build the HTTP client")?;
        let url = format!("{}{REKEY_PATH}", self.ttp_url.trim_end_matches('/'));
        let mut report = RekeyReport { sent: 0, added: 0 };
        for chunk in todo.chunks(self.chunk.max(1)) {
            let blinded = chunk
                .iter()
                .map(blind_label)
                .collect::<anyhow::Result<Vec<_>>>()?;
            let request = RekeyRequest {
                recipient_organization: self.recipient_organization.clone(),
                recipient_scope: self.recipient_scope.clone(),
                from_version: self.from,
                to_version: self.to,
                blinded_pseudonyms: blinded.iter().map(|b| b.element.clone()).collect(),
            };
            let response = match &self.authority {
                Authority::Client(ttp) => ttp
                    .post_json(REKEY_PATH, &request)
                    .await
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                Authority::DevelopmentToken(token) => client
                    .post(&url)
                    .bearer_auth(token)
                    .json(&request)
                    .send()
                    .await
                    .context("the TTP cannot be reached")?,
            };
            let status = response.status();
            if !status.is_success() {
                let code = response
                    .json::<ErrorBody>()
                    .await
                    .map(|b| b.code)
                    .unwrap_or_else(|_| "unknown".into());
                anyhow::bail!("the TTP refused the rekey: HTTP {status}, code {code}");
            }
            let answer: RekeyResponse = response
                .json()
                .await
                .context("the TTP's rekey answer is malformed")?;
            anyhow::ensure!(
                answer.elements.len() == chunk.len(),
                "the TTP answered {} elements for {}",
                answer.elements.len(),
                chunk.len()
            );
            let mut labels = Vec::with_capacity(chunk.len());
            for ((stored, b), element) in chunk.iter().zip(&blinded).zip(&answer.elements) {
                let z = encoding::decode_array::<32>(element)
                    .map_err(|_| anyhow::anyhow!("the TTP answered a malformed element"))?;
                let n = oprf::unblind(&b.factor, &z)
                    .map_err(|_| anyhow::anyhow!("the TTP answered an invalid element"))?;
                labels.push((
                    stored.record_id,
                    stored.pseudonym_type.clone(),
                    label(&stored.pseudonym_type, self.to, &encoding::encode(&n)),
                ));
            }
            report.sent += chunk.len();
            report.added += store
                .insert_rekeyed(self.from, self.to, &labels)
                .context("storing the new labels failed")?;
        }
        Ok(report)
    }
}
