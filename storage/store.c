/* store.c - the engine-independent half of the store: picks the engine from
 * the URL, checks every argument once so engines can trust them, turns a
 * store_query into a forward-only scan plan, and makes and checks the opaque
 * keyset cursor tokens. */
#include <dlfcn.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store_int.h"

#define CURSOR_VERSION 1
#define CURSOR_MAX_LEN 16384 /* a token longer than this was not made by us */

/* ---- errors and small helpers ---------------------------------------- */

/* Every engine call goes through ENGINE so the store can report its load
 * (calls in flight, i.e. pool connections in use) and its failures, and a
 * remote engine's calls are blocks (see store_set_block_hook). */
static void (*block_fn)(void);

void store_set_block_hook(void (*fn)(void)) {
  block_fn = fn;
}

void store_block(void) {
  if (block_fn) block_fn();
}

static const store_engine_ops *engine_begin(store *st) {
  __atomic_add_fetch(&st->stats.in_flight, 1, __ATOMIC_RELAXED);
  if (st->engine->remote) store_block();
  return st->engine;
}

static int engine_done(store *st, int rc) {
  __atomic_sub_fetch(&st->stats.in_flight, 1, __ATOMIC_RELAXED);
  __atomic_add_fetch(&st->stats.calls, 1, __ATOMIC_RELAXED);
  if (rc == STORE_EUNAVAILABLE) __atomic_add_fetch(&st->stats.unavailable, 1, __ATOMIC_RELAXED);
  if (rc == STORE_EINTERNAL) __atomic_add_fetch(&st->stats.internal, 1, __ATOMIC_RELAXED);
  return rc;
}
#define ENGINE(st, op) (engine_begin(st)->op)

/* A call whose cost grows with the data (a scan, a count, a read of the
 * change log) is a block on every engine: a thread serving a call that
 * waits behind it could run meanwhile. */
#define SCAN(st, op) (store_block(), ENGINE(st, op))

int store_fail(store_err *err, int code, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    err->code = code;
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
  }
  return code;
}

static void err_clear(store_err *err) {
  if (err) {
    err->code = STORE_OK;
    err->msg[0] = '\0';
  }
}

void store_buf_addn(store_buf *b, const char *s, size_t n) {
  if (b->oom) return;
  if (b->len + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + n + 1)
      cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, s, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void store_buf_add(store_buf *b, const char *s) {
  store_buf_addn(b, s, strlen(s));
}

void store_buf_addf(store_buf *b, const char *fmt, ...) {
  char tmp[256];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= sizeof tmp) {
    b->oom = 1; /* only short fragments go through here */
    return;
  }
  store_buf_addn(b, tmp, (size_t)n);
}

void store_buf_free(store_buf *b) {
  free(b->p);
  memset(b, 0, sizeof *b);
}

int store_path_ok(const char *path) {
  size_t seg = 0, len = 0;
  if (!path || !*path) return 0;
  for (const char *p = path; *p; p++, len++) {
    char c = *p;
    if (c == '.') {
      if (seg == 0) return 0;
      seg = 0;
    } else if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               c == '_' || c == '-') {
      seg++;
    } else {
      return 0;
    }
  }
  return seg > 0 && len <= 256;
}

/* "tenant" and "_id" are the Mongo engine's own members: documents, queries
 * and patches may not name them, on either engine, so both behave alike. */
static int reserved_name(const char *path) {
  size_t n = strcspn(path, ".");
  return (n == 6 && !strncmp(path, "tenant", 6)) || (n == 3 && !strncmp(path, "_id", 3));
}

static int field_ok(const char *path) {
  return store_path_ok(path) && !reserved_name(path);
}

json_t *store_doc_path(json_t *doc, const char *path) {
  json_t *cur = doc;
  const char *p = path;
  while (cur && json_is_object(cur)) {
    size_t n = strcspn(p, ".");
    char key[257];
    if (n >= sizeof key) return NULL;
    memcpy(key, p, n);
    key[n] = '\0';
    cur = json_object_get(cur, key);
    if (!p[n]) return cur;
    p += n + 1;
  }
  return NULL;
}

int store_doc_patch(json_t *doc, json_t *set, store_err *err) {
  const char *path;
  json_t *value;
  json_object_foreach(set, path, value) {
    json_t *cur = doc;
    const char *p = path;
    for (;;) {
      size_t n = strcspn(p, ".");
      char key[257];
      if (n >= sizeof key) return store_fail(err, STORE_EINVAL, "patch path too long: %s", path);
      memcpy(key, p, n);
      key[n] = '\0';
      if (!p[n]) {
        int rc =
            json_is_null(value) ? (json_object_del(cur, key), 0) : json_object_set(cur, key, value);
        if (rc) return store_fail(err, STORE_EINTERNAL, "patch %s: out of memory", path);
        break;
      }
      json_t *next = json_object_get(cur, key);
      if (!next) {
        if (json_is_null(value)) break; /* removing below a missing member: nothing to do */
        next = json_object();
        if (!next || json_object_set_new(cur, key, next))
          return store_fail(err, STORE_EINTERNAL, "patch %s: out of memory", path);
      } else if (!json_is_object(next)) {
        return store_fail(err, STORE_EINVAL, "patch %s: '%s' is not an object", path, key);
      }
      cur = next;
      p += n + 1;
    }
  }
  return STORE_OK;
}

