/* gw_conn.c - per-connection state and the reaper that enforces the total
 * deadline for receiving a request (see gw_conn.h). A reaped connection's
 * socket is shut down, so libmicrohttpd sees it end and closes it in its own
 * thread; the descriptor is never closed here. */
#include "gw_conn.h"

#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/socket.h>

#include "gw_park.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"
#include "ticker.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER; /* the list */
static gw_conn *head;
static long long deadline_us;
static ticker reaper;
static unsigned park_s, idle_s; /* park_s 0: never park */
static unsigned open_conns;     /* atomic */

/* Bytes the application has read from fd, or -1. The kernel counts every
 * byte received in order; those not yet read are still queued. */
static long long bytes_read(int fd) {
  struct tcp_info ti;
  socklen_t len = sizeof ti;
  int queued;
  if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &ti, &len) < 0 ||
      len < offsetof(struct tcp_info, tcpi_bytes_received) + sizeof ti.tcpi_bytes_received ||
      ioctl(fd, SIOCINQ, &queued) < 0)
    return -1;
  return (long long)ti.tcpi_bytes_received - queued;
}

/* Waits for a next request with the short park delay as its timeout. */
static void wait_idle(struct MHD_Connection *conn, gw_conn *c) {
  c->idle = 1;
  MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, park_s);
}

/* On close: was this the park delay running out on a connection whose
 * every byte read belongs to an answered request? A close of another kind
 * (the client's, a Connection: close, an error) comes sooner. */
static void park(gw_conn *c) {
  if (!park_s || !c->idle || c->reaped || c->uncounted || c->fd < 0) return;
  if (ids_mono_us() - c->ready_us < (long long)park_s * 500000) return;
  if (bytes_read(c->fd) != (long long)c->consumed) return;
  /* libmicrohttpd closes its descriptor after this returns (and, started
   * with MHD_USE_TURBO, never shuts the socket down), so a duplicate keeps
   * the connection open. */
  int fd = fcntl(c->fd, F_DUPFD_CLOEXEC, 0);
  if (fd >= 0) gw_park_put(fd);
}

void gw_conn_notify(void *cls, struct MHD_Connection *conn, void **socket_context,
                    enum MHD_ConnectionNotificationCode toe) {
  (void)cls;
  gw_conn *c = *socket_context;
  if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
    __atomic_add_fetch(&open_conns, 1, __ATOMIC_RELAXED);
    c = calloc(1, sizeof *c);
    *socket_context = c;
    if (!c) return;
    const union MHD_ConnectionInfo *i =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    c->fd = i ? i->connect_fd : -1;
    c->ready_us = ids_mono_us();
    if (park_s) {
      /* A connection back from the park has been read before. */
      long long before = c->fd >= 0 ? bytes_read(c->fd) : -1;
      c->consumed = before > 0 ? (unsigned long long)before : 0;
      c->uncounted = before < 0;
      wait_idle(conn, c);
    }
    pthread_mutex_lock(&mu);
    c->next = head;
    if (head) head->prev = c;
    head = c;
    pthread_mutex_unlock(&mu);
    return;
  }
  __atomic_sub_fetch(&open_conns, 1, __ATOMIC_RELAXED);
  if (!c) return;
  park(c);
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

void gw_conn_request_begins(struct MHD_Connection *conn, gw_conn *c) {
  if (!c->idle) return;
  c->idle = 0;
  MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, idle_s);
}

void gw_conn_request_done(struct MHD_Connection *conn, int kept) {
  gw_conn *c = gw_conn_of(conn);
  if (!c) return;
  __atomic_store_n(&c->ready_us, ids_mono_us(), __ATOMIC_RELAXED);
  __atomic_store_n(&c->busy, 0, __ATOMIC_RELEASE);
  if (!kept || !park_s || c->uncounted) return;
  const union MHD_ConnectionInfo *h =
      MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
  if (!h || MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Transfer-Encoding")) {
    c->uncounted = 1; /* it keeps the whole idle timeout in the library */
    return;
  }
  const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
  c->consumed += h->header_size + (cl ? strtoull(cl, NULL, 10) : 0);
  wait_idle(conn, c);
}

void gw_conn_park_after(unsigned park, unsigned idle) {
  park_s = park;
  idle_s = idle;
}

unsigned gw_conn_count(void) {
  return __atomic_load_n(&open_conns, __ATOMIC_RELAXED);
}

void gw_conn_busy(struct MHD_Connection *conn) {
  gw_conn *c = gw_conn_of(conn);
  if (c) __atomic_store_n(&c->busy, 1, __ATOMIC_RELEASE);
}

static long long reap_interval(void *unused) {
  (void)unused;
  /* A quarter of the deadline between sweeps: a connection ends at most
   * 25% past it, and an idle gateway wakes a few times a second at most. */
  return deadline_us / 4 < 250000 ? deadline_us / 4 : 250000;
}

static void reap(void *unused) {
  (void)unused;
  long long now = ids_mono_us();
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
