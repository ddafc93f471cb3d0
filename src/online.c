/*-------------------------------------------------------------------------
 *
 * online.c
 *		The online feature path: the trigger that feeds inserted rows to
 *		the state, the session's pending events, their merge at commit,
 *		the rebuild of the state from the tables after a restart, and
 *		fraudstream.feature_values().
 *
 * Visibility.  An event counts for others once its transaction commits,
 * and never if it aborts; its own transaction sees it at once.  The feed
 * trigger (BEFORE INSERT, FOR EACH ROW, named to fire after the table's
 * other BEFORE triggers) therefore does not touch shared state: it appends
 * the row's event to the session's pending events, tagged with the
 * inserting subtransaction's id.  Features of the session combine the
 * shared state with these pending events.  A rolled-back subtransaction
 * drops its events (those of its id or a later one: every subtransaction
 * begun since is its child); a released one leaves them as they are, to
 * go with its parent's.  At commit
 * (XACT_EVENT_COMMIT, after the commit record) the pending events are
 * appended to the shared state, which cannot fail (featurestate.c); on
 * abort they are dropped.  TRUNCATE of a source, through an AFTER
 * TRUNCATE trigger, drops the session's pending events of the table and
 * clears its groups at commit.
 *
 * Rebuild.  After a restart a group's state is empty ("unloaded").  The
 * first session that needs it loads every committed row of the source
 * younger than the group's retention, in time order, while holding an
 * exclusive heavyweight lock on the group; committing sessions hold that
 * lock in share mode from PRE_COMMIT until their events are merged.  So
 * a commit either happened before the rebuild's snapshot (its rows are
 * loaded and its merge, which found the group unloaded, was skipped) or
 * waits for the rebuild to finish and merges into the loaded state.
 * Rows the rebuilding transaction inserted itself are skipped: they are
 * still pending.  XXX: the rebuild reads the whole source table; on large
 * plain tables (not rings) that takes a while, once per restart.
 *
 * Lateness.  An event older than its entity's newest event (stored or
 * pending) by more than fraudstream.max_lateness is counted as late and
 * not added.  After a rebuild, events are loaded in time order, so the
 * rows that were late when they arrived count again.
 *
 * Pending events and cost.  Features of an event combine the shared state
 * (running summaries for busy entities, featurestate.c) with the session's
 * pending events of the entity.  The session's copy of the entity's
 * summaries takes the pending events in as they come, in time order (the
 * overlay, see FsSummaryCache), so a row costs O(1) however many events
 * of the entity its transaction holds; the copy outlives the transaction
 * (see entity_cxt below).  Pending events out of time order are folded
 * one by one instead: cheap while they are few.  From PENDING_REPLAY_MIN
 * of them on (a bulk insert of a busy card arriving out of order), a
 * per-entity replay (FsReplay, the batch path's running summaries) holds
 * the stored events and the pending ones, so a row still costs amortised
 * O(1); it is rebuilt, O(window) once, when another session's commit
 * changes the entity's stored events.
 *
 * Locking: pending events are backend-local.  Shared state is reached
 * through featurestate.c, which documents its locks.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/relscan.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_inherits.h"
#include "commands/trigger.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "fraudstream.h"
#include "featurejson.h"
#include "online.h"
#include "scoring.h"

/* field4 of the advisory locktags that guard group rebuilds ("FS") */
#define FS_LOCKTAG_GROUP	0x4653

/*
 * One entity's pending events, in arrival order.  What a row reads and
 * writes comes first, in the first cache line (entities are allocated
 * line-aligned, see new_entity).
 */
typedef struct PendingEntity
{
	FsEntityKey key;			/* hash key */
	char	   *events;			/* each with its subtransaction (FsEvent.subxact) */
	/* the stored summaries walked on, from its second event (FsStateCompute) */
	FsSummaryCache *summaries;	/* NULL until needed */
	TimestampTz latest;
	int			count;
	uint32		layout;			/* of the group when the events were read */
	int			capacity;
	Size		event_size;
	/* the entities this transaction appended to, linked */
	struct PendingEntity *next_touched;
	uint64		touched_in;		/* xact_number when last linked */
	/* a replay of stored + pending events, for many pending events */
	FsReplay   *replay;			/* NULL until needed */
	uint64		replay_version; /* FsStateVersion of the stored events in it */
	uint32		replay_signature;	/* of the definitions it was made for */
	int			replay_seen;	/* pending events appended to it; -1: stale */
} PendingEntity;

/* Entities are allocated this many at a time, in line-aligned arrays. */
#define ENTITY_SLAB			64

typedef union PendingEntityRoom
{
	PendingEntity entity;
	char		lines[2 * FS_CACHE_LINE];
} PendingEntityRoom;

StaticAssertDecl(offsetof(PendingEntity, capacity) <= FS_CACHE_LINE,
				 "a row's fields of PendingEntity must fill its first cache line");
