//! `POST /products`, `PATCH /products/{id}`, `POST /products/{id}/restock`.

use application::{products, Done};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{Currency, Money, Quantity};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, JsonBody, PathId};
use crate::idempotency::Idempotent;
use crate::respond::{ProductCommitted, Reply};
use crate::state::AppState;

/// `POST /products`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProductRequest {
    /// 1 to 200 characters.
    #[schema(
        example = "Teapot",
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: String,
    /// At most 2000 characters.
    #[serde(default)]
    #[schema(max_length = 2000)]
    pub description: String,
    /// Stock-keeping unit: 1 to 40 letters, digits, `-`, `_` or `.` (nothing else, blanks
    /// included: it is not trimmed). Without one the product
    /// gets `P-` and its id's 32 hex digits in upper case.
    #[serde(default)]
    #[schema(
        example = "TEA-POT-1",
        max_length = 40,
        pattern = r"^[A-Za-z0-9._-]{1,40}$"
    )]
    pub sku: Option<String>,
    /// Unit price in minor units, greater than zero.
    #[schema(example = 1390, minimum = 1)]
    pub price: i64,
    /// ISO 4217 code of the price.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
    /// Initial stock on hand (0 to 4,294,967,295).
    #[schema(example = 100, value_type = i64, minimum = 0, maximum = 4_294_967_295_i64)]
    pub stock: u32,
}

/// Create a product (sellers and admins); the seller may then do anything with it.
#[utoipa::path(
    post, path = "/api/v1/products", tag = "products",
    request_body = CreateProductRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries")),
    responses(
        (status = 201, description = "created", body = ProductCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not a seller", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<CreateProductRequest>,
) -> Result<Response, ApiError> {
    caller.require("post", "products", "*")?;
    let seller = Uuid::parse_str(&caller.id).map_err(ApiError::internal)?;
    let reply = |created: &products::Created| {
        product_reply(StatusCode::CREATED, created.product_id, &created.done)
    };
    let record = idempotent.record(reply);
    let result = products::create_product(
        state.app(),
        &caller.metadata(),
        seller,
        products::NewProduct {
            name: request.name,
            description: request.description,
            sku: request.sku,
            price: Money::new(request.price, request.currency),
            stock: request.stock,
        },
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

fn product_reply(status: StatusCode, product_id: Uuid, done: &Done) -> Reply {
    Reply::json(
        status,
        done.version,
        &ProductCommitted {
            product_id,
            version: done.version,
            position: done.position,
        },
    )
}

/// `PATCH /products/{id}`: at least one field.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchProductRequest {
    /// A new name (1 to 200 characters).
    #[schema(
        max_length = 200,
        pattern = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$"
    )]
    pub name: Option<String>,
    /// A new description (at most 2000 characters).
    #[schema(max_length = 2000)]
    pub description: Option<String>,
    /// A new unit price in minor units, greater than zero.
    #[schema(minimum = 1)]
    pub price: Option<i64>,
    /// Currency of the new price (default: the current price's).
    #[schema(value_type = Option<String>, example = "EUR")]
    pub currency: Option<Currency>,
}

/// Change a product's name, description or price.
#[utoipa::path(
    patch, path = "/api/v1/products/{id}", tag = "products",
    request_body = PatchProductRequest,
    params(
        ("id" = Uuid, Path, description = "product id"),
        ("If-Match" = Option<String>, Header, description = "expected product version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 200, description = "updated", body = ProductCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such product", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "invalid field or nothing to update", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn patch(
    State(state): State<AppState>,
    caller: Caller,
    PathId(product_id): PathId,
    IfMatch(expected): IfMatch,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<PatchProductRequest>,
) -> Result<Response, ApiError> {
    caller.require("patch", "products", &product_id.to_string())?;
    let reply = move |done: &Done| product_reply(StatusCode::OK, product_id, done);
    let record = idempotent.record(reply);
    let result = products::update_product(
        state.app(),
        &caller.metadata(),
        product_id,
        products::ProductUpdate {
            name: request.name,
            description: request.description,
            price: request.price,
            currency: request.currency,
        },
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

/// `POST /products/{id}/restock`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RestockRequest {
    /// How many to add, 1 to 1,000,000.
    #[schema(value_type = u32, example = 5, minimum = 1, maximum = 1_000_000)]
    pub quantity: Quantity,
}

/// Add stock on hand.
#[utoipa::path(
    post, path = "/api/v1/products/{id}/restock", tag = "products",
    request_body = RestockRequest,
    params(
        ("id" = Uuid, Path, description = "product id"),
        ("If-Match" = Option<String>, Header, description = "expected product version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 200, description = "restocked", body = ProductCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such product", body = ErrorBody),
        (status = 409, description = "stale If-Match", body = ErrorBody),
        (status = 422, description = "invalid quantity", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn restock(
    State(state): State<AppState>,
    caller: Caller,
    PathId(product_id): PathId,
    IfMatch(expected): IfMatch,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<RestockRequest>,
) -> Result<Response, ApiError> {
    // `put`, not `post`: a seller's `post:products:*` (create) must not reach others' products.
    caller.require("put", "products", &product_id.to_string())?;
    let reply = move |done: &Done| product_reply(StatusCode::OK, product_id, done);
    let record = idempotent.record(reply);
    let result = products::restock(
        state.app(),
        &caller.metadata(),
        product_id,
        request.quantity,
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}
