/*-------------------------------------------------------------------------
 *
 * features.c
 *		Feature definitions: the SQL functions that create and drop them,
 *		the backend's cache of them, and the extraction of entity keys and
 *		events from rows.
 *
 * Definitions live in the table fraudstream.feature_definitions.  Every
 * backend caches all of them, grouped by (source table, entity column):
 * one FsGroupDef per group, with the value slots its events carry and the
 * FsWindowSpec of each feature.  The cache is rebuilt when the shared
 * catalog generation moves (bumped when a transaction that changed the
 * definitions commits) and while the current transaction has changed
 * them itself, so a session sees its own uncommitted definitions.  It is
 * also rebuilt after a relcache invalidation of a source, since it holds
 * the source's column numbers and types, and every rebuild checks each
 * feature's columns again (check_loaded_feature): ALTER TABLE may have
 * dropped, renamed or retyped one.  An event trigger at the end of every
 * ALTER TABLE of a source rebuilds it at once, so that a change the
 * features cannot follow fails the ALTER itself, and marks the
 * definitions changed, so that every backend rebuilds at commit.
 *
 * A group's layout (its value slots and the types of its columns) is a
 * hash of what the slots hold.
 * When definitions change the layout, the shared state of the group is
 * reset and rebuilt from the table by the first committed reader with the
 * new definitions (see FsGroupLookup); until then, definitions that do not
 * match the shared layout use only the session's own events.
 *
 * Entity keys are compared in binary form, so entity columns are limited
 * to types whose equal values have one binary form (integers, text,
 * varchar, uuid, inet, bytea).
 *
 * Locking: the cache is backend-local.  The catalog is read with SPI in
 * read-write mode, so that a fresh snapshot sees the definitions this
 * transaction just wrote; writers take ShareRowExclusiveLock on it, so that
 * two sessions cannot both create the same feature name.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "commands/event_trigger.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "fraudstream.h"
#include "featuredefs.h"
#include "featurejson.h"
#include "scoring.h"

int			FsMaxLatenessMs = 300000;

/* The cache: every definition, by source table. */
typedef struct SourceEntry
{
	Oid			relid;
	FsSourceDef *def;
} SourceEntry;

static MemoryContext cache_cxt = NULL;
static HTAB *source_cache = NULL;
static uint64 cache_generation = 0;
static bool cache_stale = true;
static uint64 cache_version = 0;	/* counts reloads, see FsFeatureCacheVersion */

/* Set when this transaction changed the definitions; see FsCatalogChanged. */
static bool catalog_changed_in_xact = false;

/* Groups this transaction left without features, freed at commit. */
#define MAX_GROUPS_TO_FREE	32
static struct
{
	Oid			relid;
	AttrNumber	attnum;
}			groups_to_free[MAX_GROUPS_TO_FREE];
static int	n_groups_to_free = 0;

PG_FUNCTION_INFO_V1(fraudstream_create_feature);
PG_FUNCTION_INFO_V1(fraudstream_drop_feature);
PG_FUNCTION_INFO_V1(fraudstream_feature_group_stats);
PG_FUNCTION_INFO_V1(fraudstream_check_altered_sources);

/*
 * A source table changed (ALTER TABLE, or anything else that invalidates
 * its relcache entry): the definitions, which hold its columns' numbers
 * and types, are loaded again, and checked (check_loaded_feature), before
 * they are next used.
 */
static void
features_relcache_callback(Datum arg, Oid relid)
{
	if (source_cache == NULL || cache_stale)
		return;
	if (relid == InvalidOid || hash_search(source_cache, &relid, HASH_FIND, NULL) != NULL)
		cache_stale = true;
}

/*
 * At commit of a transaction that changed the definitions, tell every
 * backend to reload them and free the groups it left without features; at
 * any end, drop this backend's view of the uncommitted definitions.
 */
static void
features_xact_callback(XactEvent event, void *arg)
{
	if (!catalog_changed_in_xact)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			for (int i = 0; i < n_groups_to_free; i++)
			{
				int			group;

				/* attnum 0 (a dropped table): every group of the table */
				while ((group = FsGroupFind(groups_to_free[i].relid,
											groups_to_free[i].attnum)) >= 0)
					FsGroupClear(group, true);
			}
			FsBumpCatalogGeneration();
			/* FALLTHROUGH */
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			catalog_changed_in_xact = false;
			n_groups_to_free = 0;
			cache_stale = true;
			break;
		default:
			break;
	}
}

/* Define fraudstream.max_lateness and hook transaction ends; from _PG_init. */
void
FsFeaturesInit(void)
{
	DefineCustomIntVariable("fraudstream.max_lateness",
							"How far behind an entity's newest event a new event may be and still count.",
							"Older events are counted as late in fraudstream.features and ignored.",
							&FsMaxLatenessMs, 300000, 0, INT_MAX,
							PGC_SIGHUP, GUC_UNIT_MS, NULL, NULL, NULL);
	RegisterXactCallback(features_xact_callback, NULL);
	CacheRegisterRelcacheCallback(features_relcache_callback, (Datum) 0);
}

/*
 * Record that this transaction changed the definitions: the cache reloads
 * now, and every backend's at commit.
 */
void
FsCatalogChanged(void)
{
	catalog_changed_in_xact = true;
	cache_stale = true;
}

/* The types entity_type_ok and number_type_ok accept, for messages. */
#define ENTITY_TYPE_NAMES	"smallint, integer, bigint, text, varchar, uuid, inet or bytea"
#define NUMBER_TYPE_NAMES	"smallint, integer, bigint, real, double precision or numeric"

/* Whether an entity column of this type can key the online state. */
static bool
entity_type_ok(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case TEXTOID:
		case VARCHAROID:
		case UUIDOID:
		case INETOID:
		case BYTEAOID:
			return true;
		default:
			return false;
	}
}

