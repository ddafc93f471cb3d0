/*-------------------------------------------------------------------------
 *
 * modelcatalog.c
 *		Versioned models: fraudstream.deploy_model(), activate_model(), and
 *		the backend's cache of the active version of each model.
 *
 * Models live in the table fraudstream.models, one row per (name,
 * version), at most one active version per name (a unique partial
 * index).  deploy_model() validates the spec (model.c, plus: every
 * feature it reads exists) and stores it as the next version;
 * activate_model() moves the active flag.
 *
 * Swaps.  Every backend caches the compiled active version of the models
 * it scores with.  The cache is dropped when the shared catalog generation
 * moves (activate_model bumps it when its transaction commits, through
 * FsCatalogChanged) and after this backend's own change, so the first row
 * scored after an activation commits uses the new version, in every
 * session, without a restart.  A row is scored with one FsModel fetched
 * once, so no row mixes two versions.  The active version is read with
 * the latest snapshot, not the statement's: a long statement (a COPY, the
 * Kafka worker's batch) still switches at the next row.
 *
 * Privileges: managing models needs fraudstream_admin (EXECUTE is granted
 * to it alone).  Specs are not readable by PUBLIC; the scoring trigger
 * reads the active version as the owner of the fraudstream schema, so any
 * role that may insert into an attached table gets its rows scored.
 *
 * Locking: deploy and activate take ShareRowExclusiveLock on
 * fraudstream.models, so versions are numbered without gaps or duplicates
 * and two activations of one model serialize.  The cache is backend-local.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"

#include "fraudstream.h"
#include "featurestate.h"
#include "featuredefs.h"
#include "model.h"
#include "modelcatalog.h"

typedef struct ActiveModelEntry
{
	char		name[NAMEDATALEN];
	FsModel    *model;			/* NULL: no version is active */
} ActiveModelEntry;

static MemoryContext models_cxt = NULL;
static HTAB *active_models = NULL;
static uint64 models_generation = 0;
static bool models_stale = true;
static bool models_changed_in_xact = false;

PG_FUNCTION_INFO_V1(fraudstream_deploy_model);
PG_FUNCTION_INFO_V1(fraudstream_activate_model);

/* A transaction that changed models leaves the cache stale at its end. */
static void
models_xact_callback(XactEvent event, void *arg)
{
	if (!models_changed_in_xact)
		return;
	if (event == XACT_EVENT_COMMIT || event == XACT_EVENT_ABORT ||
		event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PARALLEL_ABORT)
	{
		models_changed_in_xact = false;
		models_stale = true;
	}
}

void
FsModelCatalogInit(void)
{
	RegisterXactCallback(models_xact_callback, NULL);
}

/* This transaction changed the models: reload now, everywhere at commit. */
static void
models_changed(void)
{
	models_changed_in_xact = true;
	models_stale = true;
	FsCatalogChanged();
}

/* Read and compile the active version of a model, or NULL if none. */
static FsModel *
load_active(const char *name)
{
	static SPIPlanPtr plan = NULL;
	Datum		arg = CStringGetTextDatum(name);
	FsModel    *model = NULL;
	FsSavedUser saved;
	int			ret;

	FsSwitchToSchemaOwner(&saved);
	SPI_connect();
	{
		Oid			argtype = TEXTOID;

		FsKeptPlan(&plan, "SELECT version, spec FROM fraudstream.models "
				   "WHERE name = $1 AND active", 1, &argtype);
	}
	ret = SPI_execute_snapshot(plan, &arg, NULL, GetLatestSnapshot(),
							   InvalidSnapshot, true, false, 1);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "fraudstream: reading model \"%s\" failed: %s", name,
			 SPI_result_code_string(ret));
	if (SPI_processed == 1)
	{
		bool		isnull;
		int32		version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
														  SPI_tuptable->tupdesc, 1, &isnull));
		Jsonb	   *spec = DatumGetJsonbP(SPI_getbinval(SPI_tuptable->vals[0],
														SPI_tuptable->tupdesc, 2, &isnull));

		model = FsModelCompile(name, version, spec, models_cxt);
	}
	SPI_finish();
	FsRestoreUser(&saved);
	return model;
}

/*
 * The active version of a model, or NULL when none is active.  Valid until
 * the next call (a reload frees the cache).
 */
