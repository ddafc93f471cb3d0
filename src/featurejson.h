/*-------------------------------------------------------------------------
 *
 * featurejson.h
 *		Feature values as a jsonb object, built without a text round trip.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_FEATUREJSON_H
#define FRAUDSTREAM_FEATUREJSON_H

#include "utils/jsonb.h"

#include "window.h"

/* An object being built: one pair per feature. */
typedef struct FsFeatureObject
{
	JsonbPair  *pairs;
	int			npairs;
	int			capacity;
} FsFeatureObject;

extern void FsFeatureObjectInit(FsFeatureObject *obj, int capacity);
extern void FsFeatureObjectAdd(FsFeatureObject *obj, const char *name,
							   FsAgg agg, double value, bool isnull);
extern Jsonb *FsFeatureObjectFinish(FsFeatureObject *obj);
extern int	FsJsonbKeyCompare(const char *a, const char *b);

#endif							/* FRAUDSTREAM_FEATUREJSON_H */