/* ---- cursor framing ------------------------------------------------------ */

/* Not a MAC: tokens are not secrets, the checksum only makes accidental or
 * casual edits fail cleanly as STORE_EINVAL instead of seeking somewhere odd. */
static uint64_t checksum(const unsigned char *p, size_t n) {
  static const char salt[] = "events-store-cursor";
  uint64_t h = 1469598103934665603ULL;
  for (size_t i = 0; i < sizeof salt - 1; i++)
    h = (h ^ (unsigned char)salt[i]) * 1099511628211ULL;
  for (size_t i = 0; i < n; i++)
    h = (h ^ p[i]) * 1099511628211ULL;
  return h;
}

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static char *b64url_encode(const unsigned char *in, size_t n) {
  char *out = malloc((n + 2) / 3 * 4 + 1);
  size_t o = 0, i = 0;
  if (!out) return NULL;
  for (; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
    out[o++] = b64url[v >> 18 & 63];
    out[o++] = b64url[v >> 12 & 63];
    out[o++] = b64url[v >> 6 & 63];
    out[o++] = b64url[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)in[i] << 16 | (i + 1 < n ? (uint32_t)in[i + 1] << 8 : 0);
    out[o++] = b64url[v >> 18 & 63];
    out[o++] = b64url[v >> 12 & 63];
    if (i + 1 < n) out[o++] = b64url[v >> 6 & 63];
  }
  out[o] = '\0';
  return out;
}

static int b64url_value(char c) {
  const char *p = c ? strchr(b64url, c) : NULL;
  return p ? (int)(p - b64url) : -1;
}

/* Strict: unpadded, alphabet only, unused trailing bits zero. */
static unsigned char *b64url_decode(const char *in, size_t *out_len) {
  size_t n = strlen(in);
  if (n % 4 == 1) return NULL;
  unsigned char *out = malloc(n / 4 * 3 + 3);
  if (!out) return NULL;
  size_t o = 0;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; i < n; i++) {
    int v = b64url_value(in[i]);
    if (v < 0) goto bad;
    acc = acc << 6 | (uint32_t)v;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out[o++] = (unsigned char)(acc >> bits);
      acc &= (1u << bits) - 1;
    }
  }
  if (acc != 0) goto bad;
  *out_len = o;
  return out;
bad:
  free(out);
  return NULL;
}

char *store_cursor_seal(const char *payload, size_t len) {
  unsigned char *raw = malloc(len + 9);
  if (!raw) return NULL;
  raw[0] = CURSOR_VERSION;
  memcpy(raw + 1, payload, len);
  uint64_t sum = checksum(raw, len + 1);
  for (int i = 0; i < 8; i++)
    raw[len + 1 + i] = (unsigned char)(sum >> (56 - 8 * i));
  char *token = b64url_encode(raw, len + 9);
  free(raw);
  return token;
}

char *store_cursor_unseal(const char *token, size_t *len) {
  size_t n = 0;
  if (!token || strlen(token) > CURSOR_MAX_LEN) return NULL;
  unsigned char *raw = b64url_decode(token, &n);
  if (!raw) return NULL;
  if (n < 10 || raw[0] != CURSOR_VERSION) goto bad;
  uint64_t sum = 0;
  for (int i = 0; i < 8; i++)
    sum = sum << 8 | raw[n - 8 + i];
  if (sum != checksum(raw, n - 8)) goto bad;
  *len = n - 9;
  memmove(raw, raw + 1, *len);
  raw[*len] = '\0';
  return (char *)raw;
bad:
  free(raw);
  return NULL;
}

/* ---- cursor contents ----------------------------------------------------- */

/* A token records the collection, the query's key spec ("field" / "-field",
 * "id" last) and the values of the document it points at. Direction of travel
 * is not in it: the same token works as `after` and as `before`. */
static char *cursor_make(const char *coll, json_t *spec, const store_order *keys, size_t n,
                         json_t *doc) {
  char *token = NULL, *text = NULL;
  json_t *values = json_array(), *payload = NULL;
  if (!values) return NULL;
  for (size_t i = 0; i < n; i++) {
    json_t *v = store_doc_path(doc, keys[i].field);
    /* Only scalars seek meaningfully; anything else stands as null (absent). */
    if (!v || json_is_object(v) || json_is_array(v)) v = json_null();
    if (json_array_append(values, v)) goto cleanup_values;
  }
  payload = json_pack("{s:s, s:O, s:O}", "c", coll, "k", spec, "v", values);
  if (!payload) goto cleanup_values;
  text = json_dumps(payload, JSON_COMPACT);
  if (text) token = store_cursor_seal(text, strlen(text));
  free(text);
  json_decref(payload);
cleanup_values:
  json_decref(values);
  return token;
}

