/*-------------------------------------------------------------------------
 *
 * featurestate.c
 *		Recent events of every entity in shared memory: the online state
 *		that features are computed from.
 *
 * Design.  Everything is allocated once, at server start, from three GUCs:
 * fraudstream.max_feature_groups (a group is the features of one source
 * table and entity column: they share one copy of each entity's events),
 * fraudstream.max_entities and fraudstream.state_memory (the event store).
 * Entities live in a chained hash table of preallocated entries; each
 * entity's events, in arrival order, live in a chain of 128-byte blocks
 * from a shared pool.  An event record is its time, a NULL bitmap and one
 * float8 per value slot of the group (FsEvent).  Events are kept in time
 * order: one older than the entity's newest (within max_lateness, as
 * when a Kafka source's partitions interleave an entity's events) is put
 * in its place, the newer ones moving one place on (insert_in_order);
 * one that cannot be (too far back) is appended out of order, and the
 * entity then goes without summaries until it is gone.  A tail mark
 * (tail_block) bounds where events newer than newest - max_lateness can
 * be; two shift marks bound where a late event can go without moving more
 * than 32 or FS_MAX_SHIFT events, so that finding its place walks a few
 * blocks, however busy the entity (advance_marks).  After each append,
 * blocks whose newest event is older than the entity's latest event minus
 * the group's retention (longest window + max_lateness) go back to the
 * pool, so state never holds more history than some window can use.  Busy
 * entities also keep running summaries of their windows (see "Running
 * summaries" below), which make a feature O(1) to compute.
 *
 * Memory never runs out for an insert.  When the pool or the partition's
 * share of the entity table is exhausted, the partition being written is
 * swept: entities idle for longer than their group's retention are
 * dropped (expired); failing that, the least recently appended eighth of
 * the partition's entities is dropped (evicted, see make_room); failing
 * that, the entity's own oldest block is dropped (truncated, which makes
 * its long windows approximate); failing that, the event is not stored.
 * Running summaries of the partition's entities are dropped before any
 * entity is evicted.  Each outcome has a
 * counter in fraudstream.features.  XXX: the LRU choice is per partition,
 * not global, and so is the room for entities: each partition has
 * max_entities / FS_STATE_PARTITIONS entries (keys spread evenly over them).
 * The groups of a dropped database or table (DROP DATABASE runs no event
 * trigger there) are freed, with their entities, when a group is set up.
 *
 * Locking.  The hash table is split into FS_STATE_PARTITIONS partitions
 * (bucket number modulo the partition count), each with an LWLock of the
 * area's tranche: readers computing features take it shared, appends and
 * sweeps exclusive.  No code path holds two partition locks.  An entry
 * only ever holds entities of one partition (the free list of entries of
 * a partition holds those whose index is the partition's number modulo
 * the partition count), so a reader holding the partition's lock may check
 * the entry where it found an entity before (find_entity_hinted) without
 * reading the bucket.  Each partition's lock also guards a cache line of
 * its own (FsPartition): the partition's free entries and its clock, which
 * versions its entities and orders them for the LRU choice; backends
 * appending to different partitions share no line they write.  The free
 * list of blocks is protected by a spinlock taken only for a push or a
 * pop.  Group slots are created and changed under the last lock of the
 * tranche; their status and counters are atomics read without it.
 * FsStateAppend runs after commit, where an ERROR would be a PANIC: it
 * never allocates backend memory and never throws.
 *
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "miscadmin.h"
#include "port/atomics.h"
#include "port/pg_bitutils.h"
#include "storage/lwlock.h"
#include "storage/spin.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/syscache.h"

#include "fraudstream.h"
#include "featuredefs.h"
#include "featurestate.h"
#include "shmem.h"

#define FS_STATE_PARTITIONS		128
#define FS_GROUP_LOCK			FS_STATE_PARTITIONS
#define FS_BLOCK_SIZE			128
#define FS_NONE					(-1)

/* Entities with fewer stored events are scanned, not summarised. */
#define FS_SUMMARY_MIN_EVENTS	16
/* Most accumulators a group's summaries hold (see FsWindowSet). */
#define FS_MAX_SLIDES			16
/* orphaned groups freed per sweep, at most (see free_orphan_groups) */
#define FS_MAX_ORPHANS_PER_SWEEP	64

typedef struct FsBlock
{
	int32		next;
	int32		count;
	TimestampTz max_time;		/* newest event of the block */
	char		data[FS_MAX_EVENT_SIZE];
} FsBlock;

StaticAssertDecl(sizeof(FsBlock) == FS_BLOCK_SIZE, "FsBlock must be 128 bytes");


/*
 * An entity: what finding it and reading its features needs, in one cache
 * line (the entity array is aligned to cache lines), and the rest, for
 * appends and late events, in a parallel array (FsEntityTail, tail_of).
 */
typedef struct FsEntity
{
	FsEntityKey key;
	int32		next;			/* hash chain, or free list */
	int32		first_block;
	int32		last_block;
	int32		summary;		/* first block of the running summaries */
	TimestampTz latest;
	uint32		touch;			/* clock of the last append, for LRU */
	uint32		summary_signature;	/* of the specs they summarise */
} FsEntity;

StaticAssertDecl(sizeof(FsEntity) == FS_CACHE_LINE,
				 "FsEntity must fill one cache line");

/*
 * A block of an entity after which at most a number of events are stored
 * (see advance_marks), with the count of blocks from it to the last, both
 * counted.
 */
typedef struct FsShiftMark
{
	int32		block;
	int32		blocks;
} FsShiftMark;

/* the marks: a late event's place usually follows the near one */
#define FS_SHIFT_MARKS	2
#define FS_NEAR_MARK	0
#define FS_FAR_MARK		1

typedef struct FsEntityTail
{
	int32		nevents;
	int32		tail_block;		/* events before it are at or before tail_from */
	TimestampTz tail_from;
	/* at or after tail_block, near first; see advance_marks */
	FsShiftMark marks[FS_SHIFT_MARKS];
	TimestampTz summary_blocked_until;	/* no summary before this time */
} FsEntityTail;

typedef struct FsGroupSlot
{
	Oid			dbid;
	Oid			relid;
	int16		entity_attnum;
	pg_atomic_uint32 layout;	/* layout of the stored events; see lookup */
	uint64		generation;		/* catalog generation that set the layout */
	int			nslots;
	Size		event_size;
	int64		retain;
	pg_atomic_uint32 status;
	/*
	 * Written by appends, on lines of their own: a group's readers (every
	 * row of every attached table reads the fields above) lose no line to
	 * another group's writers.  The watermark is the newest event time,
	 * biased to unsigned.
	 */
	pg_atomic_uint64 watermark pg_attribute_aligned(FS_CACHE_LINE);
	pg_atomic_uint64 events;
	pg_atomic_uint64 late;
	pg_atomic_uint64 evicted_entities;
	pg_atomic_uint64 truncated_events;
	pg_atomic_uint64 expired_entities;
	pg_atomic_uint64 rebuilds;
	pg_atomic_uint64 entities;
	pg_atomic_uint64 summarised;
	pg_atomic_uint64 blocks;	/* pool blocks its entities hold */
} FsGroupSlot;

/* What a partition's lock guards besides its buckets, on a line of its own. */
typedef union FsPartition
{
	struct
	{
		uint32		clock;		/* counts its appends: entity versions, LRU */
		/* its free entries: those whose index is the partition's */
		int32		free_entities;
	}			p;
	char		line[FS_CACHE_LINE];
} FsPartition;

typedef struct FsStateShared
{
	/* read for every scored row, bumped by feature DDL commits */
	pg_atomic_uint64 catalog_generation;
	/* written by every block taken or given back: on another line */
	char		apart[FS_CACHE_LINE];
	slock_t		alloc_lock;		/* protects the free list of blocks */
	int32		free_block;
	int32		nfree_blocks;
	FsGroupSlot groups[FLEXIBLE_ARRAY_MEMBER];
} FsStateShared;

/* GUCs, PGC_POSTMASTER: they size shared memory. */
int			FsMaxEntities = 200000;
int			FsStateMemoryKb = 65536;
int			FsMaxFeatureGroups = 64;

static FsStateShared *state = NULL;
static FsPartition *partitions;
static int32 nbuckets;			/* power of 2; fixed at start */
static int32 *buckets;
static FsEntity *entities;
static FsEntityTail *entity_tails;
static FsBlock *blocks;
static int	nblocks;
static LWLockPadded *state_locks;

#define WATERMARK_BIAS		((uint64) 1 << 63)

static Size
buckets_for(int n)
{
	Size		b = 1024;

	while (b < (Size) n)
		b <<= 1;
	return b;
}

static Size
header_size(void)
{
	return MAXALIGN(offsetof(FsStateShared, groups) +
					sizeof(FsGroupSlot) * FsMaxFeatureGroups);
}

/* Shared memory needed for the configured sizes. */
static Size
state_size(void)
{
	Size		size = header_size();

	size = add_size(size, FS_CACHE_LINE + sizeof(FsPartition) * FS_STATE_PARTITIONS);
	size = add_size(size, MAXALIGN(mul_size(buckets_for(FsMaxEntities), sizeof(int32))));
	size = add_size(size, FS_CACHE_LINE + mul_size(FsMaxEntities, sizeof(FsEntity)));
	size = add_size(size, MAXALIGN(mul_size(FsMaxEntities, sizeof(FsEntityTail))));
	size = add_size(size, mul_size((Size) FsStateMemoryKb * 1024 / FS_BLOCK_SIZE,
								   sizeof(FsBlock)));
	return size;
}

