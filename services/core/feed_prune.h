/* feed_prune.h - keeps the change log to its retention (EVENTS_CHANGES_RETAIN):
 * a ticker removes the changes older than that, every tenant's at once. */
#ifndef EVENTS_FEED_PRUNE_H
#define EVENTS_FEED_PRUNE_H

#include "store.h"

/* Starts pruning st's log of changes older than retain_ms; 0 or -1. */
int feed_prune_start(store *st, long long retain_ms);
void feed_prune_stop(void);

#endif