static int cursor_read(const char *token, const char *coll, json_t *spec, json_t **values,
                       store_err *err) {
  size_t len = 0;
  json_error_t jerr;
  char *text = store_cursor_unseal(token, &len);
  if (!text) return store_fail(err, STORE_EINVAL, "cursor: malformed or altered token");
  json_t *payload = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
  free(text);
  if (!payload) return store_fail(err, STORE_EINVAL, "cursor: bad JSON: %s", jerr.text);

  int rc = STORE_EINVAL;
  json_t *c = json_object_get(payload, "c"), *k = json_object_get(payload, "k");
  json_t *v = json_object_get(payload, "v");
  if (!json_is_object(payload) || json_object_size(payload) != 3 || !json_is_string(c) ||
      !json_is_array(k) || !json_is_array(v)) {
    store_fail(err, rc, "cursor: unexpected shape");
    goto cleanup_payload;
  }
  if (strcmp(json_string_value(c), coll) != 0) {
    store_fail(err, rc, "cursor: made for collection '%s'", json_string_value(c));
    goto cleanup_payload;
  }
  if (!json_equal(k, spec)) {
    store_fail(err, rc, "cursor: made for a different order");
    goto cleanup_payload;
  }
  size_t n = json_array_size(v);
  if (n != json_array_size(spec)) {
    store_fail(err, rc, "cursor: wrong number of values");
    goto cleanup_payload;
  }
  for (size_t i = 0; i < n; i++) {
    json_t *x = json_array_get(v, i);
    int last = i + 1 == n;
    if (last ? !(json_is_string(x) || json_is_integer(x))
             : (json_is_object(x) || json_is_array(x))) {
      store_fail(err, rc, "cursor: value %zu has the wrong type", i);
      goto cleanup_payload;
    }
  }
  *values = json_incref(v);
  rc = STORE_OK;
cleanup_payload:
  json_decref(payload);
  return rc;
}

/* ---- argument checks ----------------------------------------------------- */

static int check_tenant(const char *tenant, store_err *err) {
  if (!tenant || !*tenant) return store_fail(err, STORE_EINVAL, "tenant is empty");
  return STORE_OK;
}

static int check_coll(const store *st, const char *coll, store_err *err) {
  if (!coll) return store_fail(err, STORE_EINVAL, "collection is NULL");
  for (size_t i = 0; i < st->n_collections; i++)
    if (!strcmp(st->collections[i], coll)) return STORE_OK;
  return store_fail(err, STORE_EINVAL, "unknown collection '%s'", coll);
}

static int check_id(json_t *id, store_err *err) {
  if (!json_is_string(id) && !json_is_integer(id))
    return store_fail(err, STORE_EINVAL, "id must be a string or an integer");
  return STORE_OK;
}

static int check_call(store *st, const char *tenant, const char *coll, store_err *err) {
  err_clear(err);
  if (!st) return store_fail(err, STORE_EINVAL, "store is NULL");
  int rc = check_tenant(tenant, err);
  return rc ? rc : check_coll(st, coll, err);
}

/* Deeper documents are refused on both engines alike: BSON servers stop at
 * 100 levels, and the Mongo engine may double a level for nested arrays. */
#define MAX_DEPTH 40

static int too_deep(json_t *v, int depth) {
  size_t i;
  const char *k;
  json_t *x;
  if (!json_is_object(v) && !json_is_array(v)) return 0;
  if (depth >= MAX_DEPTH) return 1;
  if (json_is_array(v)) {
    json_array_foreach(v, i, x) if (too_deep(x, depth + 1)) return 1;
  } else {
    json_object_foreach(v, k, x) if (too_deep(x, depth + 1)) return 1;
  }
  return 0;
}

static int check_doc(json_t *doc, json_t **id, store_err *err) {
  if (!json_is_object(doc)) return store_fail(err, STORE_EINVAL, "document is not an object");
  if (too_deep(doc, 0))
    return store_fail(err, STORE_EINVAL, "document nested deeper than %d levels", MAX_DEPTH);
  if (json_object_get(doc, "tenant") || json_object_get(doc, "_id"))
    return store_fail(err, STORE_EINVAL, "document members 'tenant' and '_id' are reserved");
  *id = json_object_get(doc, "id");
  if (!*id) return store_fail(err, STORE_EINVAL, "document has no id");
  return check_id(*id, err);
}

static int scalar(json_t *v) {
  return json_is_string(v) || json_is_number(v) || json_is_boolean(v);
}

static int check_cond_value(const store_cond *c) {
  size_t j;
  json_t *v;
  switch (c->op) {
  case STORE_EQ:
  case STORE_GT:
  case STORE_GTE:
  case STORE_LT:
  case STORE_LTE:
  case STORE_HAS:
    return c->value && scalar(c->value);
  case STORE_CONTAINS:
    return json_is_string(c->value);
  case STORE_IN:
  case STORE_HAS_ANY: {
    int ok = json_is_array(c->value);
    json_array_foreach(c->value, j, v) ok = ok && scalar(v);
    return ok;
  }
  case STORE_EXISTS:
  case STORE_MISSING:
  case STORE_NONEMPTY:
    return 1;
  }
  return 0;
}

