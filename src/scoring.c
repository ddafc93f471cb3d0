/*-------------------------------------------------------------------------
 *
 * scoring.c
 *		Per-insert scoring: fraudstream.attach() / detach(), the row
 *		trigger that scores every inserted row, and the scores, alerts and
 *		notifications it writes.
 *
 * Trigger.  attach() installs "zz_fraudstream_1_score", a C trigger
 * BEFORE INSERT FOR EACH ROW.  BEFORE, because the score goes into a
 * column of the row itself (score_column), which an AFTER trigger cannot
 * change, and because an AFTER ROW trigger would queue an event per row
 * until the end of the statement.  Its name makes it fire after the
 * table's own BEFORE triggers (they fire in name order), so it scores the
 * row as it will be stored, and before the feed trigger
 * "zz_fraudstream_2_feed" (online.c), so that a table that is both scored
 * and a feature source sees the row's own event exactly once.  INSERT,
 * multi-row INSERT, COPY and the Kafka worker's batches (sink.c, which
 * keeps multi-inserts with this trigger) all fire it.
 *
 * Features of a row.  Features apply to an attached table through its
 * columns, by name: every feature group (source table, entity column)
 * whose entity column the table has, with the same type, gives the row
 * its features.
 *	- Groups of the table itself (or of the partitioned table it belongs
 *	  to): the row is an event of the group, and gets the features it
 *	  would get in fraudstream.row_features(): its own event counts, the
 *	  session's pending events count, a late event gets NULLs.
 *	- Groups of another source (a ring of logins keyed by the same card
 *	  column, say): the row is a probe at its time (the table's column of
 *	  the source's time column name, else the current time), with the
 *	  values fraudstream.feature_values() gives for that key and time.
 * The model reads its features by name; one the table cannot compute is
 * NULL (model.c says what NULL does).
 *
 * Writes.  score_column gets the score (float8, real or numeric).  With
 * store_scores, a row goes to fraudstream.scores; a score at or above the
 * model's threshold is an alert (alerts.c writes both).  XXX: a BEFORE
 * trigger cannot know whether INSERT ... ON CONFLICT DO NOTHING will skip
 * the row; such a row is still scored and may alert.
 *
 * Caches.  Each backend keeps, per attached relation (a partition's
 * entry is built from its partitioned table's attachment), the feature
 * groups that apply, the column numbers and the binding of the active
 * model's features to them.  The whole cache is rebuilt when the catalog
 * generation moves (attach, detach, features, models), when the feature
 * cache reloads, and an entry when its relation's relcache entry is
 * invalidated (ALTER TABLE).  Building an entry checks its key and score
 * columns as attach did; the event trigger on ALTER TABLE builds the
 * entry of every altered attached table (FsCheckAttachment), so that a
 * change the attachment cannot follow fails the ALTER itself.
 *
 * Locking: attach/detach lock the table ShareRowExclusiveLock (as CREATE
 * TRIGGER) and fraudstream.attachments; the trigger takes no lock of its
 * own beyond what feature computation takes (featurestate.c).
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "access/relation.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "catalog/pg_trigger.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "portability/instr_time.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "alerts.h"
#include "featuredefs.h"
#include "featurejson.h"
#include "featurestate.h"
#include "model.h"
#include "online.h"
#include "scorestats.h"
#include "scoring.h"

#define SCORE_TRIGGER_NAME	"zz_fraudstream_1_score"
/* most entity columns an alert names */
#define ALERT_ENTITIES_MAX	16

/* A feature group that gives rows of an attached relation features. */
typedef struct ScoredGroup
{
	const FsGroupDef *gd;
	Oid			source_relid;
	bool		own_event;		/* the row is an event of this group */
	AttrNumber	entity_attnum;	/* in the attached relation */
	AttrNumber	time_attnum;	/* in the attached relation; 0: now */
	int			first;			/* its first feature in the row's vector */
} ScoredGroup;