/* Whether values of this type convert to float8 for numeric aggregations. */
static bool
number_type_ok(Oid typid)
{
	switch (typid)
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case FLOAT4OID:
		case FLOAT8OID:
		case NUMERICOID:
			return true;
		default:
			return false;
	}
}

/* Whether values of this type hash for "distinct". */
static bool
type_has_extended_hash(Oid typid)
{
	return OidIsValid(lookup_type_cache(typid, TYPECACHE_HASH_EXTENDED_PROC)->hash_extended_proc);
}

static double
number_to_float8(Oid typid, Datum value)
{
	switch (typid)
	{
		case INT2OID:
			return (double) DatumGetInt16(value);
		case INT4OID:
			return (double) DatumGetInt32(value);
		case INT8OID:
			return (double) DatumGetInt64(value);
		case FLOAT4OID:
			return (double) DatumGetFloat4(value);
		case FLOAT8OID:
			return DatumGetFloat8(value);
		case NUMERICOID:
			return DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow, value));
	}
	elog(ERROR, "unexpected type %u for a numeric feature", typid);
	return 0.0;					/* keep compiler quiet */
}

/*
 * The binary key of an entity value.  Values longer than FS_KEY_INLINE
 * bytes are kept as a 128-bit hash (flagged in len), which makes two
 * distinct long keys collide with odds 2^-128.
 */
bool
FsEntityKeyFromDatum(const FsGroupDef *gd, Datum value, FsEntityKey *key)
{
	const char *data;
	Size		len;
	char		byval[sizeof(Datum)];

	memset(key, 0, sizeof(*key));
	key->group = (uint16) gd->group;
	if (gd->entity_typbyval)
	{
		store_att_byval(byval, value, gd->entity_typlen);
		data = byval;
		len = gd->entity_typlen;
	}
	else if (gd->entity_typlen > 0)
	{
		data = DatumGetPointer(value);
		len = gd->entity_typlen;
	}
	else
	{
		struct varlena *v = PG_DETOAST_DATUM_PACKED(value);

		data = VARDATA_ANY(v);
		len = VARSIZE_ANY_EXHDR(v);
	}

	if (len <= FS_KEY_INLINE)
	{
		memcpy(key->data, data, len);
		key->len = (uint16) len;
	}
	else
	{
		uint64		h[2];

		h[0] = hash_bytes_extended((const unsigned char *) data, (int) len, 0);
		h[1] = hash_bytes_extended((const unsigned char *) data, (int) len,
								   UINT64CONST(0x9e3779b97f4a7c15));
		memcpy(key->data, h, sizeof(h));
		key->len = (uint16) (sizeof(h) | FS_KEY_HASHED);
	}
	key->hash = hash_bytes((const unsigned char *) key->data, (int) FS_KEY_BYTES(key)) ^
		(uint32) (gd->group * 0x9e3779b9U);
	return true;
}

/* Point a HeapTupleData at a composite datum's tuple, to read it as a row. */
void
FsTupleFromComposite(HeapTupleHeader row, Oid relid, HeapTuple tuple)
{
	tuple->t_len = HeapTupleHeaderGetDatumLength(row);
	ItemPointerSetInvalid(&tuple->t_self);
	tuple->t_tableOid = relid;
	tuple->t_data = row;
}

/* Room for the columns of rows of tupdesc, in the current context. */
void
FsRowInit(FsRow *row, TupleDesc tupdesc)
{
	row->natts = tupdesc->natts;
	row->values = palloc(sizeof(Datum) * Max(row->natts, 1));
	row->isnull = palloc(sizeof(bool) * Max(row->natts, 1));
}

/* Deform a row of tupdesc (FsRowInit'ed for it); values point into tuple. */
void
FsRowDeform(FsRow *row, TupleDesc tupdesc, HeapTuple tuple)
{
	Assert(row->natts == tupdesc->natts);
	heap_deform_tuple(tuple, tupdesc, row->values, row->isnull);
}

void
FsRowFree(FsRow *row)
{
	pfree(row->values);
	pfree(row->isnull);
}

/*
 * Read the event of a deformed row for a group: its time, values and
 * entity key.  Returns false when the row is no event of the group (NULL
 * entity or time).
 */
bool
FsEventFromRow(const FsGroupDef *gd, const FsRow *row, FsEvent *event,
			   FsEntityKey *key)
{
	int			e = gd->entity_attnum - 1;
	int			t = gd->time_attnum - 1;

	if (row->isnull[e] || row->isnull[t])
		return false;
	event->time = DatumGetTimestampTz(row->values[t]);
	event->nullmask = 0;
	event->subxact = 0;
	for (int i = 0; i < gd->nslots; i++)
	{
		const FsSlotDef *sd = &gd->slots[i];
		Datum		value = row->values[sd->attnum - 1];
		bool		isnull = row->isnull[sd->attnum - 1];

		if (isnull)
		{
			event->nullmask |= (uint32) 1 << i;
			event->values[i] = 0.0;
		}
		else
			event->values[i] = FsSlotValue(sd, value);
	}
	return FsEntityKeyFromDatum(gd, row->values[e], key);
}

/*
 * What an event stores in a value slot for a non-NULL column value: the
 * number as float8, or for "distinct" the value's 64-bit hash bit for bit.
 */
double
FsSlotValue(const FsSlotDef *sd, Datum value)
{
	uint64		h;
	double		result;

	if (sd->kind == FS_SLOT_NUMBER)
		return number_to_float8(sd->typid, value);
	h = DatumGetUInt64(FunctionCall2Coll((FmgrInfo *) &sd->hash_fn, sd->collation,
										 value, Int64GetDatum(0)));
	memcpy(&result, &h, sizeof(result));
	return result;
}