static int check_expr(const store_expr *e, int depth, store_err *err) {
  if (depth >= STORE_MAX_EXPR_DEPTH)
    return store_fail(err, STORE_EINVAL, "expression nested deeper than %d levels",
                      STORE_MAX_EXPR_DEPTH);
  switch (e->kind) {
  case STORE_X_COND:
    if (!e->cond.field || !field_ok(e->cond.field) || !check_cond_value(&e->cond))
      return store_fail(err, STORE_EINVAL, "expression: bad condition on '%s'",
                        e->cond.field ? e->cond.field : "(null)");
    return STORE_OK;
  case STORE_X_NOT:
    if (e->n_operands != 1) return store_fail(err, STORE_EINVAL, "NOT takes one operand");
    break;
  case STORE_X_AND:
  case STORE_X_OR:
    if (e->n_operands == 0) return store_fail(err, STORE_EINVAL, "AND/OR take operands");
    break;
  default:
    return store_fail(err, STORE_EINVAL, "expression: unknown kind");
  }
  if (!e->operands) return store_fail(err, STORE_EINVAL, "expression: operands are NULL");
  for (size_t i = 0; i < e->n_operands; i++) {
    int rc = check_expr(&e->operands[i], depth + 1, err);
    if (rc) return rc;
  }
  return STORE_OK;
}

/* Copies the conditions, rewriting EQ null as MISSING (Mongo's meaning of
 * {f: null}) so the engines see one form. *out is NULL when n is 0. */
static int check_conds(const store_cond *conds, size_t n, store_cond **out, store_err *err) {
  *out = NULL;
  if (n == 0) return STORE_OK;
  if (!conds) return store_fail(err, STORE_EINVAL, "conditions are NULL");
  store_cond *c = calloc(n, sizeof *c);
  if (!c) return store_fail(err, STORE_EINTERNAL, "out of memory");
  for (size_t i = 0; i < n; i++) {
    c[i] = conds[i];
    if (!conds[i].field || !field_ok(conds[i].field)) {
      free(c);
      return store_fail(err, STORE_EINVAL, "condition %zu: bad field '%s'", i,
                        conds[i].field ? conds[i].field : "(null)");
    }
    int ok = 1;
    switch (c[i].op) {
    case STORE_EQ:
      if (!c[i].value || json_is_null(c[i].value))
        c[i].op = STORE_MISSING;
      else
        ok = scalar(c[i].value);
      break;
    case STORE_IN: {
      size_t j;
      json_t *v;
      ok = json_is_array(c[i].value);
      json_array_foreach(c[i].value, j, v) ok = ok && scalar(v);
      break;
    }
    case STORE_GT:
    case STORE_GTE:
    case STORE_LT:
    case STORE_LTE:
      ok = scalar(c[i].value);
      break;
    case STORE_EXISTS:
    case STORE_MISSING:
      break;
    default:
      ok = 0;
    }
    if (!ok) {
      free(c);
      return store_fail(err, STORE_EINVAL, "condition %zu on '%s': bad operator or value", i,
                        conds[i].field);
    }
  }
  *out = c;
  return STORE_OK;
}

static int check_patch(json_t *set, store_err *err) {
  const char *k1, *k2;
  json_t *v1, *v2;
  if (!json_is_object(set)) return store_fail(err, STORE_EINVAL, "patch is not an object");
  json_object_foreach(set, k1, v1) {
    if (!store_path_ok(k1) || reserved_name(k1) || !strcmp(k1, "id"))
      return store_fail(err, STORE_EINVAL, "patch: cannot set '%s'", k1);
    int segments = 1;
    for (const char *p = k1; *p; p++)
      segments += *p == '.';
    if (too_deep(v1, segments))
      return store_fail(err, STORE_EINVAL, "patch: '%s' nested deeper than %d levels", k1,
                        MAX_DEPTH);
    /* "a" and "a.b" together have no single meaning (Mongo refuses them). */
    json_object_foreach(set, k2, v2) {
      size_t n = strlen(k1);
      if (k1 != k2 && !strncmp(k1, k2, n) && k2[n] == '.')
        return store_fail(err, STORE_EINVAL, "patch: '%s' and '%s' overlap", k1, k2);
    }
  }
  return STORE_OK;
}

/* ---- open / close -------------------------------------------------------- */

