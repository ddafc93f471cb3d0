/*-------------------------------------------------------------------------
 *
 * ring.c
 *		Ring tables: unlogged tables that hold a sliding window of recent
 *		events, bounded in size, rotated without bloat.
 *
 * A ring is a table partitioned by LIST on a slot number computed from
 * its time column, fraudstream.ring_slot(time, step, N) =
 * floor(time / step) mod N, with N unlogged partitions, one per slot.
 * Time is cut into steps of retention / (N - 2); the partition of the
 * current step receives new events, the N - 2 before it hold the rest of
 * the window, and the partition of the next step is kept empty.  When
 * wall-clock time enters a new step, the launcher truncates the partition
 * of the step after it (TRUNCATE: a new empty file, no dead tuples, no
 * vacuum), so a ring holds at least retention of event time and at most
 * retention plus one step.  Rotation is driven by the clock, so it also
 * happens when no data arrives.  Partitions are fixed at creation: no
 * partition is ever attached or detached, so triggers and indexes defined
 * on the ring apply to every partition, and readers see an ordinary table
 * with an index on (key, time) (without btree deduplication: a key rarely
 * repeats at the same time).
 *
 * Locking: TRUNCATE needs an ACCESS EXCLUSIVE lock on the partition being
 * emptied, which readers of the ring and the Kafka worker conflict with.
 * Rotation first tries the lock without waiting, again every few
 * milliseconds for up to fraudstream.rotation_lock_timeout, and only then
 * queues for it with that lock_timeout: a reader or writer can be held up
 * behind a waiting rotation for at most that long.  When the lock is not
 * obtained the rotation is retried at the next launcher cycle (a second
 * later); the ring then briefly holds up to one step more.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/defrem.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "nodes/parsenodes.h"
#include "parser/parse_type.h"
#include "parser/parser.h"
#include "pgstat.h"
#include "storage/lmgr.h"
#include "storage/latch.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/regproc.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "ring.h"
#include "source.h"

#define FS_RING_MIN_PARTITIONS	3
#define FS_RING_MAX_PARTITIONS	64

int			FsRotationLockTimeout = 100;

/* A ring as rotation needs it. */
typedef struct RingInfo
{
	Oid			ring;
	int64		step_us;
	int			partitions;
	int64		current_step;
	Oid		   *slots;
} RingInfo;

PG_FUNCTION_INFO_V1(fraudstream_ring_slot);
PG_FUNCTION_INFO_V1(fraudstream_create_ring);
PG_FUNCTION_INFO_V1(fraudstream_drop_ring);
PG_FUNCTION_INFO_V1(fraudstream_rotate_rings);

void
FsRingInit(void)
{
	DefineCustomIntVariable("fraudstream.rotation_lock_timeout",
							"Longest time ring rotation waits for the lock on a partition before retrying later.",
							"Readers and writers of the ring can be held up behind a waiting rotation for at most this long.",
							&FsRotationLockTimeout,
							100, 1, 60000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, NULL, NULL);
}

/* floor(a / b) for b > 0, also for negative a (times before 2000). */
static int64
floor_div(int64 a, int64 b)
{
	int64		q = a / b;

	if ((a % b) != 0 && a < 0)
		q--;
	return q;
}

static int
slot_of_step(int64 step, int n)
{
	int64		s = step % n;

	return (int) (s < 0 ? s + n : s);
}

/*
 * fraudstream.ring_slot(time, step_us, n): the partition of an event.
 * Immutable, as a partition key must be; used for timestamp and
 * timestamptz alike (both count microseconds).
 */
Datum
fraudstream_ring_slot(PG_FUNCTION_ARGS)
{
	int64		t = PG_GETARG_INT64(0);
	int64		step = PG_GETARG_INT64(1);
	int32		n = PG_GETARG_INT32(2);

	if (step <= 0 || n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ring step and partition count must be positive")));
	PG_RETURN_INT32(slot_of_step(floor_div(t, step), n));
}

/* Run one SQL command through SPI, which must be connected. */
static void
run_sql(const char *sql)
{
	int			rc = SPI_execute(sql, false, 0);

	if (rc < 0)
		elog(ERROR, "SPI_execute failed (%d): %s", rc, sql);
}

/* Type of the column named "column" in a CREATE TABLE's column list. */
static Oid
column_type(CreateStmt *stmt, const char *column, const char *what)
{
	ListCell   *lc;

	foreach(lc, stmt->tableElts)
	{
		ColumnDef  *def = (ColumnDef *) lfirst(lc);

		if (IsA(def, ColumnDef) && strcmp(def->colname, column) == 0)
			return typenameTypeId(NULL, def->typeName);
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("%s \"%s\" is not a column of the ring", what, column),
			 errhint("Name one of the columns given in the column list.")));
	return InvalidOid;			/* keep compiler quiet */
}

