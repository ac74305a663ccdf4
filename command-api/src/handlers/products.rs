//! `POST /products`, `PATCH /products/{id}`, `POST /products/{id}/restock`.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use domain::product::{Product, ProductCommand};
use domain::{Currency, Money, Quantity};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use super::grant;
use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{IfMatch, JsonBody, PathId};
use crate::respond::{accepted, ProductCommitted};
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
    JsonBody(request): JsonBody<CreateProductRequest>,
) -> Result<Response, ApiError> {
    caller.require("post", "products", "*")?;
    let seller = Uuid::parse_str(&caller.id).map_err(ApiError::internal)?;
    let product_id = Uuid::now_v7();
    let id = product_id.to_string();
    let meta = caller.metadata();
    let committed = state
        .bus()
        .execute::<Product>(
            &id,
            ProductCommand::Create {
                product_id,
                seller,
                name: request.name,
                description: request.description,
                price: Money::new(request.price, request.currency),
                stock: request.stock,
            },
            &(),
            &meta,
        )
        .await?;
    grant(&state, &format!("{}:*:products:{id}", caller.id), &meta).await?;
    Ok(accepted(
        StatusCode::CREATED,
        committed.version,
        ProductCommitted {
            product_id,
            version: committed.version,
            position: committed.position,
        },
    ))
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
    JsonBody(request): JsonBody<PatchProductRequest>,
) -> Result<Response, ApiError> {
    let id = product_id.to_string();
    caller.require("patch", "products", &id)?;
    let price = match (request.price, request.currency) {
        (Some(amount), Some(currency)) => Some(Money::new(amount, currency)),
        (Some(amount), None) => {
            let current = state.store().load_current::<Product>(&id).await?.state;
            let currency = current
                .price()
                .map(|p| p.currency)
                .ok_or_else(|| ApiError::not_found("product not found", Some("id")))?;
            Some(Money::new(amount, currency))
        }
        (None, Some(_)) => {
            return Err(ApiError::unprocessable(
                "currency is given only together with price",
                Some("currency"),
            ))
        }
        (None, None) => None,
    };
    let committed = state
        .bus()
        .execute_expecting::<Product>(
            &id,
            ProductCommand::Update {
                name: request.name,
                description: request.description,
                price,
            },
            &(),
            &caller.metadata(),
            expected,
        )
        .await?;
    Ok(accepted(
        StatusCode::OK,
        committed.version,
        ProductCommitted {
            product_id,
            version: committed.version,
            position: committed.position,
        },
    ))
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
    JsonBody(request): JsonBody<RestockRequest>,
) -> Result<Response, ApiError> {
    let id = product_id.to_string();
    // `put`, not `post`: a seller's `post:products:*` (create) must not reach others' products.
    caller.require("put", "products", &id)?;
    let committed = state
        .bus()
        .execute_expecting::<Product>(
            &id,
            ProductCommand::Restock {
                quantity: request.quantity,
            },
            &(),
            &caller.metadata(),
            expected,
        )
        .await?;
    Ok(accepted(
        StatusCode::OK,
        committed.version,
        ProductCommitted {
            product_id,
            version: committed.version,
            position: committed.position,
        },
    ))
}
