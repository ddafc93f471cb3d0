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

#include "kafka.h"

/* Role whose members manage sources and rings. */
#define FS_ADMIN_ROLE "fraudstream_admin"

extern void FsRequireAdmin(const char *action);
extern void FsWakeLauncherAtCommit(void);
extern char *FsSourceGroupId(const char *name);
extern rd_kafka_conf_t *FsSourceConsumerConf(const char *name, const char *group_id,
											 const char *brokers, FsSourceOptions *opts);

#endif							/* FRAUDSTREAM_SOURCE_H */
