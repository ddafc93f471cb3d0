/*-------------------------------------------------------------------------
 *
 * batch.c
 *		Point-in-time features over history: the batch path, for training
 *		sets and backfills.
 *
 * fraudstream.feature_history(source, key_column, order_column) and
 * fraudstream.feature_vectors(...) replay the rows of a source in arrival
 * order (order_column; by default the event time) and give every row the
 * features it would have had online when it arrived: the same window math
 * (window.c), the same lateness rule (FsEventIsLate), the same history
 * (an entity's earlier events that were not late).
 *
 * Design.  A replay is three passes over compact arrays, not a sorted
 * query:
 *
 *	1. Read: one scan of the source (every leaf of a partitioned or
 *	   inherited table) with the caller's snapshot, deforming only the
 *	   columns the features read, plus the key and order columns.  Each
 *	   row becomes a row number, its key and order values, and for each
 *	   feature group its event (FsEvent) and a dense entity number from a
 *	   hash table keyed by the entity's full binary key (FsEntityKey), so
 *	   two entities whose hashes collide are never merged.
 *	2. Replay, group by group: a counting sort by entity number lays each
 *	   entity's rows out together in scan order; an entity whose rows are
 *	   not already in arrival order is sorted by (order value, row number),
 *	   NULL order values last, as ORDER BY would put them.  The events are
 *	   copied into that order, then each entity's events are replayed
 *	   against its history as the online path keeps it (non-late events,
 *	   pruned to the group's retention) by one FsReplay (window.c): the
 *	   online state's running summaries, amortised O(1) per event and the
 *	   online values bit for bit.
 *	   With several groups, the features are then copied to their rows.
 *	   The copies between scan and entity order are tight loops on
 *	   purpose: they visit rows at random, and a tight loop lets the CPU
 *	   overlap the cache misses that a computation between them would
 *	   serialize.  Only one entity's history is live at a time.
 *	3. Emit: one row per source row, with its key as key_column::text and
 *	   its features as jsonb (feature_history, built in binary form by
 *	   featurejson.c) or as a float8[] in the order of feature_names()
 *	   (feature_vectors).  With one group, rows are emitted as the replay
 *	   computes them, entity after entity; with several, in scan order
 *	   once every group is done.
 *
 * Row-level security, or a leaf that is not a plain table (a foreign
 * partition), make the read pass go through SPI instead ("SELECT columns
 * FROM source", so policies apply); the rest is the same.
 *
 * Memory: per row, its key (9 bytes, plus a copy of a by-reference key),
 * its order value (9 bytes; a copy if by reference), and per group a
 * 4-byte entity number and its event (16 bytes + 8 per value column).  A
 * group's replay adds a 4-byte permutation, a second copy of its events
 * and, with one group, of the keys (in entity order), or with several
 * the results (9 bytes per feature, in entity order and per row).  About
 * 100 bytes per row for one group on one value column: memory grows with
 * the number of rows.  XXX: a table too large for the backend's memory
 * fails with "out of memory" rather than spilling to disk.  The result
 * set goes to the function's tuplestore, which spills beyond work_mem.
 *
 * Permissions and locking: as the query "SELECT t FROM source t" would:
 * SELECT on the table (or on every column), AccessShareLock on the source
 * and its children, rows visible to the caller's snapshot.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/relation.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/pg_cast.h"
#include "catalog/pg_inherits.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "parser/parse_coerce.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/fmgroids.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"
#include "utils/sortsupport.h"
#include "utils/tuplestore.h"
#include "utils/typcache.h"

#include "fraudstream.h"
#include "featuredefs.h"
#include "featurejson.h"

/* An entity of one group, numbered in order of first appearance. */
typedef struct EntityEntry
{
	FsEntityKey key;
	uint32		id;
	char		status;
} EntityEntry;

#define SH_PREFIX		entmap
#define SH_ELEMENT_TYPE EntityEntry
#define SH_KEY_TYPE		FsEntityKey
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	((k).hash)
#define SH_EQUAL(tb, a, b)	(memcmp(&(a), &(b), sizeof(FsEntityKey)) == 0)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* Entity number of a row that is no event of the group (NULL entity or time). */
#define NO_ENTITY		PG_UINT32_MAX

/* Most rows one replay holds: row numbers are uint32. */
#define MAX_ROWS		((int64) PG_UINT32_MAX - 1)

/* How a key value becomes text, as key_column::text does. */
typedef enum KeyCast
{
	KEY_CAST_FUNCTION,			/* a cast function */
	KEY_CAST_BINARY,			/* binary-compatible with text */
	KEY_CAST_OUTPUT,			/* the type's output function */
	KEY_CAST_INT2,				/* the same for integers, without the call */
	KEY_CAST_INT4,
	KEY_CAST_INT8
} KeyCast;

/* The output form. */
typedef enum BatchForm
{
	FORM_JSONB,
	FORM_VECTOR
} BatchForm;

