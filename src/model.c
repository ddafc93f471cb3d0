/*-------------------------------------------------------------------------
 *
 * model.c
 *		Scoring models: a spec (jsonb) is validated and compiled into an
 *		FsModel, which scores a row's feature values and says why.
 *
 * Two kinds of spec:
 *
 *	{"type": "rules", "threshold": t,
 *	 "rules": [{"name", "feature", "op", "value", "points"}, ...]}
 *		score = min(1, max(0, sum of the points of the rules that fire))
 *
 *	{"type": "logistic", "threshold": t, "bias": b,
 *	 "weights": {"feature": w, ...}, "rules": [...]}
 *		score = 1 / (1 + exp(-(b + sum of w * x + sum of fired points)))
 *
 * A rule fires when "feature op value" holds; op is one of >, >=, <, <=,
 * =, <>.  A NULL feature value (no history, a late event, a feature the
 * scored table cannot compute) fires no rule and contributes 0 to the
 * weighted sum, as a missing value imputed by 0.  The rules score is
 * clamped below at 0 as well as above at 1 (negative points could
 * otherwise give a negative score), so every score is in [0, 1].
 *
 * Validation happens here, at compile time, so that a model that deploys
 * can always score: every number finite, threshold in [0, 1], rule names
 * unique and non-empty, no key the spec format does not know (a typo like
 * "treshold" is an error, not a silently missing field).  Whether the
 * features exist is checked by the catalog (modelcatalog.c), which knows
 * them.
 *
 * Reasons: the fired rules in spec order, and the FS_TOP_CONTRIBUTIONS
 * features with the largest absolute contribution, where a feature's
 * contribution is w * x plus the points of the fired rules on it; zero
 * contributions are not reasons.  Ties go to the feature named first in
 * the spec.
 *
 * Locking: none; an FsModel is backend-local and read-only once compiled.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/numeric.h"

#include "model.h"

static const char *const op_names[] = {">", ">=", "<", "<=", "=", "<>"};

static void pg_attribute_noreturn()
spec_error(const char *name, const char *hint, const char *fmt,...)
pg_attribute_printf(3, 4);

/* Report an invalid spec of model "name". */
static void
spec_error(const char *name, const char *hint, const char *fmt,...)
{
	char		detail[512];
	va_list		args;

	va_start(args, fmt);
	vsnprintf(detail, sizeof(detail), fmt, args);
	va_end(args);
	detail[0] = pg_toupper((unsigned char) detail[0]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid spec for model \"%s\"", name),
			 errdetail("%s", detail),
			 hint ? errhint("%s", hint) : 0));
}

/* Every key of an object is one of "allowed". */
static void
check_keys(const char *name, JsonbContainer *obj, const char *const *allowed,
		   const char *where)
{
	JsonbIterator *it = JsonbIteratorInit(obj);
	JsonbValue	v;
	JsonbIteratorToken tok;

	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		bool		known = false;

		if (tok != WJB_KEY)
			continue;
		for (const char *const *a = allowed; *a != NULL; a++)
			if (strlen(*a) == (size_t) v.val.string.len &&
				memcmp(*a, v.val.string.val, v.val.string.len) == 0)
				known = true;
		if (!known)
			spec_error(name, "Check the spelling; see the model spec reference.",
					   "%s has an unknown key \"%.*s\".", where,
					   v.val.string.len, v.val.string.val);
	}
}

static JsonbValue *
get_key(JsonbContainer *obj, const char *key)
{
	return getKeyJsonValueFromContainer(obj, key, strlen(key), NULL);
}

/* A finite number at "key" of obj; required unless has_default. */
static double
get_number(const char *name, JsonbContainer *obj, const char *key,
		   const char *where, bool has_default, double default_value)
{
	JsonbValue *v = get_key(obj, key);
	double		d;

	if (v == NULL)
	{
		if (has_default)
			return default_value;
		spec_error(name, NULL, "%s has no \"%s\".", where, key);
	}
	if (v->type != jbvNumeric)
		spec_error(name, NULL, "\"%s\" of %s must be a number.", key, where);
	d = DatumGetFloat8(DirectFunctionCall1(numeric_float8_no_overflow,
										   NumericGetDatum(v->val.numeric)));
	if (!isfinite(d))
		spec_error(name, NULL, "\"%s\" of %s is not a finite number.", key, where);
	return d;
}

/* A non-empty string at "key" of obj, required. */
static char *
get_string(const char *name, JsonbContainer *obj, const char *key, const char *where)
{
	JsonbValue *v = get_key(obj, key);

	if (v == NULL)
		spec_error(name, NULL, "%s has no \"%s\".", where, key);
	if (v->type != jbvString || v->val.string.len == 0)
		spec_error(name, NULL, "\"%s\" of %s must be a non-empty string.", key, where);
	return pnstrdup(v->val.string.val, v->val.string.len);
}

