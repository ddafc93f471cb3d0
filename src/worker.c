/*-------------------------------------------------------------------------
 *
 * worker.c
 *		The Kafka source worker: consumes one source's topic into its
 *		target table, exactly once.
 *
 * The launcher starts one worker per enabled source.  The worker joins the
 * source's consumer group and, in one loop, waits, collects messages into
 * a batch and flushes the batch:
 *
 *	wait	A WaitEventSet with the process latch, postmaster death and the
 *			read end of a pipe that librdkafka writes to whenever the
 *			consumer queue goes from empty to non-empty
 *			(rd_kafka_queue_io_event_enable).  The wait times out only
 *			when the open batch reaches fraudstream.batch_max_age, or
 *			after a second to refresh statistics: no sleeping poll loop.
 *	collect	rd_kafka_consume_batch_queue with a zero timeout drains the
 *			queue.  librdkafka's log lines, errors, statistics and
 *			rebalances arrive through the same queue and are handled by
 *			callbacks called from that function, that is on this
 *			process's own thread: no PostgreSQL code ever runs on a
 *			librdkafka thread.
 *	flush	When the batch holds fraudstream.batch_size messages or its
 *			oldest message is batch_max_age old: one transaction decodes
 *			every message (decode.c), inserts the rows through the
 *			executor with per-row error isolation (sink.c) as the
 *			source's owner, writes rejected messages to fraudstream.rejects,
 *			stores each partition's next offset in fraudstream.offsets
 *			and commits.  Only then are the offsets also committed to
 *			Kafka (asynchronously), for other members of the group: at
 *			most once a second (every_second), with the
 *			statistics, since each commit is a write to the broker's
 *			offsets topic; synchronously when partitions are revoked or
 *			the worker stops.
 *
 * Exactly once: offsets live in PostgreSQL and move in the transaction
 * that writes the rows.  On assignment a partition starts at the larger
 * of the offset stored here and the offset committed to Kafka (which is
 * ahead when another PostgreSQL instance of the group consumed the
 * partition meanwhile), else at the "start" option.  A partition revoked
 * by a rebalance is flushed and committed to Kafka synchronously before
 * it is given up.  Messages older than the next expected offset of their
 * partition, or of partitions not assigned any more, are dropped, so a
 * fetch that straddles a rebalance can not insert a message twice.
 *
 * Rings: a ring's offsets live in the unlogged fraudstream.ring_offsets,
 * which crash recovery empties together with the ring.  A ring partition
 * without a stored offset starts at the first message of
 * now - retention (rd_kafka_offsets_for_times), so the ring is refilled
 * from Kafka after a crash.
 *
 * Errors: a message that cannot be decoded or inserted is rejected and the
 * worker goes on.  A broker outage is logged once when it starts and once
 * when it ends; librdkafka reconnects with backoff and nothing is lost,
 * because nothing is stored before it is written.  Any other error ends
 * the worker; the launcher restarts it with a backoff, and it resumes from
 * the stored offsets.
 *
 * Memory: librdkafka's queue is capped by fraudstream.queue_max_kbytes;
 * a batch decodes into the batch context, reset after each batch, whose
 * first block (FS_BATCH_BLOCK_BYTES) is kept so that batches reuse the
 * same memory; sink.c buffers at most a few hundred rows at a time.
 *
 * Locking: the target is locked as by INSERT during a flush; the stats
 * slot is updated under its spinlock (stats.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <fcntl.h>
#include <signal.h>
#include <unistd.h>

#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "commands/dbcommands.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "decode.h"
#include "kafka.h"
#include "sink.h"
#include "source.h"
#include "stats.h"
#include "worker.h"

/* Messages taken from librdkafka per call. */
#define FS_CONSUME_CHUNK	1024

/* How often every_second() runs: statistics, offsets to Kafka (microseconds). */
#define FS_EVERY_SECOND	(1000 * 1000)

/* The batch context's first block, kept across batches. */
#define FS_BATCH_BLOCK_BYTES	(8 * 1024 * 1024)

int			FsBatchSize = 10000;
int			FsBatchMaxAge = 5;

/* A rejected message of the current batch. */
typedef struct Reject
{
	int			row;
	char	   *error;
	char	   *sqlstate;
} Reject;

/* Everything the worker knows; one source per process. */
typedef struct WorkerState
{
	int			slot_index;
	FsSourceSlot *slot;
	int32		source_id;
	char	   *name;
	char	   *group_id;		/* FsSourceGroupId, read in a transaction */
	Oid			target;
	char	   *target_name;
	char	   *brokers;
	char	   *topic;
	FsFormat	format;
	FsSourceOptions opts;
	Oid			owner;
	bool		is_ring;
	int64		retention_ms;
	const char *offsets_table;	/* fraudstream.offsets or ring_offsets */

	rd_kafka_t *rk;
	rd_kafka_queue_t *queue;
	int			pipefd[2];
	WaitEventSet *wes;

	/* the open batch */
	rd_kafka_message_t **msgs;
	int			nmsgs;
	int			msgs_cap;
	TimestampTz batch_started;
	Reject	   *rejects;
	int			nrejects;

	/* per partition, indexed by partition number */
	int			nparts;
	bool	   *assigned;
	int64	   *next_offset;	/* next offset expected, -1 unknown */
	int64	   *stored_offset;	/* next offset stored in PostgreSQL, -1 */

	MemoryContext worker_cxt;
	MemoryContext batch_cxt;
	SPIPlanPtr	offsets_plan;
	SPIPlanPtr	rejects_plan;

	bool		closing;
	ErrorData  *callback_error; /* error raised inside a librdkafka callback */
	bool		brokers_down;
	rd_kafka_resp_err_t last_err;
	TimestampTz last_stats;
	bool		kafka_commit_due;	/* offsets stored since the last commit */
} WorkerState;

