/* store.h - the document store every dialect's handlers use.
 *
 * Documents are jansson objects. Every call names the tenant, so no query can
 * leave it out; a document of another tenant does not exist. A document's key
 * within its tenant and collection is its "id" member (string or integer).
 * Times are stored as integers (microseconds since the epoch) so that ranges
 * and ordering behave the same on every engine.
 *
 * Engines: "sqlite:PATH" (embedded, WAL, synchronous=FULL) and
 * "mongodb://..." (mongo-c-driver client pool; database from the URI path,
 * default "events"). All functions are safe to call from many threads. */
#ifndef EVENTS_STORE_H
#define EVENTS_STORE_H

#include <stddef.h>
#include <jansson.h>

enum {
  STORE_OK = 0,
  STORE_ENOTFOUND = -1,    /* no such document in this tenant */
  STORE_EDUPLICATE = -2,   /* a unique index refused the write */
  STORE_EUNAVAILABLE = -3, /* the store cannot be reached or timed out */
  STORE_EINVAL = -4,       /* bad argument, e.g. a tampered cursor */
  STORE_EINTERNAL = -5,
  STORE_EABORTED = -6, /* not written: another item of an atomic batch failed */
  STORE_EBUSY = -7,    /* contention or a time limit outlasted the retries: the store is
                          reachable, the call may be tried again */
};

typedef struct store_err {
  int code;
  char msg[256];
} store_err;

/* Schema: collections and their secondary indexes, created idempotently by
 * store_open. (tenant, id) is always the primary key. */
#define STORE_MAX_INDEX_FIELDS 6
typedef struct store_index {
  const char *fields[STORE_MAX_INDEX_FIELDS]; /* dotted paths, NULL-terminated */
  int unique;
} store_index;

typedef struct store_collection {
  const char *name;
  const store_index *indexes;
  size_t n_indexes;
} store_collection;

typedef struct store_schema {
  const store_collection *collections;
  size_t n_collections;
} store_schema;

typedef struct store store;

int store_open(const char *url, const store_schema *schema, store **out, store_err *err);
/* Where an engine's driver sends its own warnings and errors (error: 1 for
 * an error, 0 for a warning); its chatter is dropped. Set before store_open.
 * Unset, the driver logs as it does by default. */
typedef void (*store_log_fn)(int error, const char *component, const char *message);
void store_set_driver_log(store_log_fn fn);
void store_close(store *st);
const char *store_engine(const store *st); /* "sqlite" or "mongodb" */
int store_ping(store *st, store_err *err);

/* Load and failures since open, for metrics. in_flight is the number of
 * engine calls running, i.e. pool connections in use. */
typedef struct store_stats {
  long long in_flight;
  long long calls;
  long long unavailable;
  long long internal;
} store_stats;
void store_get_stats(const store *st, store_stats *out);

/* Next value of a per-tenant increasing integer sequence (starts at 1). */
int store_next_id(store *st, const char *tenant, const char *sequence, long long *out,
                  store_err *err);

/* The first of `count` consecutive values of the sequence, taken at once
 * (one call, whatever the count): a batch's ids stay dense and unique across
 * concurrent batches and replicas. */
int store_next_ids(store *st, const char *tenant, const char *sequence, long long count,
                   long long *first, store_err *err);

int store_insert(store *st, const char *tenant, const char *coll, json_t *doc, store_err *err);

/* Inserts n documents (at most STORE_BATCH_MAX) as one write: one transaction
 * on SQLite, one bulk insert on MongoDB. Each document goes through the
 * engine's own single-insert path, so it meets the same unique indexes, also
 * against the other documents of the batch (the first of two equal ones wins).
 * results[i] is STORE_OK for a written document and its own error code
 * (STORE_EDUPLICATE, STORE_EINVAL...) for a refused one; when `atomic`, either
 * every document is written or none is, and the documents that did not fail
 * themselves are STORE_EABORTED. Returns STORE_OK when results tell each
 * document's fate, or the error of a batch that failed as a whole (the store
 * unavailable: every result is that error, and on MongoDB some documents
 * may have been written).
 *
 * MongoDB without transactions (FerretDB v1, a standalone mongod): an atomic
 * batch is inserted unordered and, if any document failed, the written ones
 * are deleted again. Until that delete, readers can see them and they hold
 * their unique keys (a concurrent create of the same customer triple may be
 * refused meanwhile); if the store fails in between they stay, and the call
 * reports the failure (STORE_EUNAVAILABLE) rather than an atomic outcome. */
#define STORE_BATCH_MAX 1000
int store_insert_many(store *st, const char *tenant, const char *coll, json_t *const *docs,
                      size_t n, int atomic, int *results, store_err *err);
/* *out is a new reference. */
int store_get(store *st, const char *tenant, const char *coll, json_t *id, json_t **out,
              store_err *err);
/* Replace the whole document (doc carries the same id). */
int store_replace(store *st, const char *tenant, const char *coll, json_t *doc, store_err *err);
/* Atomically set the members of `set` (a JSON null member removes that field);
 * *out (may be NULL) receives the updated document. */
int store_patch(store *st, const char *tenant, const char *coll, json_t *id, json_t *set,
                json_t **out, store_err *err);
