-- detection.sql: precision and recall per injected fraud pattern, and the
-- share of legitimate transactions alerted, over the scored rows of txn
-- (labels from fs_gen's is_fraud and fraud_pattern).  Rules are attributed to
-- patterns by the prefix of their names (model.sql): ct_ card_testing,
-- ato_ account_takeover, it_ impossible_travel, as_ amount_spike,
-- mc_ merchant_collusion.  Included by summary.sql; demo/evaluate.sh runs
-- it alone.
\set ON_ERROR_STOP 1
\pset footer off

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