static WorkerState W;
static volatile sig_atomic_t shutdown_requested = false;

/* Per-batch context for the row and reject callbacks of sink.c. */
typedef struct BatchCtx
{
	FsDecoder  *decoder;
	FsParsed   *parsed;
	bool	   *rejected;
	bool		timestamps;		/* the decoder uses Kafka timestamps */
} BatchCtx;

static void flush_batch(void);

void
FsWorkerInit(void)
{
	DefineCustomIntVariable("fraudstream.batch_size",
							"Messages a Kafka worker writes per transaction at most.",
							NULL,
							&FsBatchSize,
							10000, 1, 1000000,
							PGC_SIGHUP, 0,
							NULL, NULL, NULL);
	DefineCustomIntVariable("fraudstream.batch_max_age",
							"Longest time a Kafka worker holds a message before writing its batch.",
							NULL,
							&FsBatchMaxAge,
							5, 0, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

static void
handle_sigterm(SIGNAL_ARGS)
{
	int			save_errno = errno;

	shutdown_requested = true;
	SetLatch(MyLatch);
	errno = save_errno;
}

/* Milliseconds since the Unix epoch, as Kafka counts time. */
static int64
unix_ms(TimestampTz ts)
{
	return ts / 1000 +
		(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * SECS_PER_DAY * 1000;
}

/* ---------------------------------------------------------------------
 * Configuration
 * ---------------------------------------------------------------------
 */

/*
 * Read the source's row and, for a ring target, the ring's retention.
 * Returns false if the source is gone or disabled.
 */
static bool
load_source(void)
{
	bool		found = false;
	Datum		arg = Int32GetDatum(W.source_id);
	Oid			argtype = INT4OID;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	if (SPI_execute_with_args("SELECT name, target::oid, brokers, topic, format, options, "
							  "owner::oid, enabled FROM fraudstream.source_config WHERE id = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.source_config");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(W.worker_cxt);
		Jsonb	   *options;

		W.name = SPI_getvalue(tup, desc, 1);
		W.target = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		W.brokers = SPI_getvalue(tup, desc, 3);
		W.topic = SPI_getvalue(tup, desc, 4);
		W.format = strcmp(SPI_getvalue(tup, desc, 5), "csv") == 0 ?
			FS_FORMAT_CSV : FS_FORMAT_JSON;
		options = DatumGetJsonbPCopy(SPI_getbinval(tup, desc, 6, &isnull));
		FsParseSourceOptions(options, &W.opts);
		W.owner = DatumGetObjectId(SPI_getbinval(tup, desc, 7, &isnull));
		found = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		W.group_id = FsSourceGroupId(W.name);
		MemoryContextSwitchTo(old);
	}

	if (found)
	{
		arg = ObjectIdGetDatum(W.target);
		argtype = OIDOID;
		if (SPI_execute_with_args("SELECT (extract(epoch FROM retention) * 1000)::bigint "
								  "FROM fraudstream.ring_config WHERE ring = $1",
								  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
			elog(ERROR, "could not read fraudstream.ring_config");
		if (SPI_processed == 1)
		{
			bool		isnull;

			W.is_ring = true;
			W.retention_ms = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
														 SPI_tuptable->tupdesc, 1, &isnull));
		}
		W.target_name = MemoryContextStrdup(W.worker_cxt, get_rel_name(W.target) ?
											get_rel_name(W.target) : "");
		if (get_rel_name(W.target) == NULL)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_TABLE),
					 errmsg("target table of source \"%s\" does not exist", W.name),
					 errhint("Drop the source with fraudstream.drop_source().")));
		W.offsets_table = (W.is_ring ||
						   get_rel_persistence(W.target) == RELPERSISTENCE_UNLOGGED) ?
			"fraudstream.ring_offsets" : "fraudstream.offsets";
	}

	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	return found;
}

/* ---------------------------------------------------------------------
 * Partition bookkeeping
 * ---------------------------------------------------------------------
 */

/* Make the per-partition arrays cover partition p. */
static void
ensure_partition(int32 p)
{
	int			n = W.nparts;

	if (p < n)
		return;
	n = Max(p + 1, n * 2);
	if (W.nparts == 0)
	{
		W.assigned = MemoryContextAllocZero(W.worker_cxt, n * sizeof(bool));
		W.next_offset = MemoryContextAlloc(W.worker_cxt, n * sizeof(int64));
		W.stored_offset = MemoryContextAlloc(W.worker_cxt, n * sizeof(int64));
	}
	else
	{
		W.assigned = repalloc(W.assigned, n * sizeof(bool));
		W.next_offset = repalloc(W.next_offset, n * sizeof(int64));
		W.stored_offset = repalloc(W.stored_offset, n * sizeof(int64));
	}
	for (int i = W.nparts; i < n; i++)
	{
		W.assigned[i] = false;
		W.next_offset[i] = -1;
		W.stored_offset[i] = -1;
	}
	W.nparts = n;
}