/* How order values are kept and compared. */
typedef enum OrderKind
{
	ORDER_INT64,				/* integers, dates, timestamps: as int64 */
	ORDER_DATUM					/* anything else: the type's sort support */
} OrderKind;

/* One feature group's side of the replay. */
typedef struct GroupRows
{
	const FsGroupDef *gd;
	int			entity_col;		/* index into the columns read */
	int			time_col;
	int			slot_col[FS_MAX_SLOTS];
	uint32	   *entity;			/* per row: entity number or NO_ENTITY */
	char	   *events;			/* per row: event of gd->event_size bytes */
	entmap_hash *entities;		/* read pass: key -> entity number */
	uint32		nentities;
	FsReplay   *replay;			/* the entity being replayed */
	int		   *pos;			/* per feature: position in the vector */
} GroupRows;

/* One feature of the source, in vector order. */
typedef struct FeatureRef
{
	const char *name;
	FsAgg		agg;
} FeatureRef;

/* Everything one call of feature_history / feature_vectors works with. */
typedef struct Replay
{
	MemoryContext cxt;			/* arrays, tables, copies */
	MemoryContext scratch;		/* reset every few rows */
	Oid			relid;
	FsSourceDef *sd;

	/* the columns read, as attribute numbers of the source */
	int			ncols;
	AttrNumber	cols[2 + 16 * (2 + FS_MAX_SLOTS)];
	int			key_col;
	int			order_col;

	/* key column and its text form (key_column::text) */
	int16		key_typlen;
	bool		key_byval;
	KeyCast		key_cast;
	FmgrInfo	key_fn;
	int			key_fn_nargs;

	/* order column */
	Oid			order_typid;
	OrderKind	order_kind;
	int16		order_typlen;
	bool		order_byval;
	SortSupportData order_ssup;

	/* per row */
	int64		nrows;
	int64		capacity;
	Datum	   *keys;
	bool	   *key_null;
	Datum	   *order;			/* int64 for ORDER_INT64 */
	bool	   *order_null;
	GroupRows  *groups;

	/* copies of by-reference values: a bump allocator */
	char	   *arena;
	Size		arena_left;

	/* every feature, in vector order; results per row, nfeatures each */
	int			nfeatures;
	FeatureRef *features;
	double	   *values;			/* with several groups */
	bool	   *nulls;

	/* output */
	BatchForm	form;
	ReturnSetInfo *rsinfo;
	int64		emitted;

	/* jsonb output */
	FsJsonbTemplate *jsonb;
} Replay;

PG_FUNCTION_INFO_V1(fraudstream_feature_history);
PG_FUNCTION_INFO_V1(fraudstream_feature_vectors);
PG_FUNCTION_INFO_V1(fraudstream_feature_names);

/* Memory for a copy of size bytes, MAXALIGNed, that lives as long as the replay. */
static void *
arena_alloc(Replay *r, Size size)
{
	void	   *p;

	size = MAXALIGN(size);
	if (size > r->arena_left)
	{
		Size		block = Max(size, (Size) 1024 * 1024);

		r->arena = MemoryContextAlloc(r->cxt, block);
		r->arena_left = block;
	}
	p = r->arena;
	r->arena += size;
	r->arena_left -= size;
	return p;
}

/* A copy of a value that outlives the scan's buffer. */
static Datum
copy_value(Replay *r, Datum value, bool byval, int16 typlen)
{
	Size		size;
	void	   *copy;

	if (byval)
		return value;
	if (typlen == -1)
		value = PointerGetDatum(PG_DETOAST_DATUM_PACKED(value));
	size = datumGetSize(value, false, typlen);
	copy = arena_alloc(r, size);
	memcpy(copy, DatumGetPointer(value), size);
	return PointerGetDatum(copy);
}

/* Index of a source column among the columns read, added if new. */
static int
column_index(Replay *r, AttrNumber attnum)
{
	for (int i = 0; i < r->ncols; i++)
		if (r->cols[i] == attnum)
			return i;
	Assert(r->ncols < lengthof(r->cols));
	r->cols[r->ncols] = attnum;
	return r->ncols++;
}

/* Attribute number of a column named by the caller; user columns only. */
static AttrNumber
user_column(Relation rel, const char *name)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	if (attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						name, RelationGetRelationName(rel))));
	if (attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("system column \"%s\" cannot be a key or order column", name),
				 errhint("Use a column of the table.")));
	return attnum;
}

/*
 * The caller must be able to read the whole table, as with "SELECT t FROM
 * source t": SELECT on the table, or on each of its columns.
 */
static void
check_select(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);

	if (pg_class_aclcheck(relid, GetUserId(), ACL_SELECT) != ACLCHECK_OK &&
		pg_attribute_aclcheck_all(relid, GetUserId(), ACL_SELECT, ACLMASK_ALL) != ACLCHECK_OK)
		aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, RelationGetRelationName(rel));
}