/* The slot of (attnum, kind) in a group, added if new. */
static int
group_slot_for(FsGroupDef *gd, Relation rel, AttrNumber attnum, FsSlotKind kind)
{
	FsSlotDef  *sd;
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), attnum - 1);

	for (int i = 0; i < gd->nslots; i++)
		if (gd->slots[i].attnum == attnum && gd->slots[i].kind == kind)
			return i;
	if (gd->nslots >= FS_MAX_SLOTS ||
		FS_EVENT_SIZE(gd->nslots + 1) > FS_MAX_EVENT_SIZE)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("features on entity column \"%s\" of \"%s\" read too many value columns",
						gd->entity_column, RelationGetRelationName(rel)),
				 errdetail("The features of one source table and entity column can read at most 12 values per event.")));
	sd = &gd->slots[gd->nslots];
	sd->attnum = attnum;
	sd->kind = kind;
	sd->typid = att->atttypid;
	sd->collation = att->attcollation;
	if (kind == FS_SLOT_HASH)
	{
		TypeCacheEntry *tc = lookup_type_cache(att->atttypid,
											   TYPECACHE_HASH_EXTENDED_PROC_FINFO);

		fmgr_info_copy(&sd->hash_fn, &tc->hash_extended_proc_finfo, cache_cxt);
	}
	return gd->nslots++;
}

/* The type of an existing feature's column, which ALTER TABLE may have dropped or renamed. */
static Oid
loaded_column_type(Relation rel, const char *feature, const char *column, const char *role)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), column);

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("feature \"%s\" reads column \"%s\" of \"%s\", which no longer exists",
						feature, column, RelationGetRelationName(rel)),
				 errdetail("It is the feature's %s.", role),
				 errhint("Drop the feature (fraudstream.drop_feature) before dropping or renaming the column, and create it again after.")));
	return TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
}

static void
loaded_type_error(Relation rel, const char *feature, const char *column, Oid typid,
				  const char *needs)
{
	ereport(ERROR,
			(errcode(ERRCODE_DATATYPE_MISMATCH),
			 errmsg("feature \"%s\" cannot read column \"%s\" of \"%s\" as type %s",
					feature, column, RelationGetRelationName(rel), format_type_be(typid)),
			 errdetail("%s", needs),
			 errhint("Drop the feature (fraudstream.drop_feature) before changing the column to this type.")));
}

/*
 * An existing feature's columns, checked again whenever the definitions
 * are loaded, with the rules create_feature applied: ALTER TABLE may have
 * dropped, renamed or retyped one since.  The event trigger on ALTER TABLE
 * (fraudstream_check_altered_sources) loads them at the end of the
 * command, so that this error undoes an ALTER the features cannot follow;
 * any later load fails the same way rather than read a column as a type
 * it no longer is.
 */
static void
check_loaded_feature(Relation rel, const char *feature, FsAgg agg,
					 const char *entity_column, const char *time_column,
					 const char *value_column, const char *lat_column,
					 const char *lon_column)
{
	const char *value_columns[][2] = {
		{value_column, "value column"},
		{lat_column, "latitude column"},
		{lon_column, "longitude column"},
	};
	Oid			typid;

	typid = loaded_column_type(rel, feature, entity_column, "entity column");
	if (!entity_type_ok(typid))
		loaded_type_error(rel, feature, entity_column, typid,
						  "An entity column is of type " ENTITY_TYPE_NAMES ".");
	typid = loaded_column_type(rel, feature, time_column, "time column");
	if (typid != TIMESTAMPTZOID)
		loaded_type_error(rel, feature, time_column, typid,
						  "The time column is of type timestamp with time zone.");
	for (int i = 0; i < (int) lengthof(value_columns); i++)
	{
		const char *column = value_columns[i][0];

		if (column == NULL)
			continue;
		typid = loaded_column_type(rel, feature, column, value_columns[i][1]);
		if (agg == FS_AGG_DISTINCT ? !type_has_extended_hash(typid) : !number_type_ok(typid))
			loaded_type_error(rel, feature, column, typid,
							  agg == FS_AGG_DISTINCT ? "The type of a column counted distinct has a hash function." :
							  "A numeric aggregation reads " NUMBER_TYPE_NAMES ".");
	}
}

/* Find a group of a source by entity column, adding it if new. */
static FsGroupDef *
source_group_for(FsSourceDef *sd, Relation rel, const char *entity_column,
				 const char *time_column, int max_groups)
{
	FsGroupDef *gd;
	TupleDesc	desc = RelationGetDescr(rel);
	AttrNumber	attnum = get_attnum(sd->relid, entity_column);
	AttrNumber	time_attnum = get_attnum(sd->relid, time_column);
	Form_pg_attribute att;

	for (int i = 0; i < sd->ngroups; i++)
		if (strcmp(sd->groups[i].entity_column, entity_column) == 0)
			return &sd->groups[i];
	if (attnum == InvalidAttrNumber || time_attnum == InvalidAttrNumber)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("feature column of \"%s\" no longer exists",
						RelationGetRelationName(rel)),
				 errhint("Drop the features of the renamed or dropped column and create them again.")));
	Assert(sd->ngroups < max_groups);
	gd = &sd->groups[sd->ngroups++];
	memset(gd, 0, sizeof(*gd));
	att = TupleDescAttr(desc, attnum - 1);
	gd->entity_attnum = attnum;
	gd->entity_column = MemoryContextStrdup(cache_cxt, entity_column);
	gd->entity_typid = att->atttypid;
	gd->entity_typlen = att->attlen;
	gd->entity_typbyval = att->attbyval;
	gd->time_attnum = time_attnum;
	gd->names = MemoryContextAllocZero(cache_cxt, sizeof(char *) * FS_MAX_SPECS);
	gd->specs = MemoryContextAllocZero(cache_cxt, sizeof(FsWindowSpec) * FS_MAX_SPECS);
	return gd;
}

/* An interval without months as microseconds; a day counts 24 hours. */
static int64
interval_usecs(const Interval *iv)
{
	return iv->time + (int64) iv->day * USECS_PER_DAY +
		(int64) iv->month * DAYS_PER_MONTH * USECS_PER_DAY;
}