const FsModel *
FsActiveModel(const char *name)
{
	ActiveModelEntry *entry;
	bool		found;
	uint64		generation = FsCatalogGeneration();

	if (models_stale || active_models == NULL || models_generation != generation)
	{
		HASHCTL		ctl;

		if (models_cxt == NULL)
			models_cxt = AllocSetContextCreate(TopMemoryContext, "fraudstream models",
											   ALLOCSET_SMALL_SIZES);
		MemoryContextReset(models_cxt);
		ctl.keysize = NAMEDATALEN;
		ctl.entrysize = sizeof(ActiveModelEntry);
		ctl.hcxt = models_cxt;
		active_models = hash_create("fraudstream active models", 16, &ctl,
									HASH_ELEM | HASH_STRINGS | HASH_CONTEXT);
		models_generation = generation;
		models_stale = false;
	}
	entry = hash_search(active_models, name, HASH_ENTER, &found);
	if (!found)
	{
		entry->model = NULL;
		entry->model = load_active(name);
	}
	return entry->model;
}

static void
check_model_name(const char *name)
{
	if (name[0] == '\0' || strlen(name) >= NAMEDATALEN)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("invalid model name \"%s\"", name),
				 errdetail("Model names are non-empty and shorter than %d bytes.", NAMEDATALEN)));
}

/* Every feature the model reads must be defined. */
static void
check_model_features(const FsModel *m)
{
	Oid			type = TEXTOID;

	for (int f = 0; f < m->nfeatures; f++)
	{
		Datum		arg = CStringGetTextDatum(m->features[f]);

		FsSpiRun("SELECT 1 FROM fraudstream.feature_definitions WHERE name = $1",
					  1, &type, &arg, SPI_OK_SELECT);
		if (SPI_processed == 0)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("model \"%s\" reads unknown feature \"%s\"", m->name, m->features[f]),
					 errhint("Define it with fraudstream.create_feature() first; see fraudstream.features.")));
	}
}

/*
 * fraudstream.deploy_model(name text, spec jsonb) returns the new version
 * number: 1 for a new model, else one more than the latest.
 */
Datum
fraudstream_deploy_model(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	Jsonb	   *spec = PG_GETARG_JSONB_P(1);
	FsModel    *m;
	Oid			types[5] = {TEXTOID, INT4OID, JSONBOID, TEXTOID, FLOAT8OID};
	Datum		values[5];
	int32		version;
	bool		isnull;

	check_model_name(name);
	m = FsModelCompile(name, 0, spec, CurrentMemoryContext);
	SPI_connect();
	check_model_features(m);
	FsSpiRun("LOCK TABLE fraudstream.models IN SHARE ROW EXCLUSIVE MODE",
				  0, NULL, NULL, SPI_OK_UTILITY);
	values[0] = PG_GETARG_DATUM(0);
	FsSpiRun("SELECT coalesce(max(version), 0) + 1 FROM fraudstream.models WHERE name = $1",
				  1, types, values, SPI_OK_SELECT);
	version = DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
	values[1] = Int32GetDatum(version);
	values[2] = JsonbPGetDatum(spec);
	values[3] = CStringGetTextDatum(m->kind == FS_MODEL_RULES ? "rules" : "logistic");
	values[4] = Float8GetDatum(m->threshold);
	FsSpiRun("INSERT INTO fraudstream.models (name, version, spec, kind, threshold) "
				  "VALUES ($1, $2, $3, $4, $5)", 5, types, values, SPI_OK_INSERT);
	SPI_finish();
	models_changed();
	PG_RETURN_INT32(version);
}

/*
 * fraudstream.activate_model(name text, version integer): that version
 * scores every row from the commit of this transaction on.
 */
Datum
fraudstream_activate_model(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	int32		version = PG_GETARG_INT32(1);
	Oid			types[2] = {TEXTOID, INT4OID};
	Datum		values[2] = {PG_GETARG_DATUM(0), PG_GETARG_DATUM(1)};

	SPI_connect();
	FsSpiRun("LOCK TABLE fraudstream.models IN SHARE ROW EXCLUSIVE MODE",
				  0, NULL, NULL, SPI_OK_UTILITY);
	FsSpiRun("SELECT 1 FROM fraudstream.models WHERE name = $1 AND version = $2",
				  2, types, values, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("model \"%s\" has no version %d", name, version),
				 errhint("See fraudstream.models for the deployed versions.")));
	FsSpiRun("UPDATE fraudstream.models SET active = false, activated_at = NULL "
				  "WHERE name = $1 AND active AND version <> $2",
				  2, types, values, SPI_OK_UPDATE);
	FsSpiRun("UPDATE fraudstream.models SET active = true, "
				  "activated_at = pg_catalog.now() WHERE name = $1 AND version = $2 AND NOT active",
				  2, types, values, SPI_OK_UPDATE);
	SPI_finish();
	models_changed();
	PG_RETURN_VOID();
}
