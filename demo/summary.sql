-- summary.sql: the demo's closing report, from the transactions table
-- (labels and produced_at_us come from fs_gen's fields), the alerts and
-- alert_rx (the LISTEN client's receive time per alerted row key).
-- Rules are attributed to patterns by the prefix of their names
-- (model.sql): ct_ card_testing, ato_ account_takeover,
-- it_ impossible_travel, as_ amount_spike, mc_ merchant_collusion.
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
SELECT count(*) AS notifications,
       round((percentile_cont(0.5) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p50_ms,
       round((percentile_cont(0.99) WITHIN GROUP (ORDER BY r.received_us - t.produced_at_us) / 1000)::numeric, 1) AS p99_ms,
       round(max(r.received_us - t.produced_at_us) / 1000.0, 1) AS max_ms
  FROM alert_rx r JOIN txn t ON t.txn_id = r.row_key::bigint;

\echo 'Scoring inside PostgreSQL (fraudstream.model_stats), µs per row:'
SELECT model, version, rows_scored, alerts, round(latency_p50_us) AS p50_us, round(latency_p99_us) AS p99_us FROM fraudstream.model_stats;

\echo 'Detection per injected pattern, over the scored rows (recall: share of the pattern''s transactions alerted; precision: share of the alerts raised by the pattern''s rules that are fraud):'
WITH patterns(pattern, prefix, ord) AS (
    VALUES ('card_testing', 'ct_', 1), ('account_takeover', 'ato_', 2),
           ('impossible_travel', 'it_', 3), ('amount_spike', 'as_', 4),
           ('merchant_collusion', 'mc_', 5)),
alerted AS (
    SELECT row_key::bigint AS txn_id,
           ARRAY(SELECT jsonb_array_elements_text(reasons -> 'rules')) AS rules
      FROM fraudstream.alerts WHERE relation = 'txn'::regclass),
scored AS (
    SELECT t.fraud_pattern, a.txn_id IS NOT NULL AS alerted, a.rules
      FROM txn t LEFT JOIN alerted a USING (txn_id)
     WHERE t.score IS NOT NULL),
per AS (
    SELECT p.pattern, p.ord,
           count(*) FILTER (WHERE s.fraud_pattern = p.pattern) AS injected,
           count(*) FILTER (WHERE s.fraud_pattern = p.pattern AND s.alerted) AS detected,
           count(*) FILTER (WHERE EXISTS (SELECT 1 FROM unnest(s.rules) r WHERE r LIKE p.prefix || '%')) AS raised,
           count(*) FILTER (WHERE s.fraud_pattern IS NOT NULL AND
                            EXISTS (SELECT 1 FROM unnest(s.rules) r WHERE r LIKE p.prefix || '%')) AS raised_fraud
      FROM scored s CROSS JOIN patterns p
     GROUP BY p.pattern, p.ord)
SELECT pattern, injected, detected,
       CASE WHEN injected > 0 THEN round(detected::numeric / injected, 3)::text ELSE 'n/a' END AS recall,
       raised AS alerts_by_its_rules,
       CASE WHEN raised > 0 THEN round(raised_fraud::numeric / raised, 3)::text ELSE 'n/a' END AS precision
  FROM per ORDER BY ord;

\echo 'All alerts:'
WITH scored AS (
    SELECT t.fraud_pattern IS NOT NULL AS fraud,
           EXISTS (SELECT 1 FROM fraudstream.alerts a
                    WHERE a.relation = 'txn'::regclass AND a.row_key = t.txn_id::text) AS alerted
      FROM txn t WHERE t.score IS NOT NULL)
SELECT count(*) FILTER (WHERE alerted) AS alerts,
       count(*) FILTER (WHERE alerted AND fraud) AS true_positives,
       round(count(*) FILTER (WHERE alerted AND fraud)::numeric /
             nullif(count(*) FILTER (WHERE alerted), 0), 3) AS precision,
       round(count(*) FILTER (WHERE alerted AND fraud)::numeric /
             nullif(count(*) FILTER (WHERE fraud), 0), 3) AS recall,
       count(*) FILTER (WHERE alerted AND NOT fraud) AS legit_alerted,
       to_char(100.0 * count(*) FILTER (WHERE alerted AND NOT fraud) /
               nullif(count(*) FILTER (WHERE NOT fraud), 0), 'FM990.0000') || ' %' AS legit_alerted_share
  FROM scored;
