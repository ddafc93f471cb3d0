/*-------------------------------------------------------------------------
 *
 * featurestate.h
 *		The online feature state: recent events of every entity, in shared
 *		memory of a size fixed at server start.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_FEATURESTATE_H
#define FRAUDSTREAM_FEATURESTATE_H

#include "window.h"

/* Largest event record: what one 128-byte block of the state holds. */
#define FS_MAX_EVENT_SIZE	112

/* Bytes of an entity key kept verbatim; longer keys are kept as a hash. */
#define FS_KEY_INLINE		24
/* FsEntityKey.len flag of a key kept as its 128-bit hash */
#define FS_KEY_HASHED		0x8000
/* the bytes of FsEntityKey.data a key uses */
#define FS_KEY_BYTES(key)	((Size) ((key)->len & ~FS_KEY_HASHED))
/* FsEntityKey.len of a free entry of the state: no key has it */
#define FS_KEY_FREE			UINT16_MAX

/*
 * An entity, as the state identifies it: its group and the binary form of
 * its key value (see FsEntityKeyFromDatum in features.c).
 */
typedef struct FsEntityKey
{
	uint32		hash;
	uint16		group;
	uint16		len;			/* bytes of data used */
	char		data[FS_KEY_INLINE];
} FsEntityKey;

/* Life cycle of a group's state. */
typedef enum FsGroupStatus
{
	FS_GROUP_FREE = 0,			/* slot unused */
	FS_GROUP_UNLOADED,			/* defined, state not built from the table */
	FS_GROUP_READY				/* state holds every committed event */
} FsGroupStatus;

/* Counters of a group, for the features view and tests. */
typedef struct FsGroupCounters
{
	uint64		events;			/* events merged */
	uint64		late;			/* events older than max_lateness, ignored */
	uint64		evicted_entities;	/* entities dropped for lack of memory */
	uint64		truncated_events;	/* oldest events dropped for lack of memory */
	uint64		expired_entities;	/* entities idle longer than their windows */
	uint64		rebuilds;
	int64		entities;		/* entities now held */
	int64		summarised;		/* entities now with running summaries */
	int64		memory_bytes;	/* shared memory its entities use now */
} FsGroupCounters;

extern int	FsMaxEntities;
extern int	FsStateMemoryKb;
extern int	FsMaxFeatureGroups;

extern void FsFeatureStateInit(void);

extern int	FsGroupLookup(Oid relid, int16 entity_attnum, uint32 layout,
						  int nslots, int64 retain, uint64 generation,
						  bool may_reset, bool *usable);
extern uint64 FsCatalogGeneration(void);
extern void FsBumpCatalogGeneration(void);
extern FsGroupStatus FsGroupGetStatus(int group);
extern void FsGroupSetStatus(int group, FsGroupStatus status);
extern void FsGroupClear(int group, bool free_slot);
extern void FsGroupCountLate(int group);
extern void FsGroupGetCounters(int group, FsGroupCounters *counters);

/* A session's walked copy of an entity's running summaries (opaque). */
typedef struct FsSummaryCache FsSummaryCache;

extern FsSummaryCache *FsSummaryCacheCreate(MemoryContext cxt, const FsWindowSet *set);
extern void FsSummaryCacheReset(FsSummaryCache *cache);
extern void FsSummaryCacheEndXact(FsSummaryCache *cache);
extern bool FsSummaryCacheHoldsPending(const FsSummaryCache *cache);
extern bool FsStateCompute(const FsEntityKey *key, uint32 layout,
						   const FsEventRun *pending,
						   const FsWindowSet *set, FsSummaryCache *cache,
						   const FsEvent *current, bool probe,
						   double *result, bool *isnull, TimestampTz *latest);
extern int	FsGroupFind(Oid relid, int16 entity_attnum);
extern TimestampTz FsStateLatest(const FsEntityKey *key, uint32 layout);
extern uint64 FsStateVersion(const FsEntityKey *key, uint32 layout);
extern uint64 FsStateReplay(const FsEntityKey *key, uint32 layout, FsReplay *replay);
extern void FsStateAppend(const FsEntityKey *key, uint32 layout,
						  const FsWindowSet *set,
						  const FsEvent *events, int count,
						  FsSummaryCache *cache);

#endif							/* FRAUDSTREAM_FEATURESTATE_H */