/* Hash what a group's events hold, so that two definitions can be compared. */
static uint32
group_layout(const FsGroupDef *gd)
{
	uint32		h = hash_bytes_uint32((uint32) gd->time_attnum);

	/* a retyped entity or value column gives other keys or values */
	h = hash_combine(h, hash_bytes_uint32((uint32) gd->entity_typid));
	for (int i = 0; i < gd->nslots; i++)
	{
		h = hash_combine(h, hash_bytes_uint32(((uint32) gd->slots[i].attnum << 4) |
											  (uint32) gd->slots[i].kind));
		h = hash_combine(h, hash_bytes_uint32((uint32) gd->slots[i].typid));
	}
	return h == 0 ? 1 : h;
}

/*
 * Rebuild the cache from the catalog.  Each group gets its shared slot;
 * definitions only this transaction sees may not reset shared state.
 */
static void
load_definitions(void)
{
	HASHCTL		ctl;
	uint64		generation = FsCatalogGeneration();
	int			ret;

	if (cache_cxt == NULL)
		cache_cxt = AllocSetContextCreate(CacheMemoryContext,
										  "fraudstream feature definitions",
										  ALLOCSET_SMALL_SIZES);
	MemoryContextReset(cache_cxt);
	source_cache = NULL;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(SourceEntry);
	ctl.hcxt = cache_cxt;
	source_cache = hash_create("fraudstream feature sources", 16, &ctl,
							   HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);

	SPI_connect();
	ret = SPI_execute("SELECT name, source::pg_catalog.oid, entity_column::text, "
					  "time_column::text, agg, "
					  "window_length, "
					  "value_column::text, lat_column::text, lon_column::text "
					  "FROM fraudstream.feature_definitions "
					  "ORDER BY source, entity_column, name", false, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "could not read fraudstream.feature_definitions: %s",
			 SPI_result_code_string(ret));

	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;
		Oid			relid = DatumGetObjectId(SPI_getbinval(tup, td, 2, &isnull));
		SourceEntry *entry;
		bool		found;
		Relation	rel;
		FsGroupDef *gd;
		FsWindowSpec *spec;
		MemoryContext old;
		char	   *value_column = SPI_getvalue(tup, td, 7);
		char	   *agg_name = SPI_getvalue(tup, td, 5);
		FsAgg		agg;

		rel = try_relation_open(relid, AccessShareLock);
		if (rel == NULL)
			continue;			/* source dropped: definitions are orphans */
		if (!FsAggFromName(agg_name, &agg))
			elog(ERROR, "unknown aggregation \"%s\" in the catalog", agg_name);
		check_loaded_feature(rel, SPI_getvalue(tup, td, 1), agg,
							 SPI_getvalue(tup, td, 3), SPI_getvalue(tup, td, 4),
							 value_column, SPI_getvalue(tup, td, 8),
							 SPI_getvalue(tup, td, 9));

		old = MemoryContextSwitchTo(cache_cxt);
		entry = hash_search(source_cache, &relid, HASH_ENTER, &found);
		if (!found)
		{
			entry->def = palloc0(sizeof(FsSourceDef));
			entry->def->relid = relid;
			entry->def->groups = palloc0(sizeof(FsGroupDef) * 16);
		}
		if (entry->def->ngroups >= 16 &&
			strcmp(entry->def->groups[entry->def->ngroups - 1].entity_column,
				   SPI_getvalue(tup, td, 3)) != 0)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("features of \"%s\" use too many entity columns",
							RelationGetRelationName(rel)),
					 errdetail("A source table can have features on at most 16 entity columns.")));
		gd = source_group_for(entry->def, rel, SPI_getvalue(tup, td, 3),
							  SPI_getvalue(tup, td, 4), 16);
		if (gd->nfeatures >= FS_MAX_SPECS)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("too many features on entity column \"%s\" of \"%s\"",
							gd->entity_column, RelationGetRelationName(rel)),
					 errdetail("An entity column of a source table can have at most %d features.",
							   FS_MAX_SPECS)));
		spec = &gd->specs[gd->nfeatures];
		gd->names[gd->nfeatures] = pstrdup(SPI_getvalue(tup, td, 1));
		spec->agg = agg;
		spec->window = interval_usecs(DatumGetIntervalP(SPI_getbinval(tup, td, 6, &isnull)));
		spec->slot = FS_NO_SLOT;
		spec->slot2 = FS_NO_SLOT;
		if (spec->agg == FS_AGG_GEO_VELOCITY)
		{
			spec->slot = group_slot_for(gd, rel, get_attnum(relid, SPI_getvalue(tup, td, 8)),
										FS_SLOT_NUMBER);
			spec->slot2 = group_slot_for(gd, rel, get_attnum(relid, SPI_getvalue(tup, td, 9)),
										 FS_SLOT_NUMBER);
		}
		else if (value_column != NULL)
			spec->slot = group_slot_for(gd, rel, get_attnum(relid, value_column),
										spec->agg == FS_AGG_DISTINCT ? FS_SLOT_HASH : FS_SLOT_NUMBER);
		gd->nfeatures++;
		MemoryContextSwitchTo(old);
		relation_close(rel, AccessShareLock);
	}
	SPI_finish();

	/* Attach every group to its shared slot. */
	{
		HASH_SEQ_STATUS seq;
		SourceEntry *entry;

		hash_seq_init(&seq, source_cache);
		while ((entry = hash_seq_search(&seq)) != NULL)
		{
			for (int i = 0; i < entry->def->ngroups; i++)
			{
				FsGroupDef *gd = &entry->def->groups[i];
				bool		usable;

				FsWindowSpecsLink(gd->specs, gd->nfeatures);
				FsWindowSetInit(&gd->window_set, gd->specs, gd->nfeatures);
				gd->event_size = FS_EVENT_SIZE(gd->nslots);
				gd->retain = gd->window_set.longest + (int64) FsMaxLatenessMs * 1000;
				gd->layout = group_layout(gd);
				gd->group = FsGroupLookup(entry->relid, gd->entity_attnum, gd->layout,
										  gd->nslots, gd->retain, generation,
										  !catalog_changed_in_xact, &usable);
				if (!usable)
					gd->layout = 0; /* matches no shared layout: local only */
			}
			entry->def->nfeatures = 0;
			entry->def->json_template = NULL;
			for (int i = 0; i < entry->def->ngroups; i++)
				entry->def->nfeatures += entry->def->groups[i].nfeatures;
		}
	}
	cache_generation = generation;
	cache_stale = false;
	cache_version++;
}

