/*-------------------------------------------------------------------------
 *
 * launcher.h
 *		The launcher: supervises the Kafka source workers and rotates
 *		rings.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_LAUNCHER_H
#define FRAUDSTREAM_LAUNCHER_H

#include "postgres.h"

extern char *FsDatabase;

extern void FsLauncherInit(void);
extern PGDLLEXPORT void fraudstream_launcher_main(Datum main_arg);

#endif							/* FRAUDSTREAM_LAUNCHER_H */
