-- Products have a stock-keeping unit since ProductCreated v2. Every product created before had
-- none: the v1 -> v2 upcaster gives it `P-` and its id's 32 hex digits in upper case
-- (domain::product::default_sku), and so does this back-fill of the rows projected before.
ALTER TABLE rm_products ADD COLUMN sku text NOT NULL DEFAULT '';
UPDATE rm_products SET sku = 'P-' || UPPER(REPLACE(id, '-', ''));
