//! The eventshop write side: the axum REST API under `/api/v1` (auth, ACL authorization,
//! idempotency, `If-Match` concurrency, OpenAPI) dispatching commands through the
//! `eventstore-config` command bus. May depend on `domain` and `eventstore-config`, never on the
//! read side (`projectors`, `query-api`). Not built yet: see the command REST API issue.
#![forbid(unsafe_code)]
