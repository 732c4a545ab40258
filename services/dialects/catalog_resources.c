/* catalog_resources.c - List Resources: the tenant's categories, events and
 * properties as one list, filtered, sorted and paged.
 *
 * The filter (a FilterExpression) becomes one store expression per kind:
 * conditions on the type are known for a kind, so they fold to true or
 * false there, and a kind whose filter folds to false is not queried; the
 * rest runs in the store (SQL or a MongoDB query document), never over the
 * tenant's data in memory. Each kind's collection answers its first
 * offset+size matches in the requested order with its count, and a merge of
 * those three sorted pages gives the page asked for. Pages reach at most
 * MAX_RESULTS results, which bounds every query. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "catalog.h"
#include "docs.h"
#include "pbjson.h"
#include "rpc_feed.h"

#define MAX_RESULTS 10000
#define MAX_NODES 512 /* expression nodes of one kind's compiled filter */
/* Operands of one and/or: the proto's max_items, which rpc_validate checks
 * on the top levels of a request only. */
#define MAX_OPERANDS 100
/* Levels of a filter. The store takes STORE_MAX_EXPR_DEPTH, and compiling
 * adds up to two: the AND with the teams parameter on top, and the NOT of an
 * is_set false at the bottom. */
#define MAX_FILTER_DEPTH (STORE_MAX_EXPR_DEPTH - 2)

typedef Events__Catalog__V1__FilterExpression FilterExpression;
typedef Events__Catalog__V1__FieldCondition FieldCondition;

typedef enum { F_ID, F_KIND, F_TEXT, F_UUID, F_BOOL, F_LIST, F_TIME } field_type;

/* The fields of the resources as the REST API names them, and where the
 * stored documents keep them. */
static const struct field {
  const char *name, *member;
  field_type type;
} fields[] = {
    {"id", "id", F_ID},
    {"type", NULL, F_KIND},
    {"entity_type", NULL, F_KIND},
    {"title", "title", F_TEXT},
    {"description", "description", F_TEXT},
    {"parent_id", "parent", F_UUID},
    {"integration_id", "integration", F_UUID},
    {"pii", "pii", F_BOOL},
    {"verified", "verified", F_BOOL},
    {"published", "published", F_BOOL},
    {"teams", "teams", F_LIST},
    {"owners", "owners", F_LIST},
    {"tags", "tags", F_LIST},
    {"created_at", "created_at", F_TIME},
    {"updated_at", "updated_at", F_TIME},
};

/* The type names of the kinds, as the seed writes them. */
static const char *const type_names[N_KINDS] = {"event_category", "event", "event_property"};

static const struct field *field_named(const char *name) {
  for (size_t i = 0; i < sizeof fields / sizeof *fields; i++)
    if (strcmp(fields[i].name, name) == 0) return &fields[i];
  return NULL;
}

/* One kind's compiled filter: nodes and the JSON values they borrow. */
typedef struct compiled {
  store_expr nodes[MAX_NODES];
  size_t n_nodes;
  json_t *values; /* array owning every value */
} compiled;

/* A compiled subexpression: always true, always false, or a store node. */
typedef struct result {
  enum { R_TRUE, R_FALSE, R_EXPR } is;
  store_expr expr;
} result;

static result constant(int truth) {
  return (result){truth ? R_TRUE : R_FALSE, {0}};
}

static json_t *keep(compiled *cp, json_t *v) {
  if (v) json_array_append_new(cp->values, v);
  return v;
}

static int violation(rpc_call *c, const char *path, const char *fmt, const char *what) {
  rpc_violation(c, path, "invalid_value_format", fmt, path, what);
  return -1;
}

/* The value of one scalar of a condition under op, in the stored form of
 * field f: ids and UUIDs as 32 hex digits, times as microseconds. NULL
 * (violation recorded) when it has another type; JSON null when no stored
 * value can equal it. */