/* What the trigger needs for rows of one relation. */
typedef struct Attachment
{
	Oid			relid;			/* hash key: the relation the trigger fires on */
	bool		attached;		/* false: a negative entry */
	bool		stale;			/* its relcache entry was invalidated */
	Oid			attached_relid; /* the relation attach() named */
	char		model[NAMEDATALEN];
	AttrNumber	key_attnum;
	FmgrInfo	key_out;
	AttrNumber	score_attnum;	/* 0: none */
	Oid			score_typid;
	bool		store_scores;
	int			ngroups;
	ScoredGroup *groups;
	int			nfeatures;
	/* binding of the model version below to the vector; bound_version 0: none */
	int32		bound_version;
	int		   *model_positions;	/* per model feature: index in the vector, or -1 */
	bool	   *group_needed;	/* per group: the model reads one of its features */
	FsJsonbTemplate *model_json;	/* the model's features, for fraudstream.scores */
} Attachment;

static MemoryContext attach_cxt = NULL;
static HTAB *attachments = NULL;
static uint64 attach_generation = 0;
static uint64 attach_feature_version = 0;
static bool attach_stale = true;

PG_FUNCTION_INFO_V1(fraudstream_score_trigger);
PG_FUNCTION_INFO_V1(fraudstream_attach);
PG_FUNCTION_INFO_V1(fraudstream_detach);

static void
attach_relcache_callback(Datum arg, Oid relid)
{
	Attachment *a;

	if (attachments == NULL)
		return;
	if (!OidIsValid(relid))
	{
		attach_stale = true;
		return;
	}
	a = hash_search(attachments, &relid, HASH_FIND, NULL);
	if (a != NULL)
		a->stale = true;
}

void
FsScoringInit(void)
{
	CacheRegisterRelcacheCallback(attach_relcache_callback, (Datum) 0);
}

/* Empty the cache if anything it depends on changed. */
static void
check_cache(void)
{
	uint64		generation = FsCatalogGeneration();
	uint64		feature_version = FsFeatureCacheVersion();
	HASHCTL		ctl;

	if (!attach_stale && attachments != NULL && attach_generation == generation &&
		attach_feature_version == feature_version)
		return;
	if (attach_cxt == NULL)
		attach_cxt = AllocSetContextCreate(TopMemoryContext, "fraudstream attachments",
										   ALLOCSET_DEFAULT_SIZES);
	MemoryContextReset(attach_cxt);
	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(Attachment);
	ctl.hcxt = attach_cxt;
	attachments = hash_create("fraudstream attachments", 16, &ctl,
							  HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
	attach_generation = generation;
	attach_feature_version = feature_version;
	attach_stale = false;
}

/*
 * Read the attachment of relid, if any, into a: key, score column, model,
 * store_scores.  Column numbers are resolved later, against the relation
 * the trigger fires on.
 */
static bool
read_attachment(Oid relid, Attachment *a, char **key_column, char **score_column)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = ObjectIdGetDatum(relid);
	bool		found = false;
	FsSavedUser saved;

	FsSwitchToSchemaOwner(&saved);
	SPI_connect();
	{
		Oid			argtype = OIDOID;

		FsKeptPlan(&plan, "SELECT key_column::text, score_column::text, model, store_scores "
				   "FROM fraudstream.attachments WHERE relation = $1", 1, &argtype);
	}
	if (SPI_execute_plan(plan, &arg, NULL, true, 1) != SPI_OK_SELECT)
		elog(ERROR, "fraudstream: reading attachments failed");
	if (SPI_processed == 1)
	{
		HeapTuple	tup = SPI_tuptable->vals[0];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		bool		isnull;
		MemoryContext old = MemoryContextSwitchTo(attach_cxt);

		*key_column = SPI_getvalue(tup, desc, 1);
		*score_column = SPI_getvalue(tup, desc, 2);
		strlcpy(a->model, SPI_getvalue(tup, desc, 3), NAMEDATALEN);
		a->store_scores = DatumGetBool(SPI_getbinval(tup, desc, 4, &isnull));
		MemoryContextSwitchTo(old);
		found = true;
	}
	SPI_finish();
	FsRestoreUser(&saved);
	return found;
}

