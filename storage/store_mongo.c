/* store_mongo.c - the MongoDB engine (mongo-c-driver client pool). One
 * collection per schema collection holding {tenant, id, ...fields}, with a
 * unique {tenant, id} index and the schema's indexes, each led by tenant so
 * every query is an index prefix. jansson values are converted to BSON here:
 * integers as int64, reals as double, so the two engines compare alike. */
#include <math.h>
#include <mongoc/mongoc.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include "store_int.h"

/* Applied when the URI sets none: an outage should fail a call in seconds,
 * not hang it for the driver's 30 s default. */
#define MG_SERVER_SELECTION_MS 3000
#define MG_CONNECT_MS 2000
#define MG_SOCKET_MS 10000
#define MG_MAX_DEPTH 100 /* MongoDB's own nesting limit */
/* The member of a document naming the change log position of its last
 * write (see "change log" below); never shown to callers. */
#define MG_CHG "_chg"
/* The change log's marks and per-tenant tops (see "change log" below). */
#define MG_MARKS STORE_CHANGES "_marks"
#define MG_TOPS STORE_CHANGES "_top"

/* In-process stripes, keyed by (tenant, collection, id): an optimisation
 * only. Calls of one process on one key queue here instead of racing each
 * other on the server; correctness across processes (replicas) never rests
 * on them. FerretDB v1 runs findAndModify and updates as a read followed by
 * a write by _id, so no update, however filtered, is a compare-and-swap
 * there: only an insert refused by a unique index, and a delete (which
 * counts the rows it removed), are atomic on every MongoDB-wire server. The
 * sequence is built on the first (see mg_next_id). */
#define MG_STRIPES 64

/* Concurrent inserts go to the server together: the caller at the head of the
 * insert queue sends the queued documents of its collection (up to
 * MG_BULK_MAX) as one unordered insert, in which each document still succeeds
 * or fails alone. Up to MG_BULK_LEADERS such inserts are in flight at once, so
 * the next batch gathers while one is on the wire and an outage costs a
 * queued call at most the wait of the batches before its own. */
#define MG_BULK_MAX 64
#define MG_BULK_LEADERS 2

/* Logged create groups in flight at once (see mg_create). One: FerretDB
 * (SQLite) runs one write at a time, so a second group in flight mostly
 * waits for the first on the server, and splits the same creates into
 * smaller groups. CreateEvent at c=16 (8 workers) on FerretDB: 1 group, 0.64
 * insert commands per create; 2, 1.08; 3, 1.46, each slower than the last. */
#define MG_CREATE_LEADERS 1

/* How long the marker gathers marks (see mg_marker). */
#define MG_MARK_WAIT_MS 20

/* rc of a claim of a group not yet made (store codes are 0 or negative). */
#define MG_CLAIM_PENDING 1

/* One insert call in the queue. It lives on its caller's stack; the caller
 * blocks until `done`, so the leader of its batch may use its document. */
typedef struct mg_ins {
  const char *coll;
  const bson_t *doc;
  int rc;
  store_err *err;    /* the caller's, may be NULL */
  int done;          /* guarded by q_mu */
  pthread_cond_t cv; /* signalled when done, or when it may lead */
  struct mg_ins *next;
} mg_ins;

typedef struct mg_store {
  store base;
  mongoc_uri_t *uri;
  mongoc_client_pool_t *pool;
  char *db;
  pthread_mutex_t stripes[MG_STRIPES];
  int n_stripes; /* initialised so far */
  /* The last number this process claimed per sequence, one slot per stripe
   * (guarded by it): the next claim tries last + 1 before asking the server. */
  struct mg_seq {
    char *key; /* tenant "\x1f" sequence */
    long long last;
  } seqs[MG_STRIPES];
  /* createIndexes commands, built at open and run before the first call that
   * finds them not yet run: a server that is down at start-up only delays
   * them, like any other outage. */
  bson_t *index_cmds;
  size_t n_index_cmds, n_indexed;
  pthread_mutex_t index_mu;
  int indexed;             /* all ran; read without index_mu via __atomic */
  unsigned index_attempts; /* failed attempts so far */
  int index_rc;            /* and how the last one failed */
  char index_msg[sizeof(((store_err *)0)->msg)];
  /* Change log claims of this process, one group at a time; the last
   * position claimed per tenant (hashed slots) is tried first. */
  pthread_mutex_t chg_mu;
  struct mg_chg_slot {
    char *key; /* tenant */
    long long last;
    long long last_us; /* when last was claimed */
    long long top;     /* what the tenant's top (MG_TOPS) is known to hold; 0: unknown */
  } chg_last[MG_STRIPES];
  /* The retention the last prune of this process asked for (atomic; 0:
   * none yet): bounds how long a cached position is trusted (mg_chg_fresh_us). */
  long long prune_age_us;
  /* Claims waiting for the next group (see mg_chg_claim). */
  pthread_mutex_t cq_mu;
  struct mg_claim *cq_head, *cq_tail;
  int cq_leading;
  /* Per tenant (hashed slots, guarded by head_mu): a position up to which
   * every entry was seen settled; readers look for the head past it. Saved
   * in the tenant's top document (see mg_chg_head_save). */
  pthread_mutex_t head_mu;
  struct mg_head {
    char *key; /* tenant */
    long long last;
    long long saved; /* what the saved head is known to hold */
  } chg_head[MG_STRIPES];
  pthread_mutex_t q_mu; /* guards the insert queue, q_leaders and every mg_ins's done */
  mg_ins *q_head, *q_tail;
  int q_leaders; /* batches in flight */
  /* Logged creates waiting for their group (see mg_create). */
  pthread_mutex_t cr_mu; /* guards the create queue, cr_leaders and every mg_create's done */
  struct mg_create *cr_head, *cr_tail;
  int cr_leaders; /* groups in flight */
  /* Marks of logged creates, written by the marker thread (see
   * mg_create_write), which starts with the first. */
  pthread_mutex_t mk_mu;
  pthread_cond_t mk_work, mk_idle; /* marks queued; marks written */
  struct mg_mark *mk_q;
  size_t mk_n, mk_cap;
  unsigned long long mk_queued, mk_written; /* ever; written counts given up ones */
  int mk_started, mk_stop;
  int mk_waiters; /* readers waiting for the queued marks */
  pthread_t mk_thread;
} mg_store;

#define MG(st) ((mg_store *)(st))

static size_t mg_stripe_index(const char *tenant, const char *coll, json_t *id) {
  uint64_t h = 1469598103934665603ULL;
  char num[32];
  const char *parts[3] = {tenant, coll, num};
  if (json_is_string(id))
    parts[2] = json_string_value(id);
  else
    snprintf(num, sizeof num, "%lld", (long long)json_integer_value(id));
  for (int i = 0; i < 3; i++)
    for (const char *p = parts[i];; p++) {
      h = (h ^ (unsigned char)*p) * 1099511628211ULL; /* the NUL separates parts */
      if (!*p) break;
    }
  return (size_t)(h % MG_STRIPES);
}

static pthread_mutex_t *mg_stripe(mg_store *s, const char *tenant, const char *coll, json_t *id) {
  return &s->stripes[mg_stripe_index(tenant, coll, id)];
}

/* ---- errors ---------------------------------------------------------------- */

static int mg_code(const bson_error_t *e) {
  if (e->domain == MONGOC_ERROR_SERVER_SELECTION || e->domain == MONGOC_ERROR_STREAM ||
      e->domain == MONGOC_ERROR_PROTOCOL)
    return STORE_EUNAVAILABLE;
  if (e->domain != MONGOC_ERROR_SERVER && e->domain != MONGOC_ERROR_WRITE_CONCERN &&
      e->domain != MONGOC_ERROR_COLLECTION)
    return STORE_EINTERNAL;
  switch (e->code) {
  case 11000: /* DuplicateKey, and its legacy forms */
  case 11001:
  case 12582:
    return STORE_EDUPLICATE;
  case 50:  /* MaxTimeMSExpired: slow, not gone */
  case 262: /* ExceededTimeLimit */
    return STORE_EBUSY;
  case 6:     /* HostUnreachable */
  case 7:     /* HostNotFound */
  case 64:    /* WriteConcernFailed (wtimeout) */
  case 89:    /* NetworkTimeout */
  case 91:    /* ShutdownInProgress */
  case 189:   /* PrimarySteppedDown */
  case 9001:  /* SocketException */
  case 10107: /* NotWritablePrimary */
  case 11600: /* InterruptedAtShutdown */
  case 11602: /* InterruptedDueToReplStateChange */
  case 13435: /* NotPrimaryNoSecondaryOk */
  case 13436: /* NotPrimaryOrSecondary */
    return STORE_EUNAVAILABLE;
  case 2:     /* BadValue */
  case 9:     /* FailedToParse */
  case 14:    /* TypeMismatch */
  case 28:    /* PathNotViable: patch through a non-object */
  case 40:    /* ConflictingUpdateOperators */
  case 52:    /* DollarPrefixedFieldName */
  case 56:    /* EmptyFieldName */
  case 57:    /* DottedFieldName */
  case 10334: /* BSONObjectTooLarge */
  case 17419:
  case 17420:
    return STORE_EINVAL;
  default:
    /* FerretDB reports a unique index refusing an update as an internal
     * error carrying SQLite's message. */
    if (strstr(e->message, "UNIQUE constraint failed") || strstr(e->message, "E11000"))
      return STORE_EDUPLICATE;
    return STORE_EINTERNAL;
  }
}

static int mg_fail(store_err *err, const char *what, const bson_error_t *e) {
  return store_fail(err, mg_code(e), "mongodb %s: %s", what, e->message);
}

static int mg_unencodable(store_err *err) {
  return store_fail(err, STORE_EINVAL, "mongodb: document cannot be encoded as BSON");
}

/* ---- jansson <-> BSON ------------------------------------------------------ */

/* Member names that MongoDB-wire servers refuse or misread (empty, with a
 * '.', with a '$'; FerretDB refuses any '$') are stored escaped: '%', '.' and
 * '$' become %25, %2E and %24, and the empty name "%". Names fields are
 * queried by ([A-Za-z0-9_-]) never change. Free-form JSON (payloads) thus
 * round-trips on MongoDB as it does on SQLite. */
#define MG_NESTED_ARRAY "%A" /* no escaped name looks like this */

