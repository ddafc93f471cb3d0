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


/*
 * Insert one row of a scored row's record through a saved plan whose
 * parameters are $1 relation, $2 row_key, $3 score, $4 model, $5 version,
 * $6 reasons (jsonb as text) and $7 the table's own column (jsonb); the
 * plan is prepared on first use.
 */
static void
insert_record(SPIPlanPtr *plan, const char *sql, const FsScoreRecord *rec,
			  Datum extra, int expected)
{
	Datum		values[7];
	char		nulls[7] = {' ', ' ', ' ', ' ', ' ', ' ', ' '};

	Oid			types[7] = {OIDOID, TEXTOID, FLOAT8OID, TEXTOID, INT4OID, TEXTOID, JSONBOID};

	FsKeptPlan(plan, sql, 7, types);
	values[0] = ObjectIdGetDatum(rec->relid);
	values[1] = rec->row_key ? CStringGetTextDatum(rec->row_key) : (Datum) 0;
	nulls[1] = rec->row_key ? ' ' : 'n';
	values[2] = Float8GetDatum(rec->score);
	values[3] = CStringGetTextDatum(rec->model->name);
	values[4] = Int32GetDatum(rec->model->version);
	values[5] = CStringGetTextDatum(rec->reasons);
	values[6] = extra;
	if (SPI_execute_plan(*plan, values, nulls, false, 0) != expected || SPI_processed != 1)
		elog(ERROR, "fraudstream: \"%s\" failed", sql);
}

/* Insert the scores row. */
static void
store_score(const FsScoreRecord *rec)
{
	static SPIPlanPtr plan = NULL;

	insert_record(&plan, "INSERT INTO fraudstream.scores "
				  "(relation, row_key, score, model, version, reasons, features) "
				  "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7)",
				  rec, JsonbPGetDatum(rec->features), SPI_OK_INSERT);
}

/* Insert the alert and queue its notification; both wait for commit. */
static void
raise_alert(const FsScoreRecord *rec)
{
	static SPIPlanPtr plan = NULL;
	bool		isnull;
	int64		alert_id;
	StringInfoData payload;
	char	   *relname;

	insert_record(&plan, "INSERT INTO fraudstream.alerts "
				  "(relation, row_key, score, model, version, reasons, entities) "
				  "VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7) RETURNING id",
				  rec, DirectFunctionCall1(jsonb_in, CStringGetDatum(rec->entities)),
				  SPI_OK_INSERT_RETURNING);
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