/* The column of rel named "name" with type typid, or 0. */
static AttrNumber
column_of_type(Relation rel, const char *name, Oid typid)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	if (attnum <= 0 || TupleDescAttr(RelationGetDescr(rel), attnum - 1)->atttypid != typid)
		return InvalidAttrNumber;
	return attnum;
}

static void
add_group(Attachment *a, Relation rel, const FsGroupDef *gd, Oid source_relid,
		  bool own_event, int *capacity)
{
	ScoredGroup *g;
	AttrNumber	entity_attnum = own_event ? gd->entity_attnum
		: column_of_type(rel, gd->entity_column, gd->entity_typid);

	if (entity_attnum == InvalidAttrNumber)
		return;
	if (a->ngroups == *capacity)
	{
		*capacity *= 2;
		a->groups = repalloc(a->groups, sizeof(ScoredGroup) * *capacity);
	}
	g = &a->groups[a->ngroups++];
	g->gd = gd;
	g->source_relid = source_relid;
	g->own_event = own_event;
	g->entity_attnum = entity_attnum;
	g->time_attnum = own_event ? gd->time_attnum
		: column_of_type(rel, get_attname(source_relid, gd->time_attnum, false),
						 TIMESTAMPTZOID);
	g->first = a->nfeatures;
	a->nfeatures += gd->nfeatures;
}

/* Fill in the feature groups of a, for rows of rel. */
static void
resolve_groups(Attachment *a, Relation rel)
{
	FsSourceDef *own = FsGetSourceDefForRel(rel);
	int			capacity = 4;
	ListCell   *lc;

	a->groups = palloc(sizeof(ScoredGroup) * capacity);
	a->ngroups = 0;
	a->nfeatures = 0;
	if (own != NULL)
		for (int i = 0; i < own->ngroups; i++)
			add_group(a, rel, &own->groups[i], own->relid, true, &capacity);
	foreach(lc, FsAllSourceDefs())
	{
		FsSourceDef *sd = lfirst(lc);

		if (own != NULL && sd->relid == own->relid)
			continue;
		for (int i = 0; i < sd->ngroups; i++)
			add_group(a, rel, &sd->groups[i], sd->relid, false, &capacity);
	}
}

/* Whether a score column of this type can take a score (set_score_column). */
static bool
score_type_ok(Oid typid)
{
	return typid == FLOAT8OID || typid == FLOAT4OID || typid == NUMERICOID;
}

/* Build the cache entry of rel. */
static void
build_attachment(Attachment *a, Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	char	   *key_column = NULL;
	char	   *score_column = NULL;
	MemoryContext old;
	Oid			typout;
	bool		isvarlena;

	a->attached = read_attachment(relid, a, &key_column, &score_column);
	a->attached_relid = relid;
	if (!a->attached && rel->rd_rel->relispartition)
	{
		List	   *ancestors = get_partition_ancestors(relid);
		ListCell   *lc;

		foreach(lc, ancestors)
		{
			if (read_attachment(lfirst_oid(lc), a, &key_column, &score_column))
			{
				a->attached = true;
				a->attached_relid = lfirst_oid(lc);
				break;
			}
		}
	}
	a->stale = false;
	a->bound_version = 0;
	if (!a->attached)
		return;

	old = MemoryContextSwitchTo(attach_cxt);
	a->key_attnum = get_attnum(relid, key_column);
	if (a->key_attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("key column \"%s\" of the fraudstream attachment does not exist in \"%s\"",
						key_column, RelationGetRelationName(rel)),
				 errhint("Detach the table (fraudstream.detach) before dropping or renaming the column, and attach it again after.")));
	getTypeOutputInfo(TupleDescAttr(RelationGetDescr(rel), a->key_attnum - 1)->atttypid,
					  &typout, &isvarlena);
	fmgr_info_cxt(typout, &a->key_out, attach_cxt);
	a->score_attnum = score_column ? get_attnum(relid, score_column) : InvalidAttrNumber;
	if (score_column != NULL && a->score_attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_DEPENDENT_OBJECTS_STILL_EXIST),
				 errmsg("score column \"%s\" of the fraudstream attachment does not exist in \"%s\"",
						score_column, RelationGetRelationName(rel)),
				 errhint("Detach the table (fraudstream.detach) before dropping or renaming the column, and attach it again after.")));
	if (a->score_attnum > 0)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel), a->score_attnum - 1);

		/* as attach checked it: ALTER TABLE may have changed it since */
		if (!score_type_ok(att->atttypid) || att->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("score column \"%s\" of the fraudstream attachment of \"%s\" cannot take a score as %s",
							score_column, RelationGetRelationName(rel),
							att->attgenerated ? "a generated column" : format_type_be(att->atttypid)),
					 errdetail("A score goes into a column of type double precision, real or numeric."),
					 errhint("Detach the table (fraudstream.detach) before changing the column.")));
		a->score_typid = att->atttypid;
	}
	resolve_groups(a, rel);
	MemoryContextSwitchTo(old);
}

