/*-------------------------------------------------------------------------
 *
 * decode.h
 *		Kafka message payloads (JSON, CSV) to rows of a target table.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_DECODE_H
#define FRAUDSTREAM_DECODE_H

#include "access/tupdesc.h"
#include "fmgr.h"
#include "nodes/execnodes.h"
#include "utils/rel.h"

#include "kafka.h"

typedef enum FsFormat
{
	FS_FORMAT_JSON,
	FS_FORMAT_CSV
} FsFormat;

/* Kafka metadata of one message, for the *_column options. */
typedef struct FsKafkaMeta
{
	int32		partition;
	int64		offset;
	int64		timestamp_ms;	/* -1 when the message has none (or the
								 * decoder does not use it) */
	const char *key;			/* NULL when the message has none */
	size_t		key_len;
} FsKafkaMeta;

/* Field states of a parsed message, per target column. */
#define FS_FIELD_ABSENT	0
#define FS_FIELD_NULL	1
#define FS_FIELD_VALUE	2

/* A message split into per-column text values (phase 1 of decoding). */
typedef struct FsParsed
{
	uint8	   *state;			/* FS_FIELD_* per column */
	char	  **value;			/* NUL-terminated text per column */
} FsParsed;

typedef struct FsDecoder FsDecoder;

extern int	FsMaxMessageBytes;

extern void FsDecodeInit(void);
extern FsDecoder *FsDecoderCreate(Relation rel, FsFormat format,
								  FsSourceOptions *opts);
extern bool FsDecoderVolatileDefaults(FsDecoder *d);
extern bool FsDecoderUsesTimestamp(FsDecoder *d);
extern bool FsDecodeParse(FsDecoder *d, const char *data, size_t len,
						  FsParsed *out, char **error);
extern void FsDecodeValues(FsDecoder *d, FsParsed *parsed,
						   const FsKafkaMeta *meta, ExprContext *econtext,
						   Datum *values, bool *nulls);

#endif							/* FRAUDSTREAM_DECODE_H */
