-- summary.sql: the demo's closing report, from the transactions table
-- (labels and produced_at_us come from fs_gen's fields), the alerts and
-- alert_rx (the LISTEN client's receive time per alerted row key).
\set ON_ERROR_STOP 1
\pset footer off

\echo 'Throughput (rows ingested and scored by the workers):'
SELECT count(*) AS transactions,
       count(score) AS scored,
       round(count(*) / nullif(extract(epoch FROM max(ingested_at) - min(ingested_at)), 0)) AS ingested_per_s,
       round(count(*) / nullif((max(produced_at_us) - min(produced_at_us)) / 1e6, 0)) AS produced_per_s,
       (SELECT count(*) FROM clicks) AS clickstream_events
  FROM txn;

\echo 'Produce to NOTIFY latency (fs_gen produced_at_us to the LISTEN client receiving the alert), ms:'
SELECT 'all' AS alerts, count(*) AS notifications,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p50_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p99_ms,
       round(max(r.received_us - t.produced_at_us) / 1000.0, 1) AS max_ms
  FROM alert_rx r JOIN txn t ON t.txn_id = r.row_key::bigint
UNION ALL
SELECT 'after the first 15 s' AS alerts, count(*) AS notifications,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p50_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p99_ms,
       round(max(r.received_us - t.produced_at_us) / 1000.0, 1) AS max_ms
  FROM alert_rx r JOIN txn t ON t.txn_id = r.row_key::bigint
 WHERE t.produced_at_us >= (SELECT min(produced_at_us) + 15000000 FROM txn);

\echo 'Scoring inside PostgreSQL (fraudstream.model_stats), µs per row:'
SELECT model, version, rows_scored, alerts, round(latency_p50_us) AS p50_us, round(latency_p99_us) AS p99_us FROM fraudstream.model_stats;

\ir detection.sql