static Attachment *
get_attachment(Relation rel)
{
	Oid			relid = RelationGetRelid(rel);
	Attachment *a;
	bool		found;

	check_cache();
	a = hash_search(attachments, &relid, HASH_ENTER, &found);
	if (!found || a->stale)
	{
		a->attached = false;
		a->stale = true;
		build_attachment(a, rel);
	}
	return a;
}

/*
 * At the end of an ALTER TABLE of an attached table (the event trigger
 * fraudstream_check_altered_sources): build its attachment again, whose
 * error, if the ALTER dropped, renamed or retyped a column it writes or
 * reads, undoes the ALTER.
 */
void
FsCheckAttachment(Oid relid)
{
	Relation	rel = relation_open(relid, AccessShareLock);

	attach_stale = true;
	(void) get_attachment(rel);
	relation_close(rel, AccessShareLock);
}

/*
 * Whether the score trigger of rel feeds the events of the table's own
 * feature groups, so that its feed trigger, which fires next, must not:
 * computing the features of a row and feeding its event find the entity's
 * state once instead of twice.
 */
bool
FsScoreTriggerFeeds(Relation rel)
{
	TriggerDesc *td = rel->trigdesc;
	Attachment *a;
	bool		enabled = false;

	if (td == NULL || !td->trig_insert_before_row)
		return false;
	for (int i = 0; i < td->numtriggers; i++)
		if (strcmp(td->triggers[i].tgname, SCORE_TRIGGER_NAME) == 0)
			enabled = td->triggers[i].tgenabled != TRIGGER_DISABLED;
	if (!enabled)
		return false;
	a = get_attachment(rel);
	return a->attached && a->ngroups > 0 && a->groups[0].own_event;
}

/*
 * Point the model's features at the attachment's vector, and note which
 * groups the model reads: only those are computed.
 */
static void
bind_model(Attachment *a, const FsModel *model)
{
	const char **names;
	bool	   *integer;
	MemoryContext old;

	if (a->bound_version == model->version)
		return;
	a->model_positions = MemoryContextAlloc(attach_cxt, sizeof(int) * Max(model->nfeatures, 1));
	a->group_needed = MemoryContextAllocZero(attach_cxt, sizeof(bool) * Max(a->ngroups, 1));
	names = MemoryContextAlloc(attach_cxt, sizeof(char *) * Max(model->nfeatures, 1));
	integer = MemoryContextAllocZero(attach_cxt, sizeof(bool) * Max(model->nfeatures, 1));
	for (int f = 0; f < model->nfeatures; f++)
	{
		a->model_positions[f] = -1;
		names[f] = MemoryContextStrdup(attach_cxt, model->features[f]);
		for (int g = 0; g < a->ngroups && a->model_positions[f] < 0; g++)
		{
			const FsGroupDef *gd = a->groups[g].gd;

			for (int i = 0; i < gd->nfeatures; i++)
				if (strcmp(gd->names[i], model->features[f]) == 0)
				{
					a->model_positions[f] = a->groups[g].first + i;
					a->group_needed[g] = true;
					integer[f] = FsAggIsInteger(gd->specs[i].agg);
					break;
				}
		}
	}
	old = MemoryContextSwitchTo(attach_cxt);
	a->model_json = FsJsonbTemplateCreate(model->nfeatures, names, integer);
	MemoryContextSwitchTo(old);
	a->bound_version = model->version;
}