/* Carve the area and, on creation, thread the free lists. */
static void
state_init(void *base, bool found, LWLockPadded *locks)
{
	char	   *p = base;

	state = base;
	state_locks = locks;
	p += header_size();
	partitions = (FsPartition *) TYPEALIGN(FS_CACHE_LINE, p);
	p = (char *) (partitions + FS_STATE_PARTITIONS);
	nbuckets = (int32) buckets_for(FsMaxEntities);
	buckets = (int32 *) p;
	p += MAXALIGN(nbuckets * sizeof(int32));
	entities = (FsEntity *) TYPEALIGN(FS_CACHE_LINE, p);
	p = (char *) entities + (Size) FsMaxEntities * sizeof(FsEntity);
	entity_tails = (FsEntityTail *) p;
	p += MAXALIGN((Size) FsMaxEntities * sizeof(FsEntityTail));
	blocks = (FsBlock *) p;
	nblocks = (int) ((Size) FsStateMemoryKb * 1024 / FS_BLOCK_SIZE);

	if (found)
		return;

	SpinLockInit(&state->alloc_lock);
	pg_atomic_init_u64(&state->catalog_generation, 1);
	for (int i = 0; i < nbuckets; i++)
		buckets[i] = FS_NONE;
	for (int p = 0; p < FS_STATE_PARTITIONS; p++)
	{
		partitions[p].p.clock = 0;
		partitions[p].p.free_entities = FS_NONE;
	}
	for (int i = FsMaxEntities - 1; i >= 0; i--)
	{
		entities[i].key.len = FS_KEY_FREE;
		entities[i].next = partitions[i % FS_STATE_PARTITIONS].p.free_entities;
		partitions[i % FS_STATE_PARTITIONS].p.free_entities = i;
	}
	for (int i = 0; i < nblocks; i++)
		blocks[i].next = (i + 1 < nblocks) ? i + 1 : FS_NONE;
	state->free_block = nblocks > 0 ? 0 : FS_NONE;
	state->nfree_blocks = nblocks;
	for (int g = 0; g < FsMaxFeatureGroups; g++)
	{
		FsGroupSlot *slot = &state->groups[g];

		memset(slot, 0, sizeof(*slot));
		pg_atomic_init_u32(&slot->status, FS_GROUP_FREE);
		pg_atomic_init_u32(&slot->layout, 0);
		pg_atomic_init_u64(&slot->watermark, 0);
		pg_atomic_init_u64(&slot->events, 0);
		pg_atomic_init_u64(&slot->late, 0);
		pg_atomic_init_u64(&slot->evicted_entities, 0);
		pg_atomic_init_u64(&slot->truncated_events, 0);
		pg_atomic_init_u64(&slot->expired_entities, 0);
		pg_atomic_init_u64(&slot->rebuilds, 0);
		pg_atomic_init_u64(&slot->entities, 0);
		pg_atomic_init_u64(&slot->summarised, 0);
		pg_atomic_init_u64(&slot->blocks, 0);
	}
}

static const FsShmemArea state_area = {
	.name = "features",
	.size = state_size,
	.init = state_init,
	.nlocks = FS_STATE_PARTITIONS + 1,
};