/* How to turn a key value into text, as key_column::text does. */
static void
prepare_key(Replay *r, Form_pg_attribute att)
{
	Oid			funcid = InvalidOid;
	Oid			outfunc;
	bool		varlena;

	r->key_typlen = att->attlen;
	r->key_byval = att->attbyval;
	switch (find_coercion_pathway(TEXTOID, att->atttypid, COERCION_EXPLICIT, &funcid))
	{
		case COERCION_PATH_FUNC:
			r->key_cast = KEY_CAST_FUNCTION;
			fmgr_info_cxt(funcid, &r->key_fn, r->cxt);
			r->key_fn_nargs = get_func_nargs(funcid);
			break;
		case COERCION_PATH_RELABELTYPE:
			r->key_cast = KEY_CAST_BINARY;
			break;
		default:
			getTypeOutputInfo(att->atttypid, &outfunc, &varlena);
			fmgr_info_cxt(outfunc, &r->key_fn, r->cxt);
			r->key_cast = outfunc == F_INT2OUT ? KEY_CAST_INT2
				: outfunc == F_INT4OUT ? KEY_CAST_INT4
				: outfunc == F_INT8OUT ? KEY_CAST_INT8
				: KEY_CAST_OUTPUT;
			break;
	}
}

static Datum
key_text(Replay *r, Datum value)
{
	char		buf[MAXINT8LEN + 1];

	switch (r->key_cast)
	{
		case KEY_CAST_FUNCTION:
			if (r->key_fn_nargs == 1)
				return FunctionCall1(&r->key_fn, value);
			return FunctionCall3(&r->key_fn, value, Int32GetDatum(-1), BoolGetDatum(true));
		case KEY_CAST_BINARY:
			return value;
		case KEY_CAST_OUTPUT:
			break;
		case KEY_CAST_INT2:
			return PointerGetDatum(cstring_to_text_with_len(buf, pg_ltoa(DatumGetInt16(value), buf)));
		case KEY_CAST_INT4:
			return PointerGetDatum(cstring_to_text_with_len(buf, pg_ltoa(DatumGetInt32(value), buf)));
		case KEY_CAST_INT8:
			return PointerGetDatum(cstring_to_text_with_len(buf, pg_lltoa(DatumGetInt64(value), buf)));
	}
	return CStringGetTextDatum(OutputFunctionCall(&r->key_fn, value));
}

/* How to compare order values: as int64 where the type allows, else by sort support. */
static void
prepare_order(Replay *r, Form_pg_attribute att)
{
	Oid			typid = getBaseType(att->atttypid);
	TypeCacheEntry *tc;

	r->order_typid = typid;
	r->order_typlen = att->attlen;
	r->order_byval = att->attbyval;
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			r->order_kind = ORDER_INT64;
			return;
		default:
			break;
	}
	r->order_kind = ORDER_DATUM;
	tc = lookup_type_cache(typid, TYPECACHE_LT_OPR);
	if (!OidIsValid(tc->lt_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("order column \"%s\" has a type without an ordering: %s",
						NameStr(att->attname), format_type_be(att->atttypid)),
				 errhint("Use an order column of a type with a default btree operator class, such as a timestamp or an integer.")));
	memset(&r->order_ssup, 0, sizeof(SortSupportData));
	r->order_ssup.ssup_cxt = r->cxt;
	r->order_ssup.ssup_collation = att->attcollation;
	r->order_ssup.ssup_nulls_first = false;
	PrepareSortSupportFromOrderingOp(tc->lt_opr, &r->order_ssup);
}

static int64
order_int64(Oid typid, Datum value)
{
	switch (typid)
	{
		case INT2OID:
			return DatumGetInt16(value);
		case INT4OID:
			return DatumGetInt32(value);
		case DATEOID:
			return DatumGetDateADT(value);
		default:
			return DatumGetInt64(value);
	}
}

/* Make room for at least one more row. */
static void
grow_rows(Replay *r)
{
	int64		cap;

	if (r->nrows < r->capacity)
		return;
	if (r->nrows >= MAX_ROWS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("source \"%s\" has too many rows to replay at once",
						get_rel_name(r->relid)),
				 errdetail("One replay holds at most %lld rows.", (long long) MAX_ROWS),
				 errhint("Replay a copy of part of the rows: a table with the same columns and features.")));
	cap = Min(r->capacity * 2, MAX_ROWS);
#define GROW(ptr, type) \
	(ptr) = (type *) repalloc_huge((ptr), sizeof(type) * cap)
	GROW(r->keys, Datum);
	GROW(r->key_null, bool);
	GROW(r->order, Datum);
	GROW(r->order_null, bool);
	for (int g = 0; g < r->sd->ngroups; g++)
	{
		GroupRows  *gr = &r->groups[g];

		GROW(gr->entity, uint32);
		gr->events = repalloc_huge(gr->events, gr->gd->event_size * cap);
	}
#undef GROW
	r->capacity = cap;
}

