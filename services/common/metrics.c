/* metrics.c - a small thread-safe metrics registry rendered in the
 * Prometheus text format. Lookups hash the (name, labels) pair; the set of
 * series is bounded by the route table and status codes, so it never grows
 * with traffic. */
#include "metrics.h"

#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_BUCKETS 12
static const double bounds[N_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                         0.05,   0.1,   0.25,   0.5,   1.0,  2.5};

enum kind { COUNTER, GAUGE, HISTOGRAM };

typedef struct series {
  char *name, *labels;
  enum kind kind;
  double value; /* counter/gauge; histogram sum */
  unsigned long long count, buckets[N_BUCKETS];
  struct series *next;  /* hash chain */
  struct series *order; /* insertion order, for stable output */
} series;

typedef struct help {
  char *name, *type, *text;
} help;

#define N_SLOTS 1024
#define MAX_SERIES 4096 /* a hard bound against label explosions */
static series *slots[N_SLOTS];
static series *first, **last = &first;
static size_t n_series;
static help helps[64];
static size_t n_helps;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;

static uint64_t hash(const char *a, const char *b) {
  uint64_t h = 1469598103934665603ull;
  for (; *a; a++)
    h = (h ^ (unsigned char)*a) * 1099511628211ull;
  h = (h ^ 0xff) * 1099511628211ull;
  for (; *b; b++)
    h = (h ^ (unsigned char)*b) * 1099511628211ull;
  return h;
}

/* Called with mu held. */
static series *find(const char *name, const char *labels, enum kind kind) {
  if (!labels) labels = "";
  uint64_t h = hash(name, labels) % N_SLOTS;
  for (series *s = slots[h]; s; s = s->next)
    if (strcmp(s->name, name) == 0 && strcmp(s->labels, labels) == 0) return s;
  if (n_series >= MAX_SERIES) return NULL;
  series *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->name = strdup(name);
  s->labels = strdup(labels);
  if (!s->name || !s->labels) {
    free(s->name);
    free(s->labels);
    free(s);
    return NULL;
  }
  s->kind = kind;
  s->next = slots[h];
  slots[h] = s;
  *last = s;
  last = &s->order;
  n_series++;
  return s;
}

void metrics_count(const char *name, const char *labels, double v) {
  pthread_mutex_lock(&mu);
  series *s = find(name, labels, COUNTER);
  if (s) s->value += v;
  pthread_mutex_unlock(&mu);
}

void metrics_gauge_add(const char *name, const char *labels, double delta) {
  pthread_mutex_lock(&mu);
  series *s = find(name, labels, GAUGE);
  if (s) s->value += delta;
  pthread_mutex_unlock(&mu);
}

void metrics_gauge_set(const char *name, const char *labels, double v) {
  pthread_mutex_lock(&mu);
  series *s = find(name, labels, GAUGE);
  if (s) s->value = v;
  pthread_mutex_unlock(&mu);
}

void metrics_observe(const char *name, const char *labels, double seconds) {
  pthread_mutex_lock(&mu);
  series *s = find(name, labels, HISTOGRAM);
  if (s) {
    s->value += seconds;
    s->count++;
    for (int i = 0; i < N_BUCKETS; i++)
      if (seconds <= bounds[i]) s->buckets[i]++;
  }
  pthread_mutex_unlock(&mu);
}

void metrics_describe(const char *name, const char *type, const char *text) {
  pthread_mutex_lock(&mu);
  if (n_helps < sizeof helps / sizeof *helps)
    helps[n_helps++] = (help){strdup(name), strdup(type), strdup(text)};
  pthread_mutex_unlock(&mu);
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

char *metrics_render(void) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  if (!f) return NULL;
  pthread_mutex_lock(&mu);
  for (size_t i = 0; i < n_helps; i++)
    if (helps[i].name)
      fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", helps[i].name, helps[i].text, helps[i].name,
              helps[i].type);
  for (series *s = first; s; s = s->order) {
    if (s->kind != HISTOGRAM) {
      fputs(s->name, f);
      labels_with(f, s->labels, NULL);
      fprintf(f, " %.17g\n", s->value);
      continue;
    }
    for (int b = 0; b < N_BUCKETS; b++) {
      char le[32];
      snprintf(le, sizeof le, "le=\"%g\"", bounds[b]);
      fprintf(f, "%s_bucket", s->name);
      labels_with(f, s->labels, le);
      fprintf(f, " %llu\n", s->buckets[b]);
    }
    fprintf(f, "%s_bucket", s->name);
    labels_with(f, s->labels, "le=\"+Inf\"");
    fprintf(f, " %llu\n%s_sum", s->count, s->name);
    labels_with(f, s->labels, NULL);
    fprintf(f, " %.9g\n%s_count", s->value, s->name);
    labels_with(f, s->labels, NULL);
    fprintf(f, " %llu\n", s->count);
  }
  pthread_mutex_unlock(&mu);
  fclose(f);
  return buf;
}