/* Define the sizing GUCs and register the area; from _PG_init. */
void
FsFeatureStateInit(void)
{
	DefineCustomIntVariable("fraudstream.max_entities",
							"Most entities (cards, accounts, ...) whose recent events are kept for features.",
							"Beyond it, idle entities are expired and the least recently active evicted.",
							&FsMaxEntities, 200000, 1024, INT_MAX / 2,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("fraudstream.state_memory",
							"Shared memory for the recent events of all entities.",
							NULL,
							&FsStateMemoryKb, 65536, 1024, INT_MAX / 2,
							PGC_POSTMASTER, GUC_UNIT_KB, NULL, NULL, NULL);
	DefineCustomIntVariable("fraudstream.max_feature_groups",
							"Most (source table, entity column) pairs that features can be defined on.",
							NULL,
							&FsMaxFeatureGroups, 64, 1, 4096,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	FsShmemRegister(&state_area);
}

static inline FsGroupSlot *
group_slot(int group)
{
	Assert(state != NULL && group >= 0 && group < FsMaxFeatureGroups);
	return &state->groups[group];
}

static inline FsEntityTail *
tail_of(const FsEntity *ent)
{
	return &entity_tails[ent - entities];
}

static inline int
key_bucket(const FsEntityKey *key)
{
	return (int) (key->hash & (nbuckets - 1));
}

static inline LWLock *
partition_lock(int bucket)
{
	return &state_locks[bucket % FS_STATE_PARTITIONS].lock;
}

/* What the lock of a bucket's partition guards besides its buckets. */
static inline FsPartition *
partition_of(int bucket)
{
	return &partitions[bucket % FS_STATE_PARTITIONS];
}

static inline bool
key_equal(const FsEntityKey *a, const FsEntityKey *b)
{
	return a->hash == b->hash && a->group == b->group && a->len == b->len &&
		memcmp(a->data, b->data, FS_KEY_BYTES(a)) == 0;
}

/* Find an entity in its bucket; caller holds the partition lock. */
static int32
find_entity(const FsEntityKey *key, int bucket)
{
	for (int32 e = buckets[bucket]; e != FS_NONE; e = entities[e].next)
		if (key_equal(&entities[e].key, key))
			return e;
	return FS_NONE;
}

/*
 * Find an entity, trying first the entry where a session found it last
 * (*hint, FS_NONE if none), which it updates; caller holds the partition
 * lock.  An entry only ever holds entities of one partition (its free
 * list is the partition's) and a free entry holds no key, so an entry of
 * the partition whose key matches is the entity: no other backend can be
 * changing it.  The hint saves reading the bucket, a cache miss.
 */
static int32
find_entity_hinted(const FsEntityKey *key, int bucket, int32 *hint)
{
	int32		e = *hint;

	if (e != FS_NONE && e < FsMaxEntities &&
		e % FS_STATE_PARTITIONS == bucket % FS_STATE_PARTITIONS &&
		key_equal(&entities[e].key, key))
		return e;
	e = find_entity(key, bucket);
	*hint = e;
	return e;
}

/*
 * Pop a free entry or block; FS_NONE when the list is empty.  A list of
 * entries is a partition's, whose lock the caller holds exclusively.
 */
static int32
pop_free(int32 *list, bool is_block)
{
	int32		i;

	if (!is_block)
	{
		i = *list;
		if (i != FS_NONE)
			*list = entities[i].next;
		return i;
	}
	SpinLockAcquire(&state->alloc_lock);
	i = *list;
	if (i != FS_NONE)
	{
		*list = blocks[i].next;
		state->nfree_blocks--;
	}
	SpinLockRelease(&state->alloc_lock);
	return i;
}

static void
push_free_block(int32 b)
{
	SpinLockAcquire(&state->alloc_lock);
	blocks[b].next = state->free_block;
	state->free_block = b;
	state->nfree_blocks++;
	SpinLockRelease(&state->alloc_lock);
}

/* Give a chain of blocks of a group's entity back to the pool. */
static void
free_chain(int32 b, int group)
{
	uint64		n = 0;

	while (b != FS_NONE)
	{
		int32		next = blocks[b].next;

		push_free_block(b);
		b = next;
		n++;
	}
	pg_atomic_fetch_sub_u64(&group_slot(group)->blocks, n);
}

/* Give one block of a group's entity back to the pool. */
static void
free_block(int32 b, int group)
{
	push_free_block(b);
	pg_atomic_fetch_sub_u64(&group_slot(group)->blocks, 1);
}

/*
 * Block b, not the entity's last, leaves the part of its events that the
 * shift marks cover (it is dropped, or the tail mark passes it): a mark
 * on it moves to the next block.
 */
static inline void
marks_pass(FsEntityTail *tail, int32 b)
{
	for (int m = 0; m < FS_SHIFT_MARKS; m++)
		if (tail->marks[m].block == b)
		{
			tail->marks[m].block = blocks[b].next;
			tail->marks[m].blocks--;
		}
}

/*
 * Give an entity's oldest block, not its last, back to the pool; returns
 * the number of events it held.  Caller holds the partition lock
 * exclusively.
 */
static int
drop_first_block(FsEntity *ent)
{
	int32		b = ent->first_block;
	int			count = blocks[b].count;
	FsEntityTail *tail = tail_of(ent);

	Assert(b != FS_NONE && b != ent->last_block);
	ent->first_block = blocks[b].next;
	tail->nevents -= count;
	if (tail->tail_block == b)
		tail->tail_block = ent->first_block;
	marks_pass(tail, b);
	free_block(b, ent->key.group);
	return count;
}

/* Drop an entity's running summaries; they are rebuilt when needed. */
static void
summary_drop(FsEntity *ent)
{
	if (ent->summary == FS_NONE)
		return;
	free_chain(ent->summary, ent->key.group);
	ent->summary = FS_NONE;
	pg_atomic_fetch_sub_u64(&group_slot(ent->key.group)->summarised, 1);
}

/* Drop an entity: its blocks and entry go back to the pool. */
static void
free_entity(int32 e, int bucket)
{
	int32	   *link = &buckets[bucket];
	int32		b = entities[e].first_block;

	summary_drop(&entities[e]);
	free_chain(b, entities[e].key.group);
	while (*link != e)
		link = &entities[*link].next;
	*link = entities[e].next;
	pg_atomic_fetch_sub_u64(&group_slot(entities[e].key.group)->entities, 1);

	Assert(e % FS_STATE_PARTITIONS == bucket % FS_STATE_PARTITIONS);
	entities[e].key.len = FS_KEY_FREE;	/* a session's hint finds no key here */
	entities[e].next = partition_of(bucket)->p.free_entities;
	partition_of(bucket)->p.free_entities = e;
}

static inline TimestampTz
group_watermark(FsGroupSlot *slot)
{
	return (TimestampTz) (pg_atomic_read_u64(&slot->watermark) - WATERMARK_BIAS);
}

/*
 * Ages of entities (appends to their partition since their last one) are
 * counted in bins of a quarter of a power of two, for make_room to find
 * the oldest eighth of a partition in one pass.
 */
#define AGE_BINS		128

static inline int
age_bin(uint32 age)
{
	int			high;

	if (age < 4)
		return (int) age;
	high = pg_leftmost_one_pos32(age);
	return high * 4 + (int) ((age >> (high - 2)) & 3);
}

/*
 * Free memory in the partition of "bucket" for entity "keep": expire idle
 * entities, else (for a block) drop the partition's running summaries,
 * else evict the least recently appended eighth of its entities, else
 * drop keep's oldest block.  Evicting an eighth at once keeps a full
 * partition's inserts at a few bucket visits each: evicting one entity
 * per pass over the partition cost each new entity tens of thousands.
 * Returns false when nothing could be freed.  Caller holds the partition
 * lock exclusively.
 */
static bool
make_room(int bucket, int32 keep, bool need_block)
{
	int			part = bucket % FS_STATE_PARTITIONS;
	uint32		now = partitions[part].p.clock;
	uint32		ages[AGE_BINS] = {0};
	uint32		live = 0;
	uint32		oldest = 0;
	int			cut;
	bool		freed = false;

	for (int b = part; b < nbuckets; b += FS_STATE_PARTITIONS)
	{
		int32		e = buckets[b];

		while (e != FS_NONE)
		{
			int32		next = entities[e].next;
			FsGroupSlot *slot = group_slot(entities[e].key.group);

			if (e != keep &&
				entities[e].latest < group_watermark(slot) - slot->retain)
			{
				free_entity(e, b);
				pg_atomic_fetch_add_u64(&slot->expired_entities, 1);
				freed = true;
			}
			else if (e != keep)
			{
				ages[age_bin(now - entities[e].touch)]++;
				live++;
			}
			e = next;
		}
	}
	if (freed)
		return true;

	/* running summaries are only a speed-up: they go before any entity */
	for (int b = part; need_block && b < nbuckets; b += FS_STATE_PARTITIONS)
	{
		for (int32 e = buckets[b]; e != FS_NONE; e = entities[e].next)
		{
			if (entities[e].summary != FS_NONE)
			{
				summary_drop(&entities[e]);
				freed = true;
			}
		}
	}
	if (freed)
		return true;

	if (live > 0)
	{
		/* the bins of the oldest eighth, at least one entity */
		for (cut = AGE_BINS - 1; cut > 0; cut--)
		{
			oldest += ages[cut];
			if (oldest >= Max(live / 8, 1))
				break;
		}
		for (int b = part; b < nbuckets; b += FS_STATE_PARTITIONS)
		{
			int32		e = buckets[b];

			while (e != FS_NONE)
			{
				int32		next = entities[e].next;

				if (e != keep && age_bin(now - entities[e].touch) >= cut)
				{
					pg_atomic_fetch_add_u64(&group_slot(entities[e].key.group)->evicted_entities, 1);
					free_entity(e, b);
				}
				e = next;
			}
		}
		return true;
	}

	if (keep != FS_NONE && entities[keep].first_block != FS_NONE &&
		entities[keep].first_block != entities[keep].last_block)
	{
		FsEntity   *ent = &entities[keep];

		pg_atomic_fetch_add_u64(&group_slot(ent->key.group)->truncated_events,
								drop_first_block(ent));
		/* the summaries may point into the dropped block */
		summary_drop(ent);
		return true;
	}
	return false;
}

/* Allocate from a free list, making room in the partition if needed. */
static int32
alloc_with_room(int32 *list, bool is_block, int bucket, int32 keep)
{
	for (int attempt = 0; attempt < 4; attempt++)
	{
		int32		i = pop_free(list, is_block);

		if (i != FS_NONE)
			return i;
		if (!make_room(bucket, keep, is_block))
			break;
	}
	return FS_NONE;
}

/* The generation of the feature catalog, bumped by each committed change. */
uint64
FsCatalogGeneration(void)
{
	FsRequirePreload("features");
	return pg_atomic_read_u64(&state->catalog_generation);
}

void
FsBumpCatalogGeneration(void)
{
	pg_atomic_fetch_add_u64(&state->catalog_generation, 1);
}

/* Point a slot at a new layout and drop the events stored in the old one. */
static void
relayout(int group, uint32 layout, int nslots, uint64 generation)
{
	FsGroupSlot *slot = &state->groups[group];

	/* Appends and reads check the layout under their partition lock. */
	pg_atomic_write_u32(&slot->layout, layout);
	slot->nslots = nslots;
	slot->event_size = FS_EVENT_SIZE(nslots);
	slot->generation = generation;
	pg_atomic_write_u32(&slot->status, FS_GROUP_UNLOADED);
	FsGroupClear(group, false);
}

/*
 * Find or create the group slot for (relid, entity column) of this
 * database.  "layout" identifies the value slots the caller's definitions
 * give the group's events.  When the slot holds another layout, a caller
 * whose definitions are newer (generation) and committed (may_reset)
 * resets it; anyone else finds it unusable (*usable = false) until its
 * definitions catch up.  Errors out when no slot is free.
 */
/*
 * Free the groups whose database or table no longer exists: DROP DATABASE
 * runs no event trigger in the dropped database, so its groups would keep
 * their entities (and the memory running summaries need) until evicted.
 * Called before a new group is set up.
 */
static void
free_orphan_groups(void)
{
	int			orphans[FS_MAX_ORPHANS_PER_SWEEP];
	int			n = 0;

	LWLockAcquire(&state_locks[FS_GROUP_LOCK].lock, LW_SHARED);
	for (int g = 0; g < FsMaxFeatureGroups && n < FS_MAX_ORPHANS_PER_SWEEP; g++)
	{
		FsGroupSlot *slot = &state->groups[g];

		if (pg_atomic_read_u32(&slot->status) == FS_GROUP_FREE)
			continue;
		if (!SearchSysCacheExists1(DATABASEOID, ObjectIdGetDatum(slot->dbid)) ||
			(slot->dbid == MyDatabaseId &&
			 !SearchSysCacheExists1(RELOID, ObjectIdGetDatum(slot->relid))))
			orphans[n++] = g;
	}
	LWLockRelease(&state_locks[FS_GROUP_LOCK].lock);
	for (int i = 0; i < n; i++)
		FsGroupClear(orphans[i], true);
}

int
FsGroupLookup(Oid relid, int16 entity_attnum, uint32 layout, int nslots,
			  int64 retain, uint64 generation, bool may_reset, bool *usable)
{
	LWLock	   *lock = &state_locks[FS_GROUP_LOCK].lock;
	int			found = -1;
	int			free_slot = -1;

	FsRequirePreload("features");
	if (FS_EVENT_SIZE(nslots) > FS_MAX_EVENT_SIZE)
		elog(ERROR, "feature group event of %d slots does not fit a block", nslots);

	if (FsGroupFind(relid, entity_attnum) < 0)
		free_orphan_groups();
	LWLockAcquire(lock, LW_EXCLUSIVE);
	for (int g = 0; g < FsMaxFeatureGroups; g++)
	{
		FsGroupSlot *slot = &state->groups[g];

		if (pg_atomic_read_u32(&slot->status) == FS_GROUP_FREE)
		{
			if (free_slot < 0)
				free_slot = g;
			continue;
		}
		if (slot->dbid == MyDatabaseId && slot->relid == relid &&
			slot->entity_attnum == entity_attnum)
		{
			found = g;
			break;
		}
	}
	if (found < 0)
	{
		FsGroupSlot *slot;

		if (free_slot < 0)
		{
			LWLockRelease(lock);
			ereport(ERROR,
					(errcode(ERRCODE_CONFIGURATION_LIMIT_EXCEEDED),
					 errmsg("too many feature groups"),
					 errdetail("Each pair of source table and entity column with features uses one of the %d groups.",
							   FsMaxFeatureGroups),
					 errhint("Raise fraudstream.max_feature_groups and restart the server.")));
		}
		slot = &state->groups[free_slot];
		slot->dbid = MyDatabaseId;
		slot->relid = relid;
		slot->entity_attnum = entity_attnum;
		slot->nslots = nslots;
		slot->event_size = FS_EVENT_SIZE(nslots);
		slot->generation = generation;
		pg_atomic_write_u32(&slot->layout, layout);
		pg_atomic_write_u64(&slot->watermark, 0);
		/* a reused slot starts its counters afresh */
		pg_atomic_write_u64(&slot->events, 0);
		pg_atomic_write_u64(&slot->late, 0);
		pg_atomic_write_u64(&slot->evicted_entities, 0);
		pg_atomic_write_u64(&slot->truncated_events, 0);
		pg_atomic_write_u64(&slot->expired_entities, 0);
		pg_atomic_write_u64(&slot->rebuilds, 0);
		pg_atomic_write_u32(&slot->status, FS_GROUP_UNLOADED);
		found = free_slot;
	}
	*usable = pg_atomic_read_u32(&state->groups[found].layout) == layout;
	if (!*usable && may_reset && generation > state->groups[found].generation)
	{
		relayout(found, layout, nslots, generation);
		*usable = true;
	}
	if (*usable)
		state->groups[found].retain = retain;
	LWLockRelease(lock);
	return found;
}

/*
 * The slot of (relid, entity column) in this database, or -1; entity
 * column InvalidAttrNumber matches any group of the table.
 */
int
FsGroupFind(Oid relid, int16 entity_attnum)
{
	int			found = -1;

	LWLockAcquire(&state_locks[FS_GROUP_LOCK].lock, LW_SHARED);
	for (int g = 0; g < FsMaxFeatureGroups && found < 0; g++)
	{
		FsGroupSlot *slot = &state->groups[g];

		if (pg_atomic_read_u32(&slot->status) != FS_GROUP_FREE &&
			slot->dbid == MyDatabaseId && slot->relid == relid &&
			(entity_attnum == InvalidAttrNumber || slot->entity_attnum == entity_attnum))
			found = g;
	}
	LWLockRelease(&state_locks[FS_GROUP_LOCK].lock);
	return found;
}

FsGroupStatus
FsGroupGetStatus(int group)
{
	return (FsGroupStatus) pg_atomic_read_u32(&group_slot(group)->status);
}

void
FsGroupSetStatus(int group, FsGroupStatus status)
{
	if (status == FS_GROUP_READY)
		pg_atomic_fetch_add_u64(&group_slot(group)->rebuilds, 1);
	pg_atomic_write_u32(&group_slot(group)->status, status);
}

/*
 * Drop every entity of a group, one partition at a time; with free_slot
 * the slot itself is released too.  A partition's buckets lie one in
 * FS_STATE_PARTITIONS, so sweeping a partition reads one line in eight of
 * the whole bucket array (16 MB for 4M entities): the sweep stops as soon
 * as the group holds no entity, and a group that holds none (every group
 * after a restart, a new one) costs nothing.  Nobody adds entities to a
 * group while it is cleared (it is unloaded, or its table is locked by the
 * TRUNCATE or DROP that clears it), so its count only falls meanwhile.
 * Never throws: it runs after commit (TRUNCATE, dropped features).
 */
void
FsGroupClear(int group, bool free_slot)
{
	FsGroupSlot *slot = group_slot(group);

	for (int part = 0;
		 part < FS_STATE_PARTITIONS && pg_atomic_read_u64(&slot->entities) > 0;
		 part++)
	{
		LWLockAcquire(&state_locks[part].lock, LW_EXCLUSIVE);
		for (int b = part; b < nbuckets; b += FS_STATE_PARTITIONS)
		{
			int32		e = buckets[b];

			while (e != FS_NONE)
			{
				int32		next = entities[e].next;

				if (entities[e].key.group == group)
					free_entity(e, b);
				e = next;
			}
		}
		LWLockRelease(&state_locks[part].lock);
	}
	pg_atomic_write_u64(&slot->watermark, 0);
	if (free_slot)
	{
		LWLockAcquire(&state_locks[FS_GROUP_LOCK].lock, LW_EXCLUSIVE);
		slot->relid = InvalidOid;
		pg_atomic_write_u32(&slot->status, FS_GROUP_FREE);
		LWLockRelease(&state_locks[FS_GROUP_LOCK].lock);
	}
}

void
FsGroupCountLate(int group)
{
	pg_atomic_fetch_add_u64(&group_slot(group)->late, 1);
}

void
FsGroupGetCounters(int group, FsGroupCounters *c)
{
	FsGroupSlot *slot = group_slot(group);

	c->events = pg_atomic_read_u64(&slot->events);
	c->late = pg_atomic_read_u64(&slot->late);
	c->evicted_entities = pg_atomic_read_u64(&slot->evicted_entities);
	c->truncated_events = pg_atomic_read_u64(&slot->truncated_events);
	c->expired_entities = pg_atomic_read_u64(&slot->expired_entities);
	c->rebuilds = pg_atomic_read_u64(&slot->rebuilds);
	c->entities = (int64) pg_atomic_read_u64(&slot->entities);
	c->summarised = (int64) pg_atomic_read_u64(&slot->summarised);
	c->memory_bytes = (int64) (pg_atomic_read_u64(&slot->entities) *
							   (sizeof(FsEntity) + sizeof(FsEntityTail)) +
							   pg_atomic_read_u64(&slot->blocks) * FS_BLOCK_SIZE);
}

/*
 * Running summaries.  An entity with at least FS_SUMMARY_MIN_EVENTS
 * stored events in time order keeps one FsSlide per accumulator of its
 * group's features (window.c), anchored at its newest event, as a byte
 * stream over a chain of blocks from the same pool.  Appends maintain
 * them, late events included (insert_in_order); reads copy them and walk
 * their fronts to the window of the event being scored, so a feature
 * costs O(1) however busy the entity.  An event older than the newest
 * reads them too, less the events newer than it and plus those its
 * window holds before the fronts (late_summaries), when they are all
 * stats summaries.  An event stored out of order drops them: they come
 * back once it is gone (summary_blocked_until).  Summaries never make
 * room: without a free block an entity is scanned, as a small one is.
 */

/*
 * An accumulator's summary in a packed set of them (FsWindowSet): a set
 * lives in its entity's blocks, in a session's cache and in local buffers
 * alike, so that one copy moves it whole.
 */
static inline FsSlide *
slide_in(char *summaries, const FsWindowSet *set, int j)
{
	return (FsSlide *) (summaries + set->slide_offset[j]);
}

/*
 * Copy an entity's packed summaries out of (store false) or into their
 * blocks.  A loaded summary's bytes that its kind does not read are
 * undefined.
 */
static void
summary_copy(const FsEntity *ent, const FsWindowSet *set, char *summaries, bool store)
{
	Size		left = set->summary_size;

	for (int32 b = ent->summary; left > 0; b = blocks[b].next)
	{
		Size		chunk = Min(left, FS_MAX_EVENT_SIZE);

		Assert(b != FS_NONE);
		if (store)
			memcpy(blocks[b].data, summaries, chunk);
		else
			memcpy(summaries, blocks[b].data, chunk);
		summaries += chunk;
		left -= chunk;
	}
}

/* Allocate the blocks of an entity's summaries; false if the pool is dry. */
static bool
summary_alloc(FsEntity *ent, const FsWindowSet *set)
{
	int			nblk = (int) ((set->summary_size + FS_MAX_EVENT_SIZE - 1) /
							  FS_MAX_EVENT_SIZE);

	Assert(ent->summary == FS_NONE);
	/* leave the last free blocks to events (read unlocked: a hint) */
	if (state->nfree_blocks < nblk + nblocks / 16)
		return false;
	for (int i = 0; i < nblk; i++)
	{
		int32		b = pop_free(&state->free_block, true);

		if (b == FS_NONE)
		{
			summary_drop(ent);
			return false;
		}
		if (ent->summary == FS_NONE)
			pg_atomic_fetch_add_u64(&group_slot(ent->key.group)->summarised, 1);
		pg_atomic_fetch_add_u64(&group_slot(ent->key.group)->blocks, 1);
		blocks[b].next = ent->summary;
		blocks[b].count = 0;
		ent->summary = b;
	}
	return true;
}

/*
 * Walk a stats summary's front past the events at or before "limit": the
 * front ends on the oldest event after it, or just past the newest event.
 * The events passed leave the summary of "spec"; with spec NULL the
 * summary did not hold them (a late event put in place before its front)
 * and only the front moves.  Every block of an entity but its last is
 * full: the count in a block's header, another cache line than most of
 * its events, is read for the last block only.
 */
static void
walk_front(const FsEntity *ent, const FsWindowSpec *spec, FsSlide *slide,
		   Size esize, TimestampTz limit)
{
	int32		b = slide->front_block;
	int			i = slide->front_index;
	int			per_block = (int) (FS_MAX_EVENT_SIZE / esize);

	while (b != FS_NONE)
	{
		const FsEvent *ev;

		Assert(b == ent->last_block || blocks[b].count == per_block);
		if (i >= (b == ent->last_block ? blocks[b].count : per_block))
		{
			if (blocks[b].next == FS_NONE)
				break;
			b = blocks[b].next;
			i = 0;
			continue;
		}
		ev = FS_EVENT_AT(blocks[b].data, i, esize);
		if (ev->time > limit)
			break;
		if (spec != NULL)
			FsSlideRemove(spec, slide, ev);
		i++;
	}
	slide->front_block = b;
	slide->front_index = (uint8) i;
}

/*
 * Rebuild one summary from the stored events after "limit", scanning from
 * block "first" on (the events before it must all be at or before limit).
 */
static void
refold_after(const FsEntity *ent, const FsWindowSpec *spec, FsSlide *slide,
			 Size esize, TimestampTz limit, int32 first)
{
	bool		found = false;

	FsSlideReset(spec, slide);
	for (int32 b = first; b != FS_NONE; b = blocks[b].next)
	{
		for (int i = 0; i < blocks[b].count; i++)
		{
			const FsEvent *ev = FS_EVENT_AT(blocks[b].data, i, esize);

			if (ev->time <= limit)
				continue;
			if (!found)
			{
				slide->front_block = b;
				slide->front_index = (uint8) i;
				found = true;
			}
			FsSlideAdd(spec, slide, ev);
		}
	}
	if (!found)
	{
		slide->front_block = ent->last_block;
		slide->front_index = (uint8) (ent->last_block == FS_NONE ? 0 :
									  blocks[ent->last_block].count);
	}
}

/* Rebuild one summary from the stored events of its window. */
static void
refold(const FsEntity *ent, const FsWindowSpec *spec, FsSlide *slide, Size esize)
{
	refold_after(ent, spec, slide, esize, ent->latest - spec->window, ent->first_block);
}

/*
 * Move the tail mark on: tail_block becomes the first block that may hold
 * an event newer than "bound", tail_from the newest time before it.
 */
static void
advance_tail(FsEntity *ent, TimestampTz bound)
{
	FsEntityTail *tail = tail_of(ent);

	while (tail->tail_block != FS_NONE && tail->tail_block != ent->last_block &&
		   blocks[tail->tail_block].max_time <= bound)
	{
		marks_pass(tail, tail->tail_block);
		tail->tail_from = Max(tail->tail_from, blocks[tail->tail_block].max_time);
		tail->tail_block = blocks[tail->tail_block].next;
	}
}

/* Most stored events a late event may move to take its place in time order. */
#define FS_MAX_SHIFT	512

/* Most events stored after each shift mark's block */
static const int mark_bound[FS_SHIFT_MARKS] = {[FS_NEAR_MARK] = 32, [FS_FAR_MARK] = FS_MAX_SHIFT};

/* Stored events from a shift mark on; every block but the last is full. */
static inline int
events_from_mark(const FsEntity *ent, int m, int per_block)
{
	return (tail_of(ent)->marks[m].blocks - 1) * per_block + blocks[ent->last_block].count;
}

/*
 * Move the shift marks on: each becomes the first block (from the tail
 * mark on) after which at most its bound of events are stored.  A late
 * event whose place in time order is before the far mark would move more
 * than FS_MAX_SHIFT events, and is not put in place; one whose place
 * follows the near mark, as when Kafka partitions interleave an entity's
 * events by a few milliseconds, is found by walking a few blocks from it.
 * So finding a place never walks all the blocks of max_lateness.
 */
static void
advance_marks(FsEntity *ent, int per_block)
{
	FsEntityTail *tail = tail_of(ent);

	for (int m = 0; m < FS_SHIFT_MARKS; m++)
		while (tail->marks[m].blocks >= 2 &&
			   events_from_mark(ent, m, per_block) - per_block > mark_bound[m])
		{
			tail->marks[m].block = blocks[tail->marks[m].block].next;
			tail->marks[m].blocks--;
		}
}

/* Make free block b the entity's new last block. */
static void
append_block(FsEntity *ent, int32 b)
{
	FsEntityTail *tail = tail_of(ent);

	pg_atomic_fetch_add_u64(&group_slot(ent->key.group)->blocks, 1);
	blocks[b].next = FS_NONE;
	blocks[b].count = 0;
	blocks[b].max_time = DT_NOBEGIN;
	if (ent->last_block == FS_NONE)
		ent->first_block = tail->tail_block = b;
	else
		blocks[ent->last_block].next = b;
	for (int m = 0; m < FS_SHIFT_MARKS; m++)
	{
		if (ent->last_block == FS_NONE)
			tail->marks[m].block = b;
		tail->marks[m].blocks++;
	}
	ent->last_block = b;
}

/*
 * The first block that may hold stored events newer than t, for an entity
 * whose events from the tail mark on are in time order (as while it has
 * summaries, or may take late events in place): the last block when its
 * first event is at or before t, as for the usual late event, a few
 * events behind the newest; else the tail mark.  The tail mark lies
 * max_lateness behind the newest event, which for a busy entity is
 * hundreds of blocks, each a cache miss to walk.
 */
static int32
newer_from(const FsEntity *ent, TimestampTz t, Size esize)
{
	const FsBlock *last = &blocks[ent->last_block];

	if (last->count > 0 && FS_EVENT_AT(last->data, 0, esize)->time <= t)
		return ent->last_block;
	for (int m = 0; m < FS_SHIFT_MARKS; m++)
	{
		int32		b = tail_of(ent)->marks[m].block;

		Assert(b != FS_NONE);
		if (blocks[b].count > 0 && FS_EVENT_AT(blocks[b].data, 0, esize)->time <= t)
			return b;
	}
	return tail_of(ent)->tail_block;
}

/*
 * Store an event older than the entity's newest in its place in time
 * order, moving the newer events one place on, and add it to the running
 * summaries (of "set", NULL if none) that hold the events from its place
 * on: a Kafka source's partitions interleave a busy entity's events a
 * little out of order, and its summaries must survive that.  The
 * summaries' fronts are where summary_settle left them, for windows
 * ending at "anchor" (the newest event then); the events appended since
 * are in them, after their fronts.
 * Returns false, changing nothing, when the stored events are not in time
 * order (summary_blocked_until), when the event is older than the tail
 * mark, when it would move more than FS_MAX_SHIFT events, or when a block
 * is needed and the pool has none free: the caller then appends it out
 * of order.  Every block but the last is full, before and after.
 */
static bool
insert_in_order(FsEntity *ent, const FsWindowSet *set, char *slides,
				TimestampTz anchor, const FsEvent *ev, Size esize, int per_block)
{
	FsEntityTail *tail = tail_of(ent);
	char		carry[FS_MAX_EVENT_SIZE];
	char		spill[FS_MAX_EVENT_SIZE];
	int32		b;
	int			i;
	int			moved;

	if (ent->latest < tail->summary_blocked_until || tail->tail_block == FS_NONE ||
		ev->time < tail->tail_from)
		return false;
	/* the first stored event newer than ev: (b, i) */
	b = newer_from(ent, ev->time, esize);
	if (b == tail->tail_block && b != tail->marks[FS_FAR_MARK].block &&
		events_from_mark(ent, FS_FAR_MARK, per_block) > FS_MAX_SHIFT)
		return false;			/* its place is before the far mark */
	for (; b != FS_NONE; b = blocks[b].next)
		if (blocks[b].max_time > ev->time)
			break;
	if (b == FS_NONE)
		return false;
	for (i = 0; FS_EVENT_AT(blocks[b].data, i, esize)->time <= ev->time; i++)
		;
	moved = blocks[b].count - i;
	for (int32 c = blocks[b].next; c != FS_NONE && moved <= FS_MAX_SHIFT; c = blocks[c].next)
		moved += blocks[c].count;
	if (moved > FS_MAX_SHIFT)
		return false;
	if (blocks[ent->last_block].count >= per_block)
	{
		int32		nb = pop_free(&state->free_block, true);

		if (nb == FS_NONE)
			return false;
		append_block(ent, nb);
	}

	/* every event from (b, i) on moves one place on; ev takes (b, i) */
	memcpy(carry, ev, esize);
	for (int32 c = b; c != FS_NONE; c = blocks[c].next, i = 0)
	{
		char	   *data = blocks[c].data;
		int			n = blocks[c].count;

		if (n < per_block)
		{
			/* the last block */
			memmove(data + (i + 1) * esize, data + i * esize, (n - i) * esize);
			memcpy(data + i * esize, carry, esize);
			blocks[c].count = n + 1;
			blocks[c].max_time = FS_EVENT_AT(data, n, esize)->time;
			break;
		}
		memcpy(spill, data + (n - 1) * esize, esize);
		memmove(data + (i + 1) * esize, data + i * esize, (n - 1 - i) * esize);
		memcpy(data + i * esize, carry, esize);
		blocks[c].max_time = FS_EVENT_AT(data, n - 1, esize)->time;
		memcpy(carry, spill, esize);
	}
	tail->nevents++;

	/* the summaries take it in (see FsSlideTakeLate) */
	for (int j = 0; set != NULL && j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];

		if (FsSlideTakeLate(spec, slide_in(slides, set, j), ev, anchor))
			walk_front(ent, NULL, slide_in(slides, set, j), esize, anchor - spec->window);
	}
	return true;
}

/*
 * Bring an entity's summaries up to date after an append of in-order
 * events (already added to them): walk the fronts, refold what must be,
 * and store them.
 */
static void
summary_settle(FsEntity *ent, const FsWindowSet *set, char *slides,
			   Size esize)
{
	for (int j = 0; j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];
		FsSlide    *slide = slide_in(slides, set, j);

		if (FsSlideIsStats(spec))
			walk_front(ent, spec, slide, esize, ent->latest - spec->window);
		/* a walked stats summary's window starts at its front */
		if (FsSlideNeedsRefold(spec, slide))
			refold_after(ent, spec, slide, esize, ent->latest - spec->window,
						 FsSlideIsStats(spec) && slide->front_block != FS_NONE ?
						 slide->front_block : ent->first_block);
	}
	summary_copy(ent, set, slides, true);
}

