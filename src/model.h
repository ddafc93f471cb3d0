/*-------------------------------------------------------------------------
 *
 * model.h
 *		Scoring models: their specs, compiled form, evaluation and the
 *		backend's cache of active versions.
 *
 *-------------------------------------------------------------------------
 */
#ifndef FRAUDSTREAM_MODEL_H
#define FRAUDSTREAM_MODEL_H

#include "lib/stringinfo.h"
#include "utils/jsonb.h"

typedef enum FsModelKind
{
	FS_MODEL_RULES,
	FS_MODEL_LOGISTIC
} FsModelKind;

typedef enum FsRuleOp
{
	FS_OP_GT,
	FS_OP_GE,
	FS_OP_LT,
	FS_OP_LE,
	FS_OP_EQ,
	FS_OP_NE
} FsRuleOp;

typedef struct FsModelRule
{
	char	   *name;
	int			feature;		/* index into FsModel.features */
	FsRuleOp	op;
	double		value;
	double		points;
} FsModelRule;

/*
 * One version of a model, compiled from its spec.  The features it reads
 * are listed once each, in first-mention order; weights and rules point
 * into that list.
 */
typedef struct FsModel
{
	char	   *name;
	int32		version;
	FsModelKind kind;
	double		threshold;
	double		bias;			/* logistic only */
	int			nfeatures;
	char	  **features;
	double	   *weights;		/* per feature; 0 when it has none */
	int			nrules;
	FsModelRule *rules;
	int			stats_slot;		/* in scorestats.c; -2: not looked up */
} FsModel;

/* How many of a score's feature contributions its reasons name. */
#define FS_TOP_CONTRIBUTIONS	3

/* Why a row got its score: the rules that fired, the largest contributions. */
typedef struct FsScoreReasons
{
	int			nfired;
	int		   *fired;			/* rule indexes, nrules entries available */
	int			ntop;
	int			top[FS_TOP_CONTRIBUTIONS];	/* feature indexes */
	double		top_contribution[FS_TOP_CONTRIBUTIONS];
} FsScoreReasons;

extern FsModel *FsModelCompile(const char *name, int32 version, Jsonb *spec,
							   MemoryContext cxt);
extern double FsModelScore(const FsModel *model, const double *values,
						   const bool *nulls, FsScoreReasons *reasons);
extern void FsModelReasonsJson(StringInfo buf, const FsModel *model,
							   const double *values, const bool *nulls,
							   const FsScoreReasons *reasons);
extern const FsModel *FsActiveModel(const char *name);

#endif							/* FRAUDSTREAM_MODEL_H */
