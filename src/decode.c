/*-------------------------------------------------------------------------
 *
 * decode.c
 *		Decode Kafka message payloads (JSON objects, CSV records) into rows
 *		of a target table.
 *
 * Decoding has two phases, so that a bad message costs no subtransaction
 * when it can be recognised without PostgreSQL's help:
 *
 *	1. FsDecodeParse checks size and UTF-8 and splits the payload into one
 *	   text value per target column.  It never raises an error: malformed
 *	   input returns false with a message, and the worker rejects the
 *	   message at once.  JSON is parsed strictly (RFC 8259), by a small
 *	   single-pass parser of our own that makes one allocation per message
 *	   and none per field (keys without escapes are matched in place);
 *	   keys name columns, unknown keys are skipped, the last of duplicate
 *	   keys wins, nested objects and arrays are passed on as their JSON
 *	   text (for json and jsonb columns).  The parser checks UTF-8 where
 *	   JSON allows it, in strings, as it copies them, so a good message is
 *	   read once; a message that fails is checked whole, so that invalid
 *	   UTF-8 is reported as such.  A CSV record is checked for UTF-8
 *	   first, then its fields map to the "columns" option's order, or to
 *	   the table's column order; an unquoted empty field is NULL, as in
 *	   COPY.  Each value is written
 *	   NUL-terminated after a 4-byte varlena header, so that a text column
 *	   takes it as its datum without a copy.
 *	2. FsDecodeValues turns the text into datums with each column type's
 *	   input function, fills absent columns from their defaults (NULL
 *	   without one) and Kafka metadata into the columns asked for.  Input
 *	   functions raise errors (a wrong type); the worker runs this phase
 *	   inside a subtransaction and rejects the message that fails.  For
 *	   timestamptz, numeric and inet, the common text forms take an exact
 *	   shortcut (fastinput.c) that builds the input function's datum
 *	   without its general parser; other forms go to the input function.
 *
 * A decoder is built per batch, inside the batch's transaction, from the
 * target's current tuple descriptor, so ALTER TABLE on a target takes
 * effect at the next batch.
 *
 * Locking: none; the caller holds a lock on the target.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "optimizer/optimizer.h"
#include "rewrite/rewriteHandler.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "decode.h"
#include "fastinput.h"

/* JSON nesting deeper than this is rejected rather than recursed into. */
#define FS_JSON_MAX_DEPTH	64

int			FsMaxMessageBytes = 1024 * 1024;

struct FsDecoder
{
	FsFormat	format;
	char		delimiter;
	int			natts;
	TupleDesc	tupdesc;
	const char **names;			/* column names, NULL if not settable */
	int		   *namelens;
	FmgrInfo   *infuncs;
	Oid		   *ioparams;
	int32	   *typmods;
	bool	   *plain_text;		/* text column: no input function needed */
	FsFastInput *fast;			/* shortcut for the input function, if any */
	ExprState **defaults;		/* default expression per column, or NULL */
	bool		volatile_defaults;	/* one of them is volatile (not nextval) */
	int		   *csv_atts;		/* CSV field i goes to column csv_atts[i] */
	int			ncsv;
	int			meta_partition;	/* columns for Kafka metadata, -1 none */
	int			meta_offset;
	int			meta_timestamp;
	int			meta_key;
	bool		convert;		/* database encoding is not UTF-8 */
};

/* State of one FsDecodeParse call. */
typedef struct JsonCursor
{
	const char *p;
	const char *end;
	const char *start;
	char	   *out;			/* where values go */
	char	   *out_end;
	char	   *error;
} JsonCursor;

/*
 * Room for the values of a message of "len" bytes: per value at most
 * VALUE_OVERHEAD bytes (alignment, varlena header, NUL) besides its text,
 * which is never longer than its input.
 */
#define VALUE_OVERHEAD	(VARHDRSZ + ALIGNOF_INT)
#define VALUES_ROOM(len, nvalues)	((len) + ((Size) (nvalues) + 1) * VALUE_OVERHEAD)

