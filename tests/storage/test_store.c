/* test_store.c - the storage conformance suite: every store.h operation and
 * query form, run against a real engine (never a mock).
 *
 *   test_store sqlite    SQLite in a fresh temporary directory
 *   test_store mongodb   FerretDB ($EVENTS_FERRETDB_BIN) started here on a free
 *                        127.0.0.1 port, stopped and restarted by the outage test
 *
 * Expected query results come from a small reference evaluator in this file,
 * so each query form is checked against an independent computation rather
 * than hand-written lists. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <mongoc/mongoc.h>

#include "store.h"
#include "store_int.h" /* store_cursor_seal, to forge checksum-valid tokens */

/* ---- fixture --------------------------------------------------------------- */

static const store_index events_ix[] = {
    {{"name", NULL}, 0},
    {{"createdAt", NULL}, 0},
    {{"kind", "ext", NULL}, 1},
    {{"rel.account", NULL}, 0},
};
static const store_index items_ix[] = {
    {{"t", NULL}, 0},
    {{"s", "f", NULL}, 0},
    {{"rel.account", NULL}, 0},
};
static const store_index props_ix[] = {{{"parent", NULL}, 0}};
static const store_index feed_ix[] = {{{"t", NULL}, 0}};
static const store_collection collections[] = {
    {"events", events_ix, sizeof events_ix / sizeof *events_ix},
    {"items", items_ix, sizeof items_ix / sizeof *items_ix},
    {"props", props_ix, 1},
    {"feed", feed_ix, 1}, /* its own collection: FerretDB scans whole collections */
};
static const store_schema schema = {collections, 4};

static const char *g_engine;
static char g_tmp[PATH_MAX];
static char g_url[PATH_MAX + 64];
static char g_self[PATH_MAX];
static store *g_st;

static const char *g_fdb_bin;
static char g_fdb_dir[PATH_MAX + 16];
static int g_fdb_port;
static pid_t g_fdb_pid;

static int is_mongo(void) {
  return !strcmp(g_engine, "mongodb");
}

static double g_test_start;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static void sleep_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

/* Fails the test with the store's message when a call returns the wrong code.
 * Needs a `store_err e` in scope. */
#define CHK(want, expr)                                                                            \
  do {                                                                                             \
    int rc_ = (expr);                                                                              \
    if (rc_ != (want)) {                                                                           \
      print_error("%s:%d: %s returned %d (%s), want %d\n", __FILE__, __LINE__, #expr, rc_, e.msg,  \
                  (want));                                                                         \
      fail();                                                                                      \
    }                                                                                              \
  } while (0)

static json_t *J(const char *text) {
  json_error_t jerr;
  json_t *v = json_loads(text, JSON_DECODE_ANY, &jerr);
  if (!v) {
    print_error("bad test JSON %s: %s\n", text, jerr.text);
    fail();
  }
  return v;
}

static void insert_text(const char *tenant, const char *coll, const char *text) {
  store_err e;
  json_t *doc = J(text);
  int rc = store_insert(g_st, tenant, coll, doc, &e);
  json_decref(doc);
  if (rc != STORE_OK) {
    print_error("insert %s: %d %s\n", text, rc, e.msg);
    fail();
  }
}

/* "1,2,3" (integer ids) or "a,b" (string ids), for readable comparisons. */
static void ids_str(json_t *docs, char *buf, size_t size) {
  size_t i, off = 0;
  json_t *d;
  buf[0] = '\0';
  json_array_foreach(docs, i, d) {
    json_t *id = json_object_get(d, "id");
    int n = json_is_integer(id) ? snprintf(buf + off, size - off, "%s%lld", i ? "," : "",
                                           (long long)json_integer_value(id))
                                : snprintf(buf + off, size - off, "%s%s", i ? "," : "",
                                           json_is_string(id) ? json_string_value(id) : "?");
    if (n < 0 || (size_t)n >= size - off) return;
    off += (size_t)n;
  }
}

/* ---- FerretDB process ------------------------------------------------------ */

static int free_port(void) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof a;
  int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;
  if (fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0 &&
      getsockname(fd, (struct sockaddr *)&a, &len) == 0)
    port = ntohs(a.sin_port);
  if (fd >= 0) close(fd);
  return port;
}

static int port_open(int port) {
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_port = htons((uint16_t)port),
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
  if (fd >= 0) close(fd);
  return ok;
}

static int fdb_start(void) {
  char addr[64];
  snprintf(addr, sizeof addr, "127.0.0.1:%d", g_fdb_port);
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* never outlive a crashed test */
    execl(g_fdb_bin, g_fdb_bin, "-addr", addr, "-dir", g_fdb_dir, (char *)NULL);
    fprintf(stderr, "exec %s: %s\n", g_fdb_bin, strerror(errno));
    _exit(127);
  }
  g_fdb_pid = pid;
  for (double t0 = now_s(); now_s() - t0 < 30;) {
    int status;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      g_fdb_pid = 0;
      fprintf(stderr, "events-ferretdb exited during start-up (status %d)\n", status);
      return -1;
    }
    if (port_open(g_fdb_port)) return 0;
    sleep_ms(50);
  }
  fprintf(stderr, "events-ferretdb did not listen on %s\n", addr);
  return -1;
}

static void fdb_stop(void) {
  if (g_fdb_pid <= 0) return;
  kill(g_fdb_pid, SIGTERM);
  for (double t0 = now_s(); now_s() - t0 < 10; sleep_ms(20))
    if (waitpid(g_fdb_pid, NULL, WNOHANG) == g_fdb_pid) {
      g_fdb_pid = 0;
      return;
    }
  kill(g_fdb_pid, SIGKILL);
  waitpid(g_fdb_pid, NULL, 0);
  g_fdb_pid = 0;
}

/* ---- reference evaluator ----------------------------------------------------- */

static int ref_rank(json_t *v) {
  if (!v || json_is_null(v)) return 0;
  if (json_is_number(v)) return 1;
  if (json_is_string(v)) return 2;
  return 3; /* booleans: after strings, as in MongoDB */
}

static int ref_cmp(json_t *a, json_t *b) {
  int ra = ref_rank(a), rb = ref_rank(b);
  if (ra != rb) return ra < rb ? -1 : 1;
  switch (ra) {
  case 1: {
    double x = json_number_value(a), y = json_number_value(b);
    return x < y ? -1 : x > y;
  }
  case 2: {
    int c = strcmp(json_string_value(a), json_string_value(b));
    return c < 0 ? -1 : c > 0;
  }
  case 3:
    return json_is_true(a) - json_is_true(b);
  default:
    return 0;
  }
}

static int ref_match1(json_t *doc, const store_cond *c) {
  json_t *v = store_doc_path(doc, c->field);
  int absent = !v || json_is_null(v);
  switch (c->op) {
  case STORE_EQ:
    if (!c->value || json_is_null(c->value)) return absent;
    return !absent && ref_rank(v) == ref_rank(c->value) && ref_cmp(v, c->value) == 0;
  case STORE_IN: {
    size_t i;
    json_t *x;
    json_array_foreach(c->value, i,
                       x) if (!absent && ref_rank(v) == ref_rank(x) && ref_cmp(v, x) == 0) return 1;
    return 0;
  }
  case STORE_GT:
  case STORE_GTE:
  case STORE_LT:
  case STORE_LTE: {
    if (absent || ref_rank(v) != ref_rank(c->value)) return 0;
    int r = ref_cmp(v, c->value);
    return c->op == STORE_GT    ? r > 0
           : c->op == STORE_GTE ? r >= 0
           : c->op == STORE_LT  ? r < 0
                                : r <= 0;
  }
  case STORE_EXISTS:
    return !absent;
  case STORE_MISSING:
    return absent;
  case STORE_HAS:
  case STORE_HAS_ANY: {
    size_t i, j;
    json_t *m, *x;
    json_array_foreach(v, i, m) {
      if (c->op == STORE_HAS && ref_rank(m) == ref_rank(c->value) && ref_cmp(m, c->value) == 0)
        return 1;
      if (c->op == STORE_HAS_ANY)
        json_array_foreach(c->value, j,
                           x) if (ref_rank(m) == ref_rank(x) && ref_cmp(m, x) == 0) return 1;
    }
    return 0;
  }
  case STORE_NONEMPTY:
    return json_array_size(v) > 0;
  case STORE_CONTAINS: {
    if (!json_is_string(v)) return 0;
    const char *h = json_string_value(v), *n = json_string_value(c->value);
    for (size_t i = 0; h[i]; i++)
      if (strncasecmp(h + i, n, strlen(n)) == 0) return 1;
    return !*n;
  }
  }
  return 0;
}

static int ref_expr(json_t *doc, const store_expr *e) {
  switch (e->kind) {
  case STORE_X_COND:
    return ref_match1(doc, &e->cond);
  case STORE_X_NOT:
    return !ref_expr(doc, &e->operands[0]);
  case STORE_X_AND:
    for (size_t i = 0; i < e->n_operands; i++)
      if (!ref_expr(doc, &e->operands[i])) return 0;
    return 1;
  case STORE_X_OR:
    for (size_t i = 0; i < e->n_operands; i++)
      if (ref_expr(doc, &e->operands[i])) return 1;
    return 0;
  }
  return 0;
}

static const store_order *ref_order;
static size_t ref_n_order;

static int ref_sort_cmp(const void *pa, const void *pb) {
  json_t *a = *(json_t *const *)pa, *b = *(json_t *const *)pb;
  int has_id = 0;
  for (size_t i = 0; i < ref_n_order; i++) {
    int r = ref_cmp(store_doc_path(a, ref_order[i].field), store_doc_path(b, ref_order[i].field));
    if (!strcmp(ref_order[i].field, "id")) has_id = 1;
    if (r) return ref_order[i].desc ? -r : r;
    if (has_id) return 0;
  }
  return ref_cmp(json_object_get(a, "id"), json_object_get(b, "id"));
}

static json_t *ref_select(json_t *all, const store_cond *conds, size_t nc, const store_order *order,
                          size_t no) {
  json_t *tmp[512];
  size_t n = 0, i;
  json_t *d;
  json_array_foreach(all, i, d) {
    int ok = 1;
    for (size_t k = 0; k < nc; k++)
      ok = ok && ref_match1(d, &conds[k]);
    if (ok && n < 512) tmp[n++] = d;
  }
  ref_order = order;
  ref_n_order = no;
  qsort(tmp, n, sizeof *tmp, ref_sort_cmp);
  json_t *out = json_array();
  for (i = 0; i < n; i++)
    json_array_append(out, tmp[i]);
  return out;
}

static json_t *slice(json_t *arr, size_t from, size_t count) {
  json_t *out = json_array();
  for (size_t i = from; i < json_array_size(arr) && i < from + count; i++)
    json_array_append(out, json_array_get(arr, i));
  return out;
}

/* ---- basics ------------------------------------------------------------------ */

static void test_open_and_arguments(void **state) {
  (void)state;
  store_err e;
  store *st = NULL;
  assert_string_equal(store_engine(g_st), g_engine);
  CHK(STORE_OK, store_ping(g_st, &e));

  CHK(STORE_EINVAL, store_open("postgres://x", &schema, &st, &e));
  CHK(STORE_EINVAL, store_open("mongodb://[::1", &schema, &st, &e));
  CHK(STORE_EINVAL, store_open("sqlite:", &schema, &st, &e));
  store_collection bad_name[] = {{"no-dash", NULL, 0}};
  store_schema bad = {bad_name, 1};
  CHK(STORE_EINVAL, store_open(g_url, &bad, &st, &e));
  store_collection reserved[] = {{"counters", NULL, 0}};
  store_schema bad2 = {reserved, 1};
  CHK(STORE_EINVAL, store_open(g_url, &bad2, &st, &e));
  store_index bad_ix[] = {{{"a'b", NULL}, 0}};
  store_collection bad_ix_c[] = {{"x", bad_ix, 1}};
  store_schema bad3 = {bad_ix_c, 1};
  CHK(STORE_EINVAL, store_open(g_url, &bad3, &st, &e));
  assert_null(st);

  /* Re-opening with the same schema is idempotent (indexes already there). */
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  CHK(STORE_OK, store_ping(st, &e));
  store_close(st);

  json_t *doc = J("{\"id\":1}"), *id = json_integer(1), *out = NULL;
  CHK(STORE_EINVAL, store_insert(g_st, "args", "nope", doc, &e));
  CHK(STORE_EINVAL, store_insert(g_st, "", "items", doc, &e));
  CHK(STORE_EINVAL, store_insert(g_st, NULL, "items", doc, &e));
  CHK(STORE_EINVAL, store_get(g_st, "args", "nope", id, &out, &e));
  json_t *bad_docs[] = {J("{\"name\":\"no id\"}"), J("{\"id\":1.5}"),
                        J("{\"id\":null}"),        J("{\"id\":1,\"tenant\":\"x\"}"),
                        J("{\"id\":1,\"_id\":2}"), J("[1]")};
  for (size_t i = 0; i < sizeof bad_docs / sizeof *bad_docs; i++) {
    CHK(STORE_EINVAL, store_insert(g_st, "args", "items", bad_docs[i], &e));
    json_decref(bad_docs[i]);
  }
  json_t *real_id = json_real(1.0);
  CHK(STORE_EINVAL, store_get(g_st, "args", "items", real_id, &out, &e));
  json_decref(real_id);

  store_page page;
  store_cond bad_field = {"a'b", STORE_EQ, id};
  store_query q = {.conds = &bad_field, .n_conds = 1};
  CHK(STORE_EINVAL, store_find(g_st, "args", "items", &q, &page, &e));
  store_cond reserved_field = {"tenant", STORE_EQ, id};
  q.conds = &reserved_field;
  CHK(STORE_EINVAL, store_find(g_st, "args", "items", &q, &page, &e));
  store_cond in_scalar = {"n", STORE_IN, id};
  q.conds = &in_scalar;
  CHK(STORE_EINVAL, store_find(g_st, "args", "items", &q, &page, &e));
  json_t *obj = J("{}");
  store_cond gt_obj = {"n", STORE_GT, obj};
  q.conds = &gt_obj;
  CHK(STORE_EINVAL, store_find(g_st, "args", "items", &q, &page, &e));
  json_decref(obj);
  store_order bad_order = {"x y", 0};
  store_query q2 = {.order = &bad_order, .n_order = 1};
  CHK(STORE_EINVAL, store_find(g_st, "args", "items", &q2, &page, &e));
  long long n = -1;
  CHK(STORE_EINVAL, store_next_id(g_st, "args", "", &n, &e));
  json_decref(doc);
  json_decref(id);
}