static void
ensure_cache(void)
{
	if (cache_stale || source_cache == NULL ||
		cache_generation != FsCatalogGeneration())
		load_definitions();
}

/*
 * A number that changes whenever the cache is reloaded, after which every
 * FsSourceDef and FsGroupDef pointer handed out before is invalid: caches
 * built on top of this one compare it to know when to rebuild.
 */
uint64
FsFeatureCacheVersion(void)
{
	ensure_cache();
	return cache_version;
}

/* The definitions of a source table, or NULL if it has no features. */
FsSourceDef *
FsGetSourceDef(Oid relid)
{
	SourceEntry *entry;

	ensure_cache();
	entry = hash_search(source_cache, &relid, HASH_FIND, NULL);
	return entry ? entry->def : NULL;
}

/*
 * The definitions that apply to rows of rel: its own, or, for a partition,
 * those of the partitioned table it belongs to, with column numbers
 * translated to the partition's (a partition may number its columns
 * differently).  Translated copies are cached under the partition's oid.
 */
FsSourceDef *
FsGetSourceDefForRel(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	FsSourceDef *sd = FsGetSourceDef(relid);
	FsSourceDef *parent = NULL;
	SourceEntry *entry;
	List	   *ancestors;
	ListCell   *lc;
	MemoryContext old;

	if (sd != NULL || !rel->rd_rel->relispartition)
		return sd;

	ancestors = get_partition_ancestors(relid);
	foreach(lc, ancestors)
	{
		parent = FsGetSourceDef(lfirst_oid(lc));
		if (parent != NULL)
			break;
	}
	if (parent == NULL)
		return NULL;

	old = MemoryContextSwitchTo(cache_cxt);
	sd = palloc0(sizeof(FsSourceDef));
	sd->relid = parent->relid;
	sd->ngroups = parent->ngroups;
	sd->nfeatures = parent->nfeatures;
	sd->json_template = NULL;
	sd->groups = palloc(sizeof(FsGroupDef) * parent->ngroups);
	for (int i = 0; i < parent->ngroups; i++)
	{
		FsGroupDef *gd = &sd->groups[i];

		*gd = parent->groups[i];
		gd->entity_attnum = get_attnum(relid, get_attname(parent->relid, gd->entity_attnum, false));
		gd->time_attnum = get_attnum(relid, get_attname(parent->relid, gd->time_attnum, false));
		for (int s = 0; s < gd->nslots; s++)
			gd->slots[s].attnum = get_attnum(relid, get_attname(parent->relid,
																gd->slots[s].attnum, false));
	}
	entry = hash_search(source_cache, &relid, HASH_ENTER, NULL);
	entry->def = sd;
	MemoryContextSwitchTo(old);
	return sd;
}

/*
 * A group's features for JSON: their names, and whether each value is an
 * integer (count, distinct).
 */
void
FsGroupFeatureNames(const FsGroupDef *gd, const char **names, bool *integer)
{
	for (int f = 0; f < gd->nfeatures; f++)
	{
		names[f] = gd->names[f];
		integer[f] = FsAggIsInteger(gd->specs[f].agg);
	}
}

/*
 * The jsonb template of a source's features, group after group, made on
 * first use and cached with the definitions.
 */
FsJsonbTemplate *
FsSourceJsonTemplate(FsSourceDef *sd)
{
	if (sd->json_template == NULL)
	{
		MemoryContext old = MemoryContextSwitchTo(cache_cxt);
		const char **names = palloc(sizeof(char *) * Max(sd->nfeatures, 1));
		bool	   *integer = palloc(sizeof(bool) * Max(sd->nfeatures, 1));

		for (int i = 0, n = 0; i < sd->ngroups; n += sd->groups[i++].nfeatures)
			FsGroupFeatureNames(&sd->groups[i], names + n, integer + n);
		sd->json_template = FsJsonbTemplateCreate(sd->nfeatures, names, integer);
		MemoryContextSwitchTo(old);
	}
	return sd->json_template;
}

/* Every source table's definitions. */
List *
FsAllSourceDefs(void)
{
	HASH_SEQ_STATUS seq;
	SourceEntry *entry;
	List	   *result = NIL;

	ensure_cache();
	hash_seq_init(&seq, source_cache);
	while ((entry = hash_seq_search(&seq)) != NULL)
		if (entry->def->relid == entry->relid)	/* not a partition's copy */
			result = lappend(result, entry->def);
	return result;
}

/* Error for a column a feature names that the source lacks. */
static AttrNumber
feature_column(Relation rel, const char *column, const char *role)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), column);

	if (attnum == InvalidAttrNumber || attnum < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" of relation \"%s\" does not exist",
						column, RelationGetRelationName(rel)),
				 errdetail("It was given as the feature's %s.", role)));
	if (TupleDescAttr(RelationGetDescr(rel), attnum - 1)->attgenerated)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("column \"%s\" of relation \"%s\" is a generated column",
						column, RelationGetRelationName(rel)),
				 errdetail("Features read a row before PostgreSQL computes its generated columns."),
				 errhint("Compute the value in the inserting statement or a BEFORE trigger instead.")));
	return attnum;
}

static Oid
column_type(Relation rel, AttrNumber attnum)
{
	return TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid;
}