/*
 * Bytes that end a run of plain string content: quote, backslash, controls,
 * and the first byte of a multibyte character, which is validated there.
 */
static bool json_special[256];

void
FsDecodeInit(void)
{
	for (int ch = 0; ch < 256; ch++)
		json_special[ch] = ch < 0x20 || ch == '"' || ch == '\\' || ch >= 0x80;
	DefineCustomIntVariable("fraudstream.max_message_bytes",
							"Largest Kafka message payload a source decodes; larger ones are rejected.",
							NULL,
							&FsMaxMessageBytes,
							1024 * 1024, 1024, MaxAllocSize / 2,
							PGC_SIGHUP, GUC_UNIT_BYTE,
							NULL, NULL, NULL);
}

/* memcmp(a, b, len) == 0, inline: column names are short. */
static inline bool
same_bytes(const char *a, const char *b, int len)
{
	for (int k = 0; k < len; k++)
		if (a[k] != b[k])
			return false;
	return true;
}

/*
 * Column index of a settable column named "name", or -1.  The search
 * starts at "hint", the column after the previous key's: keys usually come
 * in column order, so the first comparison is usually the match.
 */
static int
find_column(FsDecoder *d, const char *name, int len, int hint)
{
	int			i = hint < d->natts ? hint : 0;

	for (int n = 0; n < d->natts; n++)
	{
		if (d->names[i] && d->namelens[i] == len && same_bytes(d->names[i], name, len))
			return i;
		if (++i == d->natts)
			i = 0;
	}
	return -1;
}

/* Like find_column, for option values: an unknown column is an error. */
static int
option_column(FsDecoder *d, const char *option, const char *name)
{
	int			i;

	if (name == NULL)
		return -1;
	i = find_column(d, name, strlen(name), 0);
	if (i < 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" named by source option \"%s\" does not exist", name, option),
				 errdetail("The target table has no settable column of that name."),
				 errhint("Name a column of the target table that is not generated.")));
	return i;
}

/*
 * Prepare decoding into "rel": look up each column's input function and
 * default, and resolve the column names the options give.  Errors for
 * options that name unknown columns.
 */
FsDecoder *
FsDecoderCreate(Relation rel, FsFormat format, FsSourceOptions *opts)
{
	FsDecoder  *d = palloc0(sizeof(FsDecoder));
	TupleDesc	tupdesc = RelationGetDescr(rel);
	int			natts = tupdesc->natts;

	d->format = format;
	d->delimiter = opts->delimiter;
	d->natts = natts;
	d->tupdesc = tupdesc;
	d->names = palloc0(natts * sizeof(char *));
	d->namelens = palloc0(natts * sizeof(int));
	d->infuncs = palloc0(natts * sizeof(FmgrInfo));
	d->ioparams = palloc0(natts * sizeof(Oid));
	d->typmods = palloc0(natts * sizeof(int32));
	d->plain_text = palloc0(natts * sizeof(bool));
	d->fast = palloc0(natts * sizeof(FsFastInput));
	d->defaults = palloc0(natts * sizeof(ExprState *));
	d->convert = GetDatabaseEncoding() != PG_UTF8 &&
		GetDatabaseEncoding() != PG_SQL_ASCII;

	for (int i = 0; i < natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(tupdesc, i);
		Oid			infunc;
		Node	   *defexpr;

		if (att->attisdropped || att->attgenerated)
			continue;
		d->names[i] = NameStr(att->attname);
		d->namelens[i] = strlen(d->names[i]);
		getTypeInputInfo(att->atttypid, &infunc, &d->ioparams[i]);
		fmgr_info(infunc, &d->infuncs[i]);
		d->typmods[i] = att->atttypmod;
		d->plain_text[i] = att->atttypid == TEXTOID && !d->convert;
		d->fast[i] = FsFastInputFor(infunc, att->atttypmod);

		defexpr = build_column_default(rel, i + 1);
		if (defexpr != NULL)
		{
			defexpr = (Node *) expression_planner((Expr *) defexpr);
			d->defaults[i] = ExecInitExpr((Expr *) defexpr, NULL);
			if (contain_volatile_functions_not_nextval(defexpr))
				d->volatile_defaults = true;
		}
	}

	if (format == FS_FORMAT_CSV)
	{
		ListCell   *lc;

		d->csv_atts = palloc(natts * sizeof(int) + 1);
		if (opts->columns != NIL)
		{
			d->csv_atts = palloc(list_length(opts->columns) * sizeof(int));
			foreach(lc, opts->columns)
				d->csv_atts[d->ncsv++] = option_column(d, "columns", lfirst(lc));
		}
		else
		{
			for (int i = 0; i < natts; i++)
				if (d->names[i])
					d->csv_atts[d->ncsv++] = i;
		}
	}

	d->meta_partition = option_column(d, "partition_column", opts->partition_column);
	d->meta_offset = option_column(d, "offset_column", opts->offset_column);
	d->meta_timestamp = option_column(d, "timestamp_column", opts->timestamp_column);
	d->meta_key = option_column(d, "key_column", opts->key_column);
	return d;
}

