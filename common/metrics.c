/* metrics.c - a small thread-safe metrics registry rendered in the
 * Prometheus text format. A series is found under a read lock (the set is
 * bounded by route tables and status codes, so inserts are rare) and
 * updated with atomics, so concurrent calls on the hot path do not
 * serialise on one mutex. Families keep their series together because the
 * format requires one group per family. */
#include "metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#ifndef EVENTS_VERSION
#define EVENTS_VERSION "dev"
#endif
#ifndef EVENTS_COMMIT
#define EVENTS_COMMIT "unknown"
#endif

#define MAX_BUCKETS 20
static double bounds[MAX_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                     0.1,    0.25,  0.5,    1.0,   2.5,  5.0,   10.0};
static int n_bounds = 14;

enum kind { COUNTER, GAUGE, HISTOGRAM };
static const char *const kind_names[] = {"counter", "gauge", "histogram"};

typedef struct family family;

typedef struct series {
  char *labels;
  family *fam;
  uint64_t value; /* double bits: counter/gauge value; histogram sum */
  uint64_t count, buckets[MAX_BUCKETS];
  struct series *next;     /* hash chain */
  struct series *fam_next; /* the family's series, in insertion order */
} series;

struct family {
  char *name, *help;
  enum kind kind;
  series *first, **last;
  family *next;
};

#define N_SLOTS 1024
#define MAX_SERIES 4096 /* a hard bound against label explosions */
static series *slots[N_SLOTS];
static family *families, **families_last = &families;
static size_t n_series;
static pthread_rwlock_t mu = PTHREAD_RWLOCK_INITIALIZER;
static double started_at;

static uint64_t hash(const char *a, const char *b) {
  uint64_t h = 1469598103934665603ull;
  for (; *a; a++)
    h = (h ^ (unsigned char)*a) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (; *b; b++)
    h = (h ^ (unsigned char)*b) * 1099511628211ull;
  return h;
}

static double bits_double(uint64_t b) {
  double d;
  memcpy(&d, &b, sizeof d);
  return d;
}

static uint64_t double_bits(double d) {
  uint64_t b;
  memcpy(&b, &d, sizeof b);
  return b;
}

static void atomic_add_double(uint64_t *p, double v) {
  uint64_t old = __atomic_load_n(p, __ATOMIC_RELAXED), want;
  do
    want = double_bits(bits_double(old) + v);
  while (!__atomic_compare_exchange_n(p, &old, want, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED));
}

/* Called with mu held for writing. */
static family *family_get(const char *name, enum kind kind, const char *help) {
  for (family *f = families; f; f = f->next)
    if (strcmp(f->name, name) == 0) return f;
  family *f = calloc(1, sizeof *f);
  if (!f) return NULL;
  f->name = strdup(name);
  f->help = strdup(help ? help : name);
  if (!f->name || !f->help) goto free_family;
  f->kind = kind;
  f->last = &f->first;
  *families_last = f;
  families_last = &f->next;
  return f;
free_family:
  free(f->name);
  free(f->help);
  free(f);
  return NULL;
}

static series *lookup(const char *name, const char *labels, uint64_t h) {
  for (series *s = slots[h]; s; s = s->next)
    if (strcmp(s->fam->name, name) == 0 && strcmp(s->labels, labels) == 0) return s;
  return NULL;
}

static series *find(const char *name, const char *labels, enum kind kind) {
  if (!labels) labels = "";
  uint64_t h = hash(name, labels) % N_SLOTS;
  pthread_rwlock_rdlock(&mu);
  series *s = lookup(name, labels, h);
  pthread_rwlock_unlock(&mu);
  if (s) return s;

  pthread_rwlock_wrlock(&mu);
  s = lookup(name, labels, h); /* another thread may have added it */
  if (s || n_series >= MAX_SERIES) goto unlock;
  family *f = family_get(name, kind, NULL);
  if (!f) goto unlock;
  s = calloc(1, sizeof *s);
  if (!s) goto unlock;
  s->labels = strdup(labels);
  if (!s->labels) {
    free(s);
    s = NULL;
    goto unlock;
  }
  s->fam = f;
  s->next = slots[h];
  *f->last = s;
  f->last = &s->fam_next;
  n_series++;
  /* Published last: readers only see a fully built series. */
  __atomic_store_n(&slots[h], s, __ATOMIC_RELEASE);
unlock:
  pthread_rwlock_unlock(&mu);
  return s;
}