/* An entity's version: see FsStateVersion. */
static inline uint64
version_of(const FsEntity *ent)
{
	return ((uint64) 1 << 32) | ent->touch;
}

/*
 * A session's copy of an entity's running summaries, walked to the window
 * of the last event it computed features for.  The next event of the
 * entity, if not older, walks the fronts on from there instead of copying
 * and walking the stored summaries again: a bulk insert of many events of
 * one entity then pays O(1) per event for the walks, however far its
 * events run ahead of the stored ones.  Valid while the entity's stored
 * events stay as they were (its version) and the definitions are the ones
 * it was made for.  The session's own merge of its events (FsStateAppend)
 * starts from the cache and leaves the merged summaries in it, so that a
 * session writing an entity transaction after transaction does not copy
 * them out of shared memory again.
 *
 * Overlay.  The cache also takes the session's pending events of the
 * entity in (overlay_at), as they come, in time order: the summaries are
 * then those of the stored and pending events together, each front in the
 * stored events or, once past them, in the pending ones ("passed"), and
 * the features of the next event need no fold of the pending events.  At
 * commit the merge stores these summaries as they are (FsStateAppend).
 * Pending events out of time order, or an event older than the overlay's
 * newest, are served the first way, from the stored summaries alone plus
 * a fold of the pending events.  The owner resets the cache when pending
 * events it took are rolled back (FsSummaryCacheReset).
 */