static int coll_name_ok(const char *name) {
  if (!name || !*name || strlen(name) > 64 || !strcmp(name, STORE_COUNTERS) ||
      !strncmp(name, STORE_CHANGES, strlen(STORE_CHANGES)) || !strncmp(name, "sqlite_", 7))
    return 0;
  for (const char *p = name; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_'))
      return 0;
  return 1;
}

static int check_schema(const store_schema *schema, store_err *err) {
  if (!schema || (schema->n_collections && !schema->collections))
    return store_fail(err, STORE_EINVAL, "schema is missing");
  for (size_t i = 0; i < schema->n_collections; i++) {
    const store_collection *c = &schema->collections[i];
    if (!coll_name_ok(c->name))
      return store_fail(err, STORE_EINVAL, "schema: bad collection name '%s'",
                        c->name ? c->name : "(null)");
    for (size_t j = 0; j < i; j++)
      if (!strcmp(schema->collections[j].name, c->name))
        return store_fail(err, STORE_EINVAL, "schema: collection '%s' twice", c->name);
    if (c->n_indexes && !c->indexes)
      return store_fail(err, STORE_EINVAL, "schema: %s: indexes missing", c->name);
    for (size_t j = 0; j < c->n_indexes; j++) {
      size_t k = 0;
      for (; k < STORE_MAX_INDEX_FIELDS && c->indexes[j].fields[k]; k++)
        if (!field_ok(c->indexes[j].fields[k]))
          return store_fail(err, STORE_EINVAL, "schema: %s: bad index field '%s'", c->name,
                            c->indexes[j].fields[k]);
      if (k == 0) return store_fail(err, STORE_EINVAL, "schema: %s: empty index", c->name);
    }
  }
  return STORE_OK;
}

static int copy_names(store *st, const store_schema *schema, store_err *err) {
  st->collections = calloc(schema->n_collections + 1, sizeof *st->collections);
  if (!st->collections) return store_fail(err, STORE_EINTERNAL, "out of memory");
  for (size_t i = 0; i < schema->n_collections; i++) {
    st->collections[i] = strdup(schema->collections[i].name);
    if (!st->collections[i]) return store_fail(err, STORE_EINTERNAL, "out of memory");
    st->n_collections++;
  }
  return STORE_OK;
}

/* ---- engines --------------------------------------------------------- */

/* The MongoDB engine's module, relative to the executable's directory (see
 * storage/CMakeLists.txt): libmongoc costs a process about 640 KiB of
 * private memory as soon as it is loaded, so only a mongodb:// store loads
 * it. A binary that links the engine in (the storage tests) uses that. */
#define MONGO_MODULE "../lib/events/events-store-mongo.so"

#pragma weak store_mongo_engine

static store_log_fn driver_log;
static const store_engine_ops *mongo_loaded;
static char mongo_error[PATH_MAX + 128];

void store_set_driver_log(store_log_fn fn) {
  driver_log = fn;
}

static void mongo_load(void) {
  char dir[PATH_MAX];
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 1);
  char *slash = n > 0 ? memrchr(dir, '/', (size_t)n) : NULL;
  if (!slash) {
    snprintf(mongo_error, sizeof mongo_error, "the executable's directory is unknown");
    return;
  }
  *slash = '\0';
  char path[PATH_MAX + 64];
  snprintf(path, sizeof path, "%s/" MONGO_MODULE, dir);
  /* The driver initialises as it loads, reading MONGOC_DISABLE_SHM then: its
   * shared-memory counters serve only its own stats tool, and when /dev/shm
   * cannot hold them it prints a plain-text line into the JSON log. */
  setenv("MONGOC_DISABLE_SHM", "1", 0);
  /* Never closed: the driver's threads and exit handlers live in it. */
  void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
  if (h) mongo_loaded = dlsym(h, "store_mongo_engine");
  if (!mongo_loaded) snprintf(mongo_error, sizeof mongo_error, "%s", dlerror());
}

static const store_engine_ops *mongo_engine(store_err *err) {
  static pthread_once_t once = PTHREAD_ONCE_INIT;
  if (&store_mongo_engine) return &store_mongo_engine;
  pthread_once(&once, mongo_load);
  if (!mongo_loaded) store_fail(err, STORE_EINTERNAL, "mongodb engine: %s", mongo_error);
  return mongo_loaded;
}

int store_open(const char *url, const store_schema *schema, store **out, store_err *err) {
  const store_engine_ops *engine = NULL;
  store *st = NULL;
  err_clear(err);
  if (!out) return store_fail(err, STORE_EINVAL, "store_open: out is NULL");
  *out = NULL;
  if (!url) return store_fail(err, STORE_EINVAL, "store URL is NULL");
  if (!strncmp(url, "sqlite:", 7))
    engine = &store_sqlite_engine;
  else if (!strncmp(url, "mongodb://", 10) || !strncmp(url, "mongodb+srv://", 14))
    engine = mongo_engine(err);
  else
    return store_fail(err, STORE_EINVAL, "store URL must start with sqlite: or mongodb://");
  if (!engine) return err ? err->code : STORE_EINTERNAL;
  int rc = check_schema(schema, err);
  if (rc) return rc;
  if (driver_log && engine->set_log) engine->set_log(driver_log);
  rc = engine->open(url, schema, &st, err);
  if (rc) return rc;
  st->engine = engine;
  rc = copy_names(st, schema, err);
  if (rc) {
    store_close(st);
    return rc;
  }
  *out = st;
  return STORE_OK;
}

void store_close(store *st) {
  if (!st) return;
  char **names = st->collections;
  size_t n = st->n_collections;
  st->engine->close(st);
  for (size_t i = 0; i < n; i++)
    free(names[i]);
  free(names);
}

const char *store_engine(const store *st) {
  return st ? st->engine->name : "none";
}

int store_ping(store *st, store_err *err) {
  err_clear(err);
  if (!st) return store_fail(err, STORE_EINVAL, "store is NULL");
  return engine_done(st, ENGINE(st, ping)(st, err));
}

/* ---- single documents ---------------------------------------------------- */

int store_next_id(store *st, const char *tenant, const char *sequence, long long *out,
                  store_err *err) {
  err_clear(err);
  if (!st || !out) return store_fail(err, STORE_EINVAL, "store_next_id: NULL argument");
  int rc = check_tenant(tenant, err);
  if (rc) return rc;
  if (!sequence || !*sequence || strlen(sequence) > 256)
    return store_fail(err, STORE_EINVAL, "sequence name is empty or too long");
  return engine_done(st, ENGINE(st, next_id)(st, tenant, sequence, out, err));
}

