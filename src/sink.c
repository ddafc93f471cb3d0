/*-------------------------------------------------------------------------
 *
 * sink.c
 *		Insert a batch of rows into a table the way COPY FROM does: through
 *		the executor, so that partition routing, constraints, indexes and
 *		BEFORE/AFTER row and statement triggers all apply, with multi-row
 *		heap inserts where COPY would use them, and so that one bad row
 *		costs only itself.
 *
 * FsSinkInsertRows inserts rows 0..n-1, asking a callback for each row's
 * values.  The whole batch goes in one subtransaction; there is no
 * per-row SPI statement and no per-row subtransaction.  When a row fails
 * (its decoding, a constraint, an index, a trigger), the subtransaction
 * is rolled back, the rows before it are inserted again in a new one, the
 * failing row is reported to the reject callback, and insertion goes on
 * after it.  A failure that cannot be pinned to a row (an AFTER trigger
 * fired at the end of the statement, e.g. a foreign key check, or the
 * heap insert of a whole buffer) is narrowed down by halving the range.
 * A batch with k bad rows thus costs about 2k + 1 subtransactions and
 * inserts each good row at most twice.
 *
 * Multi-inserts: rows that passed routing, BEFORE ROW triggers and
 * constraints are copied into a buffer per target partition and written
 * with table_multi_insert (one heap page lock for many rows), then their
 * index entries and AFTER ROW trigger events, row by row, remembering
 * which batch row each buffered tuple is so that an index error (a
 * unique violation) is still the fault of its own row.  Buffers are
 * flushed at SINK_BUFFER_ROWS rows or SINK_BUFFER_BYTES of input, at the
 * end of an attempt, and before a row goes to a partition that takes
 * rows one at a time.  As COPY, a relation takes rows one at a time when
 * it has BEFORE or INSTEAD OF row triggers that might read the table and
 * miss the buffered rows, when a partitioned target has transition
 * tables, or when the caller says so (volatile column defaults).  The
 * BEFORE triggers that do not prevent buffering are fraudstream's own
 * feed and score triggers: they fire per row as always, before the row
 * is buffered, and never read the target table.
 * AFTER ROW triggers of buffered rows fire in the order of the flushes,
 * partition by partition, as in COPY.
 *
 * Each attempt sets up its own executor state (EState, ResultRelInfo,
 * partition routing, buffers) inside its subtransaction and in a memory
 * context of its own, so that a rollback, which releases the relations
 * opened by the attempt, never leaves dangling pointers behind.  Buffer
 * slots live in the EState's tuple table and are released with it.
 *
 * Locking: the target is locked RowExclusiveLock, partitions as rows are
 * routed to them, as by INSERT.  Callers check privileges: nothing here
 * checks that the current user may insert.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_trigger.h"
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "fraudstream.h"
#include "sink.h"

/*
 * Rows buffered per relation, and input bytes over all buffers, at most.
 * Fewer rows than COPY's 1000: each attempt makes its buffer slots anew,
 * and a few hundred rows already fill many heap pages per call.
 */
#define SINK_BUFFER_ROWS	256
#define SINK_BUFFER_BYTES	(64 * 1024)

/* Rows waiting for one multi-insert into one relation (leaf partition). */
typedef struct SinkBuffer
{
	ResultRelInfo *rri;
	BulkInsertState bistate;
	int			nused;
	TupleTableSlot *slots[SINK_BUFFER_ROWS];
	int			rows[SINK_BUFFER_ROWS]; /* batch row of each slot */
} SinkBuffer;

/* Executor state of one insertion attempt. */
typedef struct SinkState
{
	MemoryContext cxt;			/* the attempt's context */
	EState	   *estate;
	ResultRelInfo *root;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
	TransitionCaptureState *tcs;
	TupleTableSlot *slot;
	BulkInsertState bistate;	/* for rows inserted one at a time */
	ResultRelInfo *last_target;
	SinkBuffer *buffer;			/* last_target's buffer, NULL: one at a time */
	CommandId	cid;

	bool		multi;			/* the target may take multi-inserts */
	Oid			ownfns[2];		/* fraudstream's feed_trigger() and
								 * score_trigger(), InvalidOid if missing */
	List	   *buffers;
	int			nbuffered;
	Size		nbytes;
	volatile int *current;		/* the row an error belongs to, -1: none */
} SinkState;

/*
 * Whether a relation with these triggers may take buffered rows: not if a
 * BEFORE or INSTEAD OF row trigger, which might read the table, would miss
 * the rows buffered before its own (COPY's rule); fraudstream's feed and
 * score triggers are the exception (see the file header).
 */