static void test_crud(void **state) {
  (void)state;
  store_err e;
  const char *T = "crud";
  const char *full =
      "{\"id\":1,\"name\":\"a\",\"n\":1.5,\"b\":true,\"f\":false,\"z\":null,"
      "\"arr\":[1,\"x\",{\"k\":[]},null,2.25],\"obj\":{\"x\":{\"y\":2}},"
      "\"big\":4611686018427387904,\"neg\":-7,\"s\":\"\\u00fcn\\u00efc\\u00f6de \\\"q\\\"\"}";
  json_t *doc = J(full), *id1 = json_integer(1), *out = NULL;
  CHK(STORE_OK, store_insert(g_st, T, "items", doc, &e));
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  assert_true(json_equal(out, doc));
  json_decref(out);
  CHK(STORE_EDUPLICATE, store_insert(g_st, T, "items", doc, &e));
  json_decref(doc);

  /* Free-form JSON round-trips whatever its member names and nesting. */
  doc = J("{\"id\":\"odd\",\"payload\":{\"a.b\":1,\"$x\":{\"$y\":2},\"\":3,\"%\":4,"
          "\"%25\":5,\"%A\":[6],\"%2E\":7,\"x$.%\":8},\"grid\":[[1,[2,[]]],{\"k\":[[]]},[]],"
          "\"deep\":{\"l1\":{\"l2\":{\"l3\":[{\"l4\":[[null,true,1.5]]}]}}}}");
  json_t *odd = json_string("odd");
  CHK(STORE_OK, store_insert(g_st, T, "items", doc, &e));
  CHK(STORE_OK, store_get(g_st, T, "items", odd, &out, &e));
  if (!json_equal(out, doc)) {
    char *a = json_dumps(out, JSON_COMPACT), *b = json_dumps(doc, JSON_COMPACT);
    print_error("round trip:\n  got  %s\n  want %s\n", a, b);
    free(a);
    free(b);
    fail();
  }
  json_decref(out);
  json_t *oddset = J("{\"payload\":{\"new.key\":[[1]]}}");
  CHK(STORE_OK, store_patch(g_st, T, "items", odd, oddset, &out, &e));
  assert_true(json_equal(json_object_get(out, "payload"), json_object_get(oddset, "payload")));
  json_decref(out);
  json_decref(oddset);
  CHK(STORE_OK, store_delete(g_st, T, "items", odd, &e));
  json_decref(odd);
  json_decref(doc);

  /* Nesting: 39 levels below the document are kept, 40 refused, alike. */
  for (int levels = 39; levels <= 40; levels++) {
    char text[256];
    int n = snprintf(text, sizeof text, "{\"id\":\"nest%d\",\"a\":", levels);
    for (int i = 0; i < levels; i++)
      text[n++] = '[';
    for (int i = 0; i < levels; i++)
      text[n++] = ']';
    snprintf(text + n, sizeof text - (size_t)n, "}");
    doc = J(text);
    CHK(levels == 39 ? STORE_OK : STORE_EINVAL, store_insert(g_st, T, "items", doc, &e));
    json_t *nid = json_object_get(doc, "id");
    if (levels == 39) {
      CHK(STORE_OK, store_get(g_st, T, "items", nid, &out, &e));
      assert_true(json_equal(out, doc));
      json_decref(out);
      CHK(STORE_OK, store_delete(g_st, T, "items", nid, &e));
    }
    json_decref(doc);
  }

  /* String and integer ids are distinct keys. */
  insert_text(T, "items", "{\"id\":\"1\",\"name\":\"string one\"}");
  json_t *sid = json_string("1"), *id2 = json_integer(2);
  CHK(STORE_OK, store_get(g_st, T, "items", sid, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "name")), "string one");
  json_decref(out);
  CHK(STORE_ENOTFOUND, store_get(g_st, T, "items", id2, &out, &e));
  assert_null(out);

  /* Replace swaps the whole document. */
  doc = J("{\"id\":1,\"name\":\"b\",\"keep\":1}");
  CHK(STORE_OK, store_replace(g_st, T, "items", doc, &e));
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  assert_true(json_equal(out, doc));
  json_decref(out);
  json_decref(doc);
  doc = J("{\"id\":2,\"name\":\"nobody\"}");
  CHK(STORE_ENOTFOUND, store_replace(g_st, T, "items", doc, &e));
  json_decref(doc);

  /* Patch: set, nested creation, removal (null), dotted paths. */
  json_t *set = J("{\"name\":\"c\",\"obj.x.y\":3,\"keep\":null,\"gone\":null,\"arr\":[1]}");
  CHK(STORE_OK, store_patch(g_st, T, "items", id1, set, &out, &e));
  json_t *want = J("{\"id\":1,\"name\":\"c\",\"obj\":{\"x\":{\"y\":3}},\"arr\":[1]}");
  assert_true(json_equal(out, want));
  json_decref(out);
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  assert_true(json_equal(out, want));
  json_decref(out);
  json_decref(want);
  json_decref(set);
  set = J("{\"obj.x.y\":null,\"obj.w\":\"w\"}");
  CHK(STORE_OK, store_patch(g_st, T, "items", id1, set, NULL, &e));
  json_decref(set);
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  want = J("{\"id\":1,\"name\":\"c\",\"obj\":{\"x\":{},\"w\":\"w\"},\"arr\":[1]}");
  assert_true(json_equal(out, want));
  json_decref(want);
  json_decref(out);
  /* An empty patch still reports the document (or its absence). */
  set = J("{}");
  CHK(STORE_OK, store_patch(g_st, T, "items", id1, set, &out, &e));
  assert_int_equal(json_integer_value(json_object_get(out, "id")), 1);
  json_decref(out);
  CHK(STORE_ENOTFOUND, store_patch(g_st, T, "items", id2, set, &out, &e));
  json_decref(set);
  set = J("{\"name\":\"x\"}");
  CHK(STORE_ENOTFOUND, store_patch(g_st, T, "items", id2, set, &out, &e));
  assert_null(out);
  json_decref(set);
  const char *bad_sets[] = {"{\"id\":2}",          "{\"tenant\":\"x\"}", "{\"_id\":1}",
                            "{\"a\":1,\"a.b\":2}", "{\"a..b\":1}",       "{\"$set\":1}",
                            "{\"name.x\":1}"};
  for (size_t i = 0; i < sizeof bad_sets / sizeof *bad_sets; i++) {
    set = J(bad_sets[i]);
    int rc = store_patch(g_st, T, "items", id1, set, &out, &e);
    if (rc != STORE_EINVAL) {
      print_error("patch %s: %d (%s), want EINVAL\n", bad_sets[i], rc, e.msg);
      fail();
    }
    json_decref(set);
  }
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "name")), "c");
  json_decref(out);

  CHK(STORE_OK, store_delete(g_st, T, "items", id1, &e));
  CHK(STORE_ENOTFOUND, store_get(g_st, T, "items", id1, &out, &e));
  CHK(STORE_ENOTFOUND, store_delete(g_st, T, "items", id1, &e));
  CHK(STORE_OK, store_delete(g_st, T, "items", sid, &e));
  long long n = -1;
  CHK(STORE_OK, store_count(g_st, T, "items", NULL, 0, &n, &e));
  assert_int_equal(n, 0);
  json_decref(sid);
  json_decref(id1);
  json_decref(id2);
}

static void test_unique_index(void **state) {
  (void)state;
  store_err e;
  const char *T = "uniq";
  json_t *out, *id2 = json_integer(2), *id1 = json_integer(1);
  insert_text(T, "events", "{\"id\":1,\"kind\":\"k\",\"ext\":\"e1\",\"name\":\"one\"}");
  insert_text(T, "events", "{\"id\":2,\"kind\":\"k\",\"ext\":\"e2\"}");
  json_t *dup = J("{\"id\":3,\"kind\":\"k\",\"ext\":\"e1\"}");
  CHK(STORE_EDUPLICATE, store_insert(g_st, T, "events", dup, &e));
  CHK(STORE_OK, store_insert(g_st, "uniq-other", "events", dup, &e)); /* per tenant */
  long long n = 0;
  CHK(STORE_OK, store_count(g_st, T, "events", NULL, 0, &n, &e));
  assert_int_equal(n, 2);

  json_t *rep = J("{\"id\":2,\"kind\":\"k\",\"ext\":\"e1\"}");
  CHK(STORE_EDUPLICATE, store_replace(g_st, T, "events", rep, &e));
  json_t *set = J("{\"ext\":\"e1\"}");
  CHK(STORE_EDUPLICATE, store_patch(g_st, T, "events", id2, set, &out, &e));
  CHK(STORE_OK, store_get(g_st, T, "events", id2, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "ext")), "e2");
  json_decref(out);

  CHK(STORE_OK, store_delete(g_st, T, "events", id1, &e));
  CHK(STORE_OK, store_insert(g_st, T, "events", dup, &e));
  json_decref(set);
  json_decref(rep);
  json_decref(dup);
  json_decref(id1);
  json_decref(id2);
}

/* ---- queries ----------------------------------------------------------------- */

#define QN 30

static json_t *query_docs(void) {
  static const char *names[] = {"apple", "banana", "cherry", "date", "elder", "fig", "grape"};
  json_t *all = json_array();
  for (int i = 1; i <= QN; i++) {
    json_t *d = json_pack("{s:i, s:i, s:s, s:b, s:{s:i}, s:I}", "id", i, "n", i % 5, "s",
                          names[i % 7], "b", i % 2 == 0, "rel", "account", i % 4, "t",
                          (json_int_t)1700000000000000LL + (json_int_t)((i * 7) % QN) * 1000);
    /* numbers of both kinds in one field */
    json_object_set_new(d, "f", i % 3 == 0 ? json_integer(i) : json_real(i + 0.25));
    if (i % 3 == 0) json_object_set_new(d, "opt", i % 6 == 0 ? json_null() : json_integer(i));
    json_array_append_new(all, d);
  }
  return all;
}

static void expect_ids(json_t *got, json_t *want, const char *what) {
  char g[2048], w[2048];
  ids_str(got, g, sizeof g);
  ids_str(want, w, sizeof w);
  if (strcmp(g, w) != 0) {
    print_error("%s:\n  got  [%s]\n  want [%s]\n", what, g, w);
    fail();
  }
}

static char *dup_or_null(const char *s) {
  return s ? strdup(s) : NULL;
}

/* Full result, count, offset+limit, and keyset pages both ways. */
static void check_query(const char *T, json_t *all, const store_cond *conds, size_t nc,
                        const store_order *order, size_t no, const char *label) {
  store_err e;
  store_page page;
  char what[256];
  json_t *want = ref_select(all, conds, nc, order, no);
  size_t total = json_array_size(want);

  store_query q = {.conds = conds, .n_conds = nc, .order = order, .n_order = no, .count = 1};
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  snprintf(what, sizeof what, "%s: all", label);
  expect_ids(page.docs, want, what);
  assert_int_equal(page.total, total);
  assert_null(page.next);
  assert_null(page.prev);
  store_page_clear(&page);

  long long n = -1;
  CHK(STORE_OK, store_count(g_st, T, "items", conds, nc, &n, &e));
  assert_int_equal(n, total);

  q.offset = 2;
  q.limit = 3;
  q.count = 0;
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  json_t *part = slice(want, 2, 3);
  snprintf(what, sizeof what, "%s: offset 2 limit 3", label);
  expect_ids(page.docs, part, what);
  assert_int_equal(page.next != NULL, total > 5);
  assert_int_equal(page.prev != NULL, json_array_size(part) > 0);
  json_decref(part);
  store_page_clear(&page);

  /* Forward through pages of 4, remembering each page and its cursors. */
  enum { LIM = 4, MAXP = QN / LIM + 2 };
  char *prevs[MAXP] = {0}, *after = NULL;
  size_t pages = 0;
  q.offset = 0;
  q.limit = LIM;
  for (;;) {
    q.after = after;
    CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
    part = slice(want, pages * LIM, LIM);
    snprintf(what, sizeof what, "%s: forward page %zu", label, pages);
    expect_ids(page.docs, part, what);
    json_decref(part);
    assert_int_equal(page.prev != NULL, pages > 0 && json_array_size(page.docs) > 0);
    assert_true(pages < MAXP);
    prevs[pages++] = dup_or_null(page.prev);
    free(after);
    after = dup_or_null(page.next);
    store_page_clear(&page);
    if (!after) break;
  }
  assert_int_equal(pages, total ? (total + LIM - 1) / LIM : 1);

  /* Backward from the last page: each page equals the forward one, and its
   * `next` leads to the page after it. */
  char *before = dup_or_null(prevs[pages - 1]);
  for (size_t p = pages - 1; before; p--) {
    q.after = NULL;
    q.before = before;
    CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
    part = slice(want, (p - 1) * LIM, LIM);
    snprintf(what, sizeof what, "%s: backward page %zu", label, p - 1);
    expect_ids(page.docs, part, what);
    json_decref(part);
    assert_non_null(page.next);
    assert_int_equal(page.prev != NULL, p - 1 > 0);

    store_page fwd;
    q.before = NULL;
    q.after = page.next;
    CHK(STORE_OK, store_find(g_st, T, "items", &q, &fwd, &e));
    part = slice(want, p * LIM, LIM);
    snprintf(what, sizeof what, "%s: next of backward page %zu", label, p - 1);
    expect_ids(fwd.docs, part, what);
    json_decref(part);
    store_page_clear(&fwd);

    free(before);
    before = dup_or_null(page.prev);
    store_page_clear(&page);
  }
  for (size_t p = 0; p < pages; p++)
    free(prevs[p]);
  json_decref(want);
}

static void test_query_forms(void **state) {
  (void)state;
  const char *T = "query";
  store_err e;
  json_t *all = query_docs();
  size_t i;
  json_t *d;
  json_array_foreach(all, i, d) CHK(STORE_OK, store_insert(g_st, T, "items", d, &e));
  /* Noise in another tenant must never show up. */
  json_array_foreach(all, i, d) if (i < 10)
      CHK(STORE_OK, store_insert(g_st, "query-noise", "items", d, &e));

  json_t *v2 = json_integer(2), *cherry = json_string("cherry"), *yes = json_true(),
         *no = json_false(), *f10 = json_integer(10), *f12 = json_real(12.0),
         *f525 = json_real(5.25), *f6 = json_integer(6), *in_s = J("[\"apple\",\"date\"]"),
         *in_n = J("[0,4]"), *in_id = J("[3,5,7,100]"), *in_none = J("[]"),
         *in_mix = J("[\"x\",1,true]"), *v1 = json_integer(1), *v3 = json_integer(3),
         *id10 = json_integer(10), *id20 = json_integer(20), *banana = json_string("banana"),
         *date = json_string("date"), *t_lo = json_integer(1700000000005000LL),
         *t_hi = json_integer(1700000000015000LL), *in_13 = J("[1,3]");
  struct {
    const char *label;
    store_cond c[3];
    size_t n;
  } cases[] = {
      {"no conditions", {{0}}, 0},
      {"n = 2", {{"n", STORE_EQ, v2}}, 1},
      {"s = cherry", {{"s", STORE_EQ, cherry}}, 1},
      {"b = true", {{"b", STORE_EQ, yes}}, 1},
      {"f > 10", {{"f", STORE_GT, f10}}, 1},
      {"f >= 12.0", {{"f", STORE_GTE, f12}}, 1},
      {"f < 5.25", {{"f", STORE_LT, f525}}, 1},
      {"f <= 6", {{"f", STORE_LTE, f6}}, 1},
      {"s in", {{"s", STORE_IN, in_s}}, 1},
      {"n in", {{"n", STORE_IN, in_n}}, 1},
      {"id in", {{"id", STORE_IN, in_id}}, 1},
      {"in []", {{"n", STORE_IN, in_none}}, 1},
      {"in mixed types", {{"s", STORE_IN, in_mix}}, 1},
      {"opt exists", {{"opt", STORE_EXISTS, NULL}}, 1},
      {"opt missing", {{"opt", STORE_MISSING, NULL}}, 1},
      {"opt = null", {{"opt", STORE_EQ, NULL}}, 1},
      {"nested eq", {{"rel.account", STORE_EQ, v1}}, 1},
      {"nested range and n", {{"rel.account", STORE_GTE, v2}, {"n", STORE_LT, v3}}, 2},
      {"id range", {{"id", STORE_GT, id10}, {"id", STORE_LTE, id20}}, 2},
      {"string range", {{"s", STORE_GT, banana}, {"s", STORE_LT, date}}, 2},
      {"t range", {{"t", STORE_GTE, t_lo}, {"t", STORE_LT, t_hi}}, 2},
      {"three",
       {{"b", STORE_EQ, no}, {"n", STORE_IN, in_13}, {"missing.path", STORE_MISSING, NULL}},
       3},
  };
  store_order o_n[] = {{"n", 0}}, o_nd[] = {{"n", 1}}, o_sf[] = {{"s", 0}, {"f", 1}},
              o_bt[] = {{"b", 1}, {"t", 0}}, o_rn[] = {{"rel.account", 0}, {"n", 1}},
              o_idd[] = {{"id", 1}}, o_td[] = {{"t", 1}}, o_ns[] = {{"n", 1}, {"s", 1}},
              o_idn[] = {{"id", 0}, {"n", 1}};
  struct {
    const char *label;
    store_order *o;
    size_t n;
  } orders[] = {{"id", NULL, 0},    {"n", o_n, 1},     {"-n", o_nd, 1},
                {"s,-f", o_sf, 2},  {"-b,t", o_bt, 2}, {"rel.account,-n", o_rn, 2},
                {"-id", o_idd, 1},  {"-t", o_td, 1},   {"-n,-s", o_ns, 2},
                {"id,-n", o_idn, 2}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    for (size_t o = 0; o < sizeof orders / sizeof *orders; o++) {
      /* Paging every combination is slow on FerretDB; every order still runs
       * with the unconditioned and one conditioned set. */
      if (c > 1 && o != c % (sizeof orders / sizeof *orders)) continue;
      char label[128];
      snprintf(label, sizeof label, "[%s] order [%s]", cases[c].label, orders[o].label);
      check_query(T, all, cases[c].c, cases[c].n, orders[o].o, orders[o].n, label);
    }
  }
  json_t *vals[] = {v2,      cherry, yes, no, f10,  f12,  f525,   f6,   in_s, in_n, in_id,
                    in_none, in_mix, v1,  v3, id10, id20, banana, date, t_lo, t_hi, in_13};
  for (i = 0; i < sizeof vals / sizeof *vals; i++)
    json_decref(vals[i]);
  json_decref(all);
}

