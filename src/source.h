/*-------------------------------------------------------------------------
 *
 * source.h
 *		SQL functions that manage Kafka sources, and the admin role check
 *		shared by every management function.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SOURCE_H
#define FRAUDSTREAM_SOURCE_H

#include "postgres.h"

/* Role whose members manage sources and rings. */
#define FS_ADMIN_ROLE "fraudstream_admin"

extern void FsRequireAdmin(const char *action);
extern void FsWakeLauncherAtCommit(void);
extern char *FsSourceGroupId(const char *name);
extern char *FsSourceClientId(const char *name);

#endif							/* FRAUDSTREAM_SOURCE_H */
