/*-------------------------------------------------------------------------
 *
 * fastinput.c
 *		Exact shortcuts for a few input functions, for the text forms that
 *		Kafka payloads usually carry.
 *
 * Decoding a message calls one input function per column; for the types
 * below, a large part of that cost is generality the common forms do not
 * need (tokenising date strings, time zone lookups, per-digit strchr).
 * Each shortcut reads only a narrow, unambiguous form and builds the datum
 * the input function would build for it, bit for bit; for any other text
 * it declines, and the caller calls the input function, which also
 * raises the errors.  A shortcut never raises an error itself.
 *
 *	timestamptz_in	"now" (the transaction's start, which is what
 *					timestamptz_in gives for it), and ISO 8601 with an
 *					explicit offset, YYYY-MM-DD[T ]HH:MM:SS[.f{1,6}] followed by
 *					Z, +HH or +HH:MM (or -), years 1000 to 9999: the offset
 *					fixes the instant, so neither TimeZone nor DateStyle
 *					matters.  Fractions of up to six digits are exact
 *					microseconds, as timestamptz_in's rounding gives them.
 *	numeric_in		[-]digits[.digits] with at most 15 digits in all:
 *					int64_div_fast_to_numeric builds the same value and
 *					display scale, and numeric values have one canonical
 *					form (make_result strips zero digits).
 *	inet_in			a dotted quad of decimal octets, which inet_in reads as
 *					an IPv4 address with a 32-bit mask.
 *
 * Only unconstrained columns (typmod -1) take a shortcut; typmods round or
 * check values, which is left to the input function.  A domain's input
 * function is domain_in, never one of these, so domain checks still run.
 *
 * Locking: none.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <sys/socket.h>

#include "access/xact.h"
#include "datatype/timestamp.h"
#include "utils/datetime.h"
#include "utils/fmgroids.h"
#include "utils/inet.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"

#include "fastinput.h"

/* Numeric shortcut: digits in all, so that int64_div_fast_to_numeric never
 * needs more than 64 bits when it aligns the value to base-10000 digits. */
#define FAST_NUMERIC_DIGITS	15

static inline bool
is_digit(char ch)
{
	return ch >= '0' && ch <= '9';
}

