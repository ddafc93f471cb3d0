#!/usr/bin/env bash
# scoring.bench.sh: online scoring at insert time (see bench/run.sh).
#
# What it costs to score every inserted row, and what it saves over doing
# it in SQL.  The same generated card transactions (id, card, device,
# merchant, amount, ts, score) are inserted, in time order, by multi-row
# INSERT ... SELECT from a feed table in transactions of 10,000 rows, into
# three tables with the same indexes (primary key on id, (card, ts),
# (device, ts)):
#   (a) plain: no trigger;
#   (b) fraudstream: 10 features (count, sum, avg, max and stddev of the
#       amount per card over 1 hour; distinct devices, since_last, zscore
#       and ratio_to_avg of the amount per card over 24 hours; count per
#       device over 1 hour) and a logistic model over them, with
#       fraudstream.attach(score_column => 'score', store_scores => false);
#   (c) PL/pgSQL: a BEFORE INSERT trigger computing the same 10 features
#       with indexed queries on the table itself and the same logistic
#       score into NEW.score: the baseline a user would write.
# (b) and (c) must give every row the same score (within 1e-9); the
# weights spread scores over (0, 1) rather than piling them up at 0 or 1.
# The model's threshold is 1: only the rows whose score rounds to 1 in
# float8 alert (about 0.1% at 10 per card-hour), and (c) alerts them as
# (b) does, with a row in an alerts table and a notification; the alerts
# of (b) and (c) are counted and must be the same rows.
#
# Each density (events per card-hour: 10, 100, 1,000) has 10,000 events
# per hour in all, spread over 10,000 / density cards, and starts from 24
# hours of history (240,000 rows, inserted untimed, fed to the features but
# not scored, before the PL/pgSQL trigger exists), so that every timed row
# sees full windows.  At 10 per card-hour, (a) and (b) insert
# FS_BENCH_SCORING_ROWS (1,000,000) rows, taking turns, and each keeps the
# best of FS_BENCH_SCORING_RUNS (2) runs.
# The PL/pgSQL trigger reads its windows' rows for every insert (240 rows
# of 24 hours at 10 per card-hour, 24,000 at 1,000), so (c) inserts fewer
# rows, once: the first FS_BENCH_SCORING_PLPGSQL_ROWS (default 1/20 of
# them) at 10 per card-hour, compared with (b)'s time for the same rows;
# FS_BENCH_SCORING_ROWS_100 (1/400) and FS_BENCH_SCORING_ROWS_1000 (1/2000)
# at the higher densities, compared with (b)'s time for the same rows,
# once.  There (b) goes on to FS_BENCH_SCORING_ROWS_FLAT (1/10) rows.
#
# Targets: (b)/(a) >= 0.8 and (b)/(c) >= 5 in rows/s at 10 per card-hour,
# the latter with equal scores; a flat cost per row as cards get busier:
# (b)'s rows/s at 100 and at 1,000 per card-hour at least 0.8 times its
# rows/s at 10.
set -euo pipefail
. "$FS_LIB"

ROWS=${FS_BENCH_SCORING_ROWS:-1000000}
ROWS_PL=${FS_BENCH_SCORING_PLPGSQL_ROWS:-$(( ROWS / 20 ))}
ROWS_100=${FS_BENCH_SCORING_ROWS_100:-$(( ROWS / 400 ))}
ROWS_1000=${FS_BENCH_SCORING_ROWS_1000:-$(( ROWS / 2000 ))}
ROWS_FLAT=${FS_BENCH_SCORING_ROWS_FLAT:-$(( ROWS / 10 ))}
[ "$ROWS_PL" -le "$ROWS" ] || ROWS_PL=$ROWS
RUNS=${FS_BENCH_SCORING_RUNS:-2}
BATCH=10000
PER_HOUR=10000              # events per hour, all cards together
HISTORY=$(( 24 * PER_HOUR ))

psql_q() { as_pg_user "$PG_BINDIR/psql" -X -q -v ON_ERROR_STOP=1 -At -d fs_scoring "$@"; }