/*
 * The row's features, into values/nulls (a->nfeatures each), for the
 * groups the model reads (needed; NULL: none); the events of the table's
 * own groups are fed on the way, read or not (see FsScoreTriggerFeeds).
 */
static void
compute_features(Attachment *a, const FsRow *row, FsEvent *event,
				 const bool *needed, double *values, bool *nulls)
{
	for (int i = 0; i < a->ngroups; i++)
	{
		const ScoredGroup *g = &a->groups[i];
		double	   *v = values + g->first;
		bool	   *n = nulls + g->first;
		FsEntityKey key;
		int			e = g->entity_attnum - 1;
		int			t = g->time_attnum - 1;

		memset(n, true, sizeof(bool) * g->gd->nfeatures);
		if (g->own_event)
		{
			if (!FsEventFromRow(g->gd, row, event, &key))
				continue;
			if (needed != NULL && needed[i])
				FsOnlineComputeAndFeed(g->gd, g->source_relid, &key, event, v, n);
			else
				FsOnlineFeed(g->gd, g->source_relid, &key, event);
			continue;
		}
		if (needed == NULL || !needed[i])
			continue;
		if (row->isnull[e] || !FsEntityKeyFromDatum(g->gd, row->values[e], &key))
			continue;
		event->time = GetCurrentTimestamp();
		if (g->time_attnum > 0 && !row->isnull[t])
			event->time = DatumGetTimestampTz(row->values[t]);
		event->nullmask = ~(uint32) 0;
		FsEnsureGroupLoaded(g->gd, g->source_relid);
		FsOnlineCompute(g->gd, &key, event, true, v, n);
	}
}

/* A column value as text, NULL as NULL. */
static char *
value_text(FmgrInfo *out, Datum value, bool isnull)
{
	return isnull ? NULL : OutputFunctionCall(out, value);
}

/* The row's entity columns and values as a JSON object. */
static void
entities_json(StringInfo buf, Attachment *a, TupleDesc desc, HeapTuple tuple)
{
	int			written = 0;

	appendStringInfoChar(buf, '{');
	for (int i = 0; i < a->ngroups && written < ALERT_ENTITIES_MAX; i++)
	{
		const ScoredGroup *g = &a->groups[i];
		Form_pg_attribute att = TupleDescAttr(desc, g->entity_attnum - 1);
		bool		seen = false;
		bool		isnull;
		Datum		value;
		Oid			typout;
		bool		isvarlena;

		for (int j = 0; j < i; j++)
			seen |= a->groups[j].entity_attnum == g->entity_attnum;
		if (seen)
			continue;
		value = heap_getattr(tuple, g->entity_attnum, desc, &isnull);
		getTypeOutputInfo(att->atttypid, &typout, &isvarlena);
		if (written++ > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, NameStr(att->attname));
		appendStringInfoString(buf, ": ");
		FsJsonAppendClipped(buf, isnull ? NULL : OidOutputFunctionCall(typout, value));
	}
	appendStringInfoChar(buf, '}');
}

static uint64
elapsed_ns(instr_time elapsed)
{
#ifdef INSTR_TIME_GET_NANOSEC
	return (uint64) INSTR_TIME_GET_NANOSEC(elapsed);
#else
	return (uint64) (INSTR_TIME_GET_DOUBLE(elapsed) * 1e9);
#endif
}

