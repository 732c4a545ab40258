/* store_match.c - store conditions evaluated on one document in memory, as
 * the engines evaluate them in a query: a change feed filters the changes
 * it reads with the very conditions a list sends to the store. Also deep
 * copies of expressions, so a filter can outlive the request it came from. */
#include <stdlib.h>
#include <string.h>

#include "store_int.h"

/* SQLite's json_extract and MongoDB both compare numbers by value whatever
 * their type, and booleans as 1 and 0 (SQLite) or apart (MongoDB, where a
 * boolean never meets a number in these filters). -2: not comparable. */
static int cmp(json_t *a, json_t *b) {
  if (json_is_boolean(a))
    a = json_is_true(a) ? json_integer(1) : json_integer(0);
  else
    json_incref(a);
  if (json_is_boolean(b))
    b = json_is_true(b) ? json_integer(1) : json_integer(0);
  else
    json_incref(b);
  int r = -2;
  if (json_is_number(a) && json_is_number(b)) {
    if (json_is_integer(a) && json_is_integer(b)) {
      json_int_t x = json_integer_value(a), y = json_integer_value(b);
      r = x < y ? -1 : x > y;
    } else {
      double x = json_number_value(a), y = json_number_value(b);
      r = x < y ? -1 : x > y;
    }
  } else if (json_is_string(a) && json_is_string(b)) {
    size_t la = json_string_length(a), lb = json_string_length(b);
    int c = memcmp(json_string_value(a), json_string_value(b), la < lb ? la : lb);
    r = c ? (c < 0 ? -1 : 1) : la < lb ? -1 : la > lb;
  }
  json_decref(a);
  json_decref(b);
  return r;
}

static int eq(json_t *a, json_t *b) {
  return a && b && cmp(a, b) == 0;
}

static int in_list(json_t *v, json_t *list) {
  size_t i;
  json_t *x;
  json_array_foreach(list, i, x) if (eq(v, x)) return 1;
  return 0;
}

/* ASCII case folded substring, as both engines' CONTAINS. */
static int contains_fold(const char *hay, const char *needle) {
  size_t n = strlen(needle);
  for (const char *p = hay;; p++) {
    size_t i = 0;
    while (i < n && p[i]) {
      char a = p[i], b = needle[i];
      if (a >= 'A' && a <= 'Z') a = (char)(a - 'A' + 'a');
      if (b >= 'A' && b <= 'Z') b = (char)(b - 'A' + 'a');
      if (a != b) break;
      i++;
    }
    if (i == n) return 1;
    if (!*p) return 0;
  }
}

static int match_cond(json_t *doc, const store_cond *c) {
  json_t *v = store_doc_path(doc, c->field);
  int present = v && !json_is_null(v);
  switch (c->op) {
  case STORE_EQ:
    return json_is_null(c->value) ? !present : present && eq(v, c->value);
  case STORE_IN:
    return present && in_list(v, c->value);
  case STORE_GT:
    return present && cmp(v, c->value) == 1;
  case STORE_GTE:
    return present && (cmp(v, c->value) == 1 || cmp(v, c->value) == 0);
  case STORE_LT:
    return present && cmp(v, c->value) == -1;
  case STORE_LTE:
    return present && (cmp(v, c->value) == -1 || cmp(v, c->value) == 0);
  case STORE_EXISTS:
    return present;
  case STORE_MISSING:
    return !present;
  case STORE_HAS:
    return json_is_array(v) && in_list(c->value, v);
  case STORE_HAS_ANY: {
    size_t i;
    json_t *x;
    if (!json_is_array(v)) return 0;
    json_array_foreach(c->value, i, x) if (in_list(x, v)) return 1;
    return 0;
  }
  case STORE_NONEMPTY:
    return json_is_array(v) && json_array_size(v) > 0;
  case STORE_CONTAINS:
    return json_is_string(v) && json_is_string(c->value) &&
           contains_fold(json_string_value(v), json_string_value(c->value));
  }
  return 0;
}

static int match_expr(json_t *doc, const store_expr *e) {
  switch (e->kind) {
  case STORE_X_COND:
    return match_cond(doc, &e->cond);
  case STORE_X_NOT:
    return e->n_operands == 1 && !match_expr(doc, &e->operands[0]);
  case STORE_X_AND:
    for (size_t i = 0; i < e->n_operands; i++)
      if (!match_expr(doc, &e->operands[i])) return 0;
    return 1;
  case STORE_X_OR:
    for (size_t i = 0; i < e->n_operands; i++)
      if (match_expr(doc, &e->operands[i])) return 1;
    return 0;
  }
  return 0;
}

int store_match(json_t *doc, const store_cond *conds, size_t n_conds, const store_expr *where) {
  if (!json_is_object(doc)) return 0;
  for (size_t i = 0; i < n_conds; i++)
    if (!match_cond(doc, &conds[i])) return 0;
  return !where || match_expr(doc, where);
}

/* Field names are copied too: an expression may name fields the request
 * owned. */
static int copy_into(store_expr *dst, const store_expr *src) {
  *dst = *src;
  dst->operands = NULL;
  dst->cond.field = NULL;
  dst->cond.value = NULL;
  if (src->kind == STORE_X_COND) {
    dst->cond.field = src->cond.field ? strdup(src->cond.field) : NULL;
    dst->cond.value = json_deep_copy(src->cond.value);
    return (!src->cond.field || dst->cond.field) && (!src->cond.value || dst->cond.value) ? 0 : -1;
  }
  if (!src->n_operands) return 0;
  store_expr *ops = calloc(src->n_operands, sizeof *ops);
  if (!ops) return -1;
  dst->operands = ops;
  for (size_t i = 0; i < src->n_operands; i++)
    if (copy_into(&ops[i], &src->operands[i]) < 0) return -1;
  return 0;
}

static void free_inside(store_expr *e) {
  if (e->kind == STORE_X_COND) {
    free((char *)e->cond.field);
    json_decref(e->cond.value);
    return;
  }
  for (size_t i = 0; e->operands && i < e->n_operands; i++)
    free_inside((store_expr *)&e->operands[i]);
  free((store_expr *)e->operands);
}

store_expr *store_expr_dup(const store_expr *e) {
  store_expr *out = calloc(1, sizeof *out);
  if (!out) return NULL;
  if (copy_into(out, e) < 0) {
    store_expr_free(out);
    return NULL;
  }
  return out;
}

void store_expr_free(store_expr *e) {
  if (!e) return;
  free_inside(e);
  free(e);
}