/*
 * fraudstream.create_ring(name, columns, key_column, time_column,
 * retention, partitions): create a ring; see the file header.
 */
Datum
fraudstream_create_ring(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *columns = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *key_column = NameStr(*PG_GETARG_NAME(2));
	char	   *time_column = NameStr(*PG_GETARG_NAME(3));
	Interval   *retention = PG_GETARG_INTERVAL_P(4);
	int32		partitions = PG_GETARG_INT32(5);
	List	   *names;
	RangeVar   *rv;
	Oid			nsp;
	char	   *qname;
	char	   *sql;
	int64		retention_us;
	int64		step_us;
	Oid			ring;
	Oid			timetype;
	List	   *parsed;
	Datum	   *slots;
	Datum		args[8];
	Oid			argtypes[8] = {OIDOID, NAMEOID, NAMEOID, INTERVALOID, INT4OID, INT8OID, OIDARRAYOID, INT8OID};

	FsRequireAdmin("create a ring");

	if (retention->month != 0 || retention->day < 0 || retention->time < 0 ||
		(retention->day == 0 && retention->time == 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid ring retention"),
				 errdetail("Retention must be positive and given in days, hours, minutes or seconds, not months or years."),
				 errhint("For example '15 minutes' or '7 days'.")));
	if (partitions < FS_RING_MIN_PARTITIONS || partitions > FS_RING_MAX_PARTITIONS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a ring has between %d and %d partitions, not %d",
						FS_RING_MIN_PARTITIONS, FS_RING_MAX_PARTITIONS, partitions),
				 errdetail("One partition fills, one is kept empty, the others hold the window."),
				 errhint("The default, 6, rotates every retention / 4.")));
	retention_us = retention->day * USECS_PER_DAY + retention->time;
	step_us = (retention_us + partitions - 3) / (partitions - 2);
	if (step_us < USECS_PER_SEC / 10)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("ring retention is too short for %d partitions", partitions),
				 errdetail("A rotation step would last less than 100 milliseconds."),
				 errhint("Use a longer retention or fewer partitions.")));

	names = stringToQualifiedNameList(name);
	rv = makeRangeVarFromNameList(names);
	nsp = RangeVarGetCreationNamespace(rv);
	qname = quote_qualified_identifier(get_namespace_name(nsp), rv->relname);

	sql = psprintf("CREATE TABLE %s (%s) PARTITION BY LIST (fraudstream.ring_slot(%s, " INT64_FORMAT "::bigint, %d))",
				   qname, columns, quote_identifier(time_column), step_us, partitions);
	parsed = raw_parser(sql, RAW_PARSE_DEFAULT);
	if (list_length(parsed) != 1 ||
		!IsA(castNode(RawStmt, linitial(parsed))->stmt, CreateStmt))
		ereport(ERROR,
				(errcode(ERRCODE_SYNTAX_ERROR),
				 errmsg("invalid column list for ring \"%s\"", name),
				 errdetail("The column list must be the body of a CREATE TABLE statement."),
				 errhint("For example 'card_id text, amount numeric, ts timestamptz'.")));

	/* the key and time columns, checked before anything is created */
	(void) column_type(castNode(CreateStmt, castNode(RawStmt, linitial(parsed))->stmt),
					   key_column, "key column");
	timetype = column_type(castNode(CreateStmt, castNode(RawStmt, linitial(parsed))->stmt),
						   time_column, "time column");
	if (timetype != TIMESTAMPTZOID && timetype != TIMESTAMPOID)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("time column \"%s\" of a ring must be timestamptz or timestamp", time_column),
				 errhint("Declare the column as timestamptz.")));

	SPI_connect();
	run_sql(sql);
	CommandCounterIncrement();
	ring = RangeVarGetRelid(makeRangeVar(get_namespace_name(nsp), rv->relname, -1),
							NoLock, false);

	slots = palloc(partitions * sizeof(Datum));
	for (int i = 0; i < partitions; i++)
	{
		char	   *pname = ChooseRelationName(rv->relname, NULL, psprintf("p%d", i), nsp, false);
		char	   *qpart = quote_qualified_identifier(get_namespace_name(nsp), pname);

		run_sql(psprintf("CREATE UNLOGGED TABLE %s PARTITION OF %s FOR VALUES IN (%d)",
						 qpart, qname, i));
		CommandCounterIncrement();
		slots[i] = ObjectIdGetDatum(get_relname_relid(pname, nsp));
	}
	/*
	 * A key rarely repeats at the same time: btree deduplication would scan
	 * every full leaf page for nothing before splitting it.
	 */
	run_sql(psprintf("CREATE INDEX ON %s (%s, %s) WITH (deduplicate_items = off)", qname,
					 quote_identifier(key_column), quote_identifier(time_column)));

	args[0] = ObjectIdGetDatum(ring);
	args[1] = PG_GETARG_DATUM(2);
	args[2] = PG_GETARG_DATUM(3);
	args[3] = IntervalPGetDatum(retention);
	args[4] = Int32GetDatum(partitions);
	args[5] = Int64GetDatum(step_us);
	args[6] = PointerGetDatum(construct_array(slots, partitions, OIDOID, sizeof(Oid),
											  true, TYPALIGN_INT));
	args[7] = Int64GetDatum(floor_div(GetCurrentTimestamp(), step_us));
	if (SPI_execute_with_args("INSERT INTO fraudstream.ring_config "
							  "(ring, key_column, time_column, retention, partitions, step_us, slots, current_step) "
							  "VALUES ($1, $2, $3, $4, $5, $6, $7::pg_catalog.regclass[], $8)",
							  8, argtypes, args, NULL, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not register ring in fraudstream.ring_config");
	SPI_finish();

	PG_RETURN_OID(ring);
}

/* fraudstream.drop_ring(ring): drop a ring no source writes to. */
Datum
fraudstream_drop_ring(PG_FUNCTION_ARGS)
{
	Oid			ring = PG_GETARG_OID(0);
	Datum		arg = ObjectIdGetDatum(ring);
	Oid			argtype = OIDOID;
	char	   *relname = get_rel_name(ring);

	FsRequireAdmin("drop a ring");
	SPI_connect();
	if (SPI_execute_with_args("DELETE FROM fraudstream.ring_config WHERE ring = $1",
							  1, &argtype, &arg, NULL, false, 0) != SPI_OK_DELETE)
		elog(ERROR, "could not delete from fraudstream.ring_config");
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a ring", relname ? relname : "?"),
				 errhint("Drop ordinary tables with DROP TABLE.")));
	if (SPI_execute_with_args("SELECT name FROM fraudstream.source_config WHERE target = $1",
							  1, &argtype, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.source_config");
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("ring \"%s\" is the target of source \"%s\"", relname,
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errhint("Drop the source first with fraudstream.drop_source().")));
	run_sql(psprintf("DROP TABLE %s",
					 quote_qualified_identifier(get_namespace_name(get_rel_namespace(ring)),
												relname)));
	SPI_finish();
	PG_RETURN_VOID();
}

