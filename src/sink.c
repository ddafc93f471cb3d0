/*-------------------------------------------------------------------------
 *
 * sink.c
 *		Insert a batch of rows into a table the way COPY FROM does: through
 *		the executor, so that partition routing, constraints, indexes and
 *		BEFORE/AFTER row and statement triggers all apply, and so that one
 *		bad row costs only itself.
 *
 * FsSinkInsertRows inserts rows 0..n-1, asking a callback for each row's
 * values.  The whole batch goes in one subtransaction; there is no
 * per-row SPI statement and no per-row subtransaction.  When a row fails
 * (its decoding, a constraint, a trigger), the subtransaction is rolled
 * back, the rows before it are inserted again in a new one, the failing
 * row is reported to the reject callback, and insertion goes on after it.
 * A failure that cannot be pinned to a row (an AFTER trigger fired at the
 * end of the statement, e.g. a foreign key check) is narrowed down by
 * halving the range.  A batch with k bad rows thus costs about 2k + 1
 * subtransactions and inserts each good row at most twice.
 *
 * Each attempt sets up its own executor state (EState, ResultRelInfo,
 * partition routing) inside its subtransaction and in a memory context of
 * its own, so that a rollback, which releases the relations opened by the
 * attempt, never leaves dangling pointers behind.
 *
 * Rows are inserted one at a time with table_tuple_insert and a
 * BulkInsertState (like COPY's CIM_SINGLE path); rings and other targets
 * are usually partitioned and carry row triggers, where COPY would not
 * use multi-inserts either.
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
#include "commands/trigger.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "executor/nodeModifyTable.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"

#include "fraudstream.h"
#include "sink.h"

/* Executor state of one insertion attempt. */
typedef struct SinkState
{
	EState	   *estate;
	ResultRelInfo *root;
	ModifyTableState *mtstate;
	PartitionTupleRouting *proute;
	TransitionCaptureState *tcs;
	TupleTableSlot *slot;
	BulkInsertState bistate;
	ResultRelInfo *last_target;
	CommandId	cid;
} SinkState;

/* Open the target and fire BEFORE STATEMENT triggers. */
static void
sink_open(SinkState *s, Oid relid)
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
	ExecBSInsertTriggers(s->estate, s->root);
}

/*
 * Fire AFTER STATEMENT triggers and the queued AFTER ROW triggers, and
 * close everything.  Errors here belong to no row in particular.
 */
static void
sink_close(SinkState *s)
{
	ExecASInsertTriggers(s->estate, s->root, s->tcs);
	AfterTriggerEndQuery(s->estate);
	FreeBulkInsertState(s->bistate);
	if (s->proute)
		ExecCleanupTupleRouting(s->mtstate, s->proute);
	ExecResetTupleTable(s->estate->es_tupleTable, false);
	ExecCloseResultRelations(s->estate);
	ExecCloseRangeTableRelations(s->estate);
	FreeExecutorState(s->estate);
}

/*
 * Insert the row in s->slot as INSERT would: route it, run BEFORE ROW
 * triggers, compute generated columns, check constraints, insert the heap
 * tuple and its index entries, and queue AFTER ROW triggers.  Returns
 * false when a BEFORE trigger skipped the row.
 */
static bool
sink_row(SinkState *s)
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

	/* a heap page pinned for one partition is no use for another */
	if (rri != s->last_target)
	{
		ReleaseBulkInsertStatePin(s->bistate);
		s->last_target = rri;
	}

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
 * that failed (-1 if the failure came after the last row) and *edata to
 * the error.
 */
static int64
try_range(Oid relid, int start, int end, FsSinkRowFn rowfn, void *arg,
		  int *failed, ErrorData **edata)
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

		sink_open(&s, relid);
		econtext = GetPerTupleExprContext(s.estate);
		for (int i = start; i < end; i++)
		{
			bool		use;

			current = i;
			CHECK_FOR_INTERRUPTS();
			ResetPerTupleExprContext(s.estate);
			MemoryContextSwitchTo(GetPerTupleMemoryContext(s.estate));
			ExecClearTuple(s.slot);
			use = rowfn(arg, i, econtext, s.slot->tts_values, s.slot->tts_isnull);
			if (use)
			{
				ExecStoreVirtualTuple(s.slot);
				if (sink_row(&s))
					inserted++;
			}
			MemoryContextSwitchTo(attempt_cxt);
		}
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
 * others are inserted.  Returns the number of rows inserted.  Must run in
 * a transaction; the rows are part of it.
 */
int64
FsSinkInsertRows(Oid relid, int nrows, FsSinkRowFn rowfn,
				 FsSinkRejectFn rejectfn, void *arg)
{
	int			pos = 0;
	int			end = nrows;
	int64		total = 0;

	while (pos < nrows)
	{
		int			failed;
		ErrorData  *edata;
		int64		n = try_range(relid, pos, end, rowfn, arg, &failed, &edata);

		if (n >= 0)
		{
			total += n;
			pos = end;
			end = nrows;
			continue;
		}
		if (failed < 0)
		{
			/* failed at end of statement: narrow the range down */
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
