/* gw_openapi.c - GET /openapi.json: an OpenAPI 3 document built from the
 * route table, so the document and the served paths cannot drift apart.
 * Schemas come from the protos' annotations (gw_schema.c) and from each
 * dialect's envelope and error schemas, all once under components.schemas;
 * operationIds from the RPCs; servers from the request's own base URL. The
 * document is checked by openapi-spec-validator, Redocly, Spectral and a
 * generated client (tests/e2e/test_openapi.py). */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

static const ProtobufCMessageDescriptor *input_of(const gw_route *rt) {
  if (!rt->service || !rt->rpc) return NULL;
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(rt->service, strrchr(rt->rpc, '/') + 1);
  return md ? md->input : NULL;
}

/* The schema of the request field a template variable ("event.id") names,
 * with its annotated limits; a plain string when it names none. */
static json_t *var_schema(const gw_route *rt, const char *var, size_t len) {
  const ProtobufCMessageDescriptor *d = input_of(rt);
  const ProtobufCFieldDescriptor *f = NULL;
  for (size_t i = 0; d && i < len;) {
    size_t end = i;
    while (end < len && var[end] != '.')
      end++;
    char name[128];
    snprintf(name, sizeof name, "%.*s", (int)(end - i), var + i);
    f = protobuf_c_message_descriptor_get_field_by_name(d, name);
    if (!f) break;
    if (end >= len) {
      json_t *s = gw_schema_field_of(d, f, 0);
      json_object_del(s, "nullable");
      json_object_del(s, "readOnly"); /* an id the path names is not written here */
      return s;
    }
    d = f->type == PROTOBUF_C_TYPE_MESSAGE ? f->descriptor : NULL;
    i = end + 1;
  }
  return json_pack("{s:s, s:i}", "type", "string", "minLength", 1);
}

/* The path parameters: names from the documented path, schemas from the
 * request fields the http rule's variables name (same order). */
static json_t *path_params(const gw_route *rt) {
  json_t *arr = json_array();
  const char *doc = rt->doc_tmpl ? rt->doc_tmpl : rt->tmpl;
  const char *v = strchr(rt->tmpl, '{');
  for (const char *p = strchr(doc, '{'); p && v; p = strchr(p + 1, '{'), v = strchr(v + 1, '{')) {
    const char *e = strchr(p, '}'), *ve = strchr(v, '}');
    if (!e || !ve) break;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
    json_array_append_new(arr,
                          json_pack("{s:s, s:s, s:b, s:o}", "name", name, "in", "path", "required",
                                    1, "schema", var_schema(rt, v + 1, (size_t)(ve - v - 1))));
  }
  return arr;
}

static json_t *query_params(const gw_route *rt, json_t *params) {
  const ProtobufCMessageDescriptor *in = input_of(rt);
  for (size_t i = 0; rt->query && rt->query[i].param; i++) {
    const ProtobufCFieldDescriptor *f =
        in ? protobuf_c_message_descriptor_get_field_by_name(in, rt->query[i].field) : NULL;
    json_t *schema = json_pack("{s:s}", "type", "string");
    json_t *param =
        json_pack("{s:s, s:s, s:b}", "name", rt->query[i].param, "in", "query", "required", 0);
    /* A message set from one parameter (a filter, a sort) is written as
     * text in the dialect's syntax; a list, comma-separated. */
    if (f && f->type == PROTOBUF_C_TYPE_MESSAGE &&
        (f->label == PROTOBUF_C_LABEL_REPEATED ||
         strncmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name, "google.protobuf.",
                 16) != 0))
      f = NULL;
    else if (f && f->label == PROTOBUF_C_LABEL_REPEATED)
      json_object_set_new(param, "explode", json_false());
    if (f) {
      json_decref(schema);
      schema = gw_schema_field_of(in, f, rt->dialect->json_flags);
      json_object_del(schema, "nullable");
      json_object_del(schema, "readOnly");
    }
    json_object_set_new(param, "schema", schema);
    json_array_append_new(params, param);
  }
  for (const char *const *d = rt->doc_query; d && *d; d++)
    json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", *d, "in", "query",
                                            "required", 0, "schema", "type", "string"));
  return params;
}

static json_t *content(const char *type, json_t *schema) {
  return json_pack("{s:{s:o}}", type, "schema", schema);
}

/* The schema of a dialect's error body, once under components.schemas. */
static json_t *error_ref(const gw_dialect *d) {
  char name[64];
  snprintf(name, sizeof name, "%s.Error", d->name);
  return gw_schema_component(name, d->error_schema);
}

/* {resp_wrap: message}: the envelope some dialects put around a response,
 * named "<dialect>.<Message>Envelope" under components.schemas. */