/* ---- boolean expressions (store_query.where) -------------------------------- */

#define X_COND(f, o, v)                                                                            \
  {                                                                                                \
    .kind = STORE_X_COND, .cond = { f, o, v }                                                      \
  }
#define X_OF(k, ops)                                                                               \
  { .kind = k, .operands = ops, .n_operands = sizeof ops / sizeof *ops }

/* Every operator alone and nested AND/OR/NOT, each result set checked twice:
 * against a reference evaluation of the same expression over the inserted
 * documents, and for a few against ids written out by hand. */
static void test_expressions(void **state) {
  (void)state;
  const char *T = "expr";
  store_err e;
  static const char *titles[] = {"Landing Page", "Checkout", "landing pad", "Pricing", NULL};
  json_t *all = json_array();
  for (int i = 1; i <= 12; i++) {
    json_t *d = json_pack("{s:i, s:i, s:b}", "id", i, "n", i % 4, "pii", i % 3 == 0);
    if (titles[i % 5]) json_object_set_new(d, "title", json_string(titles[i % 5]));
    json_t *tags = json_array();
    if (i % 2 == 0) json_array_append_new(tags, json_string("red"));
    if (i % 3 == 0) json_array_append_new(tags, json_string("blue"));
    if (i != 7)
      json_object_set_new(d, "tags", tags);
    else
      json_decref(tags);
    json_array_append_new(all, d);
    CHK(STORE_OK, store_insert(g_st, T, "items", d, &e));
  }
  json_t *red = json_string("red"), *blue_green = J("[\"blue\",\"green\"]"),
         *land = json_string("LAND"), *two = json_integer(2), *yes = json_true(),
         *in_n = J("[0,3]"), *pad = json_string("pad");
  store_expr has_red = X_COND("tags", STORE_HAS, red),
             any_bg = X_COND("tags", STORE_HAS_ANY, blue_green),
             some = X_COND("tags", STORE_NONEMPTY, NULL),
             land_in = X_COND("title", STORE_CONTAINS, land), n_ge2 = X_COND("n", STORE_GTE, two),
             pii = X_COND("pii", STORE_EQ, yes), n_in = X_COND("n", STORE_IN, in_n),
             titled = X_COND("title", STORE_EXISTS, NULL),
             pad_in = X_COND("title", STORE_CONTAINS, pad);
  store_expr red_and_land[] = {has_red, land_in}, bg_or_pii[] = {any_bg, pii}, not_some[] = {some},
             not_titled[] = {titled};
  store_expr e_and = X_OF(STORE_X_AND, red_and_land), e_or = X_OF(STORE_X_OR, bg_or_pii),
             e_nsome = X_OF(STORE_X_NOT, not_some), e_nt = X_OF(STORE_X_NOT, not_titled);
  /* (tags has red AND title contains "land") OR NOT (n >= 2 OR n in [0,3]) */
  store_expr n_any[] = {n_ge2, n_in};
  store_expr e_nany = X_OF(STORE_X_OR, n_any);
  store_expr not_nany[] = {e_nany};
  store_expr e_not_nany = X_OF(STORE_X_NOT, not_nany);
  store_expr deep_ops[] = {e_and, e_not_nany};
  store_expr deep = X_OF(STORE_X_OR, deep_ops);
  /* NOT (title contains "pad"): a missing title is not "pad" either */
  store_expr not_pad[] = {pad_in};
  store_expr e_not_pad = X_OF(STORE_X_NOT, not_pad);
  struct {
    const char *label;
    const store_expr *x;
    const char *ids; /* by hand, or NULL: the reference alone */
  } cases[] = {
      {"has red", &has_red, "2,4,6,8,10,12"},
      {"has any of blue, green", &any_bg, "3,6,9,12"},
      {"nonempty", &some, "2,3,4,6,8,9,10,12"},
      {"title contains LAND", &land_in, "2,5,7,10,12"},
      {"n >= 2", &n_ge2, NULL},
      {"pii", &pii, NULL},
      {"n in", &n_in, NULL},
      {"red and land", &e_and, "2,10,12"},
      {"blue/green or pii", &e_or, "3,6,9,12"},
      {"not nonempty", &e_nsome, "1,5,7,11"},
      {"not titled", &e_nt, "4,9"},
      {"deep", &deep, NULL},
      {"not pad", &e_not_pad, NULL},
  };
  store_order by_n[] = {{"n", 1}};
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    json_t *want = json_array();
    size_t i;
    json_t *d;
    json_array_foreach(all, i, d) if (ref_expr(d, cases[c].x)) json_array_append(want, d);
    store_page page;
    store_query q = {.where = cases[c].x, .count = 1};
    CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
    expect_ids(page.docs, want, cases[c].label);
    assert_int_equal(page.total, json_array_size(want));
    if (cases[c].ids) {
      char got[256];
      ids_str(page.docs, got, sizeof got);
      if (strcmp(got, cases[c].ids) != 0) {
        print_error("%s: got [%s], by hand [%s]\n", cases[c].label, got, cases[c].ids);
        fail();
      }
    }
    store_page_clear(&page);
    /* sorted, paged by offset, with the count of the whole */
    ref_order = by_n;
    ref_n_order = 1;
    json_t *tmp[16];
    size_t n = 0;
    json_array_foreach(want, i, d) tmp[n++] = d;
    qsort(tmp, n, sizeof *tmp, ref_sort_cmp);
    json_t *sorted = json_array();
    for (i = 0; i < n; i++)
      json_array_append(sorted, tmp[i]);
    json_t *part = slice(sorted, 1, 2);
    store_query pq = {
        .where = cases[c].x, .order = by_n, .n_order = 1, .offset = 1, .limit = 2, .count = 1};
    CHK(STORE_OK, store_find(g_st, T, "items", &pq, &page, &e));
    expect_ids(page.docs, part, cases[c].label);
    assert_int_equal(page.total, n);
    store_page_clear(&page);
    json_decref(part);
    json_decref(sorted);
    json_decref(want);
  }
  /* Malformed expressions are refused, not run. */
  store_expr empty_and = {.kind = STORE_X_AND}, bad = X_COND("tags", STORE_HAS_ANY, red);
  store_page page;
  store_query q1 = {.where = &empty_and}, q2 = {.where = &bad};
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q1, &page, &e));
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q2, &page, &e));
  json_t *vals[] = {red, blue_green, land, two, yes, in_n, pad};
  for (size_t i = 0; i < sizeof vals / sizeof *vals; i++)
    json_decref(vals[i]);
  json_decref(all);
}

/* CONTAINS folds A-Z only, on both engines alike (SQLite's lower() knows no
 * other letters), and its value is text, never a pattern. */
static void test_contains_ascii_fold(void **state) {
  (void)state;
  const char *T = "fold";
  insert_text(T, "items", "{\"id\": 1, \"title\": \"\u00c9mile NA\u00cfVE\"}");
  insert_text(T, "items", "{\"id\": 2, \"title\": \"\u00e9mile\"}");
  insert_text(T, "items", "{\"id\": 3, \"title\": \"x.y[z](a|b)*\"}");
  insert_text(T, "items", "{\"id\": 4}");
  struct {
    const char *value, *ids;
  } cases[] = {
      {"\u00e9mile", "2"}, {"\u00c9", "1"},    {"MILE", "1,2"}, {"na\u00cf", "1"},
      {"na\u00ef", ""},    {"NA\u00efVE", ""}, {".y[", "3"},    {"X.Y[Z](A|B)*", "3"},
      {".", "3"},          {"(a|b)", "3"},     {"a|b", "3"},    {"x.y[z](a|b)*!", ""},
  };
  for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
    json_t *v = json_string(cases[c].value);
    store_expr x = X_COND("title", STORE_CONTAINS, v);
    store_order by_id[] = {{"id", 0}};
    store_query q = {.where = &x, .order = by_id, .n_order = 1, .count = 1};
    store_page page;
    store_err e;
    CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
    char got[64];
    ids_str(page.docs, got, sizeof got);
    if (strcmp(got, cases[c].ids) != 0) {
      print_error("contains '%s': got [%s], want [%s]\n", cases[c].value, got, cases[c].ids);
      fail();
    }
    assert_int_equal(page.total, json_array_size(page.docs));
    store_page_clear(&page);
    json_decref(v);
  }
}

/* ---- cursors ----------------------------------------------------------------- */

static void test_cursor_tampering(void **state) {
  (void)state;
  const char *T = "tamper";
  store_err e;
  store_page page;
  for (int i = 1; i <= 10; i++) {
    char text[64];
    snprintf(text, sizeof text, "{\"id\":%d,\"n\":%d}", i, i % 3);
    insert_text(T, "items", text);
  }
  store_order by_n[] = {{"n", 0}}, by_n_desc[] = {{"n", 1}};
  store_query q = {.order = by_n, .n_order = 1, .limit = 3};
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  char *good = strdup(page.next);
  store_page_clear(&page);
  q.after = good;
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  assert_int_equal(json_array_size(page.docs), 3);
  store_page_clear(&page);
  q.after = NULL;
  q.before = good; /* the first page minus the document the token names */
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  assert_int_equal(json_array_size(page.docs), 2);
  store_page_clear(&page);

  /* Every single-character change, truncation and extension is refused. */
  size_t len = strlen(good);
  char *t = malloc(len + 8);
  for (size_t i = 0; i < len; i++) {
    strcpy(t, good);
    t[i] = t[i] == 'A' ? 'B' : 'A';
    q.before = NULL;
    q.after = t;
    CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
    assert_null(page.docs);
  }
  for (size_t cut = 1; cut < len; cut += 3) {
    memcpy(t, good, len - cut);
    t[len - cut] = '\0';
    CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  }
  snprintf(t, len + 8, "%sAA", good);
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  free(t);
  const char *junk[] = {"", "A", "!!!!", "eyJ9", "a b c", "\xff\xfe", "=====", "AAAA===="};
  for (size_t i = 0; i < sizeof junk / sizeof *junk; i++) {
    q.after = junk[i];
    CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  }
  char *huge = malloc(100001);
  memset(huge, 'A', 100000);
  huge[100000] = '\0';
  q.after = huge;
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  free(huge);

  /* A good token used with another order, collection or both directions. */
  q.after = good;
  q.order = by_n_desc;
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  q.order = NULL;
  q.n_order = 0;
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  q.order = by_n;
  q.n_order = 1;
  CHK(STORE_EINVAL, store_find(g_st, T, "props", &q, &page, &e));
  q.before = good;
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  q.before = NULL;
  q.offset = 1;
  CHK(STORE_EINVAL, store_find(g_st, T, "items", &q, &page, &e));
  q.offset = 0;

  /* Checksum-valid tokens around bad payloads. */
  const char *payloads[] = {
      "not json",
      "[]",
      "{}",
      "null",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,2,3]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[{},2]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[[1],2]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,1.5]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,null]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,true]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":\"x\"}",
      "{\"c\":\"items\",\"k\":[\"-n\",\"id\"],\"v\":[1,2]}",
      "{\"c\":\"items\",\"k\":[\"n\"],\"v\":[1]}",
      "{\"c\":\"props\",\"k\":[\"n\",\"id\"],\"v\":[1,2]}",
      "{\"c\":1,\"k\":[\"n\",\"id\"],\"v\":[1,2]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,2],\"x\":0}",
      "{\"c\":\"items\",\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,2]}",
      "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,2]",
  };
  for (size_t i = 0; i < sizeof payloads / sizeof *payloads; i++) {
    char *tok = store_cursor_seal(payloads[i], strlen(payloads[i]));
    q.after = tok;
    int rc = store_find(g_st, T, "items", &q, &page, &e);
    if (rc != STORE_EINVAL) {
      print_error("forged %s: %d, want EINVAL\n", payloads[i], rc);
      fail();
    }
    free(tok);
  }
  /* ...while a well-formed forged one is honoured: the checksum is integrity,
   * not secrecy, and the position it names is within the tenant anyway. */
  const char *okp = "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[1,4]}";
  char *tok = store_cursor_seal(okp, strlen(okp));
  q.after = tok;
  q.limit = 0;
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  char ids[256];
  ids_str(page.docs, ids, sizeof ids);
  assert_string_equal(ids, "7,10,2,5,8");
  store_page_clear(&page);
  free(tok);
  /* Null stands for a missing sort value and sorts first on both engines. */
  const char *nullp = "{\"c\":\"items\",\"k\":[\"n\",\"id\"],\"v\":[null,4]}";
  tok = store_cursor_seal(nullp, strlen(nullp));
  q.after = tok;
  CHK(STORE_OK, store_find(g_st, T, "items", &q, &page, &e));
  assert_int_equal(json_array_size(page.docs), 10);
  store_page_clear(&page);
  free(tok);
  free(good);
}

/* ---- tenancy, cascades ---------------------------------------------------------- */

static void test_tenant_isolation(void **state) {
  (void)state;
  store_err e;
  const char *A = "iso-a", *B = "iso-b";
  json_t *id1 = json_integer(1), *out = NULL;
  insert_text(A, "events", "{\"id\":1,\"kind\":\"k\",\"ext\":\"x\",\"name\":\"secret\"}");
  insert_text(A, "props", "{\"id\":\"p1\",\"parent\":1}");
  insert_text(A, "props", "{\"id\":\"p2\",\"parent\":1}");

  CHK(STORE_ENOTFOUND, store_get(g_st, B, "events", id1, &out, &e));
  json_t *rep = J("{\"id\":1,\"kind\":\"k\",\"ext\":\"x\",\"name\":\"stolen\"}");
  CHK(STORE_ENOTFOUND, store_replace(g_st, B, "events", rep, &e));
  json_t *set = J("{\"name\":\"stolen\"}");
  CHK(STORE_ENOTFOUND, store_patch(g_st, B, "events", id1, set, &out, &e));
  CHK(STORE_ENOTFOUND, store_delete(g_st, B, "events", id1, &e));
  store_page page;
  store_query q = {.count = 1};
  CHK(STORE_OK, store_find(g_st, B, "events", &q, &page, &e));
  assert_int_equal(json_array_size(page.docs), 0);
  assert_int_equal(page.total, 0);
  store_page_clear(&page);
  long long n = -1;
  CHK(STORE_OK, store_count(g_st, B, "props", NULL, 0, &n, &e));
  assert_int_equal(n, 0);
  store_cond by_parent = {"parent", STORE_EQ, id1};
  CHK(STORE_OK, store_delete_where(g_st, B, "props", &by_parent, 1, &n, &e));
  assert_int_equal(n, 0);
  CHK(STORE_OK, store_delete_where(g_st, B, "props", NULL, 0, &n, &e));
  assert_int_equal(n, 0);

  /* B may use the same id and the same unique key. */
  CHK(STORE_OK, store_insert(g_st, B, "events", rep, &e));
  CHK(STORE_OK, store_get(g_st, A, "events", id1, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "name")), "secret");
  json_decref(out);
  CHK(STORE_OK, store_count(g_st, A, "props", NULL, 0, &n, &e));
  assert_int_equal(n, 2);

  /* A's cursor in B only positions B's own documents. */
  store_query qa = {.limit = 1};
  CHK(STORE_OK, store_find(g_st, A, "props", &qa, &page, &e));
  char *cur = strdup(page.next);
  store_page_clear(&page);
  insert_text(B, "props", "{\"id\":\"p9\",\"parent\":1}");
  qa.after = cur;
  qa.limit = 0;
  CHK(STORE_OK, store_find(g_st, B, "props", &qa, &page, &e));
  char ids[64];
  ids_str(page.docs, ids, sizeof ids);
  assert_string_equal(ids, "p9");
  store_page_clear(&page);
  free(cur);

  long long a1, a2, b1;
  CHK(STORE_OK, store_next_id(g_st, A, "events", &a1, &e));
  CHK(STORE_OK, store_next_id(g_st, A, "events", &a2, &e));
  CHK(STORE_OK, store_next_id(g_st, B, "events", &b1, &e));
  assert_int_equal(a1, 1);
  assert_int_equal(a2, 2);
  assert_int_equal(b1, 1);
  json_decref(set);
  json_decref(rep);
  json_decref(id1);
}