StaticAssertDecl(offsetof(PendingEntity, key) == 0,
				 "an entity's table slot points at its key, which starts it");
StaticAssertDecl(sizeof(PendingEntityRoom) == 2 * FS_CACHE_LINE,
				 "PendingEntity must fill two cache lines");

/*
 * The session's entities by key: a simplehash table of pointers to them,
 * with their hashes, so that a lookup reads one slot and the entity's first
 * cache line.
 */
typedef struct EntitySlot
{
	const FsEntityKey *key;		/* &entity->key: the entity */
	uint32		hash;
	char		status;
} EntitySlot;

#define SH_PREFIX		entity_table
#define SH_ELEMENT_TYPE EntitySlot
#define SH_KEY_TYPE		const FsEntityKey *
#define SH_KEY			key
#define SH_HASH_KEY(tb, k)	((k)->hash)
#define SH_EQUAL(tb, a, b)	(memcmp((a), (b), sizeof(FsEntityKey)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a)	((a)->hash)
#define SH_SCOPE		static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/*
 * From this many pending events of one entity on, its features come from a
 * replay (see compute_replayed) rather than from folding them each time.
 */
#define PENDING_REPLAY_MIN	32

/* A group this transaction touched, for locking and truncation at commit. */
typedef struct PendingGroup
{
	Oid			relid;
	AttrNumber	entity_attnum;
	int			group;
	bool		truncated;
	bool		reload;			/* definitions changed while the transaction
								 * fed the group: see note_group */
	uint32		layout;			/* of the definitions below */
	FsWindowSet set;			/* the group's definitions, copied when the
								 * transaction first fed it, for the merge */
} PendingGroup;

#define MAX_PENDING_GROUPS	64

/*
 * Entities and their summary caches outlive the transaction (entity_cxt),
 * so that a session that writes an entity again, as a Kafka worker does
 * batch after batch, walks on from the summaries its own merge left
 * instead of copying them out of shared memory again.  They are dropped
 * all at once when they take more than SESSION_ENTITY_MEMORY.  Pending
 * events themselves, the group copies and replays live in pending_cxt,
 * reset at transaction end.
 */
#define SESSION_ENTITY_MEMORY	((Size) 32 * 1024 * 1024)
/* Pending event arrays longer than this are freed at transaction end. */
#define KEPT_EVENT_CAPACITY		256

static MemoryContext entity_cxt = NULL;
static MemoryContext pending_cxt = NULL;
static entity_table_hash *entity_table = NULL;
static PendingEntityRoom *entity_slab = NULL;	/* the rest of the last slab */
static int	entity_slab_left = 0;
static PendingEntity *touched = NULL;
static uint64 xact_number = 1;
static PendingGroup pending_groups[MAX_PENDING_GROUPS];
static int	n_pending_groups = 0;

PG_FUNCTION_INFO_V1(fraudstream_feed_trigger);
PG_FUNCTION_INFO_V1(fraudstream_truncate_trigger);
PG_FUNCTION_INFO_V1(fraudstream_feature_values);
PG_FUNCTION_INFO_V1(fraudstream_row_features);

static void
set_group_locktag(LOCKTAG *tag, Oid relid, AttrNumber attnum)
{
	SET_LOCKTAG_ADVISORY(*tag, MyDatabaseId, relid, (uint32) attnum,
						 FS_LOCKTAG_GROUP);
}

/* The memory context of pending events, created on first use. */
static MemoryContext
pending_context(void)
{
	if (pending_cxt == NULL)
		pending_cxt = AllocSetContextCreate(TopMemoryContext,
											"fraudstream pending events",
											ALLOCSET_DEFAULT_SIZES);
	return pending_cxt;
}

/* The definitions of a group as the merge at commit takes them. */
static void
keep_definitions(PendingGroup *pg, const FsGroupDef *gd)
{
	pg->layout = gd->layout;
	pg->set = gd->window_set;
	pg->set.specs = MemoryContextAlloc(pending_context(), sizeof(FsWindowSpec) * gd->nfeatures);
	memcpy((FsWindowSpec *) pg->set.specs, gd->specs, sizeof(FsWindowSpec) * gd->nfeatures);
}

/*
 * Remember a group this transaction feeds or truncates.  When its
 * definitions changed since the transaction first fed it (a feature
 * created or dropped, here or by a commit elsewhere), the events it holds
 * in the old layout can be neither read with the new definitions nor
 * merged: each entity drops them at its next event (pending_append), and
 * at commit the group is emptied and left to be rebuilt from the table,
 * with this transaction's rows (merge_pending).
 */