static char *mg_key_escape(const char *k) {
  size_t n = 0;
  for (const char *p = k; *p; p++)
    n += (*p == '%' || *p == '.' || *p == '$') ? 3 : 1;
  char *out = malloc(n + 2), *o = out;
  if (!out) return NULL;
  if (!*k) *o++ = '%';
  for (const char *p = k; *p; p++) {
    if (*p == '%' || *p == '.' || *p == '$') {
      snprintf(o, 4, "%%%02X", (unsigned char)*p);
      o += 3;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

static int mg_hex(char c) {
  return c >= '0' && c <= '9' ? c - '0' : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

static char *mg_key_unescape(const char *k) {
  char *out = malloc(strlen(k) + 1), *o = out;
  if (!out || !strcmp(k, "%")) {
    if (out) *out = '\0';
    return out;
  }
  for (const char *p = k; *p; p++) {
    if (*p == '%' && mg_hex(p[1]) >= 0 && mg_hex(p[2]) >= 0) {
      *o++ = (char)(mg_hex(p[1]) * 16 + mg_hex(p[2]));
      p += 2;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

static bool mg_append(bson_t *b, const char *key, json_t *v, int depth);

static bool mg_append_members(bson_t *b, json_t *obj, const char *skip, int depth) {
  const char *k;
  json_t *x;
  json_object_foreach(obj, k, x) {
    if (skip && !strcmp(k, skip)) continue;
    if (!*k || strpbrk(k, "%.$")) {
      char *esc = mg_key_escape(k);
      bool ok = esc && mg_append(b, esc, x, depth);
      free(esc);
      if (!ok) return false;
    } else if (!mg_append(b, k, x, depth)) {
      return false;
    }
  }
  return true;
}

/* FerretDB v1 refuses arrays directly inside arrays: such an element is
 * stored as {"%A": [...]} and unwrapped when read. */
static bool mg_append_elements(bson_t *arr, json_t *v, int depth) {
  size_t i;
  json_t *x;
  json_array_foreach(v, i, x) {
    char buf[16];
    const char *k;
    bson_t wrap;
    bson_uint32_to_string((uint32_t)i, &k, buf, sizeof buf);
    if (!json_is_array(x)) {
      if (!mg_append(arr, k, x, depth)) return false;
      continue;
    }
    if (depth >= MG_MAX_DEPTH || !bson_append_document_begin(arr, k, -1, &wrap)) return false;
    bool ok = mg_append(&wrap, MG_NESTED_ARRAY, x, depth + 1);
    if (!bson_append_document_end(arr, &wrap) || !ok) return false;
  }
  return true;
}

/* Appends v under key as given (an operator or a path in filters and
 * updates); member names inside v are escaped. */
static bool mg_append(bson_t *b, const char *key, json_t *v, int depth) {
  bson_t child;
  bool ok;
  switch (json_typeof(v)) {
  case JSON_OBJECT:
    if (depth >= MG_MAX_DEPTH || !bson_append_document_begin(b, key, -1, &child)) return false;
    ok = mg_append_members(&child, v, NULL, depth + 1);
    return bson_append_document_end(b, &child) && ok;
  case JSON_ARRAY:
    if (depth >= MG_MAX_DEPTH || !bson_append_array_begin(b, key, -1, &child)) return false;
    ok = mg_append_elements(&child, v, depth + 1);
    return bson_append_array_end(b, &child) && ok;
  case JSON_STRING:
    return bson_append_utf8(b, key, -1, json_string_value(v), (int)json_string_length(v));
  case JSON_INTEGER:
    return bson_append_int64(b, key, -1, json_integer_value(v));
  case JSON_REAL:
    return bson_append_double(b, key, -1, json_real_value(v));
  case JSON_TRUE:
  case JSON_FALSE:
    return bson_append_bool(b, key, -1, json_is_true(v));
  default:
    return bson_append_null(b, key, -1);
  }
}

static json_t *mg_object(bson_iter_t *it, int top);
static json_t *mg_array(bson_iter_t *it);

static json_t *mg_value(bson_iter_t *it) {
  bson_iter_t child;
  switch (bson_iter_type(it)) {
  case BSON_TYPE_DOUBLE: {
    double d = bson_iter_double(it);
    return isfinite(d) ? json_real(d) : json_null(); /* JSON has no NaN */
  }
  case BSON_TYPE_UTF8: {
    uint32_t n;
    const char *s = bson_iter_utf8(it, &n);
    return json_stringn(s, n);
  }
  case BSON_TYPE_DOCUMENT: {
    bson_iter_t probe;
    if (!bson_iter_recurse(it, &child)) return NULL;
    probe = child;
    if (bson_iter_next(&probe) && !strcmp(bson_iter_key(&probe), MG_NESTED_ARRAY) &&
        BSON_ITER_HOLDS_ARRAY(&probe)) {
      bson_iter_t elems, after = probe;
      if (!bson_iter_next(&after) && bson_iter_recurse(&probe, &elems)) return mg_array(&elems);
    }
    return mg_object(&child, 0);
  }
  case BSON_TYPE_ARRAY:
    return bson_iter_recurse(it, &child) ? mg_array(&child) : NULL;
  case BSON_TYPE_BOOL:
    return json_boolean(bson_iter_bool(it));
  case BSON_TYPE_INT32:
    return json_integer(bson_iter_int32(it));
  case BSON_TYPE_INT64:
    return json_integer(bson_iter_int64(it));
  case BSON_TYPE_DATE_TIME:
    return json_integer(bson_iter_date_time(it));
  case BSON_TYPE_OID: {
    char hex[25];
    bson_oid_to_string(bson_iter_oid(it), hex);
    return json_string(hex);
  }
  case BSON_TYPE_DECIMAL128: {
    bson_decimal128_t d;
    char text[BSON_DECIMAL128_STRING];
    bson_iter_decimal128(it, &d);
    bson_decimal128_to_string(&d, text);
    return json_string(text);
  }
  default: /* types this service never writes */
    return json_null();
  }
}

/* At the top level the engine's own members (_id, tenant) are left out. */
static json_t *mg_object(bson_iter_t *it, int top) {
  json_t *obj = json_object();
  while (obj && bson_iter_next(it)) {
    const char *k = bson_iter_key(it);
    if (top && (!strcmp(k, "_id") || !strcmp(k, "tenant") || !strcmp(k, MG_CHG))) continue;
    char *plain = NULL;
    json_t *v = mg_value(it);
    if (v && strchr(k, '%') && !(plain = mg_key_unescape(k))) {
      json_decref(v);
      v = NULL;
    }
    if (!v || json_object_set_new(obj, plain ? plain : k, v)) { /* set_new always takes v */
      json_decref(obj);
      obj = NULL;
    }
    free(plain);
  }
  return obj;
}

static json_t *mg_array(bson_iter_t *it) {
  json_t *arr = json_array();
  while (arr && bson_iter_next(it)) {
    json_t *v = mg_value(it);
    if (!v || json_array_append_new(arr, v)) {
      json_decref(arr);
      arr = NULL;
    }
  }
  return arr;
}

static int mg_to_json(const bson_t *doc, json_t **out, store_err *err) {
  bson_iter_t it;
  *out = bson_iter_init(&it, doc) ? mg_object(&it, 1) : NULL;
  return *out ? STORE_OK : store_fail(err, STORE_EINTERNAL, "mongodb: unreadable document");
}

/* ---- filters --------------------------------------------------------------- */

/* {field: {op: value}} */
static bool mg_term(bson_t *item, const char *field, const char *op, json_t *v) {
  bson_t sub;
  if (!bson_append_document_begin(item, field, -1, &sub)) return false;
  bool ok = mg_append(&sub, op, v, 1);
  return bson_append_document_end(item, &sub) && ok;
}

/* A regular expression matching s literally, ignoring the case of A-Z only:
 * each ASCII letter becomes a class of its two cases and no "i" option is
 * set, because the "i" option folds every Unicode letter on MongoDB and
 * FerretDB, and SQLite's lower() folds A-Z only (STORE_CONTAINS). */
static char *mg_literal_regex(const char *s) {
  size_t n = strlen(s);
  char *r = malloc(4 * n + 1), *o = r;
  for (; r && *s; s++) {
    char lo = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    if (lo >= 'a' && lo <= 'z') {
      *o++ = '[';
      *o++ = lo;
      *o++ = (char)(lo - 32);
      *o++ = ']';
      continue;
    }
    if (strchr("\\^$.|?*+()[]{}", *s)) *o++ = '\\';
    *o++ = *s;
  }
  if (r) *o = '\0';
  return r;
}

static bool mg_cond(bson_t *item, const store_cond *c) {
  static const char *ops[] = {
      [STORE_EQ] = "$eq", [STORE_IN] = "$in",   [STORE_GT] = "$gt",  [STORE_GTE] = "$gte",
      [STORE_LT] = "$lt", [STORE_LTE] = "$lte", [STORE_HAS] = "$eq", [STORE_HAS_ANY] = "$in"};
  switch (c->op) {
  case STORE_EXISTS:
    return mg_term(item, c->field, "$ne", json_null());
  case STORE_MISSING: /* {$eq: null} matches absent and null alike */
    return mg_term(item, c->field, "$eq", json_null());
  case STORE_NONEMPTY: { /* present, and neither null nor [] */
    bson_t terms, t;
    json_t *empty = json_array();
    static const char *const ks[] = {"0", "1", "2"};
    bool ok = empty && bson_append_array_begin(item, "$and", -1, &terms);
    for (int k = 0; ok && k < 3; k++) {
      ok = bson_append_document_begin(&terms, ks[k], -1, &t);
      if (k == 0) {
        bson_t ex;
        ok = ok && bson_append_document_begin(&t, c->field, -1, &ex) &&
             BSON_APPEND_BOOL(&ex, "$exists", true) && bson_append_document_end(&t, &ex);
      } else {
        ok = ok && mg_term(&t, c->field, "$ne", k == 1 ? json_null() : empty);
      }
      ok = bson_append_document_end(&terms, &t) && ok;
    }
    json_decref(empty);
    return ok && bson_append_array_end(item, &terms);
  }
  case STORE_CONTAINS: {
    char *re = mg_literal_regex(json_string_value(c->value));
    bson_t sub;
    bool ok = re && bson_append_document_begin(item, c->field, -1, &sub) &&
              BSON_APPEND_UTF8(&sub, "$regex", re) && bson_append_document_end(item, &sub);
    free(re);
    return ok;
  }
  default: /* on an array, $eq and $in match its members */
    return mg_term(item, c->field, ops[c->op], c->value);
  }
}

/* {$and: [...]}, {$or: [...]} or {$nor: [x]} (NOT x): the operators' own
 * two-valued logic, as on SQLite. */
static bool mg_expr(bson_t *item, const store_expr *e) {
  if (e->kind == STORE_X_COND) return mg_cond(item, &e->cond);
  const char *op = e->kind == STORE_X_AND ? "$and" : e->kind == STORE_X_OR ? "$or" : "$nor";
  bson_t arr, sub;
  bool ok = bson_append_array_begin(item, op, -1, &arr);
  for (size_t i = 0; ok && i < e->n_operands; i++) {
    char buf[16];
    const char *key;
    bson_uint32_to_string((uint32_t)i, &key, buf, sizeof buf);
    ok = bson_append_document_begin(&arr, key, -1, &sub) && mg_expr(&sub, &e->operands[i]);
    ok = bson_append_document_end(&arr, &sub) && ok;
  }
  return bson_append_array_end(item, &arr) && ok;
}

/* Strictly after the seek position: (k1 > v1) OR (k1 = v1 AND k2 > v2) ...,
 * with > read as < for descending keys. Nulls sort first, as on SQLite. */
static bool mg_seek(bson_t *item, const store_plan *p) {
  bson_t ors, branch, ands, term;
  bool ok = bson_append_array_begin(item, "$or", -1, &ors);
  json_t *none = json_array();
  for (size_t i = 0; ok && i < p->n_order; i++) {
    char b1[16], b2[16];
    const char *k1, *k2;
    bson_uint32_to_string((uint32_t)i, &k1, b1, sizeof b1);
    ok = bson_append_document_begin(&ors, k1, -1, &branch) &&
         bson_append_array_begin(&branch, "$and", -1, &ands);
    for (size_t j = 0; ok && j <= i; j++) {
      const char *f = p->order[j].field;
      json_t *v = json_array_get(p->seek, j);
      bson_uint32_to_string((uint32_t)j, &k2, b2, sizeof b2);
      ok = bson_append_document_begin(&ands, k2, -1, &term);
      if (j < i)
        ok = ok && mg_term(&term, f, "$eq", v);
      else if (json_is_null(v) && p->order[j].desc)
        ok = ok && mg_term(&term, f, "$in", none);
      else if (json_is_null(v))
        ok = ok && mg_term(&term, f, "$ne", v);
      else
        ok = ok && mg_term(&term, f, p->order[j].desc ? "$lt" : "$gt", v);
      ok = bson_append_document_end(&ands, &term) && ok;
    }
    ok = ok && bson_append_array_end(&branch, &ands) && bson_append_document_end(&ors, &branch);
  }
  json_decref(none);
  return ok && bson_append_array_end(item, &ors);
}

static bool mg_filter(bson_t *f, const char *tenant, const store_cond *conds, size_t n,
                      const store_expr *where, const store_plan *p) {
  bson_t all, item;
  bool ok = BSON_APPEND_UTF8(f, "tenant", tenant);
  if (!ok || (n == 0 && !where && !(p && p->seek))) return ok;
  ok = bson_append_array_begin(f, "$and", -1, &all);
  uint32_t idx = 0;
  for (size_t i = 0; ok && i <= n; i++) {
    char buf[16];
    const char *key;
    if (i == n && !(p && p->seek)) break;
    bson_uint32_to_string(idx++, &key, buf, sizeof buf);
    ok = bson_append_document_begin(&all, key, -1, &item);
    ok = ok && (i < n ? mg_cond(&item, &conds[i]) : mg_seek(&item, p));
    ok = bson_append_document_end(&all, &item) && ok;
  }
  json_t *v0 = p && p->seek ? json_array_get(p->seek, 0) : NULL;
  if (ok && v0 && !json_is_null(v0)) {
    /* Implied by the $or, but a plain bound on the leading key is what lets
     * the planner start the index scan at the seek position. */
    char buf[16];
    const char *key;
    bson_uint32_to_string(idx++, &key, buf, sizeof buf);
    ok = bson_append_document_begin(&all, key, -1, &item) &&
         mg_term(&item, p->order[0].field, p->order[0].desc ? "$lte" : "$gte", v0);
    ok = bson_append_document_end(&all, &item) && ok;
  }
  if (ok && where) {
    char buf[16];
    const char *key;
    bson_uint32_to_string(idx++, &key, buf, sizeof buf);
    ok = bson_append_document_begin(&all, key, -1, &item) && mg_expr(&item, where);
    ok = bson_append_document_end(&all, &item) && ok;
  }
  return bson_append_array_end(f, &all) && ok;
}

static bool mg_key(bson_t *f, const char *tenant, json_t *id) {
  return BSON_APPEND_UTF8(f, "tenant", tenant) && mg_append(f, "id", id, 0);
}

/* {tenant, id, ...fields}: tenant and id lead so documents read naturally. */
static bool mg_doc(bson_t *b, const char *tenant, json_t *id, json_t *doc) {
  return mg_key(b, tenant, id) && mg_append_members(b, doc, "id", 1);
}

/* ---- client handling ------------------------------------------------------- */

static int mg_ensure_indexes(mg_store *s, mongoc_client_t *client, store_err *err) {
  if (__atomic_load_n(&s->indexed, __ATOMIC_ACQUIRE)) return STORE_OK;
  unsigned seen = __atomic_load_n(&s->index_attempts, __ATOMIC_ACQUIRE);
  int rc = STORE_OK;
  pthread_mutex_lock(&s->index_mu);
  if (!s->indexed && s->index_attempts != seen) {
    /* Someone tried while we queued and failed: don't make every queued
     * caller wait out its own server selection timeout in turn. */
    rc = store_fail(err, s->index_rc, "%s", s->index_msg);
    goto cleanup_lock;
  }
  mongoc_database_t *db = mongoc_client_get_database(client, s->db);
  while (!rc && s->n_indexed < s->n_index_cmds) {
    const bson_t *cmd = &s->index_cmds[s->n_indexed];
    bson_error_t e;
    bson_iter_t coll, name;
    if (mongoc_database_write_command_with_opts(db, cmd, NULL, NULL, &e)) {
      s->n_indexed++;
      continue;
    }
    char what[256];
    snprintf(what, sizeof what, "create index %.100s on %.64s",
             bson_iter_init(&name, cmd) && bson_iter_find_descendant(&name, "indexes.0.name", &name)
                 ? bson_iter_utf8(&name, NULL)
                 : "?",
             bson_iter_init_find(&coll, cmd, "createIndexes") ? bson_iter_utf8(&coll, NULL) : "?");
    store_err tmp;
    rc = s->index_rc = mg_fail(&tmp, what, &e);
    memcpy(s->index_msg, tmp.msg, sizeof s->index_msg);
    store_fail(err, rc, "%s", tmp.msg);
  }
  mongoc_database_destroy(db);
  if (rc)
    __atomic_add_fetch(&s->index_attempts, 1, __ATOMIC_RELEASE);
  else
    __atomic_store_n(&s->indexed, 1, __ATOMIC_RELEASE);
cleanup_lock:
  pthread_mutex_unlock(&s->index_mu);
  return rc;
}

/* A pooled client and a collection handle, once the indexes exist. */
static int mg_coll(mg_store *s, const char *name, mongoc_client_t **client,
                   mongoc_collection_t **coll, store_err *err) {
  *client = mongoc_client_pool_pop(s->pool);
  int rc = mg_ensure_indexes(s, *client, err);
  if (rc) {
    mongoc_client_pool_push(s->pool, *client);
    return rc;
  }
  *coll = mongoc_client_get_collection(*client, s->db, name);
  return STORE_OK;
}

static void mg_done(mg_store *s, mongoc_client_t *client, mongoc_collection_t *coll) {
  mongoc_collection_destroy(coll);
  mongoc_client_pool_push(s->pool, client);
}

static long long mg_reply_count(const bson_t *reply, const char *field) {
  bson_iter_t it;
  return bson_iter_init_find(&it, reply, field) ? bson_iter_as_int64(&it) : 0;
}

/* ---- operations ------------------------------------------------------------ */

static int mg_ping(store *st, store_err *err) {
  mg_store *s = MG(st);
  bson_error_t e;
  bson_t cmd = BSON_INITIALIZER;
  BSON_APPEND_INT32(&cmd, "ping", 1);
  mongoc_client_t *client = mongoc_client_pool_pop(s->pool);
  bool ok = mongoc_client_command_simple(client, s->db, &cmd, NULL, NULL, &e);
  mongoc_client_pool_push(s->pool, client);
  bson_destroy(&cmd);
  return ok ? STORE_OK : mg_fail(err, "ping", &e);
}

/* findAndModify on the element; `value` of the reply is the new document,
 * or null when nothing matched and upsert was off. */
static int mg_modify(mg_store *s, const char *coll, const bson_t *query, const bson_t *update,
                     int upsert, const char *what, bson_t *doc, int *found, store_err *err) {
  mongoc_client_t *client;
  mongoc_collection_t *c;
  *found = 0;
  int rc = mg_coll(s, coll, &client, &c, err);
  if (rc) return rc;
  mongoc_find_and_modify_opts_t *o = mongoc_find_and_modify_opts_new();
  bson_t reply;
  bson_error_t e;
  bson_iter_t it;
  mongoc_find_and_modify_opts_set_update(o, update);
  mongoc_find_and_modify_opts_set_flags(o, MONGOC_FIND_AND_MODIFY_RETURN_NEW |
                                               (upsert ? MONGOC_FIND_AND_MODIFY_UPSERT : 0));
  if (!mongoc_collection_find_and_modify_with_opts(c, query, o, &reply, &e)) {
    rc = mg_fail(err, what, &e);
  } else if (bson_iter_init_find(&it, &reply, "value") && BSON_ITER_HOLDS_DOCUMENT(&it)) {
    uint32_t len;
    const uint8_t *data;
    bson_t view;
    bson_iter_document(&it, &len, &data);
    if (bson_init_static(&view, data, len)) {
      bson_copy_to(&view, doc); /* the reply owns data; keep a copy past it */
      *found = 1;
    } else {
      rc = store_fail(err, STORE_EINTERNAL, "mongodb %s: bad reply", what);
    }
  }
  bson_destroy(&reply);
  mongoc_find_and_modify_opts_destroy(o);
  mg_done(s, client, c);
  return rc;
}

/* ---- inserts, batched ------------------------------------------------------ */

static void mg_ins_fail(mg_ins *w, store_err *err, const char *what, const bson_error_t *e) {
  w->rc = mg_fail(err, what, e);
  if (w->err) *w->err = *err;
}

/* Gives each document its own entry of the reply's writeErrors (a duplicate
 * key, say); returns how many had one. */
static size_t mg_ins_write_errors(const bson_t *reply, mg_ins **batch, size_t n) {
  bson_iter_t it, arr;
  size_t failed = 0;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &arr))
    return 0;
  while (bson_iter_next(&arr)) {
    bson_iter_t f;
    bson_error_t e = {.domain = MONGOC_ERROR_SERVER};
    int64_t index = -1;
    store_err tmp;
    if (!BSON_ITER_HOLDS_DOCUMENT(&arr) || !bson_iter_recurse(&arr, &f)) continue;
    while (bson_iter_next(&f)) {
      if (!strcmp(bson_iter_key(&f), "index"))
        index = bson_iter_as_int64(&f);
      else if (!strcmp(bson_iter_key(&f), "code"))
        e.code = (uint32_t)bson_iter_as_int64(&f);
      else if (!strcmp(bson_iter_key(&f), "errmsg") && BSON_ITER_HOLDS_UTF8(&f))
        bson_strncpy(e.message, bson_iter_utf8(&f, NULL), sizeof e.message);
    }
    if (index < 0 || (size_t)index >= n || batch[index]->rc) continue;
    mg_ins_fail(batch[index], &tmp, "insert", &e);
    failed++;
  }
  return failed;
}

/* Whether the reply holds a non-empty array `field`. */
static int mg_reply_has(const bson_t *reply, const char *field) {
  bson_iter_t it;
  uint32_t len = 0;
  const uint8_t *data;
  if (!bson_iter_init_find(&it, reply, field) || !BSON_ITER_HOLDS_ARRAY(&it)) return 0;
  bson_iter_array(&it, &len, &data);
  return len > 5; /* an empty BSON document is 5 bytes */
}

/* One unordered insert of several documents of one collection (a batch of
 * store_insert_many may hold more than MG_BULK_MAX). */
static void mg_ins_many(mongoc_collection_t *c, mg_ins **batch, size_t n) {
  const bson_t *few[MG_BULK_MAX], **docs = n <= MG_BULK_MAX ? few : calloc(n, sizeof *docs);
  bson_t opts = BSON_INITIALIZER, reply;
  bson_error_t e;
  store_err tmp;
  if (!docs) {
    for (size_t i = 0; i < n; i++) {
      batch[i]->rc = store_fail(&tmp, STORE_EINTERNAL, "mongodb: out of memory");
      if (batch[i]->err) *batch[i]->err = tmp;
    }
    return;
  }
  for (size_t i = 0; i < n; i++)
    docs[i] = batch[i]->doc;
  BSON_APPEND_BOOL(&opts, "ordered", false);
  if (!mongoc_collection_insert_many(c, docs, n, &opts, &reply, &e)) {
    size_t failed = mg_ins_write_errors(&reply, batch, n);
    int wc_failed = mg_reply_has(&reply, "writeConcernErrors");
    /* Without write errors of their own, documents fail with the call's
     * error when it was not about them: the server is unreachable, or the
     * write concern was not met. */
    if (!failed || wc_failed)
      for (size_t i = 0; i < n; i++)
        if (!batch[i]->rc) mg_ins_fail(batch[i], &tmp, "insert", &e);
  }
  bson_destroy(&reply);
  bson_destroy(&opts);
  if (docs != few) free(docs);
}

static void mg_ins_run(mg_store *s, mg_ins **batch, size_t n) {
  mongoc_client_t *client;
  mongoc_collection_t *c;
  store_err why;
  bson_error_t e;
  if (mg_coll(s, batch[0]->coll, &client, &c, &why)) {
    for (size_t i = 0; i < n; i++) {
      batch[i]->rc = why.code;
      if (batch[i]->err) *batch[i]->err = why;
    }
    return;
  }
  if (n == 1) {
    /* Alone: the plain insert, as without batching. */
    if (!mongoc_collection_insert_one(c, batch[0]->doc, NULL, NULL, &e))
      mg_ins_fail(batch[0], &why, "insert", &e);
  } else {
    mg_ins_many(c, batch, n);
  }
  mg_done(s, client, c);
}

/* Called with q_mu held by the caller at the head of the queue, when fewer
 * than MG_BULK_LEADERS batches are in flight: sends the queued inserts of its
 * collection that follow it, marks them done. Returns with q_mu held. */
static void mg_ins_lead(mg_store *s) {
  mg_ins *batch[MG_BULK_MAX];
  size_t n = 0;
  mg_ins *w = s->q_head;
  for (; w && n < MG_BULK_MAX && !strcmp(w->coll, s->q_head->coll); w = w->next)
    batch[n++] = w;
  s->q_head = w;
  if (!w) s->q_tail = NULL;
  s->q_leaders++;
  if (s->q_head && s->q_leaders < MG_BULK_LEADERS) pthread_cond_signal(&s->q_head->cv);
  pthread_mutex_unlock(&s->q_mu);
  mg_ins_run(s, batch, n);
  pthread_mutex_lock(&s->q_mu);
  s->q_leaders--;
  for (size_t i = 0; i < n; i++) {
    batch[i]->done = 1;
    if (i) pthread_cond_signal(&batch[i]->cv); /* batch[0] is the caller */
  }
  if (s->q_head) pthread_cond_signal(&s->q_head->cv);
}

static int mg_ins_queued(mg_store *s, const char *coll, const bson_t *b, store_err *err);

/* Queues the insert of b with the concurrent ones (see MG_BULK_MAX). */
static int mg_ins_queued(mg_store *s, const char *coll, const bson_t *b, store_err *err) {
  mg_ins w = {.coll = coll, .doc = b, .err = err};
  pthread_cond_init(&w.cv, NULL);
  pthread_mutex_lock(&s->q_mu);
  if (s->q_tail)
    s->q_tail->next = &w;
  else
    s->q_head = &w;
  s->q_tail = &w;
  while (!w.done && !(s->q_head == &w && s->q_leaders < MG_BULK_LEADERS))
    pthread_cond_wait(&w.cv, &s->q_mu);
  if (!w.done) mg_ins_lead(s);
  pthread_mutex_unlock(&s->q_mu);
  pthread_cond_destroy(&w.cv);
  return w.rc;
}

/* An insert without a change log entry (the engine's own documents). */
static int mg_insert(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                     store_err *err) {
  bson_t b = BSON_INITIALIZER;
  int rc = mg_doc(&b, tenant, id, doc) ? mg_ins_queued(MG(st), coll, &b, err) : mg_unencodable(err);
  bson_destroy(&b);
  return rc;
}

/* Change log steps (defined with the log, below). */
static int mg_chg_claim(mg_store *s, const char *tenant, int op, const char *coll, json_t *id,
                        json_t *doc, long long *seq, store_err *err);
/* What one change log entry records of its write. */
typedef struct mg_chg_item {
  int op;
  const char *coll;
  json_t *id, *doc;
} mg_chg_item;
static int mg_chg_claim_many(mg_store *s, const char *tenant, const mg_chg_item *items, size_t n,
                             long long *seqs, store_err *err);
static void mg_chg_mark(mg_store *s, const char *tenant, long long seq, int committed, json_t *doc);
static void mg_chg_mark_many(mg_store *s, const char *tenant, const long long *seqs, size_t n,
                             int committed);

/* Logged creates go to the server in groups. The caller at the head of the
 * create queue takes everything queued behind it (up to MG_BULK_MAX, any
 * tenant and collection) through the change log's three steps at once: one
 * ordered insert of the group's claims per tenant, one unordered insert of
 * its documents per collection, one unordered insert of all its marks.
 * Grouped step by step instead (claims apart, documents and marks sharing
 * the insert queue), a create waited for a group to form three times and
 * each step's group stayed small: at c=16 on FerretDB that was 1.35 insert
 * commands per create, and FerretDB's cost is per command far more than
 * per document. One group is in flight at a time (MG_CREATE_LEADERS) and
 * the next gathers meanwhile; positions follow the order groups claim in. */
typedef struct mg_create {
  const char *tenant;
  mg_chg_item item;
  bson_t *doc; /* the caller's; the leader appends _chg once it is claimed */
  long long seq;
  int rc;
  store_err err;
  int done;          /* guarded by cr_mu */
  pthread_cond_t cv; /* signalled when done, or when it may lead */
  struct mg_create *next;
} mg_create;

static bool mg_chg_mark_doc(bson_t *b, const char *tenant, long long seq, int committed,
                            json_t *doc, long long now);

static void mg_create_fail_all(mg_create **g, size_t n, int code, const char *msg) {
  for (size_t i = 0; i < n; i++)
    if (g[i]->rc == MG_CLAIM_PENDING) g[i]->rc = store_fail(&g[i]->err, code, "%s", msg);
}

/* Step 1 for the group: the claims of each tenant in queue order. A claim
 * made stands even if a later one of its tenant failed; the unclaimed fail
 * with nothing written. Claimed creates are left at rc STORE_OK. */
static void mg_create_claim(mg_store *s, mg_create **g, size_t n, mg_chg_item *items,
                            long long *seqs, mg_create **of) {
  for (size_t i = 0; i < n; i++) {
    if (g[i]->rc != MG_CLAIM_PENDING) continue;
    size_t k = 0;
    for (size_t j = i; j < n; j++)
      if (g[j]->rc == MG_CLAIM_PENDING && !strcmp(g[j]->tenant, g[i]->tenant)) {
        of[k] = g[j];
        items[k] = g[j]->item;
        seqs[k++] = 0;
      }
    store_err err = {0};
    int rc = mg_chg_claim_many(s, g[i]->tenant, items, k, seqs, &err);
    for (size_t j = 0; j < k; j++) {
      of[j]->seq = seqs[j];
      of[j]->rc = seqs[j] ? STORE_OK : rc ? rc : STORE_EINTERNAL;
      if (!seqs[j]) of[j]->err = err;
    }
  }
}

/* One mark to write (step 3): its position's tenant, and the outcome. */
typedef struct mg_mark {
  char *tenant;
  long long seq;
  int committed;
} mg_mark;

/* Step 3 for several positions, of any tenants: one unordered insert. A
 * mark refused was a reader's first: it holds. A failure leaves the entries
 * pending for readers to settle from the documents. */
static void mg_marks_write(mg_store *s, const mg_mark *marks, size_t n) {
  bson_t *docs = calloc(n, sizeof *docs);
  mg_ins *ins = calloc(n, sizeof *ins);
  mg_ins **batch = calloc(n, sizeof *batch);
  long long now = store_now_us();
  size_t m = 0;
  for (size_t i = 0; docs && ins && batch && i < n; i++) {
    bson_init(&docs[m]);
    if (!mg_chg_mark_doc(&docs[m], marks[i].tenant, marks[i].seq, marks[i].committed, NULL, now)) {
      bson_destroy(&docs[m]);
      continue;
    }
    ins[m] = (mg_ins){.coll = MG_MARKS, .doc = &docs[m]};
    batch[m] = &ins[m];
    m++;
  }
  if (m) mg_ins_run(s, batch, m);
  for (size_t i = 0; i < m; i++)
    bson_destroy(&docs[i]);
  free(batch);
  free(ins);
  free(docs);
}

/* The marker thread: writes the queued marks of creates, everything queued
 * as one insert, until the store closes with none left. It gathers marks
 * for up to MG_MARK_WAIT_MS (or MG_BULK_MAX of them) unless a reader of
 * this process waits for them. */
static void *mg_marker(void *arg) {
  mg_store *s = arg;
  pthread_mutex_lock(&s->mk_mu);
  for (;;) {
    while (!s->mk_n && !s->mk_stop)
      pthread_cond_wait(&s->mk_work, &s->mk_mu);
    if (!s->mk_n) break;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_nsec += MG_MARK_WAIT_MS * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
      until.tv_sec++;
      until.tv_nsec -= 1000000000L;
    }
    while (s->mk_n < MG_BULK_MAX && !s->mk_stop && !s->mk_waiters &&
           pthread_cond_timedwait(&s->mk_work, &s->mk_mu, &until) == 0)
      ;
    mg_mark *q = s->mk_q;
    size_t n = s->mk_n;
    s->mk_q = NULL;
    s->mk_n = s->mk_cap = 0;
    pthread_mutex_unlock(&s->mk_mu);
    mg_marks_write(s, q, n);
    for (size_t i = 0; i < n; i++)
      free(q[i].tenant);
    free(q);
    pthread_mutex_lock(&s->mk_mu);
    s->mk_written += n;
    pthread_cond_broadcast(&s->mk_idle);
  }
  pthread_mutex_unlock(&s->mk_mu);
  return NULL;
}

/* Queues marks for the marker thread (copying the tenants); 0 when it
 * cannot (no memory, no thread), and the caller writes them itself. */
static int mg_marks_later(mg_store *s, const mg_mark *marks, size_t n) {
  mg_mark *copies = calloc(n, sizeof *copies);
  int ok = copies != NULL;
  for (size_t i = 0; ok && i < n; i++) {
    copies[i] = marks[i];
    ok = (copies[i].tenant = strdup(marks[i].tenant)) != NULL;
  }
  pthread_mutex_lock(&s->mk_mu);
  if (ok && !s->mk_started)
    ok = s->mk_started = pthread_create(&s->mk_thread, NULL, mg_marker, s) == 0;
  if (ok && s->mk_n + n > s->mk_cap) {
    size_t cap = s->mk_cap * 2 > s->mk_n + n ? s->mk_cap * 2 : s->mk_n + n + MG_BULK_MAX;
    mg_mark *q = realloc(s->mk_q, cap * sizeof *q);
    if ((ok = q != NULL)) {
      s->mk_q = q;
      s->mk_cap = cap;
    }
  }
  if (ok) {
    memcpy(s->mk_q + s->mk_n, copies, n * sizeof *copies);
    s->mk_n += n;
    s->mk_queued += n;
    pthread_cond_signal(&s->mk_work);
  }
  pthread_mutex_unlock(&s->mk_mu);
  for (size_t i = 0; !ok && copies && i < n; i++)
    free(copies[i].tenant);
  free(copies);
  return ok;
}

/* Waits until every mark queued so far is written (or given up). */
static void mg_marks_flush(mg_store *s) {
  pthread_mutex_lock(&s->mk_mu);
  unsigned long long target = s->mk_queued;
  if (s->mk_written < target) {
    s->mk_waiters++;
    pthread_cond_signal(&s->mk_work);
    while (s->mk_written < target)
      pthread_cond_wait(&s->mk_idle, &s->mk_mu);
    s->mk_waiters--;
  }
  pthread_mutex_unlock(&s->mk_mu);
}

/* Steps 2 and 3 for the claimed creates of the group. The marks are left to
 * the marker thread: the caller's create is durable once its document
 * insert is acknowledged, and a mark only tells readers the outcome without
 * waiting MG_SETTLE_US to settle it from the document. So a create waits for
 * two round trips, not three, and the marks of several groups share one
 * insert. This process's own reads of the log wait for its queued marks
 * (mg_changes), so a write is in the log for it as soon as it returns; other
 * replicas see it when the mark lands, as they see any write by polling. */
static void mg_create_write(mg_store *s, mg_create **g, size_t n, mg_ins *ins, mg_ins **batch,
                            mg_mark *marks, unsigned char *sent) {
  size_t m = 0;
  for (size_t i = 0; i < n; i++) {
    ins[i] = (mg_ins){.coll = g[i]->item.coll, .doc = g[i]->doc, .err = &g[i]->err};
    if (g[i]->rc) continue; /* not claimed */
    if (!BSON_APPEND_INT64(g[i]->doc, MG_CHG, g[i]->seq)) ins[i].rc = mg_unencodable(&g[i]->err);
  }
  /* One insert per collection, of its claimed, encodable documents. */
  for (size_t i = 0; i < n; i++) {
    if (g[i]->rc || ins[i].rc || sent[i]) continue;
    size_t k = 0;
    for (size_t j = i; j < n; j++)
      if (!g[j]->rc && !ins[j].rc && !sent[j] && !strcmp(ins[j].coll, ins[i].coll)) {
        sent[j] = 1;
        batch[k++] = &ins[j];
      }
    mg_ins_run(s, batch, k);
  }
  /* An outage leaves the outcome unknown, and the entry pending for readers
   * to settle from the document. */
  for (size_t i = 0; i < n; i++) {
    if (g[i]->rc) continue;
    g[i]->rc = ins[i].rc;
    if (g[i]->rc != STORE_EUNAVAILABLE)
      marks[m++] = (mg_mark){(char *)g[i]->tenant, g[i]->seq, g[i]->rc == STORE_OK};
  }
  if (m && !mg_marks_later(s, marks, m)) mg_marks_write(s, marks, m);
}

static void mg_create_run(mg_store *s, mg_create **g, size_t n) {
  mg_chg_item *items = calloc(n, sizeof *items);
  long long *seqs = calloc(n, sizeof *seqs);
  mg_create **of = calloc(n, sizeof *of);
  mg_ins *ins = calloc(n, sizeof *ins);
  mg_ins **batch = calloc(n, sizeof *batch);
  mg_mark *marks = calloc(n, sizeof *marks);
  unsigned char *sent = calloc(n, 1);
  for (size_t i = 0; i < n; i++)
    g[i]->rc = MG_CLAIM_PENDING;
  if (!items || !seqs || !of || !ins || !batch || !marks || !sent) {
    mg_create_fail_all(g, n, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup_arrays;
  }
  mg_create_claim(s, g, n, items, seqs, of);
  mg_create_write(s, g, n, ins, batch, marks, sent);
cleanup_arrays:
  free(sent);
  free(marks);
  free(batch);
  free(ins);
  free(of);
  free(seqs);
  free(items);
}

/* Called with cr_mu held by the caller at the head of the queue, when fewer
 * than MG_CREATE_LEADERS groups are in flight. Returns with cr_mu held. */
static void mg_create_lead(mg_store *s) {
  mg_create *g[MG_BULK_MAX];
  size_t n = 0;
  mg_create *c = s->cr_head;
  for (; c && n < MG_BULK_MAX; c = c->next)
    g[n++] = c;
  s->cr_head = c;
  if (!c) s->cr_tail = NULL;
  s->cr_leaders++;
  if (s->cr_head && s->cr_leaders < MG_CREATE_LEADERS) pthread_cond_signal(&s->cr_head->cv);
  pthread_mutex_unlock(&s->cr_mu);
  mg_create_run(s, g, n);
  pthread_mutex_lock(&s->cr_mu);
  s->cr_leaders--;
  for (size_t i = 0; i < n; i++) {
    g[i]->done = 1;
    if (i) pthread_cond_signal(&g[i]->cv); /* g[0] is the caller */
  }
  if (s->cr_head) pthread_cond_signal(&s->cr_head->cv);
}

/* An insert of a caller's document: claimed, written, marked, in a group
 * with the concurrent ones (see mg_create). */
static int mg_insert_logged(store *st, const char *tenant, const char *coll, json_t *id,
                            json_t *doc, store_err *err) {
  mg_store *s = MG(st);
  bson_t b = BSON_INITIALIZER;
  if (!mg_doc(&b, tenant, id, doc)) {
    bson_destroy(&b);
    return mg_unencodable(err);
  }
  mg_create me = {.tenant = tenant, .item = {STORE_CHANGE_CREATE, coll, id, doc}, .doc = &b};
  pthread_cond_init(&me.cv, NULL);
  pthread_mutex_lock(&s->cr_mu);
  if (s->cr_tail)
    s->cr_tail->next = &me;
  else
    s->cr_head = &me;
  s->cr_tail = &me;
  while (!me.done && !(s->cr_head == &me && s->cr_leaders < MG_CREATE_LEADERS))
    pthread_cond_wait(&me.cv, &s->cr_mu);
  if (!me.done) mg_create_lead(s);
  pthread_mutex_unlock(&s->cr_mu);
  pthread_cond_destroy(&me.cv);
  bson_destroy(&b);
  if (me.rc && err) *err = me.err;
  return me.rc;
}

/* Removes the documents of `ids` (an atomic batch taking back what it wrote). */
static int mg_delete_ids(mg_store *s, const char *tenant, const char *coll, json_t *ids,
                         store_err *err) {
  mongoc_client_t *client;
  mongoc_collection_t *c;
  bson_t filter = BSON_INITIALIZER, in, reply;
  bson_error_t e;
  int rc = STORE_OK;
  if (!BSON_APPEND_UTF8(&filter, "tenant", tenant) ||
      !bson_append_document_begin(&filter, "id", -1, &in) || !mg_append(&in, "$in", ids, 1) ||
      !bson_append_document_end(&filter, &in)) {
    bson_destroy(&filter);
    return mg_unencodable(err);
  }
  if (!(rc = mg_coll(s, coll, &client, &c, err))) {
    if (!mongoc_collection_delete_many(c, &filter, NULL, &reply, &e))
      rc = mg_fail(err, "delete batch", &e);
    bson_destroy(&reply);
    mg_done(s, client, c);
  }
  bson_destroy(&filter);
  return rc;
}

/* Settles the log entries of a batch insert (seqs[j] for batch[j]) once the
 * insert ran: a written document's entry is committed, a refused one's void;
 * an outage leaves them pending for readers to settle from the documents.
 * `undone`: an atomic batch took its written documents back. */
static void mg_insert_many_mark(mg_store *s, const char *tenant, mg_ins **batch,
                                const long long *seqs, size_t m, int undone) {
  long long *ok = calloc(m ? m : 1, sizeof *ok), *bad = calloc(m ? m : 1, sizeof *bad);
  size_t n_ok = 0, n_bad = 0;
  for (size_t j = 0; ok && bad && j < m; j++) {
    int r = batch[j]->rc;
    if (r == STORE_OK && !undone)
      ok[n_ok++] = seqs[j];
    else if (r != STORE_EUNAVAILABLE && r != STORE_EINTERNAL)
      bad[n_bad++] = seqs[j];
  }
  if (n_ok) mg_chg_mark_many(s, tenant, ok, n_ok, 1);
  if (n_bad) mg_chg_mark_many(s, tenant, bad, n_bad, 0);
  free(ok);
  free(bad);
}

/* A batch goes the way queued single inserts go (mg_doc, then mg_ins_run:
 * one unordered insert in which each document succeeds or fails alone), as
 * one bulk insert of its own. Each document is logged as a single insert is
 * (claim, write with _chg, mark), the claims made in item order, so a watcher
 * sees the batch's creates in request order. Atomic without transactions:
 * what was written is deleted again when anything failed (see store.h for
 * the window), and its entries are voided only then. */
static int mg_insert_many(store *st, const char *tenant, const char *coll, json_t *const *ids,
                          json_t *const *docs, size_t n, int atomic, int *results, store_err *err) {
  mg_store *s = MG(st);
  bson_t *bs = calloc(n, sizeof *bs);
  mg_ins *ins = calloc(n, sizeof *ins);
  mg_ins **batch = calloc(n, sizeof *batch);
  mg_chg_item *items = calloc(n, sizeof *items);
  long long *seqs = calloc(n, sizeof *seqs);
  json_t *written = json_array();
  size_t m = 0, failed = 0;
  int rc = STORE_OK, ran = 0;
  if (!bs || !ins || !batch || !items || !seqs || !written) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup_docs;
  }
  for (size_t i = 0; i < n; i++) {
    bson_init(&bs[i]);
    ins[i] = (mg_ins){.coll = coll, .doc = &bs[i]};
    if (mg_doc(&bs[i], tenant, ids[i], docs[i])) {
      items[m] = (mg_chg_item){STORE_CHANGE_CREATE, coll, ids[i], docs[i]};
      batch[m++] = &ins[i];
    } else {
      ins[i].rc = mg_unencodable(NULL);
    }
  }
  if (m && !(atomic && m < n)) {
    if ((rc = mg_chg_claim_many(s, tenant, items, m, seqs, err))) {
      /* Nothing written: the claims made are void. */
      size_t k = 0;
      while (k < m && seqs[k])
        k++;
      if (k) mg_chg_mark_many(s, tenant, seqs, k, 0);
      goto cleanup_docs;
    }
    for (size_t j = 0; j < m; j++)
      if (!BSON_APPEND_INT64((bson_t *)batch[j]->doc, MG_CHG, seqs[j]))
        batch[j]->rc = mg_unencodable(NULL);
    mg_ins_run(s, batch, m);
    ran = 1;
  }
  for (size_t i = 0; i < n; i++) {
    int r = ins[i].rc;
    if (r == STORE_EUNAVAILABLE || r == STORE_EINTERNAL) {
      /* Not about this document: the batch failed as a whole. */
      if (ran) mg_insert_many_mark(s, tenant, batch, seqs, m, 0);
      rc = store_fail(err, r, "mongodb: batch insert failed");
      goto cleanup_docs;
    }
    results[i] = r;
    failed += r != STORE_OK;
    if (r == STORE_OK && json_array_append(written, ids[i])) {
      rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
      goto cleanup_docs; /* entries stay pending: settled from the documents */
    }
  }
  if (!atomic || !failed) {
    if (ran) mg_insert_many_mark(s, tenant, batch, seqs, m, 0);
    goto cleanup_docs;
  }
  if (json_array_size(written) && (rc = mg_delete_ids(s, tenant, coll, written, err))) {
    /* Written documents stay (with their pending entries); refused ones are void. */
    if (ran) mg_insert_many_mark(s, tenant, batch, seqs, m, 0);
    goto cleanup_docs;
  }
  if (ran) mg_insert_many_mark(s, tenant, batch, seqs, m, 1);
  for (size_t i = 0; i < n; i++)
    if (!results[i]) results[i] = STORE_EABORTED;
cleanup_docs:
  for (size_t i = 0; bs && i < n; i++)
    bson_destroy(&bs[i]);
  json_decref(written);
  free(seqs);
  free(items);
  free(batch);
  free(ins);
  free(bs);
  return rc;
}

/* Runs a find and appends every document to `docs`. */
static int mg_query(mg_store *s, const char *coll, const bson_t *filter, const bson_t *opts,
                    json_t *docs, store_err *err) {
  mongoc_client_t *client;
  mongoc_collection_t *c;
  int rc = mg_coll(s, coll, &client, &c, err);
  if (rc) return rc;
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, filter, opts, NULL);
  const bson_t *d;
  bson_error_t e;
  while (rc == STORE_OK && mongoc_cursor_next(cur, &d)) {
    json_t *doc;
    rc = mg_to_json(d, &doc, err);
    if (rc == STORE_OK && json_array_append_new(docs, doc))
      rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  }
  if (rc == STORE_OK && mongoc_cursor_error(cur, &e)) rc = mg_fail(err, "find", &e);
  mongoc_cursor_destroy(cur);
  mg_done(s, client, c);
  return rc;
}

/* ---- sequences ------------------------------------------------------------- */

/* A sequence number n is taken by inserting the claim {tenant, id:
 * "<sequence>#<n>", seq, n} into the counters collection: the unique
 * (tenant, id) index lets exactly one caller, in any process, win each n, on
 * MongoDB and on servers (FerretDB v1) whose findAndModify $inc is a read
 * then a write. A loser reads the highest claim and tries past it. Claims are
 * kept, so a number is never handed out twice, even after the resource that
 * used it is deleted. A counter document of the $inc era ({id: sequence,
 * value}) still counts as claimed up to its value. */
#define MG_SEQ_TRIES 64

static int mg_seq_max(mg_store *s, const char *tenant, const char *sequence, long long *max,
                      store_err *err) {
  bson_t f1 = BSON_INITIALIZER, o1 = BSON_INITIALIZER, f2 = BSON_INITIALIZER, o2 = BSON_INITIALIZER,
         sort;
  json_t *docs = json_array();
  int rc;
  bool ok = docs && BSON_APPEND_UTF8(&f1, "tenant", tenant) &&
            BSON_APPEND_UTF8(&f1, "seq", sequence) &&
            bson_append_document_begin(&o1, "sort", -1, &sort) &&
            BSON_APPEND_INT32(&sort, "n", -1) && bson_append_document_end(&o1, &sort) &&
            BSON_APPEND_INT64(&o1, "limit", 1) && BSON_APPEND_UTF8(&f2, "tenant", tenant) &&
            BSON_APPEND_UTF8(&f2, "id", sequence) && BSON_APPEND_INT64(&o2, "limit", 1);
  if (!ok) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  rc = mg_query(s, STORE_COUNTERS, &f1, &o1, docs, err);
  if (!rc) rc = mg_query(s, STORE_COUNTERS, &f2, &o2, docs, err);
  *max = 0;
  size_t i;
  json_t *d;
  json_array_foreach(docs, i, d) {
    json_t *v = json_object_get(d, "n");
    if (!v) v = json_object_get(d, "value");
    if (json_is_integer(v) && json_integer_value(v) > *max) *max = json_integer_value(v);
  }
cleanup:
  json_decref(docs);
  bson_destroy(&f1);
  bson_destroy(&o1);
  bson_destroy(&f2);
  bson_destroy(&o2);
  return rc;
}

/* A block of count numbers from n is one claim {id: "<sequence>#<n>", n:
 * its last number, from: n}: every claim is tried at one past the highest
 * claimed number (or one past this process's last), so blocks and single
 * claims never overlap, and two claimers of one n meet on its id. */
static int mg_seq_claim(store *st, const char *tenant, const char *sequence, long long n,
                        long long count, store_err *err) {
  char *id = NULL;
  json_t *doc = NULL, *key = NULL;
  int rc;
  if (asprintf(&id, "%s#%lld", sequence, n) < 0) id = NULL;
  if (id && (key = json_string(id)))
    doc = count == 1 ? json_pack("{s:O, s:s, s:I}", "id", key, "seq", sequence, "n", (json_int_t)n)
                     : json_pack("{s:O, s:s, s:I, s:I}", "id", key, "seq", sequence, "n",
                                 (json_int_t)(n + count - 1), "from", (json_int_t)n);
  if (!doc)
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  else
    rc = mg_insert(st, tenant, STORE_COUNTERS, key, doc, err);
  json_decref(doc);
  json_decref(key);
  free(id);
  return rc;
}

static int mg_next_ids(store *st, const char *tenant, const char *sequence, long long count,
                       long long *out, store_err *err) {
  mg_store *s = MG(st);
  char *key = NULL;
  json_t *skey = json_string(sequence);
  if (asprintf(&key, "%s\x1f%s", tenant, sequence) < 0) key = NULL;
  if (!key || !skey) {
    free(key);
    json_decref(skey);
    return store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  }
  size_t idx = mg_stripe_index(tenant, STORE_COUNTERS, skey);
  struct mg_seq *slot = &s->seqs[idx];
  int rc = STORE_EUNAVAILABLE;
  pthread_mutex_lock(&s->stripes[idx]);
  long long n = slot->key && !strcmp(slot->key, key) ? slot->last + 1 : 0;
  for (int attempt = 0; attempt < MG_SEQ_TRIES; attempt++) {
    if (n == 0) {
      long long max;
      if ((rc = mg_seq_max(s, tenant, sequence, &max, err))) break;
      n = max + 1;
    }
    rc = mg_seq_claim(st, tenant, sequence, n, count, err);
    if (rc != STORE_EDUPLICATE) break;
    /* Another replica took n: past the highest claim. If that read is
     * behind (a claim it raced with), read again: n + 1 could lie inside a
     * block claimed at n. */
    long long max;
    if ((rc = mg_seq_max(s, tenant, sequence, &max, err))) break;
    n = max >= n ? max + 1 : 0;
    rc = STORE_EUNAVAILABLE;
  }
  if (rc == STORE_OK) {
    *out = n;
    if (!slot->key || strcmp(slot->key, key)) {
      free(slot->key);
      slot->key = key;
      key = NULL;
    }
    slot->last = n + count - 1;
  } else if (rc == STORE_EUNAVAILABLE && err && err->code != STORE_EUNAVAILABLE) {
    rc = store_fail(err, STORE_EUNAVAILABLE, "mongodb next_id: no free number after %d tries",
                    MG_SEQ_TRIES);
  }
  pthread_mutex_unlock(&s->stripes[idx]);
  free(key);
  json_decref(skey);
  return rc;
}

static int mg_next_id(store *st, const char *tenant, const char *sequence, long long *out,
                      store_err *err) {
  return mg_next_ids(st, tenant, sequence, 1, out, err);
}

static int mg_get(store *st, const char *tenant, const char *coll, json_t *id, json_t **out,
                  store_err *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER;
  json_t *docs = json_array();
  int rc;
  if (!docs || !mg_key(&filter, tenant, id) || !BSON_APPEND_INT64(&opts, "limit", 1)) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  rc = mg_query(MG(st), coll, &filter, &opts, docs, err);
  if (!rc && json_array_size(docs) == 0)
    rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
  if (!rc) *out = json_incref(json_array_get(docs, 0));
cleanup:
  json_decref(docs);
  bson_destroy(&opts);
  bson_destroy(&filter);
  return rc;
}

/* Per-document leases across processes (defined below, before mg_patch). */
static char *mg_lease_id(const char *coll, json_t *id);
static void mg_lease_token(char token[25]);
static int mg_lease_take(mg_store *s, const char *tenant, const char *lease, const char *token,
                         store_err *err);
static void mg_lease_drop(mg_store *s, const char *tenant, const char *lease, const char *token);

static int mg_replace(store *st, const char *tenant, const char *coll, json_t *id, json_t *doc,
                      store_err *err) {
  mg_store *s = MG(st);
  bson_t sel = BSON_INITIALIZER, b = BSON_INITIALIZER, reply;
  bson_error_t e;
  int rc = STORE_OK;
  if (!mg_key(&sel, tenant, id) || !mg_doc(&b, tenant, id, doc)) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  mongoc_client_t *client;
  mongoc_collection_t *c;
  char token[25], *lease = mg_lease_id(coll, id);
  if (!lease) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup;
  }
  mg_lease_token(token);
  /* Key lock before pool client, everywhere: the other order could leave
   * every client held by a thread queued on a lock whose owner waits for one.
   * The lease orders a replace with any replica's patch of the document (a
   * patch writes back the whole document on FerretDB v1). */
  pthread_mutex_t *lock = mg_stripe(s, tenant, coll, id);
  pthread_mutex_lock(lock);
  long long seq = 0;
  int leased = !(rc = mg_lease_take(s, tenant, lease, token, err));
  if (leased && !(rc = mg_chg_claim(s, tenant, STORE_CHANGE_UPDATE, coll, id, doc, &seq, err))) {
    if (!BSON_APPEND_INT64(&b, MG_CHG, seq)) {
      rc = mg_unencodable(err);
    } else if (!(rc = mg_coll(s, coll, &client, &c, err))) {
      if (!mongoc_collection_replace_one(c, &sel, &b, NULL, &reply, &e))
        rc = mg_fail(err, "replace", &e);
      else if (mg_reply_count(&reply, "matchedCount") == 0)
        rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
      bson_destroy(&reply);
      mg_done(s, client, c);
    }
    mg_chg_mark(s, tenant, seq, rc == STORE_OK, NULL);
  }
  if (leased) mg_lease_drop(s, tenant, lease, token);
  pthread_mutex_unlock(lock);
  free(lease);
cleanup:
  bson_destroy(&b);
  bson_destroy(&sel);
  return rc;
}

/* ---- cross-process leases --------------------------------------------------- */

/* A patch is a read-modify-write on FerretDB v1 (findAndModify reads, applies
 * the update in the server's memory, writes the whole document back by _id),
 * so two replicas patching different fields of one document could each
 * write back the other's field unchanged. A patch (and a replace, which such
 * a write-back could undo) therefore runs under a lease on its document: a
 * counters document {id: "lock#<coll>#<key>", token, until}, taken by
 * inserting it (the unique (tenant, id) index admits one holder) and given
 * back by deleting it by token. A holder that died leaves a lease that
 * others remove once `until` has passed; a delete by token cannot remove a
 * newer holder's lease (a new lease is a new document). On MongoDB the
 * patch is atomic anyway and the lease costs an insert and a delete. A
 * delete needs none: it removes the document whole, atomically everywhere. */
#define MG_LEASE_US (15 * 1000000LL) /* longer than any one bounded call */
#define MG_LEASE_WAIT_US (20 * 1000000LL)

static long long mg_wall_us(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
}

static int mg_delete_filter(mg_store *s, const char *coll, const bson_t *filter, long long *n,
                            store_err *err) {
  mongoc_client_t *client;
  mongoc_collection_t *c;
  bson_t reply;
  bson_error_t e;
  int rc = mg_coll(s, coll, &client, &c, err);
  if (rc) return rc;
  if (!mongoc_collection_delete_one(c, filter, NULL, &reply, &e))
    rc = mg_fail(err, "delete", &e);
  else if (n)
    *n = mg_reply_count(&reply, "deletedCount");
  bson_destroy(&reply);
  mg_done(s, client, c);
  return rc;
}

static char *mg_lease_id(const char *coll, json_t *id) {
  char *out = NULL;
  int n = json_is_string(id)
              ? asprintf(&out, "lock#%s#s:%s", coll, json_string_value(id))
              : asprintf(&out, "lock#%s#i:%lld", coll, (long long)json_integer_value(id));
  return n < 0 ? NULL : out;
}

/* A token no other holder, in any process, has: an ObjectId's hex. */
static void mg_lease_token(char token[25]) {
  bson_oid_t oid;
  bson_oid_init(&oid, NULL);
  bson_oid_to_string(&oid, token);
}

/* Removes the lease {id, token} if it is still that one. */
static void mg_lease_drop(mg_store *s, const char *tenant, const char *lease, const char *token) {
  bson_t f = BSON_INITIALIZER;
  store_err ignored;
  if (BSON_APPEND_UTF8(&f, "tenant", tenant) && BSON_APPEND_UTF8(&f, "id", lease) &&
      BSON_APPEND_UTF8(&f, "token", token))
    mg_delete_filter(s, STORE_COUNTERS, &f, NULL, &ignored); /* else it expires */
  bson_destroy(&f);
}

static int mg_lease_take(mg_store *s, const char *tenant, const char *lease, const char *token,
                         store_err *err) {
  long long start = mg_wall_us();
  useconds_t pause = 500;
  json_t *key = json_string(lease);
  int rc = key ? STORE_OK : store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  while (!rc) {
    long long now = mg_wall_us();
    json_t *doc = json_pack("{s:O, s:s, s:I}", "id", key, "token", token, "until",
                            (json_int_t)(now + MG_LEASE_US));
    rc = doc ? mg_insert(&s->base, tenant, STORE_COUNTERS, key, doc, err)
             : store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    json_decref(doc);
    if (rc != STORE_EDUPLICATE) break;
    /* Held: by a live holder (wait), or by one that died (remove it). */
    bson_t f = BSON_INITIALIZER, o = BSON_INITIALIZER;
    json_t *held = json_array();
    rc = held && BSON_APPEND_UTF8(&f, "tenant", tenant) && BSON_APPEND_UTF8(&f, "id", lease) &&
                 BSON_APPEND_INT64(&o, "limit", 1)
             ? mg_query(s, STORE_COUNTERS, &f, &o, held, err)
             : mg_unencodable(err);
    json_t *h = json_array_get(held, 0);
    json_t *until = json_object_get(h, "until"), *htoken = json_object_get(h, "token");
    if (!rc && h && json_is_integer(until) && json_integer_value(until) < now &&
        json_is_string(htoken)) {
      mg_lease_drop(s, tenant, lease, json_string_value(htoken));
    } else if (!rc && h) {
      if (now - start > MG_LEASE_WAIT_US)
        rc = store_fail(err, STORE_EBUSY, "mongodb: lease %s still held", lease);
      else
        usleep(pause);
      if (pause < 50000) pause *= 2;
    }
    json_decref(held);
    bson_destroy(&o);
    bson_destroy(&f);
  }
  json_decref(key);
  return rc;
}

static bool mg_patch_update(bson_t *update, json_t *set) {
  bson_t part;
  const char *k;
  json_t *v;
  bool ok = true;
  for (int unset = 0; ok && unset < 2; unset++) {
    int any = 0;
    json_object_foreach(set, k, v) any |= json_is_null(v) == unset;
    if (!any) continue; /* an empty $set or $unset is refused by older servers */
    ok = bson_append_document_begin(update, unset ? "$unset" : "$set", -1, &part);
    json_object_foreach(set, k, v) {
      if (ok && json_is_null(v) == unset)
        ok = unset ? bson_append_utf8(&part, k, -1, "", 0) : mg_append(&part, k, v, 1);
    }
    ok = bson_append_document_end(update, &part) && ok;
  }
  return ok;
}

static int mg_patch(store *st, const char *tenant, const char *coll, json_t *id, json_t *set,
                    json_t **out, store_err *err) {
  bson_t query = BSON_INITIALIZER, update = BSON_INITIALIZER, doc;
  int found = 0, rc;
  if (!mg_key(&query, tenant, id) || !mg_patch_update(&update, set)) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  char token[25], *lease = mg_lease_id(coll, id);
  mg_lease_token(token);
  if (!lease) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup;
  }
  /* The stripe queues this process's patches of one key; the lease keeps
   * out every other process's. */
  pthread_mutex_t *lock = mg_stripe(MG(st), tenant, coll, id);
  pthread_mutex_lock(lock);
  rc = mg_lease_take(MG(st), tenant, lease, token, err);
  long long seq = 0;
  if (!rc) {
    /* The position is claimed under the lease and recorded by the update. */
    rc = mg_chg_claim(MG(st), tenant, STORE_CHANGE_UPDATE, coll, id, NULL, &seq, err);
    if (!rc) {
      json_t *marked = json_copy(set);
      bson_t upd2 = BSON_INITIALIZER;
      if (!marked || json_object_set_new(marked, MG_CHG, json_integer(seq)) ||
          !mg_patch_update(&upd2, marked))
        rc = mg_unencodable(err);
      else
        rc = mg_modify(MG(st), coll, &query, &upd2, 0, "patch", &doc, &found, err);
      json_t *after = NULL;
      if (!rc && found && mg_to_json(&doc, &after, err) != STORE_OK) after = NULL;
      mg_chg_mark(MG(st), tenant, seq, !rc && found, after);
      json_decref(after);
      bson_destroy(&upd2);
      json_decref(marked);
    }
    mg_lease_drop(MG(st), tenant, lease, token);
  }
  pthread_mutex_unlock(lock);
  free(lease);
  if (!rc && !found) rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
  if (!rc && out) rc = mg_to_json(&doc, out, err);
  if (found) bson_destroy(&doc);
cleanup:
  bson_destroy(&update);
  bson_destroy(&query);
  return rc;
}

static int mg_delete(store *st, const char *tenant, const char *coll, json_t *id, store_err *err) {
  mg_store *s = MG(st);
  bson_t sel = BSON_INITIALIZER, reply;
  bson_error_t e;
  int rc = STORE_OK;
  if (!mg_key(&sel, tenant, id)) {
    bson_destroy(&sel);
    return mg_unencodable(err);
  }
  mongoc_client_t *client;
  mongoc_collection_t *c;
  json_t *before = NULL;
  long long seq = 0;
  pthread_mutex_t *lock = mg_stripe(s, tenant, coll, id);
  pthread_mutex_lock(lock);
  /* The document as it was goes into the log (filters match deletes on it);
   * a document already gone is not found, and nothing is claimed. */
  rc = mg_get(st, tenant, coll, id, &before, err);
  if (!rc) rc = mg_chg_claim(s, tenant, STORE_CHANGE_DELETE, coll, id, before, &seq, err);
  if (!rc && !(rc = mg_coll(s, coll, &client, &c, err))) {
    if (!mongoc_collection_delete_one(c, &sel, NULL, &reply, &e))
      rc = mg_fail(err, "delete", &e);
    else if (mg_reply_count(&reply, "deletedCount") == 0)
      rc = store_fail(err, STORE_ENOTFOUND, "%s: no such id", coll);
    bson_destroy(&reply);
    mg_done(s, client, c);
  }
  if (seq) mg_chg_mark(s, tenant, seq, rc == STORE_OK, NULL);
  pthread_mutex_unlock(lock);
  json_decref(before);
  bson_destroy(&sel);
  return rc;
}

static int mg_find(store *st, const char *tenant, const char *coll, const store_plan *p,
                   json_t *docs, store_err *err) {
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort;
  bool ok = mg_filter(&filter, tenant, p->conds, p->n_conds, p->where, p) &&
            bson_append_document_begin(&opts, "sort", -1, &sort);
  for (size_t i = 0; ok && i < p->n_order; i++)
    ok = bson_append_int32(&sort, p->order[i].field, -1, p->order[i].desc ? -1 : 1);
  ok = ok && bson_append_document_end(&opts, &sort);
  if (ok && p->offset) ok = BSON_APPEND_INT64(&opts, "skip", (int64_t)p->offset);
  if (ok && p->limit) ok = BSON_APPEND_INT64(&opts, "limit", (int64_t)p->limit);
  int rc = ok ? mg_query(MG(st), coll, &filter, &opts, docs, err) : mg_unencodable(err);
  bson_destroy(&opts);
  bson_destroy(&filter);
  return rc;
}

static int mg_count(store *st, const char *tenant, const char *coll, const store_cond *conds,
                    size_t n_conds, const store_expr *where, long long *out, store_err *err) {
  mg_store *s = MG(st);
  bson_t filter = BSON_INITIALIZER;
  bson_error_t e;
  int rc = STORE_OK;
  if (!mg_filter(&filter, tenant, conds, n_conds, where, NULL)) {
    bson_destroy(&filter);
    return mg_unencodable(err);
  }
  mongoc_client_t *client;
  mongoc_collection_t *c;
  if (!(rc = mg_coll(s, coll, &client, &c, err))) {
    int64_t n = mongoc_collection_count_documents(c, &filter, NULL, NULL, NULL, &e);
    if (n < 0)
      rc = mg_fail(err, "count", &e);
    else
      *out = n;
    mg_done(s, client, c);
  }
  bson_destroy(&filter);
  return rc;
}

static int mg_delete_where(store *st, const char *tenant, const char *coll, const store_cond *conds,
                           size_t n_conds, long long *deleted, store_err *err) {
  /* One logged delete per matching document, so each has its change. */
  bson_t filter = BSON_INITIALIZER, opts = BSON_INITIALIZER, proj;
  json_t *docs = json_array();
  int rc;
  *deleted = 0;
  if (!docs || !mg_filter(&filter, tenant, conds, n_conds, NULL, NULL) ||
      !bson_append_document_begin(&opts, "projection", -1, &proj) ||
      !BSON_APPEND_INT32(&proj, "id", 1) || !bson_append_document_end(&opts, &proj)) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  rc = mg_query(MG(st), coll, &filter, &opts, docs, err);
  size_t i;
  json_t *d;
  json_array_foreach(docs, i, d) {
    if (rc) break;
    rc = mg_delete(st, tenant, coll, json_object_get(d, "id"), err);
    if (rc == STORE_OK) (*deleted)++;
    if (rc == STORE_ENOTFOUND) rc = STORE_OK; /* someone else's delete won */
  }
cleanup:
  json_decref(docs);
  bson_destroy(&opts);
  bson_destroy(&filter);
  return rc;
}

/* ---- change log -------------------------------------------------------------
 *
 * FerretDB v1 has no transactions and no change streams, and a standalone
 * MongoDB no multi-document transactions either, so a change cannot commit
 * with its document. The log (collection "changes", {tenant, id: position,
 * st, op, coll, did, time, doc}) is written around the document write:
 *
 *  1. claim: the next position n of the tenant is taken by inserting the
 *     entry with st "p" (pending); the unique (tenant, id) index lets one
 *     writer, in any process, win each n, and a loser tries past the highest
 *     entry, so positions are dense. For a patch or replace the claim is made
 *     holding the document's lease, so one document's positions follow the
 *     order its writes happen in, across replicas. Where the highest entry
 *     is comes from the tenant's top (MG_TOPS, see mg_chg_start), not from
 *     the log.
 *  2. the document write, which records n in the document (member _chg).
 *  3. mark: a document {tenant, id: n, st, time, doc?} inserted into its own
 *     collection (MG_MARKS), st "c" (committed, with the document after the
 *     write for a patch) or "v" (void: the write failed, e.g. a duplicate).
 *     The entry itself stays as claimed (entries of before the marks carry
 *     st "c" or "v" themselves and are read as such). The first mark of a
 *     position wins (unique (tenant, id)), so a late writer cannot undo a
 *     reader's settlement.
 *
 * Every write of the log is an insert: FerretDB v1 (SQLite handler) runs
 * even an _id equality as a scan of the whole table (its WHERE on
 * `->'$._id'` does not match its index on `->"_id"`), so an update of the
 * entry (the mark of old) cost a scan of the log per write, twice; an insert
 * is checked against the unique indexes only. Concurrent marks go to the
 * server together, as inserts do (MG_BULK_MAX).
 *
 * Readers deliver positions in order and stop at the first pending one: a
 * change is never delivered before its write happened, and no later change
 * overtakes it. A pending entry older than MG_SETTLE_US was abandoned (its
 * writer died between 1 and 3): a reader settles it from the document
 * itself - committed if the document carries _chg = n (for a delete: if the
 * document is gone), void otherwise - and records that as its mark, so
 * every reader decides alike. Writes of one document are thus seen exactly
 * once and in order; a write acknowledged before another started has the
 * lower position. The head (the last position whose predecessors are all
 * settled) is walked from the highest one this process saw before, so a
 * read costs a few queries however long the log is (each a scan on
 * FerretDB v1, of which there is no way round for a range). Costs: a claim
 * and a mark per write (both inserts); concurrent claims of one process go
 * to the server as one insert (mg_chg_claim), concurrent creates as one
 * group (mg_create), whose marks the marker thread writes after the call
 * returned (mg_create_write): an abandoned one is settled as above. */
#define MG_SETTLE_US (15 * 1000000LL)
#define MG_PRUNED STORE_CHANGES "#pruned"

/* An entry's _id, "<tenant>/<position>" (since the marks were updates of
 * the entry by it; kept, so old and new entries read alike). */
static void mg_chg_key(const char *tenant, long long seq, char *buf, size_t len) {
  snprintf(buf, len, "%s/%lld", tenant, seq);
}

/* One integer from the first document of a find, or 0. */
static int mg_find_int(mg_store *s, const char *coll, const bson_t *filter, const char *sort_key,
                       int dir, const char *field, long long *out, store_err *err) {
  bson_t opts = BSON_INITIALIZER, sort;
  json_t *docs = json_array();
  int rc;
  *out = 0;
  bool ok = docs && BSON_APPEND_INT64(&opts, "limit", 1);
  if (ok && sort_key)
    ok = bson_append_document_begin(&opts, "sort", -1, &sort) &&
         bson_append_int32(&sort, sort_key, -1, dir) && bson_append_document_end(&opts, &sort);
  rc = ok ? mg_query(s, coll, filter, &opts, docs, err) : mg_unencodable(err);
  json_t *v = json_object_get(json_array_get(docs, 0), field);
  if (!rc && json_is_integer(v)) *out = json_integer_value(v);
  json_decref(docs);
  bson_destroy(&opts);
  return rc;
}

static int mg_chg_floor(mg_store *s, const char *tenant, long long *floor, store_err *err) {
  bson_t f = BSON_INITIALIZER;
  int rc = BSON_APPEND_UTF8(&f, "tenant", tenant) && BSON_APPEND_UTF8(&f, "id", MG_PRUNED)
               ? mg_find_int(s, STORE_COUNTERS, &f, NULL, 0, "value", floor, err)
               : mg_unencodable(err);
  bson_destroy(&f);
  return rc;
}

/* The highest position claimed (or pruned) of the tenant, read from the log
 * itself: exact, holes or not. On MongoDB an index lookup; FerretDB v1
 * decodes and sorts the tenant's whole log in Go for it (12 s for 200k
 * entries, 50 s for 250k of 1 KiB), so a claim asks it only when the top
 * is missing or behind by more than MG_TOP_WALK (see mg_chg_claim_many),
 * and on a client of its own with the driver's default socket timeout
 * (5 min): on the pool's (MG_SOCKET_MS) such a log could never be read, a
 * tenant without a top could never claim again, and every try left the
 * server another scan to finish. */
static int mg_chg_max(mg_store *s, const char *tenant, long long *max, store_err *err) {
  bson_t f = BSON_INITIALIZER, opts = BSON_INITIALIZER, sort, proj;
  mongoc_uri_t *uri = mongoc_uri_copy(s->uri);
  mongoc_client_t *client = NULL;
  long long floor = 0;
  int rc = STORE_OK;
  *max = 0;
  if (!uri) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup;
  }
  int32_t ms = mongoc_uri_get_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, 0);
  if (ms > 0 && ms < MONGOC_DEFAULT_SOCKETTIMEOUTMS)
    mongoc_uri_set_option_as_int32(uri, MONGOC_URI_SOCKETTIMEOUTMS, MONGOC_DEFAULT_SOCKETTIMEOUTMS);
  if (!(client = mongoc_client_new_from_uri(uri))) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: cannot create a client for the change log");
    goto cleanup;
  }
  mongoc_client_set_error_api(client, MONGOC_ERROR_API_VERSION_2);
  if (!BSON_APPEND_UTF8(&f, "tenant", tenant) ||
      !bson_append_document_begin(&opts, "sort", -1, &sort) ||
      !BSON_APPEND_INT32(&sort, "id", -1) || !bson_append_document_end(&opts, &sort) ||
      !bson_append_document_begin(&opts, "projection", -1, &proj) ||
      !BSON_APPEND_INT32(&proj, "id", 1) || !bson_append_document_end(&opts, &proj) ||
      !BSON_APPEND_INT64(&opts, "limit", 1)) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  mongoc_collection_t *c = mongoc_client_get_collection(client, s->db, STORE_CHANGES);
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &f, &opts, NULL);
  const bson_t *d;
  bson_iter_t it;
  bson_error_t e;
  if (mongoc_cursor_next(cur, &d) && bson_iter_init_find(&it, d, "id") &&
      (BSON_ITER_HOLDS_INT64(&it) || BSON_ITER_HOLDS_INT32(&it)))
    *max = bson_iter_as_int64(&it);
  if (mongoc_cursor_error(cur, &e)) rc = mg_fail(err, "change log scan", &e);
  mongoc_cursor_destroy(cur);
  mongoc_collection_destroy(c);
  if (!rc) rc = mg_chg_floor(s, tenant, &floor, err);
  if (!rc && floor > *max) *max = floor;
