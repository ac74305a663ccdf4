//! Answers to accepted commands (the body plus an `ETag` carrying the new version) and the
//! response bodies the OpenAPI document describes.

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
    /// Global log position of `AccountRegistered`.
    pub position: Option<i64>,
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