struct FsSummaryCache
{
	uint64		version;		/* of the entity when copied; 0: empty */
	TimestampTz walked_to;		/* fronts walked to windows ending here */
	char	   *slides;			/* packed (slide_in) */
	int		   *passed;			/* per slide: pending events its front passed */
	uint32		signature;		/* of the definitions copied for */
	int32		entity;			/* entry of the state it was last found in */
	uint16		size;			/* bytes of slides */
	uint16		nslides;
	bool		slides_inline;	/* passed and slides follow the struct */
	bool		stored_only;	/* no overlay until the transaction ends */
	/* the overlay */
	int			pending;		/* pending events in the slides */
	TimestampTz newest;			/* newest event in the slides */
};

StaticAssertDecl(sizeof(struct FsSummaryCache) <= FS_CACHE_LINE,
				 "FsSummaryCache must fit a cache line");

/* Bytes of the fronts in pending events of a set's summaries, and the summaries. */
static inline Size
cache_slides_size(const FsWindowSet *set)
{
	return MAXALIGN(sizeof(int) * Max(set->nslides, 1)) + set->summary_size;
}

/* Point the cache at room for the set's summaries, at "room". */
static void
cache_place(FsSummaryCache *cache, const FsWindowSet *set, char *room)
{
	cache->passed = (int *) room;
	cache->slides = room + MAXALIGN(sizeof(int) * Max(set->nslides, 1));
	memset(cache->passed, 0, sizeof(int) * Max(set->nslides, 1));
	cache->nslides = (uint16) set->nslides;
	cache->size = (uint16) set->summary_size;
}