cleanup:
  if (client) mongoc_client_destroy(client);
  mongoc_uri_destroy(uri);
  bson_destroy(&f);
  bson_destroy(&opts);
  return rc;
}

/* The top: per tenant one document {_id: tenant, value, head} in MG_TOPS,
 * value a position that was claimed (0: none known). Claims write it after
 * their insert was acknowledged, with $max, so it is never past the highest
 * entry; it may be behind it (a writer died before writing it, writes of
 * it are spread out (MG_TOP_STEP), FerretDB's $max is a read then a write,
 * so it can lose a concurrent higher one). The log above the floor is
 * dense (mg_chg_walk), so a claim tried from the top on either finds its
 * position free, and then it is one past the highest entry, or taken, and
 * then the next one is tried: it never lands below an entry, and never
 * leaves a hole. Keyed by _id in a collection of its own: FerretDB v1 runs
 * only an _id equality in SQLite (every other filter in Go over every
 * document), and reading or updating a row scans its whole table, so this
 * one stays one row per tenant; the log's own _id lookups scan the log
 * (1.2 s for one near the end of 200k entries). The head the feed found
 * (mg_chg_hint) is a field of the same row: it needs the same lookup, and
 * a collection of its own would be one more table of one row per tenant.
 * FerretDB v1 updates a document by reading it and writing it whole, so
 * a write of one field can undo a concurrent write of the other; either
 * is safe at any value it held before (a top only ever lags, as above; a
 * head that was one stays one), and such a loss costs a later start a
 * longer walk (or, for a top, mg_chg_max). Head writes are rare (a page
 * apart, and at close), so the chance of one is small. */