/* The index of a feature in the model's list, added if new. */
static int
feature_index(FsModel *m, const char *feature, int *capacity)
{
	for (int i = 0; i < m->nfeatures; i++)
		if (strcmp(m->features[i], feature) == 0)
			return i;
	if (m->nfeatures == *capacity)
	{
		*capacity *= 2;
		m->features = repalloc(m->features, sizeof(char *) * *capacity);
		m->weights = repalloc(m->weights, sizeof(double) * *capacity);
	}
	m->features[m->nfeatures] = pstrdup(feature);
	m->weights[m->nfeatures] = 0.0;
	return m->nfeatures++;
}

static FsRuleOp
parse_op(const char *name, const char *op, const char *where)
{
	for (int i = 0; i < (int) lengthof(op_names); i++)
		if (strcmp(op, op_names[i]) == 0)
			return (FsRuleOp) i;
	spec_error(name, "op is one of >, >=, <, <=, =, <>.",
			   "%s has an unknown op \"%s\".", where, op);
}

static void
compile_rules(FsModel *m, JsonbValue *rules, int *capacity)
{
	static const char *const rule_keys[] = {"name", "feature", "op", "value", "points", NULL};
	int			n;

	if (rules->type != jbvBinary || !JsonContainerIsArray(rules->val.binary.data))
		spec_error(m->name, NULL, "\"rules\" must be an array.");
	n = JsonContainerSize(rules->val.binary.data);
	m->rules = palloc0(sizeof(FsModelRule) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		JsonbValue *rv = getIthJsonbValueFromContainer(rules->val.binary.data, i);
		FsModelRule *r = &m->rules[i];
		char		where[64];
		JsonbContainer *obj;

		snprintf(where, sizeof(where), "rule %d", i + 1);
		if (rv->type != jbvBinary || !JsonContainerIsObject(rv->val.binary.data))
			spec_error(m->name, NULL, "%s must be an object.", where);
		obj = rv->val.binary.data;
		check_keys(m->name, obj, rule_keys, where);
		r->name = get_string(m->name, obj, "name", where);
		for (int j = 0; j < i; j++)
			if (strcmp(m->rules[j].name, r->name) == 0)
				spec_error(m->name, "Give every rule its own name: reasons report rules by name.",
						   "Rules %d and %d are both named \"%s\".", j + 1, i + 1, r->name);
		r->feature = feature_index(m, get_string(m->name, obj, "feature", where), capacity);
		r->op = parse_op(m->name, get_string(m->name, obj, "op", where), where);
		r->value = get_number(m->name, obj, "value", where, false, 0);
		r->points = get_number(m->name, obj, "points", where, false, 0);
	}
	m->nrules = n;
}

static void
compile_weights(FsModel *m, JsonbValue *weights, int *capacity)
{
	JsonbIterator *it;
	JsonbValue	v;
	JsonbIteratorToken tok;

	if (weights->type != jbvBinary || !JsonContainerIsObject(weights->val.binary.data))
		spec_error(m->name, NULL, "\"weights\" must be an object of feature names and numbers.");
	it = JsonbIteratorInit(weights->val.binary.data);
	while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE)
	{
		char	   *feature;
		char		where[NAMEDATALEN + 32];

		if (tok != WJB_KEY)
			continue;
		feature = pnstrdup(v.val.string.val, v.val.string.len);
		snprintf(where, sizeof(where), "weights");
		m->weights[feature_index(m, feature, capacity)] =
			get_number(m->name, weights->val.binary.data, feature, where, false, 0);
	}
}

/*
 * Validate a spec and compile it into cxt.  Errors name what is wrong;
 * on success every number is finite.
 */
FsModel *
FsModelCompile(const char *name, int32 version, Jsonb *spec, MemoryContext cxt)
{
	static const char *const rules_keys[] = {"type", "threshold", "rules", NULL};
	static const char *const logistic_keys[] = {"type", "threshold", "bias", "weights", "rules", NULL};
	MemoryContext old = MemoryContextSwitchTo(cxt);
	FsModel    *m = palloc0(sizeof(FsModel));
	JsonbContainer *root = &spec->root;
	JsonbValue *rules;
	char	   *type;
	int			capacity = 8;

	m->name = pstrdup(name);
	m->version = version;
	m->stats_slot = -2;
	m->features = palloc(sizeof(char *) * capacity);
	m->weights = palloc(sizeof(double) * capacity);
	if (JB_ROOT_IS_SCALAR(spec) || !JB_ROOT_IS_OBJECT(spec))
		spec_error(name, "A spec is an object such as {\"type\": \"rules\", \"threshold\": 0.8, \"rules\": [...]}.",
				   "The spec is not a JSON object.");
	type = get_string(name, root, "type", "the spec");
	if (strcmp(type, "rules") == 0)
	{
		m->kind = FS_MODEL_RULES;
		check_keys(name, root, rules_keys, "the spec");
	}
	else if (strcmp(type, "logistic") == 0)
	{
		JsonbValue *weights = get_key(root, "weights");

		m->kind = FS_MODEL_LOGISTIC;
		check_keys(name, root, logistic_keys, "the spec");
		m->bias = get_number(name, root, "bias", "the spec", true, 0.0);
		if (weights == NULL)
			spec_error(name, NULL, "A logistic spec has no \"weights\".");
		compile_weights(m, weights, &capacity);
	}
	else
		spec_error(name, "type is \"rules\" or \"logistic\".",
				   "Unknown model type \"%s\".", type);
	m->threshold = get_number(name, root, "threshold", "the spec", false, 0);
	if (m->threshold < 0 || m->threshold > 1)
		spec_error(name, "Scores are between 0 and 1.",
				   "threshold %g is not between 0 and 1.", m->threshold);
	rules = get_key(root, "rules");
	if (rules != NULL)
		compile_rules(m, rules, &capacity);
	else if (m->kind == FS_MODEL_RULES)
		spec_error(name, NULL, "A rules spec has no \"rules\".");
	if (m->nfeatures == 0)
		spec_error(name, NULL, "The model reads no feature.");
	MemoryContextSwitchTo(old);
	return m;
}