/*
 * Read pass, one row: values and isnull are indexed like r->cols.  Keeps
 * the key, the order value and, per group, the event and entity number.
 */
static void
collect_row(Replay *r, const Datum *values, const bool *isnull)
{
	int64		row = r->nrows;

	grow_rows(r);
	r->key_null[row] = isnull[r->key_col];
	r->keys[row] = isnull[r->key_col] ? (Datum) 0
		: copy_value(r, values[r->key_col], r->key_byval, r->key_typlen);
	r->order_null[row] = isnull[r->order_col];
	if (isnull[r->order_col])
		r->order[row] = (Datum) 0;
	else if (r->order_kind == ORDER_INT64)
		r->order[row] = Int64GetDatum(order_int64(r->order_typid, values[r->order_col]));
	else
		r->order[row] = copy_value(r, values[r->order_col], r->order_byval, r->order_typlen);

	for (int g = 0; g < r->sd->ngroups; g++)
	{
		GroupRows  *gr = &r->groups[g];
		const FsGroupDef *gd = gr->gd;
		FsEvent    *ev = FS_EVENT_AT(gr->events, row, gd->event_size);
		FsEntityKey key;
		EntityEntry *entry;
		bool		found;

		if (isnull[gr->entity_col] || isnull[gr->time_col])
		{
			gr->entity[row] = NO_ENTITY;
			continue;
		}
		ev->time = DatumGetTimestampTz(values[gr->time_col]);
		ev->nullmask = 0;
		ev->padding = 0;
		for (int i = 0; i < gd->nslots; i++)
		{
			if (isnull[gr->slot_col[i]])
			{
				ev->nullmask |= (uint32) 1 << i;
				ev->values[i] = 0.0;
			}
			else
				ev->values[i] = FsSlotValue(&gd->slots[i], values[gr->slot_col[i]]);
		}
		FsEntityKeyFromDatum(gd, values[gr->entity_col], &key);
		entry = entmap_insert(gr->entities, key, &found);
		if (!found)
			entry->id = gr->nentities++;
		gr->entity[row] = entry->id;
	}
	r->nrows++;
	if ((r->nrows & 1023) == 0)
	{
		MemoryContextReset(r->scratch);
		CHECK_FOR_INTERRUPTS();
	}
}

/* Read pass through the table AM: one scan per leaf, with the caller's snapshot. */
static void
read_heap(Replay *r, List *leaves)
{
	Datum		values[lengthof(r->cols)];
	bool		isnull[lengthof(r->cols)];
	ListCell   *lc;

	foreach(lc, leaves)
	{
		Relation	leaf = table_open(lfirst_oid(lc), NoLock);
		AttrNumber	map[lengthof(r->cols)];
		AttrNumber	natts = 0;
		TupleTableSlot *slot;
		TableScanDesc scan;
		MemoryContext old;

		/* a child may number its columns differently */
		for (int c = 0; c < r->ncols; c++)
		{
			map[c] = RelationGetRelid(leaf) == r->relid ? r->cols[c]
				: get_attnum(RelationGetRelid(leaf),
							 get_attname(r->relid, r->cols[c], false));
			natts = Max(natts, map[c]);
		}
		slot = table_slot_create(leaf, NULL);
		scan = table_beginscan(leaf, GetActiveSnapshot(), 0, NULL);
		old = MemoryContextSwitchTo(r->scratch);
		while (table_scan_getnextslot(scan, ForwardScanDirection, slot))
		{
			slot_getsomeattrs(slot, natts);
			for (int c = 0; c < r->ncols; c++)
			{
				values[c] = slot->tts_values[map[c] - 1];
				isnull[c] = slot->tts_isnull[map[c] - 1];
			}
			collect_row(r, values, isnull);
		}
		MemoryContextSwitchTo(old);
		table_endscan(scan);
		ExecDropSingleTupleTableSlot(slot);
		table_close(leaf, NoLock);
	}
}