static json_t *stored_scalar(rpc_call *c, const struct field *f, store_op op,
                             const Google__Protobuf__Value *v, const char *path) {
  int is_text = v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  switch (f->type) {
  case F_BOOL:
    if (v && v->kind_case == GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE)
      return v->bool_value ? json_true() : json_false();
    violation(c, path, "%s: %s", "must be a boolean");
    return NULL;
  case F_TIME: {
    int64_t secs;
    int32_t nanos;
    if (is_text && pbjson_time_parse(v->string_value, &secs, &nanos) == 0) {
      json_int_t us = (json_int_t)secs * 1000000 + nanos / 1000; /* floor: nanos >= 0 */
      if (nanos % 1000 == 0) return json_integer(us);
      /* Stored times are whole microseconds: a finer bound moves to the
       * microsecond that keeps the comparison exact (t >= 5.1 is t > 5,
       * t < 5.1 is t <= 5), and no stored time equals it. */
      if (op == STORE_EQ || op == STORE_IN) return json_null();
      return json_integer(op == STORE_GTE || op == STORE_LT ? us + 1 : us);
    }
    violation(c, path, "%s: %s", "must be an RFC 3339 time");
    return NULL;
  }
  case F_ID:
  case F_UUID:
  case F_LIST: { /* the lists hold UUIDs too, kept as 32 hex digits */
    char norm[ID_LEN + 1];
    if (is_text && catalog_norm_uuid(v->string_value, norm)) return json_string(norm);
    violation(c, path, "%s: %s", "must be a UUID (32 hex digits, with or without dashes)");
    return NULL;
  }
  default:
    break;
  }
  if (is_text) return json_string(v->string_value);
  violation(c, path, "%s: %s", "must be a string");
  return NULL;
}

/* Whether a kind's type matches a condition on the type. */
static int kind_matches(rpc_call *c, const FieldCondition *fc, int k, const char *path,
                        int *truth) {
  const Google__Protobuf__Value *v = fc->value;
  switch (fc->operator_) {
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_EXACT:
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_CONTAINS:
    if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
      return violation(c, path, "%s: %s", "must be a string");
    /* contains ignores ASCII case here as the store does on text */
    *truth = fc->operator_ == EVENTS__CATALOG__V1__OPERATOR__OPERATOR_EXACT
                 ? strcmp(v->string_value, type_names[k]) == 0
                 : strcasestr(type_names[k], v->string_value) != NULL;
    return 0;
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_IN:
    if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE)
      return violation(c, path, "%s: %s", "must be a list");
    *truth = 0;
    for (size_t i = 0; i < v->list_value->n_values; i++) {
      const Google__Protobuf__Value *x = v->list_value->values[i];
      if (x->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE)
        return violation(c, path, "%s: %s", "must be a list of strings");
      *truth |= strcmp(x->string_value, type_names[k]) == 0;
    }
    return 0;
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_IS_SET:
    if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE)
      return violation(c, path, "%s: %s", "is_set takes true or false");
    *truth = v->bool_value; /* every resource has a type */
    return 0;
  default:
    return violation(c, path, "%s: %s", "the type takes exact, contains, in or is_set");
  }
}

static result compile(rpc_call *c, compiled *cp, const FilterExpression *fe, int k,
                      const char *path, int depth);

