/* rawinsert.c - the store's own cost, for bench/run.sh.
 *
 * Writes customer events (seed 001) straight into the store the service
 * uses, in exactly the shape services/dialects/customer.c stores them:
 *   SQLite: table "customer_events"(tenant, id, doc) with doc the compact JSON
 *           {"event_id",...,"created_at":<µs>,"state":1,"property_records":[...],"id"}
 *   MongoDB: collection "customer_events" of {tenant, id, event_id, ...} with
 *           integers as int64 and numbers as double (storage/store_mongo.c).
 *
 * Modes:
 *   insert  N single-document inserts from T threads, each its own atomic
 *           write (SQLite: autocommit INSERT on a per-thread WAL connection
 *           with synchronous=FULL, writers queued on one mutex - one
 *           transaction and one fsync per insert, the baseline the store's
 *           group commit is measured against; MongoDB: insert_one on a
 *           pooled client, where the store batches concurrent inserts). Prints one
 *           JSON line: {"n","ok","errors","seconds","rate","p50_ms","p99_ms"}.
 *   seed    bulk-loads N documents fast (for the list-latency runs): SQLite in
 *           one transaction with the secondary indexes dropped and rebuilt
 *           from their own stored DDL; MongoDB with unordered insert_many
 *           batches. Customer k (0-based) gets every event i with
 *           i % customers == k, so each has N/customers events.
 *
 * Usage: rawinsert MODE STORE_URL [--tenant T] [--threads T] [--count N]
 *          [--prefix P] [--customers K] [--ids-out FILE] [--ids K]
 *          [--seconds S]  (insert: stop early after S seconds; a bound)
 *        rawinsert analyze|stat sqlite:PATH */
#define _GNU_SOURCE
#include <bson/bson.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COLL "customer_events"
#define ET_ID "8bed991c68a470e7aaeffbf048" /* the same event type the loads use */

static const char *mode, *url, *tenant = "bench", *prefix = "raw", *ids_out;
static long count = 1000, customers = 50, n_ids = 100;
static int threads = 1;
static double max_seconds = 600;

