/*-------------------------------------------------------------------------
 *
 * alerts.c
 *		The scores and alerts of scored rows: a row in fraudstream.scores,
 *		a row in fraudstream.alerts and NOTIFY fraudstream_alerts.
 *
 * The score trigger (scoring.c) hands over each scored row that must be
 * stored (store_scores) or that alerts (score at or above the model's
 * threshold).  Both rows are inserted through SPI with saved plans, as the
 * owner of the fraudstream schema (FsSwitchToSchemaOwner), so that the
 * inserting role needs no privilege on fraudstream's tables.  The
 * notification is queued with Async_Notify: like the rows, it belongs to
 * the inserting (sub)transaction and is delivered only if that commits;
 * a rollback, a rolled-back savepoint or a failed statement leaves no
 * alert and sends nothing.  Payloads differ (they carry the alert id), so
 * PostgreSQL never folds two alerts into one notification.
 *
 * Payload: {"alert_id", "table", "row_key", "entities", "score", "model",
 * "version", "reasons"}, below NOTIFY's 8000-byte limit: strings longer
 * than ALERT_VALUE_MAX bytes are cut (at a character boundary), the
 * scoring trigger names at most 16 entity columns, and reasons that still
 * do not fit are replaced by {"truncated": true} (the alert row keeps
 * them whole).
 *
 * Locking: none beyond the row locks of the inserts.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/async.h"
#include "common/shortest_dec.h"
#include "executor/spi.h"
#include "mb/pg_wchar.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/lsyscache.h"

#include "fraudstream.h"
#include "alerts.h"

#define ALERT_CHANNEL		"fraudstream_alerts"
/* payload limit of NOTIFY is 8000 bytes; keep a margin */
#define ALERT_PAYLOAD_MAX	7900
/* longest string an alert payload quotes in full */
#define ALERT_VALUE_MAX		200

/* Append a string as JSON, cut to ALERT_VALUE_MAX bytes (whole characters). */
void
FsJsonAppendClipped(StringInfo buf, const char *s)
{
	int			len;

	if (s == NULL)
	{
		appendStringInfoString(buf, "null");
		return;
	}
	len = strlen(s);
	if (len > ALERT_VALUE_MAX)
		s = pnstrdup(s, pg_mbcliplen(s, len, ALERT_VALUE_MAX));
	escape_json(buf, s);
}


/* Insert the scores row (as the owner of fraudstream's tables). */
static void
store_score(const FsScoreRecord *rec)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	if (plan == NULL)
	{
		Oid			types[7] = {OIDOID, TEXTOID, FLOAT8OID, TEXTOID, INT4OID, JSONBOID, TEXTOID};

		plan = SPI_prepare("INSERT INTO fraudstream.scores "
						   "(relation, row_key, score, model, version, features, reasons) "
						   "VALUES ($1, $2, $3, $4, $5, $6, $7::jsonb)", 7, types);
		if (plan == NULL)
			elog(ERROR, "fraudstream: preparing the scores insert failed");
		SPI_keepplan(plan);
	}
	values[0] = ObjectIdGetDatum(rec->relid);
	values[1] = rec->row_key ? CStringGetTextDatum(rec->row_key) : (Datum) 0;
	nulls[1] = rec->row_key ? ' ' : 'n';
	values[2] = Float8GetDatum(rec->score);
	values[3] = CStringGetTextDatum(rec->model->name);
	values[4] = Int32GetDatum(rec->model->version);
	values[5] = JsonbPGetDatum(rec->features);
	values[6] = CStringGetTextDatum(rec->reasons);
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "fraudstream: inserting into fraudstream.scores failed");
}

/* Insert the alert and queue its notification; both wait for commit. */
static void
raise_alert(const FsScoreRecord *rec)
{
	static SPIPlanPtr plan = NULL;
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};
	bool		isnull;
	int64		alert_id;
	StringInfoData payload;
	char	   *relname;

	if (plan == NULL)
	{
		Oid			types[7] = {OIDOID, TEXTOID, TEXTOID, FLOAT8OID, TEXTOID, INT4OID, TEXTOID};

		plan = SPI_prepare("INSERT INTO fraudstream.alerts "
						   "(relation, row_key, entities, score, model, version, reasons) "
						   "VALUES ($1, $2, $3::jsonb, $4, $5, $6, $7::jsonb) RETURNING id",
						   7, types);
		if (plan == NULL)
			elog(ERROR, "fraudstream: preparing the alerts insert failed");
		SPI_keepplan(plan);
	}
	values[0] = ObjectIdGetDatum(rec->relid);
	values[1] = rec->row_key ? CStringGetTextDatum(rec->row_key) : (Datum) 0;
	nulls[1] = rec->row_key ? ' ' : 'n';
	values[2] = CStringGetTextDatum(rec->entities);
	values[3] = Float8GetDatum(rec->score);
	values[4] = CStringGetTextDatum(rec->model->name);
	values[5] = Int32GetDatum(rec->model->version);
	values[6] = CStringGetTextDatum(rec->reasons);
	if (SPI_execute_plan(plan, values, nulls, false, 0) != SPI_OK_INSERT_RETURNING ||
		SPI_processed != 1)
		elog(ERROR, "fraudstream: inserting into fraudstream.alerts failed");
	alert_id = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc,
										   1, &isnull));

	relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(rec->relid)),
										 get_rel_name(rec->relid));
	initStringInfo(&payload);
	for (int attempt = 0; attempt < 2; attempt++)
	{
		resetStringInfo(&payload);
		appendStringInfo(&payload, "{\"alert_id\": " INT64_FORMAT ", \"table\": ", alert_id);
		FsJsonAppendClipped(&payload, relname);
		appendStringInfoString(&payload, ", \"row_key\": ");
		FsJsonAppendClipped(&payload, rec->row_key);
		appendStringInfo(&payload, ", \"entities\": %s, \"score\": ", rec->entities);
		{
			char		num[32];

			double_to_shortest_decimal_buf(rec->score, num);
			appendStringInfoString(&payload, num);
		}
		appendStringInfoString(&payload, ", \"model\": ");
		escape_json(&payload, rec->model->name);
		appendStringInfo(&payload, ", \"version\": %d, \"reasons\": %s}", rec->model->version,
						 attempt == 0 ? rec->reasons : "{\"truncated\": true}");
		if (payload.len < ALERT_PAYLOAD_MAX)
			break;
	}
	Async_Notify(ALERT_CHANNEL, payload.data);
}


/*
 * Store a scored row (rec->features set) and raise its alert
 * (rec->entities set), as the owner of fraudstream's tables.
 */
void
FsWriteScore(const FsScoreRecord *rec)
{
	FsSavedUser saved;

	FsSwitchToSchemaOwner(&saved);
	SPI_connect();
	if (rec->features != NULL)
		store_score(rec);
	if (rec->entities != NULL)
		raise_alert(rec);
	SPI_finish();
	FsRestoreUser(&saved);
}
