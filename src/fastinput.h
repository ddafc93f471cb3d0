/*-------------------------------------------------------------------------
 *
 * fastinput.h
 *		Exact shortcuts for a few input functions (see fastinput.c).
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_FASTINPUT_H
#define FRAUDSTREAM_FASTINPUT_H

#include "fmgr.h"

typedef enum FsFastInput
{
	FS_FAST_NONE,
	FS_FAST_TIMESTAMPTZ,
	FS_FAST_NUMERIC,
	FS_FAST_INET
} FsFastInput;

extern FsFastInput FsFastInputFor(Oid infunc, int32 typmod);
extern bool FsFastInputCall(FsFastInput kind, const char *text, Datum *result);

#endif							/* FRAUDSTREAM_FASTINPUT_H */
