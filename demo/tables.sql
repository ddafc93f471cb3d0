-- tables.sql: the transactions table (included by setup.sql and
-- evaluate.sh).  Columns are named after fs_gen's fields.

-- Transactions: a plain table, scored on insert.  ingested_at is the
-- start of the worker's batch transaction (now() is stable: the worker
-- keeps multi-row inserts); produced_at_us is stamped by fs_gen.
CREATE TABLE txn (
    txn_id         bigint PRIMARY KEY,
    ts             timestamptz NOT NULL,
    card_id        bigint,
    account_id     bigint,
    customer_id    bigint,
    merchant_id    bigint,
    mcc            text,
    amount         float8,
    currency       text,
    device_id      bigint,
    ip             inet,
    lat            float8,
    lon            float8,
    channel        text,
    is_fraud       boolean,
    fraud_pattern  text,
    produced_at_us bigint,
    score          float8,
    ingested_at    timestamptz DEFAULT now()
);