/* Copy assignment, offsets and watermarks into the stats slot. */
static void
publish_partitions(void)
{
	FsPartitionStat parts[FS_STATS_MAX_PARTITIONS];
	int			n = 0;

	for (int p = 0; p < W.nparts && n < FS_STATS_MAX_PARTITIONS; p++)
	{
		int64		lo,
					hi;

		if (!W.assigned[p])
			continue;
		parts[n].partition = p;
		parts[n].next_offset = W.stored_offset[p];
		if (rd_kafka_get_watermark_offsets(W.rk, W.topic, p, &lo, &hi) !=
			RD_KAFKA_RESP_ERR_NO_ERROR || hi < 0)
			hi = -1;
		parts[n].high_watermark = hi;
		n++;
	}
	SpinLockAcquire(&W.slot->mutex);
	if (W.slot->source_id == W.source_id)
	{
		memcpy(W.slot->parts, parts, n * sizeof(FsPartitionStat));
		W.slot->nparts = n;
	}
	SpinLockRelease(&W.slot->mutex);
	W.last_stats = GetCurrentTimestamp();
}

/* The stored offsets of assigned partitions, for committing to Kafka. */
static rd_kafka_topic_partition_list_t *
stored_offsets_list(void)
{
	rd_kafka_topic_partition_list_t *list = rd_kafka_topic_partition_list_new(4);

	for (int p = 0; p < W.nparts; p++)
		if (W.assigned[p] && W.stored_offset[p] >= 0)
			rd_kafka_topic_partition_list_add(list, W.topic, p)->offset = W.stored_offset[p];
	return list;
}

/* Commit the stored offsets of assigned partitions to Kafka. */
static void
commit_stored_offsets(rd_kafka_t *rk, bool async)
{
	rd_kafka_topic_partition_list_t *list = stored_offsets_list();

	if (list->cnt > 0)
		rd_kafka_commit(rk, list, async ? 1 : 0);
	rd_kafka_topic_partition_list_destroy(list);
	W.kafka_commit_due = false;
}

/*
 * Once a second (a no-op until a second has passed since the last time):
 * publish the partitions' statistics and commit the offsets stored since
 * the last commit to Kafka, asynchronously.
 */
static void
every_second(void)
{
	if (GetCurrentTimestamp() - W.last_stats <= FS_EVERY_SECOND)
		return;
	publish_partitions();
	if (W.kafka_commit_due)
		commit_stored_offsets(W.rk, true);
}

/* ---------------------------------------------------------------------
 * librdkafka callbacks: called from rd_kafka_consume_batch_queue on this
 * process's thread.  They must not longjmp through librdkafka: errors of
 * PostgreSQL code run from them are caught and rethrown by the main loop.
 * ---------------------------------------------------------------------
 */

/*
 * Run fn in a PG_TRY: on error, abort any transaction, keep the error for
 * the main loop and return normally.
 */
static void
run_guarded(void (*fn) (void *), void *arg)
{
	MemoryContext cxt = CurrentMemoryContext;

	if (W.callback_error)
		return;
	PG_TRY();
	{
		fn(arg);
	}
	PG_CATCH();
	{
		MemoryContextSwitchTo(W.worker_cxt);
		W.callback_error = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		MemoryContextSwitchTo(cxt);
	}
	PG_END_TRY();
}

static void
log_cb(const rd_kafka_t *rk, int level, const char *fac, const char *buf)
{
	/* errors reach error_cb as well; keep librdkafka's chatter out of the log */
	ereport(DEBUG1,
			(errmsg_internal("fraudstream source \"%s\": librdkafka %d %s: %s",
							 W.name, level, fac, buf)));
}

/* Broker state changes are logged once; other errors once per kind. */
static void
error_cb(rd_kafka_t *rk, int err, const char *reason, void *opaque)
{
	char		msg[FS_STATS_ERROR_LEN];

	snprintf(msg, sizeof(msg), "%s: %s", rd_kafka_err2str(err), reason);
	FsStatsSetError(W.slot, W.source_id, msg);

	if (err == RD_KAFKA_RESP_ERR__ALL_BROKERS_DOWN)
	{
		if (!W.brokers_down)
			ereport(LOG,
					(errmsg("fraudstream source \"%s\": all Kafka brokers are down, retrying", W.name),
					 errdetail("librdkafka: %s", msg)));
		W.brokers_down = true;
		FsStatsSetState(W.slot, W.source_id, FS_SOURCE_BROKER_DOWN);
	}
	else if (err == RD_KAFKA_RESP_ERR__FATAL)
	{
		char		fatal[512];

		rd_kafka_fatal_error(rk, fatal, sizeof(fatal));
		W.callback_error = palloc0(sizeof(ErrorData));
		W.callback_error->elevel = ERROR;
		W.callback_error->sqlerrcode = ERRCODE_CONNECTION_FAILURE;
		W.callback_error->message = psprintf("fatal Kafka consumer error: %s", fatal);
	}
	else if (err != (int) W.last_err && !W.brokers_down &&
			 err != RD_KAFKA_RESP_ERR__TRANSPORT)
		ereport(LOG,
				(errmsg("fraudstream source \"%s\": Kafka error, retrying", W.name),
				 errdetail("librdkafka: %s", msg)));
	W.last_err = err;
}

