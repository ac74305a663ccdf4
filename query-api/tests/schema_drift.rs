//! `query-api/schema.graphql` is the exported schema: it must match the code. After a schema
//! change, regenerate it with `UPDATE_SCHEMA=1 cargo test -p query-api --test schema_drift`.

use std::path::Path;

#[test]
fn the_exported_schema_matches_the_code() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schema.graphql");
    let current = query_api::sdl();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(&path, &current).expect("write schema.graphql");
    }
    let exported = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        exported == current,
        "query-api/schema.graphql is out of date: run \
         `UPDATE_SCHEMA=1 cargo test -p query-api --test schema_drift` and commit the file"
    );
}

#[test]
fn the_schema_has_the_documented_entry_points() {
    let sdl = query_api::sdl();
    for field in [
        "me(asOf: DateTime): Account!",
        "order(id: ID!, asOf: DateTime, atVersion: Int): Order",
        "product(id: ID!, asOf: DateTime, atVersion: Int): Product",
        "wallet(accountId: ID!, asOf: DateTime, atVersion: Int): Wallet",
        "account(id: ID!, asOf: DateTime, atVersion: Int): Account",
        "history(aggregateType: String!, aggregateId: ID!, afterVersion: Int, first: Int): [EventRecord!]!",
        "projections: [ProjectionInfo!]!",
    ] {
        assert!(sdl.contains(field), "schema lacks `{field}`:\n{sdl}");
    }
}
