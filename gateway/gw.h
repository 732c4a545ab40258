/* gw.h - the gateway's shared types: an HTTP request as the route handlers
 * see it, the response they build, the route table and the dialect hooks. */
#ifndef EVENTS_GW_H
#define EVENTS_GW_H

#include <stddef.h>

#include <grpc/grpc.h>
#include <jansson.h>
#include <microhttpd.h>
#include <protobuf-c/protobuf-c.h>

#include "api.h"
#include "google/rpc/error_details.pb-c.h"
#include "pbjson.h"
#include "tls.h"
#include "trace.h"
#include "utf8.h"

#define GW_MAX_BODY (1u << 20)
#define GW_MAX_PARAMS 4

typedef struct gw_route gw_route;
typedef struct gw_req gw_req;
typedef struct gw_rpc_result gw_rpc_result;
/* The call a routed request turns into, from gw_begin to gw_finish. */
typedef struct gw_call_spec {
  const char *method; /* "/pkg.Service/Method" */
  ProtobufCMessage *in;
  const ProtobufCMessageDescriptor *out_desc;
  int timeout_ms;
} gw_call_spec;
/* How gw_handle reaches the service: the fuzzers' stand-in answering fuzzed
 * statuses and messages through the pipeline (the server calls
 * asynchronously, see gw_rpc_start). */
typedef int (*gw_call_fn)(const char *method, const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessageDescriptor *out_desc, int timeout_ms,
                          gw_rpc_result *res);
typedef struct gw_qparam {
  const char *param;
  const char *field; /* request field it sets */
} gw_qparam;
typedef struct gw_dialect gw_dialect;

/* One decoded query argument or header. */
typedef struct gw_query_arg {
  const char *key;
  const char *value; /* NULL: a query key without '=' */
} gw_query_arg;

struct gw_req {
  struct MHD_Connection *conn;
  gw_call_fn call;
  const char *method;
  const char *path;
  const char *body;
  size_t body_len;
  const char *authorization;
  char request_id[80];
  trace_ctx trace; /* this hop's span; its traceparent goes on to the service */
  const gw_route *route;
  size_t n_params;
  char *param_names[GW_MAX_PARAMS];
  char *param_values[GW_MAX_PARAMS];
  /* Without a connection (conn NULL: fuzzers, tests), the decoded query
   * arguments and the headers, in request order. */
  const gw_query_arg *args;
  size_t n_args;
  const gw_query_arg *headers;
  size_t n_headers;
};

typedef struct gw_resp {
  int status;
  json_t *body;             /* NULL: no body */
  const char *content_type; /* NULL: application/json */
  char *text;               /* preformatted body instead of json (e.g. metrics) */
  int retry_after;          /* seconds, for a Retry-After header; 0: none */
  char allow[64];           /* methods for an Allow header (405, OPTIONS); "": none */
} gw_resp;

/* Why a request failed, in terms every dialect can render. */
typedef struct gw_fail {
  int http;              /* status to answer */
  grpc_status_code code; /* the gRPC status behind it (OK when the gateway decided) */
  char message[512];
  char field[256];                            /* offending field or parameter, "" if none */
  char reason[64];                            /* "required", "invalid_value_format", ... */
  const Google__Rpc__BadRequest *bad_request; /* all violations, when the service sent them */
} gw_fail;

/* A dialect: what truly differs between the four APIs. */
struct gw_dialect {
  const char *name;
  const char *content_type; /* of responses */
  unsigned json_flags;      /* pbjson flags for bodies */
  /* Renders an error body for f into resp (status included). */
  void (*error)(const gw_req *req, const gw_fail *f, gw_resp *resp);
  /* Optional: checks the request before anything else (e.g. JSON:API media types). */
  int (*check)(const gw_req *req, gw_fail *f);
  /* JSON Schema of the error body, for the OpenAPI document. */
  json_t *(*error_schema)(void);
};

/* Request builder: fills the RPC request message `in` (already initialised)
 * from the HTTP request; returns 0 or -1 with f filled. */
