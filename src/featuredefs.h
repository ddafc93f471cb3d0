/*-------------------------------------------------------------------------
 *
 * featuredefs.h
 *		Feature definitions as the backend caches them, and the extraction
 *		of entity keys and events from rows.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_FEATURES_H
#define FRAUDSTREAM_FEATURES_H

#include "access/htup.h"
#include "access/htup_details.h"
#include "access/tupdesc.h"
#include "utils/relcache.h"
#include "featurestate.h"

/* What a value slot holds. */
typedef enum FsSlotKind
{
	FS_SLOT_NUMBER,				/* the column's value as float8 */
	FS_SLOT_HASH				/* 64-bit hash of the value, for distinct */
} FsSlotKind;

typedef struct FsSlotDef
{
	AttrNumber	attnum;
	FsSlotKind	kind;
	Oid			typid;
	Oid			collation;
	FmgrInfo	hash_fn;		/* FS_SLOT_HASH: the type's extended hash */
} FsSlotDef;

/*
 * The features of one source table that share an entity column: one
 * group of the online state.
 */
typedef struct FsGroupDef
{
	int			group;			/* slot in shared memory */
	AttrNumber	entity_attnum;
	char	   *entity_column;
	Oid			entity_typid;
	int16		entity_typlen;
	bool		entity_typbyval;
	AttrNumber	time_attnum;
	uint32		layout;			/* identifies nslots and slots */
	int			nslots;
	FsSlotDef	slots[FS_MAX_SLOTS];
	Size		event_size;
	int64		retain;			/* longest window + max_lateness, usecs */
	int			nfeatures;
	char	  **names;
	FsWindowSpec *specs;
	FsWindowSet window_set;		/* the specs, for the window math */
} FsGroupDef;

/* Every feature group of one source table. */
typedef struct FsSourceDef
{
	Oid			relid;
	int			ngroups;
	FsGroupDef *groups;
	int			nfeatures;		/* of all groups */
	struct FsJsonbTemplate *json_template;	/* see FsSourceJsonTemplate */
} FsSourceDef;

extern int	FsMaxLatenessMs;

/*
 * Whether an event at "time" is too late to count, given its entity's
 * newest earlier event: late events are not added to the state and get no
 * features (NULL), since history older than the retention may be gone.
 */
static inline bool
FsEventIsLate(TimestampTz time, TimestampTz latest)
{
	return latest != DT_NOBEGIN && time < latest - (int64) FsMaxLatenessMs * 1000;
}

extern void FsFeaturesInit(void);
extern uint64 FsFeatureCacheVersion(void);
extern FsSourceDef *FsGetSourceDef(Oid relid);
extern FsSourceDef *FsGetSourceDefForRel(Relation rel);
extern List *FsAllSourceDefs(void);
extern struct FsJsonbTemplate *FsSourceJsonTemplate(FsSourceDef *sd);
extern void FsGroupFeatureNames(const FsGroupDef *gd, const char **names,
								bool *integer);
extern void FsCatalogChanged(void);

extern bool FsEntityKeyFromDatum(const FsGroupDef *gd, Datum value,
								 FsEntityKey *key);
extern void FsTupleFromComposite(HeapTupleHeader row, Oid relid, HeapTuple tuple);
/*
 * A row's columns, deformed once for every group that reads them (reading
 * columns one by one walks the row from its start each time past the
 * first variable-width one).
 */
typedef struct FsRow
{
	int			natts;
	Datum	   *values;
	bool	   *isnull;
} FsRow;

extern void FsRowInit(FsRow *row, TupleDesc tupdesc);
extern void FsRowDeform(FsRow *row, TupleDesc tupdesc, HeapTuple tuple);
extern void FsRowFree(FsRow *row);
extern bool FsEventFromRow(const FsGroupDef *gd, const FsRow *row,
						   FsEvent *event, FsEntityKey *key);
extern double FsSlotValue(const FsSlotDef *sd, Datum value);

#endif							/* FRAUDSTREAM_FEATURES_H */
