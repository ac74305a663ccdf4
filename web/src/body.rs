//! Bounded request-body reads: a body over the limit is refused as soon as the limit is passed,
//! or before it is read when its declared `Content-Length` says so.

use axum::body::{Body, Bytes};
use futures::StreamExt;

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

/// The whole body if it is at most `limit` bytes, else [`BodyError::TooLarge`] as soon as the
/// limit is passed (the server reads the rest before it answers: see [`crate::leftover`]).
pub async fn read_limited(body: Body, limit: usize) -> Result<Bytes, BodyError> {
    let mut stream = body.into_data_stream();
    let mut collected: Vec<u8> = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(BodyError::Read)?;
        if collected.len().saturating_add(chunk.len()) > limit {
            return Err(BodyError::TooLarge { limit });
        }
        collected.extend_from_slice(&chunk);
    }
    Ok(Bytes::from(collected))
}