# INSERT ... SELECT of feed rows lo+1 .. hi into table $1, one transaction
# per $BATCH rows (and one ending at row mark), in one session; prints the
# milliseconds it took to insert them all and to insert those up to mark
# (default hi), measured inside the server.
insert_rows() {
    local table=$1 lo=$2 hi=$3 mark=${4:-$3} s e stop
    {
        echo "SELECT 0, extract(epoch FROM clock_timestamp());"
        for ((s = lo; s < hi; s = e)); do
            stop=$(( s < mark ? mark : hi ))
            e=$(( s + BATCH < stop ? s + BATCH : stop ))
            echo "INSERT INTO $table (id, card, device, merchant, amount, ts)
SELECT id, card, device, merchant, amount, ts FROM feed WHERE id > $s AND id <= $e ORDER BY id;"
            echo "SELECT $e, extract(epoch FROM clock_timestamp());"
        done
    } | psql_q -F ' ' | awk -v mark="$mark" '
        NR == 1 {t0 = $2}
        $1 == mark {tm = $2}
        END {printf "%.1f %.1f\n", ($2 - t0) * 1000, (tm - t0) * 1000}'
}

rate() { echo "$1 $2" | awk '{printf "%.0f", $1 * 1000 / $2}'; }
ratio() { echo "$1 $2" | awk '{printf "%.2f", $1 / $2}'; }
best() { echo "$1 $2" | awk '{print ($1 < $2) ? $1 : $2}'; }

# The model's weights at density $1: features that grow with the density
# (counts, sums) weigh less, since_last more, so that scores spread alike
# at every density.  The same decimal strings go into the model's JSON and
# into the PL/pgSQL trigger.
set_weights() {
    local k=$1
    scaled() { awk -v a="$1" -v k="$k" -v e="$2" 'BEGIN {printf "%.10g", a * (10 / k) ^ e}'; }
    BIAS=-6.5
    W_COUNT=$(scaled 0.05 1) W_SUM=$(scaled 0.0005 1) W_AVG=0.002 W_MAX=0.001 W_SD=0.005
    W_DISTINCT=0.2 W_SINCE=$(scaled -0.001 -1) W_Z=0.3 W_RATIO=0.8 W_DEV=$(scaled 0.1 1)
}