/*
 * An empty cache for the summaries of "set", which follow it in the same
 * chunk (one cache miss fewer to reach them); it takes room elsewhere if
 * the definitions change.
 */
FsSummaryCache *
FsSummaryCacheCreate(MemoryContext cxt, const FsWindowSet *set)
{
	Size		head = MAXALIGN(sizeof(FsSummaryCache));
	FsSummaryCache *cache = MemoryContextAllocZero(cxt, head + cache_slides_size(set));

	cache_place(cache, set, (char *) cache + head);
	cache->slides_inline = true;
	cache->entity = FS_NONE;
	return cache;
}

/* Forget the cache's summaries: its pending events were rolled back. */
void
FsSummaryCacheReset(FsSummaryCache *cache)
{
	cache->version = 0;
	cache->pending = 0;
	cache->stored_only = false;
}

/* Whether the cache's summaries hold pending events (serve as an overlay). */
bool
FsSummaryCacheHoldsPending(const FsSummaryCache *cache)
{
	return cache->pending > 0 && !cache->stored_only;
}

/*
 * Transaction end: the pending events the overlay took are merged (and
 * then no longer in it, see cache_keep) or gone.
 */
void
FsSummaryCacheEndXact(FsSummaryCache *cache)
{
	if (cache->pending > 0)
		FsSummaryCacheReset(cache);
	cache->stored_only = false;
}

/* Room for the definitions' packed summaries and their fronts. */
static void
cache_fit(FsSummaryCache *cache, const FsWindowSet *set)
{
	if (cache->nslides == set->nslides && cache->size == set->summary_size)
		return;
	if (!cache->slides_inline)
		pfree(cache->passed);	/* the chunk */
	cache_place(cache, set, MemoryContextAlloc(GetMemoryChunkContext(cache),
											   cache_slides_size(set)));
	cache->slides_inline = false;
	FsSummaryCacheReset(cache);
}

/*
 * Whether the cache's summaries were copied from the entity's stored ones
 * as they are now (its version), for these definitions.
 */
static inline bool
cache_current(const FsSummaryCache *cache, const FsEntity *ent,
			  const FsWindowSet *set)
{
	return cache->version == version_of(ent) && cache->signature == set->signature;
}

/*
 * The summaries of an entity walked to the window ending at time t: from
 * the cache when it holds them walked to an earlier time, else copied out
 * of the entity (into the cache, or into "local" without one).  A stats
 * summary that goes stale on the way (its minimum or maximum left) is
 * refolded from its front, which gives the values a scan would.
 */
static char *
summaries_at(FsEntity *ent, const FsWindowSet *set, Size esize, TimestampTz t,
			 FsSummaryCache *cache, char *local)
{
	char	   *slides = local;
	bool		walked = false;

	if (cache != NULL)
	{
		Assert(cache->pending == 0);
		cache_fit(cache, set);
		slides = cache->slides;
		walked = cache_current(cache, ent, set) && t >= cache->walked_to;
		cache->version = version_of(ent);
		cache->signature = set->signature;
		cache->walked_to = t;
	}
	if (!walked)
		summary_copy(ent, set, slides, false);
	for (int j = 0; j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];
		FsSlide    *slide = slide_in(slides, set, j);

		if (!FsSlideIsStats(spec))
			continue;
		walk_front(ent, spec, slide, esize, t - spec->window);
		if ((slide->flags & FS_SLIDE_STALE) && slide->front_block != FS_NONE)
			refold_after(ent, spec, slide, esize, t - spec->window, slide->front_block);
	}
	return slides;
}

/*
 * Mark the cache's slides as the entity's stored summaries, walked to its
 * newest event, with no pending event in them.
 */
static void
cache_settled(FsSummaryCache *cache, const FsEntity *ent, const FsWindowSet *set)
{
	memset(cache->passed, 0, sizeof(int) * set->nslides);
	cache->version = version_of(ent);
	cache->signature = set->signature;
	cache->walked_to = ent->latest;
	cache->newest = ent->latest;
	cache->pending = 0;
	cache->stored_only = false;
}

/*
 * Add the pending events the overlay lacks to its summaries; false,
 * adding none, unless they are in time order, no older than the events
 * in it or than the window it was walked to, and no newer than "until".
 */
static bool
overlay_take(FsSummaryCache *cache, const FsWindowSet *set,
			 const FsEventRun *pending, Size esize, TimestampTz until)
{
	TimestampTz t = Max(cache->newest, cache->walked_to);

	for (int i = cache->pending; i < pending->count; i++)
	{
		TimestampTz et = FS_EVENT_AT(pending->events, i, esize)->time;

		if (et < t || et > until)
			return false;
		t = et;
	}
	for (int i = cache->pending; i < pending->count; i++)
	{
		const FsEvent *ev = FS_EVENT_AT(pending->events, i, esize);

		for (int j = 0; j < set->nslides; j++)
			FsSlideAdd(&set->specs[set->slide_spec[j]], slide_in(cache->slides, set, j), ev);
		cache->newest = ev->time;
	}
	cache->pending = Max(cache->pending, pending->count);
	return true;
}

/* Whether a stats summary's front is past every stored event. */
static inline bool
front_past_stored(const FsEntity *ent, const FsSlide *slide)
{
	return ent->last_block == FS_NONE ||
		(slide->front_block == ent->last_block &&
		 slide->front_index >= blocks[ent->last_block].count);
}

/*
 * Walk an overlay's stats summary to the window ending after "limit":
 * through the stored events, then the pending ones.
 */
static void
overlay_walk(const FsEntity *ent, const FsWindowSpec *spec, FsSlide *slide,
			 int *passed, const FsEventRun *pending, int npending, Size esize,
			 TimestampTz limit)
{
	if (*passed == 0)
	{
		walk_front(ent, spec, slide, esize, limit);
		if (!front_past_stored(ent, slide))
			return;
	}
	while (*passed < npending)
	{
		const FsEvent *ev = FS_EVENT_AT(pending->events, *passed, esize);

		if (ev->time > limit)
			break;
		FsSlideRemove(spec, slide, ev);
		(*passed)++;
	}
}

/* Rebuild an overlay's stats summary of the events after "limit". */
static void
overlay_refold(const FsEntity *ent, const FsWindowSpec *spec, FsSlide *slide,
			   int *passed, const FsEventRun *pending, int npending, Size esize,
			   TimestampTz limit)
{
	refold_after(ent, spec, slide, esize, limit,
				 *passed == 0 ? slide->front_block : ent->last_block);
	*passed = 0;
	for (int i = 0; i < npending; i++)
	{
		const FsEvent *ev = FS_EVENT_AT(pending->events, i, esize);

		if (ev->time <= limit)
			*passed = i + 1;
		else
			FsSlideAdd(spec, slide, ev);
	}
}

/*
 * The summaries of the entity's stored events and the session's pending
 * ones, walked to the window ending at t, in the cache (see "Overlay"
 * above); NULL when the overlay cannot serve: an event older than its
 * newest, or pending events it cannot take (the cache then serves stored
 * summaries only, until the transaction ends).
 */
static char *
overlay_at(FsEntity *ent, const FsWindowSet *set, Size esize, TimestampTz t,
		   FsSummaryCache *cache, const FsEventRun *pending)
{
	if (cache->stored_only || t < cache->newest)
		return NULL;
	cache_fit(cache, set);
	if (!cache_current(cache, ent, set) ||
		t < cache->walked_to || cache->pending > pending->count)
	{
		summary_copy(ent, set, cache->slides, false);
		cache_settled(cache, ent, set);
	}
	if (!overlay_take(cache, set, pending, esize, t))
	{
		/* back to the stored summaries (summaries_at copies them again) */
		FsSummaryCacheReset(cache);
		cache->stored_only = true;
		return NULL;
	}
	for (int j = 0; j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];
		FsSlide    *slide = slide_in(cache->slides, set, j);

		if (!FsSlideIsStats(spec))
			continue;
		overlay_walk(ent, spec, slide, &cache->passed[j], pending, cache->pending,
					 esize, t - spec->window);
		if ((slide->flags & FS_SLIDE_STALE) && slide->front_block != FS_NONE)
			overlay_refold(ent, spec, slide, &cache->passed[j], pending,
						   cache->pending, esize, t - spec->window);
	}
	cache->walked_to = t;
	return cache->slides;
}