#define MG_TOP_STEP 128 /* positions claimed before this process writes the top again */
#define MG_TOP_WALK 256 /* positions tried one by one past a top that lags */
#define MG_CHG_TRIES (MG_TOP_WALK + MG_SEQ_TRIES)
#define MG_CHG_FRESH_US (1000 * 1000LL) /* a cached position trusted this long at most */

/* How long a position this process claimed is trusted to lie above the
 * floor. A prune (by any replica) takes only positions older than its
 * retention, and positions grow with time, so one claimed more recently is
 * above any floor; an older one may have been pruned, and a pruned position
 * is free again: a claim there would land below the floor, never to be read.
 * Past this age the floor is read first. */
static long long mg_chg_fresh_us(mg_store *s) {
  long long age = __atomic_load_n(&s->prune_age_us, __ATOMIC_RELAXED);
  return age > 0 && age / 2 < MG_CHG_FRESH_US ? age / 2 : MG_CHG_FRESH_US;
}

/* A field of the tenant's top document (0: none). */
static int mg_chg_top_get(mg_store *s, const char *tenant, const char *field, long long *v,
                          store_err *err) {
  bson_t f = BSON_INITIALIZER;
  int rc = BSON_APPEND_UTF8(&f, "_id", tenant) ? mg_find_int(s, MG_TOPS, &f, NULL, 0, field, v, err)
                                               : mg_unencodable(err);
  bson_destroy(&f);
  return rc;
}

