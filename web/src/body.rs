//! Bounded request-body reads. A server that answers 413 while the client is still sending, and
//! then closes the connection, makes the kernel reset it: the client often sees a broken
//! connection instead of the 413. So a refused body is read on (and dropped) up to
//! [`DRAIN_FACTOR`] times the limit before the answer goes out; the body deadline
//! ([`crate::deadline`]) bounds how long that can take.

use axum::body::{Body, Bytes};
use futures::StreamExt;

/// A refused body is drained up to this many times the limit before the answer.
pub const DRAIN_FACTOR: usize = 16;

/// Why a body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// It is longer than the limit (declared or as it streamed in).
    #[error("the request body is larger than {limit} bytes")]
    TooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The stream broke or its deadline passed (the source says which).
    #[error("cannot read the request body: {0}")]
    Read(#[source] axum::Error),
}

/// Whether a request declaring `content_length` is over `limit`.
pub fn declared_over(headers: &axum::http::HeaderMap, limit: usize) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|length| length > limit as u64)
}

/// Reads and drops up to `limit × DRAIN_FACTOR` bytes of what is left of `body`.
pub async fn drain(body: Body, limit: usize) {
    let cap = limit.saturating_mul(DRAIN_FACTOR);
    let mut stream = body.into_data_stream();
    let mut read = 0usize;
    while let Some(Ok(chunk)) = stream.next().await {
        read = read.saturating_add(chunk.len());
        if read > cap {
            break;
        }
    }
}

/// The whole body if it is at most `limit` bytes. A larger one is drained (see [`drain`]) and
/// refused with [`BodyError::TooLarge`].
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut collected: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if collected.len().saturating_add(chunk.len()) > limit {
            drain(Body::from_stream(stream), limit).await;
            return Err(BodyError::TooLarge { limit });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}