static void test_delete_where(void **state) {
  (void)state;
  store_err e;
  const char *T = "cascade";
  for (int i = 1; i <= 12; i++) {
    char text[64];
    snprintf(text, sizeof text, "{\"id\":%d,\"parent\":%d}", i, i % 3);
    insert_text(T, "props", text);
    insert_text("cascade-other", "props", text);
  }
  json_t *p1 = json_integer(1), *in = J("[0,7]");
  store_cond c1 = {"parent", STORE_EQ, p1}, c2 = {"parent", STORE_IN, in};
  long long n = -1;
  CHK(STORE_OK, store_delete_where(g_st, T, "props", &c1, 1, &n, &e));
  assert_int_equal(n, 4);
  CHK(STORE_OK, store_count(g_st, T, "props", &c1, 1, &n, &e));
  assert_int_equal(n, 0);
  CHK(STORE_OK, store_delete_where(g_st, T, "props", &c2, 1, &n, &e));
  assert_int_equal(n, 4);
  CHK(STORE_OK, store_count(g_st, T, "props", NULL, 0, &n, &e));
  assert_int_equal(n, 4);
  CHK(STORE_OK, store_delete_where(g_st, T, "props", NULL, 0, &n, &e));
  assert_int_equal(n, 4);
  CHK(STORE_OK, store_count(g_st, "cascade-other", "props", NULL, 0, &n, &e));
  assert_int_equal(n, 12);
  json_decref(p1);
  json_decref(in);
}

/* ---- concurrency -------------------------------------------------------------- */

#define NTHREADS 8

typedef struct worker {
  pthread_t th;
  pthread_barrier_t *go;
  int index;
  int rc;
  char msg[256];
  long long values[64];
  int n_values;
  int *stop;    /* __atomic */
  int inserted; /* __atomic */
} worker;

static void *race_insert(void *arg) {
  worker *w = arg;
  store_err e = {0};
  char text[128];
  snprintf(text, sizeof text, "{\"id\":%d,\"kind\":\"race\",\"ext\":\"same\"}", 100 + w->index);
  json_t *doc = json_loads(text, 0, NULL);
  pthread_barrier_wait(w->go);
  w->rc = store_insert(g_st, "race", "events", doc, &e);
  snprintf(w->msg, sizeof w->msg, "%s", e.msg);
  json_decref(doc);
  return NULL;
}

static void *race_same_id(void *arg) {
  worker *w = arg;
  store_err e = {0};
  char text[128];
  snprintf(text, sizeof text, "{\"id\":\"same\",\"kind\":\"race2\",\"ext\":\"e%d\"}", w->index);
  json_t *doc = json_loads(text, 0, NULL);
  pthread_barrier_wait(w->go);
  w->rc = store_insert(g_st, "race", "events", doc, &e);
  json_decref(doc);
  return NULL;
}

static void run_workers(worker *w, int n, void *(*fn)(void *)) {
  pthread_barrier_t go;
  pthread_barrier_init(&go, NULL, (unsigned)n);
  for (int i = 0; i < n; i++) {
    w[i].go = &go;
    w[i].index = i;
    pthread_create(&w[i].th, NULL, fn, &w[i]);
  }
  for (int i = 0; i < n; i++)
    pthread_join(w[i].th, NULL);
  pthread_barrier_destroy(&go);
}

static void test_unique_race(void **state) {
  (void)state;
  enum { N = 16 };
  store_err e;
  for (int round = 0; round < 2; round++) {
    worker w[N];
    memset(w, 0, sizeof w);
    run_workers(w, N, round ? race_same_id : race_insert);
    int ok = 0, dup = 0;
    for (int i = 0; i < N; i++) {
      if (w[i].rc == STORE_OK)
        ok++;
      else if (w[i].rc == STORE_EDUPLICATE)
        dup++;
      else
        print_error("thread %d: %d %s\n", i, w[i].rc, w[i].msg);
    }
    assert_int_equal(ok, 1);
    assert_int_equal(dup, N - 1);
  }
  long long n;
  json_t *race = json_string("race"), *race2 = json_string("race2");
  store_cond c1 = {"kind", STORE_EQ, race}, c2 = {"kind", STORE_EQ, race2};
  CHK(STORE_OK, store_count(g_st, "race", "events", &c1, 1, &n, &e));
  assert_int_equal(n, 1);
  CHK(STORE_OK, store_count(g_st, "race", "events", &c2, 1, &n, &e));
  assert_int_equal(n, 1);
  json_decref(race);
  json_decref(race2);
}

enum { IDS_PER_THREAD = 30 };

/* A second handle on the same store stands in for another replica: its own
 * pool, stripes and caches, sharing only the server (or the file). Workers
 * with odd indexes use it while it is open. */
static store *g_st2;

/* Runs n workers of fn while a second handle on the store (g_st2, another
 * replica) is open, and closes it after. */
static void run_replicas(worker *w, int n, void *(*fn)(void *)) {
  store_err e;
  CHK(STORE_OK, store_open(g_url, &schema, &g_st2, &e));
  memset(w, 0, (size_t)n * sizeof *w);
  run_workers(w, n, fn);
  store_close(g_st2);
  g_st2 = NULL;
}
static const char *g_seq_tenant = "seq", *g_patch_tenant = "atomic";

static store *replica(int index) {
  return g_st2 && index % 2 ? g_st2 : g_st;
}

static void *race_next_id(void *arg) {
  worker *w = arg;
  store_err e = {0};
  pthread_barrier_wait(w->go);
  for (int i = 0; i < IDS_PER_THREAD; i++) {
    if ((w->rc = store_next_id(replica(w->index), g_seq_tenant, "c", &w->values[i], &e))) {
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
      return NULL;
    }
    w->n_values++;
  }
  return NULL;
}

static int cmp_ll(const void *a, const void *b) {
  long long x = *(const long long *)a, y = *(const long long *)b;
  return x < y ? -1 : x > y;
}

/* NTHREADS workers draw IDS_PER_THREAD numbers each from g_seq_tenant's
 * sequence "c": each worker's increase, and together they are 1..n. */
static long long race_ids(void) {
  worker w[NTHREADS];
  memset(w, 0, sizeof w);
  run_workers(w, NTHREADS, race_next_id);
  long long all[NTHREADS * IDS_PER_THREAD];
  size_t n = 0;
  for (int t = 0; t < NTHREADS; t++) {
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
    for (int i = 0; i < w[t].n_values; i++) {
      if (i) assert_true(w[t].values[i] > w[t].values[i - 1]);
      all[n++] = w[t].values[i];
    }
  }
  qsort(all, n, sizeof *all, cmp_ll);
  for (size_t i = 0; i < n; i++)
    if (all[i] != (long long)i + 1) {
      print_error("next_id values not 1..%zu: position %zu holds %lld\n", n, i, all[i]);
      fail();
    }
  return (long long)n;
}

static void test_next_id(void **state) {
  (void)state;
  store_err e;
  long long v;
  for (int i = 1; i <= 3; i++) {
    CHK(STORE_OK, store_next_id(g_st, "seq", "a", &v, &e));
    assert_int_equal(v, i);
  }
  CHK(STORE_OK, store_next_id(g_st, "seq", "b", &v, &e));
  assert_int_equal(v, 1);
  CHK(STORE_OK, store_next_id(g_st, "seq-2", "a", &v, &e));
  assert_int_equal(v, 1);

  long long n = race_ids();
  CHK(STORE_OK, store_next_id(g_st, "seq", "c", &v, &e));
  assert_int_equal(v, n + 1);
}

static void *patch_fields(void *arg) {
  worker *w = arg;
  store_err e = {0};
  json_t *id = json_integer(1);
  char key[16];
  snprintf(key, sizeof key, "f%d", w->index);
  pthread_barrier_wait(w->go);
  for (int k = 1; k <= 15 && !w->rc; k++) {
    json_t *set = json_pack("{s:i}", key, k);
    if ((w->rc = store_patch(replica(w->index), g_patch_tenant, "items", id, set, NULL, &e)))
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
    json_decref(set);
  }
  json_decref(id);
  return NULL;
}

/* NTHREADS workers patch fields f0.. of one g_patch_tenant document 15
 * times each: every field ends at 15 (no read-modify-write lost one). */
static void race_patches(void) {
  store_err e;
  insert_text(g_patch_tenant, "items", "{\"id\":1}");
  worker w[NTHREADS];
  memset(w, 0, sizeof w);
  run_workers(w, NTHREADS, patch_fields);
  json_t *id = json_integer(1), *out;
  CHK(STORE_OK, store_get(g_st, g_patch_tenant, "items", id, &out, &e));
  for (int t = 0; t < NTHREADS; t++) {
    char key[16];
    snprintf(key, sizeof key, "f%d", t);
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
    if (json_integer_value(json_object_get(out, key)) != 15) {
      char *text = json_dumps(out, JSON_COMPACT);
      print_error("lost update on %s: %s\n", key, text);
      free(text);
      fail();
    }
  }
  json_decref(out);
  json_decref(id);
}

static void test_patch_atomic(void **state) {
  (void)state;
  race_patches();
}

/* Two replicas on one store: the sequence and patches hold across them. On
 * MongoDB a counter left by the findAndModify-$inc era still counts. */
static void test_two_replicas(void **state) {
  (void)state;
  store_err e;
  long long v;
  CHK(STORE_OK, store_open(g_url, &schema, &g_st2, &e));
  g_seq_tenant = "seq-replicas";
  g_patch_tenant = "atomic-replicas";
  long long n = race_ids();
  CHK(STORE_OK, store_next_id(g_st2, g_seq_tenant, "c", &v, &e));
  assert_int_equal(v, n + 1);
  race_patches();
  if (is_mongo()) {
    mongoc_client_t *client = mongoc_client_new(g_url);
    mongoc_collection_t *c = mongoc_client_get_collection(client, "events_test", "counters");
    bson_t *legacy = BCON_NEW("tenant", "legacy", "id", "s", "value", BCON_INT64(41));
    bson_error_t be;
    assert_true(mongoc_collection_insert_one(c, legacy, NULL, NULL, &be));
    bson_destroy(legacy);
    mongoc_collection_destroy(c);
    mongoc_client_destroy(client);
    CHK(STORE_OK, store_next_id(g_st2, "legacy", "s", &v, &e));
    assert_int_equal(v, 42);
    CHK(STORE_OK, store_next_id(g_st, "legacy", "s", &v, &e));
    assert_int_equal(v, 43);
  }
  store_close(g_st2);
  g_st2 = NULL;
  g_seq_tenant = "seq";
  g_patch_tenant = "atomic";
}

enum { LIVE_PRELOAD = 150 };

static void *live_writer(void *arg) {
  worker *w = arg;
  store_err e = {0};
  unsigned seed = (unsigned)w->index * 7919u + 1;
  /* Bounded, or paging on a slow server would chase the writers for long. */
  for (int i = 0; !__atomic_load_n(w->stop, __ATOMIC_ACQUIRE) && i < 60; i++) {
    int id = 10000 + w->index * 1000 + i;
    json_t *doc =
        json_pack("{s:i, s:i}", "id", id, "t", (int)(rand_r(&seed) % (LIVE_PRELOAD * 10)));
    if ((w->rc = store_insert(g_st, "live", "feed", doc, &e))) {
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
      json_decref(doc);
      return NULL;
    }
    json_decref(doc);
    __atomic_add_fetch(&w->inserted, 1, __ATOMIC_RELEASE);
    sleep_ms(3); /* a steady trickle, interleaving with the pages */
  }
  return NULL;
}

static void page_while_writing(int desc) {
  store_err e;
  store_order order = {"t", desc};
  store_query q = {.order = &order, .n_order = 1, .limit = 7};
  char *after = NULL;
  static unsigned char seen[20000];
  memset(seen, 0, sizeof seen);
  json_t *last = NULL;
  int pages = 0;
  for (;;) {
    store_page page;
    q.after = after;
    CHK(STORE_OK, store_find(g_st, "live", "feed", &q, &page, &e));
    size_t i;
    json_t *d;
    json_array_foreach(page.docs, i, d) {
      json_int_t id = json_integer_value(json_object_get(d, "id"));
      assert_true(id > 0 && id < 20000);
      if (seen[id]++) {
        print_error("page %d repeats id %lld\n", pages, (long long)id);
        fail();
      }
      /* Pages continue exactly where the previous one stopped. */
      if (last) {
        json_int_t a = json_integer_value(json_object_get(last, "t")),
                   b = json_integer_value(json_object_get(d, "t"));
        json_int_t ia = json_integer_value(json_object_get(last, "id"));
        assert_true(desc ? (a > b || (a == b && ia < id)) : (a < b || (a == b && ia < id)));
      }
      json_decref(last);
      last = json_incref(d);
    }
    free(after);
    after = page.next ? strdup(page.next) : NULL;
    store_page_clear(&page);
    pages++;
    if (!after) break;
    sleep_ms(3); /* let writers land between pages, even on a fast engine */
  }
  json_decref(last);
  fprintf(stderr, "    %d pages (%s) at %.2fs\n", pages, desc ? "desc" : "asc",
          now_s() - g_test_start);
  for (int id = 1; id <= LIVE_PRELOAD; id++)
    if (seen[id] != 1) {
      print_error("pre-existing id %d seen %d times (%s)\n", id, seen[id], desc ? "desc" : "asc");
      fail();
    }
}

static int live_inserted(worker *w, int n) {
  int total = 0;
  for (int i = 0; i < n; i++)
    total += __atomic_load_n(&w[i].inserted, __ATOMIC_ACQUIRE);
  return total;
}

static void test_pages_during_inserts(void **state) {
  (void)state;
  store_err e;
  for (int i = 1; i <= LIVE_PRELOAD; i++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", i, "t", i * 10 % (LIVE_PRELOAD * 10 / 3));
    CHK(STORE_OK, store_insert(g_st, "live", "feed", doc, &e));
    json_decref(doc);
  }
  int stop = 0;
  worker w[3];
  memset(w, 0, sizeof w);
  for (int i = 0; i < 3; i++) {
    w[i].index = i;
    w[i].stop = &stop;
    pthread_create(&w[i].th, NULL, live_writer, &w[i]);
  }
  for (double t0 = now_s(); live_inserted(w, 3) < 3 && now_s() - t0 < 10;)
    sleep_ms(1);
  int before = live_inserted(w, 3);
  page_while_writing(0);
  page_while_writing(1);
  int during = live_inserted(w, 3) - before;
  __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
  for (int i = 0; i < 3; i++) {
    pthread_join(w[i].th, NULL);
    if (w[i].rc) print_error("writer %d: %d %s\n", i, w[i].rc, w[i].msg);
    assert_int_equal(w[i].rc, STORE_OK);
  }
  fprintf(stderr, "    %d inserts landed while paging\n", during);
  assert_true(during > 0);
}

/* ---- group commit ------------------------------------------------------------------ */

/* SQLite commits concurrent writes in groups: one transaction, one fsync, each
 * write in a savepoint of its own. These hold on every engine. */
enum { GROUP_THREADS = 8, GROUP_PER_THREAD = 40, GROUP_ROUNDS = 12, GROUP_DUP_THREADS = 16 };

static void *group_creates(void *arg) {
  worker *w = arg;
  store_err e = {0};
  pthread_barrier_wait(w->go);
  for (int i = 0; i < GROUP_PER_THREAD; i++) {
    long long id;
    if ((w->rc = store_next_id(g_st, "group", "g", &id, &e))) break;
    json_t *doc = json_pack("{s:I, s:i, s:i}", "id", (json_int_t)id, "t", w->index, "i", i);
    w->rc = store_insert(g_st, "group", "items", doc, &e);
    json_decref(doc);
    if (w->rc) break;
    w->values[w->n_values++] = id;
  }
  if (w->rc) snprintf(w->msg, sizeof w->msg, "%s", e.msg);
  return NULL;
}