/* Blocks before a summary's front a late read walks at most (late_summaries). */
#define FS_LATE_READ_BLOCKS	64

/*
 * The summaries of an entity for an event older than its newest (a late
 * read, as when Kafka partitions interleave its events), into "local":
 * each window ending at the newest event, less the stored events newer
 * than t (after the tail mark), plus those of the window ending at t that
 * the front has passed.  Only for stats summaries, each of whose windows
 * holds t; NULL when any summary cannot serve (another kind, t before a
 * window, a minimum or maximum leaving, too many blocks before a front):
 * the caller scans.
 */
static char *
late_summaries(FsEntity *ent, const FsWindowSet *set, Size esize, TimestampTz t,
			   char *local)
{
	if (tail_of(ent)->tail_block == FS_NONE || t < tail_of(ent)->tail_from)
		return NULL;
	for (int j = 0; j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];

		if (!FsSlideIsStats(spec) || t <= ent->latest - spec->window)
			return NULL;
	}
	summary_copy(ent, set, local, false);
	/* the stored events newer than t leave (all are in every window) */
	for (int32 b = newer_from(ent, t, esize); b != FS_NONE; b = blocks[b].next)
		for (int i = 0; i < blocks[b].count; i++)
		{
			const FsEvent *ev = FS_EVENT_AT(blocks[b].data, i, esize);

			if (ev->time > t)
				for (int j = 0; j < set->nslides; j++)
					FsSlideRemove(&set->specs[set->slide_spec[j]], slide_in(local, set, j), ev);
		}
	for (int j = 0; j < set->nslides; j++)
	{
		const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];
		FsSlide    *slide = slide_in(local, set, j);
		int			nblocks = 0;

		/* those before the front but in t's window come back */
		for (int32 b = ent->first_block; b != FS_NONE; b = blocks[b].next)
		{
			bool		at_front = false;

			if (++nblocks > FS_LATE_READ_BLOCKS)
				return NULL;
			for (int i = 0; i < blocks[b].count; i++)
			{
				const FsEvent *ev = FS_EVENT_AT(blocks[b].data, i, esize);

				if (b == slide->front_block && i == slide->front_index)
				{
					at_front = true;
					break;
				}
				if (ev->time > t - spec->window)
					FsSlideAdd(spec, slide, ev);
			}
			if (at_front || b == slide->front_block)
				break;
		}
		if (slide->flags & FS_SLIDE_STALE)
			return NULL;
	}
	return local;
}

/*
 * Compute features of "current" for an entity from its stored events (or
 * their summaries, through "cache" when not NULL) and the caller's own
 * pending ones (NULL if none).  *latest gets the time of the entity's
 * newest stored event, or DT_NOBEGIN.  Returns whether the entity had
 * stored events.
 */
bool
FsStateCompute(const FsEntityKey *key, uint32 layout, const FsEventRun *pending,
			   const FsWindowSet *set, FsSummaryCache *cache,
			   const FsEvent *current, bool probe,
			   double *result, bool *isnull, TimestampTz *latest)
{
	FsGroupSlot *slot = group_slot(key->group);
	int			bucket = key_bucket(key);
	LWLock	   *lock = partition_lock(bucket);
	FsEventRun	local_runs[16];	/* the stored blocks and the pending run */
	FsEventRun *runs = NULL;
	int			nruns = 0;
	int32		e;
	FsSlide		local[FS_MAX_SLIDES];
	const FsSlide *slide_of[FS_MAX_SPECS];
	bool		summarised = false;
	bool		overlaid = false;	/* the summaries hold the pending events */
	bool		scan = true;
	int32		scan_from = FS_NONE;	/* where the scan starts; FS_NONE: first block */
	int64		scan_window = 0;
	bool		scan_all = false;

	LWLockAcquire(lock, LW_SHARED);
	e = FS_NONE;
	if (pg_atomic_read_u32(&slot->layout) == layout)
		e = cache != NULL ? find_entity_hinted(key, bucket, &cache->entity) :
			find_entity(key, bucket);
	*latest = DT_NOBEGIN;
	if (e != FS_NONE)
	{
		FsEntity   *ent = &entities[e];
		char	   *slides = NULL;

		*latest = ent->latest;
		if (ent->summary != FS_NONE && ent->summary_signature == set->signature)
		{
			if (current->time >= ent->latest)
			{
				if (cache != NULL && pending != NULL)
					slides = overlay_at(ent, set, slot->event_size, current->time,
										cache, pending);
				overlaid = slides != NULL;
				if (slides == NULL)
					slides = summaries_at(ent, set, slot->event_size, current->time,
										  (cache != NULL && cache->stored_only) ? cache : NULL,
										  (char *) local);
			}
			else
				slides = late_summaries(ent, set, slot->event_size, current->time,
										(char *) local);
		}
		if (slides != NULL)
		{
			summarised = true;
			scan = false;
			for (int f = 0; f < set->nspecs; f++)
				slide_of[f] = NULL;
			for (int j = 0; j < set->nslides; j++)
			{
				const FsWindowSpec *spec = &set->specs[set->slide_spec[j]];
				const FsSlide *slide = slide_in(slides, set, j);

				slide_of[set->slide_spec[j]] = slide;
				if (slide->flags & (FS_SLIDE_STALE | FS_SLIDE_OVERFLOW))
				{
					/*
					 * A stale stats summary (a value that is not finite)
					 * needs only the events from its front on (stored
					 * events are in time order while summaries exist); the
					 * longest such window decides where the scan starts.
					 * Anything else scans from the start.
					 */
					scan = true;
					if (!FsSlideIsStats(spec) || slide->front_block == FS_NONE)
						scan_all = true;
					else if (spec->window > scan_window)
					{
						scan_window = spec->window;
						scan_from = slide->front_block;
					}
				}
			}
		}
		if (scan)
		{
			int32		first = (scan_all || scan_from == FS_NONE) ? ent->first_block : scan_from;
			int			nstored = 0;

			for (int32 b = first; b != FS_NONE; b = blocks[b].next)
				nstored++;
			runs = nstored < (int) lengthof(local_runs) ? local_runs :
				palloc(sizeof(FsEventRun) * (nstored + 1));
			for (int32 b = first; b != FS_NONE; b = blocks[b].next)
			{
				runs[nruns].events = (const FsEvent *) blocks[b].data;
				runs[nruns].count = blocks[b].count;
				nruns++;
			}
			/* what the summaries that serve hold is not folded again */
			if (overlaid)
				runs[nruns++] = *pending;
		}
	}
	FsWindowComputeSlid(set, slot->event_size, summarised ? slide_of : NULL,
						runs, nruns, overlaid ? NULL : pending, current, probe,
						result, isnull);
	LWLockRelease(lock);
	if (runs != NULL && runs != local_runs)
		pfree(runs);
	return e != FS_NONE;
}

/*
 * Append an entity's stored events to a reset replay: with its running
 * summaries when it has them for the replay's definitions (the replay
 * then need not rebuild them), else one by one.
 */
static void
replay_stored(const FsEntity *ent, FsReplay *replay, Size esize)
{
	const FsWindowSet *set = FsReplaySet(replay);
	FsSlide		slides[FS_MAX_SLIDES];
	int64		fronts[FS_MAX_SLIDES];
	int			nslides = set->nslides;
	int64		seq = 0;

	if (ent->summary == FS_NONE || ent->summary_signature != set->signature ||
		nslides > FS_MAX_SLIDES)
	{
		for (int32 b = ent->first_block; b != FS_NONE; b = blocks[b].next)
			for (int i = 0; i < blocks[b].count; i++)
				FsReplayAppend(replay, FS_EVENT_AT(blocks[b].data, i, esize));
		return;
	}
	summary_copy(ent, set, (char *) slides, false);
	for (int j = 0; j < nslides; j++)
		fronts[j] = -1;
	for (int32 b = ent->first_block; b != FS_NONE; b = blocks[b].next)
	{
		for (int j = 0; j < nslides; j++)
		{
			const FsSlide *slide = slide_in((char *) slides, set, j);

			if (fronts[j] < 0 && slide->front_block == b)
				fronts[j] = seq + slide->front_index;
		}
		FsReplayAppendStored(replay, (const FsEvent *) blocks[b].data, blocks[b].count);
		seq += blocks[b].count;
	}
	/* a front not found (not a stats summary's) is past the newest event */
	for (int j = 0; j < nslides; j++)
		if (fronts[j] < 0)
			fronts[j] = seq;
	FsReplaySeed(replay, (const char *) slides, fronts);
}

/*
 * The entity's version (see FsStateVersion), and with a replay, its stored
 * events appended to it in stored order, both under one lock.
 */
static uint64
entity_version(const FsEntityKey *key, uint32 layout, FsReplay *replay)
{
	int			bucket = key_bucket(key);
	LWLock	   *lock = partition_lock(bucket);
	Size		esize = group_slot(key->group)->event_size;
	uint64		version = 0;

	LWLockAcquire(lock, LW_SHARED);
	if (pg_atomic_read_u32(&group_slot(key->group)->layout) == layout)
	{
		int32		e = find_entity(key, bucket);

		if (e != FS_NONE)
		{
			version = version_of(&entities[e]);
			if (replay != NULL)
				replay_stored(&entities[e], replay, esize);
		}
	}
	LWLockRelease(lock);
	return version;
}

/*
 * A number that changes whenever the entity's stored events change (an
 * append, which may also drop old events, or the entity going away): its
 * append clock, with bit 32 set while the entity exists.  0 when there is
 * no such entity.  See FsStateReplay.
 */
uint64
FsStateVersion(const FsEntityKey *key, uint32 layout)
{
	return entity_version(key, layout, NULL);
}