/* Back from an outage: a broker is up again. */
static void
brokers_up(void)
{
	if (!W.brokers_down)
		return;
	W.brokers_down = false;
	W.last_err = RD_KAFKA_RESP_ERR_NO_ERROR;
	ereport(LOG,
			(errmsg("fraudstream source \"%s\": connected to Kafka again, resuming", W.name)));
	FsStatsSetState(W.slot, W.source_id, FS_SOURCE_RUNNING);
}

/*
 * librdkafka's statistics, once a second: used only to notice that a
 * broker is up again after an outage, when no message may arrive to say
 * so.
 */
static int
stats_cb(rd_kafka_t *rk, char *json, size_t json_len, void *opaque)
{
	if (W.brokers_down && strstr(json, "\"state\":\"UP\"") != NULL)
		brokers_up();
	return 0;
}

/* Stored offsets of this source, for the partitions in "parts". */
static void
read_stored_offsets(void *arg)
{
	Datum		argv = Int32GetDatum(W.source_id);
	Oid			argtype = INT4OID;
	char	   *sql;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	sql = psprintf("SELECT partition, next_offset FROM %s WHERE source_id = $1",
				   W.offsets_table);
	if (SPI_execute_with_args(sql, 1, &argtype, &argv, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read %s", W.offsets_table);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;
		int32		p = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[i],
													SPI_tuptable->tupdesc, 1, &isnull));
		int64		off = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i],
													  SPI_tuptable->tupdesc, 2, &isnull));

		ensure_partition(p);
		W.stored_offset[p] = off;
	}
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
}

/*
 * Choose where each newly assigned partition starts: the stored offset
 * (or Kafka's committed one, when ahead), else the start rule.  Offsets
 * for times are looked up in one request.
 */
static void
choose_offsets(void *arg)
{
	rd_kafka_topic_partition_list_t *parts = arg;
	rd_kafka_topic_partition_list_t *committed;
	rd_kafka_topic_partition_list_t *bytime;
	rd_kafka_resp_err_t err;
	int64		start_ms;
	FsStartKind kind = FsParseStart(W.opts.start, &start_ms);

	for (int i = 0; i < parts->cnt; i++)
	{
		ensure_partition(parts->elems[i].partition);
		W.stored_offset[parts->elems[i].partition] = -1;
	}
	read_stored_offsets(NULL);

	committed = rd_kafka_topic_partition_list_copy(parts);
	err = rd_kafka_committed(W.rk, committed, 10000);
	if (err)
		ereport(LOG,
				(errmsg("fraudstream source \"%s\": could not read offsets committed to Kafka", W.name),
				 errdetail("librdkafka: %s", rd_kafka_err2str(err))));

	if (W.is_ring)
	{
		kind = FS_START_TIME;
		start_ms = unix_ms(GetCurrentTimestamp()) - W.retention_ms;
	}

	bytime = rd_kafka_topic_partition_list_new(parts->cnt);
	for (int i = 0; i < parts->cnt; i++)
	{
		rd_kafka_topic_partition_t *tp = &parts->elems[i];
		int64		pg = W.stored_offset[tp->partition];
		int64		kc = err ? -1 : committed->elems[i].offset;

		if (pg >= 0)
			tp->offset = Max(pg, kc);
		else if (kc >= 0 && !W.is_ring)
			tp->offset = kc;
		else if (kind == FS_START_EARLIEST)
			tp->offset = RD_KAFKA_OFFSET_BEGINNING;
		else if (kind == FS_START_LATEST)
			tp->offset = RD_KAFKA_OFFSET_END;
		else
		{
			tp->offset = RD_KAFKA_OFFSET_INVALID;
			rd_kafka_topic_partition_list_add(bytime, tp->topic, tp->partition)->offset = start_ms;
		}
	}
	rd_kafka_topic_partition_list_destroy(committed);

	if (bytime->cnt > 0)
	{
		int64	   *ends = palloc(bytime->cnt * sizeof(int64));

		/*
		 * The end of each partition, taken before the lookup by time: when
		 * no message is at or after the start time, the partition starts
		 * there.  (Taken after the lookup, it would skip the messages
		 * produced in between; a logical "end" would skip those produced
		 * before the first fetch.)
		 */
		for (int j = 0; j < bytime->cnt; j++)
		{
			int64		lo;

			err = rd_kafka_query_watermark_offsets(W.rk, W.topic,
												   bytime->elems[j].partition,
												   &lo, &ends[j], 10000);
			if (err)
				break;
		}
		if (!err)
			err = rd_kafka_offsets_for_times(W.rk, bytime, 10000);
		if (err)
		{
			rd_kafka_topic_partition_list_destroy(bytime);
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("fraudstream source \"%s\": could not look up Kafka offsets for a start time", W.name),
					 errdetail("librdkafka: %s", rd_kafka_err2str(err))));
		}
		for (int j = 0; j < bytime->cnt; j++)
		{
			int64		off = bytime->elems[j].offset >= 0 ?
				bytime->elems[j].offset : ends[j];

			for (int i = 0; i < parts->cnt; i++)
				if (parts->elems[i].partition == bytime->elems[j].partition)
					parts->elems[i].offset = off;
		}
	}
	rd_kafka_topic_partition_list_destroy(bytime);
}

