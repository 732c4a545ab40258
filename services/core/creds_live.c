/* creds_live.c - hot reloading of the credentials file. Lookups take a read
 * lock only long enough to copy the tenant name, so a reload never waits
 * for a call and a call never sees a half-built set; the old set is freed
 * once no reader holds it. */
#include "creds_live.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "metrics.h"

struct creds_live {
  char *path;
  pthread_rwlock_t mu;
  creds *set;
  unsigned generation;
  struct stat seen; /* of the file last loaded or refused */
  pthread_mutex_t reload_mu;
  pthread_t watcher;
  int watching, poll_ms;
  pthread_mutex_t stop_mu;
  pthread_cond_t stop_cv;
  int stopping;
};

static int same_file(const struct stat *a, const struct stat *b) {
  return a->st_ino == b->st_ino && a->st_dev == b->st_dev && a->st_size == b->st_size &&
         a->st_mtim.tv_sec == b->st_mtim.tv_sec && a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

static void publish(unsigned generation, size_t count) {
  metrics_gauge_set("events_credentials_generation", "", generation);
  metrics_gauge_set("events_credentials_loaded", "", (double)count);
}

int creds_live_reload(creds_live *l, creds_err *err) {
  pthread_mutex_lock(&l->reload_mu);
  struct stat st;
  if (stat(l->path, &st) == 0) l->seen = st; /* a refused file is not retried until it changes */
  creds *next = NULL;
  if (creds_load(l->path, &next, err) < 0) {
    metrics_count("events_credentials_reload_errors_total", "", 1);
    log_json(LOG_LEVEL_ERROR, "credentials refused, the previous set stays in force",
             json_pack("{s:s, s:i, s:i}", "error", err->msg, "line", err->line, "generation",
                       (int)l->generation));
    pthread_mutex_unlock(&l->reload_mu);
    return -1;
  }
  pthread_rwlock_wrlock(&l->mu);
  creds *old = l->set;
  l->set = next;
  unsigned gen = ++l->generation;
  pthread_rwlock_unlock(&l->mu);
  creds_free(old);
  size_t count = creds_count(next);
  publish(gen, count);
  log_json(LOG_LEVEL_INFO, "credentials loaded",
           json_pack("{s:i, s:i}", "generation", (int)gen, "credentials", (int)count));
  pthread_mutex_unlock(&l->reload_mu);
  return 0;
}

static void *watch(void *arg) {
  creds_live *l = arg;
  pthread_mutex_lock(&l->stop_mu);
  while (!l->stopping) {
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += l->poll_ms / 1000;
    until.tv_nsec += (long)(l->poll_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) until.tv_sec++, until.tv_nsec -= 1000000000L;
    pthread_cond_timedwait(&l->stop_cv, &l->stop_mu, &until);
    if (l->stopping) break;
    pthread_mutex_unlock(&l->stop_mu);
    struct stat st;
    /* stat follows the symlink Kubernetes swaps, so a new Secret shows as a
     * new inode even when size and mtime happen to match. A missing file
     * (mid-swap) is left alone until it is back. */
    if (stat(l->path, &st) == 0 && !same_file(&st, &l->seen)) {
      creds_err err;
      creds_live_reload(l, &err);
    }
    pthread_mutex_lock(&l->stop_mu);
  }
  pthread_mutex_unlock(&l->stop_mu);
  return NULL;
}

int creds_live_open(const char *path, int poll_ms, creds_live **out, creds_err *err) {
  creds_live *l = calloc(1, sizeof *l);
  if (!l) goto no_memory;
  l->path = strdup(path ? path : "");
  if (!l->path) goto free_live;
  pthread_rwlock_init(&l->mu, NULL);
  pthread_mutex_init(&l->reload_mu, NULL);
  pthread_mutex_init(&l->stop_mu, NULL);
  pthread_cond_init(&l->stop_cv, NULL);
  metrics_describe("events_credentials_generation", "gauge",
                   "Generation of the credentials file in force (1 at start-up)");
  metrics_describe("events_credentials_loaded", "gauge", "Credentials in force");
  metrics_describe("events_credentials_reload_errors_total", "counter",
                   "Credentials files refused (the previous set stayed in force)");
  /* Start-up failures are the caller's to report: no reload log line. */
  if (path) stat(path, &l->seen);
  if (creds_load(path, &l->set, err) < 0) goto destroy_locks;
  l->generation = 1;
  publish(l->generation, creds_count(l->set));
  l->poll_ms = poll_ms > 0 ? poll_ms : 1000;
  l->watching = pthread_create(&l->watcher, NULL, watch, l) == 0;
  *out = l;
  return 0;

destroy_locks:
  pthread_cond_destroy(&l->stop_cv);
  pthread_mutex_destroy(&l->stop_mu);
  pthread_mutex_destroy(&l->reload_mu);
  pthread_rwlock_destroy(&l->mu);
  free(l->path);
free_live:
  free(l);
  return -1;
no_memory:
  snprintf(err->msg, sizeof err->msg, "out of memory");
  err->line = 0;
  return -1;
}

void creds_live_close(creds_live *l) {
  if (!l) return;
  if (l->watching) {
    pthread_mutex_lock(&l->stop_mu);
    l->stopping = 1;
    pthread_cond_signal(&l->stop_cv);
    pthread_mutex_unlock(&l->stop_mu);
    pthread_join(l->watcher, NULL);
  }
  creds_free(l->set);
  pthread_cond_destroy(&l->stop_cv);
  pthread_mutex_destroy(&l->stop_mu);
  pthread_mutex_destroy(&l->reload_mu);
  pthread_rwlock_destroy(&l->mu);
  free(l->path);
  free(l);
}

int creds_live_lookup(creds_live *l, const char *authorization, size_t len, char *tenant,
                      size_t tenant_len) {
  pthread_rwlock_rdlock(&l->mu);
  const char *t = creds_lookup(l->set, authorization, len);
  if (t) snprintf(tenant, tenant_len, "%s", t);
  pthread_rwlock_unlock(&l->mu);
  return t ? 0 : -1;
}

unsigned creds_live_generation(creds_live *l) {
  pthread_rwlock_rdlock(&l->mu);
  unsigned g = l->generation;
  pthread_rwlock_unlock(&l->mu);
  return g;
}

size_t creds_live_count(creds_live *l) {
  pthread_rwlock_rdlock(&l->mu);
  size_t n = creds_count(l->set);
  pthread_rwlock_unlock(&l->mu);
  return n;
}
