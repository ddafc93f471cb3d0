-- setup.sql: the demo's tables, Kafka sources, features and model.
--
-- Run by demo/run.sh (and bench/e2e_latency.bench.sh) with psql variables
--   brokers     the Kafka bootstrap servers
--   txn_topic   the transactions topic      (fs_gen --txn-topic)
--   event_topic the clickstream topic       (fs_gen --event-topic)
-- Columns are named after fs_gen's JSON fields (bench/gen/README.md): the
-- sources map JSON keys to columns by name.
\set ON_ERROR_STOP 1

CREATE EXTENSION IF NOT EXISTS fraudstream;

\ir tables.sql

-- Clickstream and logins: a ring holding the last hour (and a step) of
-- events.  Its account_id and device_id columns have the same names and
-- types as the transactions', so the scoring trigger reads its features
-- for each transaction (a probe at the transaction's ts).
SELECT fraudstream.create_ring('clicks',
    'event_id bigint, ts timestamptz, account_id bigint, customer_id bigint,
     device_id bigint, ip inet, lat float8, lon float8, type text,
     is_fraud boolean, fraud_pattern text, produced_at_us bigint',
    'account_id', 'ts', '1 hour');

SELECT fraudstream.create_source('transactions', 'txn', :'brokers', :'txn_topic');
SELECT fraudstream.create_source('clickstream', 'clicks', :'brokers', :'event_topic');

\ir features.sql
\ir model.sql

SELECT fraudstream.attach('txn', key_column => 'txn_id', score_column => 'score',
                          model => 'demo', store_scores => false);