/* Flush what was consumed from revoked partitions and commit to Kafka. */
static void
flush_for_revoke(void *arg)
{
	flush_batch();
	commit_stored_offsets(W.rk, false);
}

static void
rebalance_cb(rd_kafka_t *rk, rd_kafka_resp_err_t err,
			 rd_kafka_topic_partition_list_t *parts, void *opaque)
{
	if (err == RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS)
	{
		if (!W.closing)
			run_guarded(choose_offsets, parts);
		for (int i = 0; i < parts->cnt; i++)
		{
			int32		p = parts->elems[i].partition;

			ensure_partition(p);
			W.assigned[p] = true;
			W.next_offset[p] = parts->elems[i].offset >= 0 ? parts->elems[i].offset : -1;
			if (parts->elems[i].offset >= 0)
				W.stored_offset[p] = parts->elems[i].offset;
		}
		rd_kafka_assign(rk, parts);
		ereport(LOG,
				(errmsg("fraudstream source \"%s\": assigned %d partitions of topic \"%s\"",
						W.name, parts->cnt, W.topic)));
		FsStatsSetState(W.slot, W.source_id,
						W.brokers_down ? FS_SOURCE_BROKER_DOWN : FS_SOURCE_RUNNING);
	}
	else
	{
		if (!W.closing)
			run_guarded(flush_for_revoke, NULL);
		for (int p = 0; p < W.nparts; p++)
			W.assigned[p] = false;
		rd_kafka_assign(rk, NULL);
	}
	if (W.rk)
		publish_partitions();
}

/* ---------------------------------------------------------------------
 * Batches
 * ---------------------------------------------------------------------
 */

static void
add_reject(int row, const char *error, const char *sqlstate)
{
	MemoryContext old = MemoryContextSwitchTo(W.batch_cxt);

	if (W.rejects == NULL)
		W.rejects = palloc(W.msgs_cap * sizeof(Reject));
	W.rejects[W.nrejects].row = row;
	W.rejects[W.nrejects].error = pstrdup(error);
	W.rejects[W.nrejects].sqlstate = sqlstate ? pstrdup(sqlstate) : NULL;
	W.nrejects++;
	MemoryContextSwitchTo(old);
}

/* sink.c row callback: decode message "row" into datums. */
static bool
batch_row(void *arg, int row, ExprContext *econtext, Datum *values, bool *nulls,
		  Size *bytes)
{
	BatchCtx   *ctx = arg;
	rd_kafka_message_t *m = W.msgs[row];
	FsKafkaMeta meta;
	rd_kafka_timestamp_type_t tstype;

	if (ctx->rejected[row])
		return false;
	meta.partition = m->partition;
	meta.offset = m->offset;
	meta.timestamp_ms = ctx->timestamps ? rd_kafka_message_timestamp(m, &tstype) : -1;
	meta.key = m->key;
	meta.key_len = m->key_len;
	*bytes = m->len;
	FsDecodeValues(ctx->decoder, &ctx->parsed[row], &meta, econtext, values, nulls);
	return true;
}

/* sink.c reject callback. */
static void
batch_reject(void *arg, int row, ErrorData *edata)
{
	BatchCtx   *ctx = arg;

	ctx->rejected[row] = true;
	add_reject(row, edata->message, unpack_sql_state(edata->sqlerrcode));
}

static bytea *
make_bytea(const void *data, size_t len)
{
	bytea	   *b = palloc(VARHDRSZ + len);

	SET_VARSIZE(b, VARHDRSZ + len);
	if (len > 0)
		memcpy(VARDATA(b), data, len);
	return b;
}