/* Many threads create at once (a sequence number, then an insert, as the
 * activity dialect does): every call succeeds, the ids are distinct, and
 * every document is there after the store is closed and opened again. */
static void test_group_creates(void **state) {
  (void)state;
  store_err e;
  worker w[GROUP_THREADS];
  memset(w, 0, sizeof w);
  run_workers(w, GROUP_THREADS, group_creates);
  long long all[GROUP_THREADS * GROUP_PER_THREAD];
  size_t n = 0;
  for (int t = 0; t < GROUP_THREADS; t++) {
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
    assert_int_equal(w[t].n_values, GROUP_PER_THREAD);
    for (int i = 0; i < w[t].n_values; i++)
      all[n++] = w[t].values[i];
  }
  qsort(all, n, sizeof *all, cmp_ll);
  for (size_t i = 0; i < n; i++)
    assert_int_equal(all[i], (long long)i + 1);

  store_close(g_st);
  CHK(STORE_OK, store_open(g_url, &schema, &g_st, &e));
  long long count = 0;
  CHK(STORE_OK, store_count(g_st, "group", "items", NULL, 0, &count, &e));
  assert_int_equal(count, (long long)n);
  for (int t = 0; t < GROUP_THREADS; t++) {
    for (int i = 0; i < w[t].n_values; i++) {
      json_t *id = json_integer(w[t].values[i]), *doc = NULL;
      CHK(STORE_OK, store_get(g_st, "group", "items", id, &doc, &e));
      assert_int_equal(json_integer_value(json_object_get(doc, "t")), t);
      assert_int_equal(json_integer_value(json_object_get(doc, "i")), i);
      json_decref(doc);
      json_decref(id);
    }
  }
}

static int g_group_round;

/* One write per thread and round, which one depending on the thread: a
 * new document, one refused for the base document's primary key or for its
 * unique (kind, ext), and with `patches`, a patch that fails. */
static void group_write(worker *w, const char *tenant, const char *kind, int patches) {
  store_err e = {0};
  char text[160];
  json_t *doc = NULL, *key = NULL, *set = NULL;
  int want = STORE_OK, r = g_group_round, i = w->index;
  if (patches && i % 8 == 7) { /* of a missing document, or (SQLite) after its read */
    key = json_string(is_mongo() ? "missing" : "base");
    set = is_mongo() ? json_pack("{s:i}", "n", 1) : json_pack("{s:i}", "ext.x", 1);
    want = is_mongo() ? STORE_ENOTFOUND : STORE_EINVAL;
  } else if (i % 4 == 1) {
    snprintf(text, sizeof text, "{\"id\":\"base\",\"kind\":\"%s\",\"ext\":\"r%d-%d\"}", kind, r, i);
    want = STORE_EDUPLICATE;
  } else if (i % 4 == 3) {
    snprintf(text, sizeof text, "{\"id\":\"u%d-%d\",\"kind\":\"%s\",\"ext\":\"base\"}", r, i, kind);
    want = STORE_EDUPLICATE;
  } else {
    snprintf(text, sizeof text, "{\"id\":\"r%d-%d\",\"kind\":\"%s\",\"ext\":\"r%d-%d\"}", r, i,
             kind, r, i);
  }
  if (!key) doc = json_loads(text, 0, NULL);
  pthread_barrier_wait(w->go);
  w->rc = key ? store_patch(g_st, tenant, "events", key, set, NULL, &e)
              : store_insert(g_st, tenant, "events", doc, &e);
  if (w->rc != want) {
    snprintf(w->msg, sizeof w->msg, "round %d: got %d (%s), want %d", r, w->rc, e.msg, want);
    w->rc = -100;
  } else {
    w->rc = STORE_OK;
  }
  json_decref(doc);
  json_decref(key);
  json_decref(set);
}

static void *group_mixed(void *arg) {
  group_write(arg, "groupdup", "gd", 1);
  return NULL;
}

/* One round of GROUP_DUP_THREADS writers started together; each must have
 * got the outcome it expected. */
static void group_round(void *(*fn)(void *)) {
  worker w[GROUP_DUP_THREADS];
  memset(w, 0, sizeof w);
  run_workers(w, GROUP_DUP_THREADS, fn);
  for (int t = 0; t < GROUP_DUP_THREADS; t++) {
    if (w[t].rc) print_error("thread %d: %s\n", t, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
  }
}

/* Threads that start together share groups: the writes that fail (duplicate
 * keys, a failing patch) get their own errors and undo only themselves; the
 * others in the same groups commit. */
static void test_group_failures(void **state) {
  (void)state;
  store_err e;
  insert_text("groupdup", "events", "{\"id\":\"base\",\"kind\":\"gd\",\"ext\":\"base\",\"n\":0}");
  for (g_group_round = 0; g_group_round < GROUP_ROUNDS; g_group_round++) {
    group_round(group_mixed);
  }
  long long n = 0;
  CHK(STORE_OK, store_count(g_st, "groupdup", "events", NULL, 0, &n, &e));
  assert_int_equal(n, 1 + GROUP_ROUNDS * (GROUP_DUP_THREADS / 2));
  for (int r = 0; r < GROUP_ROUNDS; r++) {
    for (int t = 0; t < GROUP_DUP_THREADS; t += 2) {
      char name[32];
      snprintf(name, sizeof name, "r%d-%d", r, t);
      json_t *id = json_string(name), *doc = NULL;
      CHK(STORE_OK, store_get(g_st, "groupdup", "events", id, &doc, &e));
      assert_string_equal(json_string_value(json_object_get(doc, "ext")), name);
      json_decref(doc);
      json_decref(id);
    }
  }
  json_t *base = json_string("base"), *doc = NULL;
  CHK(STORE_OK, store_get(g_st, "groupdup", "events", base, &doc, &e));
  json_t *want = J("{\"id\":\"base\",\"kind\":\"gd\",\"ext\":\"base\",\"n\":0}");
  assert_true(json_equal(doc, want));
  json_decref(want);
  json_decref(doc);
  json_decref(base);
}

/* Inserts only: SQLite runs such groups without a savepoint per write
 * (sq_group_inserts). */
static void *group_inserts(void *arg) {
  group_write(arg, "groupins", "gi", 0);
  return NULL;
}

/* Groups of inserts only: a refused insert fails alone with its own error,
 * the others commit, and the change log holds exactly one create per
 * document written, in one unbroken run of positions. */
static void test_group_insert_failures(void **state) {
  (void)state;
  store_err e;
  insert_text("groupins", "events", "{\"id\":\"base\",\"kind\":\"gi\",\"ext\":\"base\"}");
  for (g_group_round = 0; g_group_round < GROUP_ROUNDS; g_group_round++) {
    group_round(group_inserts);
  }
  const long long written = 1 + GROUP_ROUNDS * (GROUP_DUP_THREADS / 2);
  long long n = 0;
  CHK(STORE_OK, store_count(g_st, "groupins", "events", NULL, 0, &n, &e));
  assert_int_equal(n, written);
  if (is_mongo()) return; /* MongoDB's log may skip positions of refused claims */
  store_changes_page p;
  CHK(STORE_OK, store_changes(g_st, "groupins", 0, 1000, &p, &e));
  assert_int_equal((long long)json_array_size(p.changes), written);
  size_t i;
  json_t *ch;
  json_array_foreach(p.changes, i, ch) {
    assert_int_equal(json_integer_value(json_object_get(ch, "seq")), (long long)i + 1);
    assert_int_equal(json_integer_value(json_object_get(ch, "op")), STORE_CHANGE_CREATE);
    const char *id = json_string_value(json_object_get(ch, "id"));
    assert_non_null(id);
    assert_string_equal(json_string_value(json_object_get(json_object_get(ch, "doc"), "ext")), id);
  }
  store_changes_clear(&p);
}

/* ---- durability ------------------------------------------------------------------ */

/* Child mode: writes documents as fast as it can and reports each id on
 * stdout only after the store acknowledged it. The parent SIGKILLs it. */
static int child_writer(const char *url, const char *tenant) {
  store *st;
  store_err e;
  if (store_open(url, &schema, &st, &e)) {
    fprintf(stderr, "child: open: %s\n", e.msg);
    return 2;
  }
  for (int i = 0; i < 100000; i++) {
    long long id;
    if (store_next_id(st, tenant, "durable", &id, &e)) {
      fprintf(stderr, "child: next_id: %s\n", e.msg);
      return 3;
    }
    json_t *doc = json_pack("{s:I, s:s, s:i}", "id", (json_int_t)id, "payload", "durable", "i", i);
    int rc = store_insert(st, tenant, "items", doc, &e);
    json_decref(doc);
    if (rc) {
      fprintf(stderr, "child: insert: %s\n", e.msg);
      return 4;
    }
    char line[32];
    int n = snprintf(line, sizeof line, "%lld\n", id);
    if (write(STDOUT_FILENO, line, (size_t)n) != n) return 5;
  }
  store_close(st);
  return 0;
}

static void test_durability(void **state) {
  (void)state;
  store_err e;
  const char *T = "durable";
  int fds[2];
  assert_int_equal(pipe(fds), 0);
  pid_t pid = fork();
  assert_true(pid >= 0);
  if (pid == 0) {
    dup2(fds[1], STDOUT_FILENO);
    close(fds[0]);
    close(fds[1]);
    execl(g_self, g_self, "--child-writer", g_url, T, (char *)NULL);
    _exit(127);
  }
  close(fds[1]);
  long long acked[4096];
  size_t n_acked = 0, used = 0;
  char buf[8192];
  int killed = 0;
  for (;;) {
    ssize_t r = read(fds[0], buf + used, sizeof buf - 1 - used);
    if (r <= 0) break;
    used += (size_t)r;
    char *line = buf, *nl;
    while ((nl = memchr(line, '\n', used - (size_t)(line - buf)))) {
      *nl = '\0';
      if (n_acked < 4096) acked[n_acked++] = atoll(line);
      line = nl + 1;
    }
    used -= (size_t)(line - buf);
    memmove(buf, line, used);
    if (!killed && n_acked >= 60) {
      kill(pid, SIGKILL); /* right after acknowledged writes, mid-stream */
      killed = 1;
    }
  }
  close(fds[0]);
  int status;
  waitpid(pid, &status, 0);
  assert_true(killed);
  assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);

  /* A fresh instance (new connections, WAL recovery on SQLite) finds every
   * acknowledged document, and the sequence never goes back. */
  store *st;
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  long long max = 0;
  for (size_t i = 0; i < n_acked; i++) {
    json_t *id = json_integer(acked[i]), *doc = NULL;
    int rc = store_get(st, T, "items", id, &doc, &e);
    if (rc != STORE_OK) {
      print_error("acknowledged id %lld lost: %d %s\n", acked[i], rc, e.msg);
      fail();
    }
    assert_string_equal(json_string_value(json_object_get(doc, "payload")), "durable");
    json_decref(doc);
    json_decref(id);
    if (acked[i] > max) max = acked[i];
  }
  long long next;
  CHK(STORE_OK, store_next_id(st, T, "durable", &next, &e));
  assert_true(next > max);
  store_close(st);
  /* The long-lived instance sees them too. */
  long long n = 0;
  CHK(STORE_OK, store_count(g_st, T, "items", NULL, 0, &n, &e));
  assert_true(n >= (long long)n_acked);
}

/* ---- outage (MongoDB) ------------------------------------------------------------- */

static void test_outage(void **state) {
  (void)state;
  if (!is_mongo()) skip(); /* an embedded database has no server to lose */
  store_err e;
  const char *T = "outage";
  insert_text(T, "items", "{\"id\":1,\"v\":\"before\"}");
  fdb_stop();

  json_t *id1 = json_integer(1), *out = NULL, *doc2 = J("{\"id\":2}");
  long long v;
  store_page page;
  store_query q = {.limit = 5};
  for (int call = 0; call < 4; call++) {
    double t0 = now_s();
    int rc = call == 0   ? store_get(g_st, T, "items", id1, &out, &e)
             : call == 1 ? store_insert(g_st, T, "items", doc2, &e)
             : call == 2 ? store_find(g_st, T, "items", &q, &page, &e)
                         : store_next_id(g_st, T, "s", &v, &e);
    double took = now_s() - t0;
    fprintf(stderr, "outage call %d: %d after %.2fs (%s)\n", call, rc, took, e.msg);
    if (rc != STORE_EUNAVAILABLE || took > 8.0) {
      print_error("call %d during outage: %d (%s) after %.1fs\n", call, rc, e.msg, took);
      fail();
    }
  }

  /* Opening during the outage succeeds; indexes wait for the server. A
   * timeout set in the URI overrides the engine's default. */
  char url[sizeof g_url + 64];
  snprintf(url, sizeof url, "%s?serverSelectionTimeoutMS=500", g_url);
  store *late = NULL;
  double t0 = now_s();
  CHK(STORE_OK, store_open(url, &schema, &late, &e));
  CHK(STORE_EUNAVAILABLE, store_get(late, T, "items", id1, &out, &e));
  assert_true(now_s() - t0 < 4.0);

  assert_int_equal(fdb_start(), 0);
  t0 = now_s();
  int rc;
  while ((rc = store_ping(g_st, &e)) != STORE_OK && now_s() - t0 < 30)
    sleep_ms(100);
  CHK(STORE_OK, rc);
  t0 = now_s();
  while ((rc = store_get(late, T, "items", id1, &out, &e)) == STORE_EUNAVAILABLE &&
         now_s() - t0 < 30)
    sleep_ms(100);
  CHK(STORE_OK, rc);
  json_decref(out);
  json_t *doc3 = J("{\"id\":3}");
  CHK(STORE_OK, store_insert(late, T, "items", doc3, &e));
  CHK(STORE_EDUPLICATE, store_insert(late, T, "items", doc3, &e)); /* its indexes exist */
  json_decref(doc3);
  store_close(late);
  /* Same instance, no reopen: reads and writes work again. */
  CHK(STORE_OK, store_get(g_st, T, "items", id1, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "v")), "before");
  json_decref(out);
  CHK(STORE_OK, store_insert(g_st, T, "items", doc2, &e));
  CHK(STORE_OK, store_next_id(g_st, T, "s", &v, &e));
  json_decref(doc2);
  json_decref(id1);
}

/* ---- main ------------------------------------------------------------------------- */

static int test_start(void **state) {
  (void)state;
  g_test_start = now_s();
  return 0;
}

static int test_end(void **state) {
  (void)state;
  fprintf(stderr, "    (%.2fs)\n", now_s() - g_test_start);
  return 0;
}

/* ---- batches ------------------------------------------------------------------- */

static long long count_of(const char *tenant, const char *coll) {
  store_err e;
  long long n = -1;
  CHK(STORE_OK, store_count(g_st, tenant, coll, NULL, 0, &n, &e));
  return n;
}

/* docs from JSON texts; the array holds new references. */
static void load_docs(json_t **docs, const char *const *texts, size_t n) {
  for (size_t i = 0; i < n; i++)
    docs[i] = J(texts[i]);
}

static void free_docs(json_t **docs, size_t n) {
  for (size_t i = 0; i < n; i++)
    json_decref(docs[i]);
}

/* SQLite's log is copied into the database file by the store's checkpoint
 * thread, not by the committing writer: after writes well past the
 * threshold (1,000 pages), the file holds them without the test asking for a
 * checkpoint, and the log stays bounded. */
