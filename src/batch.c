/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Point-in-time features over history: the batch path, for training
 *		sets and backfills.
 *
 * fraudstream.feature_history(source, key_column, order_column) replays
 * the rows of a source in arrival order (order_column; by default the
 * event time) and gives every row the features it would have had online
 * when it arrived: the same window math (window.c), the same lateness
 * rule, the same pruning of history older than the longest window plus
 * max_lateness.  It keeps each entity's history in backend memory, so
 * its memory grows with the number of entities times their events in
 * the longest window, not with the size of the table.
 *
 * Locking: reads the source with the caller's snapshot, like a SELECT.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/table.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "fraudstream.h"
#include "featuredefs.h"
#include "online.h"

/* One entity's history during a replay. */
typedef struct History
{
	FsEntityKey key;
	int			start;			/* first live event */
	int			count;			/* events stored, live or not */
	int			capacity;
	char	   *events;
	TimestampTz latest;
} History;

PG_FUNCTION_INFO_V1(fraudstream_feature_history);

/* Append an event to a history, dropping those no window can reach. */
static void
history_append(History *h, const FsGroupDef *gd, const FsEvent *event)
{
	Size		size = gd->event_size;

	h->latest = Max(h->latest, event->time);
	while (h->start < h->count &&
		   FS_EVENT_AT(h->events, h->start, size)->time <= h->latest - gd->retain)
		h->start++;
	if (h->count == h->capacity)
	{
		int			live = h->count - h->start;

		if (h->start > 0 && live < h->capacity / 2)
		{
			memmove(h->events, h->events + h->start * size, live * size);
			h->count = live;
			h->start = 0;
		}
		else
		{
			h->capacity = h->capacity ? h->capacity * 2 : 8;
			h->events = h->events ? repalloc(h->events, h->capacity * size)
				: palloc(h->capacity * size);
		}
	}
	memcpy(h->events + h->count * size, event, size);
	h->count++;
}

/*
 * fraudstream.feature_history(source regclass, key_column text,
 *		order_column text DEFAULT NULL) returns (key text, features jsonb).
 */
Datum
fraudstream_feature_history(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			relid;
	char	   *key_column;
	FsSourceDef *sd;
	Relation	rel;
	TupleDesc	desc;
	char	   *order_column;
	HTAB	  **histories;
	StringInfoData sql;
	StringInfoData json;
	Portal		portal;
	MemoryContext row_cxt;
	MemoryContext hist_cxt;
	FsEvent    *event = palloc(FS_EVENT_SIZE(FS_MAX_SLOTS));
	double	   *result = palloc(sizeof(double) * 64);
	bool	   *isnull = palloc(sizeof(bool) * 64);

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source and key_column must not be NULL")));
	relid = PG_GETARG_OID(0);
	key_column = text_to_cstring(PG_GETARG_TEXT_PP(1));
	sd = FsGetSourceDef(relid);
	if (sd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no features are defined on \"%s\"", get_rel_name(relid)),
				 errhint("Define them with fraudstream.create_feature().")));
	rel = table_open(relid, AccessShareLock);
	desc = CreateTupleDescCopy(RelationGetDescr(rel));
	if (get_attnum(relid, key_column) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						key_column, RelationGetRelationName(rel))));
	order_column = PG_ARGISNULL(2)
		? get_attname(relid, sd->groups[0].time_attnum, false)
		: text_to_cstring(PG_GETARG_TEXT_PP(2));
	if (get_attnum(relid, order_column) == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						order_column, RelationGetRelationName(rel))));

	InitMaterializedSRF(fcinfo, 0);
	hist_cxt = AllocSetContextCreate(CurrentMemoryContext, "fraudstream history",
									 ALLOCSET_DEFAULT_SIZES);
	row_cxt = AllocSetContextCreate(CurrentMemoryContext, "fraudstream history row",
									ALLOCSET_DEFAULT_SIZES);
	histories = palloc0(sizeof(HTAB *) * sd->ngroups);
	for (int i = 0; i < sd->ngroups; i++)
	{
		HASHCTL		ctl;

		ctl.keysize = sizeof(FsEntityKey);
		ctl.entrysize = sizeof(History);
		ctl.hcxt = hist_cxt;
		histories[i] = hash_create("fraudstream histories", 1024, &ctl,
								   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	}

	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT t, t.%s::text FROM %s t ORDER BY t.%s",
					 quote_identifier(key_column),
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)),
					 quote_identifier(order_column));
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true,
									   CURSOR_OPT_NO_SCROLL);
	initStringInfo(&json);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 r = 0; r < SPI_processed; r++)
		{
			bool		null_row;
			bool		null_key;
			Datum		rowd = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1, &null_row);
			Datum		keyd = SPI_getbinval(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2, &null_key);
			HeapTupleHeader row;
			HeapTupleData tuple;
			MemoryContext old = MemoryContextSwitchTo(row_cxt);
			Datum		values[2];
			bool		nulls[2] = {false, false};

			CHECK_FOR_INTERRUPTS();
			row = DatumGetHeapTupleHeader(rowd);
			FsTupleFromComposite(row, relid, &tuple);

			resetStringInfo(&json);
			appendStringInfoChar(&json, '{');
			for (int g = 0; g < sd->ngroups; g++)
			{
				const FsGroupDef *gd = &sd->groups[g];
				FsEntityKey key;
				bool		is_event = FsEventFromTuple(gd, desc, &tuple, event, &key);

				if (is_event)
				{
					bool		found;
					History    *h;
					FsEventRun	run;

					MemoryContextSwitchTo(hist_cxt);
					h = hash_search(histories[g], &key, HASH_ENTER, &found);
					if (!found)
					{
						h->start = h->count = h->capacity = 0;
						h->events = NULL;
						h->latest = DT_NOBEGIN;
					}
					MemoryContextSwitchTo(row_cxt);
					run.events = (const FsEvent *) (h->events + h->start * gd->event_size);
					run.count = h->count - h->start;
					if (FsEventIsLate(event->time, h->latest))
						memset(isnull, true, sizeof(bool) * gd->nfeatures);
					else
					{
						FsWindowCompute(gd->specs, gd->nfeatures, gd->event_size, &run, 1,
										event, false, result, isnull);
						MemoryContextSwitchTo(hist_cxt);
						history_append(h, gd, event);
						MemoryContextSwitchTo(row_cxt);
					}
				}
				for (int f = 0; f < gd->nfeatures; f++)
					FsAppendFeatureJson(&json, gd->names[f], gd->specs[f].agg,
										result[f], !is_event || isnull[f]);
			}
			appendStringInfoChar(&json, '}');
			MemoryContextSwitchTo(old);

			values[0] = null_key ? (Datum) 0 : keyd;
			nulls[0] = null_key;
			values[1] = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.data));
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
			MemoryContextReset(row_cxt);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
	table_close(rel, AccessShareLock);
	MemoryContextDelete(hist_cxt);
	return (Datum) 0;
}