/* Write the batch's rejected messages to fraudstream.rejects. */
static void
write_rejects(void)
{
	Oid			types[8] = {TEXTOID, TEXTOID, INT4OID, INT8OID, BYTEAOID, BYTEAOID, TEXTOID, TEXTOID};

	if (W.rejects_plan == NULL)
	{
		W.rejects_plan = SPI_prepare("INSERT INTO fraudstream.rejects "
									 "(source, topic, partition, \"offset\", key, payload, error, sqlstate) "
									 "VALUES ($1, $2, $3, $4, $5, $6, $7, $8)", 8, types);
		if (W.rejects_plan == NULL || SPI_keepplan(W.rejects_plan) != 0)
			elog(ERROR, "could not prepare the insert into fraudstream.rejects");
	}
	for (int i = 0; i < W.nrejects; i++)
	{
		rd_kafka_message_t *m = W.msgs[W.rejects[i].row];
		Datum		values[8];
		char		nulls[8] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

		values[0] = CStringGetTextDatum(W.name);
		values[1] = CStringGetTextDatum(W.topic);
		values[2] = Int32GetDatum(m->partition);
		values[3] = Int64GetDatum(m->offset);
		if (m->key)
			values[4] = PointerGetDatum(make_bytea(m->key, m->key_len));
		else
			nulls[4] = 'n';
		if (m->payload)
			values[5] = PointerGetDatum(make_bytea(m->payload,
												   Min(m->len, (size_t) FsMaxMessageBytes)));
		else
			nulls[5] = 'n';
		values[6] = CStringGetTextDatum(W.rejects[i].error);
		if (W.rejects[i].sqlstate)
			values[7] = CStringGetTextDatum(W.rejects[i].sqlstate);
		else
			nulls[7] = 'n';
		if (SPI_execute_plan(W.rejects_plan, values, nulls, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not insert into fraudstream.rejects");
	}
}

/* Store each partition's next offset, in the batch's transaction. */
static void
write_offsets(int64 *batch_next)
{
	Oid			types[3] = {INT4OID, INT4OID, INT8OID};

	if (W.offsets_plan == NULL)
	{
		char	   *sql = psprintf("INSERT INTO %s (source_id, partition, next_offset) "
								   "VALUES ($1, $2, $3) ON CONFLICT (source_id, partition) "
								   "DO UPDATE SET next_offset = EXCLUDED.next_offset, "
								   "updated_at = EXCLUDED.updated_at",
								   W.offsets_table);

		W.offsets_plan = SPI_prepare(sql, 3, types);
		if (W.offsets_plan == NULL || SPI_keepplan(W.offsets_plan) != 0)
			elog(ERROR, "could not prepare the offset update");
	}
	for (int p = 0; p < W.nparts; p++)
	{
		Datum		values[3];

		if (batch_next[p] < 0)
			continue;
		values[0] = Int32GetDatum(W.source_id);
		values[1] = Int32GetDatum(p);
		values[2] = Int64GetDatum(batch_next[p]);
		if (SPI_execute_plan(W.offsets_plan, values, NULL, false, 0) != SPI_OK_INSERT)
			elog(ERROR, "could not store offsets in %s", W.offsets_table);
	}
}

/*
 * Write the open batch in one transaction: rows, rejects and offsets.
 * Then commit the offsets to Kafka too, and let the messages go.
 */
static void
flush_batch(void)
{
	BatchCtx	ctx;
	Relation	rel;
	Oid			save_user;
	int			save_sec;
	int64		inserted;
	int64	   *batch_next;
	uint64		bytes = 0;
	MemoryContext old;

	if (W.nmsgs == 0)
		return;

	pgstat_report_activity(STATE_RUNNING, "fraudstream: writing a batch");
	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());

	/* deferred constraints would fail the whole batch at commit */
	SPI_execute("SET CONSTRAINTS ALL IMMEDIATE", false, 0);

	rel = table_open(W.target, RowExclusiveLock);
	if (pg_class_aclcheck(W.target, W.owner, ACL_INSERT) != ACLCHECK_OK)
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("owner of source \"%s\" may not insert into table \"%s\"",
						W.name, RelationGetRelationName(rel)),
				 errdetail("The worker writes as the role that created the source."),
				 errhint("Grant INSERT on the table to that role.")));

	old = MemoryContextSwitchTo(W.batch_cxt);
	ctx.decoder = FsDecoderCreate(rel, W.format, &W.opts);
	ctx.timestamps = FsDecoderUsesTimestamp(ctx.decoder);
	ctx.parsed = palloc(W.nmsgs * sizeof(FsParsed));
	ctx.rejected = palloc0(W.nmsgs * sizeof(bool));
	batch_next = palloc(W.nparts * sizeof(int64));
	for (int p = 0; p < W.nparts; p++)
		batch_next[p] = -1;

	for (int i = 0; i < W.nmsgs; i++)
	{
		rd_kafka_message_t *m = W.msgs[i];
		char	   *error;

		bytes += m->len;
		batch_next[m->partition] = Max(batch_next[m->partition], m->offset + 1);
		if (!FsDecodeParse(ctx.decoder, m->payload, m->len, &ctx.parsed[i], &error))
		{
			ctx.rejected[i] = true;
			add_reject(i, error, NULL);
		}
	}

	GetUserIdAndSecContext(&save_user, &save_sec);
	SetUserIdAndSecContext(W.owner, save_sec | SECURITY_LOCAL_USERID_CHANGE);
	inserted = FsSinkInsertRows(W.target, W.nmsgs,
								!FsDecoderVolatileDefaults(ctx.decoder),
								batch_row, batch_reject, &ctx);
	SetUserIdAndSecContext(save_user, save_sec);
	MemoryContextSwitchTo(old);

	write_rejects();
	write_offsets(batch_next);

	table_close(rel, NoLock);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();
	pgstat_report_activity(STATE_IDLE, NULL);

	for (int p = 0; p < W.nparts; p++)
		if (batch_next[p] >= 0)
			W.stored_offset[p] = batch_next[p];

	SpinLockAcquire(&W.slot->mutex);
	if (W.slot->source_id == W.source_id)
	{
		W.slot->messages += W.nmsgs;
		W.slot->bytes += bytes;
		W.slot->rejects += W.nrejects;
		W.slot->batches++;
		W.slot->last_batch_at = GetCurrentTimestamp();
	}
	SpinLockRelease(&W.slot->mutex);
	(void) inserted;

	W.kafka_commit_due = true;

	for (int i = 0; i < W.nmsgs; i++)
		rd_kafka_message_destroy(W.msgs[i]);
	W.nmsgs = 0;
	W.nrejects = 0;
	W.rejects = NULL;
	MemoryContextReset(W.batch_cxt);

	every_second();
}

/*
 * Take a message from librdkafka into the batch, or drop it if it is a
 * duplicate or belongs to a partition no longer assigned.
 */