/* Raises a field of the tenant's top document to `value` ($max): "value",
 * the top, to a position claimed; "head" to a head found (mg_changes). */
static int mg_chg_top_max(mg_store *s, const char *tenant, const char *field, long long value,
                          store_err *err) {
  bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, m, opts = BSON_INITIALIZER;
  mongoc_client_t *client;
  mongoc_collection_t *c;
  bson_error_t e;
  int rc = BSON_APPEND_UTF8(&sel, "_id", tenant) &&
                   bson_append_document_begin(&upd, "$max", -1, &m) &&
                   BSON_APPEND_INT64(&m, field, value) && bson_append_document_end(&upd, &m) &&
                   BSON_APPEND_BOOL(&opts, "upsert", true)
               ? STORE_OK
               : mg_unencodable(err);
  if (!rc && !(rc = mg_coll(s, MG_TOPS, &client, &c, err))) {
    /* Two first upserts on FerretDB both insert: the loser's duplicate
     * error leaves the winner's value, a claimed position as well. */
    if (!mongoc_collection_update_one(c, &sel, &upd, &opts, NULL, &e))
      rc = mg_fail(err, "change log top", &e);
    mg_done(s, client, c);
  }
  bson_destroy(&sel);
  bson_destroy(&upd);
  bson_destroy(&opts);
  return rc;
}

