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

/*
 * fraudstream.version() returns the version of the loaded library, which
 * is the version of the extension it was built for.
 */
Datum
fraudstream_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(FRAUDSTREAM_VERSION));
}