/*
 * The row with the score in its score column, converted to its type, made
 * from its deformed columns (as heap_modify_tuple would, without deforming
 * them again).
 */
static HeapTuple
set_score_column(Attachment *a, TupleDesc desc, HeapTuple tuple, FsRow *row,
				 double score)
{
	Datum		value;
	HeapTuple	scored;

	switch (a->score_typid)
	{
		case FLOAT8OID:
			value = Float8GetDatum(score);
			break;
		case FLOAT4OID:
			value = Float4GetDatum((float4) score);
			break;
		default:
			value = DirectFunctionCall1(float8_numeric, Float8GetDatum(score));
			break;
	}
	row->values[a->score_attnum - 1] = value;
	row->isnull[a->score_attnum - 1] = false;
	scored = heap_form_tuple(desc, row->values, row->isnull);
	scored->t_data->t_ctid = tuple->t_data->t_ctid;
	scored->t_self = tuple->t_self;
	scored->t_tableOid = tuple->t_tableOid;
	return scored;
}

/*
 * Trigger fraudstream.score_trigger(), BEFORE INSERT FOR EACH ROW on every
 * attached table: score the row, write the score, the scores row, the
 * alert.
 */
Datum
fraudstream_score_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	tuple;
	TupleDesc	desc;
	Attachment *a;
	const FsModel *model;
	instr_time	start;
	instr_time	elapsed;
	double		score;
	bool		alert;
	FsScoreReasons reasons;
	FsRow		row;
	double		vector_values[FS_MAX_SPECS * 4];
	bool		vector_nulls[FS_MAX_SPECS * 4];
	double	   *values = vector_values;
	bool	   *nulls = vector_nulls;
	double		model_values[64];
	bool		model_nulls[64];
	double	   *mvalues = model_values;
	bool	   *mnulls = model_nulls;
	union
	{
		FsEvent		event;
		char		bytes[FS_EVENT_SIZE(FS_MAX_SLOTS)];
	}			event;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fraudstream.score_trigger() must fire BEFORE INSERT FOR EACH ROW")));
	INSTR_TIME_SET_CURRENT(start);
	rel = trigdata->tg_relation;
	tuple = trigdata->tg_trigtuple;
	desc = RelationGetDescr(rel);
	a = get_attachment(rel);
	if (!a->attached)
		return PointerGetDatum(tuple);
	model = FsActiveModel(a->model);
	if (model != NULL)
		bind_model(a, model);
	if (a->nfeatures > (int) lengthof(vector_values))
	{
		values = palloc(sizeof(double) * a->nfeatures);
		nulls = palloc(sizeof(bool) * a->nfeatures);
	}
	FsRowInit(&row, desc);
	FsRowDeform(&row, desc, tuple);
	compute_features(a, &row, &event.event, model ? a->group_needed : NULL,
					 values, nulls);
	if (model == NULL)
	{
		FsRowFree(&row);
		return PointerGetDatum(tuple);	/* no active version: not scored */
	}
	if (model->nfeatures > (int) lengthof(model_values))
	{
		mvalues = palloc(sizeof(double) * model->nfeatures);
		mnulls = palloc(sizeof(bool) * model->nfeatures);
	}
	for (int f = 0; f < model->nfeatures; f++)
	{
		int			pos = a->model_positions[f];

		mnulls[f] = pos < 0 || nulls[pos];
		mvalues[f] = mnulls[f] ? 0.0 : values[pos];
	}
	reasons.fired = palloc(sizeof(int) * Max(model->nrules, 1));
	score = FsModelScore(model, mvalues, mnulls, &reasons);
	alert = score >= model->threshold;

	if (a->score_attnum > 0)
		tuple = set_score_column(a, desc, tuple, &row, score);
	if (a->store_scores || alert)
	{
		StringInfoData reasons_json;
		StringInfoData entities;
		bool		isnull;
		Datum		key = heap_getattr(tuple, a->key_attnum, desc, &isnull);
		FsScoreRecord rec;

		initStringInfo(&reasons_json);
		FsModelReasonsJson(&reasons_json, model, mvalues, mnulls, &reasons);
		rec.relid = a->attached_relid;
		rec.row_key = value_text(&a->key_out, key, isnull);
		rec.score = score;
		rec.model = model;
		rec.reasons = reasons_json.data;
		rec.features = a->store_scores ? FsJsonbFromFeatures(a->model_json, mvalues, mnulls) : NULL;
		rec.entities = NULL;
		if (alert)
		{
			initStringInfo(&entities);
			entities_json(&entities, a, desc, tuple);
			rec.entities = entities.data;
		}
		FsWriteScore(&rec);
	}
	if (model->stats_slot == -2)
		((FsModel *) model)->stats_slot = FsScoreStatsSlot(model->name, model->version);
	INSTR_TIME_SET_CURRENT(elapsed);
	INSTR_TIME_SUBTRACT(elapsed, start);
	FsScoreStatsRecord(model->stats_slot, elapsed_ns(elapsed), alert,
					   GetCurrentTransactionStartTimestamp());
	pfree(reasons.fired);
	FsRowFree(&row);
	return PointerGetDatum(tuple);
}