/* Where a claim of a tenant this process has no position of starts: one
 * past the top, or past the floor (never below it: pruned positions are
 * free, and an entry there would never be read). Two lookups of one row
 * each, however long the log. */
static int mg_chg_start(mg_store *s, const char *tenant, long long *pos, long long *top,
                        store_err *err) {
  long long floor = 0;
  int rc = mg_chg_top_get(s, tenant, "value", top, err);
  if (!rc) rc = mg_chg_floor(s, tenant, &floor, err);
  if (!rc) *pos = (*top > floor ? *top : floor) + 1;
  return rc;
}

/* Writes the top of a slot's tenant if this process claimed past it. */
static int mg_chg_top_flush(mg_store *s, struct mg_chg_slot *slot) {
  store_err ignored;
  int rc = STORE_OK;
  if (slot->key && slot->last > slot->top &&
      !(rc = mg_chg_top_max(s, slot->key, "value", slot->last, &ignored)))
    slot->top = slot->last;
  return rc;
}

/* One claim waiting in the queue; it lives on its caller's stack. */
typedef struct mg_claim {
  const char *tenant;
  mg_chg_item item;
  long long seq;
  int rc;
  store_err err;
  int done;          /* guarded by cq_mu */
  pthread_cond_t cv; /* signalled when done, or when it may lead */
  struct mg_claim *next;
} mg_claim;

/* Makes the claims of a group, one mg_chg_claim_many per tenant. */
static void mg_chg_claim_group(mg_store *s, mg_claim *group) {
  size_t n = 0;
  for (mg_claim *c = group; c; c = c->next)
    n++;
  mg_chg_item *items = calloc(n, sizeof *items);
  mg_claim **of = calloc(n, sizeof *of);
  long long *seqs = calloc(n, sizeof *seqs);
  for (mg_claim *c = group; c; c = c->next)
    c->rc = MG_CLAIM_PENDING;
  for (mg_claim *first = group; first; first = first->next) {
    if (first->rc != MG_CLAIM_PENDING) continue;
    size_t k = 0;
    if (!items || !of || !seqs) {
      first->rc = store_fail(&first->err, STORE_EINTERNAL, "mongodb: out of memory");
      continue;
    }
    for (mg_claim *c = first; c; c = c->next)
      if (c->rc == MG_CLAIM_PENDING && !strcmp(c->tenant, first->tenant)) {
        of[k] = c;
        items[k] = c->item;
        seqs[k++] = 0;
      }
    store_err err = {0};
    int rc = mg_chg_claim_many(s, first->tenant, items, k, seqs, &err);
    for (size_t j = 0; j < k; j++) { /* a claim made stands even if a later one failed */
      of[j]->seq = seqs[j];
      of[j]->rc = seqs[j] ? STORE_OK : rc ? rc : STORE_EINTERNAL;
      if (!seqs[j]) of[j]->err = err;
    }
  }
  free(seqs);
  free(of);
  free(items);
}

/* Step 1: inserts the pending entry at the next free position. Concurrent
 * claims of this process go to the server together: the caller at the head
 * of the queue claims everything queued behind it with one ordered insert
 * per tenant, while the next group gathers (one at a time: positions are
 * handed out in order). One by one, claims held every write of the process
 * to a round trip each. */
static int mg_chg_claim(mg_store *s, const char *tenant, int op, const char *coll, json_t *id,
                        json_t *doc, long long *seq, store_err *err) {
  mg_claim me = {.tenant = tenant, .item = {op, coll, id, doc}};
  pthread_cond_init(&me.cv, NULL);
  pthread_mutex_lock(&s->cq_mu);
  if (s->cq_tail)
    s->cq_tail->next = &me;
  else
    s->cq_head = &me;
  s->cq_tail = &me;
  while (!me.done && (s->cq_leading || s->cq_head != &me))
    pthread_cond_wait(&me.cv, &s->cq_mu);
  if (!me.done) {
    mg_claim *group = s->cq_head;
    s->cq_head = s->cq_tail = NULL;
    s->cq_leading = 1;
    pthread_mutex_unlock(&s->cq_mu);
    mg_chg_claim_group(s, group);
    pthread_mutex_lock(&s->cq_mu);
    s->cq_leading = 0;
    for (mg_claim *c = group, *next; c; c = next) {
      next = c->next; /* c may be gone once it sees done */
      c->done = 1;
      if (c != &me) pthread_cond_signal(&c->cv);
    }
    if (s->cq_head) pthread_cond_signal(&s->cq_head->cv);
  }
  pthread_mutex_unlock(&s->cq_mu);
  pthread_cond_destroy(&me.cv);
  if (me.rc == STORE_OK)
    *seq = me.seq;
  else if (err)
    *err = me.err;
  return me.rc;
}

/* The first entry of a reply's writeErrors: its index and code (-1: none). */
static void mg_first_write_error(const bson_t *reply, int64_t *index, int64_t *code) {
  bson_iter_t it, arr, f;
  *index = *code = -1;
  if (!bson_iter_init_find(&it, reply, "writeErrors") || !BSON_ITER_HOLDS_ARRAY(&it) ||
      !bson_iter_recurse(&it, &arr) || !bson_iter_next(&arr) || !BSON_ITER_HOLDS_DOCUMENT(&arr) ||
      !bson_iter_recurse(&arr, &f))
    return;
  while (bson_iter_next(&f)) {
    if (!strcmp(bson_iter_key(&f), "index")) *index = bson_iter_as_int64(&f);
    if (!strcmp(bson_iter_key(&f), "code")) *code = bson_iter_as_int64(&f);
  }
}

/* Step 1 for the n documents of a batch insert: pending entries at
 * consecutive free positions, in item order, sent as ordered inserts (one
 * round trip per run of free positions). An ordered insert stops at the
 * first position another writer won; the rest go past the highest entry,
 * as mg_chg_claim's retry does. seqs[j] is set for each claimed entry, in
 * order; on failure the ones set were claimed and are still pending.
 *
 * Past a position another writer won: to the top if it is beyond it (the
 * other writer wrote it), else one position at a time (the log is dense:
 * the first free one is one past the highest entry), sending one entry
 * per try, and after MG_TOP_WALK of those, or with no top at all (a log
 * from before the tops), to the highest entry read from the log. */