static PendingGroup *
note_group(Oid relid, const FsGroupDef *gd)
{
	for (int i = 0; i < n_pending_groups; i++)
		if (pending_groups[i].group == gd->group)
		{
			if (pending_groups[i].layout != gd->layout)
			{
				pending_groups[i].reload = true;
				keep_definitions(&pending_groups[i], gd);
			}
			return &pending_groups[i];
		}
	if (n_pending_groups >= MAX_PENDING_GROUPS)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("a transaction can feed at most %d feature groups",
						MAX_PENDING_GROUPS)));
	pending_groups[n_pending_groups].relid = relid;
	pending_groups[n_pending_groups].entity_attnum = gd->entity_attnum;
	pending_groups[n_pending_groups].group = gd->group;
	pending_groups[n_pending_groups].truncated = false;
	pending_groups[n_pending_groups].reload = false;
	keep_definitions(&pending_groups[n_pending_groups], gd);
	return &pending_groups[n_pending_groups++];
}

/* Whether this transaction truncated the group's table (its state is gone). */
static bool
truncated_in_xact(int group)
{
	for (int i = 0; i < n_pending_groups; i++)
		if (pending_groups[i].group == group)
			return pending_groups[i].truncated;
	return false;
}

/* The memory context of the session's entities, created on first use. */
static MemoryContext
entity_context(void)
{
	if (entity_cxt == NULL)
		entity_cxt = AllocSetContextCreate(TopMemoryContext,
										   "fraudstream session entities",
										   ALLOCSET_DEFAULT_SIZES);
	return entity_cxt;
}

/* Transaction end: none of the entity's events is pending any more. */
static void
forget_pending(PendingEntity *pe)
{
	pe->count = 0;
	pe->latest = DT_NOBEGIN;
	if (pe->summaries != NULL)
		FsSummaryCacheEndXact(pe->summaries);
	pe->replay = NULL;			/* in pending_cxt */
	pe->replay_seen = -1;
	if (pe->capacity > KEPT_EVENT_CAPACITY)
	{
		pfree(pe->events);
		pe->events = NULL;
		pe->capacity = 0;
	}
}

/*
 * Transaction end: no event is pending any more (the merge forgot those
 * of the entities it merged, see merge_pending).
 */
static void
reset_pending(void)
{
	for (PendingEntity *pe = touched; pe != NULL; pe = pe->next_touched)
		forget_pending(pe);
	touched = NULL;
	xact_number++;
	if (pending_cxt != NULL)
		MemoryContextReset(pending_cxt);
	n_pending_groups = 0;
	if (entity_cxt != NULL &&
		MemoryContextMemAllocated(entity_cxt, true) > SESSION_ENTITY_MEMORY)
	{
		MemoryContextReset(entity_cxt);
		entity_table = NULL;
		entity_slab = NULL;
		entity_slab_left = 0;
	}
}

/* Room in the session's slab for one more entity; may allocate. */
static void
reserve_entity(void)
{
	if (entity_slab_left == 0)
	{
		char	   *raw = MemoryContextAlloc(entity_context(),
											 sizeof(PendingEntityRoom) * ENTITY_SLAB +
											 FS_CACHE_LINE);

		entity_slab = (PendingEntityRoom *) TYPEALIGN(FS_CACHE_LINE, raw);
		entity_slab_left = ENTITY_SLAB;
	}
}

/* A new entity, line-aligned, from the room reserve_entity made. */
static PendingEntity *
new_entity(const FsEntityKey *key)
{
	PendingEntity *pe;

	Assert(entity_slab_left > 0);
	pe = &entity_slab->entity;
	entity_slab++;
	entity_slab_left--;
	memset(pe, 0, sizeof(PendingEntity));
	pe->key = *key;
	pe->latest = DT_NOBEGIN;
	pe->replay_seen = -1;
	return pe;
}

/*
 * Keep only the entity's first "keep" pending events (a savepoint rolled
 * the others back, or a TRUNCATE all of them): what was built on the rest,
 * the cache's overlay and the replay, goes too.
 */
static void
roll_back_pending(PendingEntity *pe, int keep)
{
	pe->count = keep;
	if (pe->summaries != NULL)
		FsSummaryCacheReset(pe->summaries);
	pe->replay_seen = -1;
	pe->latest = DT_NOBEGIN;
	for (int j = 0; j < keep; j++)
		pe->latest = Max(pe->latest, FS_EVENT_AT(pe->events, j, pe->event_size)->time);
}

/*
 * The session's entity of a key (entity keys carry their hash already),
 * with "create" made if missing: one probe of the table either way.
 */
static PendingEntity *
pending_lookup(const FsEntityKey *key, bool create)
{
	EntitySlot *slot;
	bool		found;

	if (entity_table == NULL)
	{
		if (!create)
			return NULL;
		entity_table = entity_table_create(entity_context(), 256, NULL);
	}
	if (!create)
	{
		slot = entity_table_lookup(entity_table, key);
		return slot != NULL ? (PendingEntity *) slot->key : NULL;
	}
	/* what can fail comes first: the table never points at the caller's key */
	reserve_entity();
	slot = entity_table_insert(entity_table, key, &found);
	if (!found)
		slot->key = &new_entity(key)->key;	/* the slot points at the entity's own key */
	return (PendingEntity *) slot->key;
}