/* Check that a value column fits the aggregation. */
static void
check_value_column(Relation rel, const char *column, FsAgg agg, const char *role)
{
	AttrNumber	attnum = feature_column(rel, column, role);
	Oid			typid = column_type(rel, attnum);

	if (agg == FS_AGG_DISTINCT)
	{
		if (!type_has_extended_hash(typid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column \"%s\" of type %s cannot be counted distinct",
							column, format_type_be(typid)),
					 errdetail("The type has no hash function.")));
	}
	else if (!number_type_ok(typid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" of type %s does not fit aggregation \"%s\"",
						column, format_type_be(typid), FsAggName(agg)),
				 errhint("Aggregation \"%s\" needs a numeric column: " NUMBER_TYPE_NAMES ".",
						 FsAggName(agg))));
}

/*
 * The event time column: the one given, else the ring's time column, else
 * the table's only timestamptz column.
 */
static char *
resolve_time_column(Relation rel, text *given)
{
	TupleDesc	desc = RelationGetDescr(rel);
	char	   *column = NULL;
	int			candidates = 0;

	if (given != NULL)
	{
		column = text_to_cstring(given);
		if (column_type(rel, feature_column(rel, column, "time column")) != TIMESTAMPTZOID)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("time column \"%s\" must be of type timestamp with time zone",
							column)));
		return column;
	}
	if (OidIsValid(get_relname_relid("ring_config", get_namespace_oid(FRAUDSTREAM_SCHEMA, false))))
	{
		char		sql[200];
		MemoryContext caller = CurrentMemoryContext;

		snprintf(sql, sizeof(sql),
				 "SELECT time_column::text FROM fraudstream.ring_config WHERE ring = %u",
				 RelationGetRelid(rel));
		SPI_connect();
		if (SPI_execute(sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
			column = MemoryContextStrdup(caller,
										 SPI_getvalue(SPI_tuptable->vals[0],
													  SPI_tuptable->tupdesc, 1));
		SPI_finish();
		if (column)
			return column;
	}
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && att->atttypid == TIMESTAMPTZOID)
		{
			column = NameStr(att->attname);
			candidates++;
		}
	}
	if (candidates != 1)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("cannot tell the event time column of \"%s\"",
						RelationGetRelationName(rel)),
				 errdetail("The table has %d columns of type timestamp with time zone.", candidates),
				 errhint("Name it with time_column => 'column'.")));
	return pstrdup(column);
}

/* Run one SQL command through SPI, for the DDL of create/drop_feature. */
static void
run_sql(const char *sql, int expected)
{
	int			ret = SPI_execute(sql, false, 0);

	if (ret != expected)
		elog(ERROR, "fraudstream: \"%s\" failed: %s", sql, SPI_result_code_string(ret));
}

/* Create the triggers that feed a source's events to the state, once. */
static void
install_feed_triggers(Relation rel)
{
	char	   *qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												   RelationGetRelationName(rel));
	StringInfoData sql;

	initStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = %u "
					 "AND tgname = 'zz_fraudstream_2_feed'", RelationGetRelid(rel));
	run_sql(sql.data, SPI_OK_SELECT);
	if (SPI_processed > 0)
		return;

	/*
	 * "zz_": BEFORE triggers fire in name order, so the feed sees the row as
	 * other triggers left it; "2_": after the scoring trigger (scoring.c).
	 */
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER zz_fraudstream_2_feed BEFORE INSERT ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION fraudstream.feed_trigger()", qname);
	run_sql(sql.data, SPI_OK_UTILITY);
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "CREATE TRIGGER zz_fraudstream_truncate AFTER TRUNCATE ON %s "
					 "FOR EACH STATEMENT EXECUTE FUNCTION fraudstream.truncate_trigger()", qname);
	run_sql(sql.data, SPI_OK_UTILITY);
}

static void
drop_feed_triggers(Oid relid)
{
	char	   *qname;
	StringInfoData sql;
	FsSavedUser saved;

	if (get_rel_name(relid) == NULL)
		return;
	qname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									   get_rel_name(relid));
	initStringInfo(&sql);
	/* DROP TRIGGER is the owner's; the caller may define features on it */
	FsSwitchToRelationOwner(relid, &saved);
	appendStringInfo(&sql, "DROP TRIGGER IF EXISTS zz_fraudstream_2_feed ON %s", qname);
	run_sql(sql.data, SPI_OK_UTILITY);
	resetStringInfo(&sql);
	appendStringInfo(&sql, "DROP TRIGGER IF EXISTS zz_fraudstream_truncate ON %s", qname);
	run_sql(sql.data, SPI_OK_UTILITY);
	FsRestoreUser(&saved);
}

/* The window of a feature in microseconds, validated. */
static int64
window_usecs(Interval *window, Relation rel)
{
	int64		usecs;

	if (window->month != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature window must not be given in months or years"),
				 errhint("Use days, e.g. '30 days'.")));
	usecs = interval_usecs(window);
	if (usecs <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("feature window must be positive")));

	/* A ring keeps only its retention: a longer window would see too little. */
	if (OidIsValid(get_relname_relid("ring_config",
									 get_namespace_oid(FRAUDSTREAM_SCHEMA, false))))
	{
		char		sql[200];
		Interval   *retention = NULL;
		bool		isnull;
		MemoryContext caller = CurrentMemoryContext;

		snprintf(sql, sizeof(sql),
				 "SELECT retention FROM fraudstream.ring_config WHERE ring = %u",
				 RelationGetRelid(rel));
		SPI_connect();
		if (SPI_execute(sql, true, 1) == SPI_OK_SELECT && SPI_processed == 1)
		{
			Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										  1, &isnull);

			retention = MemoryContextAlloc(caller, sizeof(Interval));
			memcpy(retention, DatumGetIntervalP(d), sizeof(Interval));
		}
		SPI_finish();
		if (retention != NULL && usecs > interval_usecs(retention))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("feature window is longer than the retention of ring \"%s\"",
							RelationGetRelationName(rel)),
					 errdetail("The ring keeps %s of events.",
							   DatumGetCString(DirectFunctionCall1(interval_out,
																   IntervalPGetDatum(retention)))),
					 errhint("Shorten the window or recreate the ring with a longer retention.")));
	}
	return usecs;
}