/* Exactly n decimal digits at s (a NUL stops the scan). */
static bool
fixed_digits(const char *s, int n, int *value)
{
	int			v = 0;

	for (int i = 0; i < n; i++)
	{
		if (!is_digit(s[i]))
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return true;
}

static int
days_in_month(int year, int month)
{
	static const int days[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool		leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);

	return days[month - 1] + (month == 2 && leap ? 1 : 0);
}

/* See the file header: "now" and ISO 8601 with an offset. */
static bool
fast_timestamptz(const char *s, Datum *result)
{
	int			year,
				month,
				day,
				hour,
				minute,
				second,
				off_hour = 0,
				off_minute = 0,
				off_sign = 1;
	int64		fsec = 0;
	const char *p;
	TimestampTz ts;

	if (s[0] == 'n' && s[1] == 'o' && s[2] == 'w' && s[3] == '\0')
	{
		*result = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
		return true;
	}
	if (!fixed_digits(s, 4, &year) || s[4] != '-' ||
		!fixed_digits(s + 5, 2, &month) || s[7] != '-' ||
		!fixed_digits(s + 8, 2, &day) || (s[10] != 'T' && s[10] != ' ') ||
		!fixed_digits(s + 11, 2, &hour) || s[13] != ':' ||
		!fixed_digits(s + 14, 2, &minute) || s[16] != ':' ||
		!fixed_digits(s + 17, 2, &second))
		return false;
	p = s + 19;
	if (*p == '.')
	{
		int			n = 0;

		for (p++; is_digit(*p) && n < 6; p++, n++)
			fsec = fsec * 10 + (*p - '0');
		if (n == 0 || is_digit(*p))
			return false;
		for (; n < 6; n++)
			fsec *= 10;
	}
	if (*p == 'Z')
		p++;
	else if (*p == '+' || *p == '-')
	{
		off_sign = *p == '-' ? -1 : 1;
		if (!fixed_digits(p + 1, 2, &off_hour))
			return false;
		p += 3;
		if (*p == ':')
		{
			if (!fixed_digits(p + 1, 2, &off_minute))
				return false;
			p += 3;
		}
	}
	else
		return false;
	if (*p != '\0' ||
		year < 1000 || month < 1 || month > 12 ||
		day < 1 || day > days_in_month(year, month) ||
		hour > 23 || minute > 59 || second > 59 ||
		off_hour > 14 || off_minute > 59)
		return false;

	/* local time minus its offset east of UTC */
	ts = (TimestampTz) (date2j(year, month, day) - POSTGRES_EPOCH_JDATE) * USECS_PER_DAY +
		(TimestampTz) ((hour * MINS_PER_HOUR + minute) * SECS_PER_MINUTE + second) * USECS_PER_SEC +
		fsec -
		(TimestampTz) off_sign * (off_hour * MINS_PER_HOUR + off_minute) * SECS_PER_MINUTE * USECS_PER_SEC;
	*result = TimestampTzGetDatum(ts);
	return true;
}

/* See the file header: [-]digits[.digits], FAST_NUMERIC_DIGITS at most. */
static bool
fast_numeric(const char *s, Datum *result)
{
	const char *p = s;
	int64		value = 0;
	int			ndigits = 0;
	int			scale = 0;
	bool		negative = false;

	if (*p == '-')
	{
		negative = true;
		p++;
	}
	if (!is_digit(*p))
		return false;
	for (; is_digit(*p); p++)
	{
		if (++ndigits > FAST_NUMERIC_DIGITS)
			return false;
		value = value * 10 + (*p - '0');
	}
	if (*p == '.')
	{
		if (!is_digit(*++p))
			return false;
		for (; is_digit(*p); p++, scale++)
		{
			if (++ndigits > FAST_NUMERIC_DIGITS)
				return false;
			value = value * 10 + (*p - '0');
		}
	}
	if (*p != '\0')
		return false;
	*result = NumericGetDatum(int64_div_fast_to_numeric(negative ? -value : value, scale));
	return true;
}

/* See the file header: a dotted quad, as network_in builds it. */
static bool
fast_inet(const char *s, Datum *result)
{
	unsigned char octets[4];
	const char *p = s;
	inet	   *dst;

	for (int i = 0; i < 4; i++)
	{
		int			v = 0;

		if (!is_digit(*p))
			return false;
		for (; is_digit(*p); p++)
		{
			v = v * 10 + (*p - '0');
			if (v > 255)
				return false;
		}
		octets[i] = (unsigned char) v;
		if (i < 3 && *p++ != '.')
			return false;
	}
	if (*p != '\0')
		return false;

	dst = (inet *) palloc0(sizeof(inet));
	ip_family(dst) = PGSQL_AF_INET;
	ip_bits(dst) = 32;
	memcpy(ip_addr(dst), octets, 4);
	SET_INET_VARSIZE(dst);
	*result = InetPGetDatum(dst);
	return true;
}

/* The shortcut for a column with input function infunc and this typmod. */
FsFastInput
FsFastInputFor(Oid infunc, int32 typmod)
{
	if (typmod != -1)
		return FS_FAST_NONE;
	switch (infunc)
	{
		case F_TIMESTAMPTZ_IN:
			return FS_FAST_TIMESTAMPTZ;
		case F_NUMERIC_IN:
			return FS_FAST_NUMERIC;
		case F_INET_IN:
			return FS_FAST_INET;
		default:
			return FS_FAST_NONE;
	}
}

/*
 * The datum for text, if the shortcut reads it; false means the caller
 * must call the input function.
 */
bool
FsFastInputCall(FsFastInput kind, const char *text, Datum *result)
{
	switch (kind)
	{
		case FS_FAST_TIMESTAMPTZ:
			return fast_timestamptz(text, result);
		case FS_FAST_NUMERIC:
			return fast_numeric(text, result);
		case FS_FAST_INET:
			return fast_inet(text, result);
		default:
			return false;
	}
}