# A fresh database with tables, features, model and trigger for density
# $1 with $2 timed rows after the history.
setup() {
    local density=$1 rows=$2 cards=$(( PER_HOUR / density ))
    set_weights "$density"
    as_pg_user "$PG_BINDIR/psql" -X -q -d postgres -c 'DROP DATABASE IF EXISTS fs_scoring' \
        -c 'CREATE DATABASE fs_scoring'
    psql_q <<SQL >/dev/null
CREATE EXTENSION fraudstream;

-- card = hash of the row number: each card sees about $density events an
-- hour, unevenly; its events come from one of its 3 own devices, but for
-- about 12 a day from any card's; the amount scale depends on the card,
-- one event in 200 is 20 times larger
CREATE TABLE feed (id bigint PRIMARY KEY, card text, device text, merchant text,
                   amount float8, ts timestamptz);
INSERT INTO feed
SELECT i, 'card' || k,
       'dev' || CASE WHEN h2 % $(( 2 * density )) <> 0 THEN k * 3 + (hashint4extended(i, 5) & 1023) % 3
                     ELSE h2 % ($cards * 3) END,
       'm' || h2 % 5000,
       (10 + (k % 50) * 5) * (0.5 + (hashint4extended(i, 3) & 1048575) / 1048576.0::float8)
           * CASE WHEN hashint4extended(i, 4) % 200 = 0 THEN 20 ELSE 1 END,
       timestamptz '2026-01-01 00:00+00' + i * interval '1 hour' / $PER_HOUR
  FROM generate_series(1, $HISTORY + $rows) i,
       LATERAL (SELECT (hashint4(i) & 2147483647) % $cards AS k,
                       hashint4extended(i, 2) & 1073741823 AS h2) h;
ANALYZE feed;

CREATE TABLE txn_plain (id bigint PRIMARY KEY, card text, device text, merchant text,
                        amount float8, ts timestamptz, score float8);
CREATE INDEX ON txn_plain (card, ts);
CREATE INDEX ON txn_plain (device, ts);
CREATE TABLE txn_fs (LIKE txn_plain INCLUDING ALL);
CREATE TABLE txn_pl (LIKE txn_plain INCLUDING ALL);
CREATE TABLE pl_alerts (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, row_key bigint,
                        score float8, alerted_at timestamptz DEFAULT clock_timestamp());

SELECT fraudstream.create_feature(name, 'txn_fs', entity, agg, win::interval, value)
  FROM (VALUES ('sc_count_1h', 'card', 'count', '1 hour', NULL),
               ('sc_sum_1h', 'card', 'sum', '1 hour', 'amount'),
               ('sc_avg_1h', 'card', 'avg', '1 hour', 'amount'),
               ('sc_max_1h', 'card', 'max', '1 hour', 'amount'),
               ('sc_sd_1h', 'card', 'stddev', '1 hour', 'amount'),
               ('sc_devices_24h', 'card', 'distinct', '24 hours', 'device'),
               ('sc_since_24h', 'card', 'since_last', '24 hours', NULL),
               ('sc_z_24h', 'card', 'zscore', '24 hours', 'amount'),
               ('sc_ratio_24h', 'card', 'ratio_to_avg', '24 hours', 'amount'),
               ('sc_dev_count_1h', 'device', 'count', '1 hour', NULL)) f(name, entity, agg, win, value);

-- the baseline: the same features from the table itself, the same score
CREATE FUNCTION pl_score() RETURNS trigger LANGUAGE plpgsql AS \$f\$
DECLARE
    count_1h bigint; sum_1h float8; avg_1h float8; max_1h float8; sd_1h float8;
    avg_24h float8; sd_24h float8; last_24h timestamptz; devices_24h bigint;
    dev_count_1h bigint;
BEGIN
    -- the window (ts - W, ts] holds the row itself and the earlier rows
    SELECT count(*), sum(amount), avg(amount), max(amount), stddev_samp(amount)
      INTO count_1h, sum_1h, avg_1h, max_1h, sd_1h
      FROM (SELECT amount FROM txn_pl
             WHERE card = NEW.card AND ts > NEW.ts - interval '1 hour' AND ts <= NEW.ts
            UNION ALL SELECT NEW.amount) w;
    -- the others: the window without the row
    SELECT avg(amount), stddev_samp(amount), max(ts),
           count(DISTINCT device)
             + CASE WHEN NEW.device IS NULL OR coalesce(bool_or(device = NEW.device), false)
                    THEN 0 ELSE 1 END
      INTO avg_24h, sd_24h, last_24h, devices_24h
      FROM txn_pl
     WHERE card = NEW.card AND ts > NEW.ts - interval '24 hours' AND ts <= NEW.ts;
    SELECT count(*) + 1 INTO dev_count_1h
      FROM txn_pl
     WHERE device = NEW.device AND ts > NEW.ts - interval '1 hour' AND ts <= NEW.ts;
    NEW.score := 1 / (1 + exp(-($BIAS::float8
        + coalesce($W_COUNT::float8 * count_1h, 0)
        + coalesce($W_SUM::float8 * sum_1h, 0)
        + coalesce($W_AVG::float8 * avg_1h, 0)
        + coalesce($W_MAX::float8 * max_1h, 0)
        + coalesce($W_SD::float8 * sd_1h, 0)
        + coalesce($W_DISTINCT::float8 * devices_24h, 0)
        + coalesce($W_SINCE::float8 * extract(epoch FROM NEW.ts - last_24h)::float8, 0)
        + coalesce($W_Z::float8 * CASE WHEN sd_24h > 0 THEN (NEW.amount - avg_24h) / sd_24h END, 0)
        + coalesce($W_RATIO::float8 * CASE WHEN avg_24h <> 0 THEN NEW.amount / avg_24h END, 0)
        + coalesce($W_DEV::float8 * CASE WHEN NEW.device IS NOT NULL THEN dev_count_1h END, 0))));
    IF NEW.score >= 1 THEN
        INSERT INTO pl_alerts (row_key, score) VALUES (NEW.id, NEW.score);
        PERFORM pg_notify('pl_alerts', json_build_object('row_key', NEW.id, 'score', NEW.score)::text);
    END IF;
    RETURN NEW;
END
\$f\$;
SQL
    # 24 hours of history everywhere, untimed (fraudstream's features are
    # fed, not scored); then the scoring is switched on
    insert_rows txn_plain 0 "$HISTORY" >/dev/null
    insert_rows txn_fs 0 "$HISTORY" >/dev/null
    insert_rows txn_pl 0 "$HISTORY" >/dev/null
    psql_q -c "CREATE TRIGGER pl_score BEFORE INSERT ON txn_pl FOR EACH ROW EXECUTE FUNCTION pl_score()"
    psql_q <<SQL >/dev/null
SELECT fraudstream.activate_model('scoring_$density', fraudstream.deploy_model('scoring_$density',
    '{"type": "logistic", "threshold": 1, "bias": $BIAS, "rules": [],
      "weights": {"sc_count_1h": $W_COUNT, "sc_sum_1h": $W_SUM, "sc_avg_1h": $W_AVG,
                  "sc_max_1h": $W_MAX, "sc_sd_1h": $W_SD, "sc_devices_24h": $W_DISTINCT,
                  "sc_since_24h": $W_SINCE, "sc_z_24h": $W_Z, "sc_ratio_24h": $W_RATIO,
                  "sc_dev_count_1h": $W_DEV}}'));
ANALYZE txn_plain; ANALYZE txn_fs; ANALYZE txn_pl;
SQL
    attach_fs "$density"
}

attach_fs() {
    psql_q -c "SELECT fraudstream.attach('txn_fs', 'id', score_column => 'score',
                                         model => 'scoring_$1', store_scores => false)" >/dev/null
}

