/* gw_park.c - the parked idle connections (see gw_park.h): one thread, one
 * epoll set, a FIFO of sockets in the order they were parked, which is also
 * the order their idle time runs out. */
#include "gw_park.h"

#include <errno.h>
#include <malloc.h>
#include <pthread.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ids.h"
#include "log.h"
#include "metrics.h"

enum { TRIM_AFTER = 64 }; /* connections parked */

typedef struct parked {
  int fd;
  long long until_ms; /* closed at this time, if still here */
  struct parked *prev, *next;
} parked;

static struct {
  pthread_mutex_t mu; /* the list, count and stopped */
  parked *head, *tail;
  unsigned count, max;
  int stopped;
  long long idle_ms;
  struct MHD_Daemon *daemon;
  int ep, wake;
  unsigned since_trim; /* parked since the heap was last trimmed (atomic) */
  pthread_t thread;
} pk = {.mu = PTHREAD_MUTEX_INITIALIZER, .stopped = 1, .ep = -1, .wake = -1};

static long long now_ms(void) {
  return ids_mono_us() / 1000;
}

/* Caller holds pk.mu. */
static void unlink_locked(parked *p) {
  if (p->prev)
    p->prev->next = p->next;
  else
    pk.head = p->next;
  if (p->next)
    p->next->prev = p->prev;
  else
    pk.tail = p->prev;
  __atomic_sub_fetch(&pk.count, 1, __ATOMIC_RELAXED);
  metrics_gauge_add("events_http_connections_parked", "", -1);
}

static void wake(void) {
  uint64_t one = 1;
  if (write(pk.wake, &one, sizeof one) < 0 && errno != EAGAIN)
    log_json(LOG_LEVEL_ERROR, "parked connections: cannot wake the thread", NULL);
}

int gw_park_put(int fd) {
  parked *p = malloc(sizeof *p);
  if (!p) goto refuse;
  p->fd = fd;
  p->until_ms = now_ms() + pk.idle_ms;
  p->next = NULL;
  pthread_mutex_lock(&pk.mu);
  if (pk.stopped || pk.count >= pk.max) {
    pthread_mutex_unlock(&pk.mu);
    goto free_entry;
  }
  p->prev = pk.tail;
  if (pk.tail)
    pk.tail->next = p;
  else
    pk.head = p;
  pk.tail = p;
  /* The thread sleeps without a deadline while none is parked. */
  int first = !p->prev;
  __atomic_add_fetch(&pk.count, 1, __ATOMIC_RELAXED);
  metrics_gauge_add("events_http_connections_parked", "", 1);
  metrics_count("events_http_parks_total", "", 1);
  /* Registered under the lock: the thread may see it readable at once, and
   * must find it listed. One-shot, so it is reported once, to one owner. */
  struct epoll_event ev = {.events = EPOLLIN | EPOLLRDHUP | EPOLLONESHOT, .data.ptr = p};
  if (epoll_ctl(pk.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
    unlink_locked(p);
    pthread_mutex_unlock(&pk.mu);
    goto free_entry;
  }
  pthread_mutex_unlock(&pk.mu);
  /* Wake the thread for its first deadline, and to trim after a burst. */
  if (__atomic_add_fetch(&pk.since_trim, 1, __ATOMIC_RELAXED) == TRIM_AFTER || first) wake();
  return 0;
free_entry:
  free(p);
refuse:
  close(fd);
  return -1;
}

unsigned gw_park_count(void) {
  return __atomic_load_n(&pk.count, __ATOMIC_RELAXED);
}

/* The client sent something (or went away): back to libmicrohttpd, which
 * reads the next request from its first byte, or closed. */
static void unpark(parked *p, uint32_t events) {
  int fd = p->fd;
  pthread_mutex_lock(&pk.mu);
  unlink_locked(p);
  pthread_mutex_unlock(&pk.mu);
  free(p);
  epoll_ctl(pk.ep, EPOLL_CTL_DEL, fd, NULL);
  int queued = 0;
  if ((events & (EPOLLERR | EPOLLHUP)) ||
      ((events & EPOLLRDHUP) && (ioctl(fd, FIONREAD, &queued) < 0 || queued == 0))) {
    close(fd);
    return;
  }
  struct sockaddr_storage sa;
  socklen_t len = sizeof sa;
  if (getpeername(fd, (struct sockaddr *)&sa, &len) < 0) {
    close(fd);
    return;
  }
  /* The library closes the socket itself when it cannot take it. */
  if (MHD_add_connection(pk.daemon, fd, (struct sockaddr *)&sa, len) != MHD_YES)
    metrics_count("events_http_unpark_refused_total", "", 1);
}

/* Closes what has been idle for the whole idle timeout; returns the wait
 * until the next one is due (-1: none parked). */
static int expire(void) {
  long long now = now_ms();
  int wait = -1;
  pthread_mutex_lock(&pk.mu);
  while (pk.head && pk.head->until_ms <= now) {
    parked *p = pk.head;
    unlink_locked(p);
    epoll_ctl(pk.ep, EPOLL_CTL_DEL, p->fd, NULL);
    close(p->fd);
    free(p);
  }
  if (pk.head) wait = (int)(pk.head->until_ms - now);
  pthread_mutex_unlock(&pk.mu);
  return wait;
}

/* A pool up to 32 KiB is malloc'ed, and free keeps its pages: give back
 * what the parked connections' pools and state left, once a burst of parking
 * is over. Returns how long to wait before trying again (-1: nothing due). */
static int trim(void) {
  static long long last_ms;
  unsigned n = __atomic_load_n(&pk.since_trim, __ATOMIC_RELAXED);
  if (n < TRIM_AFTER) return -1;
  long long now = now_ms();
  if (now - last_ms < 1000) return (int)(1000 - (now - last_ms));
  __atomic_sub_fetch(&pk.since_trim, n, __ATOMIC_RELAXED);
  last_ms = now;
  malloc_trim(0);
  return -1;
}

static void *run(void *unused) {
  (void)unused;
  struct epoll_event evs[64];
  for (;;) {
    int due = expire(), again = trim();
    if (again >= 0 && (due < 0 || again < due)) due = again;
    int n = epoll_wait(pk.ep, evs, 64, due);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; i++) {
      if (evs[i].data.ptr) {
        unpark(evs[i].data.ptr, evs[i].events);
        continue;
      }
      uint64_t v;
      if (read(pk.wake, &v, sizeof v) < 0 && errno != EAGAIN) break;
      if (__atomic_load_n(&pk.stopped, __ATOMIC_RELAXED)) return NULL;
    }
  }
  log_json(LOG_LEVEL_ERROR, "parked connections: epoll_wait failed", NULL);
  return NULL;
}