static void
pending_append(PendingEntity *pe, const FsGroupDef *gd, const FsEvent *event)
{
	FsEvent    *stored;

	/* events of older definitions go (see note_group), and their array */
	if (pe->count > 0 && pe->layout != gd->layout)
	{
		roll_back_pending(pe, 0);
		if (pe->events != NULL)
			pfree(pe->events);
		pe->events = NULL;
		pe->capacity = 0;
	}

	/*
	 * What lies on the entity's second cache line (capacity, the touched
	 * link, the event size) is read only when the array may be full (its
	 * capacity is 0 or 4 times a power of two) or at the entity's first
	 * event of the transaction: most rows of a bulk insert then touch the
	 * first line only.  Every entity with events pending is linked.
	 */
	if ((pe->count == 0 || (pe->count >= 4 && (pe->count & (pe->count - 1)) == 0)) &&
		pe->count == pe->capacity)
	{
		int			cap = pe->capacity ? pe->capacity * 2 : 4;

		if (pe->events == NULL)
			pe->events = MemoryContextAlloc(entity_cxt, cap * gd->event_size);
		else
			pe->events = repalloc(pe->events, cap * gd->event_size);
		pe->capacity = cap;
	}
	if (pe->count == 0 && pe->touched_in != xact_number)
	{
		pe->touched_in = xact_number;
		pe->next_touched = touched;
		touched = pe;
	}
	if (pe->count == 0)			/* a layout change emptied it too */
	{
		pe->layout = gd->layout;
		pe->event_size = gd->event_size;
	}
	stored = FS_EVENT_AT(pe->events, pe->count, gd->event_size);
	memcpy(stored, event, gd->event_size);
	stored->subxact = (uint32) GetCurrentSubTransactionId();
	pe->count++;
	pe->latest = Max(pe->latest, event->time);
}

/*
 * Subtransaction abort: drop the events of subtransaction "subxact" and of
 * the later ones, its children.  Subtransaction ids grow in the order
 * subtransactions begin, and every event added since "subxact" began is
 * of it or of a child: within an entity they are the events from the
 * first of id subxact or more on.  A released subtransaction needs
 * nothing: its events stay tagged with its id, which is later than its
 * parent's, so that they go if the parent rolls back and stay if a later
 * sibling does.
 */
static void
pending_subxact_abort(SubTransactionId subxact)
{
	for (PendingEntity *pe = touched; pe != NULL; pe = pe->next_touched)
	{
		int			i = pe->count;

		while (i > 0 && FS_EVENT_AT(pe->events, i - 1, pe->event_size)->subxact >= subxact)
			i--;
		if (i < pe->count)
			roll_back_pending(pe, i);
	}
}

/*
 * Merge every pending event into the shared state, forgetting each
 * entity's as it goes, while its entry is in cache; after commit only.
 */
static void
merge_pending(void)
{
	for (int i = 0; i < n_pending_groups; i++)
	{
		if (pending_groups[i].truncated || pending_groups[i].reload)
			FsGroupClear(pending_groups[i].group, false);
		if (pending_groups[i].reload)
			FsGroupSetStatus(pending_groups[i].group, FS_GROUP_UNLOADED);
	}
	for (PendingEntity *pe = touched; pe != NULL; pe = pe->next_touched)
	{
		const FsWindowSet *set = NULL;

		/* An unloaded group gets these rows from the table when rebuilt. */
		if (pe->count > 0 && FsGroupGetStatus(pe->key.group) == FS_GROUP_READY)
		{
			for (int i = 0; i < n_pending_groups; i++)
				if (pending_groups[i].group == pe->key.group &&
					pending_groups[i].layout == pe->layout)
					set = &pending_groups[i].set;
			FsStateAppend(&pe->key, pe->layout, set, (const FsEvent *) pe->events,
						  pe->count, pe->summaries);
		}
		forget_pending(pe);
	}
	touched = NULL;
}