# Empty table $1 and insert the history again (fraudstream's state is
# cleared with the table), for another timed run; txn_fs is detached
# meanwhile, as during setup (its history feeds the features unscored).
reload() {
    [ "$1" != txn_fs ] || psql_q -c "SELECT fraudstream.detach('txn_fs')" >/dev/null
    psql_q -c "TRUNCATE $1" >/dev/null
    insert_rows "$1" 0 "$HISTORY" >/dev/null
    [ "$1" != txn_fs ] || attach_fs "$density"
}

# Scores of (b) and (c) over rows lo+1 .. hi: rows compared, rows
# differing by more than 1e-9 (or NULL on one side only), the largest
# difference, the mean score, the share of scores at or above 0.9, the
# rows (b) alerted (in any of its runs), the rows (c) alerted, and those
# alerted by one of them only.
compare_scores() {
    psql_q -F ' ' -c "
WITH fs_alerted AS (SELECT DISTINCT row_key::bigint AS id FROM fraudstream.alerts
                     WHERE relation = 'txn_fs'::regclass
                       AND row_key::bigint > $1 AND row_key::bigint <= $2),
     pl_alerted AS (SELECT DISTINCT row_key AS id FROM pl_alerts WHERE row_key > $1 AND row_key <= $2)
SELECT count(*),
       count(*) FILTER (WHERE coalesce(abs(f.score - p.score) > 1e-9, (f.score IS NULL) <> (p.score IS NULL))),
       coalesce(max(abs(f.score - p.score)), 0),
       round(avg(f.score)::numeric, 4),
       round(avg((f.score >= 0.9)::int)::numeric, 4),
       (SELECT count(*) FROM fs_alerted), (SELECT count(*) FROM pl_alerted),
       (SELECT count(*) FROM (SELECT id FROM fs_alerted EXCEPT SELECT id FROM pl_alerted) o)
         + (SELECT count(*) FROM (SELECT id FROM pl_alerted EXCEPT SELECT id FROM fs_alerted) o)
  FROM txn_fs f JOIN txn_pl p USING (id)
 WHERE id > $1 AND id <= $2"
}

