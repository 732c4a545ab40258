/* gw_routes.c - the one route table, built from the protos' annotations:
 * every google.api.http binding of the embedded descriptor set becomes a
 * route (verb, path template, body, response body, success status and
 * summary from the annotations; query parameters from the request's own
 * fields). What the annotations cannot say comes from each dialect's hook
 * rows (gw_dialects.h): envelopes, query syntax, error bodies. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"

#include "events/activity/v1/activity.pb-c.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "events/customer/v1/customer.pb-c.h"
#include "events/object/v1/object.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

extern const unsigned char events_descriptor_set[];
extern const size_t events_descriptor_set_len;

#define LOCAL(m, path, fn, what)                                                                   \
  { .method = m, .tmpl = path, .dialect = &gw_plain, .local = fn, .summary = what }

static const gw_route local[] = {
    LOCAL("GET", "/healthz", gw_healthz, "Liveness: the gateway process is up"),
    {.method = "GET",
     .tmpl = "/readyz",
     .dialect = &gw_plain,
     .rpc = "/grpc.health.v1.Health/Check",
     .service = &grpc__health__v1__health__descriptor,
     .build = gw_readyz_build,
     .render = gw_readyz_render,
     .render_failures = 1,
     .timeout_ms = 2000,
     .summary = "Readiness: the service answers its health check SERVING"},
    LOCAL("GET", "/openapi.json", gw_openapi, "This OpenAPI document"),
    LOCAL("GET", "/metrics", gw_metrics, "Prometheus metrics"),
};

static const gw_route hooks[] = {CUSTOMER_HOOKS CATALOG_HOOKS OBJECT_HOOKS ACTIVITY_HOOKS};

static const ProtobufCServiceDescriptor *const services[] = {
    &events__activity__v1__activity_event_service__descriptor,
    &events__customer__v1__customer_event_service__descriptor,
    &events__catalog__v1__event_catalog_service__descriptor,
    &events__object__v1__object_event_service__descriptor,
};

/* ---- building a table ---- */

static const ProtobufCServiceDescriptor *
service_of(const char *rpc, const ProtobufCServiceDescriptor *const *svcs, size_t n) {
  const char *slash = strrchr(rpc, '/');
  for (size_t i = 0; slash && i < n; i++) {
    size_t len = strlen(svcs[i]->name);
    if ((size_t)(slash - rpc - 1) == len && strncmp(rpc + 1, svcs[i]->name, len) == 0)
      return svcs[i];
  }
  return NULL;
}

static const ProtobufCMessageDescriptor *field_message(const ProtobufCMessageDescriptor *d,
                                                       const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  return f && f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
}