static result compile_condition(rpc_call *c, compiled *cp, const FieldCondition *fc, int k,
                                const char *path) {
  char fpath[300];
  snprintf(fpath, sizeof fpath, "%s.field", path);
  const struct field *f = fc->field ? field_named(fc->field) : NULL;
  if (!f) {
    rpc_violation(c, fpath, "not_allowed_value", "%s: unknown field '%s'", fpath,
                  fc->field ? fc->field : "");
    return constant(0);
  }
  snprintf(fpath, sizeof fpath, "%s.value", path);
  if (f->type == F_KIND) {
    int truth = 0;
    return kind_matches(c, fc, k, fpath, &truth) < 0 ? constant(0) : constant(truth);
  }
  store_cond cond = {f->member, STORE_EQ, NULL};
  const Google__Protobuf__Value *v = fc->value;
  switch (fc->operator_) {
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_EXACT:
    cond.op = f->type == F_LIST ? STORE_HAS : STORE_EQ;
    break;
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_CONTAINS:
    if (f->type != F_TEXT && f->type != F_LIST) {
      violation(c, fpath, "%s: %s", "contains applies to text and list fields");
      return constant(0);
    }
    cond.op = f->type == F_LIST ? STORE_HAS : STORE_CONTAINS;
    break;
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_IN:
    cond.op = f->type == F_LIST ? STORE_HAS_ANY : STORE_IN;
    break;
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_IS_SET:
    if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE) {
      violation(c, fpath, "%s: %s", "is_set takes true or false");
      return constant(0);
    }
    cond.op = f->type == F_LIST ? STORE_NONEMPTY : STORE_EXISTS;
    if (!v->bool_value) {
      /* NOT of the positive form: its complement, missing fields included. */
      result r = {R_EXPR, {.kind = STORE_X_COND, .cond = cond}};
      if (cp->n_nodes >= MAX_NODES) {
        rpc_violation(c, path, "out_of_range", "%s: the filter is too large", path);
        return constant(0);
      }
      cp->nodes[cp->n_nodes] = r.expr;
      return (result){
          R_EXPR, {.kind = STORE_X_NOT, .operands = &cp->nodes[cp->n_nodes++], .n_operands = 1}};
    }
    return (result){R_EXPR, {.kind = STORE_X_COND, .cond = cond}};
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_GT:
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_GTE:
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_LT:
  case EVENTS__CATALOG__V1__OPERATOR__OPERATOR_LTE:
    if (f->type == F_LIST || f->type == F_BOOL) {
      violation(c, fpath, "%s: %s", "ranges apply to text, ids and times");
      return constant(0);
    }
    cond.op = fc->operator_ == EVENTS__CATALOG__V1__OPERATOR__OPERATOR_GT    ? STORE_GT
              : fc->operator_ == EVENTS__CATALOG__V1__OPERATOR__OPERATOR_GTE ? STORE_GTE
              : fc->operator_ == EVENTS__CATALOG__V1__OPERATOR__OPERATOR_LT  ? STORE_LT
                                                                             : STORE_LTE;
    break;
  default:
    snprintf(fpath, sizeof fpath, "%s.operator", path);
    rpc_violation(c, fpath, "not_allowed_value",
                  "%s: one of exact, contains, in, is_set, gt, gte, lt, lte", fpath);
    return constant(0);
  }
  if (cond.op == STORE_IN || cond.op == STORE_HAS_ANY) {
    if (!v || v->kind_case != GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE) {
      violation(c, fpath, "%s: %s", "in takes a list");
      return constant(0);
    }
    json_t *list = keep(cp, json_array());
    for (size_t i = 0; list && i < v->list_value->n_values; i++) {
      json_t *x = stored_scalar(c, f, STORE_IN, v->list_value->values[i], fpath);
      if (!x) return constant(0);
      if (json_is_null(x))
        json_decref(x); /* equals nothing stored */
      else
        json_array_append_new(list, x);
    }
    cond.value = list;
  } else {
    cond.value = keep(cp, stored_scalar(c, f, cond.op, v, fpath));
    if (!cond.value) return constant(0);
    if (json_is_null(cond.value)) return constant(0); /* equals nothing stored */
  }
  return (result){R_EXPR, {.kind = STORE_X_COND, .cond = cond}};
}

