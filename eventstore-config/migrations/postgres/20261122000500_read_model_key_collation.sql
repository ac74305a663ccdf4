-- Read-model keys and audit look-up columns hold ASCII identifiers (UUIDs, aggregate types,
-- "system"): compare them byte-wise (COLLATE "C"). PostgreSQL sorts and indexes such columns
-- several times faster than under a libc locale (abbreviated keys, no strcoll), which is most of
-- the cost of building a rebuild's indexes. For ASCII identifiers the order is unchanged under
-- C.UTF-8; under other locales, cursors over ids now follow byte order.
ALTER TABLE rm_accounts ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE rm_products ALTER COLUMN id TYPE text COLLATE "C";
ALTER TABLE rm_orders
    ALTER COLUMN id TYPE text COLLATE "C",
    ALTER COLUMN account_id TYPE text COLLATE "C";
ALTER TABLE rm_wallets ALTER COLUMN account_id TYPE text COLLATE "C";
ALTER TABLE rm_wallet_transactions ALTER COLUMN account_id TYPE text COLLATE "C";
ALTER TABLE rm_policies ALTER COLUMN subject TYPE text COLLATE "C";
ALTER TABLE rm_audit
    ALTER COLUMN aggregate_type TYPE text COLLATE "C",
    ALTER COLUMN aggregate_id TYPE text COLLATE "C",
    ALTER COLUMN actor TYPE text COLLATE "C",
    ALTER COLUMN correlation_id TYPE text COLLATE "C";
