/* store_int.h - what store.c shares with the engines: the engine vtable, the
 * find plan that engines execute, and small helpers (errors, string builder,
 * cursor sealing). Not part of the public API; tests may include it to forge
 * cursors. */
#ifndef EVENTS_STORE_INT_H
#define EVENTS_STORE_INT_H

#include <stdarg.h>
#include <stddef.h>
#include "store.h"

/* More sort keys than this is a caller bug, not a feature. */
#define STORE_MAX_ORDER 8

/* A find reduced to what an engine executes. The scan order already has "id"
 * appended and, for `before` queries, every direction flipped, so engines only
 * ever scan forwards. */
typedef struct store_plan {
  const store_cond *conds; /* validated; EQ null already rewritten to MISSING */
  size_t n_conds;
  const store_expr *where;  /* validated; NULL: none */
  const store_order *order; /* scan order, "id" last */
  size_t n_order;
  json_t *seek; /* NULL, or an array with one value per order key: return only
                   documents strictly after this position in scan order */
  size_t limit; /* 0: no limit */
  size_t offset;
} store_plan;

typedef struct store_engine_ops {
  const char *name;
  /* Every call of the engine waits on the network: each is a block (see
   * store_set_block_hook). An engine without it marks its own slow waits
   * with store_block. */
  int remote;
  int (*open)(const char *url, const store_schema *schema, store **out, store_err *err);
  void (*close)(store *st);
  int (*ping)(store *st, store_err *err);
  int (*next_id)(store *st, const char *tenant, const char *sequence, long long *out,
                 store_err *err);
  /* `id` is the validated doc["id"]; doc holds no reserved member. */
  int (*insert)(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                store_err *err);
  int (*get)(store *st, const char *tenant, const char *coll, json_t *id, json_t **out,
             store_err *err);
  /* ids[i] is the validated docs[i]["id"]; results are preset to STORE_OK. */
  int (*insert_many)(store *st, const char *tenant, const char *coll, json_t *const *ids,
                     json_t *const *docs, size_t n, int atomic, int *results, store_err *err);
  int (*next_ids)(store *st, const char *tenant, const char *sequence, long long count,
                  long long *first, store_err *err);
  int (*replace)(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                 store_err *err);
  /* `set` is non-empty with validated dotted keys; null values remove. */
  int (*patch)(store *st, const char *tenant, const char *coll, json_t *id, json_t *set,
               json_t **out, store_err *err);
  int (*del)(store *st, const char *tenant, const char *coll, json_t *id, store_err *err);
  /* Appends the documents to `docs` in scan order. */
  int (*find)(store *st, const char *tenant, const char *coll, const store_plan *plan, json_t *docs,
              store_err *err);
  int (*count)(store *st, const char *tenant, const char *coll, const store_cond *conds,
               size_t n_conds, const store_expr *where, long long *out, store_err *err);
  int (*delete_where)(store *st, const char *tenant, const char *coll, const store_cond *conds,
                      size_t n_conds, long long *deleted, store_err *err);
  /* out is zeroed, changes an empty array; limit >= 1. */
  int (*changes)(store *st, const char *tenant, long long after, size_t limit,
                 store_changes_page *out, store_err *err);
  int (*changes_prune)(store *st, long long before_us, long long *removed, store_err *err);
  /* Optional: where the engine's driver logs (store_set_driver_log). */
  void (*set_log)(store_log_fn fn);
} store_engine_ops;

/* Every engine's handle starts with this, so store.c can dispatch. */
struct store {
  const store_engine_ops *engine;
  store_stats stats;  /* updated atomically by every engine call */
  char **collections; /* names from the schema, for argument checks */
  size_t n_collections;
  void (*write_hook)(void *arg, const char *tenant);
  void *write_hook_arg;
};

/* Before a wait that may be slow (see store_set_block_hook). */
void store_block(void);

extern const store_engine_ops store_sqlite_engine;
/* store_mongo.c: linked in (tests) or loaded from its module (store.c). */
extern const store_engine_ops store_mongo_engine;

/* The counters collection/table behind store_next_id; a schema may not use it. */
#define STORE_COUNTERS "counters"
/* The change log's collection/table; a schema may not use it, nor any name
 * it begins (the MongoDB engine keeps the log's marks in "changes_marks"). */
#define STORE_CHANGES "changes"

/* Sets *err (if any) and returns code, so failures read `return store_fail(...)`. */
int store_fail(store_err *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Field paths are restricted to [A-Za-z0-9_-] segments joined by dots, which
 * both engines can address and which SQLite can embed as a literal (expression
 * indexes only match literal paths). */
int store_path_ok(const char *path);
/* The member at a dotted path, or NULL. Borrowed. */
json_t *store_doc_path(json_t *doc, const char *path);
/* Sets (or, for a JSON null value, removes) the member at a dotted path,
 * creating intermediate objects. Fails if an intermediate is not an object. */
int store_doc_patch(json_t *doc, json_t *set, store_err *err);

/* Growable string; an allocation failure sticks in `oom` and is checked once. */
typedef struct store_buf {
  char *p;
  size_t len, cap;
  int oom;
} store_buf;
void store_buf_add(store_buf *b, const char *s);
void store_buf_addn(store_buf *b, const char *s, size_t n);
void store_buf_addf(store_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void store_buf_free(store_buf *b);

/* Cursor framing: base64url(version || payload || checksum). Exposed so tests
 * can build checksum-valid tokens around malformed payloads. */
char *store_cursor_seal(const char *payload, size_t len);
/* Returns a malloc'd payload (NUL-terminated) or NULL if the framing or the
 * checksum is wrong. */
char *store_cursor_unseal(const char *token, size_t *len);

/* A stored document's JSON text as jansson values: a fast reader for the
 * shape the store writes, json_loadb for anything else (store_json.c).
 * NULL when the text is not a JSON object or array. */
json_t *store_json_load(const char *text, size_t len);
/* doc's text exactly as json_dumps(doc, JSON_COMPACT) writes it (malloc'd;
 * NULL where json_dumps fails), faster. */
char *store_json_dumps(const json_t *doc);

#endif