/* AND / OR / NOT with constant folding: a kind's type conditions are known. */
static result compile_logical(rpc_call *c, compiled *cp,
                              const Events__Catalog__V1__LogicalExpression *le, int k,
                              const char *path, int depth) {
  int is_and = le->operator_ == EVENTS__CATALOG__V1__LOGICAL_OPERATOR__LOGICAL_OPERATOR_AND;
  int is_not = le->operator_ == EVENTS__CATALOG__V1__LOGICAL_OPERATOR__LOGICAL_OPERATOR_NOT;
  char opath[300];
  if (!is_and && !is_not &&
      le->operator_ != EVENTS__CATALOG__V1__LOGICAL_OPERATOR__LOGICAL_OPERATOR_OR) {
    snprintf(opath, sizeof opath, "%s.operator", path);
    rpc_violation(c, opath, "not_allowed_value", "%s: one of and, or, not", opath);
    return constant(0);
  }
  if (le->n_operands == 0 || (is_not && le->n_operands != 1)) {
    snprintf(opath, sizeof opath, "%s.operands", path);
    rpc_violation(c, opath, "invalid_value_format", "%s: %s", opath,
                  is_not ? "not takes exactly one operand" : "and/or take operands");
    return constant(0);
  }
  if (le->n_operands > MAX_OPERANDS) {
    /* Never cut short: a dropped operand changes the result. */
    snprintf(opath, sizeof opath, "%s.operands", path);
    rpc_violation(c, opath, "out_of_range", "%s: at most %d operands", opath, MAX_OPERANDS);
    return constant(0);
  }
  store_expr kids[MAX_OPERANDS];
  size_t n = 0;
  for (size_t i = 0; i < le->n_operands; i++) {
    snprintf(opath, sizeof opath, "%s.operands[%zu]", path, i);
    result r = compile(c, cp, le->operands[i], k, opath, depth + 1);
    if (is_not) {
      if (r.is != R_EXPR) return constant(r.is == R_FALSE);
    } else if (r.is == (is_and ? R_FALSE : R_TRUE)) {
      return r; /* decides the whole */
    } else if (r.is == (is_and ? R_TRUE : R_FALSE)) {
      continue; /* changes nothing */
    }
    kids[n++] = r.expr;
  }
  if (n == 0) return constant(is_and);
  if (n == 1 && !is_not) return (result){R_EXPR, kids[0]};
  if (cp->n_nodes + n > MAX_NODES) {
    rpc_violation(c, path, "out_of_range", "%s: the filter is too large", path);
    return constant(0);
  }
  store_expr *ops = &cp->nodes[cp->n_nodes];
  memcpy(ops, kids, n * sizeof *kids);
  cp->n_nodes += n;
  return (result){R_EXPR,
                  {.kind = is_not   ? STORE_X_NOT
                           : is_and ? STORE_X_AND
                                    : STORE_X_OR,
                   .operands = ops,
                   .n_operands = n}};
}

static result compile(rpc_call *c, compiled *cp, const FilterExpression *fe, int k,
                      const char *path, int depth) {
  char sub[300];
  if (depth >= MAX_FILTER_DEPTH) {
    rpc_violation(c, path, "out_of_range", "%s: nested deeper than %d levels", path,
                  MAX_FILTER_DEPTH);
    return constant(0);
  }
  switch (fe->expression_case) {
  case EVENTS__CATALOG__V1__FILTER_EXPRESSION__EXPRESSION_CONDITION:
    snprintf(sub, sizeof sub, "%s.condition", path);
    return compile_condition(c, cp, fe->condition, k, sub);
  case EVENTS__CATALOG__V1__FILTER_EXPRESSION__EXPRESSION_LOGICAL:
    snprintf(sub, sizeof sub, "%s.logical", path);
    return compile_logical(c, cp, fe->logical, k, sub, depth);
  default:
    rpc_violation(c, path, "required", "%s: a condition or a logical expression", path);
    return constant(0);
  }
}

static int rank(json_t *v) {
  return !v || json_is_null(v) ? 0 : json_is_boolean(v) ? 1 : json_is_number(v) ? 2 : 3;
}

/* The order of the list: a store order, or the type names as the seed
 * writes them; the type is the same throughout a kind, so then each kind is
 * read in id order and the merge puts the kinds in order. */
typedef struct list_order {
  store_order store;
  int by_type, desc;
} list_order;

/* One document of the merge and the kind it came from. */
typedef struct entry {
  json_t *doc;
  int kind;
} entry;

static int compare_ids(json_t *a, json_t *b) {
  return strcmp(json_string_value(json_object_get(a, "id")),
                json_string_value(json_object_get(b, "id")));
}

/* Orders two documents as the store does: the sort member (absent and null
 * first), then the id. */
static int compare_docs(const void *pa, const void *pb, void *arg) {
  const list_order *lo = arg;
  const store_order *o = &lo->store;
  const entry *ea = pa, *eb = pb;
  json_t *a = ea->doc, *b = eb->doc;
  if (lo->by_type) {
    int r = strcmp(type_names[ea->kind], type_names[eb->kind]);
    if (lo->desc) r = -r;
    return r ? r : compare_ids(a, b);
  }
  json_t *x = json_object_get(a, o->field), *y = json_object_get(b, o->field);
  int r = rank(x) - rank(y);
  if (!r && rank(x) == 1) r = json_is_true(x) - json_is_true(y);
  if (!r && rank(x) == 2) {
    double dx = json_number_value(x), dy = json_number_value(y);
    r = dx < dy ? -1 : dx > dy;
  }
  if (!r && rank(x) == 3) r = strcmp(json_string_value(x), json_string_value(y));
  if (o->desc) r = -r;
  return r ? r : compare_ids(a, b);
}