static void test_checkpoint(void **state) {
  (void)state;
  if (is_mongo()) skip();
  store_err e;
  char path[PATH_MAX + 32], wal[PATH_MAX + 40];
  snprintf(path, sizeof path, "%s", g_url + strlen("sqlite:"));
  snprintf(wal, sizeof wal, "%s-wal", path);
  struct stat before, after, log;
  assert_int_equal(stat(path, &before), 0);
  char pad[1025];
  memset(pad, 'p', sizeof pad - 1);
  pad[sizeof pad - 1] = '\0';
  json_t *docs[250];
  int res[250];
  for (int round = 0; round < 10; round++) { /* 2,500 documents of 1 KiB */
    for (int i = 0; i < 250; i++)
      docs[i] = json_pack("{s:i, s:s, s:s, s:s}", "id", round * 250 + i + 1, "kind", "ckpt", "ext",
                          "x", "pad", pad);
    CHK(STORE_OK, store_insert_many(g_st, "checkpoint", "items", docs, 250, 1, res, &e));
    free_docs(docs, 250);
  }
  double until = now_s() + 20;
  while (now_s() < until && stat(path, &after) == 0 && after.st_size < before.st_size + (4 << 20))
    usleep(50000);
  assert_int_equal(stat(path, &after), 0);
  assert_true(after.st_size >= before.st_size + (4 << 20));
  assert_int_equal(stat(wal, &log), 0);
  assert_true(log.st_size < 48 << 20); /* 8,000 pages and what one write adds */
}

static void test_insert_many(void **state) {
  (void)state;
  store_err e;
  const char *T = "batch";
  int res[8];
  json_t *docs[8];
  insert_text(T, "events", "{\"id\":100,\"kind\":\"k\",\"ext\":\"old\"}");

  /* Non-atomic: each document alone; a duplicate inside the batch loses to
   * the first, one against a stored document fails, a malformed one too. */
  static const char *const mixed[] = {
      "{\"id\":1,\"kind\":\"k\",\"ext\":\"a\"}", "{\"id\":2,\"kind\":\"k\",\"ext\":\"b\"}",
      "{\"id\":3,\"kind\":\"k\",\"ext\":\"a\"}", "{\"id\":100,\"kind\":\"k\",\"ext\":\"c\"}",
      "{\"kind\":\"k\",\"ext\":\"d\"}",          "{\"id\":4,\"kind\":\"k\",\"ext\":\"old\"}",
      "{\"id\":5,\"kind\":\"k\",\"ext\":\"e\"}",
  };
  load_docs(docs, mixed, 7);
  CHK(STORE_OK, store_insert_many(g_st, T, "events", docs, 7, 0, res, &e));
  int want[] = {STORE_OK,     STORE_OK,         STORE_EDUPLICATE, STORE_EDUPLICATE,
                STORE_EINVAL, STORE_EDUPLICATE, STORE_OK};
  for (int i = 0; i < 7; i++)
    assert_int_equal(res[i], want[i]);
  assert_int_equal(count_of(T, "events"), 4);
  free_docs(docs, 7);

  /* Atomic: one failure, nothing written; the others are aborted. */
  static const char *const atomic_bad[] = {
      "{\"id\":10,\"kind\":\"k\",\"ext\":\"x\"}",
      "{\"id\":11,\"kind\":\"k\",\"ext\":\"a\"}", /* taken by id 1 */
      "{\"id\":12,\"kind\":\"k\",\"ext\":\"y\"}",
      "{\"id\":13,\"kind\":\"k\",\"ext\":\"y\"}", /* taken by id 12, in the batch */
  };
  load_docs(docs, atomic_bad, 4);
  CHK(STORE_OK, store_insert_many(g_st, T, "events", docs, 4, 1, res, &e));
  assert_int_equal(res[0], STORE_EABORTED);
  assert_int_equal(res[1], STORE_EDUPLICATE);
  assert_int_equal(res[2], STORE_EABORTED);
  assert_int_equal(res[3], STORE_EDUPLICATE);
  assert_int_equal(count_of(T, "events"), 4);
  json_t *id10 = json_integer(10), *out = NULL;
  CHK(STORE_ENOTFOUND, store_get(g_st, T, "events", id10, &out, &e));
  free_docs(docs, 4);

  /* Atomic with a malformed document: refused before anything is sent. */
  static const char *const atomic_malformed[] = {"{\"id\":10,\"kind\":\"k\",\"ext\":\"x\"}",
                                                 "{\"id\":[1],\"kind\":\"k\",\"ext\":\"z\"}"};
  load_docs(docs, atomic_malformed, 2);
  CHK(STORE_OK, store_insert_many(g_st, T, "events", docs, 2, 1, res, &e));
  assert_int_equal(res[0], STORE_EABORTED);
  assert_int_equal(res[1], STORE_EINVAL);
  assert_int_equal(count_of(T, "events"), 4);
  free_docs(docs, 2);

  /* Atomic and valid: all written, readable, in the tenant only. */
  static const char *const atomic_ok[] = {"{\"id\":10,\"kind\":\"k\",\"ext\":\"x\"}",
                                          "{\"id\":11,\"kind\":\"k\",\"ext\":\"z\",\"n\":1.5}"};
  load_docs(docs, atomic_ok, 2);
  CHK(STORE_OK, store_insert_many(g_st, T, "events", docs, 2, 1, res, &e));
  assert_int_equal(res[0], STORE_OK);
  assert_int_equal(res[1], STORE_OK);
  assert_int_equal(count_of(T, "events"), 6);
  assert_int_equal(count_of("batch-other", "events"), 0);
  CHK(STORE_OK, store_get(g_st, T, "events", id10, &out, &e));
  assert_string_equal(json_string_value(json_object_get(out, "ext")), "x");
  json_decref(out);
  free_docs(docs, 2);
  json_decref(id10);

  /* Bounds: empty is nothing; more than STORE_BATCH_MAX is refused whole. */
  CHK(STORE_OK, store_insert_many(g_st, T, "events", docs, 0, 0, res, &e));
  json_t **many = calloc(STORE_BATCH_MAX + 1, sizeof *many);
  int *many_res = calloc(STORE_BATCH_MAX + 1, sizeof *many_res);
  for (int i = 0; i <= STORE_BATCH_MAX; i++)
    many[i] = json_pack("{s:i}", "id", 1000 + i);
  CHK(STORE_EINVAL,
      store_insert_many(g_st, T, "items", many, STORE_BATCH_MAX + 1, 0, many_res, &e));
  assert_int_equal(count_of(T, "items"), 0);
  /* A full batch is one write. */
  CHK(STORE_OK, store_insert_many(g_st, T, "items", many, STORE_BATCH_MAX, 0, many_res, &e));
  for (int i = 0; i < STORE_BATCH_MAX; i++)
    assert_int_equal(many_res[i], STORE_OK);
  assert_int_equal(count_of(T, "items"), STORE_BATCH_MAX);
  free_docs(many, STORE_BATCH_MAX + 1);
  free(many);
  free(many_res);
}

/* Concurrent batches, from two handles (replicas), each holding one document
 * with the same unique triple and others of their own: exactly one of the
 * shared ones wins, everything else is written. */
enum { BATCH_THREADS = 8, BATCH_DOCS = 20 };

static void *race_batch(void *arg) {
  worker *w = arg;
  store_err e = {0};
  json_t *docs[BATCH_DOCS];
  int res[BATCH_DOCS];
  for (int i = 0; i < BATCH_DOCS; i++) {
    char ext[32];
    snprintf(ext, sizeof ext, "own-%d", w->index * 1000 + i);
    docs[i] = json_pack("{s:i, s:s, s:s}", "id",
                        i == BATCH_DOCS / 2 ? 100000 + w->index : w->index * 1000 + i, "kind", "k",
                        "ext", i == BATCH_DOCS / 2 ? "shared" : ext);
  }
  pthread_barrier_wait(w->go);
  w->rc = store_insert_many(replica(w->index), "batch-race", "events", docs, BATCH_DOCS,
                            w->index % 2, res, &e);
  if (w->rc) snprintf(w->msg, sizeof w->msg, "%s", e.msg);
  for (int i = 0; i < BATCH_DOCS; i++) {
    if (res[i] == STORE_OK) w->inserted++;
    if (i == BATCH_DOCS / 2) w->n_values = res[i] == STORE_OK;
    json_decref(docs[i]);
  }
  return NULL;
}

static void test_insert_many_race(void **state) {
  (void)state;
  store_err e;
  CHK(STORE_OK, store_open(g_url, &schema, &g_st2, &e));
  worker w[BATCH_THREADS];
  memset(w, 0, sizeof w);
  run_workers(w, BATCH_THREADS, race_batch);
  int winners = 0, inserted = 0;
  for (int t = 0; t < BATCH_THREADS; t++) {
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
    winners += w[t].n_values;
    inserted += w[t].inserted;
    /* Odd workers were atomic: all or nothing. */
    if (t % 2) assert_true(w[t].inserted == 0 || w[t].inserted == BATCH_DOCS);
  }
  assert_int_equal(winners, 1);
  assert_int_equal(count_of("batch-race", "events"), inserted);
  store_close(g_st2);
  g_st2 = NULL;
}

/* Blocks of ids, taken by several threads on two handles beside single
 * ids: together they are exactly 1..n. */
static void *race_blocks(void *arg) {
  worker *w = arg;
  store_err e = {0};
  pthread_barrier_wait(w->go);
  for (int i = 0; i < 6; i++) {
    long long first = 0, count = (w->index + i) % 3 == 0 ? 1 : 7;
    if ((w->rc = store_next_ids(replica(w->index), "blocks", "b", count, &first, &e))) {
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
      return NULL;
    }
    for (long long k = 0; k < count && w->n_values < 64; k++)
      w->values[w->n_values++] = first + k;
  }
  return NULL;
}

static void test_next_ids(void **state) {
  (void)state;
  store_err e;
  long long first = 0;
  CHK(STORE_OK, store_next_ids(g_st, "blocks-1", "s", 5, &first, &e));
  assert_int_equal(first, 1);
  CHK(STORE_OK, store_next_id(g_st, "blocks-1", "s", &first, &e));
  assert_int_equal(first, 6);
  CHK(STORE_OK, store_next_ids(g_st, "blocks-1", "s", 3, &first, &e));
  assert_int_equal(first, 7);
  CHK(STORE_EINVAL, store_next_ids(g_st, "blocks-1", "s", 0, &first, &e));
  CHK(STORE_EINVAL, store_next_ids(g_st, "blocks-1", "s", STORE_BATCH_MAX + 1, &first, &e));

  worker w[NTHREADS];
  run_replicas(w, NTHREADS, race_blocks);
  long long all[NTHREADS * 64];
  size_t n = 0;
  for (int t = 0; t < NTHREADS; t++) {
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
    for (int i = 0; i < w[t].n_values; i++)
      all[n++] = w[t].values[i];
  }
  qsort(all, n, sizeof *all, cmp_ll);
  for (size_t i = 0; i < n; i++)
    if (all[i] != (long long)i + 1) {
      print_error("block ids not 1..%zu: position %zu holds %lld\n", n, i, all[i]);
      fail();
    }
}

/* ---- change log ------------------------------------------------------------ */

/* Reads every change of tenant after `after`, page by page; *last (may be
 * NULL) gets the last page's positions, without its changes. */
static json_t *all_changes(store *st, const char *tenant, long long after,
                           store_changes_page *last) {
  store_err e;
  json_t *all = json_array();
  for (;;) {
    store_changes_page p;
    CHK(STORE_OK, store_changes(st, tenant, after, 3, &p, &e));
    json_array_extend(all, p.changes);
    int more = p.scanned > after && json_array_size(p.changes) > 0;
    after = p.scanned;
    if (last) *last = (store_changes_page){NULL, p.scanned, p.head, p.floor};
    store_changes_clear(&p);
    if (!more) break;
  }
  return all;
}

/* Positions are exact on SQLite; on MongoDB a failed write voids the
 * position it claimed, so they only increase. */
static long long g_last_seq;
static void expect_change(json_t *ch, long long seq, int op, const char *coll, json_int_t id) {
  assert_non_null(ch);
  long long got = json_integer_value(json_object_get(ch, "seq"));
  if (!is_mongo()) assert_int_equal(got, seq);
  assert_true(seq == 1 || got > g_last_seq);
  g_last_seq = got;
  assert_int_equal(json_integer_value(json_object_get(ch, "op")), op);
  assert_string_equal(json_string_value(json_object_get(ch, "coll")), coll);
  assert_int_equal(json_integer_value(json_object_get(ch, "id")), id);
  assert_true(json_integer_value(json_object_get(ch, "time")) > 0);
}

static void test_change_log(void **state) {
  (void)state;
  store_err e;
  const char *T = "chg", *O = "chg-other";
  store_changes_page p;
  CHK(STORE_OK, store_changes(g_st, T, 0, 10, &p, &e));
  assert_int_equal(json_array_size(p.changes), 0);
  assert_int_equal(p.head, 0);
  assert_int_equal(p.floor, 0);
  store_changes_clear(&p);

  insert_text(T, "props", "{\"id\":1,\"parent\":1,\"v\":\"a\"}");
  insert_text(T, "props", "{\"id\":2,\"parent\":1}");
  insert_text(O, "props", "{\"id\":1,\"parent\":1}");
  json_t *dup = J("{\"id\":1,\"parent\":9}"), *one = json_integer(1), *two = json_integer(2);
  CHK(STORE_EDUPLICATE, store_insert(g_st, T, "props", dup, &e)); /* no change */
  json_t *set = J("{\"v\":\"b\"}"), *out = NULL;
  CHK(STORE_OK, store_patch(g_st, T, "props", one, set, &out, &e));
  json_decref(out);
  json_t *rep = J("{\"id\":2,\"parent\":2,\"w\":1}");
  CHK(STORE_OK, store_replace(g_st, T, "props", rep, &e));
  CHK(STORE_OK, store_delete(g_st, T, "props", one, &e));
  CHK(STORE_ENOTFOUND, store_delete(g_st, T, "props", one, &e)); /* no change */
  insert_text(T, "props", "{\"id\":3,\"parent\":2}");
  json_t *par = json_integer(2);
  store_cond c = {"parent", STORE_EQ, par};
  long long n = 0;
  CHK(STORE_OK, store_delete_where(g_st, T, "props", &c, 1, &n, &e));
  assert_int_equal(n, 2);

  store_changes_page last = {0};
  json_t *all = all_changes(g_st, T, 0, &last);
  assert_int_equal(json_array_size(all), 8);
  expect_change(json_array_get(all, 0), 1, STORE_CHANGE_CREATE, "props", 1);
  expect_change(json_array_get(all, 1), 2, STORE_CHANGE_CREATE, "props", 2);
  expect_change(json_array_get(all, 2), 3, STORE_CHANGE_UPDATE, "props", 1);
  assert_string_equal(
      json_string_value(json_object_get(json_object_get(json_array_get(all, 2), "doc"), "v")), "b");
  expect_change(json_array_get(all, 3), 4, STORE_CHANGE_UPDATE, "props", 2);
  expect_change(json_array_get(all, 4), 5, STORE_CHANGE_DELETE, "props", 1);
  /* A delete carries the document as it was (filters can match it). */
  assert_int_equal(
      json_integer_value(json_object_get(json_object_get(json_array_get(all, 4), "doc"), "parent")),
      1);
  expect_change(json_array_get(all, 5), 6, STORE_CHANGE_CREATE, "props", 3);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 6), "op")),
                   STORE_CHANGE_DELETE);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 7), "op")),
                   STORE_CHANGE_DELETE);
  long long last_seq = json_integer_value(json_object_get(json_array_get(all, 7), "seq"));
  assert_int_equal(last.head, last_seq);
  assert_int_equal(last.scanned, last_seq);
  /* A read past every position (how the service asks for the head) gives
   * the head, not the position asked after. */
  CHK(STORE_OK, store_changes(g_st, T, (long long)1 << 62, 1, &p, &e));
  assert_int_equal(json_array_size(p.changes), 0);
  assert_int_equal(p.head, last_seq);
  store_changes_clear(&p);
  json_t *first = all;

  /* Tenants have logs of their own. */
  all = all_changes(g_st, O, 0, NULL);
  assert_int_equal(json_array_size(all), 1);
  json_decref(all);
  all = first;
  /* Resuming after a position gives what follows it. */
  long long fifth = json_integer_value(json_object_get(json_array_get(all, 4), "seq"));
  json_decref(all);
  all = all_changes(g_st, T, fifth, NULL);
  assert_int_equal(json_array_size(all), 3);
  g_last_seq = fifth;
  expect_change(json_array_get(all, 0), 6, STORE_CHANGE_CREATE, "props", 3);
  json_decref(all);

  /* Pruning: nothing is newer than now + 1 s; the floor names the gap. */
  long long removed = 0;
  CHK(STORE_OK, store_changes_prune(g_st, 1, &removed, &e));
  assert_int_equal(removed, 0);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long now_us = (long long)ts.tv_sec * 1000000LL + ts.tv_nsec / 1000;
  CHK(STORE_OK, store_changes_prune(g_st, now_us + 1000000, &removed, &e));
  assert_true(removed >= 9);
  CHK(STORE_OK, store_changes(g_st, T, 0, 10, &p, &e));
  assert_int_equal(json_array_size(p.changes), 0);
  assert_int_equal(p.floor, last_seq);
  assert_int_equal(p.head, last_seq);
  store_changes_clear(&p);
  /* Numbering goes on after a prune. */
  insert_text(T, "props", "{\"id\":4,\"parent\":4}");
  all = all_changes(g_st, T, last_seq, NULL);
  assert_int_equal(json_array_size(all), 1);
  g_last_seq = last_seq;
  expect_change(json_array_get(all, 0), 9, STORE_CHANGE_CREATE, "props", 4);
  json_decref(all);
  json_decref(par);
  json_decref(rep);
  json_decref(set);
  json_decref(dup);
  json_decref(one);
  json_decref(two);
}