static json_t *envelope_ref(json_t *schemas, const gw_route *rt, json_t *inner) {
  char name[160];
  snprintf(name, sizeof name, "%s.%sEnvelope", rt->dialect->name,
           rt->resp_desc ? rt->resp_desc->short_name : rt->resp_wrap);
  if (!json_object_get(schemas, name))
    json_object_set_new(schemas, name,
                        json_pack("{s:s, s:{s:O}, s:[s]}", "type", "object", "properties",
                                  rt->resp_wrap, inner, "required", rt->resp_wrap));
  json_decref(inner);
  char ref[200];
  snprintf(ref, sizeof ref, "#/components/schemas/%s", name);
  return json_pack("{s:s}", "$ref", ref);
}

/* {"status": "<word>"}: what healthz and readyz answer. */
static json_t *status_body(const char *word) {
  return json_pack("{s:s, s:{s:{s:s, s:[s]}}, s:[s]}", "type", "object", "properties", "status",
                   "type", "string", "enum", word, "required", "status");
}

/* The gateway's own endpoints: {"status": ...} bodies, the document,
 * Prometheus text; readiness answers 503 while the service is not
 * serving. */
static void plain_responses(const gw_route *rt, json_t *responses) {
  if (rt->local == gw_metrics) {
    json_object_set_new(responses, "200",
                        json_pack("{s:s, s:o}", "description", "Prometheus text exposition",
                                  "content",
                                  content("text/plain", json_pack("{s:s}", "type", "string"))));
    return;
  }
  if (rt->local == gw_openapi) {
    json_object_set_new(
        responses, "200",
        json_pack("{s:s, s:o}", "description", "this OpenAPI 3 document", "content",
                  content("application/json", json_pack("{s:s}", "type", "object"))));
    return;
  }
  int ready = rt->render == gw_readyz_render;
  json_object_set_new(responses, "200",
                      json_pack("{s:s, s:o}", "description", ready ? "ready" : "alive", "content",
                                content("application/json", status_body(ready ? "ready" : "ok"))));
  if (ready)
    json_object_set_new(responses, "503",
                        json_pack("{s:s, s:o}", "description", "the service is not serving",
                                  "content",
                                  content("application/json", status_body("unavailable"))));
}

/* The operationId: the dialect and the RPC the route calls
 * ("activityCreateEvent"), so generated clients name their functions
 * after the API, not its paths; the verb and path ("getHealthz") for the
 * gateway's own endpoints, and when the RPC's name is taken already (an
 * RPC with more than one binding). `used` holds the ids given so far. */
static void operation_id(const gw_route *rt, json_t *used, char *id, size_t len) {
  const char *rpc = rt->rpc ? strrchr(rt->rpc, '/') : NULL;
  id[0] = '\0';
  if (rt->dialect != &gw_plain && rpc) snprintf(id, len, "%s%s", rt->dialect->name, rpc + 1);
  if (!id[0] || json_object_get(used, id)) {
    size_t o = 0;
    for (size_t i = 0; rt->method[i] && o + 1 < len; i++)
      id[o++] = (char)(rt->method[i] | 0x20);
    int up = 1; /* camelCase the path's words */
    for (const char *c = rt->doc_tmpl ? rt->doc_tmpl : rt->tmpl; *c && o + 1 < len; c++) {
      if (!isalnum((unsigned char)*c)) {
        up = 1;
        continue;
      }
      id[o++] = up ? (char)toupper((unsigned char)*c) : *c;
      up = 0;
    }
    id[o] = '\0';
  }
  json_object_set_new(used, id, json_true());
}

