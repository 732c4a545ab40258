/* headwalk.c - what a start costs the change feed: the first store_changes
 * of a fresh store handle, as a Watch or the feed poller asks for the head
 * after a restart (storage/store_mongo.c walks the log from the head saved
 * in the tenant's top document, or from the floor when none is saved).
 *
 * Modes:
 *   fill   writes N documents to TENANT through the store (insert_many of
 *          500, each change logged as a service's writes are), then closes
 *          the handle. Bounded: stops after --seconds S (default 1800).
 *          Prints {"n","seconds"}.
 *   first  opens a handle and times its first store_changes (after past
 *          any position, limit 1), then closes it (which saves the head).
 *          Prints {"head","seconds"}.
 *
 * Usage: headwalk fill|first STORE_URL TENANT [--count N] [--seconds S] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store.h"

static const store_collection collections[] = {{"props", NULL, 0}};
static const store_schema schema = {collections, 1};

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static int fill(store *st, const char *tenant, long long n, double seconds) {
  enum { BATCH = 500 };
  json_t *docs[BATCH];
  int results[BATCH];
  store_err e;
  double t0 = now_s();
  long long done = 0;
  /* Ids go on from what is there, so a fill can be resumed or extended. */
  long long first = 0;
  if (store_count(st, tenant, "props", NULL, 0, &first, &e)) {
    fprintf(stderr, "headwalk: count: %s\n", e.msg);
    return 1;
  }
  while (done < n && now_s() - t0 < seconds) {
    size_t k = n - done < BATCH ? (size_t)(n - done) : BATCH;
    for (size_t i = 0; i < k; i++)
      docs[i] =
          json_pack("{s:I, s:i}", "id", (json_int_t)(first + done + (long long)i + 1), "parent", 1);
    int rc = store_insert_many(st, tenant, "props", docs, k, 0, results, &e);
    for (size_t i = 0; i < k; i++) {
      if (!rc && results[i]) rc = results[i];
      json_decref(docs[i]);
    }
    if (rc) {
      fprintf(stderr, "headwalk: insert at %lld: %d %s\n", done, rc, e.msg);
      return 1;
    }
    done += (long long)k;
  }
  printf("{\"n\":%lld,\"seconds\":%.2f}\n", done, now_s() - t0);
  return done < n;
}

static int first(store *st, const char *tenant) {
  store_changes_page p;
  store_err e;
  double t0 = now_s();
  if (store_changes(st, tenant, (long long)1 << 62, 1, &p, &e)) {
    fprintf(stderr, "headwalk: changes: %s\n", e.msg);
    return 1;
  }
  printf("{\"head\":%lld,\"seconds\":%.3f}\n", p.head, now_s() - t0);
  store_changes_clear(&p);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 4 || (strcmp(argv[1], "fill") && strcmp(argv[1], "first"))) {
    fprintf(stderr, "usage: %s fill|first STORE_URL TENANT [--count N] [--seconds S]\n", argv[0]);
    return 2;
  }
  long long n = 100000;
  double seconds = 1800;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (!strcmp(argv[i], "--count")) {
      n = atoll(argv[i + 1]);
    } else if (!strcmp(argv[i], "--seconds")) {
      seconds = atof(argv[i + 1]);
    } else {
      fprintf(stderr, "headwalk: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  store *st;
  store_err e;
  if (store_open(argv[2], &schema, &st, &e)) {
    fprintf(stderr, "headwalk: open: %s\n", e.msg);
    return 1;
  }
  int rc = !strcmp(argv[1], "fill") ? fill(st, argv[3], n, seconds) : first(st, argv[3]);
  store_close(st);
  return rc;
}