/* The rings of the current database; needs a transaction and SPI. */
static List *
read_rings(MemoryContext cxt)
{
	List	   *rings = NIL;

	if (SPI_execute("SELECT ring::oid, step_us, partitions, current_step, slots::oid[] "
					"FROM fraudstream.ring_config", true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.ring_config");
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		RingInfo   *r = MemoryContextAllocZero(cxt, sizeof(RingInfo));
		ArrayType  *arr;
		Datum	   *elems;
		int			nelems;
		MemoryContext old;

		r->ring = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		r->step_us = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		r->partitions = DatumGetInt32(SPI_getbinval(tup, desc, 3, &isnull));
		r->current_step = DatumGetInt64(SPI_getbinval(tup, desc, 4, &isnull));
		arr = DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull));
		deconstruct_array(arr, OIDOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, NULL, &nelems);
		old = MemoryContextSwitchTo(cxt);
		r->slots = palloc(r->partitions * sizeof(Oid));
		for (int j = 0; j < r->partitions; j++)
			r->slots[j] = j < nelems ? DatumGetObjectId(elems[j]) : InvalidOid;
		rings = lappend(rings, r);
		MemoryContextSwitchTo(old);
	}
	return rings;
}

/*
 * Lock a partition for TRUNCATE without holding anyone up for long: try,
 * retry every few ms, then queue with lock_timeout (which raises an error
 * when it expires).
 */