int store_delete(store *st, const char *tenant, const char *coll, json_t *id, store_err *err);

typedef enum store_op {
  STORE_EQ, /* value: scalar */
  STORE_IN, /* value: array of scalars */
  STORE_GT,
  STORE_GTE,
  STORE_LT,
  STORE_LTE,
  STORE_EXISTS,  /* present and not null; value unused */
  STORE_MISSING, /* absent or null; value unused */
  /* Only in a store_expr (store_query.where): */
  STORE_HAS,      /* an array field holds the scalar value */
  STORE_HAS_ANY,  /* an array field holds one of an array of scalars */
  STORE_NONEMPTY, /* an array field holds something; value unused */
  STORE_CONTAINS, /* a string field contains the string value, ignoring ASCII case */
} store_op;

typedef struct store_cond {
  const char *field; /* dotted path; "id" is the document key */
  store_op op;
  json_t *value; /* borrowed */
} store_cond;

/* A boolean expression of conditions: a condition, or the AND / OR of its
 * operands, or the NOT of its one operand. Any condition that is not true of
 * a document (a missing field included) is false, so NOT is its exact
 * complement. At most STORE_MAX_EXPR_DEPTH levels. */
#define STORE_MAX_EXPR_DEPTH 16
typedef enum store_expr_kind { STORE_X_COND, STORE_X_AND, STORE_X_OR, STORE_X_NOT } store_expr_kind;
typedef struct store_expr {
  store_expr_kind kind;
  store_cond cond; /* STORE_X_COND */
  const struct store_expr *operands;
  size_t n_operands;
} store_expr;

typedef struct store_order {
  const char *field;
  int desc;
} store_order;

typedef struct store_query {
  const store_cond *conds;
  size_t n_conds;
  const store_expr *where;  /* ANDed with conds; NULL: none */
  const store_order *order; /* "id" is appended as tie-breaker unless present */
  size_t n_order;
  size_t limit;       /* 0: no limit */
  size_t offset;      /* offset pagination; not combined with cursors */
  const char *after;  /* keyset cursor: documents after it */
  const char *before; /* keyset cursor: documents before it (page returned in order) */
  int count;          /* fill store_page.total */
} store_query;

typedef struct store_page {
  json_t *docs;    /* array, in query order */
  char *next;      /* cursor after the last doc, NULL on the last page */
  char *prev;      /* cursor before the first doc, NULL on the first page */
  long long total; /* matches ignoring pagination, when query.count */
} store_page;

int store_find(store *st, const char *tenant, const char *coll, const store_query *q,
               store_page *out, store_err *err);
void store_page_clear(store_page *page);
int store_delete_where(store *st, const char *tenant, const char *coll, const store_cond *conds,
                       size_t n_conds, long long *deleted, store_err *err);
int store_count(store *st, const char *tenant, const char *coll, const store_cond *conds,
                size_t n_conds, long long *out, store_err *err);

/* Whether doc meets every condition and the expression (NULL: none), as a
 * query of either engine would decide. */
int store_match(json_t *doc, const store_cond *conds, size_t n_conds, const store_expr *where);
/* A deep copy (field names and values too), freed by store_expr_free. */
store_expr *store_expr_dup(const store_expr *e);
void store_expr_free(store_expr *e);

/* ---- change log -------------------------------------------------------------
 * Every write that changes a document (insert, replace, patch, delete, and
 * each document delete_where removes) appends one change to its tenant's log,
 * atomically with the write as far as the engine allows (see each engine's
 * header). A change is an object {"seq", "time" (microseconds), "op"
 * (store_change_op), "coll", "id", "doc"}: doc is the document after the
 * change, and for a delete the document as it was. seq increases per tenant
 * in commit order; a reader that has seen every change up to seq S continues
 * with after = S and misses none. */
typedef enum store_change_op {
  STORE_CHANGE_CREATE = 1,
  STORE_CHANGE_UPDATE = 2,
  STORE_CHANGE_DELETE = 3,
} store_change_op;

typedef struct store_changes_page {
  json_t *changes;   /* array, seq ascending, at most the limit asked for */
  long long scanned; /* the position this page reaches: the next call's `after` */
  long long head;    /* the tenant's latest position whose predecessors are all settled */
  long long floor;   /* the highest position pruned: `after` below it has a gap */
} store_changes_page;

int store_changes(store *st, const char *tenant, long long after, size_t limit,
                  store_changes_page *out, store_err *err);
void store_changes_clear(store_changes_page *page);
/* The wall clock in microseconds, as change times are written. */
long long store_now_us(void);
/* Removes the changes of every tenant committed before before_us. */
int store_changes_prune(store *st, long long before_us, long long *removed, store_err *err);

/* Called after every write call that succeeded, with its tenant (a change
 * feed in the same process wakes up at once instead of at its next poll).
 * Set once, before the store is shared. */
void store_set_write_hook(store *st, void (*fn)(void *arg, const char *tenant), void *arg);

/* Process-wide: called by a thread about to wait on something slower than
 * the CPU (a network round trip, a group's commit and fsync), so a server
 * that lets only some of its threads run at once can let another run
 * meanwhile. It may be called again before a nested wait, so it must be
 * idempotent. Set once, before any store call. */
void store_set_block_hook(void (*fn)(void));

#endif
