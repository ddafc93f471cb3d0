/*-------------------------------------------------------------------------
 *
 * compat.h
 *		Every PostgreSQL version difference fraudstream cares about.
 *
 * fraudstream is built and tested on PostgreSQL 15 and kept portable to
 * 16 and 17.  Code elsewhere never tests PG_VERSION_NUM itself: shims for
 * version differences go here, so that supporting a new major version
 * means reading one file.  So far the APIs used (shmem_request_hook,
 * MarkGUCPrefixReserved, InitMaterializedSRF) are the same from 15 on.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_COMPAT_H
#define FRAUDSTREAM_COMPAT_H

#include "postgres.h"

#if PG_VERSION_NUM < 150000
#error "fraudstream requires PostgreSQL 15 or later"
#endif

#endif							/* FRAUDSTREAM_COMPAT_H */