static void
lock_partition(Oid relid)
{
	TimestampTz deadline = TimestampTzPlusMilliseconds(GetCurrentTimestamp(),
													   FsRotationLockTimeout);

	while (!ConditionalLockRelationOid(relid, AccessExclusiveLock))
	{
		if (GetCurrentTimestamp() >= deadline)
		{
			(void) set_config_option("lock_timeout",
									 psprintf("%d", FsRotationLockTimeout),
									 PGC_SUSET, PGC_S_SESSION, GUC_ACTION_LOCAL,
									 true, 0, false);
			LockRelationOid(relid, AccessExclusiveLock);
			return;
		}
		(void) WaitLatch(NULL, WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, 5, PG_WAIT_EXTENSION);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Rotate ring r to now_step: empty the partitions of the steps that became
 * "next" since the last rotation (all of them after a long pause).  Runs
 * in the caller's transaction, SPI connected; returns partitions emptied.
 */
static int
rotate_ring(RingInfo *r, int64 now_step)
{
	int			n = (int) Min(now_step - r->current_step, (int64) r->partitions);
	StringInfoData sql;
	Datum		args[3];
	Oid			argtypes[3] = {OIDOID, INT8OID, INT4OID};

	initStringInfo(&sql);
	appendStringInfoString(&sql, "TRUNCATE ONLY ");
	for (int i = 0; i < n; i++)
	{
		Oid			part = r->slots[slot_of_step(now_step + 1 - i, r->partitions)];

		if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(part)))
			return 0;
		lock_partition(part);
		appendStringInfo(&sql, "%s%s", i > 0 ? ", " : "",
						 quote_qualified_identifier(get_namespace_name(get_rel_namespace(part)),
													get_rel_name(part)));
	}
	run_sql(sql.data);

	args[0] = ObjectIdGetDatum(r->ring);
	args[1] = Int64GetDatum(now_step);
	args[2] = Int32GetDatum(n);
	if (SPI_execute_with_args("UPDATE fraudstream.ring_config SET current_step = $2, "
							  "rotations = rotations + $3, rotated_at = now() WHERE ring = $1",
							  3, argtypes, args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not update fraudstream.ring_config");
	return n;
}

/*
 * Rotate every ring that is due, each in its own transaction, and return
 * the milliseconds until the next one is due (at most a second).  Called
 * by the launcher, outside any transaction.  A rotation that fails (lock
 * not available) is logged at DEBUG1 and retried at the next call.
 */
long
FsRingRotateDue(void)
{
	MemoryContext cxt = AllocSetContextCreate(TopMemoryContext, "fraudstream rings",
											  ALLOCSET_SMALL_SIZES);
	List	   *rings;
	ListCell   *lc;
	volatile long next_ms = 1000;
	TimestampTz now;

	SetCurrentStatementStartTimestamp();
	StartTransactionCommand();
	SPI_connect();
	PushActiveSnapshot(GetTransactionSnapshot());
	rings = read_rings(cxt);
	SPI_finish();
	PopActiveSnapshot();
	CommitTransactionCommand();

	now = GetCurrentTimestamp();
	foreach(lc, rings)
	{
		RingInfo   *r = lfirst(lc);
		volatile int64 now_step = floor_div(now, r->step_us);
		int64		due_ms = ((now_step + 1) * r->step_us - now) / 1000 + 1;

		next_ms = Min(next_ms, due_ms);
		if (now_step <= r->current_step)
			continue;

		/* one transaction per ring: its locks go as soon as it is done */
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		PG_TRY();
		{
			SPI_connect();
			PushActiveSnapshot(GetTransactionSnapshot());
			if (SearchSysCacheExists1(RELOID, ObjectIdGetDatum(r->ring)))
				rotate_ring(r, now_step);
			SPI_finish();
			PopActiveSnapshot();
			CommitTransactionCommand();
		}
		PG_CATCH();
		{
			ErrorData  *edata;

			MemoryContextSwitchTo(cxt);
			edata = CopyErrorData();
			FlushErrorState();
			AbortCurrentTransaction();
			if (edata->sqlerrcode != ERRCODE_LOCK_NOT_AVAILABLE)
				ReThrowError(edata);
			ereport(DEBUG1,
					(errmsg("fraudstream: rotation of ring %u postponed: %s",
							r->ring, edata->message)));
			next_ms = Min(next_ms, 100);
		}
		PG_END_TRY();
	}
	MemoryContextSwitchTo(TopMemoryContext);
	MemoryContextDelete(cxt);
	return Max(next_ms, 1);
}

/*
 * fraudstream.rotate_rings(): rotate the rings of this database that are
 * due now, as the launcher does every second; returns the number of
 * partitions emptied.  For databases the launcher does not serve, and for
 * tests.
 */
Datum
fraudstream_rotate_rings(PG_FUNCTION_ARGS)
{
	List	   *rings;
	ListCell   *lc;
	int			total = 0;
	TimestampTz now = GetCurrentTimestamp();

	FsRequireAdmin("rotate rings");
	SPI_connect();
	rings = read_rings(CurrentMemoryContext);
	foreach(lc, rings)
	{
		RingInfo   *r = lfirst(lc);
		int64		now_step = floor_div(now, r->step_us);

		if (now_step > r->current_step &&
			SearchSysCacheExists1(RELOID, ObjectIdGetDatum(r->ring)))
			total += rotate_ring(r, now_step);
	}
	SPI_finish();
	PG_RETURN_INT32(total);
}