/*
 * Append the entity's stored events, in stored order, to a replay: for a
 * session whose own pending events of the entity are many, which then
 * computes their features with the replay's running summaries instead of
 * folding its pending events each time (online.c).  Returns the version
 * (FsStateVersion) of what was copied, read under the same lock.
 */
uint64
FsStateReplay(const FsEntityKey *key, uint32 layout, FsReplay *replay)
{
	return entity_version(key, layout, replay);
}

/* Time of the entity's newest stored event, or DT_NOBEGIN. */
TimestampTz
FsStateLatest(const FsEntityKey *key, uint32 layout)
{
	int			bucket = key_bucket(key);
	LWLock	   *lock = partition_lock(bucket);
	TimestampTz latest = DT_NOBEGIN;

	LWLockAcquire(lock, LW_SHARED);
	if (pg_atomic_read_u32(&group_slot(key->group)->layout) == layout)
	{
		int32		e = find_entity(key, bucket);

		if (e != FS_NONE)
			latest = entities[e].latest;
	}
	LWLockRelease(lock);
	return latest;
}

/*
 * Whether the overlay of a session's cache can stand for the stored
 * summaries in an append of its pending events: made from them (same
 * version and definitions), and taking the events it lacks in time order
 * (overlay_take), walked no further than the newest of them (a probe,
 * FsStateCompute with a time ahead, walks windows that are not the stored
 * ones).  Then the summaries hold the events already, and those fronts
 * that passed pending events only need placing in the blocks the events
 * go to; none passed the newest.
 */
static bool
overlay_serves_append(FsSummaryCache *cache, const FsEntity *ent,
					  const FsWindowSet *set, const FsEvent *events, int count,
					  Size esize)
{
	FsEventRun	run;

	if (cache == NULL || cache->stored_only ||
		cache->nslides != set->nslides || cache->size != set->summary_size ||
		!cache_current(cache, ent, set) || cache->pending > count)
		return false;
	/* walked past the newest event (a probe ahead): not the stored windows */
	if (cache->walked_to > Max(ent->latest, FS_EVENT_AT(events, count - 1, esize)->time))
		return false;
	run.events = events;
	run.count = count;
	return overlay_take(cache, set, &run, esize, DT_NOEND);
}

/*
 * After an append, hand the entity's summaries (NULL: it has none) to the
 * session's cache as if copied out and walked to its newest event: the
 * session's next events of the entity walk on from there.
 */
static void
cache_keep(FsSummaryCache *cache, const FsEntity *ent, const FsWindowSet *set,
		   const char *slides)
{
	if (cache == NULL)
		return;
	FsSummaryCacheReset(cache);
	if (slides == NULL || cache->nslides != set->nslides ||
		cache->size != set->summary_size)
		return;
	if (slides != cache->slides)
		memcpy(cache->slides, slides, set->summary_size);
	cache_settled(cache, ent, set);
}

/*
 * Append committed events of one entity, in arrival order, and maintain
 * its running summaries for the definitions "set" (NULL: drop them),
 * starting from the overlay of the committing session's cache (NULL:
 * none) when it can (overlay_serves_append), and leaving them there.
 * Runs after commit: never throws, never allocates backend memory; when
 * shared memory is exhausted it makes room as the file header describes.
 */
void
FsStateAppend(const FsEntityKey *key, uint32 layout, const FsWindowSet *set,
			  const FsEvent *events, int count, FsSummaryCache *cache)
{
	FsGroupSlot *slot = group_slot(key->group);
	Size		esize = slot->event_size;
	int			per_block = (int) (FS_MAX_EVENT_SIZE / esize);
	int			bucket = key_bucket(key);
	LWLock	   *lock = partition_lock(bucket);
	FsEntity   *ent;
	FsEntityTail *tail;
	int32		e;
	TimestampTz newest = DT_NOBEGIN;
	FsSlide		local[FS_MAX_SLIDES];	/* room for packed summaries */
	char	   *slides = (char *) local;
	int			nslides = 0;
	bool		overlaid = false;	/* the summaries hold the events */
	bool		summarise;
	TimestampTz anchor;			/* the summaries' windows end here */

	LWLockAcquire(lock, LW_EXCLUSIVE);
	if (pg_atomic_read_u32(&slot->layout) != layout)
	{
		/* the group was reset for new definitions; it will be rebuilt */
		LWLockRelease(lock);
		return;
	}
	e = cache != NULL ? find_entity_hinted(key, bucket, &cache->entity) :
		find_entity(key, bucket);
	if (e == FS_NONE)
	{
		e = alloc_with_room(&partition_of(bucket)->p.free_entities,
							false, bucket, FS_NONE);
		if (e == FS_NONE)
		{
			LWLockRelease(lock);
			pg_atomic_fetch_add_u64(&slot->truncated_events, count);
			return;
		}
		ent = &entities[e];
		tail = tail_of(ent);
		ent->key = *key;
		ent->first_block = ent->last_block = FS_NONE;
		tail->nevents = 0;
		ent->latest = DT_NOBEGIN;
		ent->summary = FS_NONE;
		ent->summary_signature = 0;
		tail->summary_blocked_until = DT_NOBEGIN;
		tail->tail_block = FS_NONE;
		tail->tail_from = DT_NOBEGIN;
		for (int m = 0; m < FS_SHIFT_MARKS; m++)
		{
			tail->marks[m].block = FS_NONE;
			tail->marks[m].blocks = 0;
		}
		ent->next = buckets[bucket];
		buckets[bucket] = e;
		pg_atomic_fetch_add_u64(&slot->entities, 1);
		if (cache != NULL)
			cache->entity = e;
	}
	ent = &entities[e];
	tail = tail_of(ent);

	if (set != NULL)
		nslides = set->nslides;
	summarise = set != NULL && nslides > 0 && nslides <= FS_MAX_SLIDES &&
		set->longest <= slot->retain;
	if (ent->summary != FS_NONE &&
		(!summarise || ent->summary_signature != set->signature))
		summary_drop(ent);
	if (ent->summary != FS_NONE)
	{
		overlaid = overlay_serves_append(cache, ent, set, events, count, esize);
		if (overlaid)
			slides = cache->slides;
		else
			summary_copy(ent, set, slides, false);
	}
	/* a new version (after the overlay was checked against the old one) */
	ent->touch = partition_of(bucket)->p.clock++;
	anchor = ent->latest;

	for (int i = 0; i < count; i++)
	{
		const FsEvent *ev = FS_EVENT_AT(events, i, esize);
		FsBlock    *blk;

		newest = Max(newest, ev->time);
		if (ev->time < ent->latest &&
			insert_in_order(ent, ent->summary != FS_NONE ? set : NULL, slides,
							anchor, ev, esize, per_block))
			continue;
		if (ent->last_block == FS_NONE || blocks[ent->last_block].count >= per_block)
		{
			int32		b = alloc_with_room(&state->free_block, true, bucket, e);

			if (b == FS_NONE)
			{
				pg_atomic_fetch_add_u64(&slot->truncated_events, 1);
				summary_drop(ent);
				continue;
			}
			append_block(ent, b);
		}
		blk = &blocks[ent->last_block];
		memcpy(blk->data + blk->count * esize, ev, esize);
		blk->count++;
		blk->max_time = Max(blk->max_time, ev->time);
		tail->nevents++;
		if (ev->time < ent->latest)
		{
			/*
			 * Out of time order (insert_in_order could not place it): no
			 * summary, nor an event put in order, until the event is gone.
			 */
			summary_drop(ent);
			tail->summary_blocked_until = Max(tail->summary_blocked_until,
											 ent->latest + slot->retain);
		}
		else if (overlaid)
		{
			/* a front that passed events before this one stops at it */
			for (int j = 0; j < set->nslides; j++)
				if (cache->passed[j] == i && i > 0)
				{
					FsSlide    *slide = slide_in(slides, set, j);

					slide->front_block = ent->last_block;
					slide->front_index = (uint8) (blk->count - 1);
				}
		}
		else if (ent->summary != FS_NONE)
		{
			for (int j = 0; j < set->nslides; j++)
				FsSlideAdd(&set->specs[set->slide_spec[j]], slide_in(slides, set, j), ev);
		}
		ent->latest = Max(ent->latest, ev->time);
	}
	if (ent->summary != FS_NONE)
		summary_settle(ent, set, slides, esize);
	else if (summarise && tail->nevents >= FS_SUMMARY_MIN_EVENTS &&
			 ent->latest >= tail->summary_blocked_until &&
			 summary_alloc(ent, set))
	{
		ent->summary_signature = set->signature;
		for (int j = 0; j < set->nslides; j++)
			refold(ent, &set->specs[set->slide_spec[j]], slide_in(slides, set, j), esize);
		summary_copy(ent, set, slides, true);
	}
	cache_keep(cache, ent, set, ent->summary != FS_NONE ? slides : NULL);

	/* Blocks no window can reach any more go back to the pool. */
	while (ent->first_block != FS_NONE && ent->first_block != ent->last_block &&
		   blocks[ent->first_block].max_time <= ent->latest - slot->retain)
		(void) drop_first_block(ent);
	if (ent->last_block != FS_NONE)
		advance_marks(ent, per_block);
	advance_tail(ent, ent->latest - (int64) FsMaxLatenessMs * 1000);
	LWLockRelease(lock);

	pg_atomic_fetch_add_u64(&slot->events, count);
	if (newest != DT_NOBEGIN)
	{
		uint64		biased = (uint64) newest + WATERMARK_BIAS;
		uint64		old = pg_atomic_read_u64(&slot->watermark);

		while (old < biased &&
			   !pg_atomic_compare_exchange_u64(&slot->watermark, &old, biased))
			;
	}
}