/* Writers on two handles (two replicas) at once: every acknowledged write is
 * in the log exactly once, positions are 1..N without holes, and each
 * document's changes are in the order its writes happened. */
static void *change_writer(void *arg) {
  worker *w = arg;
  store_err e = {0};
  store *st = replica(w->index);
  pthread_barrier_wait(w->go);
  for (int i = 0; i < 10 && !w->rc; i++) {
    char text[96];
    snprintf(text, sizeof text, "{\"id\":%d,\"n\":0}", w->index * 100 + i);
    json_t *doc = json_loads(text, 0, NULL), *id = json_integer(w->index * 100 + i);
    json_t *set = json_pack("{si}", "n", 1);
    if ((w->rc = store_insert(st, "chg-race", "props", doc, &e)) ||
        (w->rc = store_patch(st, "chg-race", "props", id, set, NULL, &e)) ||
        (i % 2 && (w->rc = store_delete(st, "chg-race", "props", id, &e))))
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
    else
      w->n_values += 2 + i % 2;
    json_decref(set);
    json_decref(id);
    json_decref(doc);
  }
  return NULL;
}

static void test_change_log_replicas(void **state) {
  (void)state;
  worker w[NTHREADS];
  run_replicas(w, NTHREADS, change_writer);
  int total = 0;
  for (int i = 0; i < NTHREADS; i++) {
    if (w[i].rc) print_error("writer %d: %s\n", i, w[i].msg);
    assert_int_equal(w[i].rc, 0);
    total += w[i].n_values;
  }
  json_t *all = all_changes(g_st, "chg-race", 0, NULL);
  assert_int_equal((int)json_array_size(all), total);
  json_t *state_of = json_object(); /* id -> last op seen */
  size_t i;
  json_t *ch;
  json_array_foreach(all, i, ch) {
    if (!is_mongo())
      assert_int_equal(json_integer_value(json_object_get(ch, "seq")), (long long)i + 1);
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(ch, "id")));
    int op = (int)json_integer_value(json_object_get(ch, "op"));
    int prev = (int)json_integer_value(json_object_get(state_of, key));
    int want = op == STORE_CHANGE_CREATE   ? 0
               : op == STORE_CHANGE_UPDATE ? STORE_CHANGE_CREATE
                                           : STORE_CHANGE_UPDATE;
    assert_int_equal(prev, want);
    if (op == STORE_CHANGE_UPDATE)
      assert_int_equal(json_integer_value(json_object_get(json_object_get(ch, "doc"), "n")), 1);
    json_object_set_new(state_of, key, json_integer(op));
  }
  json_decref(state_of);
  json_decref(all);
}

/* Creates that start together share groups (MongoDB: one claim insert, one
 * document insert, one mark insert for the lot), across two tenants; in each
 * round three of them use one id. Exactly one of the three lands, the others
 * get their duplicate error, every other create lands, and each tenant's
 * feed shows exactly the creates that landed, once each, with the document
 * that landed. */
enum { GFEED_THREADS = 16, GFEED_ROUNDS = 6, GFEED_DUPS = 3 };
static int g_gfeed_round;

static const char *gfeed_tenant(int index) {
  return index % 4 == 1 ? "gfeed-b" : "gfeed";
}

/* Threads 0 and the last GFEED_DUPS - 1 share thread 0's id (and tenant). */
static int gfeed_id(int index) {
  return g_gfeed_round * 100 + (index >= GFEED_THREADS - (GFEED_DUPS - 1) ? 0 : index);
}

static void *gfeed_create(void *arg) {
  worker *w = arg;
  store_err e = {0};
  const char *tenant =
      w->index >= GFEED_THREADS - (GFEED_DUPS - 1) ? gfeed_tenant(0) : gfeed_tenant(w->index);
  json_t *doc = json_pack("{s:i, s:i, s:i}", "id", gfeed_id(w->index), "parent", g_gfeed_round, "t",
                          w->index);
  pthread_barrier_wait(w->go);
  w->rc = store_insert(g_st, tenant, "props", doc, &e);
  if (w->rc) snprintf(w->msg, sizeof w->msg, "%s", e.msg);
  json_decref(doc);
  return NULL;
}

static void test_group_creates_feed(void **state) {
  (void)state;
  store_err e;
  json_t *landed[2] = {json_object(), json_object()}; /* per tenant: id -> t */
  for (g_gfeed_round = 0; g_gfeed_round < GFEED_ROUNDS; g_gfeed_round++) {
    worker w[GFEED_THREADS];
    memset(w, 0, sizeof w);
    run_workers(w, GFEED_THREADS, gfeed_create);
    int dup_ok = 0;
    for (int t = 0; t < GFEED_THREADS; t++) {
      int shared = t == 0 || t >= GFEED_THREADS - (GFEED_DUPS - 1);
      if (w[t].rc != STORE_OK && !(shared && w[t].rc == STORE_EDUPLICATE))
        print_error("round %d thread %d: %d %s\n", g_gfeed_round, t, w[t].rc, w[t].msg);
      assert_true(w[t].rc == STORE_OK || (shared && w[t].rc == STORE_EDUPLICATE));
      if (w[t].rc != STORE_OK) continue;
      dup_ok += shared;
      char key[32];
      snprintf(key, sizeof key, "%d", gfeed_id(t));
      int tenant_b = !shared && !strcmp(gfeed_tenant(t), "gfeed-b");
      json_object_set_new(landed[tenant_b], key, json_integer(t));
    }
    assert_int_equal(dup_ok, 1);
  }
  for (int k = 0; k < 2; k++) {
    const char *tenant = k ? "gfeed-b" : "gfeed";
    json_t *all = all_changes(g_st, tenant, 0, NULL);
    assert_int_equal(json_array_size(all), json_object_size(landed[k]));
    long long last = 0;
    json_t *seen = json_object();
    size_t i;
    json_t *ch;
    json_array_foreach(all, i, ch) {
      char key[32];
      long long seq = json_integer_value(json_object_get(ch, "seq"));
      assert_true(seq > last);
      last = seq;
      assert_int_equal(json_integer_value(json_object_get(ch, "op")), STORE_CHANGE_CREATE);
      snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(ch, "id")));
      assert_null(json_object_get(seen, key)); /* once */
      json_object_set_new(seen, key, json_true());
      json_t *want = json_object_get(landed[k], key);
      assert_non_null(want);
      assert_int_equal(json_integer_value(json_object_get(json_object_get(ch, "doc"), "t")),
                       json_integer_value(want));
      json_t *id = json_integer(json_integer_value(json_object_get(ch, "id"))), *doc = NULL;
      CHK(STORE_OK, store_get(g_st, tenant, "props", id, &doc, &e));
      assert_int_equal(json_integer_value(json_object_get(doc, "t")), json_integer_value(want));
      json_decref(doc);
      json_decref(id);
    }
    json_decref(seen);
    json_decref(all);
    json_decref(landed[k]);
  }
}

/* ---- change log positions across starts ---------------------------------- */

/* MongoDB only: the log as the server holds it, through a client of the
 * test's own (g_raw, for the test's duration). */
static mongoc_client_t *g_raw;

static mongoc_collection_t *raw_coll(const char *name) {
  if (!g_raw) g_raw = mongoc_client_new(g_url);
  return mongoc_client_get_collection(g_raw, "events_test", name);
}

/* The highest entry's position of a tenant (0: none), and how many entries
 * it has. */
static void log_extent(const char *tenant, long long *max, long long *count) {
  mongoc_collection_t *c = raw_coll("changes");
  bson_t *f = BCON_NEW("tenant", BCON_UTF8(tenant));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, f, NULL, NULL);
  const bson_t *d;
  bson_error_t be;
  *max = *count = 0;
  while (mongoc_cursor_next(cur, &d)) {
    bson_iter_t it;
    long long id = bson_iter_init_find(&it, d, "id") ? bson_iter_as_int64(&it) : 0;
    if (id > *max) *max = id;
    (*count)++;
  }
  assert_false(mongoc_cursor_error(cur, &be));
  mongoc_cursor_destroy(cur);
  bson_destroy(f);
  mongoc_collection_destroy(c);
}

/* A field of a tenant's top document, read or set straight on the server. */
static long long top_field(const char *tenant, const char *field) {
  mongoc_collection_t *c = raw_coll("changes_top");
  bson_t *f = BCON_NEW("_id", BCON_UTF8(tenant));
  mongoc_cursor_t *cur = mongoc_collection_find_with_opts(c, f, NULL, NULL);
  const bson_t *d;
  bson_iter_t it;
  bson_error_t be;
  long long got = 0;
  if (mongoc_cursor_next(cur, &d) && bson_iter_init_find(&it, d, field))
    got = bson_iter_as_int64(&it);
  assert_false(mongoc_cursor_error(cur, &be));
  mongoc_cursor_destroy(cur);
  bson_destroy(f);
  mongoc_collection_destroy(c);
  return got;
}

static void top_field_set(const char *tenant, const char *field, long long value) {
  mongoc_collection_t *c = raw_coll("changes_top");
  bson_t *f = BCON_NEW("_id", BCON_UTF8(tenant));
  bson_t *u = BCON_NEW("$set", "{", field, BCON_INT64(value), "}");
  bson_error_t be;
  assert_true(mongoc_collection_update_one(c, f, u, NULL, NULL, &be));
  bson_destroy(u);
  bson_destroy(f);
  mongoc_collection_destroy(c);
}

/* The tenant's top (0: none), or sets it (value 0: removes it). */
static long long log_top(const char *tenant, int set, long long value) {
  if (!set) return top_field(tenant, "value");
  mongoc_collection_t *c = raw_coll("changes_top");
  bson_t *f = BCON_NEW("_id", BCON_UTF8(tenant));
  bson_error_t be;
  if (value) {
    bson_t *u = BCON_NEW("$set", "{", "value", BCON_INT64(value), "}");
    bson_t *o = BCON_NEW("upsert", BCON_BOOL(true));
    assert_true(mongoc_collection_update_one(c, f, u, o, NULL, &be));
    bson_destroy(o);
    bson_destroy(u);
  } else {
    assert_true(mongoc_collection_delete_one(c, f, NULL, NULL, &be));
  }
  bson_destroy(f);
  mongoc_collection_destroy(c);
  return 0;
}

/* Removes the entry at a position and its mark: a hole in the log. */
static void log_hole(const char *tenant, long long pos) {
  static const char *const colls[] = {"changes", "changes_marks"};
  for (int i = 0; i < 2; i++) {
    mongoc_collection_t *c = raw_coll(colls[i]);
    bson_t *f = BCON_NEW("tenant", BCON_UTF8(tenant), "id", BCON_INT64(pos));
    bson_error_t be;
    bson_t reply;
    assert_true(mongoc_collection_delete_many(c, f, NULL, &reply, &be));
    bson_destroy(&reply);
    bson_destroy(f);
    mongoc_collection_destroy(c);
  }
}

/* Creates one document through a store handle of its own, opened for it
 * (a replica that just started: nothing cached), and closes it. */
static void create_fresh(const char *tenant, int id) {
  store_err e;
  store *st;
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  json_t *doc = json_pack("{s:i, s:i}", "id", id, "parent", 1);
  CHK(STORE_OK, store_insert(st, tenant, "props", doc, &e));
  json_decref(doc);
  store_close(st);
}

/* On MongoDB: a claim after a start lands exactly one past the highest
 * entry, never in a hole, however the tenant's top stands. */
static void expect_next_claim(const char *tenant, int id) {
  long long max0, n0, max1, n1;
  log_extent(tenant, &max0, &n0);
  create_fresh(tenant, id);
  log_extent(tenant, &max1, &n1);
  if (max1 != max0 + 1 || n1 != n0 + 1)
    print_error("%s: highest %lld of %lld entries, then %lld of %lld\n", tenant, max0, n0, max1,
                n1);
  assert_int_equal(max1, max0 + 1);
  assert_int_equal(n1, n0 + 1);
}

/* n documents from a handle of their own, closed after (its marks written). */
static void insert_fresh(const char *tenant, int first_id, int n) {
  store_err e;
  store *st;
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  for (int done = 0; done < n;) {
    enum { BATCH = 500 };
    json_t *docs[BATCH];
    int results[BATCH], k = n - done < BATCH ? n - done : BATCH;
    for (int i = 0; i < k; i++)
      docs[i] = json_pack("{s:i, s:i}", "id", first_id + done + i, "parent", 6);
    CHK(STORE_OK, store_insert_many(st, tenant, "props", docs, (size_t)k, 0, results, &e));
    for (int i = 0; i < k; i++) {
      assert_int_equal(results[i], STORE_OK);
      json_decref(docs[i]);
    }
    done += k;
  }
  store_close(st);
}

/* The head a handle opened now finds first, as a feed starting after a
 * restart asks for it. */
static long long fresh_head(const char *tenant) {
  store_err e;
  store *st;
  store_changes_page p;
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  CHK(STORE_OK, store_changes(st, tenant, (long long)1 << 62, 1, &p, &e));
  long long head = p.head;
  store_changes_clear(&p);
  store_close(st);
  return head;
}

enum { TOPRACE_THREADS = 8, TOPRACE_EACH = 6 };

static void *toprace_create(void *arg) {
  worker *w = arg;
  store_err e = {0};
  store *st = replica(w->index);
  pthread_barrier_wait(w->go);
  for (int i = 0; i < TOPRACE_EACH && !w->rc; i++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", 1000 + w->index * 100 + i, "parent", w->index);
    if ((w->rc = store_insert(st, "top-race", "props", doc, &e)))
      snprintf(w->msg, sizeof w->msg, "%s", e.msg);
    json_decref(doc);
  }
  return NULL;
}

/* Positions go on after a start from the highest one, on both engines. On
 * MongoDB (where a start finds the highest entry from the tenant's top,
 * not from the log): with the top current, behind (by a few positions, by
 * more than a claim walks), missing (a log from before the tops), and with
 * a hole in the log below it; and two replicas that both just started
 * claim at once past a stale top without meeting on a position. */