metrics_series *metrics_counter_of(const char *name, const char *labels) {
  return find(name, labels, COUNTER);
}

metrics_series *metrics_gauge_of(const char *name, const char *labels) {
  return find(name, labels, GAUGE);
}

metrics_series *metrics_histogram_of(const char *name, const char *labels) {
  return find(name, labels, HISTOGRAM);
}

void metrics_add(metrics_series *s, double v) {
  if (s) atomic_add_double(&s->value, v);
}

void metrics_count(const char *name, const char *labels, double v) {
  metrics_add(find(name, labels, COUNTER), v);
}

void metrics_gauge_add(const char *name, const char *labels, double delta) {
  series *s = find(name, labels, GAUGE);
  if (s) atomic_add_double(&s->value, delta);
}

void metrics_gauge_set(const char *name, const char *labels, double v) {
  series *s = find(name, labels, GAUGE);
  if (s) __atomic_store_n(&s->value, double_bits(v), __ATOMIC_RELAXED);
}

void metrics_observe_in(metrics_series *s, double seconds) {
  if (!s) return;
  atomic_add_double(&s->value, seconds);
  __atomic_add_fetch(&s->count, 1, __ATOMIC_RELAXED);
  /* Cumulative counts are summed at render; one bucket per observation. */
  int b = 0;
  while (b < n_bounds && seconds > bounds[b])
    b++;
  if (b < n_bounds) __atomic_add_fetch(&s->buckets[b], 1, __ATOMIC_RELAXED);
}

void metrics_observe(const char *name, const char *labels, double seconds) {
  metrics_observe_in(find(name, labels, HISTOGRAM), seconds);
}

void metrics_describe(const char *name, const char *type, const char *text) {
  enum kind k = COUNTER;
  for (int i = 0; i < 3; i++)
    if (strcmp(type, kind_names[i]) == 0) k = (enum kind)i;
  pthread_rwlock_wrlock(&mu);
  family *f = family_get(name, k, text);
  if (f) f->kind = k;
  pthread_rwlock_unlock(&mu);
}

void metrics_set_max_seconds(double seconds) {
  pthread_rwlock_wrlock(&mu);
  /* Only before any histogram has observed: buckets index into bounds. */
  while (n_bounds < MAX_BUCKETS && bounds[n_bounds - 1] < seconds) {
    double next = bounds[n_bounds - 1] * 2.5;
    bounds[n_bounds++] = next < seconds ? next : seconds;
  }
  pthread_rwlock_unlock(&mu);
}

const char *metrics_label(const char *value, char *buf, size_t len) {
  size_t o = 0;
  for (; *value && o + 3 < len; value++) {
    if (*value == '"' || *value == '\\') buf[o++] = '\\';
    if (*value == '\n') {
      buf[o++] = '\\';
      buf[o++] = 'n';
      continue;
    }
    buf[o++] = *value;
  }
  buf[o] = '\0';
  return buf;
}

static void labels_with(FILE *f, const char *labels, const char *extra) {
  if (!*labels && !extra) return;
  fprintf(f, "{%s%s%s}", labels, *labels && extra ? "," : "", extra ? extra : "");
}