/* A write call that succeeded tells the hook (see store_set_write_hook). */
static int wrote(store *st, const char *tenant, int rc) {
  if (rc == STORE_OK && st->write_hook) st->write_hook(st->write_hook_arg, tenant);
  return rc;
}

int store_insert(store *st, const char *tenant, const char *coll, json_t *doc, store_err *err) {
  json_t *id;
  int rc = check_call(st, tenant, coll, err);
  if (!rc) rc = check_doc(doc, &id, err);
  return rc ? rc
            : wrote(st, tenant,
                    engine_done(st, ENGINE(st, insert)(st, tenant, coll, id, doc, err)));
}

int store_next_ids(store *st, const char *tenant, const char *sequence, long long count,
                   long long *first, store_err *err) {
  err_clear(err);
  if (!st || !first) return store_fail(err, STORE_EINVAL, "store_next_ids: NULL argument");
  int rc = check_tenant(tenant, err);
  if (rc) return rc;
  if (!sequence || !*sequence || strlen(sequence) > 256)
    return store_fail(err, STORE_EINVAL, "sequence name is empty or too long");
  if (count < 1 || count > STORE_BATCH_MAX)
    return store_fail(err, STORE_EINVAL, "store_next_ids: count must be 1..%d", STORE_BATCH_MAX);
  return engine_done(st, ENGINE(st, next_ids)(st, tenant, sequence, count, first, err));
}

int store_insert_many(store *st, const char *tenant, const char *coll, json_t *const *docs,
                      size_t n, int atomic, int *results, store_err *err) {
  int rc = check_call(st, tenant, coll, err);
  if (!rc && (!results || (n && !docs)))
    rc = store_fail(err, STORE_EINVAL, "store_insert_many: NULL argument");
  if (!rc && n > STORE_BATCH_MAX)
    rc =
        store_fail(err, STORE_EINVAL, "store_insert_many: more than %d documents", STORE_BATCH_MAX);
  if (rc) {
    for (size_t i = 0; results && i < n; i++)
      results[i] = rc;
    return rc;
  }
  if (n == 0) return STORE_OK;
  json_t **ids = calloc(n, sizeof *ids);
  if (!ids) return store_fail(err, STORE_EINTERNAL, "out of memory");
  /* A document the store cannot take fails alone (or, atomic, the batch). */
  size_t bad = 0;
  for (size_t i = 0; i < n; i++) {
    store_err item;
    results[i] = check_doc(docs[i], &ids[i], &item);
    bad += results[i] != STORE_OK;
  }
  if (bad && atomic) {
    for (size_t i = 0; i < n; i++)
      if (!results[i]) results[i] = STORE_EABORTED;
    free(ids);
    return STORE_OK;
  }
  /* The engine sees only the documents it may write. */
  json_t **ok_docs = bad ? calloc(n, sizeof *ok_docs) : (json_t **)docs;
  json_t **ok_ids = bad ? calloc(n, sizeof *ok_ids) : ids;
  int *ok_results = bad ? calloc(n, sizeof *ok_results) : results;
  size_t m = 0;
  if (!ok_docs || !ok_ids || !ok_results) {
    rc = store_fail(err, STORE_EINTERNAL, "out of memory");
    goto cleanup_lists;
  }
  for (size_t i = 0; i < n; i++) {
    if (results[i]) continue;
    ok_docs[m] = docs[i];
    ok_ids[m] = ids[i];
    ok_results[m++] = STORE_OK;
  }
  /* Any written document wakes the change feed (a refused one is harmless). */
  rc = m ? wrote(st, tenant,
                 engine_done(st, ENGINE(st, insert_many)(st, tenant, coll, ok_ids, ok_docs, m,
                                                         atomic, ok_results, err)))
         : STORE_OK;
  for (size_t i = 0, j = 0; bad && i < n; i++)
    if (!results[i]) results[i] = ok_results[j++];
cleanup_lists:
  if (rc)
    for (size_t i = 0; i < n; i++)
      results[i] = rc;
  if (bad) {
    free(ok_docs);
    free(ok_ids);
    free(ok_results);
  }
  free(ids);
  return rc;
}

int store_get(store *st, const char *tenant, const char *coll, json_t *id, json_t **out,
              store_err *err) {
  if (out) *out = NULL;
  int rc = check_call(st, tenant, coll, err);
  if (!rc && !out) rc = store_fail(err, STORE_EINVAL, "store_get: out is NULL");
  if (!rc) rc = check_id(id, err);
  return rc ? rc : engine_done(st, ENGINE(st, get)(st, tenant, coll, id, out, err));
}

int store_replace(store *st, const char *tenant, const char *coll, json_t *doc, store_err *err) {
  json_t *id;
  int rc = check_call(st, tenant, coll, err);
  if (!rc) rc = check_doc(doc, &id, err);
  return rc ? rc
            : wrote(st, tenant,
                    engine_done(st, ENGINE(st, replace)(st, tenant, coll, id, doc, err)));
}

