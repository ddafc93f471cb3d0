/*-------------------------------------------------------------------------
 *
 * featurejson.c
 *		A row's features as jsonb, built in binary form.
 *
 * feature_values(), row_features() and the batch path return features
 * as one jsonb object per row.  Printing it as text for jsonb_in to parse
 * would cost more than computing the features, so this module builds the
 * jsonb that jsonb_in would make of that text directly:
 *
 *	- The object's keys never change, so a template is made once, by
 *	  JsonbValueToJsonb on an object with every value null: its header,
 *	  its keys' entries and the keys themselves are those of every row.
 *	  Per row, the values' entries and data are written after them, as
 *	  convertJsonbObject would (numbers aligned to 4 bytes, an offset
 *	  instead of a length every JB_OFFSET_STRIDE entries).
 *	- A number is what jsonb_in makes of float8out's text: the shortest
 *	  decimal that reads back as the double (double_to_shortest_decimal),
 *	  as a numeric whose display scale is the decimal's digits after the
 *	  point.  The numeric is written in its on-disk format (base 10000
 *	  digits, no leading or trailing zero digits, the 2-byte header when
 *	  scale and weight fit it), the form numeric.c's make_result gives.
 *	  Counts and distinct counts are integers; NaN and infinities null.
 *	  With extra_float_digits <= 0, float8out prints fewer digits, and
 *	  the number goes through float8out and numeric_in instead.  Each
 *	  pair keeps the last number it wrote: consecutive rows often repeat
 *	  one (a maximum, a count).
 *
 * Both formats are PostgreSQL's on-disk formats, fixed for pg_upgrade.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "utils/builtins.h"
#include "utils/float.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"

#include "featurejson.h"

/* numeric's on-disk header (numeric.c) */
#define NUM_SHORT				0x8000
#define NUM_SHORT_SIGN_MASK		0x2000
#define NUM_SHORT_DSCALE_SHIFT	7
#define NUM_SHORT_DSCALE_MAX	0x3F
#define NUM_SHORT_WEIGHT_SIGN	0x0040
#define NUM_SHORT_WEIGHT_MASK	0x003F
#define NUM_SHORT_WEIGHT_MAX	63
#define NUM_SHORT_WEIGHT_MIN	(-64)
#define NUM_NEG					0x4000
#define NUM_DSCALE_MASK			0x3FFF
#define NUM_NBASE				10000

/*
 * Largest numeric written here: 20 significant digits at any exponent are
 * 6 base-10000 digits; float8out's text with extra_float_digits <= 0 has
 * fewer.
 */
#define NUM_MAX_BYTES			(VARHDRSZ + 2 * sizeof(int16) + 8 * sizeof(int16))

/* The last number written for a pair: rows in a row often repeat it. */
typedef struct NumericCache
{
	double		x;
	int			size;			/* 0: none */
	char		bytes[NUM_MAX_BYTES];
} NumericCache;

struct FsJsonbTemplate
{
	int			npairs;
	Jsonb	   *empty;			/* every value null */
	int		   *order;			/* pair i holds the caller's value order[i] */
	bool	   *integer;		/* per pair: written as an integer */
	NumericCache *cache;		/* per pair */
};

/*
 * Write the numeric of m * 10^exp10 with the display scale numeric_in
 * gives that decimal, max(0, -exp10), as make_result builds it.  Returns
 * its size.
 */
