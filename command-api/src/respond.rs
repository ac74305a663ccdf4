//! Answers to accepted commands (the body plus an `ETag` carrying the new version) and the
//! response bodies the OpenAPI document describes. A [`Reply`] is built before it is sent, so
//! that an idempotent request's answer can be stored, byte for byte, in its use case's
//! transaction.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use utoipa::ToSchema;
use uuid::Uuid;

/// An accepted command on an account or its wallet.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct AccountCommitted {
    /// The account (and wallet) id.
    pub account_id: Uuid,
    /// The aggregate's new version.
    pub version: u64,
    /// Global log position of the last appended event (null if nothing was appended).
    pub position: Option<i64>,
}

/// An accepted command on a product.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProductCommitted {
    /// The product id.
    pub product_id: Uuid,
    /// The product's new version.
    pub version: u64,
    /// Global log position of the last appended event (null if nothing was appended).
    pub position: Option<i64>,
}

/// An accepted command on an order.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct OrderCommitted {
    /// The order id.
    pub order_id: Uuid,
    /// The order's new version.
    pub version: u64,
    /// Global log position of the last appended event (null if nothing was appended).
    pub position: Option<i64>,
}

/// An accepted change of a subject's policies.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PolicyCommitted {
    /// The subject whose policy set changed.
    pub subject: String,
    /// The policy set's new version.
    pub version: u64,
    /// Global log position of the appended event (null for a no-op repeat).
    pub position: Option<i64>,
}

/// A registered account and its first tokens.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Registered {
    /// The new account's id.
    pub account_id: Uuid,
    /// Bearer token for API calls.
    pub access_token: String,
    /// Token for `POST /sessions/refresh`.
    pub refresh_token: String,
    /// The account's version (1).
    pub version: u64,
    /// Global log position of the last event the registration appended (its wallet and grants
    /// commit with the account).
    pub position: Option<i64>,
}

/// What a registration's idempotency record keeps: [`Registered`] without its tokens. A replay
/// issues fresh tokens for the account.
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct RegisteredRecord {
    /// The new account's id.
    pub account_id: Uuid,
    /// The account's version (1).
    pub version: u64,
    /// Global log position of the last event the registration appended (its wallet and grants
    /// commit with the account).
    pub position: Option<i64>,
}

impl RegisteredRecord {
    /// The answer with fresh `tokens`.
    pub fn with_tokens(&self, tokens: access::TokenPair) -> Registered {
        Registered {
            account_id: self.account_id,
            access_token: tokens.access_token,
            refresh_token: tokens.refresh_token,
            version: self.version,
            position: self.position,
        }
    }
}

/// A session: a new token pair.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Session {
    /// The account id.
    pub account_id: Uuid,
    /// Bearer token for API calls.
    pub access_token: String,
    /// Token for `POST /sessions/refresh` (usable once).
    pub refresh_token: String,
}

/// `status` with `body` as JSON and `ETag: "<version>"`.
pub fn accepted<T: Serialize>(status: StatusCode, version: u64, body: T) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
        response.headers_mut().insert(header::ETAG, etag);
    }
    response
}

/// An answer built before it is sent: status, JSON body bytes and the version for `ETag`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The status.
    pub status: StatusCode,
    /// The aggregate's version (the `ETag`), if any.
    pub version: Option<u64>,
    /// The JSON body.
    pub body: Vec<u8>,
}

impl Reply {
    /// `status` with `body` as JSON and `ETag: "<version>"`.
    pub fn json<T: Serialize>(status: StatusCode, version: u64, body: &T) -> Self {
        Self {
            status,
            version: Some(version),
            // Serializing these plain structs cannot fail; an empty object is never sent.
            body: serde_json::to_vec(body).unwrap_or_else(|_| b"{}".to_vec()),
        }
    }

    /// The headers this answer carries (the ones an idempotency record keeps).
    pub fn headers(&self) -> Vec<(String, String)> {
        let mut headers = vec![(
            header::CONTENT_TYPE.as_str().to_owned(),
            "application/json".to_owned(),
        )];
        if let Some(version) = self.version {
            headers.push((header::ETAG.as_str().to_owned(), format!("\"{version}\"")));
        }
        headers
    }
}

impl IntoResponse for Reply {
    fn into_response(self) -> Response {
        let mut response = (self.status, self.body).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Some(version) = self.version {
            if let Ok(etag) = HeaderValue::from_str(&format!("\"{version}\"")) {
                response.headers_mut().insert(header::ETAG, etag);
            }
        }
        response
    }
}