/* The sort of the request: a scalar field of the resources, or the type. */
static int sort_order(rpc_call *c, const Events__Catalog__V1__SortOrder *s, list_order *out) {
  *out = (list_order){{"created_at", 0}, 0, 0};
  if (!s) return 0;
  const struct field *f = s->field && *s->field ? field_named(s->field) : field_named("created_at");
  if (!f || f->type == F_LIST) {
    rpc_violation(c, "sort.field", "not_allowed_value", "sort.field: '%s' cannot be sorted on",
                  s->field);
    return -1;
  }
  out->desc = s->order == EVENTS__CATALOG__V1__SORT_DIRECTION__SORT_DIRECTION_DESC;
  out->by_type = f->type == F_KIND;
  out->store = out->by_type ? (store_order){"id", 0} : (store_order){f->member, out->desc};
  return 0;
}

/* Kind k's where clause: the filter (compiled into cp, its paths under
 * `path`) and, when given, the teams. 0 when the kind cannot match or the
 * call failed; else 1 with *where the clause (NULL: everything), held in
 * parts and all. */
static int kind_where(rpc_call *c, compiled *cp, const FilterExpression *fe, int k,
                      const char *path, json_t *teams, store_expr parts[2], store_expr *all,
                      store_expr **where) {
  cp->values = json_array();
  result r = fe ? compile(c, cp, fe, k, path, 0) : constant(1);
  if (r.is == R_FALSE || rpc_failed(c)) return 0;
  size_t n = 0;
  if (r.is == R_EXPR) parts[n++] = r.expr;
  if (json_array_size(teams))
    parts[n++] = (store_expr){.kind = STORE_X_COND, .cond = {"teams", STORE_HAS_ANY, teams}};
  *all = (store_expr){.kind = STORE_X_AND, .operands = parts, .n_operands = n};
  *where = n ? all : NULL;
  return 1;
}

/* The teams of a request, normalised, into the array `out`. */
static void norm_teams(char *const *teams, size_t n, json_t *out) {
  for (size_t i = 0; i < n; i++) {
    char norm[ID_LEN + 1];
    if (catalog_norm_uuid(teams[i], norm)) json_array_append_new(out, json_string(norm));
  }
}