int store_patch(store *st, const char *tenant, const char *coll, json_t *id, json_t *set,
                json_t **out, store_err *err) {
  if (out) *out = NULL;
  int rc = check_call(st, tenant, coll, err);
  if (!rc) rc = check_id(id, err);
  if (!rc) rc = check_patch(set, err);
  if (rc) return rc;
  if (json_object_size(set) == 0) {
    /* Nothing to change, but "not found" must still be reported. */
    json_t *doc = NULL;
    rc = engine_done(st, ENGINE(st, get)(st, tenant, coll, id, &doc, err));
    if (rc == STORE_OK && out)
      *out = doc;
    else
      json_decref(doc);
    return rc;
  }
  return wrote(st, tenant, engine_done(st, ENGINE(st, patch)(st, tenant, coll, id, set, out, err)));
}

int store_delete(store *st, const char *tenant, const char *coll, json_t *id, store_err *err) {
  int rc = check_call(st, tenant, coll, err);
  if (!rc) rc = check_id(id, err);
  return rc ? rc : wrote(st, tenant, engine_done(st, ENGINE(st, del)(st, tenant, coll, id, err)));
}

/* ---- queries --------------------------------------------------------------- */

int store_count(store *st, const char *tenant, const char *coll, const store_cond *conds,
                size_t n_conds, long long *out, store_err *err) {
  store_cond *c = NULL;
  int rc = check_call(st, tenant, coll, err);
  if (!rc && !out) rc = store_fail(err, STORE_EINVAL, "store_count: out is NULL");
  if (!rc) rc = check_conds(conds, n_conds, &c, err);
  if (!rc) rc = engine_done(st, SCAN(st, count)(st, tenant, coll, c, n_conds, NULL, out, err));
  free(c);
  return rc;
}

int store_delete_where(store *st, const char *tenant, const char *coll, const store_cond *conds,
                       size_t n_conds, long long *deleted, store_err *err) {
  store_cond *c = NULL;
  long long n = 0;
  int rc = check_call(st, tenant, coll, err);
  if (!rc) rc = check_conds(conds, n_conds, &c, err);
  if (!rc) rc = engine_done(st, SCAN(st, delete_where)(st, tenant, coll, c, n_conds, &n, err));
  free(c);
  if (deleted) *deleted = rc ? 0 : n;
  return n ? wrote(st, tenant, rc) : rc;
}

/* ---- change log ------------------------------------------------------------ */

long long store_now_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

#define CHANGES_MAX_PAGE 10000

int store_changes(store *st, const char *tenant, long long after, size_t limit,
                  store_changes_page *out, store_err *err) {
  err_clear(err);
  if (!st || !out) return store_fail(err, STORE_EINVAL, "store_changes: NULL argument");
  memset(out, 0, sizeof *out);
  int rc = check_tenant(tenant, err);
  if (rc) return rc;
  if (after < 0) return store_fail(err, STORE_EINVAL, "change position is negative");
  if (limit == 0 || limit > CHANGES_MAX_PAGE) limit = CHANGES_MAX_PAGE;
  if (!(out->changes = json_array())) return store_fail(err, STORE_EINTERNAL, "out of memory");
  out->scanned = after;
  rc = engine_done(st, SCAN(st, changes)(st, tenant, after, limit, out, err));
  if (rc) store_changes_clear(out);
  return rc;
}

void store_changes_clear(store_changes_page *page) {
  if (!page) return;
  json_decref(page->changes);
  memset(page, 0, sizeof *page);
}

int store_changes_prune(store *st, long long before_us, long long *removed, store_err *err) {
  long long n = 0;
  err_clear(err);
  if (!st) return store_fail(err, STORE_EINVAL, "store is NULL");
  int rc = engine_done(st, SCAN(st, changes_prune)(st, before_us, &n, err));
  if (removed) *removed = rc ? 0 : n;
  return rc;
}

void store_set_write_hook(store *st, void (*fn)(void *arg, const char *tenant), void *arg) {
  st->write_hook = fn;
  st->write_hook_arg = arg;
}

void store_page_clear(store_page *page) {
  if (!page) return;
  json_decref(page->docs);
  free(page->next);
  free(page->prev);
  memset(page, 0, sizeof *page);
}

/* The query's keys with "id" appended, and their spec as cursors record it. */
static int order_keys(const store_query *q, store_order *keys, size_t *n, json_t **spec,
                      store_err *err) {
  int has_id = 0;
  if (q->n_order && !q->order) return store_fail(err, STORE_EINVAL, "order is NULL");
  if (q->n_order + 1 > STORE_MAX_ORDER)
    return store_fail(err, STORE_EINVAL, "at most %d order keys", STORE_MAX_ORDER - 1);
  *n = 0;
  for (size_t i = 0; i < q->n_order; i++) {
    if (!q->order[i].field || !field_ok(q->order[i].field))
      return store_fail(err, STORE_EINVAL, "order key %zu: bad field", i);
    keys[(*n)++] = q->order[i];
    if (!strcmp(q->order[i].field, "id")) {
      has_id = 1;
      break; /* keys after the unique one can never decide anything */
    }
  }
  if (!has_id) keys[(*n)++] = (store_order){"id", 0};

  *spec = json_array();
  if (!*spec) return store_fail(err, STORE_EINTERNAL, "out of memory");
  for (size_t i = 0; i < *n; i++) {
    char name[260];
    snprintf(name, sizeof name, "%s%s", keys[i].desc ? "-" : "", keys[i].field);
    if (json_array_append_new(*spec, json_string(name))) {
      json_decref(*spec);
      *spec = NULL;
      return store_fail(err, STORE_EINTERNAL, "out of memory");
    }
  }
  return STORE_OK;
}

