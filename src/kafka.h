/*-------------------------------------------------------------------------
 *
 * kafka.h
 *		librdkafka configuration of fraudstream's sources.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_KAFKA_H
#define FRAUDSTREAM_KAFKA_H

#include <librdkafka/rdkafka.h>

#include "nodes/pg_list.h"
#include "utils/jsonb.h"

/*
 * A source's options, parsed from the jsonb given to create_source: the
 * keys fraudstream understands itself, and everything else, which goes to
 * librdkafka as configuration properties.
 */
typedef struct FsSourceOptions
{
	char	   *start;			/* "earliest", "latest" or a timestamp */
	List	   *columns;		/* CSV field order: column names (char *) */
	char		delimiter;		/* CSV field delimiter */
	char	   *partition_column;	/* Kafka metadata mapped to columns */
	char	   *offset_column;
	char	   *timestamp_column;
	char	   *key_column;
	List	   *kafka_names;	/* librdkafka properties, in order */
	List	   *kafka_values;
} FsSourceOptions;

/* How a source without a stored offset starts. */
typedef enum FsStartKind
{
	FS_START_EARLIEST,
	FS_START_LATEST,
	FS_START_TIME
} FsStartKind;

extern int	FsQueueMaxKbytes;

extern void FsKafkaInit(void);
extern void FsParseSourceOptions(Jsonb *options, FsSourceOptions *out);
extern FsStartKind FsParseStart(const char *start, int64 *time_ms);
extern bool FsIsSecretSetting(const char *name);
extern rd_kafka_conf_t *FsKafkaConsumerConf(const char *brokers,
											const char *group_id,
											const char *client_id,
											FsSourceOptions *opts,
											char *errstr, size_t errstr_size,
											char **bad_name);
extern void FsKafkaValidate(const char *brokers, const char *group_id,
							FsSourceOptions *opts);

#endif							/* FRAUDSTREAM_KAFKA_H */
