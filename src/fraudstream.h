/*-------------------------------------------------------------------------
 *
 * fraudstream.h
 *		Declarations shared by every fraudstream module.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_H
#define FRAUDSTREAM_H

#include "compat.h"
#include "executor/spi.h"

/* Set by the Makefile from fraudstream.control's default_version. */
#ifndef FRAUDSTREAM_VERSION
#error "FRAUDSTREAM_VERSION must be defined by the build"
#endif

/* Schema that holds every SQL object of the extension. */
#define FRAUDSTREAM_SCHEMA "fraudstream"

/*
 * A cache line of the machines we run on, for laying out what a scored row
 * reads (PG_CACHE_LINE_SIZE is wider: it keeps locks apart).
 */
#define FS_CACHE_LINE		64

/* True when the library was loaded by shared_preload_libraries. */
extern bool FsLoadedAtStartup;

extern void FsRequirePreload(const char *what);

/* The user and security context to go back to after FsSwitchTo*Owner. */
typedef struct FsSavedUser
{
	Oid			userid;
	int			sec_context;
} FsSavedUser;

extern void FsSwitchToSchemaOwner(FsSavedUser *saved);
extern void FsSwitchToRelationOwner(Oid relid, FsSavedUser *saved);
extern void FsRestoreUser(const FsSavedUser *saved);

extern void FsSpiRun(const char *sql, int nargs, Oid *types, Datum *values,
					 int expected);
extern SPIPlanPtr FsKeptPlan(SPIPlanPtr *plan, const char *sql, int nargs,
							 Oid *argtypes);

#endif							/* FRAUDSTREAM_H */
