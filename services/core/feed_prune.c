/* feed_prune.c - the change log's retention (see feed_prune.h). Pruning
 * often keeps each prune small; a watcher resuming from a pruned position
 * is told so (OUT_OF_RANGE), never skipped past it. Replicas on one store
 * each prune: the work is idempotent. */
#include "feed_prune.h"

#include "log.h"
#include "ticker.h"

/* A tenth of the retention, within these bounds. */
#define PRUNE_MIN_US (100 * 1000LL)
#define PRUNE_MAX_US (60 * 1000000LL)

static ticker pruner;
static store *prune_store;
static long long retain_us;

static void prune(void *arg) {
  (void)arg;
  store_err err;
  long long removed = 0;
  if (store_changes_prune(prune_store, store_now_us() - retain_us, &removed, &err) < 0)
    log_printf(LOG_LEVEL_WARN, "change log prune failed: %s", err.msg);
  else if (removed)
    log_printf(LOG_LEVEL_DEBUG, "change log: pruned %lld changes", removed);
}

static long long interval(void *arg) {
  (void)arg;
  long long us = retain_us / 10;
  return us < PRUNE_MIN_US ? PRUNE_MIN_US : us > PRUNE_MAX_US ? PRUNE_MAX_US : us;
}

int feed_prune_start(store *st, long long retain_ms) {
  prune_store = st;
  retain_us = retain_ms * 1000;
  return ticker_start(&pruner, prune, interval, NULL);
}

void feed_prune_stop(void) {
  ticker_stop(&pruner);
}