static void
take_message(rd_kafka_message_t *m)
{
	int32		p = m->partition;

	if (m->err)
	{
		if (m->err != RD_KAFKA_RESP_ERR__PARTITION_EOF)
			error_cb(W.rk, m->err, rd_kafka_message_errstr(m), NULL);
		rd_kafka_message_destroy(m);
		return;
	}
	if (p < 0 || p >= W.nparts || !W.assigned[p] ||
		(W.next_offset[p] >= 0 && m->offset < W.next_offset[p]))
	{
		rd_kafka_message_destroy(m);
		return;
	}
	W.next_offset[p] = m->offset + 1;
	if (W.brokers_down)
		brokers_up();
	if (W.nmsgs == 0)
		W.batch_started = GetCurrentTimestamp();
	W.msgs[W.nmsgs++] = m;
}

/* Rethrow an error that a librdkafka callback caught. */
static void
check_callback_error(void)
{
	if (W.callback_error)
	{
		ErrorData  *e = W.callback_error;

		W.callback_error = NULL;
		FsStatsSetError(W.slot, W.source_id, e->message);
		ReThrowError(e);
	}
}

/* ---------------------------------------------------------------------
 * Life cycle
 * ---------------------------------------------------------------------
 */

/*
 * On exit: release the slot.  librdkafka is not destroyed here: this runs
 * after an error or on postmaster death, possibly from inside a
 * librdkafka callback, where rd_kafka_destroy can wait forever on
 * librdkafka's own locks.  The process exit closes its connections; the
 * group coordinator notices the member's departure after
 * session.timeout.ms.  A clean stop (SIGTERM) leaves the group in
 * stop_consumer instead.
 */
static void
worker_exit(int code, Datum arg)
{
	W.closing = true;
	if (W.slot)
	{
		SpinLockAcquire(&W.slot->mutex);
		if (W.slot->pid == MyProcPid)
		{
			W.slot->pid = 0;
			W.slot->state = code == 0 ? FS_SOURCE_STOPPED : FS_SOURCE_FAILED;
		}
		SpinLockRelease(&W.slot->mutex);
	}
}

/* Claim the slot; false if it is not ours or another worker runs it. */
static bool
claim_slot(FsWorkerArgs *args)
{
	bool		ok = false;

	SpinLockAcquire(&W.slot->mutex);
	if (W.slot->in_use && W.slot->dbid == args->dbid &&
		W.slot->source_id == args->source_id &&
		(W.slot->pid == 0 || kill(W.slot->pid, 0) != 0))
	{
		W.slot->pid = MyProcPid;
		W.slot->state = FS_SOURCE_STARTING;
		ok = true;
	}
	SpinLockRelease(&W.slot->mutex);
	return ok;
}

/* Create the consumer, route its events to us and subscribe. */
static void
start_consumer(void)
{
	char		errstr[512];
	rd_kafka_conf_t *conf;
	rd_kafka_topic_partition_list_t *topics;
	rd_kafka_resp_err_t err;

	conf = FsSourceConsumerConf(W.name, W.group_id, W.brokers, &W.opts);
	rd_kafka_conf_set_log_cb(conf, log_cb);
	rd_kafka_conf_set_error_cb(conf, error_cb);
	rd_kafka_conf_set_stats_cb(conf, stats_cb);
	rd_kafka_conf_set_rebalance_cb(conf, rebalance_cb);

	W.rk = rd_kafka_new(RD_KAFKA_CONSUMER, conf, errstr, sizeof(errstr));
	if (W.rk == NULL)
	{
		rd_kafka_conf_destroy(conf);
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("could not create the Kafka consumer of source \"%s\"", W.name),
				 errdetail("librdkafka: %s", errstr)));
	}
	/* logs to the main queue, the main queue to the consumer queue */
	rd_kafka_set_log_queue(W.rk, NULL);
	rd_kafka_poll_set_consumer(W.rk);
	W.queue = rd_kafka_queue_get_consumer(W.rk);

	if (pipe(W.pipefd) != 0 ||
		fcntl(W.pipefd[0], F_SETFL, O_NONBLOCK) != 0 ||
		fcntl(W.pipefd[1], F_SETFL, O_NONBLOCK) != 0)
		ereport(ERROR,
				(errcode_for_file_access(),
				 errmsg("could not create a pipe for Kafka wake-ups: %m")));
	rd_kafka_queue_io_event_enable(W.queue, W.pipefd[1], "1", 1);

	topics = rd_kafka_topic_partition_list_new(1);
	rd_kafka_topic_partition_list_add(topics, W.topic, RD_KAFKA_PARTITION_UA);
	err = rd_kafka_subscribe(W.rk, topics);
	rd_kafka_topic_partition_list_destroy(topics);
	if (err)
		ereport(ERROR,
				(errcode(ERRCODE_CONNECTION_FAILURE),
				 errmsg("could not subscribe source \"%s\" to topic \"%s\"", W.name, W.topic),
				 errdetail("librdkafka: %s", rd_kafka_err2str(err))));

	W.wes = CreateWaitEventSet(W.worker_cxt, 3);
	AddWaitEventToSet(W.wes, WL_LATCH_SET, PGINVALID_SOCKET, MyLatch, NULL);
	AddWaitEventToSet(W.wes, WL_EXIT_ON_PM_DEATH, PGINVALID_SOCKET, NULL, NULL);
	AddWaitEventToSet(W.wes, WL_SOCKET_READABLE, W.pipefd[0], NULL, NULL);
}