static int mg_chg_claim_many(mg_store *s, const char *tenant, const mg_chg_item *items, size_t n,
                             long long *seqs, store_err *err) {
  json_t *key = json_string(STORE_CHANGES);
  size_t slot_i = key ? mg_stripe_index(tenant, STORE_CHANGES, key) : 0;
  json_decref(key);
  struct mg_chg_slot *slot = &s->chg_last[slot_i];
  bson_t *entries = calloc(n, sizeof *entries);
  const bson_t **ptrs = calloc(n, sizeof *ptrs);
  int rc = entries && ptrs ? STORE_OK : store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  size_t done = 0;
  if (rc) goto cleanup;
  pthread_mutex_lock(&s->chg_mu);
  int known = slot->key && !strcmp(slot->key, tenant);
  long long pos = known ? slot->last + 1 : 0, top = known ? slot->top : 0, floor = 0;
  int walked = 0, met = 0, scanned = 0;
  if (known && store_now_us() - slot->last_us > mg_chg_fresh_us(s) &&
      !(rc = mg_chg_floor(s, tenant, &floor, err)) && floor >= pos)
    pos = floor + 1;
  for (int attempt = 0; !rc && done < n; attempt++) {
    long long max;
    if (attempt >= MG_CHG_TRIES) {
      rc = store_fail(err, STORE_EBUSY, "mongodb: change log claims keep losing");
      break;
    }
    if (pos == 0 && (rc = mg_chg_start(s, tenant, &pos, &top, err))) break;
    size_t k = walked ? 1 : n - done, built = 0;
    long long now = store_now_us();
    for (; built < k; built++) {
      json_t *p = json_integer(pos + (long long)built);
      char key[128];
      mg_chg_key(tenant, pos + (long long)built, key, sizeof key);
      const mg_chg_item *it = &items[done + built];
      json_t *entry = json_pack("{s:s, s:O, s:s, s:i, s:s, s:O, s:I, s:O?}", "_id", key, "id", p,
                                "st", "p", "op", it->op, "coll", it->coll, "did", it->id, "time",
                                (json_int_t)now, "doc", it->doc);
      bson_init(&entries[built]);
      bool ok = p && entry && mg_doc(&entries[built], tenant, p, entry);
      json_decref(entry);
      json_decref(p);
      ptrs[built] = &entries[built];
      if (!ok) {
        rc = mg_unencodable(err);
        built++;
        break;
      }
    }
    size_t inserted = 0;
    mongoc_client_t *client;
    mongoc_collection_t *c;
    if (!rc && !(rc = mg_coll(s, STORE_CHANGES, &client, &c, err))) {
      bson_t opts = BSON_INITIALIZER, reply;
      bson_error_t e;
      BSON_APPEND_BOOL(&opts, "ordered", true);
      if (mongoc_collection_insert_many(c, ptrs, k, &opts, &reply, &e)) {
        inserted = k;
      } else {
        int64_t index, code;
        mg_first_write_error(&reply, &index, &code);
        if (index >= 0 && (size_t)index < k && (code == 11000 || code == 11001)) {
          inserted = (size_t)index; /* the ones before it are ours */
        } else {
          rc = mg_fail(err, "change log claim", &e);
          /* Which of them landed is unknown: readers settle them as void. */
        }
      }
      bson_destroy(&reply);
      bson_destroy(&opts);
      mg_done(s, client, c);
    }
    for (size_t i = 0; i < built; i++)
      bson_destroy(&entries[i]);
    for (size_t i = 0; i < inserted; i++)
      seqs[done + i] = pos + (long long)i;
    done += inserted;
    pos += (long long)inserted;
    if (rc || done == n) break;
    if (inserted == k) { /* a walk's one entry landed: the rest follow it */
      walked = 0;
      continue;
    }
    if (inserted) walked = 0; /* pos - 1 is ours: the walk starts over from it */
    /* pos is another writer's. */
    met = 1;
    long long seen;
    if ((rc = mg_chg_top_get(s, tenant, "value", &seen, err))) break;
    if (seen > top) top = seen;
    if (seen >= pos) {
      pos = seen + 1;
      walked = 0;
    } else if (top && walked < MG_TOP_WALK) {
      pos++;
      walked++;
    } else {
      if ((rc = mg_chg_max(s, tenant, &max, err))) break;
      pos = max >= pos ? max + 1 : pos + 1;
      walked = 0;
      scanned = 1;
    }
  }
  if (done && !known) {
    /* The slot changes tenant: the one it held gets its top first. */
    char *k = strdup(tenant);
    if (k) {
      mg_chg_top_flush(s, slot);
      free(slot->key);
      *slot = (struct mg_chg_slot){.key = k};
      known = 1;
    }
  }
  if (done && known) {
    slot->last = seqs[done - 1];
    slot->last_us = store_now_us();
    if (top > slot->top) slot->top = top;
    /* Another writer met: the top goes past ours at once, so that its next
     * lost claim, on our positions, jumps past them instead of walking. */
    if (met || scanned || !slot->top || slot->last - slot->top >= MG_TOP_STEP)
      mg_chg_top_flush(s, slot);
  }
  pthread_mutex_unlock(&s->chg_mu);
cleanup:
  free(ptrs);
  free(entries);
  return rc;
}

/* A mark {tenant, id: position, st, time, doc?} (step 3). The first mark
 * of a position wins (unique (tenant, id)): a writer's late mark cannot
 * undo a reader's settlement, nor the other way round. */
static bool mg_chg_mark_doc(bson_t *b, const char *tenant, long long seq, int committed,
                            json_t *doc, long long now) {
  return BSON_APPEND_UTF8(b, "tenant", tenant) && BSON_APPEND_INT64(b, "id", seq) &&
         BSON_APPEND_UTF8(b, "st", committed ? "c" : "v") && BSON_APPEND_INT64(b, "time", now) &&
         (!doc || mg_append(b, "doc", doc, 1));
}

static int mg_chg_mark_rc(mg_store *s, const char *tenant, long long seq, int committed,
                          json_t *doc, store_err *err) {
  bson_t b = BSON_INITIALIZER;
  int rc;
  if (!mg_chg_mark_doc(&b, tenant, seq, committed, doc, store_now_us())) {
    rc = mg_unencodable(err);
  } else {
    rc = mg_ins_queued(s, MG_MARKS, &b, err);
  }
  bson_destroy(&b);
  return rc;
}

/* Step 3; a failure leaves the entry pending for readers to settle. */
static void mg_chg_mark(mg_store *s, const char *tenant, long long seq, int committed,
                        json_t *doc) {
  store_err ignored;
  mg_chg_mark_rc(s, tenant, seq, committed, doc, &ignored);
}

/* Step 3 for several entries at once (a batch insert's): one unordered
 * insert of their marks. */
static void mg_chg_mark_many(mg_store *s, const char *tenant, const long long *seqs, size_t n,
                             int committed) {
  bson_t *marks = calloc(n, sizeof *marks);
  mg_ins *ins = calloc(n, sizeof *ins);
  mg_ins **batch = calloc(n, sizeof *batch);
  long long now = store_now_us();
  size_t m = 0;
  for (size_t i = 0; marks && ins && batch && i < n; i++) {
    bson_init(&marks[m]);
    if (!mg_chg_mark_doc(&marks[m], tenant, seqs[i], committed, NULL, now)) {
      bson_destroy(&marks[m]);
      continue; /* left pending: readers settle it */
    }
    ins[m] = (mg_ins){.coll = MG_MARKS, .doc = &marks[m]};
    batch[m] = &ins[m];
    m++;
  }
  if (m) mg_ins_run(s, batch, m);
  for (size_t i = 0; i < m; i++)
    bson_destroy(&marks[i]);
  free(batch);
  free(ins);
  free(marks);
}

/* The marks of positions (from, to] of the tenant, as an object keyed by
 * position. */
static int mg_chg_marks(mg_store *s, const char *tenant, long long from, long long to, json_t **out,
                        store_err *err) {
  bson_t f = BSON_INITIALIZER, range;
  json_t *docs = json_array();
  int rc;
  *out = json_object();
  bool ok = docs && *out && BSON_APPEND_UTF8(&f, "tenant", tenant) &&
            bson_append_document_begin(&f, "id", -1, &range) &&
            BSON_APPEND_INT64(&range, "$gt", from) && BSON_APPEND_INT64(&range, "$lte", to) &&
            bson_append_document_end(&f, &range);
  rc = ok ? mg_query(s, MG_MARKS, &f, NULL, docs, err) : mg_unencodable(err);
  size_t i;
  json_t *d;
  json_array_foreach(docs, i, d) {
    char k[32];
    snprintf(k, sizeof k, "%lld", (long long)json_integer_value(json_object_get(d, "id")));
    if (!rc && json_object_set(*out, k, d))
      rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  }
  json_decref(docs);
  bson_destroy(&f);
  if (rc) {
    json_decref(*out);
    *out = NULL;
  }
  return rc;
}

/* An abandoned claim, settled from the document (see above). The image is
 * the document as it is now, for a committed write that is not a delete. */
static int mg_chg_settle(mg_store *s, const char *tenant, json_t *e, int *committed, json_t **image,
                         store_err *err) {
  const char *coll = json_string_value(json_object_get(e, "coll"));
  json_t *did = json_object_get(e, "did");
  long long seq = json_integer_value(json_object_get(e, "id"));
  json_t *doc = NULL;
  *image = NULL;
  *committed = 0;
  int rc = STORE_OK;
  if (coll && did) {
    rc = mg_get(&s->base, tenant, coll, did, &doc, err);
    if (rc == STORE_ENOTFOUND) rc = STORE_OK;
    if (rc) return rc;
    if (json_integer_value(json_object_get(e, "op")) == STORE_CHANGE_DELETE) {
      *committed = doc == NULL;
    } else if (doc) {
      /* mg_get leaves _chg out: whether it is seq is asked of the server. */
      bson_t f = BSON_INITIALIZER;
      mongoc_client_t *client;
      mongoc_collection_t *c;
      bson_error_t e;
      if (!mg_key(&f, tenant, did) || !BSON_APPEND_INT64(&f, MG_CHG, seq)) {
        rc = mg_unencodable(err);
      } else if (!(rc = mg_coll(s, coll, &client, &c, err))) {
        int64_t marked = mongoc_collection_count_documents(c, &f, NULL, NULL, NULL, &e);
        if (marked < 0) rc = mg_fail(err, "change settle", &e);
        *committed = marked > 0;
        mg_done(s, client, c);
      }
      bson_destroy(&f);
      if (*committed) *image = json_incref(doc);
    }
  }
  json_decref(doc);
  if (rc) return rc;
  rc = mg_chg_mark_rc(s, tenant, seq, *committed, *image, err);
  if (rc == STORE_EDUPLICATE) {
    /* Marked meanwhile (by its writer or another reader): that mark holds. */
    json_t *marks = NULL;
    json_decref(*image);
    *image = NULL;
    if (!(rc = mg_chg_marks(s, tenant, seq - 1, seq, &marks, err))) {
      char k[32];
      snprintf(k, sizeof k, "%lld", seq);
      json_t *m = json_object_get(marks, k);
      const char *st = json_string_value(json_object_get(m, "st"));
      *committed = st && !strcmp(st, "c");
      *image = json_incref(json_object_get(m, "doc"));
      if (!m) rc = store_fail(err, STORE_EUNAVAILABLE, "mongodb: change mark vanished");
      json_decref(marks);
    }
  }
  return rc;
}

/* Walks the tenant's log from `after` (entries and their marks, up to limit
 * entries): appends the committed changes to `changes` (NULL: positions
 * only), settles abandoned claims, and stops before a claim still in flight
 * or a hole (only ever below the floor). *reached: the last position walked;
 * *more: the page was full and walked to its end. */
static int mg_chg_walk(mg_store *s, const char *tenant, long long after, size_t limit,
                       json_t *changes, long long *reached, int *more, store_err *err) {
  bson_t f = BSON_INITIALIZER, o = BSON_INITIALIZER, gt, sort, proj;
  json_t *docs = json_array(), *marks = NULL;
  int rc;
  *reached = after;
  *more = 0;
  bool ok =
      docs && BSON_APPEND_UTF8(&f, "tenant", tenant) &&
      bson_append_document_begin(&f, "id", -1, &gt) && BSON_APPEND_INT64(&gt, "$gt", after) &&
      bson_append_document_end(&f, &gt) && bson_append_document_begin(&o, "sort", -1, &sort) &&
      BSON_APPEND_INT32(&sort, "id", 1) && bson_append_document_end(&o, &sort) &&
      BSON_APPEND_INT64(&o, "limit", (int64_t)limit) &&
      (changes || (bson_append_document_begin(&o, "projection", -1, &proj) &&
                   BSON_APPEND_INT32(&proj, "doc", 0) && bson_append_document_end(&o, &proj)));
  if (!ok) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  if ((rc = mg_query(s, STORE_CHANGES, &f, &o, docs, err))) goto cleanup;
  size_t n = json_array_size(docs);
  if (!n) goto cleanup;
  long long last = json_integer_value(json_object_get(json_array_get(docs, n - 1), "id"));
  if ((rc = mg_chg_marks(s, tenant, after, last, &marks, err))) goto cleanup;
  long long now = store_now_us();
  size_t i;
  json_t *e;
  json_array_foreach(docs, i, e) {
    long long seq = json_integer_value(json_object_get(e, "id"));
    const char *state = json_string_value(json_object_get(e, "st"));
    if (seq != *reached + 1 || !state) goto cleanup; /* a hole: only ever below the floor */
    json_t *image = json_object_get(e, "doc");
    if (!strcmp(state, "p")) {
      char k[32];
      snprintf(k, sizeof k, "%lld", seq);
      json_t *m = json_object_get(marks, k);
      const char *mst = json_string_value(json_object_get(m, "st"));
      if (mst) {
        state = mst;
        if (json_object_get(m, "doc")) image = json_object_get(m, "doc");
      }
    }
    int committed = !strcmp(state, "c");
    json_incref(image);
    if (!strcmp(state, "p")) {
      if (now - json_integer_value(json_object_get(e, "time")) < MG_SETTLE_US) {
        json_decref(image);
        goto cleanup; /* in flight: nothing after it yet */
      }
      json_t *settled = NULL;
      if ((rc = mg_chg_settle(s, tenant, e, &committed, &settled, err))) {
        json_decref(image);
        goto cleanup;
      }
      if (settled || json_integer_value(json_object_get(e, "op")) != STORE_CHANGE_DELETE) {
        json_decref(image);
        image = settled;
      } else {
        json_decref(settled);
      }
    }
    if (committed && changes) {
      json_t *ch =
          json_pack("{s:I, s:O, s:O, s:O, s:O, s:o*}", "seq", (json_int_t)seq, "time",
                    json_object_get(e, "time"), "op", json_object_get(e, "op"), "coll",
                    json_object_get(e, "coll"), "id", json_object_get(e, "did"), "doc", image);
      image = NULL;
      if (!ch || json_array_append_new(changes, ch)) {
        rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
        goto cleanup;
      }
    }
    json_decref(image);
    *reached = seq;
  }
  *more = n == limit;
cleanup:
  json_decref(marks);
  json_decref(docs);
  bson_destroy(&f);
  bson_destroy(&o);
  return rc;
}

#define MG_HEAD_PAGE 1000

/* Whether a head slot holds the tenant's hint (head_mu held). */
static int mg_head_is(const struct mg_head *slot, const char *tenant) {
  return slot->key && !strcmp(slot->key, tenant);
}

/* Gives a slot to the tenant, evicting another's hint (head_mu held).
 * Without memory the slot stays as it was: a lost hint costs a walk. */
static void mg_head_take(struct mg_head *slot, const char *tenant, long long last,
                         long long saved) {
  char *k = strdup(tenant);
  if (!k) return;
  free(slot->key);
  slot->key = k;
  slot->last = last;
  slot->saved = saved;
}

/* The slot of the tenant's head hint: a position up to which every entry
 * was seen settled (0: none yet). A tenant this process has no hint of
 * starts from the head saved in its top document: without it, the first
 * read after a start walked the whole log from the floor, a page of
 * MG_HEAD_PAGE at a time (FerretDB: more than 10 minutes for 100k
 * entries), and a feed could not start meanwhile. */
static int mg_chg_hint(mg_store *s, const char *tenant, struct mg_head **out, long long *hint,
                       store_err *err) {
  json_t *key = json_string(MG_MARKS);
  size_t slot_i = key ? mg_stripe_index(tenant, MG_MARKS, key) : 0;
  json_decref(key);
  struct mg_head *slot = *out = &s->chg_head[slot_i];
  pthread_mutex_lock(&s->head_mu);
  int known = mg_head_is(slot, tenant);
  *hint = known ? slot->last : 0;
  pthread_mutex_unlock(&s->head_mu);
  if (known) return STORE_OK;
  long long saved = 0;
  int rc = mg_chg_top_get(s, tenant, "head", &saved, err);
  if (rc) return rc;
  *hint = saved;
  pthread_mutex_lock(&s->head_mu);
  if (!mg_head_is(slot, tenant)) mg_head_take(slot, tenant, saved, saved);
  pthread_mutex_unlock(&s->head_mu);
  return STORE_OK;
}

/* Saves a slot's head if it moved past what is saved (with $max: the head
 * only grows, and any process's is one). */
static int mg_chg_head_save(mg_store *s, struct mg_head *slot, store_err *err) {
  pthread_mutex_lock(&s->head_mu);
  char *tenant = slot->key && slot->last > slot->saved ? strdup(slot->key) : NULL;
  long long h = slot->last;
  pthread_mutex_unlock(&s->head_mu);
  if (!tenant) return STORE_OK;
  int rc = mg_chg_top_max(s, tenant, "head", h, err);
  pthread_mutex_lock(&s->head_mu);
  if (!rc && mg_head_is(slot, tenant) && h > slot->saved) slot->saved = h;
  pthread_mutex_unlock(&s->head_mu);
  free(tenant);
  return rc;
}

/* Raises the hint; saves it once it is MG_HEAD_PAGE past what is saved, so
 * that a busy feed does not write on every read, and a start after a crash
 * walks about a page more than it must. */
static void mg_chg_hint_set(mg_store *s, struct mg_head *slot, const char *tenant, long long h) {
  int save = 0;
  pthread_mutex_lock(&s->head_mu);
  if (!mg_head_is(slot, tenant))
    mg_head_take(slot, tenant, h, 0);
  else if (h > slot->last)
    slot->last = h;
  save = mg_head_is(slot, tenant) && slot->last - slot->saved >= MG_HEAD_PAGE;
  pthread_mutex_unlock(&s->head_mu);
  store_err ignored; /* the next save tries again; a lost one costs a walk */
  if (save) mg_chg_head_save(s, slot, &ignored);
}

/* The head (the last position whose predecessors are all settled) is
 * walked from the hint, or from the floor. A read from a position the hint
 * covers (a watcher at the head, as a rule) is itself that walk: where its
 * page ends short, the head is. */