/* The user column "name" of rel, with an error naming its role otherwise. */
static AttrNumber
user_column(Relation rel, const char *name, const char *role)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), name);

	if (attnum <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("%s \"%s\" does not exist in \"%s\"", role, name,
						RelationGetRelationName(rel))));
	return attnum;
}

/* The model an attachment scores with: the one given, or the only one. */
static char *
resolve_model(const char *model)
{
	Oid			type = TEXTOID;
	Datum		arg;

	if (model != NULL)
	{
		arg = CStringGetTextDatum(model);
		FsSpiRun("SELECT 1 FROM fraudstream.models WHERE name = $1", 1, &type, &arg,
					SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" does not exist", model),
					 errhint("Deploy it with fraudstream.deploy_model() first.")));
		return pstrdup(model);
	}
	FsSpiRun("SELECT DISTINCT name FROM fraudstream.models", 0, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("attach needs a model name"),
				 errdetail("%s.", SPI_processed == 0 ? "No model is deployed"
						   : "More than one model is deployed"),
				 errhint("Name it with model => 'name'; deploy models with fraudstream.deploy_model().")));
	return SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
}

/* The attached table, locked as CREATE TRIGGER would, and its checks. */
static Relation
open_table(Oid relid)
{
	Relation	rel = relation_open(relid, ShareRowExclusiveLock);
	AclResult	aclresult;

	if (rel->rd_rel->relkind != RELKIND_RELATION &&
		rel->rd_rel->relkind != RELKIND_PARTITIONED_TABLE)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("\"%s\" is not a table", RelationGetRelationName(rel)),
				 errdetail("Only rows inserted into a table can be scored.")));
	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_TRIGGER);
	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, get_relkind_objtype(rel->rd_rel->relkind),
					   RelationGetRelationName(rel));
	return rel;
}

/*
 * fraudstream.attach(table, key_column, score_column, model, store_scores):
 * score every row inserted into the table from now on.
 */