static json_t *reversed(json_t *docs) {
  json_t *r = json_array();
  for (size_t i = json_array_size(docs); r && i-- > 0;)
    if (json_array_append(r, json_array_get(docs, i))) {
      json_decref(r);
      r = NULL;
    }
  return r;
}

/* Fills next/prev. Forward pages have a previous page when they did not start
 * at the beginning; backward (`before`) pages always have a next one. */
static int page_cursors(const char *coll, json_t *spec, const store_order *keys, size_t n,
                        const store_query *q, int more, store_page *out, store_err *err) {
  size_t count = json_array_size(out->docs);
  int backward = q->before != NULL;
  if (count == 0) return STORE_OK;
  json_t *first = json_array_get(out->docs, 0), *last = json_array_get(out->docs, count - 1);
  int want_next = backward ? 1 : more;
  int want_prev = backward ? more : (q->after != NULL || q->offset > 0);
  if (want_next && !(out->next = cursor_make(coll, spec, keys, n, last)))
    return store_fail(err, STORE_EINTERNAL, "cursor: out of memory");
  if (want_prev && !(out->prev = cursor_make(coll, spec, keys, n, first)))
    return store_fail(err, STORE_EINTERNAL, "cursor: out of memory");
  return STORE_OK;
}

int store_find(store *st, const char *tenant, const char *coll, const store_query *q,
               store_page *out, store_err *err) {
  store_order keys[STORE_MAX_ORDER], scan[STORE_MAX_ORDER];
  size_t n_keys = 0;
  json_t *spec = NULL, *seek = NULL;
  store_cond *conds = NULL;
  if (out) memset(out, 0, sizeof *out);
  int rc = check_call(st, tenant, coll, err);
  if (rc) return rc;
  if (!q || !out) return store_fail(err, STORE_EINVAL, "store_find: NULL argument");
  if (q->after && q->before) return store_fail(err, STORE_EINVAL, "both after and before given");
  if (q->offset && (q->after || q->before))
    return store_fail(err, STORE_EINVAL, "offset cannot be combined with a cursor");
  if (q->offset > (size_t)INT64_MAX) return store_fail(err, STORE_EINVAL, "offset too large");

  if (q->where && (rc = check_expr(q->where, 0, err))) return rc;
  rc = check_conds(q->conds, q->n_conds, &conds, err);
  if (rc) return rc;
  rc = order_keys(q, keys, &n_keys, &spec, err);
  if (rc) goto cleanup_conds;
  const char *token = q->after ? q->after : q->before;
  if (token && (rc = cursor_read(token, coll, spec, &seek, err))) goto cleanup_spec;

  int backward = q->before != NULL;
  for (size_t i = 0; i < n_keys; i++) {
    scan[i] = keys[i];
    scan[i].desc = backward ? !keys[i].desc : keys[i].desc;
  }
  size_t limit = q->limit;
  if (limit > (size_t)INT64_MAX - 1) limit = (size_t)INT64_MAX - 1;
  store_plan plan = {conds,    q->n_conds, q->where, scan, n_keys, seek, limit ? limit + 1 : 0,
                     q->offset};

  json_t *docs = json_array();
  if (!docs) {
    rc = store_fail(err, STORE_EINTERNAL, "out of memory");
    goto cleanup_seek;
  }
  rc = engine_done(st, SCAN(st, find)(st, tenant, coll, &plan, docs, err));
  if (rc) {
    json_decref(docs);
    goto cleanup_seek;
  }
  /* One row beyond the limit was asked for only to learn whether more exist. */
  int more = limit && json_array_size(docs) > limit;
  if (more) json_array_remove(docs, limit);
  if (backward) {
    json_t *r = reversed(docs);
    json_decref(docs);
    if (!(docs = r)) {
      rc = store_fail(err, STORE_EINTERNAL, "out of memory");
      goto cleanup_seek;
    }
  }
  out->docs = docs;
  rc = page_cursors(coll, spec, keys, n_keys, q, more, out, err);
  if (!rc && q->count)
    rc = engine_done(
        st, SCAN(st, count)(st, tenant, coll, conds, q->n_conds, q->where, &out->total, err));
  if (rc) store_page_clear(out);

cleanup_seek:
  json_decref(seek);
cleanup_spec:
  json_decref(spec);
cleanup_conds:
  free(conds);
  return rc;
}

void store_get_stats(const store *st, store_stats *out) {
  memset(out, 0, sizeof *out);
  if (!st) return;
  out->in_flight = __atomic_load_n(&st->stats.in_flight, __ATOMIC_RELAXED);
  out->calls = __atomic_load_n(&st->stats.calls, __ATOMIC_RELAXED);
  out->unavailable = __atomic_load_n(&st->stats.unavailable, __ATOMIC_RELAXED);
  out->internal = __atomic_load_n(&st->stats.internal, __ATOMIC_RELAXED);
}
