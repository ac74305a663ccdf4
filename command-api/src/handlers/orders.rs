//! `POST /orders` and `POST /orders/{id}/cancel`. Reserving stock and taking payment are the
//! saga's work, after `OrderPlaced`: placing answers 202.

use application::{orders, Done};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use domain::{Currency, Quantity};
use serde::Deserialize;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::authz::Caller;
use crate::error::{ApiError, ErrorBody};
use crate::extract::{parse_json, IfMatch, JsonBody, PathId};
use crate::idempotency::Idempotent;
use crate::respond::{OrderCommitted, Reply};
use crate::state::AppState;

pub use application::orders::MAX_REASON_LEN;

/// One line of `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderItemRequest {
    /// The product.
    pub product_id: Uuid,
    /// How many, 1 to 1,000,000.
    #[schema(value_type = u32, example = 2, minimum = 1, maximum = 1_000_000)]
    pub quantity: Quantity,
}

/// `POST /orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PlaceOrderRequest {
    /// 1 to 100 lines, distinct products.
    #[schema(min_items = 1, max_items = 100)]
    pub items: Vec<OrderItemRequest>,
    /// ISO 4217 code; every product's price must be in it.
    #[schema(value_type = String, example = "EUR")]
    pub currency: Currency,
}

/// Place an order at the products' current prices (answered before the saga reserves stock).
#[utoipa::path(
    post, path = "/api/v1/orders", tag = "orders",
    request_body = PlaceOrderRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries")),
    responses(
        (status = 202, description = "placed; reservation and payment follow", body = OrderCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "a product does not exist", body = ErrorBody),
        (status = 422, description = "invalid field or a price in another currency", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
#[tracing::instrument(skip_all, fields(caller = %caller.id))]
pub async fn place(
    State(state): State<AppState>,
    caller: Caller,
    idempotent: Idempotent,
    JsonBody(request): JsonBody<PlaceOrderRequest>,
) -> Result<Response, ApiError> {
    caller.require("post", "orders", "*")?;
    let account_id = Uuid::parse_str(&caller.id).map_err(ApiError::internal)?;
    let items: Vec<orders::Item> = request
        .items
        .iter()
        .map(|item| orders::Item {
            product_id: item.product_id,
            quantity: item.quantity,
        })
        .collect();
    let reply =
        |placed: &orders::Placed| order_reply(StatusCode::ACCEPTED, placed.order_id, &placed.done);
    let record = idempotent.record(reply);
    let result = orders::place_order(
        state.app(),
        &caller.metadata(),
        account_id,
        &items,
        request.currency,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

fn order_reply(status: StatusCode, order_id: Uuid, done: &Done) -> Reply {
    Reply::json(
        status,
        done.version,
        &OrderCommitted {
            order_id,
            version: done.version,
            position: done.position,
        },
    )
}

/// `POST /orders/{id}/cancel` (the body may be empty).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrderRequest {
    /// Why (at most 500 characters).
    #[schema(max_length = 500)]
    pub reason: Option<String>,
}

/// Cancel an order that is pending or awaiting payment.
#[utoipa::path(
    post, path = "/api/v1/orders/{id}/cancel", tag = "orders",
    request_body = CancelOrderRequest,
    params(
        ("id" = Uuid, Path, description = "order id"),
        ("If-Match" = Option<String>, Header, description = "expected order version"),
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe retries"),
    ),
    responses(
        (status = 200, description = "canceled", body = OrderCommitted),
        (status = 401, description = "no valid token", body = ErrorBody),
        (status = 403, description = "not allowed", body = ErrorBody),
        (status = 404, description = "no such order", body = ErrorBody),
        (status = 409, description = "the order already left a cancelable state, or stale If-Match", body = ErrorBody),
        (status = 422, description = "invalid field", body = ErrorBody),
    ),
    security(("bearer" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    PathId(order_id): PathId,
    IfMatch(expected): IfMatch,
    idempotent: Idempotent,
    body: OptionalBody,
) -> Result<Response, ApiError> {
    caller.require("put", "orders", &order_id.to_string())?;
    let request: CancelOrderRequest = match body.0 {
        Some(bytes) => parse_json(&bytes)?,
        None => CancelOrderRequest::default(),
    };
    let reply = move |done: &Done| order_reply(StatusCode::OK, order_id, done);
    let record = idempotent.record(reply);
    let result = orders::cancel_order(
        state.app(),
        &caller.metadata(),
        order_id,
        request.reason,
        expected,
        record.as_deref(),
    )
    .await;
    idempotent.settle(&result);
    Ok(reply(&result?).into_response())
}

/// A body that may be empty (whitespace only counts as empty). A non-empty one must come as
/// JSON (else 415).
#[derive(Debug)]
pub struct OptionalBody(pub Option<Bytes>);

impl axum::extract::FromRequest<AppState> for OptionalBody {
    type Rejection = ApiError;

    async fn from_request(
        req: axum::extract::Request,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let limit = state.settings().max_body_bytes;
        let headers = req.headers().clone();
        let bytes = crate::extract::read_body(req.into_body(), limit).await?;
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalBody(None));
        }
        crate::extract::check_content_type(&headers)?;
        Ok(OptionalBody(Some(bytes)))
    }
}