typedef int (*gw_build_fn)(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
/* Response renderer: turns the RPC response into status + body. */
typedef int (*gw_render_fn)(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
/* Local handler (no RPC): healthz, readyz, openapi, metrics. */
typedef void (*gw_local_fn)(const gw_req *req, gw_resp *resp);

struct gw_route {
  const char *method;
  const char *tmpl; /* "/v1/objects/{objectId}/events/{eventId}" */
  const gw_dialect *dialect;
  const char *rpc; /* "/events.object.v1.ObjectEventService/GetEvent" */
  const ProtobufCServiceDescriptor *service;
  gw_build_fn build;
  gw_render_fn render;
  gw_local_fn local;
  int needs_body;      /* a JSON body is expected */
  int render_failures; /* render also answers failed calls (out NULL, f filled) */
  int timeout_ms;      /* the call's deadline; 0: EVENTS_RPC_TIMEOUT_MS */
  const char *summary; /* for the OpenAPI document */
  /* Query parameters the route accepts (mapped onto request fields),
   * terminated by a {NULL, NULL} row. */
  const gw_qparam *query;
  /* OpenAPI: parameters the dialect's query syntax reads beyond the map
   * (NULL-terminated; may be NULL), documented as text. */
  const char *const *doc_query;
  /* OpenAPI: the body's message, the success status and body: the response
   * message, wrapped in {resp_wrap: ...} when set, or resp_schema(). */
  const ProtobufCMessageDescriptor *body_desc;
  int ok_status;
  const ProtobufCMessageDescriptor *resp_desc;
  const char *resp_wrap;
  json_t *(*resp_schema)(void);
  json_t *(*body_schema)(void); /* OpenAPI: the request body, when not body_desc's message */
  /* From the http rule: the body ("": none, "*": the request, or a request
   * field) and the response_body ("": the whole response, or a field). */
  const char *body_field;
  const char *response_field;
  gw_qparam *owned_query; /* the query map derived from the request's fields */
  const api *api;         /* the annotations the route was built from */
  /* The path as the API documents it: each variable by its REST name
   * ("/v1/objects/{objectId}/events" for "{object_id}"); NULL: tmpl. */
  char *doc_tmpl;
};

/* ---- route table (gw_routes.c: built from the protos' annotations) ---- */
/* The process's route table, built on first use from the embedded
 * descriptor set; NULL with *n 0 when that fails (see gw_routes_load). */
const gw_route *gw_routes(size_t *n);
/* Builds the process's table now; -1 with err filled when the embedded
 * annotations do not make one (a broken build: refuse to start). */
int gw_routes_load(char *err, size_t err_len);
/* The annotations the process's table was built from (NULL before). */
const api *gw_api(void);
/* A route table: the local routes, then a route for every REST binding of
 * a's methods, completed by the hook row of its RPC (matched by rpc): the
 * dialect's builder and renderer for what the annotations cannot say. A
 * binding without a hook is served by the generic binding and rendering,
 * in the dialect whose base path holds it. The services resolve method
 * names; a method of none of them is an error. */
int gw_routes_build(const api *a, const ProtobufCServiceDescriptor *const *services,
                    size_t n_services, const gw_route *hooks, size_t n_hooks, const gw_route *local,
                    size_t n_local, gw_route **out, size_t *n_out, char *err, size_t err_len);
void gw_routes_free(gw_route *routes, size_t n);
/* Binding (gw_bind.c). Path parameters into the request fields their
 * template variables name; every routed call gets it before its builder. */
int gw_bind_path(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
/* The builder of a route without one: query parameters by the route's map,
 * and the body into its body field. */
int gw_bind_request(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
/* Whether field f of d is gRPC-only ((events.api.v1.field).rest_name "-"):
 * no query parameter, no member of a REST body, not in the OpenAPI document. */
int gw_grpc_only(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f);
/* The renderer of a route without one: the response (its response field)
 * as the dialect's JSON, in {resp_wrap: ...} when the route has one, with
 * the route's success status. */
int gw_render_default(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                      gw_resp *resp, gw_fail *f);
/* Checks a JSON body meant for message desc, into nested messages: members
 * that are not fields are unknown (the service owns the field rules). 0, or
 * -1 with f naming the member by its path (400). */
int gw_body_check(const api *a, json_t *body, const ProtobufCMessageDescriptor *desc,
                  unsigned flags, gw_fail *f);
/* Finds the route for method+path (as sent, not percent-decoded); fills req
 * params, each decoded once. Returns the route, or NULL with *status 404 (no
 * such path), 405 (path known, method not) or 400 (a parameter that is not
 * valid once decoded, see gw_path_param). */
const gw_route *gw_route_match(const gw_route *routes, size_t n, const char *method,
                               const char *path, gw_req *req, int *status);
/* gw_route_match that also names the parameter behind a 400 in bad. */
const gw_route *gw_route_find(const gw_route *routes, size_t n, const char *method,
                              const char *path, gw_req *req, int *status, char *bad,
                              size_t bad_len);
/* Percent-decodes the n bytes of one path segment into *out (malloc'd).
 * -1 for a malformed escape, or a value that is empty, '.' or '..', holds
 * '/', a control character or NUL, or is not UTF-8. */
int gw_path_param(const char *raw, size_t n, char **out);
/* The methods the routes serve on path, as an Allow header lists them
 * ("GET, HEAD, POST, OPTIONS"); "" when no route has its shape. */
void gw_route_allow(const gw_route *routes, size_t n, const char *path, char *buf, size_t len);
void gw_req_free_params(gw_req *req);
const char *gw_param(const gw_req *req, const char *name);
/* The WWW-Authenticate challenge of a 401 on path: Bearer, and Basic
 * where the dialect accepts it. */
const char *gw_challenge(const char *path);
/* The dialect whose paths contain `path` (for errors before routing). */
const gw_dialect *gw_dialect_for_path(const char *path);

/* ---- gRPC client (gw_rpc.c) ---- */
/* One shared channel to target; TLS when tls_on (see tls_channel_credentials),
 * checking the service's certificate against server_name when set. Calls
 * complete on one shared completion queue served by one thread. */
int gw_rpc_init(const char *target, const tls_files *tls, int tls_on, const char *server_name);
/* Destroys the channel and stops the completion thread, once no call is
 * pending. */
void gw_rpc_shutdown(void);
struct gw_rpc_result {
  grpc_status_code code;
  char *message;
  Google__Rpc__BadRequest *bad_request;
  ProtobufCMessage *response;
};
/* Called on the completion thread with the call's outcome, which it owns. */
typedef void (*gw_rpc_done_fn)(void *arg, gw_rpc_result *res);
/* Starts spec as an asynchronous call carrying req's Authorization, request
 * id and trace context as metadata; done runs exactly once, also when the
 * call cannot start (then possibly before gw_rpc_start returns). */
void gw_rpc_start(const gw_call_spec *spec, const gw_req *req, gw_rpc_done_fn done, void *arg);
void gw_rpc_result_clear(gw_rpc_result *res);
int gw_http_status(grpc_status_code code);

/* ---- helpers for dialects (gw_util.c) ---- */
/* Iterates the query string; returns the number of arguments. */
size_t gw_query(const gw_req *req, gw_query_arg *out, size_t cap);
/* The first value of query argument `key` (case-insensitive, as
 * libmicrohttpd looks it up); NULL when absent or given without '='. */
const char *gw_query_get(const gw_req *req, const char *key);
const char *gw_header(const gw_req *req, const char *name);
/* "scheme://host" the client used, for absolute links. */
void gw_base_url(const gw_req *req, char *buf, size_t len);
/* The absolute URL of this request's path with its query, the parameters
 * named in `drop` (NULL-terminated; may be NULL) left out and set_param=
 * set_value appended (when set_param is not NULL): a page's link. */
json_t *gw_page_url(const gw_req *req, const char *const *drop, const char *set_param,
                    const char *set_value);
/* Parses the body as a JSON object; on failure fills f (400). */
int gw_body_json(const gw_req *req, json_t **out, gw_fail *f);
void gw_fail_set(gw_fail *f, int http, const char *field, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* s as a JSON string, invalid UTF-8 repaired (utf8_json); never NULL
 * (barring memory). */
json_t *gw_text(const char *s);
void gw_fail_from_pbjson(gw_fail *f, const pbjson_err *e, const char *prefix);
/* Sets request fields from a JSON object (field names, typed values) - the
 * same mapper as bodies. */
int gw_merge(ProtobufCMessage *msg, json_t *fields, unsigned flags, gw_fail *f);
/* ---- query values (gw_query.c) ---- */
/* Converts a query-string value to the JSON type of `field` in `desc`
 * (integers, booleans, strings; timestamps and enums stay strings). Returns
 * a new reference or NULL with f naming `param`. */
json_t *gw_query_value(const ProtobufCMessageDescriptor *desc, const char *field, const char *param,
                       const char *value, gw_fail *f);

/* Query parameters -> request fields, typed by the fields; any parameter
 * not in `map` is an error naming it. */
int gw_query_fields(const gw_req *req, ProtobufCMessage *msg, const gw_qparam *map, unsigned flags,
                    gw_fail *f);

/* ---- REST names, bodies and masks (gw_bind.c); enum names and bounds (gw_query.c),
 * from the annotations ---- */
/* The name the REST client wrote for request field `field` (a field path as
 * the service or the mapper names it): a query parameter by the route's
 * map, a path variable by its (events.api.v1.field).rest_name, a member of
 * the body without the rule's body field ("event.name" -> "name"); else the
 * field itself. Written to out (cut to fit); returns out. */
const char *gw_rest_field(const gw_req *req, const char *field, char *out, size_t len);
/* desc (a service or mapper text) with its leading `field` renamed as
 * gw_rest_field names it, into out; 1 when it led with the field, else 0
 * with desc as it is. */
int gw_rest_detail(const gw_req *req, const char *field, const char *desc, char *out, size_t len);
/* The value of ed other than its zero ("unspecified") one whose JSON name,
 * as the mapper writes it, is exactly s (NULL: none); names, when not NULL,
 * gets all those names joined by sep. */
const ProtobufCEnumValue *gw_enum_named(const ProtobufCEnumDescriptor *ed, const char *s,
                                        const char *sep, char *names, size_t len);
/* Enum members of a body for message d must be such a name (the mapper
 * also takes numbers and other spellings); null, documented as leaving the
 * member out, is removed. 0, or -1 with f naming the member (400). */
int gw_body_enums(json_t *body, const ProtobufCMessageDescriptor *d, unsigned flags, gw_fail *f);
/* The same for the query parameters of the route's enum fields. */
int gw_query_enums(const gw_req *req, const ProtobufCMessageDescriptor *d, gw_fail *f);
/* An integer query value v of field `field` of d within the field's
 * annotated bounds, the least raised to its rest_min: 0, or -1 with f
 * naming param (400 out_of_range). gw_query_fields checks every value so. */
int gw_query_bounds(const api *a, const ProtobufCMessageDescriptor *d, const char *field,
                    const char *param, const json_t *v, gw_fail *f);
/* Merges a JSON body into the request as the route's http rule says: into
 * the request itself ("*") or into its body field. */
int gw_merge_body(const gw_req *req, ProtobufCMessage *in, json_t *body, gw_fail *f);
/* The update mask of a partial update whose body is meant for message d
 * (members by their proto names): {"update_mask": "a,b"} of the body's
 * members, each a field the annotations let change (neither output-only nor
 * immutable); NULL with f naming the first other member (400, listing the
 * updatable fields). */
json_t *gw_patch_mask(const api *a, const ProtobufCMessageDescriptor *d, json_t *body, gw_fail *f);
/* ---- the pipeline (gw_pipeline.c) ---- */
/* Deadline of the calls gw_begin prepares (the gateway's EVENTS_RPC_TIMEOUT_MS). */
void gw_set_rpc_timeout(int ms);
/* First half of a request whose body has been read (too_large: it was over
 * GW_MAX_BODY): route, 413/404/405, local handler or dialect check and
 * request builder. Returns 1 with resp final, or 0 with spec holding the
 * call to make; its answer goes to gw_finish. */
int gw_begin(gw_req *req, int too_large, gw_resp *resp, gw_call_spec *spec);
/* Second half: the renderer, or the dialect's error body. Clears spec and res. */
void gw_finish(gw_req *req, gw_call_spec *spec, gw_rpc_result *res, gw_resp *resp);
/* Both halves around req->call, synchronously (fuzzers and tests). */
void gw_handle(gw_req *req, int too_large, gw_resp *resp);
void gw_resp_clear(gw_resp *r);

/* ---- local handlers (gw_local.c) ---- */
void gw_healthz(const gw_req *req, gw_resp *resp);
int gw_readyz_build(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int gw_readyz_render(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                     gw_resp *resp, gw_fail *f);
void gw_openapi(const gw_req *req, gw_resp *resp);
void gw_metrics(const gw_req *req, gw_resp *resp);
/* JSON Schema (OpenAPI 3.0) of a message as the mapper renders it. */
json_t *gw_schema(const ProtobufCMessageDescriptor *desc, unsigned flags);
json_t *gw_schema_field(const ProtobufCFieldDescriptor *f, unsigned flags);
/* The same, with the limits the annotations give field f of message d. */
json_t *gw_schema_field_of(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f,
                           unsigned flags);
/* The names of d's REQUIRED fields, as the dialect writes them. */
json_t *gw_schema_required(const ProtobufCMessageDescriptor *d, unsigned flags);
/* What a create must carry in a body of message d: {"required": [d's
 * REQUIRED fields], "properties": {field: the same of each message field,
 * when it has any}}, to go beside d's schema in an allOf; NULL: nothing. */
json_t *gw_schema_create_constraints(const ProtobufCMessageDescriptor *d, unsigned flags);
/* While a document is built on this thread, message schemas go into
 * `schemas` (components.schemas, borrowed) and are referred to by $ref. */
void gw_schema_begin(json_t *schemas);
void gw_schema_end(void);
/* A named schema (a dialect's envelope or error body): while a document is
 * built, build() goes into components.schemas once under `name` and a $ref
 * to it is returned; otherwise build()'s schema itself. */
json_t *gw_schema_component(const char *name, json_t *(*build)(void));

/* ---- dialects ---- */
extern const gw_dialect gw_customer;
extern const gw_dialect gw_activity;
extern const gw_dialect gw_catalog;
extern const gw_dialect gw_object;
extern const gw_dialect gw_plain; /* healthz and friends */

extern const gw_route gw_customer_routes[];
extern const size_t gw_customer_n_routes;

#endif