static int
write_numeric(char *dest, int64 m, int exp10)
{
	static const uint64 pow10[] = {1, 10, 100, 1000, 10000};
	uint64		u = m < 0 ? -(uint64) m : (uint64) m;
	int			dscale = exp10 < 0 ? -exp10 : 0;
	int			zeros;			/* decimal zeros below u in its lowest group */
	int			zero_groups;	/* whole zero groups below that */
	int			scale4;			/* digits after the point: a multiple of 4 */
	int16		groups[8];		/* base-10000 digits of u, lowest first */
	int			ngroups = 0;
	int			lo = 0;
	int			weight;
	int			size;
	char	   *p;

	if (exp10 < 0)
	{
		zeros = (4 - dscale % 4) % 4;
		zero_groups = 0;
		scale4 = dscale + zeros;
	}
	else
	{
		zeros = exp10 % 4;
		zero_groups = exp10 / 4;
		scale4 = 0;
	}
	if (u != 0)
	{
		groups[ngroups++] = (int16) ((u % pow10[4 - zeros]) * pow10[zeros]);
		u /= pow10[4 - zeros];
		while (u != 0)
		{
			groups[ngroups++] = (int16) (u % NUM_NBASE);
			u /= NUM_NBASE;
		}
	}
	/* no trailing or leading zero digits; zero has weight 0 and no sign */
	while (lo < ngroups && groups[lo] == 0)
		lo++;
	weight = zero_groups + ngroups - 1 - scale4 / 4;
	if (lo == ngroups)
	{
		weight = 0;
		m = 0;
	}

	p = dest + VARHDRSZ;
	if (dscale <= NUM_SHORT_DSCALE_MAX &&
		weight <= NUM_SHORT_WEIGHT_MAX && weight >= NUM_SHORT_WEIGHT_MIN)
	{
		uint16		header = NUM_SHORT | (m < 0 ? NUM_SHORT_SIGN_MASK : 0) |
			(uint16) (dscale << NUM_SHORT_DSCALE_SHIFT) |
			(weight < 0 ? NUM_SHORT_WEIGHT_SIGN : 0) | (weight & NUM_SHORT_WEIGHT_MASK);

		memcpy(p, &header, sizeof(uint16));
		p += sizeof(uint16);
	}
	else
	{
		uint16		sign_dscale = (m < 0 ? NUM_NEG : 0) | (dscale & NUM_DSCALE_MASK);
		int16		w = (int16) weight;

		memcpy(p, &sign_dscale, sizeof(uint16));
		memcpy(p + sizeof(uint16), &w, sizeof(int16));
		p += 2 * sizeof(uint16);
	}
	for (int g = ngroups - 1; g >= lo; g--)
	{
		memcpy(p, &groups[g], sizeof(int16));
		p += sizeof(int16);
	}
	size = p - dest;
	SET_VARSIZE(dest, size);
	return size;
}

/*
 * Write the numeric jsonb_in makes of float8out(x): the shortest decimal
 * that reads back as x, parsed from Ryu's output ("-1.2345e-07", "123.45").
 */
static int
write_float8_numeric(char *dest, double x)
{
	char		buf[DOUBLE_SHORTEST_DECIMAL_LEN];
	int			len = double_to_shortest_decimal_bufn(x, buf);
	int64		m = 0;
	int			exp10 = 0;
	int			i = buf[0] == '-' ? 1 : 0;
	bool		point = false;

	for (; i < len && buf[i] != 'e'; i++)
	{
		if (buf[i] == '.')
			point = true;
		else
		{
			m = m * 10 + (buf[i] - '0');
			if (point)
				exp10--;
		}
	}
	if (i < len)
	{
		buf[len] = '\0';
		exp10 += atoi(buf + i + 1);
	}
	return write_numeric(dest, buf[0] == '-' ? -m : m, exp10);
}

/* jsonb's order of object keys: shorter first, then bytewise. */
static int
compare_keys(const void *a, const void *b, void *arg)
{
	const char *const *names = arg;
	const char *na = names[*(const int *) a];
	const char *nb = names[*(const int *) b];
	size_t		la = strlen(na);
	size_t		lb = strlen(nb);

	if (la != lb)
		return la < lb ? -1 : 1;
	return memcmp(na, nb, la);
}

/*
 * A template for objects with these keys (distinct), in the current memory
 * context.  integer[i]: value i is a count, written as an integer.
 */