static void test_change_log_restart(void **state) {
  (void)state;
  store_err e;
  for (int i = 1; i <= 3; i++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", i, "parent", 1);
    CHK(STORE_OK, store_insert(g_st, "top", "props", doc, &e));
    json_decref(doc);
  }
  /* g_st claimed positions it has not written the top for; a replica that
   * starts now walks past them. */
  create_fresh("top", 4);
  create_fresh("top", 5);
  json_t *all = all_changes(g_st, "top", 0, NULL);
  assert_int_equal(json_array_size(all), 5);
  long long last = 0;
  size_t i;
  json_t *ch;
  json_array_foreach(all, i, ch) {
    long long seq = json_integer_value(json_object_get(ch, "seq"));
    assert_true(seq > last);
    last = seq;
    assert_int_equal(json_integer_value(json_object_get(ch, "id")), (json_int_t)i + 1);
  }
  json_decref(all);
  if (!is_mongo()) return;
  long long max, n;
  log_extent("top", &max, &n);
  assert_int_equal(max, 5);
  assert_int_equal(n, 5);
  /* A handle writes its top as it closes. */
  assert_int_equal(log_top("top", 0, 0), 5);

  /* Behind by a few: a lost position, then the next. */
  log_top("top", 1, 2);
  expect_next_claim("top", 6);
  assert_int_equal(log_top("top", 0, 0), 6);
  /* Missing: read from the log, then written. */
  log_top("top", 1, 0);
  expect_next_claim("top", 7);
  assert_int_equal(log_top("top", 0, 0), 7);

  /* Behind by more than a claim walks (MG_TOP_WALK). */
  enum { MANY = 300 };
  json_t *docs[MANY];
  int results[MANY];
  for (int k = 0; k < MANY; k++)
    docs[k] = json_pack("{s:i, s:i}", "id", 100 + k, "parent", 2);
  CHK(STORE_OK, store_insert_many(g_st, "top-far", "props", docs, MANY, 0, results, &e));
  for (int k = 0; k < MANY; k++) {
    assert_int_equal(results[k], STORE_OK);
    json_decref(docs[k]);
  }
  log_top("top-far", 1, 1);
  expect_next_claim("top-far", 1);

  /* A hole below the top (entries lost some other way): not refilled. */
  for (int k = 1; k <= 6; k++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", 1000 + k, "parent", 3);
    CHK(STORE_OK, store_insert(g_st, "top-hole", "props", doc, &e));
    json_decref(doc);
  }
  log_extent("top-hole", &max, &n);
  log_hole("top-hole", max - 2);
  log_top("top-hole", 1, max);
  expect_next_claim("top-hole", 2001);
  /* ... nor with no top at all. */
  log_top("top-hole", 1, 0);
  expect_next_claim("top-hole", 2002);

  /* A top below the floor: never a pruned position again. */
  for (int k = 1; k <= 3; k++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", k, "parent", 4);
    CHK(STORE_OK, store_insert(g_st, "top-pruned", "props", doc, &e));
    json_decref(doc);
  }
  all = all_changes(g_st, "top-pruned", 0, NULL); /* and g_st's marks are written */
  assert_int_equal(json_array_size(all), 3);
  json_decref(all);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long removed;
  CHK(STORE_OK,
      store_changes_prune(g_st, ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 + 1000000, &removed, &e));
  log_top("top-pruned", 1, 1);
  create_fresh("top-pruned", 4);
  store_changes_page p;
  CHK(STORE_OK, store_changes(g_st, "top-pruned", 0, 10, &p, &e));
  assert_int_equal(p.floor, 3);
  assert_int_equal(json_array_size(p.changes), 0); /* after = 0 is below the floor */
  store_changes_clear(&p);
  all = all_changes(g_st, "top-pruned", 3, NULL);
  assert_int_equal(json_array_size(all), 1);
  assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "seq")), 4);
  json_decref(all);

  /* A position cached before another replica pruned past it: the claim
   * goes above the floor, and the change is in the feed. */
  {
    json_t *doc = json_pack("{s:i, s:i}", "id", 1, "parent", 5);
    CHK(STORE_OK, store_insert(g_st, "cache-pruned", "props", doc, &e));
    json_decref(doc);
    /* g_st's mark written: another handle sees its entry settled only then
     * (or MG_SETTLE_US on), as another replica would. */
    all = all_changes(g_st, "cache-pruned", 0, NULL);
    assert_int_equal(json_array_size(all), 1);
    json_decref(all);
    store *other;
    CHK(STORE_OK, store_open(g_url, &schema, &other, &e));
    for (int k = 2; k <= 4; k++) {
      doc = json_pack("{s:i, s:i}", "id", k, "parent", 5);
      CHK(STORE_OK, store_insert(other, "cache-pruned", "props", doc, &e));
      json_decref(doc);
    }
    all = all_changes(other, "cache-pruned", 0, NULL); /* marks written */
    assert_int_equal(json_array_size(all), 4);
    json_decref(all);
    store_close(other); /* its marks too */
    CHK(STORE_OK, store_open(g_url, &schema, &other, &e));
    clock_gettime(CLOCK_REALTIME, &ts);
    CHK(STORE_OK, store_changes_prune(other, ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 + 1000000,
                                      &removed, &e));
    store_close(other);
    usleep(1100 * 1000); /* g_st's cached position is no longer fresh */
    doc = json_pack("{s:i, s:i}", "id", 5, "parent", 5);
    CHK(STORE_OK, store_insert(g_st, "cache-pruned", "props", doc, &e));
    json_decref(doc);
    store_changes_page p0;
    CHK(STORE_OK, store_changes(g_st, "cache-pruned", 0, 10, &p0, &e));
    long long floor = p0.floor;
    store_changes_clear(&p0);
    assert_int_equal(floor, 4);
    all = all_changes(g_st, "cache-pruned", floor, NULL);
    assert_int_equal(json_array_size(all), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(all, 0), "id")), 5);
    json_decref(all);
  }

  /* Two replicas, both just started, past a stale top at once. */
  for (int k = 0; k < 20; k++) {
    json_t *doc = json_pack("{s:i, s:i}", "id", k, "parent", 9);
    CHK(STORE_OK, store_insert(g_st, "top-race", "props", doc, &e));
    json_decref(doc);
  }
  log_top("top-race", 1, 3);
  store *mine = g_st;
  CHK(STORE_OK, store_open(g_url, &schema, &g_st, &e));
  worker w[TOPRACE_THREADS];
  run_replicas(w, TOPRACE_THREADS, toprace_create);
  store_close(g_st);
  g_st = mine;
  for (int t = 0; t < TOPRACE_THREADS; t++) {
    if (w[t].rc) print_error("thread %d: %d %s\n", t, w[t].rc, w[t].msg);
    assert_int_equal(w[t].rc, STORE_OK);
  }
  /* Every create once, at positions 21.. without a gap: none was claimed
   * twice (the second would have failed) nor left a hole. */
  all = all_changes(g_st, "top-race", 20, NULL);
  assert_int_equal(json_array_size(all), TOPRACE_THREADS * TOPRACE_EACH);
  json_t *seen = json_object();
  json_array_foreach(all, i, ch) {
    assert_int_equal(json_integer_value(json_object_get(ch, "seq")), 21 + (long long)i);
    char key[32];
    snprintf(key, sizeof key, "%lld", (long long)json_integer_value(json_object_get(ch, "id")));
    assert_null(json_object_get(seen, key));
    json_object_set_new(seen, key, json_true());
  }
  json_decref(seen);
  json_decref(all);
  /* Written by both, with FerretDB's $max a read then a write: one of the
   * positions claimed, not necessarily the highest. */
  long long top = log_top("top-race", 0, 0);
  assert_true(top > 20 && top <= 20 + TOPRACE_THREADS * TOPRACE_EACH);
  mongoc_client_destroy(g_raw);
  g_raw = NULL;
}
/* The head is saved in the tenant's top document, so that a start's first
 * feed read walks from there, not from the floor (on FerretDB the walk of a
 * 100k log took more than 10 minutes). Observed through a hole: a walk from
 * the floor stops below it, one from the saved head does not. */
static void test_change_log_head_saved(void **state) {
  (void)state;
  const char *t = "head-saved";
  insert_fresh(t, 1, 1500);
  assert_int_equal(fresh_head(t), 1500);
  if (!is_mongo()) return;
  assert_int_equal(top_field(t, "head"), 1500); /* saved once a page past */
  log_hole(t, 2);
  assert_int_equal(fresh_head(t), 1500);
  /* Without it a fresh handle walks from the floor, and stops at the hole. */
  top_field_set(t, "head", 0);
  assert_int_equal(fresh_head(t), 1);

  /* A saved head below the floor: the walk starts at the floor. */
  store_err e;
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  long long removed;
  CHK(STORE_OK,
      store_changes_prune(g_st, ts.tv_sec * 1000000LL + ts.tv_nsec / 1000 + 1000000, &removed, &e));
  insert_fresh(t, 2001, 5);
  top_field_set(t, "head", 3);
  long long max, n;
  log_extent(t, &max, &n);
  assert_int_equal(n, 5);
  assert_int_equal(fresh_head(t), max);
  /* Saved at close when it moved less than a page. */
  insert_fresh(t, 2006, 5);
  assert_int_equal(fresh_head(t), max + 5);
  assert_int_equal(top_field(t, "head"), max + 5);
}

/* The head is saved once it is a page past what is saved: not on every
 * read of a busy feed, and not only at close, so a start after a crash
 * walks about a page more than it must. A replica whose head is behind
 * never lowers it ($max). Observed on the top document while the handles
 * are open, and through a hole below the saved head for a handle started
 * meanwhile (as after a crash of the one that saved it). */
static void test_change_log_head_save_bound(void **state) {
  (void)state;
  const char *t = "head-bound";
  store_err e;
  store *behind, *st;
  store_changes_page p;
  insert_fresh(t, 1, 500);
  CHK(STORE_OK, store_open(g_url, &schema, &behind, &e));
  CHK(STORE_OK, store_changes(behind, t, (long long)1 << 62, 1, &p, &e));
  assert_int_equal(p.head, 500);
  store_changes_clear(&p);
  insert_fresh(t, 501, 1000);
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  CHK(STORE_OK, store_changes(st, t, (long long)1 << 62, 1, &p, &e));
  assert_int_equal(p.head, 1500);
  store_changes_clear(&p);
  /* Saved while open, less than a page behind (walks save page by page). */
  long long saved = is_mongo() ? top_field(t, "head") : 1500;
  assert_true(saved > 500 && saved <= 1500 && 1500 - saved < 1000);
  store_close(behind);
  if (is_mongo()) assert_int_equal(top_field(t, "head"), saved);

  /* A watcher at the head: each read moves it by 2, none writes it. */
  for (int i = 0; i < 5; i++) {
    insert_fresh(t, 2001 + 2 * i, 2);
    CHK(STORE_OK, store_changes(st, t, 1500 + 2 * i, 100, &p, &e));
    assert_int_equal(json_array_size(p.changes), 2);
    assert_int_equal(p.scanned, 1502 + 2 * i);
    assert_int_equal(p.head, 1502 + 2 * i);
    store_changes_clear(&p);
    if (is_mongo()) assert_int_equal(top_field(t, "head"), saved);
  }
  if (is_mongo()) {
    log_hole(t, 2);
    assert_int_equal(fresh_head(t), 1510);
  }
  store_close(st);
}

/* Sets fields of a tenant's log entry straight on the server, and removes
 * its mark: the entry reads as its writer left it. */
static void log_entry_set(const char *tenant, long long pos, bson_t *set) {
  mongoc_collection_t *c = raw_coll("changes");
  bson_t *f = BCON_NEW("tenant", BCON_UTF8(tenant), "id", BCON_INT64(pos));
  bson_t *u = BCON_NEW("$set", BCON_DOCUMENT(set));
  bson_error_t be;
  bson_t reply;
  assert_true(mongoc_collection_update_one(c, f, u, NULL, NULL, &be));
  mongoc_collection_destroy(c);
  c = raw_coll("changes_marks");
  assert_true(mongoc_collection_delete_many(c, f, NULL, &reply, &be));
  bson_destroy(&reply);
  bson_destroy(u);
  bson_destroy(f);
  bson_destroy(set);
  mongoc_collection_destroy(c);
}

/* A walk for the head that is cut short keeps what it walked, page by
 * page: the next one (of this process, or of the next start) goes on from
 * there. On FerretDB a page scans the whole log, and a walk from the floor
 * of a long one may time out or be killed before it ends; started from
 * the floor every time, it would never end. Cut here by an entry that
 * cannot be settled (an abandoned claim naming an invalid collection). */
static void test_change_log_head_walk_cut(void **state) {
  (void)state;
  if (!is_mongo()) skip();
  const char *t = "head-cut";
  store_err e;
  store_changes_page p;
  insert_fresh(t, 1, 2500);
  log_entry_set(t, 2400, BCON_NEW("st", "p", "time", BCON_INT64(1), "coll", "x$y"));
  store *st;
  CHK(STORE_OK, store_open(g_url, &schema, &st, &e));
  assert_int_not_equal(store_changes(st, t, (long long)1 << 62, 1, &p, &e), STORE_OK);
  assert_int_equal(top_field(t, "head"), 2000);
  /* This process goes on from there: a hole below it is not seen. */
  log_hole(t, 2);
  log_entry_set(t, 2400, BCON_NEW("st", "c", "coll", "props"));
  CHK(STORE_OK, store_changes(st, t, (long long)1 << 62, 1, &p, &e));
  assert_int_equal(p.head, 2500);
  store_changes_clear(&p);
  store_close(st);
}

static int group_setup(void **state) {
  (void)state;
  store_err e;
  if (store_open(g_url, &schema, &g_st, &e)) {
    fprintf(stderr, "store_open %s: %s\n", g_url, e.msg);
    return -1;
  }
  return 0;
}

static int group_teardown(void **state) {
  (void)state;
  store_close(g_st);
  g_st = NULL;
  return 0;
}

/* The driver's monitor logs every failed reconnect at debug level during the
 * outage test; warnings and errors still show. */
static void quiet_mongoc_log(mongoc_log_level_t level, const char *domain, const char *message,
                             void *data) {
  if (level <= MONGOC_LOG_LEVEL_WARNING) mongoc_log_default_handler(level, domain, message, data);
}

static int rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw) {
  (void)sb;
  (void)flag;
  (void)ftw;
  return remove(path);
}

int main(int argc, char **argv) {
  if (argc == 4 && !strcmp(argv[1], "--child-writer")) return child_writer(argv[2], argv[3]);
  if (argc != 2 || (strcmp(argv[1], "sqlite") && strcmp(argv[1], "mongodb"))) {
    fprintf(stderr, "usage: %s sqlite|mongodb\n", argv[0]);
    return 2;
  }
  g_engine = argv[1];
  mongoc_log_set_handler(quiet_mongoc_log, NULL);
  ssize_t n = readlink("/proc/self/exe", g_self, sizeof g_self - 1);
  if (n <= 0) return 2;
  g_self[n] = '\0';
  const char *tmpdir = getenv("TMPDIR");
  snprintf(g_tmp, sizeof g_tmp, "%s/events-store-test-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
  if (!mkdtemp(g_tmp)) {
    perror("mkdtemp");
    return 2;
  }
  if (is_mongo()) {
    g_fdb_bin = getenv("EVENTS_FERRETDB_BIN");
    if (!g_fdb_bin || access(g_fdb_bin, X_OK) != 0) {
      fprintf(stderr, "EVENTS_FERRETDB_BIN must name the events-ferretdb binary "
                      "(tests/ferretdb/build.sh builds it)\n");
      return 2;
    }
    snprintf(g_fdb_dir, sizeof g_fdb_dir, "%s/ferretdb", g_tmp);
    g_fdb_port = free_port();
    if (g_fdb_port <= 0 || fdb_start() != 0) return 2;
    /* No timeouts in the URI: the engine's defaults are what is tested. */
    snprintf(g_url, sizeof g_url, "mongodb://127.0.0.1:%d/events_test", g_fdb_port);
  } else {
    /* Parent directories do not exist yet: store_open creates them. */
    snprintf(g_url, sizeof g_url, "sqlite:%s/var/db/events.db", g_tmp);
  }

  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_open_and_arguments, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_crud, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_unique_index, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_query_forms, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_expressions, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_contains_ascii_fold, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_cursor_tampering, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_tenant_isolation, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_delete_where, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_unique_race, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_next_id, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_next_ids, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_insert_many, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_insert_many_race, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_patch_atomic, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_two_replicas, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_pages_during_inserts, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_group_creates, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_group_failures, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_group_insert_failures, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_durability, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log_replicas, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_group_creates_feed, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log_restart, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log_head_saved, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log_head_save_bound, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_change_log_head_walk_cut, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_outage, test_start, test_end),
      cmocka_unit_test_setup_teardown(test_checkpoint, test_start, test_end),
  };
  const char *filter = getenv("STORE_TEST_FILTER"); /* e.g. "*outage*" while debugging */
  if (filter && *filter) cmocka_set_test_filter(filter);
  int failed =
      is_mongo()
          ? cmocka_run_group_tests_name("storage_mongodb", tests, group_setup, group_teardown)
          : cmocka_run_group_tests_name("storage_sqlite", tests, group_setup, group_teardown);
  fdb_stop();
  nftw(g_tmp, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
  return failed ? 1 : 0;
}