static char *
optional_text(FunctionCallInfo fcinfo, int arg)
{
	return PG_ARGISNULL(arg) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(arg));
}

/*
 * fraudstream.create_feature(name, source, entity_column, agg, window,
 *		value_column, time_column, lat_column, lon_column)
 *
 * Validate the definition, store it and make the source feed its events.
 */
Datum
fraudstream_create_feature(PG_FUNCTION_ARGS)
{
	char	   *name;
	Oid			relid;
	char	   *entity_column;
	char	   *agg_name;
	char	   *value_column = optional_text(fcinfo, 5);
	char	   *lat_column = optional_text(fcinfo, 7);
	char	   *lon_column = optional_text(fcinfo, 8);
	char	   *time_column;
	FsAgg		agg;
	Relation	rel;
	Oid			entity_typid;
	AclResult	aclresult;
	StringInfoData sql;

	for (int i = 0; i < 5; i++)
		if (PG_ARGISNULL(i))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("name, source, entity_column, agg and window must not be NULL")));
	name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	relid = PG_GETARG_OID(1);
	entity_column = text_to_cstring(PG_GETARG_TEXT_PP(2));
	agg_name = text_to_cstring(PG_GETARG_TEXT_PP(3));

	if (strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789_") != strlen(name) ||
		name[0] == '\0' || isdigit((unsigned char) name[0]) || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid feature name \"%s\"", name),
				 errdetail("Feature names are lower-case letters, digits and underscores, not starting with a digit, shorter than %d bytes.",
						   NAMEDATALEN),
				 errhint("Models refer to features by name, e.g. card_txn_count_1h.")));
	if (!FsAggFromName(agg_name, &agg))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown aggregation \"%s\"", agg_name),
				 errhint("Use one of count, sum, avg, min, max, stddev, zscore, distinct, since_last, geo_velocity, ratio_to_avg.")));

	rel = relation_open(relid, AccessShareLock);
	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Features are computed over the rows inserted into a table or ring.")));
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));

	entity_typid = column_type(rel, feature_column(rel, entity_column, "entity column"));
	if (!entity_type_ok(entity_typid))
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("entity column \"%s\" of type %s cannot key features",
						entity_column, format_type_be(entity_typid)),
				 errhint("Use a column of type " ENTITY_TYPE_NAMES ".")));

	if (agg == FS_AGG_GEO_VELOCITY)
	{
		if (value_column != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("geo_velocity reads lat_column and lon_column, not value_column")));
		lat_column = lat_column ? lat_column : "lat";
		lon_column = lon_column ? lon_column : "lon";
		check_value_column(rel, lat_column, agg, "latitude column");
		check_value_column(rel, lon_column, agg, "longitude column");
	}
	else
	{
		if (lat_column != NULL || lon_column != NULL)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("lat_column and lon_column apply to geo_velocity only")));
		if (value_column == NULL && FsAggNeedsValue(agg))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("aggregation \"%s\" needs a value column", agg_name),
					 errhint("Name it with value_column => 'column'.")));
		if (value_column != NULL && agg == FS_AGG_SINCE_LAST)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("since_last reads no value column")));
		if (value_column != NULL && agg != FS_AGG_COUNT)
			check_value_column(rel, value_column, agg, "value column");
		else if (value_column != NULL)
			(void) feature_column(rel, value_column, "value column");
	}
	time_column = resolve_time_column(rel, PG_ARGISNULL(6) ? NULL : PG_GETARG_TEXT_PP(6));
	(void) window_usecs(PG_GETARG_INTERVAL_P(4), rel);

	SPI_connect();
	run_sql("LOCK TABLE fraudstream.feature_definitions IN SHARE ROW EXCLUSIVE MODE",
			SPI_OK_UTILITY);
	initStringInfo(&sql);
	appendStringInfo(&sql, "SELECT 1 FROM fraudstream.feature_definitions WHERE name = %s",
					 quote_literal_cstr(name));
	run_sql(sql.data, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("feature \"%s\" already exists", name),
				 errhint("Drop it first with fraudstream.drop_feature(%s).",
						 quote_literal_cstr(name))));
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "INSERT INTO fraudstream.feature_definitions (name, source, entity_column, "
					 "time_column, agg, window_length, value_column, lat_column, lon_column) "
					 "VALUES (%s, %u, %s, %s, %s, %s, %s, %s, %s)",
					 quote_literal_cstr(name), relid,
					 quote_literal_cstr(entity_column), quote_literal_cstr(time_column),
					 quote_literal_cstr(agg_name),
					 quote_literal_cstr(DatumGetCString(DirectFunctionCall1(interval_out,
																			PG_GETARG_DATUM(4)))),
					 value_column ? quote_literal_cstr(value_column) : "NULL",
					 lat_column ? quote_literal_cstr(lat_column) : "NULL",
					 lon_column ? quote_literal_cstr(lon_column) : "NULL");
	run_sql(sql.data, SPI_OK_INSERT);
	install_feed_triggers(rel);
	SPI_finish();
	relation_close(rel, AccessShareLock);

	FsCatalogChanged();
	/* Load now: a group over its limits fails here, not on the next insert. */
	(void) FsGetSourceDef(relid);
	PG_RETURN_VOID();
}

/*
 * Event trigger fraudstream_check_altered_sources, at the end of every
 * ALTER TABLE: when the command altered a source of features, their
 * definitions are loaded again at once, which checks their columns
 * (check_loaded_feature: its error undoes the ALTER), and in every backend
 * once the transaction commits.  A column given another type the features
 * can read changes its group's layout: the group's state is then rebuilt
 * from the table by its first reader.  An altered table attached to a
 * model has its attachment built again, which checks its key and score
 * columns the same way (FsCheckAttachment).
 */