/*
 * Whether a column default is volatile (nextval aside): such a default
 * might read the target table, which must then see every row inserted
 * before, so rows cannot wait in a multi-insert buffer (as in COPY).
 */
bool
FsDecoderVolatileDefaults(FsDecoder *d)
{
	return d->volatile_defaults;
}

/* Whether rows take the Kafka timestamp (FsKafkaMeta.timestamp_ms). */
bool
FsDecoderUsesTimestamp(FsDecoder *d)
{
	return d->meta_timestamp >= 0;
}

/* ---------------------------------------------------------------------
 * Phase 1: JSON
 * ---------------------------------------------------------------------
 */

static bool
json_fail(JsonCursor *c, const char *what)
{
	if (c->error == NULL)
	{
		if (c->p >= c->end)
			c->error = psprintf("malformed JSON: %s at end of input", what);
		else
			c->error = psprintf("malformed JSON: %s at byte %d",
								what, (int) (c->p - c->start));
	}
	return false;
}

static inline void
json_skip_ws(JsonCursor *c)
{
	while (c->p < c->end &&
		   (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
		c->p++;
}

static int
hex_digit(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

/* Four hex digits of a \u escape. */
static bool
json_read_hex4(JsonCursor *c, pg_wchar *out)
{
	pg_wchar	v = 0;

	if (c->end - c->p < 4)
		return json_fail(c, "truncated \\u escape");
	for (int i = 0; i < 4; i++)
	{
		int			h = hex_digit(c->p[i]);

		if (h < 0)
			return json_fail(c, "invalid \\u escape");
		v = (v << 4) | h;
	}
	c->p += 4;
	*out = v;
	return true;
}

/*
 * Parse a string (c->p at the opening quote).  With "dest", write its
 * unescaped UTF-8 text there, NUL-terminated, and advance *dest.
 */
static bool
json_string(JsonCursor *c, char **dest, int *len)
{
	char	   *o = dest ? *dest : NULL;
	char	   *o0 = o;

	c->p++;						/* opening quote */
	for (;;)
	{
		const char *run = c->p;

		/* copy the longest run without quote, backslash or control char */
		while (c->p < c->end && !json_special[(unsigned char) *c->p])
			c->p++;
		if (o && c->p > run)
		{
			memcpy(o, run, c->p - run);
			o += c->p - run;
		}
		if (c->p >= c->end)
			return json_fail(c, "unterminated string");
		if (*c->p == '"')
		{
			c->p++;
			break;
		}
		if ((unsigned char) *c->p >= 0x80)
		{
			/* a multibyte character: valid UTF-8, as pg_verify_mbstr checks */
			int			l = pg_utf_mblen((const unsigned char *) c->p);

			if (c->end - c->p < l || !pg_utf8_islegal((const unsigned char *) c->p, l))
				return json_fail(c, "invalid UTF-8");
			if (o)
			{
				memcpy(o, c->p, l);
				o += l;
			}
			c->p += l;
			continue;
		}
		if ((unsigned char) *c->p < 0x20)
			return json_fail(c, "control character in string");

		/* backslash escape */
		c->p++;
		if (c->p >= c->end)
			return json_fail(c, "unterminated string");
		switch (*c->p++)
		{
			case '"':
				if (o)
					*o++ = '"';
				break;
			case '\\':
				if (o)
					*o++ = '\\';
				break;
			case '/':
				if (o)
					*o++ = '/';
				break;
			case 'b':
				if (o)
					*o++ = '\b';
				break;
			case 'f':
				if (o)
					*o++ = '\f';
				break;
			case 'n':
				if (o)
					*o++ = '\n';
				break;
			case 'r':
				if (o)
					*o++ = '\r';
				break;
			case 't':
				if (o)
					*o++ = '\t';
				break;
			case 'u':
				{
					pg_wchar	cp;

					if (!json_read_hex4(c, &cp))
						return false;
					if (cp >= 0xD800 && cp <= 0xDBFF)
					{
						pg_wchar	lo;

						if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
							return json_fail(c, "unpaired Unicode surrogate");
						c->p += 2;
						if (!json_read_hex4(c, &lo))
							return false;
						if (lo < 0xDC00 || lo > 0xDFFF)
							return json_fail(c, "unpaired Unicode surrogate");
						cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
					}
					else if (cp >= 0xDC00 && cp <= 0xDFFF)
						return json_fail(c, "unpaired Unicode surrogate");
					if (cp == 0)
						return json_fail(c, "\\u0000 cannot be stored in text");
					if (o)
					{
						unicode_to_utf8(cp, (unsigned char *) o);
						o += pg_utf_mblen((unsigned char *) o);
					}
					break;
				}
			default:
				c->p--;
				return json_fail(c, "invalid escape");
		}
	}
	if (o)
	{
		*o++ = '\0';
		if (len)
			*len = (int) (o - o0 - 1);
		*dest = o;
	}
	return true;
}

/* Parse a number (RFC 8259 grammar). */
static bool
json_number(JsonCursor *c)
{
	const char *p = c->p;

	if (p < c->end && *p == '-')
		p++;
	if (p >= c->end || !isdigit((unsigned char) *p))
		return json_fail(c, "invalid number");
	if (*p == '0')
		p++;
	else
		while (p < c->end && isdigit((unsigned char) *p))
			p++;
	if (p < c->end && *p == '.')
	{
		p++;
		if (p >= c->end || !isdigit((unsigned char) *p))
			return json_fail(c, "invalid number");
		while (p < c->end && isdigit((unsigned char) *p))
			p++;
	}
	if (p < c->end && (*p == 'e' || *p == 'E'))
	{
		p++;
		if (p < c->end && (*p == '+' || *p == '-'))
			p++;
		if (p >= c->end || !isdigit((unsigned char) *p))
			return json_fail(c, "invalid number");
		while (p < c->end && isdigit((unsigned char) *p))
			p++;
	}
	c->p = p;
	return true;
}

static bool
json_literal(JsonCursor *c, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (c->end - c->p) < n || memcmp(c->p, word, n) != 0)
		return json_fail(c, "invalid literal");
	c->p += n;
	return true;
}

/* Validate any value without keeping it (used for nested values). */
static bool
json_skip_value(JsonCursor *c, int depth)
{
	json_skip_ws(c);
	if (c->p >= c->end)
		return json_fail(c, "value expected");
	if (depth > FS_JSON_MAX_DEPTH)
		return json_fail(c, "nesting too deep");
	switch (*c->p)
	{
		case '"':
			return json_string(c, NULL, NULL);
		case 't':
			return json_literal(c, "true");
		case 'f':
			return json_literal(c, "false");
		case 'n':
			return json_literal(c, "null");
		case '{':
		case '[':
			{
				char		close = *c->p == '{' ? '}' : ']';
				bool		object = close == '}';

				c->p++;
				json_skip_ws(c);
				if (c->p < c->end && *c->p == close)
				{
					c->p++;
					return true;
				}
				for (;;)
				{
					if (object)
					{
						json_skip_ws(c);
						if (c->p >= c->end || *c->p != '"')
							return json_fail(c, "object key expected");
						if (!json_string(c, NULL, NULL))
							return false;
						json_skip_ws(c);
						if (c->p >= c->end || *c->p != ':')
							return json_fail(c, "':' expected");
						c->p++;
					}
					if (!json_skip_value(c, depth + 1))
						return false;
					json_skip_ws(c);
					if (c->p < c->end && *c->p == ',')
					{
						c->p++;
						continue;
					}
					if (c->p < c->end && *c->p == close)
					{
						c->p++;
						return true;
					}
					return json_fail(c, object ? "',' or '}' expected" : "',' or ']' expected");
				}
			}
		default:
			return json_number(c);
	}
}

/*
 * Where the next value's text goes: after a 4-byte aligned varlena header
 * (see the file header), with room for maxlen bytes and a NUL.  Only a
 * message whose keys repeat can need more than the room reserved for it;
 * the value and the rest of the message's values then go to a chunk of
 * their own.
 */
static char *
value_begin(JsonCursor *c, Size maxlen)
{
	char	   *hdr = (char *) TYPEALIGN(ALIGNOF_INT, c->out);

	if (hdr + VARHDRSZ + maxlen + 1 > c->out_end)
	{
		Size		room = VALUES_ROOM(maxlen + (c->end - c->p), 8);

		hdr = palloc(room);
		c->out_end = hdr + room;
	}
	return hdr + VARHDRSZ;
}

/* End the value begun at "text", "len" bytes long: its NUL and header. */
static void
value_end(JsonCursor *c, char *text, Size len)
{
	text[len] = '\0';
	SET_VARSIZE(text - VARHDRSZ, len + VARHDRSZ);
	c->out = text + len + 1;
}

/*
 * Parse an object key (c->p at its opening quote).  A key without escapes
 * is returned in place; one with escapes is unescaped into *keybuf,
 * allocated on first use.
 */
static bool
json_key(JsonCursor *c, char **keybuf, const char **key, int *klen)
{
	const char *q = c->p + 1;
	char	   *k;

	while (q < c->end && !json_special[(unsigned char) *q])
		q++;
	if (q < c->end && *q == '"')
	{
		*key = c->p + 1;
		*klen = (int) (q - c->p - 1);
		c->p = q + 1;
		return true;
	}
	if (*keybuf == NULL)
		*keybuf = palloc(c->end - c->start + 1);
	k = *keybuf;
	*key = k;
	return json_string(c, &k, klen);
}

/* Parse a top-level JSON object into per-column text values. */
static bool
parse_json(FsDecoder *d, const char *data, size_t len, FsParsed *out,
		   char *room, Size roomsize, char **error)
{
	JsonCursor	c;
	int			hint = 0;
	char	   *keybuf = NULL;

	c.p = c.start = data;
	c.end = data + len;
	c.out = room;
	c.out_end = room + roomsize;
	c.error = NULL;

	json_skip_ws(&c);
	if (c.p >= c.end || *c.p != '{')
	{
		json_fail(&c, "a JSON object is expected");
		goto fail;
	}
	c.p++;
	json_skip_ws(&c);
	if (c.p < c.end && *c.p == '}')
		c.p++;
	else
	{
		for (;;)
		{
			const char *key;
			int			klen = 0;
			int			att;

			json_skip_ws(&c);
			if (c.p >= c.end || *c.p != '"')
			{
				json_fail(&c, "object key expected");
				goto fail;
			}
			if (!json_key(&c, &keybuf, &key, &klen))
				goto fail;
			json_skip_ws(&c);
			if (c.p >= c.end || *c.p != ':')
			{
				json_fail(&c, "':' expected");
				goto fail;
			}
			c.p++;
			json_skip_ws(&c);
			if (c.p >= c.end)
			{
				json_fail(&c, "value expected");
				goto fail;
			}

			att = find_column(d, key, klen, hint);
			if (att < 0)
			{
				if (!json_skip_value(&c, 1))
					goto fail;
			}
			else
			{
				hint = att + 1;
				if (*c.p == '"')
				{
					char	   *v = value_begin(&c, c.end - c.p);
					char	   *o = v;
					int			vlen;

					if (!json_string(&c, &o, &vlen))
						goto fail;
					value_end(&c, v, vlen);
					out->value[att] = v;
					out->state[att] = FS_FIELD_VALUE;
				}
				else if (*c.p == 'n')
				{
					if (!json_literal(&c, "null"))
						goto fail;
					out->state[att] = FS_FIELD_NULL;
				}
				else
				{
					/* number, boolean, object, array: keep the JSON text */
					const char *v0 = c.p;
					char	   *v;

					if (!json_skip_value(&c, 1))
						goto fail;
					v = value_begin(&c, c.p - v0);
					memcpy(v, v0, c.p - v0);
					value_end(&c, v, c.p - v0);
					out->value[att] = v;
					out->state[att] = FS_FIELD_VALUE;
				}
			}
			json_skip_ws(&c);
			if (c.p < c.end && *c.p == ',')
			{
				c.p++;
				continue;
			}
			if (c.p < c.end && *c.p == '}')
			{
				c.p++;
				break;
			}
			json_fail(&c, "',' or '}' expected");
			goto fail;
		}
	}
	json_skip_ws(&c);
	if (c.p != c.end)
	{
		json_fail(&c, "trailing characters after the object");
		goto fail;
	}
	if (keybuf)
		pfree(keybuf);
	return true;

fail:
	if (keybuf)
		pfree(keybuf);
	*error = c.error;
	return false;
}

/* ---------------------------------------------------------------------
 * Phase 1: CSV
 * ---------------------------------------------------------------------
 */

/* Parse one CSV record (RFC 4180 quoting, COPY's NULL convention). */
static bool
parse_csv(FsDecoder *d, const char *data, size_t len, FsParsed *out,
		  char *room, char **error)
{
	const char *p = data;
	const char *end = data + len;
	char	   *o = room;
	int			field = 0;

	/* one trailing line break ends the record */
	if (end > p && end[-1] == '\n')
		end--;
	if (end > p && end[-1] == '\r')
		end--;

	/*
	 * At most ncsv + 1 fields are written (one more is an error), each no
	 * longer than its input: the room is VALUES_ROOM(len, ncsv + 1).
	 */
	for (;;)
	{
		char	   *v;
		bool		quoted = false;

		o = (char *) TYPEALIGN(ALIGNOF_INT, o) + VARHDRSZ;
		v = o;

		if (p < end && *p == '"')
		{
			quoted = true;
			p++;
			for (;;)
			{
				if (p >= end)
				{
					*error = psprintf("malformed CSV: unterminated quoted field %d", field + 1);
					return false;
				}
				if (*p == '"')
				{
					if (p + 1 < end && p[1] == '"')
					{
						*o++ = '"';
						p += 2;
						continue;
					}
					p++;
					break;
				}
				*o++ = *p++;
			}
			if (p < end && *p != d->delimiter)
			{
				*error = psprintf("malformed CSV: unexpected character after quoted field %d", field + 1);
				return false;
			}
		}
		else
		{
			while (p < end && *p != d->delimiter)
			{
				if (*p == '"' || *p == '\n' || *p == '\r')
				{
					*error = psprintf("malformed CSV: quote or line break inside unquoted field %d", field + 1);
					return false;
				}
				*o++ = *p++;
			}
		}
		SET_VARSIZE(v - VARHDRSZ, (o - v) + VARHDRSZ);
		*o++ = '\0';

		if (field >= d->ncsv)
		{
			*error = psprintf("malformed CSV: more than the %d fields declared", d->ncsv);
			return false;
		}
		else
		{
			int			att = d->csv_atts[field];

			if (!quoted && v[0] == '\0')
				out->state[att] = FS_FIELD_NULL;
			else
			{
				out->state[att] = FS_FIELD_VALUE;
				out->value[att] = v;
			}
		}
		field++;
		if (p >= end)
			break;
		p++;					/* delimiter */
	}
	return true;
}

/*
 * Phase 1: split a payload into per-column text.  Never raises an error
 * for bad input: returns false with *error set instead.
 */
bool
FsDecodeParse(FsDecoder *d, const char *data, size_t len, FsParsed *out,
			  char **error)
{
	Size		arrays = MAXALIGN(d->natts * sizeof(char *)) + MAXALIGN(d->natts);
	Size		roomsize;
	char	   *mem;

	*error = NULL;
	out->state = NULL;
	out->value = NULL;
	if (data == NULL)
	{
		*error = pstrdup("empty message (no payload)");
		return false;
	}
	if (len > (size_t) FsMaxMessageBytes)
	{
		*error = psprintf("message of %zu bytes exceeds fraudstream.max_message_bytes (%d)",
						  len, FsMaxMessageBytes);
		return false;
	}
	/* JSON strings are checked as they are parsed (see json_string) */
	if (d->format == FS_FORMAT_CSV && !pg_verify_mbstr(PG_UTF8, data, (int) len, true))
	{
		*error = pstrdup("invalid UTF-8 in message");
		return false;
	}

	/* one allocation: value pointers, states, then the values' text */
	roomsize = VALUES_ROOM(len, d->format == FS_FORMAT_JSON ? d->natts : d->ncsv + 1);
	mem = palloc(arrays + roomsize);
	out->value = (char **) mem;
	out->state = (uint8 *) (mem + MAXALIGN(d->natts * sizeof(char *)));
	memset(out->state, 0, d->natts * sizeof(uint8));
	if (d->format == FS_FORMAT_CSV)
		return parse_csv(d, data, len, out, mem + arrays, error);
	if (parse_json(d, data, len, out, mem + arrays, roomsize, error))
		return true;

	/*
	 * Outside strings, a byte that is not ASCII (or is NUL) is a syntax
	 * error; whatever the parser stopped at, invalid UTF-8 anywhere is the
	 * message's fault first.
	 */
	if (!pg_verify_mbstr(PG_UTF8, data, (int) len, true))
	{
		if (*error)
			pfree(*error);
		*error = pstrdup("invalid UTF-8 in message");
	}
	return false;
}

/* ---------------------------------------------------------------------
 * Phase 2: datums
 * ---------------------------------------------------------------------
 */

/* Text through column i's input function (NULL text: NULL or domain check). */
static Datum
column_input(FsDecoder *d, int i, char *text, bool *isnull)
{
	*isnull = text == NULL;
	if (text && d->convert)
		text = pg_any_to_server(text, strlen(text), PG_UTF8);
	if (text && d->plain_text[i])
		return PointerGetDatum(cstring_to_text(text));
	return InputFunctionCall(&d->infuncs[i], text, d->ioparams[i], d->typmods[i]);
}

/*
 * A parsed value for column i: a text column takes the text in place
 * (it is preceded by its varlena header), other types go through their
 * input function, or its exact shortcut when the text has a form the
 * shortcut reads (fastinput.c; its forms are ASCII, the same in any
 * server encoding).
 */
static inline Datum
parsed_input(FsDecoder *d, int i, char *text, bool *isnull)
{
	Datum		value;

	if (d->plain_text[i])
	{
		*isnull = false;
		return PointerGetDatum(text - VARHDRSZ);
	}
	if (d->fast[i] != FS_FAST_NONE && FsFastInputCall(d->fast[i], text, &value))
	{
		*isnull = false;
		return value;
	}
	return column_input(d, i, text, isnull);
}

/* A Kafka metadata value for column i, typed directly where possible. */
static Datum
meta_input(FsDecoder *d, int i, Oid typid, Datum value, Oid valtype,
		   char *text, bool *isnull)
{
	*isnull = false;
	if (typid == valtype)
		return value;
	return column_input(d, i, text, isnull);
}

/*
 * Phase 2: the row's datums.  May raise errors (input functions, default
 * expressions); the caller runs it in a subtransaction.
 */
void
FsDecodeValues(FsDecoder *d, FsParsed *parsed, const FsKafkaMeta *meta,
			   ExprContext *econtext, Datum *values, bool *nulls)
{
	for (int i = 0; i < d->natts; i++)
	{
		if (d->names[i] == NULL)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
			continue;
		}
		switch (parsed->state[i])
		{
			case FS_FIELD_VALUE:
				values[i] = parsed_input(d, i, parsed->value[i], &nulls[i]);
				break;
			case FS_FIELD_NULL:
				values[i] = column_input(d, i, NULL, &nulls[i]);
				break;
			default:
				if (d->defaults[i])
					values[i] = ExecEvalExpr(d->defaults[i], econtext, &nulls[i]);
				else
					values[i] = column_input(d, i, NULL, &nulls[i]);
				break;
		}
	}

	if (d->meta_partition >= 0)
	{
		int			i = d->meta_partition;

		values[i] = meta_input(d, i, TupleDescAttr(d->tupdesc, i)->atttypid,
							   Int32GetDatum(meta->partition), INT4OID,
							   psprintf("%d", meta->partition), &nulls[i]);
	}
	if (d->meta_offset >= 0)
	{
		int			i = d->meta_offset;

		values[i] = meta_input(d, i, TupleDescAttr(d->tupdesc, i)->atttypid,
							   Int64GetDatum(meta->offset), INT8OID,
							   psprintf(INT64_FORMAT, meta->offset), &nulls[i]);
	}
	if (d->meta_timestamp >= 0)
	{
		int			i = d->meta_timestamp;

		if (meta->timestamp_ms < 0)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
		}
		else
		{
			TimestampTz ts = meta->timestamp_ms * 1000 -
				(int64) (POSTGRES_EPOCH_JDATE - UNIX_EPOCH_JDATE) * USECS_PER_DAY;
			Datum		tsd = TimestampTzGetDatum(ts);

			values[i] = meta_input(d, i, TupleDescAttr(d->tupdesc, i)->atttypid,
								   tsd, TIMESTAMPTZOID,
								   DatumGetCString(DirectFunctionCall1(timestamptz_out, tsd)),
								   &nulls[i]);
		}
	}
	if (d->meta_key >= 0)
	{
		int			i = d->meta_key;

		if (meta->key == NULL)
		{
			values[i] = (Datum) 0;
			nulls[i] = true;
		}
		else if (TupleDescAttr(d->tupdesc, i)->atttypid == BYTEAOID)
		{
			bytea	   *b = palloc(VARHDRSZ + meta->key_len);

			SET_VARSIZE(b, VARHDRSZ + meta->key_len);
			memcpy(VARDATA(b), meta->key, meta->key_len);
			values[i] = PointerGetDatum(b);
			nulls[i] = false;
		}
		else
		{
			char	   *key = pnstrdup(meta->key, meta->key_len);

			if (!pg_verify_mbstr(PG_UTF8, meta->key, (int) meta->key_len, true) ||
				strlen(key) != meta->key_len)
				ereport(ERROR,
						(errcode(ERRCODE_CHARACTER_NOT_IN_REPERTOIRE),
						 errmsg("message key is not valid UTF-8 text"),
						 errhint("Map the key to a bytea column to keep binary keys.")));
			values[i] = column_input(d, i, key, &nulls[i]);
		}
	}
}