Datum
fraudstream_attach(PG_FUNCTION_ARGS)
{
	Oid			relid;
	char	   *key_column;
	char	   *score_column = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	char	   *model = PG_ARGISNULL(3) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(3));
	bool		store_scores;
	Relation	rel;
	Attachment	probe;
	char	   *qname;
	StringInfoData sql;
	Oid			types[5] = {OIDOID, TEXTOID, TEXTOID, TEXTOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(4))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("table, key_column and store_scores must not be NULL")));
	relid = PG_GETARG_OID(0);
	key_column = text_to_cstring(PG_GETARG_TEXT_PP(1));
	store_scores = PG_GETARG_BOOL(4);
	rel = open_table(relid);
	(void) user_column(rel, key_column, "key column");
	if (score_column != NULL)
	{
		Form_pg_attribute att = TupleDescAttr(RelationGetDescr(rel),
											  user_column(rel, score_column, "score column") - 1);

		if (!score_type_ok(att->atttypid))
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("score column \"%s\" has type %s", score_column,
							format_type_be(att->atttypid)),
					 errhint("Scores are double precision, real or numeric values.")));
		if (att->attgenerated)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("score column \"%s\" is a generated column", score_column)));
		if (strcmp(score_column, key_column) == 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("the score column cannot be the key column")));
	}
	else if (!store_scores)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the score would be written nowhere"),
				 errhint("Give a score_column, or keep store_scores => true.")));

	memset(&probe, 0, sizeof(probe));
	resolve_groups(&probe, rel);
	if (probe.ngroups == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no feature applies to rows of \"%s\"", RelationGetRelationName(rel)),
				 errdetail("A feature applies to a table that has a column named like the feature's entity column, of the same type."),
				 errhint("Define features with fraudstream.create_feature() first.")));

	SPI_connect();
	model = resolve_model(model);
	FsSpiRun("LOCK TABLE fraudstream.attachments IN SHARE ROW EXCLUSIVE MODE",
				0, NULL, NULL, SPI_OK_UTILITY);
	values[0] = ObjectIdGetDatum(relid);
	FsSpiRun("SELECT 1 FROM fraudstream.attachments WHERE relation = $1",
				1, types, values, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_DUPLICATE_OBJECT),
				 errmsg("\"%s\" is already attached", RelationGetRelationName(rel)),
				 errhint("Detach it first with fraudstream.detach().")));
	values[1] = CStringGetTextDatum(key_column);
	values[2] = score_column ? CStringGetTextDatum(score_column) : (Datum) 0;
	nulls[2] = score_column ? ' ' : 'n';
	values[3] = CStringGetTextDatum(model);
	values[4] = BoolGetDatum(store_scores);
	if (SPI_execute_with_args("INSERT INTO fraudstream.attachments "
							  "(relation, key_column, score_column, model, store_scores) "
							  "VALUES ($1, $2, $3, $4, $5)", 5, types, values, nulls,
							  false, 0) != SPI_OK_INSERT)
		elog(ERROR, "fraudstream: recording the attachment failed");
	qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
									   RelationGetRelationName(rel));
	initStringInfo(&sql);
	appendStringInfo(&sql, "CREATE TRIGGER " SCORE_TRIGGER_NAME " BEFORE INSERT ON %s "
					 "FOR EACH ROW EXECUTE FUNCTION fraudstream.score_trigger()", qname);
	FsSpiRun(sql.data, 0, NULL, NULL, SPI_OK_UTILITY);
	SPI_finish();
	relation_close(rel, NoLock);
	FsCatalogChanged();
	PG_RETURN_VOID();
}

/* fraudstream.detach(table): stop scoring the table's rows. */
Datum
fraudstream_detach(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	Relation	rel = open_table(relid);
	Oid			type = OIDOID;
	Datum		arg = ObjectIdGetDatum(relid);
	StringInfoData sql;
	FsSavedUser saved;

	SPI_connect();
	FsSpiRun("DELETE FROM fraudstream.attachments WHERE relation = $1",
				1, &type, &arg, SPI_OK_DELETE);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("\"%s\" is not attached", RelationGetRelationName(rel))));
	initStringInfo(&sql);
	appendStringInfo(&sql, "DROP TRIGGER IF EXISTS " SCORE_TRIGGER_NAME " ON %s",
					 quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
												RelationGetRelationName(rel)));
	FsSwitchToRelationOwner(relid, &saved);
	FsSpiRun(sql.data, 0, NULL, NULL, SPI_OK_UTILITY);
	FsRestoreUser(&saved);
	SPI_finish();
	relation_close(rel, NoLock);
	FsCatalogChanged();
	PG_RETURN_VOID();
}
