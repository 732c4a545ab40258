/* gw_conn.c - per-connection state and the reaper that enforces the total
 * deadline for receiving a request (see gw_conn.h). A reaped connection's
 * socket is shut down, so libmicrohttpd sees it end and closes it in its own
 * thread; the descriptor is never closed here. */
#include "gw_conn.h"

#include <pthread.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "ticker.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* the list */
static gw_conn *head;
static long long deadline_us;
static ticker reaper;

void gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  gw_conn *c = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    c = calloc(1, sizeof *c);
    *socket_context = c;
    if (!c) return;
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = i ? i->connect_fd : -1;
    c->ready_us = ids_now_us();
    pthread_mutex_lock(&mu);
    c->next = head;
    if (head) head->prev = c;
    head = c;
    pthread_mutex_unlock(&mu);
    return;
  }
  if (!c) return;
  /* libmicrohttpd closes the descriptor after this returns, so the reaper
   * never shuts down a number already reused by another connection. */
  pthread_mutex_lock(&mu);
  if (c->prev)
    c->prev->next = c->next;
  else
    head = c->next;
  if (c->next) c->next->prev = c->prev;
  pthread_mutex_unlock(&mu);
  free(c);
  *socket_context = NULL;
}

gw_conn *gw_conn_of(struct MHD_Connection *conn) {
  const union MHD_ConnectionInfo *i =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  return i ? i->socket_context : NULL;
}

void gw_conn_set_busy(struct MHD_Connection *conn, int busy) {
  gw_conn *c = gw_conn_of(conn);
  if (!c) return;
  if (!busy) __atomic_store_n(&c->ready_us, ids_now_us(), __ATOMIC_RELAXED);
  __atomic_store_n(&c->busy, busy, __ATOMIC_RELEASE);
}

static long long reap_interval(void *unused) {
  (void)unused;
  /* A quarter of the deadline between sweeps: a connection ends at most
   * 25% past it, and an idle gateway wakes a few times a second at most. */
  return deadline_us / 4 < 250000 ? deadline_us / 4 : 250000;
}

static void reap(void *unused) {
  (void)unused;
  long long now = ids_now_us();
  unsigned n = 0;
  pthread_mutex_lock(&mu);
  for (gw_conn *c = head; c; c = c->next) {
    if (c->reaped || c->fd < 0 || __atomic_load_n(&c->busy, __ATOMIC_ACQUIRE)) continue;
    if (now - __atomic_load_n(&c->ready_us, __ATOMIC_RELAXED) < deadline_us) continue;
    shutdown(c->fd, SHUT_RDWR);
    c->reaped = 1;
    n++;
  }
  pthread_mutex_unlock(&mu);
  if (n) {
    metrics_count("events_http_request_deadline_total", "", n);
    log_json(LOG_LEVEL_INFO, "request deadline passed: connections closed",
             json_pack("{s:i, s:f}", "connections", n, "deadline_s", deadline_us / 1e6));
  }
}

int gw_conn_reaper_start(long long timeout_ms) {
  if (timeout_ms <= 0) return 0;
  metrics_describe("events_http_request_deadline_total", "counter",
                   "connections closed for not delivering a request within the deadline");
  deadline_us = timeout_ms * 1000;
  return ticker_start(&reaper, reap, reap_interval, NULL);
}

void gw_conn_reaper_stop(void) {
  ticker_stop(&reaper);
}
