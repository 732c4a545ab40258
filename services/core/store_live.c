/* store_live.c - the store's reachability (see store_live.h). One thread
 * pings; calls only read an atomic flag or, on failure, clear it. */
#include "store_live.h"

#include <pthread.h>
#include <time.h>

#include "log.h"
#include "metrics.h"
#include "rpc_health.h"

static store *target;
static int up = 1;
static int stopping, running;
static pthread_t pinger;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t wake = PTHREAD_COND_INITIALIZER;

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
  pthread_mutex_lock(&mu);
  pthread_cond_signal(&wake); /* ping at the faster pace from now */
  pthread_mutex_unlock(&mu);
}

static void *ping_loop(void *unused) {
  (void)unused;
  pthread_mutex_lock(&mu);
  while (!stopping) {
    long long step_ms = store_live_up() ? 1000 : 250;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    long long ns = until.tv_nsec + step_ms * 1000000;
    until.tv_sec += ns / 1000000000;
    until.tv_nsec = ns % 1000000000;
    pthread_cond_timedwait(&wake, &mu, &until);
    if (stopping) break;
    pthread_mutex_unlock(&mu);
    store_err err = {0};
    int rc = store_ping(target, &err);
    /* Only unreachability counts: any other answer means it is there. */
    set_up(rc != STORE_EUNAVAILABLE, &err);
    pthread_mutex_lock(&mu);
  }
  pthread_mutex_unlock(&mu);
  return NULL;
}

int store_live_start(store *st) {
  target = st;
  metrics_describe("events_store_up", "gauge", "1 while the store is reachable");
  metrics_gauge_set("events_store_up", "", store_live_up());
  stopping = 0;
  if (pthread_create(&pinger, NULL, ping_loop, NULL) != 0) return -1;
  running = 1;
  return 0;
}

void store_live_stop(void) {
  if (!running) return;
  pthread_mutex_lock(&mu);
  stopping = 1;
  pthread_cond_signal(&wake);
  pthread_mutex_unlock(&mu);
  pthread_join(pinger, NULL);
  running = 0;
}