/* Read pass through SPI, so that row-level security and foreign tables apply. */
static void
read_spi(Replay *r, Relation rel)
{
	StringInfoData sql;
	Portal		portal;
	Datum		values[lengthof(r->cols)];
	bool		isnull[lengthof(r->cols)];

	initStringInfo(&sql);
	appendStringInfoString(&sql, "SELECT ");
	for (int c = 0; c < r->ncols; c++)
		appendStringInfo(&sql, "%st.%s", c > 0 ? ", " : "",
						 quote_identifier(get_attname(r->relid, r->cols[c], false)));
	appendStringInfo(&sql, " FROM %s t",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	SPI_connect();
	portal = SPI_cursor_open_with_args(NULL, sql.data, 0, NULL, NULL, NULL, true,
									   CURSOR_OPT_NO_SCROLL);
	for (;;)
	{
		SPI_cursor_fetch(portal, true, 1000);
		if (SPI_processed == 0)
			break;
		for (uint64 i = 0; i < SPI_processed; i++)
		{
			MemoryContext old = MemoryContextSwitchTo(r->scratch);

			heap_deform_tuple(SPI_tuptable->vals[i], SPI_tuptable->tupdesc, values, isnull);
			collect_row(r, values, isnull);
			MemoryContextSwitchTo(old);
		}
		SPI_freetuptable(SPI_tuptable);
	}
	SPI_cursor_close(portal);
	SPI_finish();
}

/*
 * Read every row of the source and its children.  The table AM path needs
 * plain tables and no row-level security; anything else goes through SPI.
 */
static void
read_rows(Replay *r, Relation rel)
{
	List	   *all = find_all_inheritors(r->relid, AccessShareLock, NULL);
	List	   *leaves = NIL;
	bool		direct = check_enable_rls(r->relid, InvalidOid, false) != RLS_ENABLED;
	ListCell   *lc;

	foreach(lc, all)
	{
		char		relkind = get_rel_relkind(lfirst_oid(lc));

		if (relkind == RELKIND_RELATION || relkind == RELKIND_MATVIEW)
			leaves = lappend_oid(leaves, lfirst_oid(lc));
		else if (relkind != RELKIND_PARTITIONED_TABLE)
			direct = false;
	}
	if (direct)
		read_heap(r, leaves);
	else
		read_spi(r, rel);
}

/* Arrival order of two rows: order value, NULLs last, then scan order. */
static int
compare_rows(const void *a, const void *b, void *arg)
{
	Replay	   *r = arg;
	uint32		ra = *(const uint32 *) a;
	uint32		rb = *(const uint32 *) b;

	if (r->order_null[ra] != r->order_null[rb])
		return r->order_null[ra] ? 1 : -1;
	if (!r->order_null[ra])
	{
		int			c;

		if (r->order_kind == ORDER_INT64)
			c = (DatumGetInt64(r->order[ra]) > DatumGetInt64(r->order[rb])) -
				(DatumGetInt64(r->order[ra]) < DatumGetInt64(r->order[rb]));
		else
			c = ApplySortComparator(r->order[ra], false, r->order[rb], false,
									&r->order_ssup);
		if (c != 0)
			return c;
	}
	return (ra > rb) - (ra < rb);
}

/*
 * Put each entity's rows (perm[end[e - 1] .. end[e]), in scan order) in
 * arrival order: sort those that are not, by compare_rows.
 */
static void
sort_entities(Replay *r, uint32 *perm, const uint32 *end, uint32 nentities)
{
	uint32		first = 0;

	for (uint32 e = 0; e < nentities; e++)
	{
		for (uint32 i = first + 1; i < end[e]; i++)
		{
			if (compare_rows(&perm[i - 1], &perm[i], r) > 0)
			{
				qsort_arg(perm + first, end[e] - first, sizeof(uint32), compare_rows, r);
				break;
			}
		}
		first = end[e];
	}
}

/*
 * The same when the order column is the events' time: the order values
 * are read from the events, already copied in perm's order (sequentially,
 * not at random from the rows).  Returns false if it sorted any entity:
 * the events must then be copied again.
 */
static bool
sort_entities_by_time(Replay *r, uint32 *perm, const uint32 *end, uint32 nentities,
					  const char *events, Size size)
{
	uint32		first = 0;
	bool		sorted = true;

	for (uint32 e = 0; e < nentities; e++)
	{
		for (uint32 i = first + 1; i < end[e]; i++)
		{
			if (FS_EVENT_AT(events, i - 1, size)->time > FS_EVENT_AT(events, i, size)->time)
			{
				qsort_arg(perm + first, end[e] - first, sizeof(uint32), compare_rows, r);
				sorted = false;
				break;
			}
		}
		first = end[e];
	}
	return sorted;
}

/*
 * A row's features as float8[], NULL where the jsonb form has null (NULL,
 * NaN, infinities); built directly, as construct_md_array would.
 */
static Datum
features_vector(Replay *r, const double *values, const bool *nulls)
{
	int			n = r->nfeatures;
	int			nnull = 0;
	Size		overhead;
	ArrayType  *a;
	double	   *data;
	bits8	   *bitmap;

	for (int i = 0; i < n; i++)
		if (nulls[i] || isnan(values[i]) || isinf(values[i]))
			nnull++;
	overhead = nnull ? (Size) ARR_OVERHEAD_WITHNULLS(1, n) : (Size) ARR_OVERHEAD_NONULLS(1);
	a = palloc0(overhead + sizeof(double) * (n - nnull));
	SET_VARSIZE(a, overhead + sizeof(double) * (n - nnull));
	a->ndim = 1;
	a->dataoffset = nnull ? overhead : 0;
	a->elemtype = FLOAT8OID;
	ARR_DIMS(a)[0] = n;
	ARR_LBOUND(a)[0] = 1;
	data = (double *) ((char *) a + overhead);
	bitmap = ARR_NULLBITMAP(a);
	for (int i = 0; i < n; i++)
	{
		if (nnull && (nulls[i] || isnan(values[i]) || isinf(values[i])))
			continue;
		*data++ = values[i];
		if (bitmap)
			bitmap[i / 8] |= 1 << (i % 8);
	}
	return PointerGetDatum(a);
}

/*
 * Emit one result row: the key as text, the features in the chosen form.
 * Allocations go to the scratch context, reset every few rows.
 */
static void
emit_row(Replay *r, Datum key, bool key_null, const double *values, const bool *nulls)
{
	Datum		out[2];
	bool		out_null[2] = {key_null, false};
	MemoryContext old = MemoryContextSwitchTo(r->scratch);

	out[0] = key_null ? (Datum) 0 : key_text(r, key);
	out[1] = r->form == FORM_JSONB
		? JsonbPGetDatum(FsJsonbFromFeatures(r->jsonb, values, nulls))
		: features_vector(r, values, nulls);
	tuplestore_putvalues(r->rsinfo->setResult, r->rsinfo->setDesc, out, out_null);
	MemoryContextSwitchTo(old);
	if ((++r->emitted & 255) == 0)
	{
		MemoryContextReset(r->scratch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Replay one group, entity after entity.  A counting sort by entity number
 * lays out each entity's rows in scan order; an entity whose rows are not
 * in arrival order gets them sorted.  The events (and, with one group, the
 * keys) are copied into that order, and replayed in sequence by one
 * FsReplay.  With one group, each row is emitted as soon as it is computed
 * (entity after entity, then the rows that are no event of the group);
 * with several, the features go to their rows' results, emitted in scan
 * order by emit_rows.  Every copy to or from row order is a tight loop of
 * its own: visiting rows at random costs a cache miss each, and a tight
 * loop lets the CPU overlap them.
 */
static void
replay_group(Replay *r, GroupRows *gr)
{
	const FsGroupDef *gd = gr->gd;
	Size		size = gd->event_size;
	int			nf = gd->nfeatures;
	bool		direct = r->sd->ngroups == 1;
	bool		by_time = r->cols[r->order_col] == gd->time_attnum;
	uint32	   *end = MemoryContextAllocHuge(r->cxt, sizeof(uint32) * ((Size) gr->nentities + 1));
	uint32	   *perm;
	uint32		nevents;
	char	   *events;
	Datum	   *keys = NULL;
	bool	   *key_null = NULL;
	double	   *values;
	bool	   *nulls;
	uint32		first = 0;

	/* counting sort: perm holds each entity's rows, entity after entity */
	memset(end, 0, sizeof(uint32) * ((Size) gr->nentities + 1));
	for (int64 row = 0; row < r->nrows; row++)
		if (gr->entity[row] != NO_ENTITY)
			end[gr->entity[row] + 1]++;
	for (uint32 e = 0; e < gr->nentities; e++)
		end[e + 1] += end[e];
	nevents = end[gr->nentities];
	perm = MemoryContextAllocHuge(r->cxt, sizeof(uint32) * Max(nevents, 1));
	for (int64 row = 0; row < r->nrows; row++)
		if (gr->entity[row] != NO_ENTITY)
			perm[end[gr->entity[row]]++] = (uint32) row;
	/* end[e] is now where e's rows end */
	entmap_destroy(gr->entities);
	gr->entities = NULL;

	/* arrival order within each entity, read from the events if it is their time */
	events = MemoryContextAllocHuge(r->cxt, size * Max(nevents, 1));
	if (!by_time)
		sort_entities(r, perm, end, gr->nentities);
	for (uint32 i = 0; i < nevents; i++)
		memcpy(events + i * size, gr->events + (Size) perm[i] * size, size);
	if (by_time && !sort_entities_by_time(r, perm, end, gr->nentities, events, size))
	{
		for (uint32 i = 0; i < nevents; i++)
			memcpy(events + i * size, gr->events + (Size) perm[i] * size, size);
	}
	if (direct)
	{
		keys = MemoryContextAllocHuge(r->cxt, sizeof(Datum) * Max(nevents, 1));
		key_null = MemoryContextAllocHuge(r->cxt, sizeof(bool) * Max(nevents, 1));
		for (uint32 i = 0; i < nevents; i++)
		{
			keys[i] = r->keys[perm[i]];
			key_null[i] = r->key_null[perm[i]];
		}
		values = palloc(sizeof(double) * nf);
		nulls = palloc(sizeof(bool) * nf);
	}
	else
	{
		values = MemoryContextAllocHuge(r->cxt, sizeof(double) * nf * Max(nevents, 1));
		nulls = MemoryContextAllocHuge(r->cxt, sizeof(bool) * nf * Max(nevents, 1));
	}

	/* replay */
	gr->replay = FsReplayCreate(r->cxt, gd->specs, nf, size, gd->retain);
	first = 0;
	for (uint32 e = 0; e < gr->nentities; e++)
	{
		FsReplayReset(gr->replay);
		for (uint32 i = first; i < end[e]; i++)
		{
			const FsEvent *ev = FS_EVENT_AT(events, i, size);
			double	   *v = direct ? values : values + (Size) i * nf;
			bool	   *n = direct ? nulls : nulls + (Size) i * nf;

			if (FsEventIsLate(ev->time, FsReplayLatest(gr->replay)))
				memset(n, true, nf);	/* late: no features, not counted */
			else
			{
				FsReplayCompute(gr->replay, ev, v, n);
				FsReplayAppend(gr->replay, ev);
			}
			if (direct)
				emit_row(r, keys[i], key_null[i], values, nulls);
		}
		first = end[e];
		if ((e & 255) == 0)
			CHECK_FOR_INTERRUPTS();
	}
	pfree(events);
	pfree(gr->events);
	gr->events = NULL;

	if (direct)
	{
		/* the rows that are no event: no features */
		memset(nulls, true, nf);
		for (int64 row = 0; row < r->nrows; row++)
			if (gr->entity[row] == NO_ENTITY)
				emit_row(r, r->keys[row], r->key_null[row], values, nulls);
		pfree(keys);
		pfree(key_null);
	}
	else
	{
		for (uint32 i = 0; i < nevents; i++)
		{
			double	   *row_values = r->values + (Size) perm[i] * r->nfeatures;
			bool	   *row_nulls = r->nulls + (Size) perm[i] * r->nfeatures;

			for (int f = 0; f < nf; f++)
			{
				row_values[gr->pos[f]] = values[(Size) i * nf + f];
				row_nulls[gr->pos[f]] = nulls[(Size) i * nf + f];
			}
		}
	}
	pfree(values);
	pfree(nulls);
	pfree(perm);
	pfree(end);
}

static int
compare_features(const void *a, const void *b)
{
	return strcmp(((const FeatureRef *) a)->name, ((const FeatureRef *) b)->name);
}

/*
 * Every feature of the source in vector order: by name, bytewise.  With
 * pos, also each group's feature -> position map.
 */
static FeatureRef *
source_features(const FsSourceDef *sd, int *nfeatures, GroupRows *groups)
{
	FeatureRef *features;
	int			n = 0;

	for (int g = 0; g < sd->ngroups; g++)
		n += sd->groups[g].nfeatures;
	features = palloc(sizeof(FeatureRef) * n);
	n = 0;
	for (int g = 0; g < sd->ngroups; g++)
		for (int f = 0; f < sd->groups[g].nfeatures; f++)
		{
			features[n].name = sd->groups[g].names[f];
			features[n].agg = sd->groups[g].specs[f].agg;
			n++;
		}
	qsort(features, n, sizeof(FeatureRef), compare_features);
	if (groups)
	{
		for (int g = 0; g < sd->ngroups; g++)
		{
			groups[g].pos = palloc(sizeof(int) * sd->groups[g].nfeatures);
			for (int f = 0; f < sd->groups[g].nfeatures; f++)
			{
				FeatureRef	probe = {.name = sd->groups[g].names[f]};
				FeatureRef *found = bsearch(&probe, features, n, sizeof(FeatureRef),
											compare_features);

				groups[g].pos[f] = (int) (found - features);
			}
		}
	}
	*nfeatures = n;
	return features;
}

/* The definitions of a source, or an error if it has no features. */
static FsSourceDef *
source_def(Oid relid)
{
	FsSourceDef *sd = FsGetSourceDef(relid);

	if (sd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no features are defined on \"%s\"", get_rel_name(relid)),
				 errhint("Define them with fraudstream.create_feature().")));
	return sd;
}

/* With several groups: one result row per source row, in scan order. */
static void
emit_rows(Replay *r)
{
	for (int64 row = 0; row < r->nrows; row++)
		emit_row(r, r->keys[row], r->key_null[row],
				 r->values + (Size) row * r->nfeatures, r->nulls + (Size) row * r->nfeatures);
}

/* The jsonb template of the source's features. */
static void
prepare_jsonb(Replay *r)
{
	const char **names = palloc(sizeof(char *) * r->nfeatures);
	bool	   *integer = palloc(sizeof(bool) * r->nfeatures);

	for (int i = 0; i < r->nfeatures; i++)
	{
		names[i] = r->features[i].name;
		integer[i] = FsAggIsInteger(r->features[i].agg);
	}
	r->jsonb = FsJsonbTemplateCreate(r->nfeatures, names, integer);
}

/* Set up a replay: columns to read, key and order handling, per-row arrays. */
static void
prepare_replay(Replay *r, Relation rel, const char *key_column, const char *order_column)
{
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	key_attnum = user_column(rel, key_column);
	AttrNumber	order_attnum = order_column ? user_column(rel, order_column)
		: r->sd->groups[0].time_attnum;
	float4		reltuples = rel->rd_rel->reltuples;

	r->key_col = column_index(r, key_attnum);
	r->order_col = column_index(r, order_attnum);
	prepare_key(r, TupleDescAttr(desc, key_attnum - 1));
	prepare_order(r, TupleDescAttr(desc, order_attnum - 1));

	r->capacity = reltuples > 0 ? Min((int64) (reltuples * 1.05) + 1024, MAX_ROWS) : 1024;
	r->keys = MemoryContextAllocHuge(r->cxt, sizeof(Datum) * r->capacity);
	r->key_null = MemoryContextAllocHuge(r->cxt, sizeof(bool) * r->capacity);
	r->order = MemoryContextAllocHuge(r->cxt, sizeof(Datum) * r->capacity);
	r->order_null = MemoryContextAllocHuge(r->cxt, sizeof(bool) * r->capacity);
	r->groups = palloc0(sizeof(GroupRows) * r->sd->ngroups);
	r->features = source_features(r->sd, &r->nfeatures, r->groups);
	for (int g = 0; g < r->sd->ngroups; g++)
	{
		GroupRows  *gr = &r->groups[g];
		const FsGroupDef *gd = &r->sd->groups[g];

		gr->gd = gd;
		gr->entity_col = column_index(r, gd->entity_attnum);
		gr->time_col = column_index(r, gd->time_attnum);
		for (int i = 0; i < gd->nslots; i++)
			gr->slot_col[i] = column_index(r, gd->slots[i].attnum);
		gr->entity = MemoryContextAllocHuge(r->cxt, sizeof(uint32) * r->capacity);
		gr->events = MemoryContextAllocHuge(r->cxt, gd->event_size * r->capacity);
		gr->entities = entmap_create(r->cxt, 1024, NULL);
	}
}

/* feature_history and feature_vectors: read, replay, emit. */
static Datum
replay_source(FunctionCallInfo fcinfo, BatchForm form)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Replay		r = {0};
	Relation	rel;
	MemoryContext old;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("source and key_column must not be NULL")));
	r.relid = PG_GETARG_OID(0);
	r.sd = source_def(r.relid);
	rel = table_open(r.relid, AccessShareLock);
	check_select(rel);

	InitMaterializedSRF(fcinfo, 0);
	r.cxt = AllocSetContextCreate(CurrentMemoryContext, "fraudstream replay",
								  ALLOCSET_DEFAULT_SIZES);
	r.scratch = AllocSetContextCreate(r.cxt, "fraudstream replay row",
									  ALLOCSET_DEFAULT_SIZES);
	old = MemoryContextSwitchTo(r.cxt);
	prepare_replay(&r, rel, text_to_cstring(PG_GETARG_TEXT_PP(1)),
				   PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2)));

	read_rows(&r, rel);

	r.form = form;
	r.rsinfo = rsinfo;
	if (form == FORM_JSONB)
		prepare_jsonb(&r);
	if (r.sd->ngroups > 1)
	{
		r.values = MemoryContextAllocHuge(r.cxt, sizeof(double) * r.nfeatures * Max(r.nrows, 1));
		r.nulls = MemoryContextAllocHuge(r.cxt, sizeof(bool) * r.nfeatures * Max(r.nrows, 1));
		memset(r.nulls, true, sizeof(bool) * r.nfeatures * r.nrows);
	}
	for (int g = 0; g < r.sd->ngroups; g++)
		replay_group(&r, &r.groups[g]);
	if (r.sd->ngroups > 1)
		emit_rows(&r);

	MemoryContextSwitchTo(old);
	MemoryContextDelete(r.cxt);
	table_close(rel, NoLock);	/* the lock is kept until the end of the transaction */
	return (Datum) 0;
}

/*
 * fraudstream.feature_history(source regclass, key_column text,
 *		order_column text DEFAULT NULL) returns (key text, features jsonb).
 */
Datum
fraudstream_feature_history(PG_FUNCTION_ARGS)
{
	return replay_source(fcinfo, FORM_JSONB);
}

/*
 * fraudstream.feature_vectors(source regclass, key_column text,
 *		order_column text DEFAULT NULL) returns (key text, features float8[]):
 * the same values, in the order of feature_names(source).
 */
Datum
fraudstream_feature_vectors(PG_FUNCTION_ARGS)
{
	return replay_source(fcinfo, FORM_VECTOR);
}

/*
 * fraudstream.feature_names(source regclass) returns text[]: the names of
 * the source's features in the order of feature_vectors' arrays.
 */
Datum
fraudstream_feature_names(PG_FUNCTION_ARGS)
{
	FsSourceDef *sd = source_def(PG_GETARG_OID(0));
	int			n;
	FeatureRef *features = source_features(sd, &n, NULL);
	Datum	   *names = palloc(sizeof(Datum) * n);

	for (int i = 0; i < n; i++)
		names[i] = CStringGetTextDatum(features[i].name);
	PG_RETURN_ARRAYTYPE_P(construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT));
}
