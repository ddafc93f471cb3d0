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
 * Design.  A replay is three passes over compact records, not a sorted
 * query:
 *
 *	1. Read: one scan of the source (every leaf of a partitioned or
 *	   inherited table) with the caller's snapshot, deforming only the
 *	   columns the features read, plus the key and order columns.  For
 *	   each feature group, a row becomes a record: its event (FsEvent),
 *	   its key value, row number and a dense entity number from a hash
 *	   table keyed by the entity's full binary key (FsEntityKey), so two
 *	   entities whose hashes collide are never merged.  The record is
 *	   appended to one of PARTITIONS partitions by entity number: the
 *	   partitions' ends are few enough to stay in cache, so the scan
 *	   writes records without cache misses.  Key and order values are
 *	   kept per row only where needed: the keys with several groups (rows
 *	   are then emitted in scan order), the order values when the order
 *	   column is not the events' time.
 *	2. Replay, group by group and partition by partition: a counting sort
 *	   by entity copies the partition's records in entity order, each
 *	   entity's in scan order; a partition is small enough for that copy
 *	   to stay in cache, and only one partition's copy exists at a time.
 *	   An entity whose records are not already in arrival order is sorted
 *	   by (order value, row number), NULL order values last, as ORDER BY
 *	   would put them.  Then its events are replayed against its history
 *	   as the online path keeps it (non-late events, pruned to the group's
 *	   retention) by one FsReplay (window.c): the online state's running
 *	   summaries, amortised O(1) per event and the online values bit for
 *	   bit.  With several groups, each event's features go to its row's
 *	   results.  Only one entity's history is live at a time.
 *	3. Emit: one row per source row, with its key as key_column::text and
 *	   its features as jsonb (feature_history, built in binary form by
 *	   featurejson.c) or as a float8[] in the order of feature_names()
 *	   (feature_vectors).  With one group, rows are emitted as the replay
 *	   computes them, entity after entity (the rows that are no event of
 *	   the group last); with several, in scan order once every group is
 *	   done.  An integer key's text, the float8[] and the row's minimal
 *	   tuple (form_row) are written to buffers reused from row to row;
 *	   the tuplestore takes a copy of the tuple.
 *
 * The function is called in FROM, where the executor materializes any
 * set-returning function's result: rows go to the function's tuplestore
 * (SFRM_Materialize), which spills to disk beyond work_mem.
 *
 * Row-level security, or a leaf that is not a plain table (a foreign
 * partition), make the read pass go through SPI instead ("SELECT columns
 * FROM source", so policies apply); the rest is the same.
 *
 * Memory: per row and group, a record of its event (16 bytes + 8 per
 * value column) and 16 bytes of trailer, in blocks that grow to
 * BLOCK_MAX_RECORDS records; a by-reference key is copied once per row.
 * With several groups, 9 bytes per row for its key and 9 per feature for
 * its results; with an order column that is not the events' time, 9 per
 * row for its value (plus a copy if by reference).  A group's replay adds
 * one partition's records in entity order.  About 45 bytes per row for
 * one group on one value column: memory grows with the number of rows.
 * XXX: a table too large for the backend's memory fails with "out of
 * memory" rather than spilling to disk.
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

/*
 * The read pass appends each event of a group to one of PARTITIONS
 * partitions, by its entity number: a partition is a chain of blocks in
 * scan order, each holding records of GroupRows.stride bytes: the event
 * (FsEvent, of the group's event_size), then an EventTrailer.  Each block
 * of a chain holds twice as many records as the one before, up to
 * BLOCK_MAX_RECORDS.
 */
typedef struct EventBlock
{
	struct EventBlock *next;
	uint32		count;
} EventBlock;

#define BLOCK_RECORDS(b)	((char *) (b) + MAXALIGN(sizeof(EventBlock)))
#define BLOCK_FIRST_RECORDS	16
#define BLOCK_MAX_RECORDS	1024

/* What a record keeps after its event: whose event it is. */
typedef struct EventTrailer
{
	Datum		key;			/* the row's key value */
	uint32		row;			/* row number, in scan order */
	uint32		entity;			/* entity number within the partition,
								 * and KEY_NULL */
} EventTrailer;

#define KEY_NULL			((uint32) 1 << 31)

#define RECORD_AT(base, i, stride)	((char *) (base) + (Size) (i) * (stride))
#define RECORD_TRAILER(rec, gr) \
	((EventTrailer *) ((char *) (rec) + MAXALIGN((gr)->gd->event_size)))

/*
 * Partitions of a group's events.  Entity e goes to partition
 * e % PARTITIONS as its entity e / PARTITIONS: few enough partitions that
 * the read pass writes each at its end without cache misses, enough that
 * each is small enough to be put in entity order in cache.
 */
#define PARTITIONS_LOG2		8
#define PARTITIONS			(1 << PARTITIONS_LOG2)

typedef struct Partition
{
	EventBlock *head;
	EventBlock *tail;
	uint32		used;			/* records in the tail block */
	uint32		capacity;		/* and its capacity; 0 before the first */
	uint32		count;			/* records in all blocks */
} Partition;

/*
 * The read pass looks entities up STAGED_ROWS rows at a time: each row's
 * hash table bucket is prefetched when the row is read, and looked up
 * when the batch is full, so that the lookups' cache misses overlap.
 */
#define STAGED_ROWS			16

#if defined(__GNUC__) || defined(__clang__)
#define PREFETCH(address)	__builtin_prefetch(address)
#else
#define PREFETCH(address)	((void) 0)
#endif

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
	bool		by_time;		/* the order column is the events' time */
	Size		stride;			/* bytes of a record: event and trailer */
	entmap_hash *entities;		/* read pass: key -> entity number */
	uint32		nentities;
	Partition	parts[PARTITIONS];
	/* the read pass's last rows, before they go to their partitions */
	int			nstaged;
	FsEntityKey staged_key[STAGED_ROWS];
	char	   *staged;			/* STAGED_ROWS records */
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

	/*
	 * Per row, in scan order: the keys with several groups (rows are
	 * emitted in scan order), the order values when some group's events
	 * are not ordered by their time.
	 */
	int64		nrows;
	int64		capacity;
	bool		row_keys;
	bool		row_order;
	Datum	   *keys;
	bool	   *key_null;
	Datum	   *order;			/* int64 for ORDER_INT64 */
	bool	   *order_null;
	GroupRows  *groups;

	/* with one group: the keys of the rows that are no event of it */
	int64		nloose;
	int64		loose_capacity;
	Datum	   *loose_keys;
	bool	   *loose_null;

	/* blocks and copies of by-reference values: a bump allocator */
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
	text	   *key_buf;		/* an integer key's text, rewritten per row */
	ArrayType  *vector_buf;		/* a row's float8[], rewritten per row */
	char	   *row_buf;		/* a row's tuple, rewritten per row */
	Size		row_size;
	TupleTableSlot *row_slot;	/* holds it for the tuplestore */

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

/*
 * A key value as text.  An integer's text is written to r->key_buf, valid
 * until the next call; other forms are allocated in the current context.
 */
static Datum
key_text(Replay *r, Datum value)
{
	char	   *digits = VARDATA(r->key_buf);

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
			SET_VARSIZE(r->key_buf, VARHDRSZ + pg_ltoa(DatumGetInt16(value), digits));
			return PointerGetDatum(r->key_buf);
		case KEY_CAST_INT4:
			SET_VARSIZE(r->key_buf, VARHDRSZ + pg_ltoa(DatumGetInt32(value), digits));
			return PointerGetDatum(r->key_buf);
		case KEY_CAST_INT8:
			SET_VARSIZE(r->key_buf, VARHDRSZ + pg_lltoa(DatumGetInt64(value), digits));
			return PointerGetDatum(r->key_buf);
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

/* Make room for at least one more row in the per-row arrays kept. */
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
	if (r->row_keys)
	{
		GROW(r->keys, Datum);
		GROW(r->key_null, bool);
	}
	if (r->row_order)
	{
		GROW(r->order, Datum);
		GROW(r->order_null, bool);
	}
#undef GROW
	r->capacity = cap;
}

/* With one group: keep the key of a row that is no event of it. */
static void
add_loose_row(Replay *r, Datum key, bool key_null)
{
	if (r->nloose == r->loose_capacity)
	{
		r->loose_capacity = r->loose_capacity ? r->loose_capacity * 2 : 64;
		r->loose_keys = r->loose_keys
			? repalloc_huge(r->loose_keys, sizeof(Datum) * r->loose_capacity)
			: MemoryContextAllocHuge(r->cxt, sizeof(Datum) * r->loose_capacity);
		r->loose_null = r->loose_null
			? repalloc_huge(r->loose_null, sizeof(bool) * r->loose_capacity)
			: MemoryContextAllocHuge(r->cxt, sizeof(bool) * r->loose_capacity);
	}
	r->loose_keys[r->nloose] = key;
	r->loose_null[r->nloose] = key_null;
	r->nloose++;
}

/* Room for one more record at the end of a partition. */
static char *
append_record(Replay *r, GroupRows *gr, Partition *part)
{
	if (part->used == part->capacity)
	{
		uint32		cap = part->capacity == 0 ? BLOCK_FIRST_RECORDS
			: Min(part->capacity * 2, BLOCK_MAX_RECORDS);
		EventBlock *added = arena_alloc(r, MAXALIGN(sizeof(EventBlock)) + cap * gr->stride);

		added->next = NULL;
		added->count = 0;
		if (part->tail)
		{
			part->tail->count = part->used;
			part->tail->next = added;
		}
		else
			part->head = added;
		part->tail = added;
		part->used = 0;
		part->capacity = cap;
	}
	part->count++;
	return RECORD_AT(BLOCK_RECORDS(part->tail), part->used++, gr->stride);
}

/* The number of an entity, new ones numbered in order of first appearance. */
static uint32
entity_number(GroupRows *gr, const FsEntityKey *key)
{
	bool		found;
	EntityEntry *entry = entmap_insert(gr->entities, *key, &found);

	if (!found)
		entry->id = gr->nentities++;
	return entry->id;
}

/* Number the staged rows' entities and move them to their partitions. */
static void
flush_staged(Replay *r, GroupRows *gr)
{
	for (int i = 0; i < gr->nstaged; i++)
	{
		uint32		id = entity_number(gr, &gr->staged_key[i]);
		char	   *rec = append_record(r, gr, &gr->parts[id % PARTITIONS]);

		memcpy(rec, RECORD_AT(gr->staged, i, gr->stride), gr->stride);
		RECORD_TRAILER(rec, gr)->entity |= id / PARTITIONS;
	}
	gr->nstaged = 0;
}

/*
 * Read pass, one row: values and isnull are indexed like r->cols.  Appends
 * the row's event to its entity's chain in each group; keeps its key and
 * order value per row where they are needed.
 */
static void
collect_row(Replay *r, const Datum *values, const bool *isnull)
{
	int64		row = r->nrows;
	bool		key_null = isnull[r->key_col];
	Datum		key = key_null ? (Datum) 0
		: copy_value(r, values[r->key_col], r->key_byval, r->key_typlen);

	grow_rows(r);
	if (r->row_keys)
	{
		r->key_null[row] = key_null;
		r->keys[row] = key;
	}
	if (r->row_order)
	{
		r->order_null[row] = isnull[r->order_col];
		if (isnull[r->order_col])
			r->order[row] = (Datum) 0;
		else if (r->order_kind == ORDER_INT64)
			r->order[row] = Int64GetDatum(order_int64(r->order_typid, values[r->order_col]));
		else
			r->order[row] = copy_value(r, values[r->order_col], r->order_byval, r->order_typlen);
	}

	for (int g = 0; g < r->sd->ngroups; g++)
	{
		GroupRows  *gr = &r->groups[g];
		const FsGroupDef *gd = gr->gd;
		FsEntityKey *entity;
		FsEvent    *ev;
		EventTrailer *trailer;

		if (isnull[gr->entity_col] || isnull[gr->time_col])
		{
			if (!r->row_keys)
				add_loose_row(r, key, key_null);
			continue;
		}
		entity = &gr->staged_key[gr->nstaged];
		FsEntityKeyFromDatum(gd, values[gr->entity_col], entity);
		PREFETCH(&gr->entities->data[entity->hash & gr->entities->sizemask]);
		ev = (FsEvent *) RECORD_AT(gr->staged, gr->nstaged, gr->stride);
		ev->time = DatumGetTimestampTz(values[gr->time_col]);
		ev->nullmask = 0;
		ev->subxact = 0;
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
		trailer = RECORD_TRAILER(ev, gr);
		trailer->key = key;
		trailer->row = (uint32) row;
		trailer->entity = key_null ? KEY_NULL : 0;	/* and its number, once known */
		if (++gr->nstaged == STAGED_ROWS)
			flush_staged(r, gr);
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
	for (int g = 0; g < r->sd->ngroups; g++)
		flush_staged(r, &r->groups[g]);
}

/* Arrival order of two rows: order value, NULLs last, then scan order. */
static int
compare_rows(Replay *r, uint32 ra, uint32 rb)
{
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

/* A group's records and the replay they belong to, for compare_records. */
typedef struct RecordSort
{
	Replay	   *r;
	const GroupRows *gr;
} RecordSort;

/*
 * Arrival order of two records of a group: by the events' time when that
 * is the order column (no NULLs then), else by compare_rows.
 */
static int
compare_records(const void *a, const void *b, void *arg)
{
	const RecordSort *sort = arg;
	uint32		ra = RECORD_TRAILER(a, sort->gr)->row;
	uint32		rb = RECORD_TRAILER(b, sort->gr)->row;

	if (sort->gr->by_time)
	{
		TimestampTz ta = ((const FsEvent *) a)->time;
		TimestampTz tb = ((const FsEvent *) b)->time;

		if (ta != tb)
			return ta < tb ? -1 : 1;
		return (ra > rb) - (ra < rb);
	}
	return compare_rows(sort->r, ra, rb);
}

/*
 * Put an entity's records (in scan order) in arrival order, unless they
 * already are.
 */
static void
sort_entity(Replay *r, GroupRows *gr, char *records, uint32 count)
{
	RecordSort	sort = {r, gr};

	for (uint32 i = 1; i < count; i++)
	{
		const char *prev = RECORD_AT(records, i - 1, gr->stride);
		const char *next = RECORD_AT(records, i, gr->stride);

		/* by time, records of equal times are in scan order already */
		if (gr->by_time
			? ((const FsEvent *) prev)->time > ((const FsEvent *) next)->time
			: compare_records(prev, next, &sort) > 0)
		{
			qsort_arg(records, count, gr->stride, compare_records, &sort);
			return;
		}
	}
}

/*
 * A row's features as float8[], NULL where the jsonb form has null (NULL,
 * NaN, infinities); built in r->vector_buf, as construct_md_array would
 * build it.
 */
static Datum
features_vector(Replay *r, const double *values, const bool *nulls)
{
	int			n = r->nfeatures;
	int			nnull = 0;
	Size		overhead;
	ArrayType  *a = r->vector_buf;
	double	   *data;
	bits8	   *bitmap;

	for (int i = 0; i < n; i++)
		if (nulls[i] || isnan(values[i]) || isinf(values[i]))
			nnull++;
	overhead = nnull ? (Size) ARR_OVERHEAD_WITHNULLS(1, n) : (Size) ARR_OVERHEAD_NONULLS(1);
	memset(a, 0, overhead);
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
 * A result row (key, features) as a minimal tuple in r->row_buf, laid out
 * as heap_form_minimal_tuple lays out two varlena columns (heaptuple.c's
 * fill_val): a value that fits a 1-byte header gets one, unaligned; a
 * longer one keeps its 4-byte header, at its type's alignment; padding is
 * zero.  Built in place, it spares the generic sizing pass, the zeroed
 * allocation and the per-column fill of every row.
 */
static MinimalTuple
form_row(Replay *r, Datum key, bool key_null, Datum features)
{
	TupleDesc	desc = r->rsinfo->setDesc;
	Datum		values[2] = {key, features};
	bool		nulls[2] = {key_null, false};
	Size		hoff = MAXALIGN(SizeofMinimalTupleHeader + (key_null ? BITMAPLEN(2) : 0));
	Size		len = hoff;
	MinimalTuple tuple;

	for (int i = 0; i < 2; i++)
	{
		if (!nulls[i])
		{
			values[i] = PointerGetDatum(PG_DETOAST_DATUM_PACKED(values[i]));
			len += VARSIZE_ANY(DatumGetPointer(values[i])) + MAXIMUM_ALIGNOF;
		}
	}
	if (len > r->row_size)
	{
		r->row_size = Max(len, r->row_size * 2);
		r->row_buf = repalloc(r->row_buf, r->row_size);
	}
	tuple = (MinimalTuple) r->row_buf;
	memset(tuple, 0, hoff);
	len = hoff;
	for (int i = 0; i < 2; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		char	   *val = DatumGetPointer(values[i]);
		char	   *data;
		Size		size;

		if (nulls[i])
			continue;
		if (VARATT_IS_SHORT(val))
		{
			size = VARSIZE_SHORT(val);
			memcpy((char *) tuple + len, val, size);
		}
		else if (att->attstorage != TYPSTORAGE_PLAIN && VARATT_CAN_MAKE_SHORT(val))
		{
			size = VARATT_CONVERTED_SHORT_SIZE(val);
			data = (char *) tuple + len;
			SET_VARSIZE_SHORT(data, size);
			memcpy(data + 1, VARDATA(val), size - 1);
		}
		else
		{
			Size		aligned = att_align_nominal(len, att->attalign);

			memset((char *) tuple + len, 0, aligned - len);
			len = aligned;
			size = VARSIZE(val);
			memcpy((char *) tuple + len, val, size);
		}
		len += size;
		if (key_null)
			tuple->t_bits[0] |= 1 << i;	/* the bitmap of non-NULL columns */
	}
	tuple->t_len = len;
	HeapTupleHeaderSetNatts(tuple, 2);
	tuple->t_infomask = HEAP_HASVARWIDTH | (key_null ? HEAP_HASNULL : 0);
	tuple->t_hoff = hoff + MINIMAL_TUPLE_OFFSET;
	return tuple;
}

/*
 * Emit one result row: the key as text, the features in the chosen form.
 * Allocations go to the scratch context, reset every few rows.
 */
static void
emit_row(Replay *r, Datum key, bool key_null, const double *values, const bool *nulls)
{
	Datum		features;
	MemoryContext old = MemoryContextSwitchTo(r->scratch);

	features = r->form == FORM_JSONB
		? JsonbPGetDatum(FsJsonbFromFeatures(r->jsonb, values, nulls))
		: features_vector(r, values, nulls);
	ExecStoreMinimalTuple(form_row(r, key_null ? (Datum) 0 : key_text(r, key), key_null,
								   features),
						  r->row_slot, false);
	tuplestore_puttupleslot(r->rsinfo->setResult, r->row_slot);
	MemoryContextSwitchTo(old);
	if ((++r->emitted & 255) == 0)
	{
		MemoryContextReset(r->scratch);
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Replay the records of one entity, in arrival order.  With one group,
 * each row is emitted as soon as it is computed; with several, its
 * features go to its row's results.
 */
static void
replay_entity(Replay *r, GroupRows *gr, const char *records, uint32 count)
{
	int			nf = gr->gd->nfeatures;
	double		values[FS_MAX_SPECS];
	bool		nulls[FS_MAX_SPECS];

	Assert(nf <= FS_MAX_SPECS);
	FsReplayReset(gr->replay);
	for (uint32 i = 0; i < count; i++)
	{
		const FsEvent *ev = (const FsEvent *) RECORD_AT(records, i, gr->stride);
		const EventTrailer *trailer = RECORD_TRAILER(ev, gr);

		if (FsEventIsLate(ev->time, FsReplayLatest(gr->replay)))
		{
			/* late: no features, not counted */
			memset(values, 0, sizeof(double) * nf);
			memset(nulls, true, nf);
		}
		else
		{
			FsReplayCompute(gr->replay, ev, values, nulls);
			FsReplayAppend(gr->replay, ev);
		}
		if (r->row_keys)
		{
			double	   *row_values = r->values + (Size) trailer->row * r->nfeatures;
			bool	   *row_nulls = r->nulls + (Size) trailer->row * r->nfeatures;

			for (int f = 0; f < nf; f++)
			{
				row_values[gr->pos[f]] = values[f];
				row_nulls[gr->pos[f]] = nulls[f];
			}
		}
		else
			emit_row(r, trailer->key, (trailer->entity & KEY_NULL) != 0, values, nulls);
	}
}

/*
 * Replay one group, partition after partition.  A partition's records are
 * copied to "sorted" in entity order by a counting sort (ends: one counter
 * per entity of the partition, plus one), which keeps each entity's in
 * scan order; an entity's records are sorted further if they did not
 * arrive in order, then replayed by one FsReplay.  With one group, the
 * rows that are no event of it are emitted last, without features.
 */
static void
replay_group(Replay *r, GroupRows *gr)
{
	const FsGroupDef *gd = gr->gd;
	uint32		most = 0;
	uint32	   *ends;
	char	   *sorted;

	entmap_destroy(gr->entities);
	gr->entities = NULL;
	for (int p = 0; p < PARTITIONS; p++)
	{
		if (gr->parts[p].tail)
			gr->parts[p].tail->count = gr->parts[p].used;
		most = Max(most, gr->parts[p].count);
	}
	ends = palloc(sizeof(uint32) * (gr->nentities / PARTITIONS + 2));
	sorted = MemoryContextAllocHuge(r->cxt, Max((Size) most * gr->stride, 1));
	gr->replay = FsReplayCreate(r->cxt, gd->specs, gd->nfeatures, gd->event_size,
								gd->retain);

	for (uint32 p = 0; p < PARTITIONS; p++)
	{
		uint32		nlocal = p < gr->nentities ? (gr->nentities - p - 1) / PARTITIONS + 1 : 0;
		uint32		first = 0;

		/* counting sort by entity: ends[e + 1] counts e's records, ... */
		memset(ends, 0, sizeof(uint32) * (nlocal + 1));
		for (EventBlock *block = gr->parts[p].head; block; block = block->next)
			for (uint32 i = 0; i < block->count; i++)
			{
				const char *rec = RECORD_AT(BLOCK_RECORDS(block), i, gr->stride);

				ends[(RECORD_TRAILER(rec, gr)->entity & ~KEY_NULL) + 1]++;
			}
		for (uint32 e = 0; e < nlocal; e++)
			ends[e + 1] += ends[e];
		/* ... then ends[e] where e's records start, moved on to where they end */
		for (EventBlock *block = gr->parts[p].head; block; block = block->next)
			for (uint32 i = 0; i < block->count; i++)
			{
				const char *rec = RECORD_AT(BLOCK_RECORDS(block), i, gr->stride);
				uint32		e = RECORD_TRAILER(rec, gr)->entity & ~KEY_NULL;

				memcpy(RECORD_AT(sorted, ends[e]++, gr->stride), rec, gr->stride);
			}

		for (uint32 e = 0; e < nlocal; e++)
		{
			char	   *records = RECORD_AT(sorted, first, gr->stride);

			sort_entity(r, gr, records, ends[e] - first);
			replay_entity(r, gr, records, ends[e] - first);
			first = ends[e];
			if ((e & 255) == 0)
				CHECK_FOR_INTERRUPTS();
		}
	}
	pfree(sorted);
	pfree(ends);

	if (!r->row_keys)
	{
		double		values[FS_MAX_SPECS] = {0};
		bool		nulls[FS_MAX_SPECS];

		memset(nulls, true, sizeof(nulls));
		for (int64 i = 0; i < r->nloose; i++)
			emit_row(r, r->loose_keys[i], r->loose_null[i], values, nulls);
	}
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

	r->groups = palloc0(sizeof(GroupRows) * r->sd->ngroups);
	r->features = source_features(r->sd, &r->nfeatures, r->groups);
	r->row_keys = r->sd->ngroups > 1;
	for (int g = 0; g < r->sd->ngroups; g++)
	{
		GroupRows  *gr = &r->groups[g];
		const FsGroupDef *gd = &r->sd->groups[g];

		gr->gd = gd;
		gr->entity_col = column_index(r, gd->entity_attnum);
		gr->time_col = column_index(r, gd->time_attnum);
		for (int i = 0; i < gd->nslots; i++)
			gr->slot_col[i] = column_index(r, gd->slots[i].attnum);
		gr->by_time = gr->time_col == r->order_col;
		if (!gr->by_time)
			r->row_order = true;
		gr->stride = MAXALIGN(gd->event_size) + MAXALIGN(sizeof(EventTrailer));
		gr->entities = entmap_create(r->cxt, 1024, NULL);
		gr->staged = palloc(STAGED_ROWS * gr->stride);
	}

	r->capacity = reltuples > 0 ? Min((int64) (reltuples * 1.05) + 1024, MAX_ROWS) : 1024;
	if (r->row_keys)
	{
		r->keys = MemoryContextAllocHuge(r->cxt, sizeof(Datum) * r->capacity);
		r->key_null = MemoryContextAllocHuge(r->cxt, sizeof(bool) * r->capacity);
	}
	if (r->row_order)
	{
		r->order = MemoryContextAllocHuge(r->cxt, sizeof(Datum) * r->capacity);
		r->order_null = MemoryContextAllocHuge(r->cxt, sizeof(bool) * r->capacity);
	}
	r->key_buf = palloc(VARHDRSZ + MAXINT8LEN + 1);
	r->vector_buf = palloc(ARR_OVERHEAD_WITHNULLS(1, r->nfeatures) + sizeof(double) * r->nfeatures);
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
	if (rsinfo->setDesc->natts != 2 ||
		TupleDescAttr(rsinfo->setDesc, 0)->attlen != -1 ||
		TupleDescAttr(rsinfo->setDesc, 1)->attlen != -1)
		elog(ERROR, "unexpected result type of a batch function");
	r.row_size = 1024;
	r.row_buf = palloc(r.row_size);
	r.row_slot = MakeSingleTupleTableSlot(rsinfo->setDesc, &TTSOpsMinimalTuple);
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

	ExecDropSingleTupleTableSlot(r.row_slot);
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
