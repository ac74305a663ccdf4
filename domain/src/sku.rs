//! Stock-keeping units: the SKU a product gets without one, and the `ProductCreated` v1 → v2
//! upcaster step that gives it to products created before SKUs existed ([`crate::upcast`]).

use uuid::Uuid;

/// The SKU of a product created without one (and of every product created before SKUs existed:
/// the `ProductCreated` v1 → v2 upcaster): `P-` and the product id's 32 hex digits, upper case.
pub fn default_sku(product_id: Uuid) -> String {
    format!("P-{}", product_id.simple()).to_uppercase()
}

/// `ProductCreated` v1 → v2: v1 had no SKU; the product gets [`default_sku`] of its id.
pub(crate) fn product_created_v1_to_v2(
    data: &mut serde_json::Map<String, serde_json::Value>,
) -> Result<(), String> {
    let product_id: Uuid = data
        .get("product_id")
        .and_then(serde_json::Value::as_str)
        .and_then(|id| id.parse().ok())
        .ok_or("no product_id")?;
    data.entry("sku")
        .or_insert_with(|| default_sku(product_id).into());
    Ok(())
}
