/*-------------------------------------------------------------------------
 *
 * fraudstream.c
 *		Library entry point: _PG_init, GUC reservation, and the functions
 *		that describe the extension itself.
 *
 * _PG_init does as little as possible: it reserves the "fraudstream." GUC
 * prefix and asks each module to register what it needs (shared memory,
 * background workers, hooks).  Most of that is only possible while the
 * postmaster loads shared_preload_libraries, so _PG_init records whether it
 * ran then; code that depends on shared state calls FsRequirePreload()
 * first, which turns a missing preload into an error that says how to fix
 * it instead of a crash or a silent no-op.
 *
 * Locking: none here; each module documents its own.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "catalog/namespace.h"
#include "catalog/pg_class.h"
#include "catalog/pg_namespace.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/syscache.h"

#include "fraudstream.h"
#include "decode.h"
#include "featuredefs.h"
#include "featurestate.h"
#include "kafka.h"
#include "launcher.h"
#include "modelcatalog.h"
#include "online.h"
#include "scorestats.h"
#include "scoring.h"
#include "ring.h"
#include "shmem.h"
#include "stats.h"
#include "worker.h"

PG_MODULE_MAGIC;

bool		FsLoadedAtStartup = false;

PG_FUNCTION_INFO_V1(fraudstream_version);

void		_PG_init(void);

/*
 * Register every module.  Called once per process that loads the library;
 * in the postmaster when fraudstream is in shared_preload_libraries.
 */
void
_PG_init(void)
{
	FsLoadedAtStartup = process_shared_preload_libraries_in_progress;

	if (FsLoadedAtStartup)
	{
		FsShmemInit();
		FsFeatureStateInit();
		FsScoreStatsInit();
	}

	/* sliding-window features */
	FsFeaturesInit();
	FsOnlineInit();

	/* scoring */
	FsModelCatalogInit();
	FsScoringInit();

	/* rings and Kafka sources */
	FsStatsInit();
	FsKafkaInit();
	FsDecodeInit();
	FsWorkerInit();
	FsRingInit();
	FsLauncherInit();

	/* last: reserving the prefix drops placeholders not defined above */
	MarkGUCPrefixReserved("fraudstream");
}

/*
 * Fail with a helpful error when a feature that needs the library to be
 * preloaded (shared memory, background workers) is used without it.
 * "what" names the feature for the message.
 */
void
FsRequirePreload(const char *what)
{
	if (!FsLoadedAtStartup)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires fraudstream to be loaded via shared_preload_libraries",
						what),
				 errdetail("fraudstream keeps its state in shared memory, which can only be reserved at server start."),
				 errhint("Add 'fraudstream' to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/* Run as userid, in a restricted security context, until FsRestoreUser. */
static void
switch_user(Oid userid, FsSavedUser *saved)
{
	GetUserIdAndSecContext(&saved->userid, &saved->sec_context);
	SetUserIdAndSecContext(userid, saved->sec_context | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
}

/*
 * Run as the owner of the fraudstream schema (the extension's owner): for
 * the scoring trigger's reads and writes of fraudstream's own tables,
 * which the inserting role need not be able to touch.
 */
void
FsSwitchToSchemaOwner(FsSavedUser *saved)
{
	Oid			nsp = get_namespace_oid(FRAUDSTREAM_SCHEMA, false);
	HeapTuple	tup = SearchSysCache1(NAMESPACEOID, ObjectIdGetDatum(nsp));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for schema %u", nsp);
	owner = ((Form_pg_namespace) GETSTRUCT(tup))->nspowner;
	ReleaseSysCache(tup);
	switch_user(owner, saved);
}

/*
 * Run as the owner of a table: for DROP TRIGGER, which PostgreSQL allows
 * the owner alone, on behalf of a caller that was checked to hold the
 * TRIGGER privilege (enough to create the trigger).
 */
void
FsSwitchToRelationOwner(Oid relid, FsSavedUser *saved)
{
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(relid));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for relation %u", relid);
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	switch_user(owner, saved);
}

/*
 * The saved plan of a query fraudstream runs often (the scoring trigger's
 * reads and writes), prepared on first use and kept for the session.
 */
SPIPlanPtr
FsKeptPlan(SPIPlanPtr *plan, const char *sql, int nargs, Oid *argtypes)
{
	if (*plan == NULL)
	{
		SPIPlanPtr	p = SPI_prepare(sql, nargs, argtypes);

		if (p == NULL)
			elog(ERROR, "fraudstream: preparing \"%s\" failed: %s", sql,
				 SPI_result_code_string(SPI_result));
		SPI_keepplan(p);
		*plan = p;
	}
	return *plan;
}

/*
 * Run a statement through SPI (connected by the caller) as the current
 * user, with parameters; anything but the expected result is an error.
 */
void
FsSpiRun(const char *sql, int nargs, Oid *types, Datum *values, int expected)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, NULL, false, 0);

	if (ret != expected)
		elog(ERROR, "fraudstream: \"%s\" failed: %s", sql, SPI_result_code_string(ret));
}

void
FsRestoreUser(const FsSavedUser *saved)
{
	SetUserIdAndSecContext(saved->userid, saved->sec_context);
}

/*
 * fraudstream.version() returns the version of the loaded library, which
 * is the version of the extension it was built for.
 */
Datum
fraudstream_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(FRAUDSTREAM_VERSION));
}
