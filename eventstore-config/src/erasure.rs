//! Erasure of an account's personal data (crypto-shredding): what `accounts erase` and
//! `DELETE /accounts/{id}?erase=true` run before `AccountErased` is appended. It ties the
//! owners together — `personal` (the key), `email_registry` (the claim), `snapshots` and the
//! log (`log`'s payload read and rewrite) — so that none of them depends on another for it.

use crate::personal::{self, PERSONAL_AGGREGATE};
use crate::store::Store;

/// Deletes what holds or unlocks the personal data of `account_id`, in one transaction: its
/// personal-data key (its sealed fields read "[erased]" from then on), its e-mail claim (the
/// address can register again), its snapshots (folded states with plaintext), and, in its
/// events written before sealing existed, the plaintext personal fields (replaced by
/// "[erased]": the one change ever made to stored events).
pub async fn forget(store: &Store, account_id: &str) -> Result<(), sqlx::Error> {
    let mut tx = store.begin().await?;
    personal::delete_key(&mut tx, account_id).await?;
    crate::email_registry::release(account_id)
        .execute(&mut tx)
        .await?;
    crate::snapshots::forget(PERSONAL_AGGREGATE, account_id)
        .execute(&mut tx)
        .await?;
    let registered =
        crate::log::aggregate_payloads(&mut tx, PERSONAL_AGGREGATE, account_id).await?;
    for (sequence, event_type, mut payload) in registered {
        if personal::erase_plaintext(
            &mut payload,
            personal::personal_fields(PERSONAL_AGGREGATE, &event_type),
        ) {
            crate::log::rewrite_payload(&mut tx, PERSONAL_AGGREGATE, account_id, sequence, payload)
                .await?;
        }
    }
    tx.commit().await
}
