#!/usr/bin/env bash
# kafka_ingest: 1,000,000 JSON messages of about 200 bytes consumed from
# Kafka into a ring by a fraudstream worker, against kcat consuming the
# same topic to /dev/null in the same run.
#
# Targets (PRODUCT.md): >= 150,000 msgs/s per worker and >= 0.5x kcat.
# The worker's rate is measured from its first to its last batch (the
# consumer group join before the first batch is not ingestion), from
# fraudstream.source_stats; kcat's over its whole run.
#
# A third figure bounds what any Kafka consumer writing into PostgreSQL
# can reach: COPY of the same rows, already split into CSV columns, from
# a file into an identical ring, with no Kafka and no JSON in the way.
# The worker's rate against it shows what Kafka and decoding cost.
set -euo pipefail
. "$FS_LIB"

N=${FS_BENCH_KAFKA_MESSAGES:-1000000}
topic="bench_ingest_$$"
psql() { as_pg_user "$PG_BINDIR/psql" -X -q -At -v ON_ERROR_STOP=1 -d postgres "$@"; }
now() { date +%s.%N; }

"$FS_KAFKA_CTL" topic "$FS_KAFKA_DIR" "$topic" 4

# message i as "key<TAB>JSON" (json) or as a CSV row of the same values (csv)
messages() {
    perl -e '
my ($format, $n) = @ARGV;
for my $i (1 .. $n) {
    my @v = ($i % 100000, $i % 5000, $i * 2654435761 % 4294967296, $i % 250, $i % 200, $i % 100, $i % 5000, $i % 100, $i);
    if ($format eq "csv") {
        printf "card%06d,m%05d,d-%08x,10.%d.%d.%d,%d.%02d,EUR,DE,click,s-%010d,now\n", @v;
    } else {
        printf "card%06d\t{\"card\":\"card%06d\",\"merchant\":\"m%05d\",\"device\":\"d-%08x\",\"ip\":\"10.%d.%d.%d\",\"amount\":%d.%02d,\"currency\":\"EUR\",\"country\":\"DE\",\"kind\":\"click\",\"session\":\"s-%010d\",\"ts\":\"now\"}\n",
            $v[0], @v;
    }
}' "$1" "$N"
}
create_ring() {
    psql -c "SELECT fraudstream.create_ring('bench_clicks',
      'card text, merchant text, device text, ip inet, amount numeric, currency text,
       country text, kind text, session text, ts timestamptz', 'card', 'ts', '1 day')" >/dev/null
}

echo "producing $N messages"
messages json | kcat -b "$FS_KAFKA_BOOTSTRAP" -P -t "$topic" -K $'\t' -X linger.ms=20 -X batch.num.messages=10000

echo "kcat consuming $N messages to /dev/null"
t0=$(now)
kcat -b "$FS_KAFKA_BOOTSTRAP" -C -t "$topic" -o beginning -e -q -c "$N" >/dev/null
t1=$(now)
kcat_rate=$(echo "$N / ($t1 - $t0)" | bc -l)

echo "fraudstream worker consuming $N messages into a ring"
psql -c "CREATE EXTENSION IF NOT EXISTS fraudstream"
create_ring
psql -c "SELECT fraudstream.create_source('bench', 'bench_clicks', '$FS_KAFKA_BOOTSTRAP', '$topic')" >/dev/null
# One session watches the worker from inside the server (a client polling
# from the shell would take CPU from the worker on a small machine): the
# first and the last reading of its message count, 10 ms apart at most.
watch=$(psql -c "DO \$\$
DECLARE m bigint; t float8; m0 bigint; t0 float8;
BEGIN
    FOR i IN 1 .. 60000 LOOP
        SELECT messages, extract(epoch FROM clock_timestamp()) INTO m, t
          FROM fraudstream.source_stats WHERE source = 'bench';
        IF m0 IS NULL AND m > 0 THEN m0 := m; t0 := t; END IF;
        EXIT WHEN m >= $N;
        PERFORM pg_sleep(0.01);
    END LOOP;
    RAISE NOTICE 'watch=%|%|%|%', m0, t0, m, t;
END \$\$" 2>&1 | sed -n 's/.*watch=//p')
IFS='|' read -r m0 tw0 m t <<<"$watch"
worker_rate=$(echo "($m - $m0) / ($t - $tw0)" | bc -l)
rows=$(psql -c "SELECT count(*) FROM bench_clicks")
rejects=$(psql -c "SELECT count(*) FROM fraudstream.rejects WHERE source = 'bench'")
batches=$(psql -c "SELECT batches FROM fraudstream.source_stats WHERE source = 'bench'")
psql -c "SELECT fraudstream.drop_source('bench')" >/dev/null
psql -c "SELECT fraudstream.drop_ring('bench_clicks')" >/dev/null

echo "COPY of the same $N rows from a CSV file into a ring"
csv="$FS_BENCH_OUT/kafka_ingest.csv"
messages csv >"$csv"
create_ring
t0=$(now)
psql -c "COPY bench_clicks FROM STDIN (FORMAT csv)" <"$csv"
t1=$(now)
copy_rate=$(echo "$N / ($t1 - $t0)" | bc -l)
copy_rows=$(psql -c "SELECT count(*) FROM bench_clicks")
psql -c "SELECT fraudstream.drop_ring('bench_clicks')" >/dev/null
rm -f "$csv"
[ "$copy_rows" = "$N" ] || { echo "COPY wrote $copy_rows rows, not $N" >&2; exit 1; }

ratio=$(echo "$worker_rate / $kcat_rate" | bc -l)
copy_ratio=$(echo "$worker_rate / $copy_rate" | bc -l)
copy_kcat=$(echo "$copy_rate / $kcat_rate" | bc -l)
printf 'kcat:   %.0f msgs/s\nworker: %.0f msgs/s (%s rows, %s rejects, %s batches)\nCOPY:   %.0f rows/s\nworker/kcat: %.2f  worker/COPY: %.2f  COPY/kcat: %.2f\n' \
    "$kcat_rate" "$worker_rate" "$rows" "$rejects" "$batches" "$copy_rate" "$ratio" "$copy_ratio" "$copy_kcat"

met_rate=$(echo "$worker_rate >= 150000" | bc)
met_ratio=$(echo "$ratio >= 0.5" | bc)
cat >"$FS_BENCH_OUT/kafka_ingest.json" <<JSON
{"name": "kafka_ingest",
 "description": "$N JSON messages of about 200 bytes, 4 partitions, consumed into a ring by one worker, against kcat to /dev/null and against COPY of the same rows from a CSV file into an identical ring, in the same run",
 "results": {"messages": $N, "rows": $rows, "rejects": $rejects, "batches": $batches,
             "worker_msgs_per_s": $(printf '%.0f' "$worker_rate"),
             "kcat_msgs_per_s": $(printf '%.0f' "$kcat_rate"),
             "ratio_to_kcat": $(printf '%.3f' "$ratio"),
             "copy_rows_per_s": $(printf '%.0f' "$copy_rate"),
             "ratio_to_copy": $(printf '%.3f' "$copy_ratio"),
             "copy_ratio_to_kcat": $(printf '%.3f' "$copy_kcat")},
 "targets": [
   {"metric": "worker_msgs_per_s", "target": ">= 150000", "reached": $(printf '%.0f' "$worker_rate"), "met": $([ "$met_rate" = 1 ] && echo true || echo false)},
   {"metric": "ratio_to_kcat", "target": ">= 0.5", "reached": $(printf '%.3f' "$ratio"), "met": $([ "$met_ratio" = 1 ] && echo true || echo false)}
 ]}
JSON