FsJsonbTemplate *
FsJsonbTemplateCreate(int n, const char *const *names, const bool *integer)
{
	FsJsonbTemplate *t = palloc(sizeof(FsJsonbTemplate));
	JsonbPair  *pairs = palloc(sizeof(JsonbPair) * Max(n, 1));
	JsonbValue	object;

	t->npairs = n;
	t->order = palloc(sizeof(int) * Max(n, 1));
	t->integer = palloc(sizeof(bool) * Max(n, 1));
	t->cache = palloc0(sizeof(NumericCache) * Max(n, 1));
	for (int i = 0; i < n; i++)
		t->order[i] = i;
	qsort_arg(t->order, n, sizeof(int), compare_keys, (void *) names);
	for (int i = 0; i < n; i++)
	{
		pairs[i].key.type = jbvString;
		pairs[i].key.val.string.val = (char *) names[t->order[i]];
		pairs[i].key.val.string.len = strlen(names[t->order[i]]);
		pairs[i].value.type = jbvNull;
		pairs[i].order = i;
		t->integer[i] = integer[t->order[i]];
	}
	object.type = jbvObject;
	object.val.object.nPairs = n;
	object.val.object.pairs = pairs;
	t->empty = JsonbValueToJsonb(&object);
	pfree(pairs);
	return t;
}

/*
 * The object of one row: values[i] / nulls[i] for names[i] of the
 * template, as jsonb_in would read them printed by float8out.
 */
Jsonb *
FsJsonbFromFeatures(FsJsonbTemplate *t, const double *values, const bool *nulls)
{
	Size		empty_len = VARSIZE(t->empty);
	char	   *buf = palloc(empty_len + t->npairs * (NUM_MAX_BYTES + sizeof(int32)));
	JEntry	   *entries = (JEntry *) (buf + VARHDRSZ + sizeof(uint32)) + t->npairs;
	Size		len = empty_len;
	uint32		total;

	memcpy(buf, t->empty, empty_len);
	/* the data so far: the keys, after the header and every entry */
	total = empty_len - (VARHDRSZ + sizeof(uint32) + 2 * t->npairs * sizeof(JEntry));
	for (int i = 0; i < t->npairs; i++)
	{
		double		x = values[t->order[i]];
		JEntry		meta;

		if (nulls[t->order[i]] || isnan(x) || isinf(x))
			meta = JENTRY_ISNULL;
		else
		{
			Size		pad = INTALIGN(len) - len;
			char	   *dest = buf + len + pad;
			int			size;

			memset(buf + len, 0, pad);
			if (t->cache[i].size > 0 && memcmp(&t->cache[i].x, &x, sizeof(double)) == 0)
			{
				size = t->cache[i].size;
				memcpy(dest, t->cache[i].bytes, size);
			}
			else
			{
				if (t->integer[i])
					size = write_numeric(dest, (int64) x, 0);
				else if (extra_float_digits > 0)
					size = write_float8_numeric(dest, x);
				else
				{
					Numeric		num = DatumGetNumeric(DirectFunctionCall3(numeric_in,
																		  CStringGetDatum(float8out_internal(x)),
																		  ObjectIdGetDatum(InvalidOid),
																		  Int32GetDatum(-1)));

					size = VARSIZE(num);
					Assert(size <= NUM_MAX_BYTES);
					memcpy(dest, num, size);
				}
				t->cache[i].x = x;
				t->cache[i].size = size;
				memcpy(t->cache[i].bytes, dest, size);
			}
			meta = JENTRY_ISNUMERIC | (uint32) (pad + size);
			len += pad + size;
		}
		total += JBE_OFFLENFLD(meta);
		if ((i + t->npairs) % JB_OFFSET_STRIDE == 0)
			meta = (meta & JENTRY_TYPEMASK) | total | JENTRY_HAS_OFF;
		memcpy(&entries[i], &meta, sizeof(JEntry));
	}
	SET_VARSIZE(buf, len);
	return (Jsonb *) buf;
}