static int mg_changes(store *st, const char *tenant, long long after, size_t limit,
                      store_changes_page *out, store_err *err) {
  mg_store *s = MG(st);
  int rc, more = 0;
  long long h;
  /* This process's writes are in the log once they return (see
   * mg_create_write). */
  mg_marks_flush(s);
  /* The floor first: a page read after it is never behind it. */
  if ((rc = mg_chg_floor(s, tenant, &out->floor, err))) return rc;
  struct mg_head *slot;
  if ((rc = mg_chg_hint(s, tenant, &slot, &h, err))) return rc;
  if (h < out->floor) h = out->floor;
  int read = 0;
  if (after >= out->floor && after <= h) {
    if ((rc = mg_chg_walk(s, tenant, after, limit, out->changes, &out->scanned, &more, err)))
      return rc;
    read = 1;
    if (out->scanned > h) h = out->scanned;
  }
  if (!read || more) {
    do {
      if ((rc = mg_chg_walk(s, tenant, h, MG_HEAD_PAGE, NULL, &h, &more, err))) return rc;
      /* Kept (and saved) page by page: a walk cut short (an error, a
       * timeout, the process killed) goes on from there next time, not
       * from the floor again. On FerretDB v1 a page costs a scan of the
       * whole log and one of its marks (10 s at 100k entries, each near
       * the pool's socket timeout), so a long walk may not end in one go. */
      if (more) mg_chg_hint_set(s, slot, tenant, h);
    } while (more);
  }
  out->head = h;
  mg_chg_hint_set(s, slot, tenant, h);
  if (!read && after < out->head) {
    if ((rc = mg_chg_walk(s, tenant, after, limit, out->changes, &out->scanned, &more, err)))
      return rc;
    /* Settling may have moved past the head found above. */
    if (out->scanned > out->head) out->head = out->scanned;
  }
  return STORE_OK;
}

static int mg_changes_prune(store *st, long long before_us, long long *removed, store_err *err) {
  mg_store *s = MG(st);
  long long age = store_now_us() - before_us;
  __atomic_store_n(&s->prune_age_us, age > 0 ? age : 1, __ATOMIC_RELAXED);
  bson_t f = BSON_INITIALIZER, lt, o = BSON_INITIALIZER, proj;
  json_t *old = json_array(), *max = json_object();
  int rc = STORE_OK;
  bool ok = old && max && bson_append_document_begin(&f, "time", -1, &lt) &&
            BSON_APPEND_INT64(&lt, "$lt", before_us) && bson_append_document_end(&f, &lt) &&
            BSON_APPEND_UTF8(&f, "st", "c") &&
            bson_append_document_begin(&o, "projection", -1, &proj) &&
            BSON_APPEND_INT32(&proj, "tenant", 1) && BSON_APPEND_INT32(&proj, "id", 1) &&
            bson_append_document_end(&o, &proj);
  *removed = 0;
  if (!ok) {
    rc = mg_unencodable(err);
    goto cleanup;
  }
  /* Committed positions only (a pending one is still to be read): marked
   * "c", or (entries of before the marks) an entry with st "c". mg_to_json
   * drops the tenant, so it is read per document from the raw cursor. */
  mongoc_client_t *client;
  mongoc_collection_t *c;
  bson_error_t e;
  static const char *const scanned[] = {MG_MARKS, STORE_CHANGES};
  for (int k = 0; k < 2 && !rc; k++) {
    if ((rc = mg_coll(s, scanned[k], &client, &c, err))) goto cleanup;
    mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, &f, &o, NULL);
    const bson_t *d;
    while (mongoc_cursor_next(cur, &d)) {
      bson_iter_t it;
      const char *tenant = NULL;
      long long id = 0;
      if (bson_iter_init_find(&it, d, "tenant") && BSON_ITER_HOLDS_UTF8(&it))
        tenant = bson_iter_utf8(&it, NULL);
      if (bson_iter_init_find(&it, d, "id")) id = bson_iter_as_int64(&it);
      if (tenant && id > json_integer_value(json_object_get(max, tenant)))
        json_object_set_new(max, tenant, json_integer(id));
    }
    if (mongoc_cursor_error(cur, &e)) rc = mg_fail(err, "prune", &e);
    mongoc_cursor_destroy(cur);
    mg_done(s, client, c);
  }
  if (rc) goto cleanup;
  /* The watermarks first, so a reader never sees entries gone without them. */
  const char *tenant;
  json_t *v;
  json_object_foreach(max, tenant, v) {
    bson_t sel = BSON_INITIALIZER, upd = BSON_INITIALIZER, m, opts = BSON_INITIALIZER;
    bool k = BSON_APPEND_UTF8(&sel, "tenant", tenant) && BSON_APPEND_UTF8(&sel, "id", MG_PRUNED) &&
             bson_append_document_begin(&upd, "$max", -1, &m) &&
             BSON_APPEND_INT64(&m, "value", json_integer_value(v)) &&
             bson_append_document_end(&upd, &m) && BSON_APPEND_BOOL(&opts, "upsert", true);
    if (k && !(rc = mg_coll(s, STORE_COUNTERS, &client, &c, err))) {
      if (!mongoc_collection_update_one(c, &sel, &upd, &opts, NULL, &e))
        rc = mg_fail(err, "prune watermark", &e);
      mg_done(s, client, c);
    }
    bson_destroy(&sel);
    bson_destroy(&upd);
    bson_destroy(&opts);
    if (rc) goto cleanup;
    /* Entries, then their marks (a mark without its entry is never read). */
    for (int k = 1; k >= 0 && !rc; k--) {
      bson_t del = BSON_INITIALIZER, le;
      bson_t reply;
      if (BSON_APPEND_UTF8(&del, "tenant", tenant) &&
          bson_append_document_begin(&del, "id", -1, &le) &&
          BSON_APPEND_INT64(&le, "$lte", json_integer_value(v)) &&
          bson_append_document_end(&del, &le) && !(rc = mg_coll(s, scanned[k], &client, &c, err))) {
        if (!mongoc_collection_delete_many(c, &del, NULL, &reply, &e))
          rc = mg_fail(err, "prune", &e);
        else if (k == 1)
          *removed += mg_reply_count(&reply, "deletedCount");
        bson_destroy(&reply);
        mg_done(s, client, c);
      }
      bson_destroy(&del);
    }
    if (rc) goto cleanup;
  }
cleanup:
  json_decref(old);
  json_decref(max);
  bson_destroy(&f);
  bson_destroy(&o);
  return rc;
}

/* ---- open / close ---------------------------------------------------------- */

/* The createIndexes command for one index, named the way Mongo names it by
 * default (tenant_1_createdAt_1). One index per command: FerretDB v1
 * mishandles a batch in which several indexes already exist. An existing
 * identical index is not an error, so running it again is harmless. */
static bool mg_index_cmd(bson_t *cmd, const char *coll, const char *const *fields, size_t n,
                         int unique) {
  bson_t arr, spec, key;
  char name[1024] = "tenant_1";
  bson_init(cmd);
  bool ok = BSON_APPEND_UTF8(cmd, "createIndexes", coll) &&
            bson_append_array_begin(cmd, "indexes", -1, &arr) &&
            bson_append_document_begin(&arr, "0", -1, &spec) &&
            bson_append_document_begin(&spec, "key", -1, &key) &&
            BSON_APPEND_INT32(&key, "tenant", 1);
  for (size_t j = 0; ok && j < n; j++) {
    size_t len = strlen(name);
    ok = bson_append_int32(&key, fields[j], -1, 1);
    snprintf(name + len, sizeof name - len, "_%s_1", fields[j]);
  }
  ok = ok && bson_append_document_end(&spec, &key) && BSON_APPEND_UTF8(&spec, "name", name);
  if (ok && unique) ok = BSON_APPEND_BOOL(&spec, "unique", true);
  return ok && bson_append_document_end(&arr, &spec) && bson_append_array_end(cmd, &arr);
}

/* (tenant, id) unique on every collection and the counters, then the schema's. */
static int mg_index_cmds(mg_store *s, const store_schema *schema, store_err *err) {
  static const char *const key_fields[] = {"id"};
  size_t total = 4;
  for (size_t i = 0; i < schema->n_collections; i++)
    total += 1 + schema->collections[i].n_indexes;
  if (!(s->index_cmds = calloc(total, sizeof *s->index_cmds)))
    return store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  static const char *const claim_fields[] = {"seq", "n"};
  bool ok = mg_index_cmd(&s->index_cmds[s->n_index_cmds++], STORE_COUNTERS, key_fields, 1, 1) &&
            mg_index_cmd(&s->index_cmds[s->n_index_cmds++], STORE_COUNTERS, claim_fields, 2, 0) &&
            mg_index_cmd(&s->index_cmds[s->n_index_cmds++], STORE_CHANGES, key_fields, 1, 1) &&
            mg_index_cmd(&s->index_cmds[s->n_index_cmds++], MG_MARKS, key_fields, 1, 1);
  for (size_t i = 0; ok && i < schema->n_collections; i++) {
    const store_collection *c = &schema->collections[i];
    ok = mg_index_cmd(&s->index_cmds[s->n_index_cmds++], c->name, key_fields, 1, 1);
    for (size_t j = 0; ok && j < c->n_indexes; j++) {
      size_t n = 0;
      while (n < STORE_MAX_INDEX_FIELDS && c->indexes[j].fields[n])
        n++;
      ok = mg_index_cmd(&s->index_cmds[s->n_index_cmds++], c->name, c->indexes[j].fields, n,
                        c->indexes[j].unique);
    }
  }
  return ok ? STORE_OK : mg_unencodable(err);
}

static void mg_close(store *st) {
  mg_store *s = MG(st);
  /* Calls are over: the marker writes what is queued, then ends. */
  pthread_mutex_lock(&s->mk_mu);
  s->mk_stop = 1;
  pthread_cond_signal(&s->mk_work);
  pthread_mutex_unlock(&s->mk_mu);
  if (s->mk_started) pthread_join(s->mk_thread, NULL);
  free(s->mk_q);
  /* The tops of what this process claimed, so that the next start finds
   * its position at once; if the server is gone, the next start walks. */
  int gone = !s->pool;
  for (int i = 0; !gone && i < MG_STRIPES; i++)
    gone = mg_chg_top_flush(s, &s->chg_last[i]) != STORE_OK;
  /* The heads found, likewise for the next start's first feed read. One
   * failed write is enough: each waits out the server selection timeout. */
  store_err ignored;
  for (int i = 0; !gone && i < MG_STRIPES; i++)
    gone = mg_chg_head_save(s, &s->chg_head[i], &ignored) != STORE_OK;
  if (s->pool) mongoc_client_pool_destroy(s->pool);
  mongoc_uri_destroy(s->uri);
  for (size_t i = 0; i < s->n_index_cmds; i++)
    bson_destroy(&s->index_cmds[i]);
  free(s->index_cmds);
  for (int i = 0; i < s->n_stripes; i++)
    pthread_mutex_destroy(&s->stripes[i]);
  for (int i = 0; i < MG_STRIPES; i++) {
    free(s->seqs[i].key);
    free(s->chg_last[i].key);
    free(s->chg_head[i].key);
  }
  pthread_mutex_destroy(&s->chg_mu);
  pthread_mutex_destroy(&s->cq_mu);
  pthread_mutex_destroy(&s->head_mu);
  pthread_mutex_destroy(&s->index_mu);
  pthread_mutex_destroy(&s->q_mu);
  pthread_mutex_destroy(&s->cr_mu);
  pthread_mutex_destroy(&s->mk_mu);
  pthread_cond_destroy(&s->mk_work);
  pthread_cond_destroy(&s->mk_idle);
  free(s->db);
  free(s);
}

static pthread_once_t mg_once = PTHREAD_ONCE_INIT;

/* The driver initialises itself as it loads; this is for a build where it
 * does not. MONGOC_DISABLE_SHM is set by store.c before it loads the
 * module. */
static void mg_init(void) {
  mongoc_init();
}

/* The driver's own plain-text lines would break the one-JSON-object-per-line
 * log: its warnings and errors go to the store's driver log. */
static store_log_fn mg_log_fn;

static void mg_driver_log(mongoc_log_level_t level, const char *domain, const char *message,
                          void *data) {
  (void)data;
  if (level > MONGOC_LOG_LEVEL_WARNING) return;
  mg_log_fn(level <= MONGOC_LOG_LEVEL_CRITICAL, domain ? domain : "mongoc", message);
}

static void mg_set_log(store_log_fn fn) {
  mg_log_fn = fn;
  mongoc_log_set_handler(mg_driver_log, NULL);
}

static void mg_set_default(mongoc_uri_t *uri, const char *option, int32_t value) {
  if (!mongoc_uri_has_option(uri, option)) mongoc_uri_set_option_as_int32(uri, option, value);
}

static int mg_open(const char *url, const store_schema *schema, store **out, store_err *err) {
  bson_error_t e;
  int rc = STORE_OK;
  pthread_once(&mg_once, mg_init);
  mg_store *s = calloc(1, sizeof *s);
  if (!s) return store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
  pthread_mutex_init(&s->index_mu, NULL);
  pthread_mutex_init(&s->q_mu, NULL);
  pthread_mutex_init(&s->cr_mu, NULL);
  pthread_mutex_init(&s->mk_mu, NULL);
  pthread_cond_init(&s->mk_work, NULL);
  pthread_cond_init(&s->mk_idle, NULL);
  pthread_mutex_init(&s->chg_mu, NULL);
  pthread_mutex_init(&s->cq_mu, NULL);
  pthread_mutex_init(&s->head_mu, NULL);
  for (; s->n_stripes < MG_STRIPES; s->n_stripes++)
    pthread_mutex_init(&s->stripes[s->n_stripes], NULL);
  if (!(s->uri = mongoc_uri_new_with_error(url, &e))) {
    rc = store_fail(err, STORE_EINVAL, "mongodb URI: %s", e.message);
    goto cleanup_store;
  }
  mg_set_default(s->uri, MONGOC_URI_SERVERSELECTIONTIMEOUTMS, MG_SERVER_SELECTION_MS);
  mg_set_default(s->uri, MONGOC_URI_CONNECTTIMEOUTMS, MG_CONNECT_MS);
  mg_set_default(s->uri, MONGOC_URI_SOCKETTIMEOUTMS, MG_SOCKET_MS);
  if (!mongoc_uri_get_appname(s->uri)) mongoc_uri_set_appname(s->uri, "events-store");
  const char *db = mongoc_uri_get_database(s->uri);
  if (!(s->db = strdup(db && *db ? db : "events"))) {
    rc = store_fail(err, STORE_EINTERNAL, "mongodb: out of memory");
    goto cleanup_store;
  }
  if ((rc = mg_index_cmds(s, schema, err))) goto cleanup_store;
  if (!(s->pool = mongoc_client_pool_new(s->uri))) {
    rc = store_fail(err, STORE_EINVAL, "mongodb: cannot create a client pool for this URI");
    goto cleanup_store;
  }
  /* Must precede the first pop; version 2 reports server errors under
   * MONGOC_ERROR_SERVER with the server's own codes. */
  mongoc_client_pool_set_error_api(s->pool, MONGOC_ERROR_API_VERSION_2);

  /* Indexes now if the server is there; if it is not, the first call after
   * it comes back creates them (calls fail as unavailable until then). */
  mongoc_client_t *client = mongoc_client_pool_pop(s->pool);
  rc = mg_ensure_indexes(s, client, err);
  mongoc_client_pool_push(s->pool, client);
  if (rc == STORE_EUNAVAILABLE) {
    if (err) {
      err->code = STORE_OK;
      err->msg[0] = '\0';
    }
    rc = STORE_OK;
  }
  if (rc) goto cleanup_store;
  *out = &s->base;
  return STORE_OK;
cleanup_store:
  mg_close(&s->base);
  return rc;
}

const store_engine_ops store_mongo_engine = {
    .name = "mongodb",
    .remote = 1,
    .open = mg_open,
    .close = mg_close,
    .ping = mg_ping,
    .next_id = mg_next_id,
    .insert = mg_insert_logged,
    .insert_many = mg_insert_many,
    .next_ids = mg_next_ids,
    .get = mg_get,
    .replace = mg_replace,
    .patch = mg_patch,
    .del = mg_delete,
    .find = mg_find,
    .count = mg_count,
    .delete_where = mg_delete_where,
    .changes = mg_changes,
    .changes_prune = mg_changes_prune,
    .set_log = mg_set_log,
};