static void
online_xact_callback(XactEvent event, void *arg)
{
	switch (event)
	{
		case XACT_EVENT_PRE_COMMIT:
		case XACT_EVENT_PARALLEL_PRE_COMMIT:
			/* see "Rebuild" in the header: held until the merge is done */
			for (int i = 0; i < n_pending_groups; i++)
			{
				LOCKTAG		tag;

				set_group_locktag(&tag, pending_groups[i].relid,
								  pending_groups[i].entity_attnum);
				(void) LockAcquire(&tag, ShareLock, false, false);
			}
			break;
		case XACT_EVENT_PRE_PREPARE:
			if (n_pending_groups > 0)
				ereport(ERROR,
						(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
						 errmsg("cannot prepare a transaction that inserted events for fraudstream features")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			merge_pending();
			reset_pending();
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			reset_pending();
			break;
		default:
			break;
	}
}

static void
online_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	if (event == SUBXACT_EVENT_ABORT_SUB)
		pending_subxact_abort(mySubid);
}

/* Hook transaction ends; from _PG_init. */
void
FsOnlineInit(void)
{
	RegisterXactCallback(online_xact_callback, NULL);
	RegisterSubXactCallback(online_subxact_callback, NULL);
}

/* One event loaded by a rebuild, to be sorted by time. */
typedef struct LoadedEvent
{
	FsEntityKey key;
	int64		seq;			/* scan order, to keep the sort stable */
	FsEvent    *event;
} LoadedEvent;

static int
loaded_cmp(const void *a, const void *b)
{
	const LoadedEvent *x = a;
	const LoadedEvent *y = b;

	if (x->event->time != y->event->time)
		return x->event->time < y->event->time ? -1 : 1;
	return x->seq < y->seq ? -1 : (x->seq > y->seq ? 1 : 0);
}

/*
 * Scan a leaf table of a source with the given snapshot, calling back for
 * each committed row not inserted by this transaction.
 */
typedef void (*row_callback) (const FsGroupDef *gd, FsEvent *event,
							  FsEntityKey *key, void *arg);

static void
scan_source(Oid relid, int group, Snapshot snapshot, row_callback cb, void *arg)
{
	List	   *leaves = find_all_inheritors(relid, AccessShareLock, NULL);
	ListCell   *lc;

	foreach(lc, leaves)
	{
		Relation	rel = table_open(lfirst_oid(lc), AccessShareLock);
		FsSourceDef *sd;
		const FsGroupDef *gd = NULL;
		TableScanDesc scan;
		HeapTuple	tuple;
		FsEvent    *event;
		FsRow		row;
		FsEntityKey key;

		if (rel->rd_rel->relkind != RELKIND_RELATION)
		{
			table_close(rel, AccessShareLock);
			continue;
		}
		sd = FsGetSourceDefForRel(rel);
		for (int i = 0; sd != NULL && i < sd->ngroups; i++)
			if (sd->groups[i].group == group)
				gd = &sd->groups[i];
		if (gd == NULL)
		{
			table_close(rel, AccessShareLock);
			continue;
		}
		event = palloc(gd->event_size);
		FsRowInit(&row, RelationGetDescr(rel));
		scan = table_beginscan(rel, snapshot, 0, NULL);
		while ((tuple = heap_getnext(scan, ForwardScanDirection)) != NULL)
		{
			CHECK_FOR_INTERRUPTS();
			if (TransactionIdIsCurrentTransactionId(HeapTupleHeaderGetXmin(tuple->t_data)))
				continue;
			FsRowDeform(&row, RelationGetDescr(rel), tuple);
			if (FsEventFromRow(gd, &row, event, &key))
				cb(gd, event, &key, arg);
		}
		table_endscan(scan);
		FsRowFree(&row);
		pfree(event);
		table_close(rel, AccessShareLock);
	}
}

typedef struct RebuildState
{
	TimestampTz cutoff;
	TimestampTz newest;
	LoadedEvent *loaded;
	int64		count;
	int64		capacity;
} RebuildState;

static void
find_newest(const FsGroupDef *gd, FsEvent *event, FsEntityKey *key, void *arg)
{
	RebuildState *rs = arg;

	rs->newest = Max(rs->newest, event->time);
}

static void
collect_recent(const FsGroupDef *gd, FsEvent *event, FsEntityKey *key, void *arg)
{
	RebuildState *rs = arg;
	LoadedEvent *le;

	if (event->time <= rs->cutoff)
		return;
	if (rs->count == rs->capacity)
	{
		rs->capacity = rs->capacity ? rs->capacity * 2 : 1024;
		rs->loaded = rs->loaded ? repalloc_huge(rs->loaded, rs->capacity * sizeof(LoadedEvent))
			: MemoryContextAllocHuge(CurrentMemoryContext, rs->capacity * sizeof(LoadedEvent));
	}
	le = &rs->loaded[rs->count];
	le->key = *key;
	le->seq = rs->count++;
	le->event = palloc(gd->event_size);
	memcpy(le->event, event, gd->event_size);
}

/* Load a group's recent committed events; see "Rebuild" in the header. */
static void
rebuild_group(const FsGroupDef *gd, Oid relid)
{
	Snapshot	snapshot = RegisterSnapshot(GetLatestSnapshot());
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "fraudstream rebuild",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RebuildState rs = {0};

	rs.newest = DT_NOBEGIN;
	scan_source(relid, gd->group, snapshot, find_newest, &rs);
	if (rs.newest != DT_NOBEGIN)
	{
		rs.cutoff = rs.newest - gd->retain;
		scan_source(relid, gd->group, snapshot, collect_recent, &rs);
		qsort(rs.loaded, rs.count, sizeof(LoadedEvent), loaded_cmp);
		for (int64 i = 0; i < rs.count; i++)
			FsStateAppend(&rs.loaded[i].key, gd->layout, &gd->window_set,
						  rs.loaded[i].event, 1, NULL);
	}
	MemoryContextSwitchTo(old);
	MemoryContextDelete(cxt);
	UnregisterSnapshot(snapshot);
}

/*
 * Make sure the shared state of a group holds its committed events,
 * rebuilding it from the source table if the server restarted or the
 * definitions changed since.
 */
void
FsEnsureGroupLoaded(const FsGroupDef *gd, Oid relid)
{
	LOCKTAG		tag;

	if (gd->layout == 0 || FsGroupGetStatus(gd->group) != FS_GROUP_UNLOADED)
		return;
	set_group_locktag(&tag, relid, gd->entity_attnum);
	(void) LockAcquire(&tag, ExclusiveLock, true, false);
	PG_TRY();
	{
		if (FsGroupGetStatus(gd->group) == FS_GROUP_UNLOADED)
		{
			FsGroupClear(gd->group, false);
			rebuild_group(gd, relid);
			FsGroupSetStatus(gd->group, FS_GROUP_READY);
		}
	}
	PG_FINALLY();
	{
		LockRelease(&tag, ExclusiveLock, true);
	}
	PG_END_TRY();
}

/*
 * Features of an event against the entity's stored events and its many
 * pending ones, amortised O(1): a replay (window.c's FsReplay, the batch
 * path's running summaries) holds the stored events, copied once, and the
 * pending ones, appended as they come.  It is made again when the stored
 * events change (another session's commit, eviction: FsStateVersion), a
 * savepoint rolls pending events back, or the definitions change.  Values
 * are those of the fold, bit for bit, as replays are.
 */
static bool
compute_replayed(const FsGroupDef *gd, const FsEntityKey *key, PendingEntity *pe,
				 const FsEvent *event, double *result, bool *isnull)
{
	uint64		version = FsStateVersion(key, gd->layout);

	if (pe->replay == NULL || pe->replay_signature != gd->window_set.signature)
	{
		FsWindowSpec *specs = MemoryContextAlloc(pending_context(),
												 sizeof(FsWindowSpec) * gd->nfeatures);

		/* a copy: the definitions' cache may be reloaded before commit */
		memcpy(specs, gd->specs, sizeof(FsWindowSpec) * gd->nfeatures);
		FsWindowSpecsLink(specs, gd->nfeatures);
		pe->replay = FsReplayCreate(pending_context(), specs, gd->nfeatures,
									gd->event_size, gd->retain);
		pe->replay_signature = gd->window_set.signature;
		pe->replay_seen = -1;
	}
	if (pe->replay_seen < 0 || version != pe->replay_version)
	{
		FsReplayReset(pe->replay);
		pe->replay_version = FsStateReplay(key, gd->layout, pe->replay);
		pe->replay_seen = 0;
	}
	for (; pe->replay_seen < pe->count; pe->replay_seen++)
		FsReplayAppend(pe->replay, FS_EVENT_AT(pe->events, pe->replay_seen, pe->event_size));
	if (FsEventIsLate(event->time, FsReplayLatest(pe->replay)))
	{
		memset(isnull, true, sizeof(bool) * gd->nfeatures);
		return true;
	}
	FsReplayCompute(pe->replay, event, result, isnull);
	return false;
}

/*
 * Features of an event (or, with probe, of a point in time) for an entity:
 * stored events plus this session's pending ones, pe (NULL: none).  A late
 * event gets no features (FsEventIsLate).  Returns whether the event is
 * late.
 */
static bool
compute(const FsGroupDef *gd, const FsEntityKey *key, PendingEntity *pe,
		const FsEvent *event, bool probe, double *result, bool *isnull)
{
	FsEventRun	run;
	TimestampTz latest = DT_NOBEGIN;
	bool		late;
	/* whether the shared state holds the group's stored events */
	bool		stored = gd->layout != 0 && !truncated_in_xact(gd->group);

	if (!probe && pe != NULL && pe->layout == gd->layout && pe->count >= PENDING_REPLAY_MIN &&
		(pe->summaries == NULL || !FsSummaryCacheHoldsPending(pe->summaries)) && stored)
		return compute_replayed(gd, key, pe, event, result, isnull);
	if (pe != NULL && pe->layout == gd->layout)
	{
		run.events = (const FsEvent *) pe->events;
		run.count = pe->count;
	}
	else
		run.count = 0;
	/* an entity with one event pending is likely to get more: keep its walk */
	if (run.count > 0 && pe->summaries == NULL)
		pe->summaries = FsSummaryCacheCreate(entity_context(), &gd->window_set);
	if (stored)
		(void) FsStateCompute(key, gd->layout, &run, &gd->window_set,
							  pe != NULL ? pe->summaries : NULL,
							  event, probe, result, isnull, &latest);
	else
		FsWindowCompute(gd->specs, gd->nfeatures, gd->event_size, &run,
						run.count > 0 ? 1 : 0, event, probe, result, isnull);
	if (pe != NULL && pe->count > 0)
		latest = Max(latest, pe->latest);
	late = !probe && FsEventIsLate(event->time, latest);
	if (late)
		memset(isnull, true, sizeof(bool) * gd->nfeatures);
	return late;
}

bool
FsOnlineCompute(const FsGroupDef *gd, const FsEntityKey *key,
				const FsEvent *event, bool probe, double *result, bool *isnull)
{
	return compute(gd, key, pending_lookup(key, false), event, probe, result, isnull);
}

/* Add an event of a source row to the session's pending events. */
static void
feed(Oid relid, const FsGroupDef *gd, PendingEntity *pe, const FsEvent *event, bool late)
{
	if (late)
	{
		FsGroupCountLate(gd->group);
		return;
	}
	(void) note_group(relid, gd);
	pending_append(pe, gd, event);
}

/*
 * Add a row's event to the session's pending events, unless it is late:
 * the feed trigger's work for one group.
 */
void
FsOnlineFeed(const FsGroupDef *gd, Oid relid, const FsEntityKey *key, const FsEvent *event)
{
	PendingEntity *pe;
	TimestampTz latest;

	FsEnsureGroupLoaded(gd, relid);
	pe = pending_lookup(key, true);
	latest = (gd->layout != 0 && !truncated_in_xact(gd->group))
		? FsStateLatest(key, gd->layout) : DT_NOBEGIN;
	feed(relid, gd, pe, event, FsEventIsLate(event->time, Max(latest, pe->latest)));
}

/*
 * The features of a row's event, as FsOnlineCompute gives them, and then
 * the event fed to the session's pending events, as the feed trigger
 * would: for the scoring trigger of a table that is also a source, which
 * so finds the entity's state once (see FsOnlineFeedsRel).
 */
void
FsOnlineComputeAndFeed(const FsGroupDef *gd, Oid relid, const FsEntityKey *key,
					   const FsEvent *event, double *result, bool *isnull)
{
	PendingEntity *pe;

	FsEnsureGroupLoaded(gd, relid);
	pe = pending_lookup(key, true);
	feed(relid, gd, pe, event, compute(gd, key, pe, event, false, result, isnull));
}

/*
 * Trigger fraudstream.feed_trigger(), BEFORE INSERT FOR EACH ROW on every
 * table with features: hand the row's events to the session's pending
 * events, unless the table's score trigger, which fires just before, has
 * done so (FsScoreTriggerFeeds).
 */
Datum
fraudstream_feed_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	Relation	rel;
	HeapTuple	tuple;
	FsSourceDef *sd;
	FsEvent    *event;
	FsRow		row;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_ROW(trigdata->tg_event) ||
		!TRIGGER_FIRED_BY_INSERT(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fraudstream.feed_trigger() must fire BEFORE INSERT FOR EACH ROW")));
	rel = trigdata->tg_relation;
	tuple = trigdata->tg_trigtuple;
	sd = FsGetSourceDefForRel(rel);
	if (sd == NULL || FsScoreTriggerFeeds(rel))
		return PointerGetDatum(tuple);

	event = palloc(FS_EVENT_SIZE(FS_MAX_SLOTS));
	FsRowInit(&row, RelationGetDescr(rel));
	FsRowDeform(&row, RelationGetDescr(rel), tuple);
	for (int i = 0; i < sd->ngroups; i++)
	{
		const FsGroupDef *gd = &sd->groups[i];
		FsEntityKey key;

		if (!FsEventFromRow(gd, &row, event, &key))
			continue;
		FsOnlineFeed(gd, sd->relid, &key, event);
	}
	FsRowFree(&row);
	pfree(event);
	return PointerGetDatum(tuple);
}

/*
 * Trigger fraudstream.truncate_trigger(), AFTER TRUNCATE: the table's
 * events are gone, for this session now and for everyone at commit.
 */
Datum
fraudstream_truncate_trigger(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;
	FsSourceDef *sd;

	if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BY_TRUNCATE(trigdata->tg_event))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("fraudstream.truncate_trigger() must fire AFTER TRUNCATE")));
	sd = FsGetSourceDefForRel(trigdata->tg_relation);
	if (sd == NULL)
		return PointerGetDatum(NULL);
	for (int i = 0; i < sd->ngroups; i++)
	{
		const FsGroupDef *gd = &sd->groups[i];

		note_group(sd->relid, gd)->truncated = true;
		for (PendingEntity *pe = touched; pe != NULL; pe = pe->next_touched)
			if (pe->key.group == gd->group)
				roll_back_pending(pe, 0);
	}
	return PointerGetDatum(NULL);
}