static bool
triggers_allow_multi(TriggerDesc *td, const Oid *ownfns)
{
	if (td == NULL)
		return true;
	if (td->trig_insert_instead_row)
		return false;
	if (!td->trig_insert_before_row)
		return true;
	for (int i = 0; i < td->numtriggers; i++)
	{
		Trigger    *t = &td->triggers[i];

		if (TRIGGER_TYPE_MATCHES(t->tgtype, TRIGGER_TYPE_ROW, TRIGGER_TYPE_BEFORE,
								 TRIGGER_TYPE_INSERT) &&
			t->tgfoid != ownfns[0] && t->tgfoid != ownfns[1])
			return false;
	}
	return true;
}

/* Open the target and fire BEFORE STATEMENT triggers. */
static void
sink_open(SinkState *s, Oid relid, bool allow_multi)
{
	RangeTblEntry *rte = makeNode(RangeTblEntry);
	Relation	rel;

	rte->rtekind = RTE_RELATION;
	rte->relid = relid;
	rte->relkind = get_rel_relkind(relid);
	rte->rellockmode = RowExclusiveLock;

	s->estate = CreateExecutorState();
	FsExecInitRangeTable(s->estate, list_make1(rte));
	s->root = makeNode(ResultRelInfo);
	ExecInitResultRelation(s->estate, s->root, 1);
	CheckValidResultRel(s->root, CMD_INSERT);
	ExecOpenIndices(s->root, false);
	rel = s->root->ri_RelationDesc;

	s->mtstate = makeNode(ModifyTableState);
	s->mtstate->ps.state = s->estate;
	s->mtstate->operation = CMD_INSERT;
	s->mtstate->mt_nrels = 1;
	s->mtstate->resultRelInfo = s->root;
	s->mtstate->rootResultRelInfo = s->root;

	AfterTriggerBeginQuery();
	s->tcs = s->mtstate->mt_transition_capture =
		MakeTransitionCaptureState(rel->trigdesc, relid, CMD_INSERT);
	if (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
		s->proute = ExecSetupPartitionTupleRouting(s->estate, rel);
	s->slot = table_slot_create(rel, &s->estate->es_tupleTable);
	s->bistate = GetBulkInsertState();
	s->cid = GetCurrentCommandId(true);

	s->ownfns[0] = LookupFuncName(list_make2(makeString("fraudstream"),
											 makeString("feed_trigger")),
								  0, NULL, true);
	s->ownfns[1] = LookupFuncName(list_make2(makeString("fraudstream"),
											 makeString("score_trigger")),
								  0, NULL, true);
	s->multi = allow_multi &&
		rel->rd_rel->relkind != RELKIND_FOREIGN_TABLE &&
		triggers_allow_multi(rel->trigdesc, s->ownfns) &&
		!(s->proute != NULL && s->tcs != NULL);

	ExecBSInsertTriggers(s->estate, s->root);
}

/* The buffer of relation rri, made on first use. */
static SinkBuffer *
buffer_for(SinkState *s, ResultRelInfo *rri)
{
	ListCell   *lc;
	SinkBuffer *buf;
	MemoryContext old;

	foreach(lc, s->buffers)
	{
		buf = lfirst(lc);
		if (buf->rri == rri)
			return buf;
	}
	/* called per row: the buffer must outlive the per-row context */
	old = MemoryContextSwitchTo(s->cxt);
	buf = palloc0(sizeof(SinkBuffer));
	buf->rri = rri;
	buf->bistate = GetBulkInsertState();
	s->buffers = lappend(s->buffers, buf);
	MemoryContextSwitchTo(old);
	return buf;
}

/*
 * Write one buffer: heap tuples in one call, then each row's index
 * entries and AFTER ROW trigger events, with *current naming the row.
 */
static void
flush_buffer(SinkState *s, SinkBuffer *buf)
{
	ResultRelInfo *rri = buf->rri;
	int			save_current = *s->current;
	MemoryContext old;

	if (buf->nused == 0)
		return;

	/* the heap insert of the whole buffer belongs to no row in particular */
	*s->current = -1;
	old = MemoryContextSwitchTo(GetPerTupleMemoryContext(s->estate));
	table_multi_insert(rri->ri_RelationDesc, buf->slots, buf->nused,
					   s->cid, 0, buf->bistate);
	for (int i = 0; i < buf->nused; i++)
	{
		TupleTableSlot *slot = buf->slots[i];
		List	   *recheck = NIL;

		*s->current = buf->rows[i];
		if (rri->ri_NumIndices > 0)
			recheck = FsExecInsertIndexTuples(rri, slot, s->estate);
		ExecARInsertTriggers(s->estate, rri, slot, recheck, s->tcs);
		list_free(recheck);
		ExecClearTuple(slot);
	}
	MemoryContextSwitchTo(old);
	buf->nused = 0;
	*s->current = save_current;
}

/* Write every buffer. */
static void
flush_all(SinkState *s)
{
	ListCell   *lc;

	foreach(lc, s->buffers)
		flush_buffer(s, lfirst(lc));
	s->nbuffered = 0;
	s->nbytes = 0;
}

/*
 * Fire AFTER STATEMENT triggers and the queued AFTER ROW triggers, and
 * close everything.  Errors here belong to no row in particular.
 */
static void
sink_close(SinkState *s)
{
	ListCell   *lc;

	ExecASInsertTriggers(s->estate, s->root, s->tcs);
	AfterTriggerEndQuery(s->estate);
	FreeBulkInsertState(s->bistate);
	foreach(lc, s->buffers)
	{
		SinkBuffer *buf = lfirst(lc);

		FreeBulkInsertState(buf->bistate);
		table_finish_bulk_insert(buf->rri->ri_RelationDesc, 0);
	}
	if (s->proute)
		ExecCleanupTupleRouting(s->mtstate, s->proute);
	ExecResetTupleTable(s->estate->es_tupleTable, false);
	ExecCloseResultRelations(s->estate);
	ExecCloseRangeTableRelations(s->estate);
	FreeExecutorState(s->estate);
}

/*
 * A new target relation: choose between its buffer and one row at a time.
 * Rows buffered for other relations are written before a row goes in one
 * at a time, so that its triggers see them.
 */
static void
switch_target(SinkState *s, ResultRelInfo *rri)
{
	/* a heap page pinned for one partition is no use for another */
	ReleaseBulkInsertStatePin(s->bistate);
	s->last_target = rri;
	if (s->multi && rri->ri_FdwRoutine == NULL &&
		(rri == s->root || triggers_allow_multi(rri->ri_TrigDesc, s->ownfns)))
		s->buffer = buffer_for(s, rri);
	else
	{
		s->buffer = NULL;
		if (s->nbuffered > 0)
			flush_all(s);
	}
}

/* Keep the row in slot for the next multi-insert into s->buffer. */
static void
buffer_row(SinkState *s, TupleTableSlot *slot, int row, Size bytes)
{
	SinkBuffer *buf = s->buffer;
	TupleTableSlot *bslot = buf->slots[buf->nused];

	if (bslot == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(s->cxt);

		bslot = buf->slots[buf->nused] =
			table_slot_create(buf->rri->ri_RelationDesc, &s->estate->es_tupleTable);
		MemoryContextSwitchTo(old);
	}
	ExecCopySlot(bslot, slot);
	buf->rows[buf->nused++] = row;
	s->nbuffered++;
	s->nbytes += bytes;
	if (buf->nused >= SINK_BUFFER_ROWS || s->nbytes >= SINK_BUFFER_BYTES)
		flush_all(s);
}

/*
 * Insert the row in s->slot as INSERT would: route it, run BEFORE ROW
 * triggers, compute generated columns, check constraints, then buffer it,
 * or insert the heap tuple and its index entries and queue AFTER ROW
 * triggers.  Returns false when a BEFORE trigger skipped the row.
 */
static bool
sink_row(SinkState *s, int row, Size bytes)
{
	ResultRelInfo *rri = s->root;
	TupleTableSlot *slot = s->slot;
	Relation	rel;
	List	   *recheck = NIL;

	if (s->proute)
	{
		TupleConversionMap *map;

		rri = ExecFindPartition(s->mtstate, s->root, s->proute, slot, s->estate);
		map = FsRootToPartitionMap(rri, s->estate);
		if (map != NULL)
			slot = execute_attr_map_slot(map->attrMap, slot, rri->ri_PartitionTupleSlot);
		if (s->tcs)
			s->tcs->tcs_original_insert_tuple = NULL;
	}
	rel = rri->ri_RelationDesc;
	if (rri != s->last_target)
		switch_target(s, rri);

	if (rri->ri_TrigDesc && rri->ri_TrigDesc->trig_insert_before_row)
	{
		if (!ExecBRInsertTriggers(s->estate, rri, slot))
			return false;
		/* the trigger may have moved the row out of its partition */
		if (rel->rd_rel->relispartition)
			ExecPartitionCheck(rri, slot, s->estate, true);
	}
	if (rel->rd_att->constr && rel->rd_att->constr->has_generated_stored)
		ExecComputeStoredGenerated(rri, s->estate, slot, CMD_INSERT);
	if (rel->rd_att->constr)
		ExecConstraints(rri, slot, s->estate);

	if (s->buffer)
	{
		buffer_row(s, slot, row, bytes);
		return true;
	}
	table_tuple_insert(rel, slot, s->cid, 0, s->bistate);
	if (rri->ri_NumIndices > 0)
		recheck = FsExecInsertIndexTuples(rri, slot, s->estate);
	ExecARInsertTriggers(s->estate, rri, slot, recheck, s->tcs);
	list_free(recheck);
	return true;
}

/* Errors that must stop the worker rather than reject a row. */
static bool
is_interrupt(ErrorData *edata)
{
	return edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
		edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN ||
		edata->sqlerrcode == ERRCODE_OUT_OF_MEMORY;
}

/*
 * Insert rows [start, end) in one subtransaction.  Returns the number of
 * rows inserted, or -1 after rolling back, with *failed set to the row
 * that failed (-1 if the failure belongs to no row) and *edata to the
 * error.
 */
static int64
try_range(Oid relid, bool allow_multi, int start, int end, FsSinkRowFn rowfn,
		  void *arg, int *failed, ErrorData **edata)
{
	MemoryContext caller_cxt = CurrentMemoryContext;
	ResourceOwner caller_owner = CurrentResourceOwner;
	MemoryContext attempt_cxt;
	volatile int current = -1;
	volatile int64 inserted = 0;

	attempt_cxt = AllocSetContextCreate(caller_cxt, "fraudstream sink",
										ALLOCSET_DEFAULT_SIZES);
	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(attempt_cxt);

	PG_TRY();
	{
		SinkState	s = {0};
		ExprContext *econtext;

		s.cxt = attempt_cxt;
		s.current = &current;
		sink_open(&s, relid, allow_multi);
		econtext = GetPerTupleExprContext(s.estate);
		for (int i = start; i < end; i++)
		{
			Size		bytes = 0;

			current = i;
			CHECK_FOR_INTERRUPTS();
			ResetPerTupleExprContext(s.estate);
			MemoryContextSwitchTo(GetPerTupleMemoryContext(s.estate));
			ExecClearTuple(s.slot);
			if (rowfn(arg, i, econtext, s.slot->tts_values, s.slot->tts_isnull, &bytes))
			{
				ExecStoreVirtualTuple(s.slot);
				if (sink_row(&s, i, bytes))
					inserted++;
			}
			MemoryContextSwitchTo(attempt_cxt);
		}
		flush_all(&s);
		current = -1;
		sink_close(&s);

		ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_cxt);
		CurrentResourceOwner = caller_owner;
	}
	PG_CATCH();
	{
		ErrorData  *err;

		MemoryContextSwitchTo(caller_cxt);
		err = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(caller_cxt);
		CurrentResourceOwner = caller_owner;
		MemoryContextDelete(attempt_cxt);

		if (is_interrupt(err))
			ReThrowError(err);
		*failed = current;
		*edata = err;
		return -1;
	}
	PG_END_TRY();

	MemoryContextDelete(attempt_cxt);
	return inserted;
}