static atomic_long next_i, n_ok, n_err;
static double *lat_ms;
static pthread_mutex_t write_mu = PTHREAD_MUTEX_INITIALIZER;
static mongoc_client_pool_t *pool;
static char dbname[128] = "events";
static double t_start;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static long long now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static uint64_t splitmix(uint64_t *s) {
  uint64_t z = (*s += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

/* 26 random lowercase hex characters, like ids_hex in the service. */
static void rand_hex26(uint64_t *s, char out[27]) {
  static const char hx[] = "0123456789abcdef";
  uint64_t a = splitmix(s), b = splitmix(s);
  for (int i = 0; i < 16; i++)
    out[i] = hx[(a >> (4 * i)) & 15];
  for (int i = 0; i < 10; i++)
    out[16 + i] = hx[(b >> (4 * i)) & 15];
  out[26] = '\0';
}

/* Deterministic ids for seeded documents: increasing, so a bulk load appends
 * to the primary key; "5e" keeps them apart from random ones only by luck,
 * which is all a benchmark needs. */
static void seed_hex26(long i, char out[27]) {
  snprintf(out, 27, "5e%024lx", (unsigned long)i);
}

static void customer_id(long k, char out[27]) {
  snprintf(out, 27, "c0%024lx", (unsigned long)k);
}

typedef struct ev {
  char id[27], rec1[27], rec2[27], customer[27];
  char external[96];
  long long created;
} ev;

/* The stored JSON text, member order as pbjson_encode + doc_encode make it. */
static int doc_json(const ev *e, char *buf, size_t len) {
  return snprintf(buf, len,
                  "{\"event_id\":\"%s\",\"event_type_id\":\"" ET_ID "\",\"customer_id\":\"%s\","
                  "\"external_id\":\"%s\",\"data\":\"{\\\"source\\\":\\\"bench\\\"}\","
                  "\"created_at\":%lld,\"state\":1,\"property_records\":["
                  "{\"property_record_id\":\"%s\",\"property_id\":\"has_purchase\","
                  "\"property_value\":\"true\",\"last_change\":%lld},"
                  "{\"property_record_id\":\"%s\",\"property_id\":\"amount\","
                  "\"property_value\":42.5,\"last_change\":%lld}],\"id\":\"%s\"}",
                  e->id, e->customer, e->external, e->created, e->rec1, e->created, e->rec2,
                  e->created, e->id);
}

static void record(bson_t *arr, const char *key, const char *rec_id, const char *prop, int numeric,
                   long long t) {
  bson_t r;
  bson_append_document_begin(arr, key, -1, &r);
  BSON_APPEND_UTF8(&r, "property_record_id", rec_id);
  BSON_APPEND_UTF8(&r, "property_id", prop);
  if (numeric)
    BSON_APPEND_DOUBLE(&r, "property_value", 42.5);
  else
    BSON_APPEND_UTF8(&r, "property_value", "true");
  BSON_APPEND_INT64(&r, "last_change", t);
  bson_append_document_end(arr, &r);
}

/* {tenant, id, ...members but id}, as mg_doc writes it. */
static void doc_bson(const ev *e, bson_t *b) {
  bson_t arr;
  bson_init(b);
  BSON_APPEND_UTF8(b, "tenant", tenant);
  BSON_APPEND_UTF8(b, "id", e->id);
  BSON_APPEND_UTF8(b, "event_id", e->id);
  BSON_APPEND_UTF8(b, "event_type_id", ET_ID);
  BSON_APPEND_UTF8(b, "customer_id", e->customer);
  BSON_APPEND_UTF8(b, "external_id", e->external);
  BSON_APPEND_UTF8(b, "data", "{\"source\":\"bench\"}");
  BSON_APPEND_INT64(b, "created_at", e->created);
  BSON_APPEND_INT64(b, "state", 1);
  bson_append_array_begin(b, "property_records", -1, &arr);
  record(&arr, "0", e->rec1, "has_purchase", 0, e->created);
  record(&arr, "1", e->rec2, "amount", 1, e->created);
  bson_append_array_end(b, &arr);
}

static void make_random(ev *e, uint64_t *s, long i) {
  rand_hex26(s, e->id);
  rand_hex26(s, e->rec1);
  rand_hex26(s, e->rec2);
  snprintf(e->customer, sizeof e->customer, "85bc5819e09dab95437552ce79");
  snprintf(e->external, sizeof e->external, "%s-%ld", prefix, i);
  e->created = now_us();
}

static void make_seeded(ev *e, long i, long long base_us) {
  seed_hex26(i, e->id);
  snprintf(e->rec1, sizeof e->rec1, "5f%024lx", (unsigned long)(2 * i));
  snprintf(e->rec2, sizeof e->rec2, "5f%024lx", (unsigned long)(2 * i + 1));
  customer_id(i % customers, e->customer);
  snprintf(e->external, sizeof e->external, "%s-%ld", prefix, i);
  e->created = base_us + i * 1000; /* 1 ms apart, in id order */
}

static int sq_open(const char *path, sqlite3 **db, int bulk) {
  if (sqlite3_open_v2(path, db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL) != SQLITE_OK) {
    fprintf(stderr, "rawinsert: open %s: %s\n", path, sqlite3_errmsg(*db));
    return -1;
  }
  sqlite3_busy_timeout(*db, 10000);
  const char *pragmas = bulk ? "PRAGMA journal_mode=DELETE; PRAGMA synchronous=OFF;"
                               " PRAGMA cache_size=-1048576;"
                             : "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;";
  char *msg = NULL;
  if (sqlite3_exec(*db, pragmas, NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "rawinsert: pragmas: %s\n", msg);
    return -1;
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* ---- insert mode ---- */

static void *insert_worker(void *arg) {
  (void)arg;
  uint64_t seed = (uint64_t)now_us() ^ ((uint64_t)pthread_self() << 17);
  sqlite3 *db = NULL;
  sqlite3_stmt *st = NULL;
  mongoc_client_t *client = NULL;
  mongoc_collection_t *coll = NULL;
  int sqlite = !strncmp(url, "sqlite:", 7);
  if (sqlite) {
    if (sq_open(url + 7, &db, 0) < 0) return NULL;
    if (sqlite3_prepare_v3(db, "INSERT INTO \"" COLL "\"(tenant,id,doc) VALUES(?,?,?)", -1,
                           SQLITE_PREPARE_PERSISTENT, &st, NULL) != SQLITE_OK) {
      fprintf(stderr, "rawinsert: prepare: %s\n", sqlite3_errmsg(db));
      return NULL;
    }
  } else {
    client = mongoc_client_pool_pop(pool);
    coll = mongoc_client_get_collection(client, dbname, COLL);
  }
  char text[2048];
  for (;;) {
    long i = atomic_fetch_add(&next_i, 1);
    if (i >= count || now_s() - t_start > max_seconds) break;
    ev e;
    make_random(&e, &seed, i);
    double t0 = now_s();
    int ok;
    if (sqlite) {
      int n = doc_json(&e, text, sizeof text);
      sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 2, e.id, -1, SQLITE_STATIC);
      sqlite3_bind_text(st, 3, text, n, SQLITE_STATIC);
      pthread_mutex_lock(&write_mu);
      ok = sqlite3_step(st) == SQLITE_DONE;
      pthread_mutex_unlock(&write_mu);
      if (!ok) fprintf(stderr, "rawinsert: insert: %s\n", sqlite3_errmsg(db));
      sqlite3_reset(st);
      sqlite3_clear_bindings(st);
    } else {
      bson_t b;
      bson_error_t err;
      doc_bson(&e, &b);
      ok = mongoc_collection_insert_one(coll, &b, NULL, NULL, &err);
      if (!ok) fprintf(stderr, "rawinsert: insert: %s\n", err.message);
      bson_destroy(&b);
    }
    lat_ms[i] = (now_s() - t0) * 1e3;
    atomic_fetch_add(ok ? &n_ok : &n_err, 1);
  }
  if (st) sqlite3_finalize(st);
  if (db) sqlite3_close_v2(db);
  if (coll) mongoc_collection_destroy(coll);
  if (client) mongoc_client_pool_push(pool, client);
  return NULL;
}

static int run_insert(void) {
  lat_ms = calloc((size_t)count, sizeof *lat_ms);
  pthread_t *th = calloc((size_t)threads, sizeof *th);
  if (!lat_ms || !th) return 1;
  for (long i = 0; i < count; i++)
    lat_ms[i] = -1;
  t_start = now_s();
  for (int i = 0; i < threads; i++)
    pthread_create(&th[i], NULL, insert_worker, NULL);
  for (int i = 0; i < threads; i++)
    pthread_join(th[i], NULL);
  double secs = now_s() - t_start;
  size_t n = 0;
  for (long i = 0; i < count; i++)
    if (lat_ms[i] >= 0) lat_ms[n++] = lat_ms[i];
  qsort(lat_ms, n, sizeof *lat_ms, cmp_double);
  double p50 = n ? lat_ms[(size_t)(0.50 * (double)(n - 1))] : 0;
  double p99 = n ? lat_ms[(size_t)(0.99 * (double)(n - 1))] : 0;
  printf("{\"n\":%zu,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"rate\":%.1f,\"p50_ms\":%.3f,"
         "\"p99_ms\":%.3f}\n",
         n, atomic_load(&n_ok), atomic_load(&n_err), secs, (double)atomic_load(&n_ok) / secs, p50,
         p99);
  free(th);
  return atomic_load(&n_err) ? 1 : 0;
}

/* ---- seed mode ---- */

static void write_ids(void) {
  if (!ids_out) return;
  FILE *f = fopen(ids_out, "w");
  if (!f) return;
  for (long k = 0; k < n_ids && k < count; k++) {
    char id[27];
    seed_hex26(k * (count / (n_ids < count ? n_ids : count)), id);
    fprintf(f, "%s\n", id);
  }
  fclose(f);
}

static int seed_sqlite(const char *path, long long base) {
  sqlite3 *db;
  char *msg = NULL;
  if (sq_open(path, &db, 1) < 0) return 1;
  /* The service's own index DDL, kept to rebuild the indexes afterwards. */
  sqlite3_stmt *q;
  char *ddl[32];
  char *names[32];
  int n = 0;
  sqlite3_prepare_v2(db,
                     "SELECT name, sql FROM sqlite_master WHERE type='index' AND tbl_name=?"
                     " AND sql IS NOT NULL",
                     -1, &q, NULL);
  sqlite3_bind_text(q, 1, COLL, -1, SQLITE_STATIC);
  while (sqlite3_step(q) == SQLITE_ROW && n < 32) {
    names[n] = strdup((const char *)sqlite3_column_text(q, 0));
    ddl[n] = strdup((const char *)sqlite3_column_text(q, 1));
    n++;
  }
  sqlite3_finalize(q);
  if (n == 0) {
    fprintf(stderr, "rawinsert: %s has no %s indexes: start the service on it once first\n", path,
            COLL);
    return 1;
  }
  if (sqlite3_exec(db, "BEGIN", NULL, NULL, &msg) != SQLITE_OK) goto fail;
  for (int k = 0; k < n; k++) {
    char sql[512];
    snprintf(sql, sizeof sql, "DROP INDEX \"%s\"", names[k]);
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK) goto fail;
  }
  sqlite3_stmt *st;
  sqlite3_prepare_v2(db, "INSERT INTO \"" COLL "\"(tenant,id,doc) VALUES(?,?,?)", -1, &st, NULL);
  char text[2048];
  for (long i = 0; i < count; i++) {
    ev e;
    make_seeded(&e, i, base);
    int len = doc_json(&e, text, sizeof text);
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e.id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, text, len, SQLITE_STATIC);
    if (sqlite3_step(st) != SQLITE_DONE) {
      fprintf(stderr, "rawinsert: seed insert %ld: %s\n", i, sqlite3_errmsg(db));
      return 1;
    }
    sqlite3_reset(st);
  }
  sqlite3_finalize(st);
  for (int k = 0; k < n; k++)
    if (sqlite3_exec(db, ddl[k], NULL, NULL, &msg) != SQLITE_OK) goto fail;
  if (sqlite3_exec(db, "COMMIT; PRAGMA journal_mode=WAL;", NULL, NULL, &msg) != SQLITE_OK)
    goto fail;
  sqlite3_close_v2(db);
  return 0;
fail:
  fprintf(stderr, "rawinsert: seed: %s\n", msg ? msg : sqlite3_errmsg(db));
  return 1;
}

typedef struct seed_range {
  long from, to;
  long long base;
  int rc;
} seed_range;

static void *seed_mongo_worker(void *arg) {
  seed_range *r = arg;
  mongoc_client_t *client = mongoc_client_pool_pop(pool);
  mongoc_collection_t *coll = mongoc_client_get_collection(client, dbname, COLL);
  enum { BATCH = 1000 };
  bson_t docs[BATCH];
  const bson_t *ptrs[BATCH];
  bson_t opts = BSON_INITIALIZER;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  for (long i = r->from; i < r->to && !r->rc;) {
    size_t n = 0;
    for (; n < BATCH && i < r->to; n++, i++) {
      ev e;
      make_seeded(&e, i, r->base);
      doc_bson(&e, &docs[n]);
      ptrs[n] = &docs[n];
    }
    bson_error_t err;
    if (!mongoc_collection_insert_many(coll, ptrs, n, &opts, NULL, &err)) {
      fprintf(stderr, "rawinsert: seed insert_many: %s\n", err.message);
      r->rc = 1;
    }
    for (size_t k = 0; k < n; k++)
      bson_destroy(&docs[k]);
  }
  bson_destroy(&opts);
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(pool, client);
  return NULL;
}

static int run_seed(void) {
  long long base = now_us() - (long long)count * 1000 - 3600LL * 1000000;
  double t0 = now_s();
  int rc = 0;
  if (!strncmp(url, "sqlite:", 7)) {
    rc = seed_sqlite(url + 7, base);
  } else {
    pthread_t th[16];
    seed_range r[16];
    int nt = threads < 16 ? threads : 16;
    for (int k = 0; k < nt; k++) {
      r[k] = (seed_range){count * k / nt, count * (k + 1) / nt, base, 0};
      pthread_create(&th[k], NULL, seed_mongo_worker, &r[k]);
    }
    for (int k = 0; k < nt; k++) {
      pthread_join(th[k], NULL);
      rc |= r[k].rc;
    }
  }
  double secs = now_s() - t0;
  if (!rc) write_ids();
  printf("{\"n\":%ld,\"seconds\":%.3f,\"rate\":%.1f}\n", count, secs, (double)count / secs);
  return rc;
}

/* ---- analyze / stat modes ---- */

/* "analyze": what the service does not do at open — gather planner
 * statistics (with the service's own analysis_limit). "stat": prints how many
 * sqlite_stat1 rows the file has (0 when it has never been analysed). */
static int run_analyze(int analyze) {
  sqlite3 *db;
  char *msg = NULL;
  long long rows = 0;
  if (sq_open(url + 7, &db, 0) < 0) return 1;
  if (analyze &&
      sqlite3_exec(db, "PRAGMA analysis_limit=1000; ANALYZE;", NULL, NULL, &msg) != SQLITE_OK) {
    fprintf(stderr, "rawinsert: analyze: %s\n", msg);
    return 1;
  }
  sqlite3_stmt *q;
  if (sqlite3_prepare_v2(db, "SELECT count(*) FROM sqlite_stat1", -1, &q, NULL) == SQLITE_OK) {
    if (sqlite3_step(q) == SQLITE_ROW) rows = sqlite3_column_int64(q, 0);
    sqlite3_finalize(q);
  }
  printf("{\"stat1_rows\":%lld}\n", rows);
  sqlite3_close_v2(db);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(
        stderr,
        "usage: rawinsert insert|seed|analyze|stat STORE_URL [--tenant T] [--threads N] [--count N]"
        " [--prefix P] [--customers K] [--ids-out FILE] [--ids K] [--seconds S]\n");
    return 2;
  }
  mode = argv[1];
  url = argv[2];
  for (int i = 3; i + 1 < argc; i += 2) {
    const char *k = argv[i], *v = argv[i + 1];
    if (!strcmp(k, "--tenant"))
      tenant = v;
    else if (!strcmp(k, "--threads"))
      threads = atoi(v);
    else if (!strcmp(k, "--count"))
      count = atol(v);
    else if (!strcmp(k, "--prefix"))
      prefix = v;
    else if (!strcmp(k, "--customers"))
      customers = atol(v);
    else if (!strcmp(k, "--ids-out"))
      ids_out = v;
    else if (!strcmp(k, "--ids"))
      n_ids = atol(v);
    else if (!strcmp(k, "--seconds"))
      max_seconds = atof(v);
    else {
      fprintf(stderr, "rawinsert: unknown option %s\n", k);
      return 2;
    }
  }
  if (threads < 1 || count < 1 || customers < 1) return 2;
  if (strncmp(url, "sqlite:", 7)) {
    mongoc_init();
    bson_error_t err;
    mongoc_uri_t *uri = mongoc_uri_new_with_error(url, &err);
    if (!uri) {
      fprintf(stderr, "rawinsert: %s\n", err.message);
      return 2;
    }
    const char *d = mongoc_uri_get_database(uri);
    if (d && *d) snprintf(dbname, sizeof dbname, "%s", d);
    pool = mongoc_client_pool_new(uri);
    mongoc_client_pool_set_error_api(pool, MONGOC_ERROR_API_VERSION_2);
    mongoc_client_pool_max_size(pool, (uint32_t)(threads + 1));
    mongoc_uri_destroy(uri);
  }
  int rc = !strcmp(mode, "insert")    ? run_insert()
           : !strcmp(mode, "seed")    ? run_seed()
           : !strcmp(mode, "analyze") ? run_analyze(1)
           : !strcmp(mode, "stat")    ? run_analyze(0)
                                      : 2;
  if (pool) {
    mongoc_client_pool_destroy(pool);
    mongoc_cleanup();
  }
  return rc;
}
