#!/usr/bin/env bash
# memory.bench.sh: shared memory per active entity (see bench/run.sh).
#
# The common case of a payments team: 100,000 cards, each with a few
# transactions in the last day (Poisson, 2 a day on average), and a
# feature group of five features over the amount and the device per card
# (count, sum and avg over 1 hour; distinct devices and since_last over
# 24 hours).  Bytes per entity = the group's memory_bytes (its entities'
# entries and event blocks, fraudstream.features) over its entities.
# Target (PRODUCT.md): <= 256 bytes per active entity per feature group
# in the common case.  The same run feeds 3 times more cards than
# fraudstream.max_entities allows, and checks that the memory fraudstream
# reserves (fraudstream.memory) is what its settings say, unchanged, with
# the excess counted as evicted or expired entities: memory is bounded by
# configuration.
set -euo pipefail
. "$FS_LIB"

CARDS=${FS_BENCH_MEMORY_CARDS:-100000}

psql_q() { as_pg_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d fs_memory "$@"; }

as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -c 'DROP DATABASE IF EXISTS fs_memory' -c 'CREATE DATABASE fs_memory'
psql_q <<SQL
CREATE EXTENSION fraudstream;
CREATE TABLE txn (card text, device text, amount float8, ts timestamptz);
SELECT fraudstream.create_feature(name, 'txn', 'card', agg, win::interval, value)
  FROM (VALUES ('mem_count_1h', 'count', '1 hour', NULL),
               ('mem_sum_1h', 'sum', '1 hour', 'amount'),
               ('mem_avg_1h', 'avg', '1 hour', 'amount'),
               ('mem_devices_24h', 'distinct', '24 hours', 'device'),
               ('mem_since_24h', 'since_last', '24 hours', NULL)) f(name, agg, win, value);
SQL

reserved_before=$(psql_q -c "SELECT sum(bytes) FROM fraudstream.memory")

# a day of transactions: card c gets n ~ Poisson(2) of them (the inverse
# of the cumulative distribution at a hash-derived uniform), at
# hash-spread times, inserted in time order; cards with none are not
# active and hold nothing
echo "-- $CARDS cards, Poisson(2) transactions each over 24 hours"
psql_q <<SQL
INSERT INTO txn
SELECT 'card' || c, 'dev' || (c * 3 + j % 2), 5 + (hashint4(c * 7 + j) & 1023) / 10.0,
       timestamptz '2026-03-01 00:00+00' + (hashint8(c * 31 + j) & 67108863)::bigint * 1287 * interval '1 microsecond'
  FROM generate_series(1, $CARDS) c,
       LATERAL (SELECT ((hashint4(c) & 1048575) / 1048576.0)::float8 AS u) r,
       LATERAL (SELECT CASE WHEN u < 0.1353 THEN 0 WHEN u < 0.4060 THEN 1 WHEN u < 0.6767 THEN 2
                            WHEN u < 0.8571 THEN 3 WHEN u < 0.9473 THEN 4 WHEN u < 0.9834 THEN 5
                            WHEN u < 0.9955 THEN 6 WHEN u < 0.9989 THEN 7 ELSE 8 END AS n) p,
       generate_series(1, p.n) j
 ORDER BY 4;
SQL
read -r entities events bytes <<<"$(psql_q -F ' ' -c "SELECT entities, events, memory_bytes FROM fraudstream.features WHERE name = 'mem_count_1h'")"
per_entity=$(awk -v b="$bytes" -v e="$entities" 'BEGIN {printf "%.0f", b / e}')
echo "$entities entities, $events events: $bytes bytes, $per_entity bytes per entity"

# bounded by configuration: three times more cards than max_entities
max_entities=$(psql_q -c "SHOW fraudstream.max_entities")
flood=$(( 3 * max_entities ))
echo "-- flood: $flood more cards, one transaction each"
psql_q -c "INSERT INTO txn SELECT 'flood' || i, 'dev', 1, timestamptz '2026-03-02 00:00+00' + i * interval '1 ms'
             FROM generate_series(1, $flood) i"
reserved_after=$(psql_q -c "SELECT sum(bytes) FROM fraudstream.memory")
read -r held dropped <<<"$(psql_q -F ' ' -c "SELECT entities, evicted_entities + expired_entities FROM fraudstream.features WHERE name = 'mem_count_1h'")"
echo "reserved: $reserved_before bytes before, $reserved_after after; $held entities held (max_entities $max_entities), $dropped evicted or expired"
bounded=$([ "$reserved_before" = "$reserved_after" ] && [ "$held" -le "$max_entities" ] && [ "$dropped" -gt 0 ] && echo true || echo false)

met=$([ "$per_entity" -le 256 ] && echo true || echo false)
cat >"$FS_BENCH_OUT/memory.json" <<JSON
{"name": "memory",
 "description": "Shared memory of a feature group (count, sum, avg over 1 hour; distinct devices, since_last over 24 hours, per card) holding $CARDS cards with Poisson(2) transactions each over a day: memory_bytes of fraudstream.features (entries and event blocks) over entities. Then $flood more cards (3 x fraudstream.max_entities): the memory fraudstream reserves (fraudstream.memory) must stay as configured, with the excess evicted or expired.",
 "results": {"cards": $CARDS, "entities": $entities, "events": $events, "memory_bytes": $bytes,
             "bytes_per_entity": $per_entity, "reserved_bytes": $reserved_after,
             "flood_cards": $flood, "entities_held_after_flood": $held,
             "evicted_or_expired": $dropped, "bounded_by_configuration": $bounded},
 "targets": [
   {"metric": "shared memory per active entity per feature group, common case (a few transactions a day)", "target": "<= 256 bytes", "reached": $per_entity, "met": $met},
   {"metric": "memory bounded by configuration (reserved unchanged by 3 x max_entities cards)", "target": "bounded", "reached": "$([ "$bounded" = true ] && echo bounded || echo unbounded)", "met": $bounded}]}
JSON
as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -c 'DROP DATABASE fs_memory'