/*
 * Insert rows 0..nrows-1 into relid; rows that fail go to rejectfn and the
 * others are inserted.  allow_multi false forbids multi-inserts (e.g. the
 * caller's column defaults are volatile and might read the table).
 * Returns the number of rows inserted.  Must run in a transaction; the
 * rows are part of it.
 */
int64
FsSinkInsertRows(Oid relid, int nrows, bool allow_multi, FsSinkRowFn rowfn,
				 FsSinkRejectFn rejectfn, void *arg)
{
	int			pos = 0;
	int			end = nrows;
	int64		total = 0;

	while (pos < nrows)
	{
		int			failed;
		ErrorData  *edata;
		int64		n = try_range(relid, allow_multi, pos, end, rowfn, arg,
								  &failed, &edata);

		if (n >= 0)
		{
			total += n;
			pos = end;
			end = nrows;
			continue;
		}
		if (failed < 0)
		{
			/* failed outside any row: narrow the range down */
			if (end - pos > 1)
			{
				end = pos + (end - pos) / 2;
				FreeErrorData(edata);
				continue;
			}
			failed = pos;
		}
		if (failed > pos)
		{
			/* insert the good rows before the failing one again */
			end = failed;
			FreeErrorData(edata);
			continue;
		}
		rejectfn(arg, pos, edata);
		FreeErrorData(edata);
		pos++;
		end = nrows;
	}
	return total;
}