results="" targets=""
for density in 10 100 1000; do
    # rows: timed rows of (b), and of (a) at 10 per card-hour; pl_rows:
    # the first of them, timed on (c) and compared
    case $density in
        10) rows=$ROWS pl_rows=$ROWS_PL runs=$RUNS ;;
        100) rows=$ROWS_FLAT pl_rows=$ROWS_100 runs=1 ;;
        1000) rows=$ROWS_FLAT pl_rows=$ROWS_1000 runs=1 ;;
    esac
    [ "$pl_rows" -le "$rows" ] || rows=$pl_rows
    echo "-- $density events per card-hour: $(( PER_HOUR / density )) cards, $HISTORY rows of history;" \
         "$rows timed rows, the first $pl_rows also with PL/pgSQL"
    setup "$density" "$rows"
    end=$(( HISTORY + rows )) mark=$(( HISTORY + pl_rows ))
    plain_ms="" fs_ms="" fs_mark_ms=""
    # (a) and (b) take turns, each keeps its best run
    for ((run = 1; run <= runs; run++)); do
        if [ "$density" = 10 ]; then
            [ "$run" = 1 ] || reload txn_plain
            read -r ms _ <<<"$(insert_rows txn_plain "$HISTORY" "$end")"
            plain_ms=$(best "${plain_ms:-$ms}" "$ms")
        fi
        [ "$run" = 1 ] || reload txn_fs
        read -r ms ms_mark <<<"$(insert_rows txn_fs "$HISTORY" "$end" "$mark")"
        fs_ms=$(best "${fs_ms:-$ms}" "$ms")
        fs_mark_ms=$(best "${fs_mark_ms:-$ms_mark}" "$ms_mark")
    done
    read -r pl_ms _ <<<"$(insert_rows txn_pl "$HISTORY" "$mark")"
    read -r checked differing max_diff mean_score high fs_alerts pl_alerts alerts_apart \
        <<<"$(compare_scores "$HISTORY" "$mark")"
    same=$([ "$checked" = "$pl_rows" ] && [ "$differing" = 0 ] && [ "$alerts_apart" = 0 ] &&
           echo true || echo false)
    fs_rate=$(rate "$pl_rows" "$fs_mark_ms") pl_rate=$(rate "$pl_rows" "$pl_ms")
    vs_pl=$(ratio "$fs_rate" "$pl_rate")
    echo "over $pl_rows rows: fraudstream $fs_rate rows/s, PL/pgSQL $pl_rate rows/s, (b)/(c) ${vs_pl}x"
    echo "scores: $checked rows compared, $differing differ, largest difference $max_diff;" \
         "mean $mean_score, share at or above 0.9: $high;" \
         "alerts: fraudstream $fs_alerts, PL/pgSQL $pl_alerts, $alerts_apart rows alerted by one only"
    results="$results\"plpgsql_rows_${density}_per_hour\": $pl_rows,
             \"plpgsql_rows_per_s_${density}_per_hour\": $pl_rate,
             \"fraudstream_rows_per_s_same_rows_${density}_per_hour\": $fs_rate,
             \"fraudstream_vs_plpgsql_${density}_per_hour\": $vs_pl,
             \"scores_compared_${density}_per_hour\": $checked,
             \"scores_differing_${density}_per_hour\": $differing,
             \"max_score_difference_${density}_per_hour\": $max_diff,
             \"mean_score_${density}_per_hour\": $mean_score,
             \"share_score_0_9_or_more_${density}_per_hour\": $high,
             \"alerts_fraudstream_${density}_per_hour\": $fs_alerts,
             \"alerts_plpgsql_${density}_per_hour\": $pl_alerts,
             \"alerts_differing_${density}_per_hour\": $alerts_apart,
             "
    all_rate=$(rate "$rows" "$fs_ms")
    echo "over $rows rows: fraudstream $all_rate rows/s"
    results="$results\"rows_${density}_per_hour\": $rows,
             \"fraudstream_rows_per_s_${density}_per_hour\": $all_rate,
             "
    if [ "$density" = 10 ]; then
        plain_rate=$(rate "$rows" "$plain_ms") rate_10=$all_rate
        vs_plain=$(ratio "$all_rate" "$plain_rate")
        echo "over $rows rows: plain $plain_rate rows/s, (b)/(a) $vs_plain"
        results="$results\"plain_rows_per_s_10_per_hour\": $plain_rate,
             \"fraudstream_vs_plain_10_per_hour\": $vs_plain,
             "
        met_plain=$(awk "BEGIN {print ($vs_plain >= 0.8) ? \"true\" : \"false\"}")
        met_pl=$(awk "BEGIN {print ($vs_pl >= 5 && \"$same\" == \"true\") ? \"true\" : \"false\"}")
        targets="{\"metric\": \"(b) scored / (a) plain inserts, rows/s, 10 events per card-hour\",
    \"target\": \">= 0.8\", \"reached\": $vs_plain, \"met\": $met_plain},
   {\"metric\": \"(b) scored / (c) PL/pgSQL trigger, rows/s, 10 events per card-hour (same scores and alerts)\",
    \"target\": \">= 5x\", \"reached\": \"${vs_pl}x\", \"met\": $met_pl}"
    else
        # flat cost per row: (b) at this density against (b) at 10 per card-hour
        flat=$(ratio "$all_rate" "$rate_10")
        echo "(b) at $density per card-hour / (b) at 10: $flat"
        results="$results\"fraudstream_flatness_${density}_per_hour\": $flat,
             "
        met_flat=$(awk "BEGIN {print ($flat >= 0.8) ? \"true\" : \"false\"}")
        targets="$targets,
   {\"metric\": \"cost per row stays flat: (b) rows/s at $density / at 10 events per card-hour\",
    \"target\": \">= 0.8\", \"reached\": $flat, \"met\": $met_flat}"
    fi
    # this density's feature state goes back to the pool
    psql_q -c "TRUNCATE txn_fs" >/dev/null
done

cat >"$FS_BENCH_OUT/scoring.json" <<JSON
{"name": "scoring",
 "description": "Rows/s inserting generated card transactions in time order (INSERT ... SELECT from a feed table, transactions of $BATCH rows; primary key, (card, ts) and (device, ts) indexes) into (a) a plain table, (b) a table attached to fraudstream with 10 features (count/sum/avg/max/stddev of the amount per card over 1 hour; distinct devices, since_last, zscore, ratio_to_avg per card over 24 hours; count per device over 1 hour) and a logistic model writing the score column (store_scores off), (c) a table whose PL/pgSQL BEFORE INSERT trigger computes the same features with indexed queries on the table and the same score. 10,000 events an hour over 10,000/density cards, after 24 hours of untimed history (full windows). At 10 events per card-hour, (a) and (b) insert $ROWS rows, best of $RUNS runs; (c) the first $ROWS_PL of them, once, since its trigger reads the whole 24-hour window per row, and (b)/(c) compares it with (b)'s time for the same rows. At 100 and 1,000 events per card-hour, (c) inserts $ROWS_100 and $ROWS_1000 rows, once, against (b)'s time for the same rows, and (b) goes on to $ROWS_FLAT rows, whose rate against (b)'s at 10 per card-hour shows whether the cost per row stays flat as cards get busier. Scores of (b) and (c) compared row by row (differing: by more than 1e-9); the model's threshold is 1, so only rows whose score rounds to 1 alert, in (b) into fraudstream.alerts and in (c) into a table of its own, each with a notification; the alerted rows of (b) and (c) must be the same.",
 "results": {${results}"history_rows": $HISTORY},
 "targets": [$targets]}
JSON
