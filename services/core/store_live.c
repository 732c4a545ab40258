/* store_live.c - the store's reachability (see store_live.h). One thread
 * pings; calls only read an atomic flag or, on failure, clear it. */
#include "store_live.h"

#include "log.h"
#include "metrics.h"
#include "rpc_health.h"
#include "ticker.h"

static store *target;
static int up = 1;
static ticker pinger;

int store_live_up(void) {
  return __atomic_load_n(&up, __ATOMIC_ACQUIRE);
}

static void set_up(int now_up, const store_err *err) {
  if (__atomic_exchange_n(&up, now_up, __ATOMIC_ACQ_REL) == now_up) return;
  metrics_gauge_set("events_store_up", "", now_up);
  rpc_watch_notify();
  if (now_up)
    log_printf(LOG_LEVEL_WARN, "store reachable again: serving");
  else
    log_json(LOG_LEVEL_WARN, "store unreachable: calls fail fast, health NOT_SERVING",
             json_pack("{s:s}", "error", err ? err->msg : "a call found it unreachable"));
}

void store_live_down(void) {
  set_up(0, NULL);
  ticker_wake(&pinger); /* ping at the faster pace from now */
}

static long long ping_interval(void *unused) {
  (void)unused;
  return store_live_up() ? 1000000 : 250000;
}

static void ping(void *unused) {
  (void)unused;
  store_err err = {0};
  int rc = store_ping(target, &err);
  /* Only unreachability counts: any other answer means it is there. */
  set_up(rc != STORE_EUNAVAILABLE, &err);
}

int store_live_start(store *st) {
  target = st;
  metrics_describe("events_store_up", "gauge", "1 while the store is reachable");
  metrics_gauge_set("events_store_up", "", store_live_up());
  return ticker_start(&pinger, ping, ping_interval, NULL);
}

void store_live_stop(void) {
  ticker_stop(&pinger);
}