/* Leave the group cleanly: flush, commit, close. */
static void
stop_consumer(void)
{
	rd_kafka_t *rk = W.rk;

	flush_batch();
	W.closing = true;
	if (rk)
	{
		commit_stored_offsets(rk, false);
		rd_kafka_consumer_close(rk);
		W.rk = NULL;
		rd_kafka_queue_destroy(W.queue);
		W.queue = NULL;
		rd_kafka_destroy(rk);
	}
}

/* Milliseconds to wait: until the open batch is due, else a second. */
static long
wait_timeout(void)
{
	long		secs;
	int			usecs;

	if (W.nmsgs == 0)
		return 1000;
	TimestampDifference(GetCurrentTimestamp(),
						TimestampTzPlusMilliseconds(W.batch_started, FsBatchMaxAge),
						&secs, &usecs);
	return secs * 1000 + usecs / 1000;
}

static void
consume_loop(void)
{
	rd_kafka_message_t *chunk[FS_CONSUME_CHUNK];

	while (!shutdown_requested)
	{
		ssize_t		n;
		int			room;
		bool		more = false;
		WaitEvent	event;
		char		drain[64];

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			if (FsBatchSize > W.msgs_cap)
			{
				W.msgs_cap = FsBatchSize + FS_CONSUME_CHUNK;
				W.msgs = repalloc(W.msgs, W.msgs_cap * sizeof(rd_kafka_message_t *));
			}
		}

		/* the pipe only says "not empty any more": empty it, then the queue */
		while (read(W.pipefd[0], drain, sizeof(drain)) > 0)
			;

		room = Min(FS_CONSUME_CHUNK, Max(FsBatchSize - W.nmsgs, 1));
		n = rd_kafka_consume_batch_queue(W.queue, 0, chunk, room);
		check_callback_error();
		if (n < 0)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("fraudstream source \"%s\": Kafka consume failed", W.name),
					 errdetail("librdkafka: %s", rd_kafka_err2str(rd_kafka_last_error()))));
		for (ssize_t i = 0; i < n; i++)
			take_message(chunk[i]);
		more = n == room;

		if (W.nmsgs >= FsBatchSize || (W.nmsgs > 0 && wait_timeout() <= 0))
		{
			flush_batch();
			continue;
		}
		if (more)
			continue;

		every_second();

		(void) WaitEventSetWait(W.wes, wait_timeout(), &event, 1, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/*
 * Entry point of a source's worker.  bgw_main_arg is its stats slot,
 * bgw_extra the database and source ids.
 */
void
fraudstream_worker_main(Datum main_arg)
{
	FsWorkerArgs args;

	memcpy(&args, MyBgworkerEntry->bgw_extra, sizeof(args));
	memset(&W, 0, sizeof(W));
	W.slot_index = DatumGetInt32(main_arg);
	W.source_id = args.source_id;
	W.name = "?";
	W.last_stats = 0;

	pqsignal(SIGTERM, handle_sigterm);
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	BackgroundWorkerUnblockSignals();

	W.slot = FsStatsSlot(W.slot_index);
	if (!claim_slot(&args))
		proc_exit(0);
	before_shmem_exit(worker_exit, (Datum) 0);

	BackgroundWorkerInitializeConnectionByOid(args.dbid, InvalidOid, 0);
#ifdef __GLIBC__

	/*
	 * Keep freed memory for reuse rather than give it back to the kernel:
	 * at high rates the session's entity caches (online.c) are dropped and
	 * grow again every few seconds, and memory handed back comes back as
	 * page faults, each page zeroed.  The worker's memory stays bounded by
	 * its caches' limits.
	 */
	mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
	mallopt(M_TRIM_THRESHOLD, 256 * 1024 * 1024);
#endif
	W.worker_cxt = AllocSetContextCreate(TopMemoryContext, "fraudstream worker",
										 ALLOCSET_DEFAULT_SIZES);
	/*
	 * A batch of the default size decodes into a few megabytes; a first
	 * block that large is kept across resets, so batches do not hand
	 * their memory back to the kernel and fault it in again each time.
	 */
	W.batch_cxt = AllocSetContextCreate(W.worker_cxt, "fraudstream batch",
										0, FS_BATCH_BLOCK_BYTES, FS_BATCH_BLOCK_BYTES);
	W.msgs_cap = FsBatchSize + FS_CONSUME_CHUNK;
	W.msgs = MemoryContextAlloc(W.worker_cxt,
								(Size) W.msgs_cap * sizeof(rd_kafka_message_t *));

	PG_TRY();
	{
		if (!load_source())
			proc_exit(0);
		pgstat_report_appname(psprintf("fraudstream source %s", W.name));
		MemoryContextSwitchTo(W.worker_cxt);
		start_consumer();
		ereport(LOG,
				(errmsg("fraudstream source \"%s\": consuming topic \"%s\" into \"%s\"",
						W.name, W.topic, W.target_name)));
		consume_loop();
		stop_consumer();
	}
	PG_CATCH();
	{
		ErrorData  *e;

		MemoryContextSwitchTo(W.worker_cxt);
		e = CopyErrorData();
		FsStatsSetError(W.slot, W.source_id, e->message);
		PG_RE_THROW();
	}
	PG_END_TRY();
	proc_exit(0);
}