Datum
fraudstream_check_altered_sources(PG_FUNCTION_ARGS)
{
	bool		sources = false;
	List	   *attached = NIL;
	MemoryContext caller = CurrentMemoryContext;
	ListCell   *lc;

	if (!CALLED_AS_EVENT_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_EVENT_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fraudstream.check_altered_sources() must be called as an event trigger")));
	SPI_connect();
	if (SPI_execute("SELECT DISTINCT c.objid, "
					"EXISTS (SELECT FROM fraudstream.feature_definitions d "
					"         WHERE d.source::pg_catalog.oid = c.objid), "
					"EXISTS (SELECT FROM fraudstream.attachments a "
					"         WHERE a.relation::pg_catalog.oid = c.objid) "
					"FROM pg_catalog.pg_event_trigger_ddl_commands() c "
					"WHERE c.classid = 'pg_catalog.pg_class'::pg_catalog.regclass",
					true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the altered tables");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	td = SPI_tuptable->tupdesc;
		bool		isnull;

		sources |= DatumGetBool(SPI_getbinval(tup, td, 2, &isnull));
		if (DatumGetBool(SPI_getbinval(tup, td, 3, &isnull)))
		{
			MemoryContext spi = MemoryContextSwitchTo(caller);

			attached = lappend_oid(attached, DatumGetObjectId(SPI_getbinval(tup, td, 1, &isnull)));
			MemoryContextSwitchTo(spi);
		}
	}
	SPI_finish();
	if (sources)
	{
		FsCatalogChanged();
		ensure_cache();
	}
	foreach(lc, attached)
		FsCheckAttachment(lfirst_oid(lc));
	PG_RETURN_VOID();
}

/*
 * fraudstream.drop_feature(name): remove a definition; the source stops
 * feeding when its last feature goes.
 */
Datum
fraudstream_drop_feature(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	StringInfoData sql;
	Oid			relid;
	char	   *entity_column;
	bool		isnull;

	SPI_connect();
	run_sql("LOCK TABLE fraudstream.feature_definitions IN SHARE ROW EXCLUSIVE MODE",
			SPI_OK_UTILITY);
	initStringInfo(&sql);

	/*
	 * An active model that reads the feature scores without it from now on
	 * (its weight and rules count nothing): say so, since deploy_model
	 * refuses such a model.  Not an error: dropping a source drops its
	 * features, and a model cannot be deactivated.
	 */
	appendStringInfo(&sql,
					 "SELECT name, version FROM fraudstream.models "
					 "WHERE active AND (spec -> 'weights' ? %s OR spec -> 'rules' @> "
					 "pg_catalog.jsonb_build_array(pg_catalog.jsonb_build_object('feature', %s::text))) "
					 "ORDER BY name",
					 quote_literal_cstr(name), quote_literal_cstr(name));
	run_sql(sql.data, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
		ereport(WARNING,
				(errcode(ERRCODE_WARNING),
				 errmsg("the active version %s of model \"%s\" reads feature \"%s\", which is dropped",
						SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 2),
						SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1), name),
				 errdetail("The model scores without it: its weight and its rules count nothing."),
				 errhint("Deploy and activate a version of the model without it.")));
	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "DELETE FROM fraudstream.feature_definitions WHERE name = %s "
					 "RETURNING source::pg_catalog.oid, entity_column::text",
					 quote_literal_cstr(name));
	run_sql(sql.data, SPI_OK_DELETE_RETURNING);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("feature \"%s\" does not exist", name)));
	relid = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	entity_column = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2);

	resetStringInfo(&sql);
	appendStringInfo(&sql,
					 "SELECT count(*) FILTER (WHERE entity_column = %s), count(*) "
					 "FROM fraudstream.feature_definitions WHERE source = %u",
					 quote_literal_cstr(entity_column), relid);
	run_sql(sql.data, SPI_OK_SELECT);
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)) == 0 &&
		n_groups_to_free < MAX_GROUPS_TO_FREE)
	{
		groups_to_free[n_groups_to_free].relid = relid;
		groups_to_free[n_groups_to_free].attnum = get_attnum(relid, entity_column);
		n_groups_to_free++;
	}
	if (DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull)) == 0)
		drop_feed_triggers(relid);
	SPI_finish();

	FsCatalogChanged();
	PG_RETURN_VOID();
}

/*
 * fraudstream.feature_group_stats(): the state and counters of each feature
 * group of this database, for the fraudstream.features view.
 */
Datum
fraudstream_feature_group_stats(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	ListCell   *lc;
	static const char *const status_names[] = {"free", "unloaded", "ready"};

	InitMaterializedSRF(fcinfo, 0);
	foreach(lc, FsAllSourceDefs())
	{
		FsSourceDef *sd = lfirst(lc);

		for (int i = 0; i < sd->ngroups; i++)
		{
			FsGroupDef *gd = &sd->groups[i];
			FsGroupCounters c;
			Datum		values[12];
			bool		nulls[12] = {0};

			FsGroupGetCounters(gd->group, &c);
			values[0] = ObjectIdGetDatum(sd->relid);
			values[1] = CStringGetTextDatum(gd->entity_column);
			values[2] = CStringGetTextDatum(status_names[FsGroupGetStatus(gd->group)]);
			values[3] = Int64GetDatum(c.entities);
			values[4] = Int64GetDatum((int64) c.events);
			values[5] = Int64GetDatum((int64) c.late);
			values[6] = Int64GetDatum((int64) c.expired_entities);
			values[7] = Int64GetDatum((int64) c.evicted_entities);
			values[8] = Int64GetDatum((int64) c.truncated_events);
			values[9] = Int64GetDatum((int64) c.rebuilds);
			values[10] = Int64GetDatum(c.summarised);
			values[11] = Int64GetDatum(c.memory_bytes);
			tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		}
	}
	return (Datum) 0;
}