static json_t *operation(json_t *schemas, json_t *used, const gw_route *rt) {
  char id[160];
  operation_id(rt, used, id, sizeof id);
  const gw_dialect *d = rt->dialect;
  const char *ctype = d == &gw_activity ? "application/vnd.api+json" : "application/json";
  json_t *op =
      json_pack("{s:s, s:s, s:s, s:[s], s:o}", "operationId", id, "summary",
                rt->summary ? rt->summary : "", "description", rt->summary ? rt->summary : "",
                "tags", d->name, "parameters", query_params(rt, path_params(rt)));
  json_t *responses = json_object();
  json_object_set_new(op, "responses", responses);
  if (d == &gw_plain) {
    plain_responses(rt, responses);
    /* The gateway's own paths need no credentials. */
    json_object_set_new(op, "security", json_array());
    return op;
  }
  json_t *ok = NULL;
  if (rt->ok_status == 204)
    ; /* no content */
  else if (rt->resp_schema)
    ok = rt->resp_schema();
  else if (rt->resp_desc)
    ok = gw_schema(rt->resp_desc, d->json_flags);
  if (ok && rt->resp_wrap) ok = envelope_ref(schemas, rt, ok);
  char status[8];
  snprintf(status, sizeof status, "%d", rt->ok_status ? rt->ok_status : 200);
  json_t *okr = json_pack("{s:s}", "description", "success");
  json_object_set_new(okr, "content",
                      content(ctype, ok ? ok : json_pack("{s:s}", "type", "object")));
  if (rt->ok_status == 204) json_object_del(okr, "content");
  json_object_set_new(responses, status, okr);
  if (d->error_schema) {
    /* The statuses every call can meet, by code, so that generated clients
     * (which skip ranges) parse those errors; the ranges cover the rest. */
    json_object_set_new(responses, "400",
                        json_pack("{s:s, s:o}", "description",
                                  "the request breaks the API's rules (the error says which)",
                                  "content", content(ctype, error_ref(d))));
    json_object_set_new(responses, "401",
                        json_pack("{s:s, s:{s:{s:s, s:{s:s}}}, s:o}", "description",
                                  "no credentials, or unknown ones", "headers", "WWW-Authenticate",
                                  "description", "the schemes the API takes", "schema", "type",
                                  "string", "content", content(ctype, error_ref(d))));
    size_t tl = strlen(rt->tmpl);
    if (tl && rt->tmpl[tl - 1] == '}') /* the path names one resource */
      json_object_set_new(responses, "404",
                          json_pack("{s:s, s:o}", "description",
                                    "no such resource (in the caller's tenant)", "content",
                                    content(ctype, error_ref(d))));
    json_object_set_new(responses, "4XX",
                        json_pack("{s:s, s:o}", "description", "client error", "content",
                                  content(ctype, error_ref(d))));
    json_object_set_new(responses, "5XX",
                        json_pack("{s:s, s:o}", "description", "server error", "content",
                                  content(ctype, error_ref(d))));
  }
  if (rt->needs_body) {
    json_t *schema = rt->body_schema ? rt->body_schema()
                     : rt->body_desc ? gw_schema(rt->body_desc, d->json_flags)
                                     : json_pack("{s:s}", "type", "object");
    /* What a create or a replacement must carry (a PATCH carries what it
     * changes). */
    json_t *req = rt->body_desc && !rt->body_schema && strcmp(rt->method, "PATCH") != 0
                      ? gw_schema_create_constraints(rt->body_desc, d->json_flags)
                      : NULL;
    if (req) schema = json_pack("{s:[o, o]}", "allOf", schema, req);
    json_object_set_new(op, "requestBody",
                        json_pack("{s:b, s:o}", "required", 1, "content", content(ctype, schema)));
  }
  /* The APIs take a bearer token, the customer API HTTP Basic as well. */
  if (d == &gw_customer)
    json_object_set_new(op, "security", json_pack("[{s:[]}, {s:[]}]", "bearerAuth", "basicAuth"));
  else
    json_object_set_new(op, "security", json_pack("[{s:[]}]", "bearerAuth"));
  return op;
}

void gw_openapi(const gw_req *req, gw_resp *resp) {
  size_t n;
  const gw_route *rt = gw_routes(&n);
  json_t *paths = json_object(), *schemas = json_object(), *used = json_object();
  char base[512];
  gw_base_url(req, base, sizeof base);
  gw_schema_begin(schemas);
  for (size_t i = 0; i < n; i++) {
    const char *path = rt[i].doc_tmpl ? rt[i].doc_tmpl : rt[i].tmpl;
    json_t *item = json_object_get(paths, path);
    if (!item) {
      item = json_object();
      json_object_set_new(paths, path, item);
    }
    char lower[16];
    size_t j = 0;
    for (; rt[i].method[j] && j < sizeof lower - 1; j++)
      lower[j] = (char)(rt[i].method[j] | 0x20);
    lower[j] = '\0';
    json_object_set_new(item, lower, operation(schemas, used, &rt[i]));
  }
  gw_schema_end();
  json_decref(used);
  json_t *tags = json_pack("[{s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}, {s:s, s:s}]", "name",
                           gw_activity.name, "description", "Activity events (seed 000): JSON:API",
                           "name", gw_customer.name, "description", "Customer events (seed 001)",
                           "name", gw_catalog.name, "description",
                           "The event catalog (seed 002): categories, events, properties", "name",
                           gw_object.name, "description", "Object events (seed 003)", "name",
                           gw_plain.name, "description", "The gateway's own endpoints");
  resp->status = 200;
  resp->body = json_pack(
      "{s:s, s:{s:s, s:s, s:s, s:{s:s, s:s}, s:{s:s, s:s}}, s:[{s:s}], s:[{s:[]}, {s:[]}], s:o, "
      "s:o, s:{s:o, s:{s:{s:s, s:s}, s:{s:s, s:s}}}}",
      "openapi", "3.0.3", "info", "title", "Events API", "version", "1.0.0", "description",
      "REST gateway of the events service: four dialects over one gRPC API.", "license", "name",
      "Proprietary", "url", "https://example.invalid/license", "contact", "name",
      "The events service team", "url", "https://example.invalid/events", "servers", "url", base,
      "security", "bearerAuth", "basicAuth", "tags", tags, "paths", paths, "components", "schemas",
      schemas, "securitySchemes", "bearerAuth", "type", "http", "scheme", "bearer", "basicAuth",
      "type", "http", "scheme", "basic");
}