void catalog_list_resources(Events__Catalog__V1__EventCatalogService_Service *svc,
                            const Events__Catalog__V1__ListResourcesRequest *in,
                            Events__Catalog__V1__ListResourcesResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  compiled *cp = calloc(N_KINDS, sizeof *cp);
  store_page pages[N_KINDS] = {0};
  Resource **results = NULL;
  size_t n_results = 0;
  entry *merged = NULL;
  size_t n_merged = 0;
  json_t *teams = json_array();
  list_order order;
  if (!cp || !teams) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto reply;
  }
  sort_order(c, in->sort, &order);
  size_t size = rpc_page_size(c, in->page_size), number = in->page > 0 ? (size_t)in->page : 1;
  size_t offset = (number - 1) * size;
  if (!rpc_failed(c) && offset >= MAX_RESULTS && number > 1) {
    rpc_fail(c, GRPC_STATUS_NOT_FOUND, "Invalid page.");
    goto reply;
  }
  norm_teams(in->teams, in->n_teams, teams);
  size_t want = offset + size > MAX_RESULTS ? MAX_RESULTS : offset + size;
  long long total = 0;
  char token[RPC_FEED_TOKEN_MAX];
  rpc_feed_list_token(c, token, sizeof token);
  for (int k = 0; k < N_KINDS && !rpc_failed(c); k++) {
    store_expr parts[2], all, *where;
    if (!kind_where(c, &cp[k], in->filter, k, "filter", teams, parts, &all, &where)) continue;
    store_query q = {
        .where = where, .order = &order.store, .n_order = 1, .limit = want, .count = 1};
    store_err err;
    if (store_find(rpc_store(c), rpc_tenant(c), catalog_kinds[k].coll, &q, &pages[k], &err) < 0) {
      rpc_fail_store_as(c, &err, "resource");
      break;
    }
    total += pages[k].total;
  }
  if (rpc_failed(c)) goto reply;
  /* Each kind gave its first `want` in order; the page is in their merge. */
  for (int k = 0; k < N_KINDS; k++)
    n_merged += json_array_size(pages[k].docs);
  merged = malloc((n_merged + 1) * sizeof *merged);
  if (!merged) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto reply;
  }
  size_t n = 0;
  for (int k = 0; k < N_KINDS; k++) {
    size_t i;
    json_t *d;
    json_array_foreach(pages[k].docs, i, d) merged[n++] = (entry){d, k};
  }
  qsort_r(merged, n, sizeof *merged, compare_docs, &order);
  if (total > MAX_RESULTS) total = MAX_RESULTS;
  long long pages_n = total ? (total + (long long)size - 1) / (long long)size : 1;
  json_t *page = (long long)number > pages_n ? NULL : json_array();
  for (size_t i = offset; page && i < n && i < offset + size && i < MAX_RESULTS; i++)
    json_array_append(page, merged[i].doc);
  if (!page) {
    rpc_fail(c, GRPC_STATUS_NOT_FOUND, "Invalid page.");
    goto reply;
  }
  int rc = doc_decode_all(c, page, &events__catalog__v1__resource__descriptor, NULL,
                          (ProtobufCMessage ***)&results, &n_results);
  json_decref(page);
  if (rc < 0) goto reply;
  Events__Catalog__V1__ListResourcesResponse out =
      EVENTS__CATALOG__V1__LIST_RESOURCES_RESPONSE__INIT;
  out.count = total;
  out.total_pages = (int32_t)pages_n;
  out.page = (int32_t)number;
  out.n_results = n_results;
  out.results = results;
  out.resume_token = token;
  done(&out, c);
reply:
  if (rpc_failed(c)) done(NULL, c);
  doc_free_all((ProtobufCMessage **)results, n_results);
  for (int k = 0; k < N_KINDS; k++) {
    store_page_clear(&pages[k]);
    if (cp) json_decref(cp[k].values);
  }
  free(cp);
  free(merged); /* borrowed the pages' documents */
  json_decref(teams);
}

/* ---- WatchResources: the same filter, on each change ---- */

static ProtobufCMessage *watch_decode(rpc_call *c, const char *coll, json_t *doc) {
  (void)coll;
  return doc_decode(c, doc, &events__catalog__v1__resource__descriptor);
}

void catalog_watch_resources(Events__Catalog__V1__EventCatalogService_Service *svc,
                             const Events__Catalog__V1__WatchResourcesRequest *in,
                             Events__Catalog__V1__WatchResourcesResponse_Closure done, void *call) {
  (void)svc;
  (void)done; /* a stream: rpc_feed answers */
  rpc_call *c = call;
  const Events__Catalog__V1__ListResourcesRequest *q = in->filter;
  rpc_feed_filter *f = rpc_feed_filter_new();
  json_t *teams = json_array();
  compiled *cp = calloc(N_KINDS, sizeof *cp); /* nodes: too big for the stack */
  if (!f || !teams || !cp) goto fail_memory;
  if (q) norm_teams(q->teams, q->n_teams, teams);
  for (int k = 0; k < N_KINDS && !rpc_failed(c); k++) {
    store_expr parts[2], all, *where;
    if (!kind_where(c, &cp[k], q ? q->filter : NULL, k, "filter.filter", teams, parts, &all,
                    &where))
      continue;
    if (rpc_feed_filter_add(f, catalog_kinds[k].coll, NULL, 0, where) < 0) goto fail_memory;
  }
  if (rpc_failed(c)) {
    rpc_feed_filter_free(f);
    f = NULL;
  } else {
    rpc_feed_open(c, f, watch_decode, in->resume_token);
    f = NULL;
  }
  goto cleanup;
fail_memory:
  rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  rpc_feed_filter_free(f);
cleanup:
  for (int k = 0; cp && k < N_KINDS; k++)
    json_decref(cp[k].values);
  free(cp);
  json_decref(teams);
}
