/*-------------------------------------------------------------------------
 *
 * sink.h
 *		Bulk insert into a target table through the executor, with
 *		per-row error isolation.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_SINK_H
#define FRAUDSTREAM_SINK_H

#include "nodes/execnodes.h"
#include "utils/elog.h"

/*
 * Fill values/nulls of row "row" (in the current, per-row memory context)
 * and set *bytes to the size of its input, which bounds the rows buffered
 * for multi-inserts; return false to leave the row out.  May raise an
 * error.
 */
typedef bool (*FsSinkRowFn) (void *arg, int row, ExprContext *econtext,
							 Datum *values, bool *nulls, Size *bytes);

/* Row "row" failed with "error"; it is left out, the others go on. */
typedef void (*FsSinkRejectFn) (void *arg, int row, ErrorData *error);

extern int64 FsSinkInsertRows(Oid relid, int nrows, bool allow_multi,
							  FsSinkRowFn rowfn, FsSinkRejectFn rejectfn,
							  void *arg);

#endif							/* FRAUDSTREAM_SINK_H */