/*
 * Features summarize a source's rows: reading them needs the right to
 * read the source.
 */
static void
check_source_readable(Oid relid)
{
	AclResult	aclresult = pg_class_aclcheck(relid, GetUserId(), ACL_SELECT);

	if (aclresult != ACLCHECK_OK)
		aclcheck_error(aclresult, OBJECT_TABLE, get_rel_name(relid));
}

/*
 * fraudstream.feature_values(entity_column text, key text, at timestamptz)
 * returns every feature defined on that entity column, as jsonb, for the
 * window ending at "at".
 */
Datum
fraudstream_feature_values(PG_FUNCTION_ARGS)
{
	char	   *entity_column = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *key_text = text_to_cstring(PG_GETARG_TEXT_PP(1));
	TimestampTz at = PG_GETARG_TIMESTAMPTZ(2);
	ListCell   *lc;
	bool		any = false;
	int			capacity = 0;
	int			n = 0;
	const char **names;
	bool	   *integer;
	double	   *values;
	bool	   *nulls;
	FsEvent    *probe = palloc0(FS_EVENT_SIZE(FS_MAX_SLOTS));

	probe->time = at;
	probe->nullmask = ~(uint32) 0;

	foreach(lc, FsAllSourceDefs())
	{
		FsSourceDef *sd = lfirst(lc);

		capacity += sd->nfeatures;
	}
	names = palloc(sizeof(char *) * Max(capacity, 1));
	integer = palloc(sizeof(bool) * Max(capacity, 1));
	values = palloc(sizeof(double) * Max(capacity, 1));
	nulls = palloc(sizeof(bool) * Max(capacity, 1));
	foreach(lc, FsAllSourceDefs())
	{
		FsSourceDef *sd = lfirst(lc);

		for (int i = 0; i < sd->ngroups; i++)
		{
			const FsGroupDef *gd = &sd->groups[i];
			Oid			typinput;
			Oid			typioparam;
			Datum		value;
			FsEntityKey key;

			if (strcmp(gd->entity_column, entity_column) != 0)
				continue;
			any = true;
			check_source_readable(sd->relid);
			getTypeInputInfo(gd->entity_typid, &typinput, &typioparam);
			value = OidInputFunctionCall(typinput, key_text, typioparam, -1);
			FsEntityKeyFromDatum(gd, value, &key);
			FsEnsureGroupLoaded(gd, sd->relid);
			FsOnlineCompute(gd, &key, probe, true, values + n, nulls + n);
			FsGroupFeatureNames(gd, names + n, integer + n);
			n += gd->nfeatures;
		}
	}
	if (!any)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no features are defined on entity column \"%s\"", entity_column),
				 errhint("See fraudstream.features for the defined features.")));
	PG_RETURN_JSONB_P(FsJsonbFromFeatures(FsJsonbTemplateCreate(n, names, integer),
										  values, nulls));
}