static bool
rule_fires(const FsModelRule *r, double x)
{
	switch (r->op)
	{
		case FS_OP_GT:
			return x > r->value;
		case FS_OP_GE:
			return x >= r->value;
		case FS_OP_LT:
			return x < r->value;
		case FS_OP_LE:
			return x <= r->value;
		case FS_OP_EQ:
			return x == r->value;
		case FS_OP_NE:
			return x != r->value;
	}
	return false;
}

/* Keep the FS_TOP_CONTRIBUTIONS largest |contribution|s, in order. */
static void
note_contribution(FsScoreReasons *reasons, int feature, double contribution)
{
	int			pos;

	if (contribution == 0.0 || isnan(contribution))
		return;
	pos = reasons->ntop;
	while (pos > 0 && fabs(reasons->top_contribution[pos - 1]) < fabs(contribution))
		pos--;
	if (pos >= FS_TOP_CONTRIBUTIONS)
		return;
	if (reasons->ntop < FS_TOP_CONTRIBUTIONS)
		reasons->ntop++;
	for (int i = reasons->ntop - 1; i > pos; i--)
	{
		reasons->top[i] = reasons->top[i - 1];
		reasons->top_contribution[i] = reasons->top_contribution[i - 1];
	}
	reasons->top[pos] = feature;
	reasons->top_contribution[pos] = contribution;
}

/*
 * Score a row whose model features have these values (indexed like
 * model->features).  reasons->fired must have room for model->nrules.
 */
double
FsModelScore(const FsModel *model, const double *values, const bool *nulls,
			 FsScoreReasons *reasons)
{
	double		sum = model->kind == FS_MODEL_LOGISTIC ? model->bias : 0.0;
	double		contribution[64];
	double	   *contrib = model->nfeatures <= (int) lengthof(contribution)
		? contribution : palloc(sizeof(double) * model->nfeatures);

	reasons->nfired = 0;
	reasons->ntop = 0;
	for (int f = 0; f < model->nfeatures; f++)
	{
		contrib[f] = nulls[f] ? 0.0 : model->weights[f] * values[f];
		sum += contrib[f];
	}
	for (int i = 0; i < model->nrules; i++)
	{
		const FsModelRule *r = &model->rules[i];

		if (nulls[r->feature] || !rule_fires(r, values[r->feature]))
			continue;
		reasons->fired[reasons->nfired++] = i;
		contrib[r->feature] += r->points;
		sum += r->points;
	}
	for (int f = 0; f < model->nfeatures; f++)
		note_contribution(reasons, f, contrib[f]);
	if (contrib != contribution)
		pfree(contrib);
	if (model->kind == FS_MODEL_LOGISTIC)
		return 1.0 / (1.0 + exp(-sum));
	return Min(1.0, Max(0.0, sum));
}

/* Append a float8 as JSON: shortest exact form, null when not finite. */
static void
append_json_number(StringInfo buf, double d)
{
	if (isfinite(d))
	{
		char		num[32];

		double_to_shortest_decimal_buf(d, num);
		appendStringInfoString(buf, num);
	}
	else
		appendStringInfoString(buf, "null");
}

/*
 * Reasons as JSON: {"rules": [names], "top_features": [{"feature",
 * "value", "contribution"}, ...]}.
 */
void
FsModelReasonsJson(StringInfo buf, const FsModel *model, const double *values,
				   const bool *nulls, const FsScoreReasons *reasons)
{
	appendStringInfoString(buf, "{\"rules\": [");
	for (int i = 0; i < reasons->nfired; i++)
	{
		if (i > 0)
			appendStringInfoString(buf, ", ");
		escape_json(buf, model->rules[reasons->fired[i]].name);
	}
	appendStringInfoString(buf, "], \"top_features\": [");
	for (int i = 0; i < reasons->ntop; i++)
	{
		int			f = reasons->top[i];

		if (i > 0)
			appendStringInfoString(buf, ", ");
		appendStringInfoString(buf, "{\"feature\": ");
		escape_json(buf, model->features[f]);
		appendStringInfoString(buf, ", \"value\": ");
		if (nulls[f])
			appendStringInfoString(buf, "null");
		else
			append_json_number(buf, values[f]);
		appendStringInfoString(buf, ", \"contribution\": ");
		append_json_number(buf, reasons->top_contribution[i]);
		appendStringInfoChar(buf, '}');
	}
	appendStringInfoString(buf, "]}");
}
