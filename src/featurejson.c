/*-------------------------------------------------------------------------
 *
 * featurejson.c
 *		Feature values as a jsonb object: {"name": value, ...}.
 *
 * feature_values() and row_features() return every feature of a row or
 * an entity as one jsonb object.  Printing it as text and parsing that
 * back (jsonb_in) costs more than computing the features, so the object
 * is built as a JsonbValue: counts and distinct counts are integers,
 * other values numbers with the shortest text that reads back as the same
 * float8 (float8out's), NULL, NaN and infinities are JSON null.  jsonb
 * keeps an object's keys sorted (shorter first, then bytewise) and
 * unique; callers that add pairs in that order (features.c precomputes it
 * per source: FsSourceDef.name_order) spare the sort.  A duplicate key
 * keeps its last value, as jsonb_in does.
 *
 * Locking: none; backend-local memory only.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/numeric.h"

#include "featurejson.h"

/* jsonb's key order: shorter keys first, then bytewise. */
int
FsJsonbKeyCompare(const char *a, const char *b)
{
	size_t		la = strlen(a);
	size_t		lb = strlen(b);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(a, b, la);
}

static int
pair_compare(const void *a, const void *b)
{
	const JsonbPair *pa = a;
	const JsonbPair *pb = b;
	int			la = pa->key.val.string.len;
	int			lb = pb->key.val.string.len;
	int			c;

	if (la != lb)
		return la < lb ? -1 : 1;
	c = memcmp(pa->key.val.string.val, pb->key.val.string.val, la);
	if (c != 0)
		return c;
	/* equal keys: the later one last, so that it wins */
	return pa->order < pb->order ? -1 : (pa->order > pb->order ? 1 : 0);
}

void
FsFeatureObjectInit(FsFeatureObject *obj, int capacity)
{
	obj->capacity = Max(capacity, 4);
	obj->npairs = 0;
	obj->pairs = palloc(sizeof(JsonbPair) * obj->capacity);
}

/* Add one feature's value (see the file header for the JSON of each). */
void
FsFeatureObjectAdd(FsFeatureObject *obj, const char *name, FsAgg agg,
				   double value, bool isnull)
{
	JsonbPair  *pair;

	if (obj->npairs == obj->capacity)
	{
		obj->capacity *= 2;
		obj->pairs = repalloc(obj->pairs, sizeof(JsonbPair) * obj->capacity);
	}
	pair = &obj->pairs[obj->npairs];
	pair->order = obj->npairs++;
	pair->key.type = jbvString;
	pair->key.val.string.val = (char *) name;
	pair->key.val.string.len = strlen(name);
	if (isnull || isnan(value) || isinf(value))
		pair->value.type = jbvNull;
	else
	{
		pair->value.type = jbvNumeric;
		if (agg == FS_AGG_COUNT || agg == FS_AGG_DISTINCT)
			pair->value.val.numeric = int64_to_numeric((int64) value);
		else
			pair->value.val.numeric =
				DatumGetNumeric(DirectFunctionCall3(numeric_in,
													CStringGetDatum(float8out_internal(value)),
													ObjectIdGetDatum(InvalidOid),
													Int32GetDatum(-1)));
	}
}

/* The object as jsonb; sorts and deduplicates the keys if needed. */
Jsonb *
FsFeatureObjectFinish(FsFeatureObject *obj)
{
	JsonbValue	value;
	bool		ordered = true;

	for (int i = 1; i < obj->npairs && ordered; i++)
		ordered = FsJsonbKeyCompare(obj->pairs[i - 1].key.val.string.val,
									obj->pairs[i].key.val.string.val) < 0;
	if (!ordered)
	{
		int			kept = 0;

		qsort(obj->pairs, obj->npairs, sizeof(JsonbPair), pair_compare);
		for (int i = 0; i < obj->npairs; i++)
		{
			/* of equal keys keep the last, which sorts last */
			if (i + 1 < obj->npairs &&
				FsJsonbKeyCompare(obj->pairs[i].key.val.string.val,
								  obj->pairs[i + 1].key.val.string.val) == 0)
				continue;
			obj->pairs[kept++] = obj->pairs[i];
		}
		obj->npairs = kept;
	}
	value.type = jbvObject;
	value.val.object.nPairs = obj->npairs;
	value.val.object.pairs = obj->pairs;
	return JsonbValueToJsonb(&value);
}