/*
 * fraudstream.row_features(source regclass, row anyelement) returns the
 * features a row of the source would get if it were inserted now: the
 * online values, including the session's own uncommitted events.
 */
Datum
fraudstream_row_features(PG_FUNCTION_ARGS)
{
	Oid			relid = PG_GETARG_OID(0);
	HeapTupleHeader row = PG_GETARG_HEAPTUPLEHEADER(1);
	HeapTupleData tuple;
	FsRow		cols;
	FsSourceDef *sd = FsGetSourceDef(relid);
	Relation	rel;
	double	   *values;
	bool	   *nulls;
	FsEvent    *event = palloc(FS_EVENT_SIZE(FS_MAX_SLOTS));

	if (sd == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("no features are defined on \"%s\"", get_rel_name(relid)),
				 errhint("Define them with fraudstream.create_feature().")));
	check_source_readable(relid);
	rel = table_open(relid, AccessShareLock);
	if (HeapTupleHeaderGetTypeId(row) != rel->rd_rel->reltype)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("row is not of the row type of \"%s\"", RelationGetRelationName(rel)),
				 errhint("Pass a row of the source table, e.g. ROW(...)::%s.",
						 RelationGetRelationName(rel))));
	FsTupleFromComposite(row, relid, &tuple);
	FsRowInit(&cols, RelationGetDescr(rel));
	FsRowDeform(&cols, RelationGetDescr(rel), &tuple);

	values = palloc(sizeof(double) * Max(sd->nfeatures, 1));
	nulls = palloc(sizeof(bool) * Max(sd->nfeatures, 1));
	for (int i = 0, n = 0; i < sd->ngroups; n += sd->groups[i++].nfeatures)
	{
		const FsGroupDef *gd = &sd->groups[i];
		FsEntityKey key;

		if (FsEventFromRow(gd, &cols, event, &key))
		{
			FsEnsureGroupLoaded(gd, relid);
			FsOnlineCompute(gd, &key, event, false, values + n, nulls + n);
		}
		else
			memset(nulls + n, true, sizeof(bool) * gd->nfeatures);
	}
	table_close(rel, AccessShareLock);
	PG_RETURN_JSONB_P(FsJsonbFromFeatures(FsSourceJsonTemplate(sd), values, nulls));
}
