//! The two calls of a run, each retried where a retry is safe: the TTP's
//! batch evaluation ([`evaluate`]) and the registry's batch submission
//! ([`deliver`], idempotent by `batchId`, so a resend never duplicates a
//! record).
//!
//! A busy answer (429, 502–504, with or without `Retry-After`) or a lost
//! connection is retried (by default [`DEFAULT_RETRIES`] times) with a
//! growing pause, and so is the TTP's refusal of a spent DPoP proof (a load
//! balancer resent the request after a replica died; every try has a fresh
//! proof); any other refusal stops the run (the checkpoint keeps what is
//! done).

use std::time::Duration;

use pseudoform_protocol::auth::{DPOP_HEADER, PROOF_REPLAYED};
use pseudoform_protocol::client::{refusal_of, ClientError, TtpClient};
use pseudoform_protocol::registry::{
    batch_rec, submission_rec, BatchReceipt, BatchSubmission, BATCH_PATH,
};
use pseudoform_protocol::ttp::{BatchRequest, BatchResponse, EVALUATE_PATH};

/// How often a call is retried by default before the run stops.
pub const DEFAULT_RETRIES: u32 = 5;

/// The longest pause between two tries, in seconds.
pub const MAX_PAUSE_SECONDS: u64 = 30;

/// Why a call failed for good.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The TTP refused the evaluation or could not be reached.
    #[error("the TTP: {0}")]
    Ttp(String),
    /// The registry refused the batch or could not be reached.
    #[error("the registry: {0}")]
    Registry(String),
}

/// The pause before try `attempt` (from 1), or what `Retry-After` asks.
fn pause(attempt: u32, retry_after: Option<u64>) -> Duration {
    let backoff = 1u64 << attempt.min(5);
    Duration::from_secs(retry_after.unwrap_or(backoff).min(MAX_PAUSE_SECONDS))
}

/// `Retry-After` in seconds, if given as such.
fn retry_after(response: &reqwest::Response) -> Option<u64> {
    response
        .headers()
        .get("retry-after")?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()
}

/// Whether a status asks to come back later.
fn busy(status: u16) -> bool {
    matches!(status, 429 | 502 | 503 | 504)
}

/// The status and code of an error answer.
async fn refusal(response: reqwest::Response) -> String {
    let (status, code) = refusal_of(response).await;
    format!("HTTP {status}, code {code}")
}

/// What one try of a call came to.
enum Attempt {
    /// An answer (busy or not).
    Answer(reqwest::Response),
    /// No answer (a lost connection, a timeout): worth another try.
    Lost(String),
    /// A failure before anything was sent: not worth another.
    Failed(String),
}

/// Tries `send` until it is answered other than busy, at most `retries`
/// times more, pausing between tries; the last answer, or why there is none.
async fn until_answered<F, Fut>(retries: u32, mut send: F) -> Result<reqwest::Response, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Attempt>,
{
    let mut attempt = 0;
    loop {
        attempt += 1;
        let last = attempt > retries;
        match send().await {
            Attempt::Answer(response) if busy(response.status().as_u16()) && !last => {
                tokio::time::sleep(pause(attempt, retry_after(&response))).await;
            }
            Attempt::Answer(response) => return Ok(response),
            Attempt::Lost(_) if !last => tokio::time::sleep(pause(attempt, None)).await,
            Attempt::Lost(why) | Attempt::Failed(why) => return Err(why),
        }
    }
}

/// The record JWEs of `request`'s records, in order.
pub async fn evaluate(
    ttp: &TtpClient,
    request: &BatchRequest,
    retries: u32,
) -> Result<Vec<String>, RemoteError> {
    let response = until_answered(retries, || async {
        match ttp.post_json(EVALUATE_PATH, request).await {
            Ok(response) if response.status() == reqwest::StatusCode::UNAUTHORIZED => {
                match refusal_of(response).await {
                    // Sent twice on the way, not by this run: the next try
                    // has a fresh proof.
                    (_, code) if code == PROOF_REPLAYED => {
                        Attempt::Lost(format!("HTTP 401, code {code}"))
                    }
                    (status, code) => Attempt::Failed(format!("HTTP {status}, code {code}")),
                }
            }
            Ok(response) => Attempt::Answer(response),
            Err(ClientError::Http(e)) => Attempt::Lost(e.to_string()),
            Err(e) => Attempt::Failed(e.to_string()),
        }
    })
    .await
    .map_err(RemoteError::Ttp)?;
    if !response.status().is_success() {
        return Err(RemoteError::Ttp(refusal(response).await));
    }
    let answer: BatchResponse = response
        .json()
        .await
        .map_err(|e| RemoteError::Ttp(format!("unreadable answer: {e}")))?;
    if answer.records.len() != request.records.len() {
        return Err(RemoteError::Ttp(
            "the answer has another number of records".into(),
        ));
    }
    Ok(answer.records.into_iter().map(|r| r.jwe).collect())
}

/// Where and how to deliver.
#[derive(Debug, Clone)]
pub struct Delivery {
    /// The registry's URL to post to (without path).
    pub url: String,
    /// The URL it knows itself by: the proof's `htu` is `{public_url}/api/batches`.
    pub public_url: String,
    /// Retries of a batch the registry did not answer.
    pub retries: u32,
}

/// Delivers `batch` with a submitter proof of the DPoP key the TTP bound
/// its records to; resent as is (fresh proof) until the registry answers.
pub async fn deliver(
    http: &reqwest::Client,
    ttp: &TtpClient,
    delivery: &Delivery,
    batch: &BatchSubmission,
) -> Result<BatchReceipt, RemoteError> {
    let url = format!("{}{BATCH_PATH}", delivery.url.trim_end_matches('/'));
    let htu = format!("{}{BATCH_PATH}", delivery.public_url.trim_end_matches('/'));
    let recs: Vec<String> = batch.submissions.iter().map(submission_rec).collect();
    let recs: Vec<&str> = recs.iter().map(String::as_str).collect();
    let rec = batch_rec(&recs);
    let response = until_answered(delivery.retries, || async {
        let proof =
            match ttp
                .dpop_key()
                .submitter_proof(&htu, &rec, pseudoform_protocol::unix_now())
            {
                Ok(proof) => proof,
                Err(e) => return Attempt::Failed(e.to_string()),
            };
        match http
            .post(&url)
            .header(DPOP_HEADER, proof)
            .json(batch)
            .send()
            .await
        {
            Ok(response) => Attempt::Answer(response),
            Err(e) => Attempt::Lost(e.to_string()),
        }
    })
    .await
    .map_err(RemoteError::Registry)?;
    if response.status().as_u16() != 200 {
        return Err(RemoteError::Registry(refusal(response).await));
    }
    let receipt: BatchReceipt = response
        .json()
        .await
        .map_err(|e| RemoteError::Registry(format!("unreadable answer: {e}")))?;
    if receipt.batch_id != batch.batch_id || receipt.results.len() != batch.submissions.len() {
        return Err(RemoteError::Registry(
            "the receipt is of another batch".into(),
        ));
    }
    Ok(receipt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pauses_grow_and_are_bounded() {
        assert_eq!(pause(1, None), Duration::from_secs(2));
        assert_eq!(pause(3, None), Duration::from_secs(8));
        assert_eq!(pause(9, None), Duration::from_secs(30));
        assert_eq!(pause(1, Some(5)), Duration::from_secs(5));
        assert_eq!(pause(1, Some(3600)), Duration::from_secs(30));
        assert!(busy(429) && busy(503) && !busy(400) && !busy(500));
    }
}
