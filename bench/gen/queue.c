/*-------------------------------------------------------------------------
 *
 * queue.c
 *		fs_gen's event queue: everything scheduled and not yet due, taken
 *		out in due-time order.
 *
 * At the rates of a live run (50,000 transactions/s) the queue holds
 * every session in flight, a couple of million items, and a binary heap
 * over them spends its time waiting for memory.  But the simulation never
 * schedules anything before the time it is at, so the queue is monotone
 * and a radix heap serves: bucket b holds the keys whose highest bit that
 * differs from the last key taken out is bit b - 1 (bucket 0: equal to
 * it).  A push appends to a bucket; a pop takes from bucket 0 and, when
 * that is empty, finds the smallest key of the first non-empty bucket and
 * spreads that bucket over the lower ones.  Every access is a sequential
 * scan or an append, and each key moves at most once per bit of the
 * spread of due times.
 *
 * Items live in a pool that grows by doubling and recycles slots through
 * a free list; the buckets hold 16-byte keys (due time, pool slot).
 * Items due at the same microsecond come out in a deterministic order
 * that depends only on the sequence of pushes and pops.
 *
 * bench/gen/queue.c
 *
 *-------------------------------------------------------------------------
 */
#include <stdio.h>
#include <stdlib.h>

#include "fs_gen.h"

/* Grow an array to hold at least need elements, or exit. */
static void *
grow(void *array, size_t *cap, size_t need, size_t size)
{
	if (need <= *cap)
		return array;
	*cap = *cap ? 2 * *cap : 1024;
	if (*cap < need)
		*cap = need;
	array = realloc(array, *cap * size);
	if (!array)
	{
		fprintf(stderr, "fs_gen: out of memory for the event queue\n");
		exit(1);
	}
	return array;
}

/* Bucket of a key: one past the highest bit in which it differs from last. */
static int
bucket_of(const FsQueue *q, uint64_t at)
{
	uint64_t	diff = at ^ q->last;
	int			b = 0;

	while (diff)
	{
		diff >>= 1;
		b++;
	}
	return b;
}

/* File a key in its bucket. */
static void
append(FsQueue *q, FsQueueKey key)
{
	FsQueueBucket *bucket = &q->bucket[bucket_of(q, (uint64_t) key.at)];

	bucket->keys = grow(bucket->keys, &bucket->cap, bucket->len + 1, sizeof(FsQueueKey));
	bucket->keys[bucket->len++] = key;
}

/*
 * Schedule an item, copied into the pool.  Its due time may not be
 * earlier than the last one taken out: the queue is monotone.
 */
void
FsQueuePush(FsQueue *q, const FsItem *item)
{
	FsQueueKey	key;

	if ((uint64_t) item->at < q->last)
	{
		fprintf(stderr, "fs_gen: internal error: event scheduled in the past\n");
		abort();
	}
	if (q->nfree > 0)
		key.slot = q->free[--q->nfree];
	else
	{
		q->pool = grow(q->pool, &q->pool_cap, q->pool_len + 1, sizeof(FsItem));
		key.slot = (uint32_t) q->pool_len++;
	}
	q->pool[key.slot] = *item;
	key.at = item->at;
	append(q, key);
	q->len++;
}

/* Take out the earliest item; false if there is none. */
bool
FsQueuePop(FsQueue *q, FsItem *out)
{
	FsQueueBucket *b0 = &q->bucket[0];
	FsQueueKey	key;

	if (q->len == 0)
		return false;
	if (b0->head == b0->len)
	{
		FsQueueBucket *from;
		uint64_t	min = UINT64_MAX;
		int			i = 1;

		b0->head = b0->len = 0;
		while (q->bucket[i].len == 0)
			i++;
		from = &q->bucket[i];
		for (size_t k = 0; k < from->len; k++)
			if ((uint64_t) from->keys[k].at < min)
				min = (uint64_t) from->keys[k].at;
		q->last = min;
		/* All of them land in lower buckets: from is not appended to. */
		for (size_t k = 0; k < from->len; k++)
			append(q, from->keys[k]);
		from->len = 0;
	}
	key = b0->keys[b0->head++];
	q->len--;
	*out = q->pool[key.slot];
	q->free = grow(q->free, &q->free_cap, q->nfree + 1, sizeof(uint32_t));
	q->free[q->nfree++] = key.slot;
	return true;
}
