-- Crypto-shredding: each account's personal-data key, outside the log. The personal fields of
-- its events (e-mail, name, password hash) are stored sealed with it (AES-256-GCM); erasing the
-- account deletes the key, and the fields read "[erased]" from then on.
CREATE TABLE personal_data_keys
(
    account_id text PRIMARY KEY,
    key        text NOT NULL,
    created_at text NOT NULL
) STRICT;

-- The e-mail uniqueness index keeps no e-mail: a keyed hash (HMAC-SHA256, hex) of the
-- normalised address. Rows written before hold the address; the first process to load the
-- index key converts them (eventstore_config::personal).
ALTER TABLE email_claims RENAME COLUMN email TO email_hash;
CREATE INDEX email_claims_account ON email_claims (account_id);