int gw_park_start(struct MHD_Daemon *d, unsigned max, long long idle_ms) {
  metrics_describe("events_http_connections_parked", "gauge",
                   "idle keep-alive connections held outside the HTTP library");
  metrics_describe("events_http_parks_total", "counter",
                   "idle keep-alive connections taken out of the HTTP library");
  metrics_describe("events_http_unpark_refused_total", "counter",
                   "parked connections that sent a request while the HTTP server was full");
  pk.daemon = d;
  pk.max = max;
  pk.idle_ms = idle_ms;
  pk.ep = epoll_create1(EPOLL_CLOEXEC);
  if (pk.ep < 0) return -1;
  pk.wake = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
  if (pk.wake < 0) goto close_ep;
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
  if (epoll_ctl(pk.ep, EPOLL_CTL_ADD, pk.wake, &ev) < 0) goto close_wake;
  if (pthread_create(&pk.thread, NULL, run, NULL) != 0) goto close_wake;
  pthread_mutex_lock(&pk.mu);
  pk.stopped = 0;
  pthread_mutex_unlock(&pk.mu);
  return 0;
close_wake:
  close(pk.wake);
  pk.wake = -1;
close_ep:
  close(pk.ep);
  pk.ep = -1;
  return -1;
}

void gw_park_stop(void) {
  pthread_mutex_lock(&pk.mu);
  int was_running = !pk.stopped;
  __atomic_store_n(&pk.stopped, 1, __ATOMIC_RELAXED);
  pthread_mutex_unlock(&pk.mu);
  if (!was_running) return;
  wake();
  pthread_join(pk.thread, NULL);
  pthread_mutex_lock(&pk.mu);
  while (pk.head) {
    parked *p = pk.head;
    unlink_locked(p);
    close(p->fd);
    free(p);
  }
  pthread_mutex_unlock(&pk.mu);
  close(pk.wake);
  close(pk.ep);
  pk.wake = pk.ep = -1;
}
