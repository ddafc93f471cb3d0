/*-------------------------------------------------------------------------
 *
 * featurejson.h
 *		A row's features as jsonb, built in binary form.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_FEATUREJSON_H
#define FRAUDSTREAM_FEATUREJSON_H

#include "utils/jsonb.h"

typedef struct FsJsonbTemplate FsJsonbTemplate;

extern FsJsonbTemplate *FsJsonbTemplateCreate(int n, const char *const *names,
											  const bool *integer);
extern Jsonb *FsJsonbFromFeatures(FsJsonbTemplate *t, const double *values,
								  const bool *nulls);

#endif							/* FRAUDSTREAM_FEATUREJSON_H */