/* Whether the template binds field `name` (as a whole or a member of it). */
static int in_template(const char *tmpl, const char *name) {
  size_t len = strlen(name);
  for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{'))
    if (strncmp(p + 1, name, len) == 0 && (p[1 + len] == '}' || p[1 + len] == '.')) return 1;
  return 0;
}

/* A field a query parameter can set: a scalar, an enum, a wrapper or a
 * Timestamp, or a repeated scalar. */
static int queryable(const ProtobufCFieldDescriptor *f) {
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return f->type != PROTOBUF_C_TYPE_BYTES;
  if (f->label == PROTOBUF_C_LABEL_REPEATED) return 0;
  const char *name = ((const ProtobufCMessageDescriptor *)f->descriptor)->name;
  return strncmp(name, "google.protobuf.", 16) == 0 &&
         strcmp(name, "google.protobuf.Struct") != 0 &&
         strcmp(name, "google.protobuf.Value") != 0 &&
         strcmp(name, "google.protobuf.FieldMask") != 0;
}

/* The query parameters of a binding: the request's fields that neither the
 * path nor the body binds, by name or by their (events.api.v1.field).rest_name;
 * "-" keeps one gRPC-only. NULL-terminated. */
static gw_qparam *query_map(const api *a, const ProtobufCMessageDescriptor *in,
                            const api_binding *b) {
  gw_qparam *map = calloc(in->n_fields + 1, sizeof *map);
  size_t n = 0;
  if (!map || strcmp(b->body, "*") == 0) return map;
  for (unsigned i = 0; i < in->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &in->fields[i];
    const char *q = api_field_of(a, in, f).rules->rest_name;
    /* A field named for the URL is the dialect's query syntax to read,
     * whatever its type (JSON:API's filter[name] sets a filter message). */
    if (!(queryable(f) || (q && *q)) || in_template(b->path, f->name) ||
        strcmp(b->body, f->name) == 0)
      continue;
    if (q && strcmp(q, "-") == 0) continue;
    map[n++] = (gw_qparam){q && *q ? q : f->name, f->name};
  }
  return map;
}

/* The REST name of template variable `var` (len bytes, a field path of
 * in): the last field's (events.api.v1.field).rest_name, or its name. */
static const char *rest_name(const api *a, const ProtobufCMessageDescriptor *in, const char *var,
                             size_t len, char *buf, size_t buf_len) {
  const ProtobufCMessageDescriptor *owner = in; /* the message of the current segment */
  for (size_t i = 0;;) {
    size_t end = i;
    while (end < len && var[end] != '.')
      end++;
    snprintf(buf, buf_len, "%.*s", (int)(end - i), var + i);
    const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(owner, buf);
    if (!f) return buf;
    if (end >= len) {
      const char *r = api_field_of(a, owner, f).rules->rest_name;
      return r && *r && strcmp(r, "-") != 0 ? r : buf;
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return buf;
    owner = f->descriptor;
    i = end + 1;
  }
}

static char *doc_template(const api *a, const ProtobufCMessageDescriptor *in, const char *tmpl) {
  size_t cap = strlen(tmpl) * 2 + 64, n = 0;
  char *out = malloc(cap);
  for (const char *p = tmpl; out && *p && n + 1 < cap;) {
    const char *close = *p == '{' ? strchr(p, '}') : NULL;
    if (!close) {
      out[n++] = *p++;
      continue;
    }
    char buf[128];
    const char *name = rest_name(a, in, p + 1, (size_t)(close - p - 1), buf, sizeof buf);
    int w = snprintf(out + n, cap - n, "{%s}", name);
    n += w > 0 && (size_t)w < cap - n ? (size_t)w : 0;
    p = close + 1;
  }
  if (out) out[n] = '\0';
  return out;
}

static const gw_route *hook_of(const char *rpc, const gw_route *hooks_, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(hooks_[i].rpc, rpc) == 0) return &hooks_[i];
  return NULL;
}

static int add_binding(gw_route *r, const api *a, const api_method *m, const api_binding *b,
                       const ProtobufCServiceDescriptor *svc, const gw_route *hook, char *err,
                       size_t err_len) {
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(svc, strrchr(m->rpc, '/') + 1);
  if (!md) {
    snprintf(err, err_len, "%s: no such method in %s", m->rpc, svc->name);
    return -1;
  }
  if (hook) *r = *hook;
  r->rpc = m->rpc;
  r->service = svc;
  r->api = a;
  if (!r->dialect) r->dialect = gw_dialect_for_path(b->path);
  r->method = b->verb;
  r->tmpl = b->path;
  r->body_field = b->body;
  r->response_field = b->response_body;
  r->needs_body = b->body[0] != '\0';
  r->summary = m->rules->summary;
  r->ok_status = m->rules->http_status;
  if (!r->body_desc && r->needs_body)
    r->body_desc = strcmp(b->body, "*") == 0 ? md->input : field_message(md->input, b->body);
  if (!r->resp_desc && !r->resp_schema)
    r->resp_desc = *b->response_body ? field_message(md->output, b->response_body) : md->output;
  if (!(r->doc_tmpl = doc_template(a, md->input, b->path))) {
    snprintf(err, err_len, "out of memory");
    return -1;
  }
  if (!r->query) {
    if (!(r->owned_query = query_map(a, md->input, b))) {
      snprintf(err, err_len, "out of memory");
      return -1;
    }
    r->query = r->owned_query;
  }
  return 0;
}

int gw_routes_build(const api *a, const ProtobufCServiceDescriptor *const *svcs, size_t n_svcs,
                    const gw_route *hooks_, size_t n_hooks, const gw_route *local_, size_t n_local,
                    gw_route **out, size_t *n_out, char *err, size_t err_len) {
  size_t n_methods, cap = n_local;
  const api_method *ms = api_methods(a, &n_methods);
  for (size_t i = 0; i < n_methods; i++)
    cap += ms[i].n_bindings;
  gw_route *t = calloc(cap + 1, sizeof *t);
  size_t n = 0;
  if (!t) goto fail_memory;
  for (; n < n_local; n++)
    t[n] = local_[n];
  for (size_t i = 0; i < n_methods; i++) {
    if (!ms[i].n_bindings) continue;
    const ProtobufCServiceDescriptor *svc = service_of(ms[i].rpc, svcs, n_svcs);
    if (!svc) continue; /* health, reflection: not REST */
    for (size_t k = 0; k < ms[i].n_bindings; k++) {
      if (!ms[i].bindings[k].verb) continue; /* custom verbs: not served */
      if (add_binding(&t[n], a, &ms[i], &ms[i].bindings[k], svc,
                      hook_of(ms[i].rpc, hooks_, n_hooks), err, err_len) < 0) {
        gw_routes_free(t, n + 1);
        return -1;
      }
      n++;
    }
  }
  *out = t;
  *n_out = n;
  return 0;
fail_memory:
  snprintf(err, err_len, "out of memory");
  return -1;
}

void gw_routes_free(gw_route *routes, size_t n) {
  for (size_t i = 0; routes && i < n; i++) {
    free(routes[i].owned_query);
    free(routes[i].doc_tmpl);
  }
  free(routes);
}

/* ---- the process's table ---- */

static pthread_once_t once = PTHREAD_ONCE_INIT;
static api *the_api;
static gw_route *table;
static size_t n_table;
static char load_err[256];

static void load(void) {
  if (api_open(events_descriptor_set, events_descriptor_set_len, &the_api, load_err,
               sizeof load_err) < 0)
    return;
  if (gw_routes_build(the_api, services, sizeof services / sizeof *services, hooks,
                      sizeof hooks / sizeof *hooks, local, sizeof local / sizeof *local, &table,
                      &n_table, load_err, sizeof load_err) < 0) {
    api_close(the_api);
    the_api = NULL;
  }
}

int gw_routes_load(char *err, size_t err_len) {
  pthread_once(&once, load);
  if (table) return 0;
  snprintf(err, err_len, "%s", load_err);
  return -1;
}

const gw_route *gw_routes(size_t *n) {
  pthread_once(&once, load);
  *n = n_table;
  return table;
}

const api *gw_api(void) {
  pthread_once(&once, load);
  return the_api;
}