static void render_series(FILE *f, const family *fam, const series *s) {
  if (fam->kind != HISTOGRAM) {
    fputs(fam->name, f);
    labels_with(f, s->labels, NULL);
    fprintf(f, " %.17g\n", bits_double(__atomic_load_n(&s->value, __ATOMIC_RELAXED)));
    return;
  }
  unsigned long long cum = 0;
  for (int b = 0; b < n_bounds; b++) {
    char le[32];
    cum += __atomic_load_n(&s->buckets[b], __ATOMIC_RELAXED);
    snprintf(le, sizeof le, "le=\"%g\"", bounds[b]);
    fprintf(f, "%s_bucket", fam->name);
    labels_with(f, s->labels, le);
    fprintf(f, " %llu\n", cum);
  }
  /* count is read after the buckets, so +Inf never falls below the last
   * bucket while observations race the scrape. */
  unsigned long long count = __atomic_load_n(&s->count, __ATOMIC_RELAXED);
  if (count < cum) count = cum;
  fprintf(f, "%s_bucket", fam->name);
  labels_with(f, s->labels, "le=\"+Inf\"");
  fprintf(f, " %llu\n%s_sum", count, fam->name);
  labels_with(f, s->labels, NULL);
  fprintf(f, " %.9g\n%s_count", bits_double(__atomic_load_n(&s->value, __ATOMIC_RELAXED)),
          fam->name);
  labels_with(f, s->labels, NULL);
  fprintf(f, " %llu\n", count);
}

static void one(FILE *f, const char *name, const char *type, const char *help, double v) {
  fprintf(f, "# HELP %s %s\n# TYPE %s %s\n%s %.17g\n", name, help, name, type, name, v);
}

/* The client libraries' standard process collector, from /proc. */
static void render_process(FILE *f) {
  long tick = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
  unsigned long utime = 0, stime = 0, vsize = 0;
  long rss = 0;
  FILE *st = fopen("/proc/self/stat", "r");
  if (st) {
    char buf[1024];
    size_t n = fread(buf, 1, sizeof buf - 1, st);
    buf[n] = '\0';
    char *p = strrchr(buf, ')'); /* the command name may hold spaces */
    if (p && sscanf(p + 2,
                    "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu %*d %*d %*d %*d %*d %*d "
                    "%*u %lu %ld",
                    &utime, &stime, &vsize, &rss) != 4)
      utime = stime = vsize = 0, rss = 0;
    fclose(st);
  }
  one(f, "process_cpu_seconds_total", "counter", "Total user and system CPU time in seconds.",
      (double)(utime + stime) / (double)tick);
  one(f, "process_resident_memory_bytes", "gauge", "Resident memory size in bytes.",
      (double)rss * (double)page);
  one(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.", (double)vsize);
  int fds = 0;
  DIR *d = opendir("/proc/self/fd");
  if (d) {
    for (struct dirent *e; (e = readdir(d));)
      if (e->d_name[0] != '.') fds++;
    closedir(d);
    fds--; /* the directory stream itself */
  }
  one(f, "process_open_fds", "gauge", "Number of open file descriptors.", fds);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
    one(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.",
        (double)rl.rlim_cur);
  one(f, "process_start_time_seconds", "gauge",
      "Start time of the process since unix epoch in seconds.", started_at);
  fprintf(f,
          "# HELP events_build_info The version and commit of this build.\n"
          "# TYPE events_build_info gauge\n"
          "events_build_info{version=\"%s\",commit=\"%s\"} 1\n",
          EVENTS_VERSION, EVENTS_COMMIT);
}

__attribute__((constructor)) static void note_start(void) {
  struct timeval tv;
  gettimeofday(&tv, NULL);
  started_at = (double)tv.tv_sec + (double)tv.tv_usec / 1e6;
}

char *metrics_render(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  pthread_rwlock_rdlock(&mu);
  for (family *fam = families; fam; fam = fam->next) {
    if (!fam->first) continue; /* a family without series says nothing */
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", fam->name, fam->help, fam->name,
            kind_names[fam->kind]);
    for (series *s = fam->first; s; s = s->fam_next)
      render_series(f, fam, s);
  }
  pthread_rwlock_unlock(&mu);
  render_process(f);
  fclose(f);
  return buf;
}
