/* gw_openapi.c - GET /openapi.json: an OpenAPI 3 document built from the
 * route table, so the document and the served paths cannot drift apart. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* The documented form of a path parameter's ids (any other is 404). */
static json_t *path_param_schema(const char *tmpl, const char *name) {
  if (strcmp(name, "id") == 0 && strncmp(tmpl, "/api/v2/", 8) == 0)
    return json_pack("{s:s, s:s, s:i}", "type", "integer", "format", "int64", "minimum", 1);
  if (strncmp(tmpl, "/rest-api/", 10) == 0 && strcmp(name, "event_id") == 0)
    return json_pack("{s:s, s:s}", "type", "string", "pattern", "^[0-9a-f]{26}$");
  if (strncmp(tmpl, "/api/v1/event/", 14) == 0)
    return json_pack("{s:s, s:s}", "type", "string", "pattern", "^[0-9a-f]{32}$");
  if (strcmp(name, "eventId") == 0)
    return json_pack("{s:s, s:s}", "type", "string", "format", "uuid");
  return json_pack("{s:s, s:i}", "type", "string", "minLength", 1);
}

/* "/v1/objects/{objectId}/events" -> [{"name":"objectId","in":"path",...}] */
static json_t *path_params(const char *tmpl) {
  json_t *arr = json_array();
  for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
    const char *e = strchr(p, '}');
    if (!e) break;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:o}", "name", name, "in", "path",
                                         "required", 1, "schema", path_param_schema(tmpl, name)));
  }
  return arr;
}

static json_t *query_params(const gw_route *rt, json_t *params) {
  const ProtobufCMessageDescriptor *in = NULL;
  if (rt->service && rt->rpc) {
    const ProtobufCMethodDescriptor *md =
        protobuf_c_service_descriptor_get_method_by_name(rt->service, strrchr(rt->rpc, '/') + 1);
    if (md) in = md->input;
  }
  for (size_t i = 0; rt->query && rt->query[i].param; i++) {
    const ProtobufCFieldDescriptor *f =
        in ? protobuf_c_message_descriptor_get_field_by_name(in, rt->query[i].field) : NULL;
    json_t *schema = json_pack("{s:s}", "type", "string");
    if (f) {
      json_decref(schema);
      schema = gw_schema_field(f, rt->dialect->json_flags);
      json_object_del(schema, "nullable");
    }
    json_array_append_new(params, json_pack("{s:s, s:s, s:b, s:o}", "name", rt->query[i].param,
                                            "in", "query", "required", 0, "schema", schema));
  }
  return params;
}

static json_t *content(const char *type, json_t *schema) {
  return json_pack("{s:{s:o}}", type, "schema", schema);
}

static json_t *operation(const gw_route *rt) {
  char id[160], lower[16];
  size_t i = 0;
  for (; rt->method[i] && i < sizeof lower - 1; i++)
    lower[i] = (char)(rt->method[i] | 0x20);
  lower[i] = '\0';
  snprintf(id, sizeof id, "%s%s", lower, rt->doc_tmpl ? rt->doc_tmpl : rt->tmpl);
  for (char *c = id; *c; c++)
    if (*c == '/' || *c == '{' || *c == '}' || *c == '.' || *c == '-') *c = '_';
  const gw_dialect *d = rt->dialect;
  const char *ctype = d == &gw_activity ? "application/vnd.api+json" : "application/json";
  json_t *op = json_pack("{s:s, s:s, s:[s], s:o}", "operationId", id, "summary",
                         rt->summary ? rt->summary : "", "tags", d->name, "parameters",
                         query_params(rt, path_params(rt->doc_tmpl ? rt->doc_tmpl : rt->tmpl)));
  json_t *responses = json_object();
  json_t *ok = NULL;
  if (rt->resp_schema)
    ok = rt->resp_schema();
  else if (rt->resp_desc)
    ok = gw_schema(rt->resp_desc, d->json_flags);
  if (ok && rt->resp_wrap)
    ok = json_pack("{s:s, s:{s:o}}", "type", "object", "properties", rt->resp_wrap, ok);
  char status[8];
  snprintf(status, sizeof status, "%d", rt->ok_status ? rt->ok_status : 200);
  json_t *okr = json_pack("{s:s}", "description", "success");
  json_object_set_new(okr, "content",
                      content(ctype, ok ? ok : json_pack("{s:s}", "type", "object")));
  if (rt->ok_status == 204) json_object_del(okr, "content");
  json_object_set_new(responses, status, okr);
  if (d->error_schema) {
    json_object_set_new(responses, "4XX",
                        json_pack("{s:s, s:o}", "description", "client error", "content",
                                  content(ctype, d->error_schema())));
    json_object_set_new(responses, "5XX",
                        json_pack("{s:s, s:o}", "description", "server error", "content",
                                  content(ctype, d->error_schema())));
  }
  json_object_set_new(op, "responses", responses);
  if (rt->needs_body) {
    json_t *schema = rt->body_desc ? gw_schema(rt->body_desc, d->json_flags)
                                   : json_pack("{s:s}", "type", "object");
    json_object_set_new(op, "requestBody",
                        json_pack("{s:b, s:o}", "required", 1, "content", content(ctype, schema)));
  }
  if (d != &gw_plain)
    json_object_set_new(op, "security", json_pack("[{s:[]}, {s:[]}]", "bearerAuth", "basicAuth"));
  return op;
}

void gw_openapi(const gw_req *req, gw_resp *resp) {
  (void)req;
  size_t n;
  const gw_route *rt = gw_routes(&n);
  json_t *paths = json_object();
  for (size_t i = 0; i < n; i++) {
    if (rt[i].local == gw_metrics) continue; /* Prometheus text, not part of the API */
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
    json_object_set_new(item, lower, operation(&rt[i]));
  }
  resp->status = 200;
  resp->body =
      json_pack("{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:{s:{s:s, s:s}, s:{s:s, s:s}}}}", "openapi",
                "3.0.3", "info", "title", "Events API", "version", "1.0.0", "description",
                "REST gateway of the events service: four dialects over one gRPC API.", "paths",
                paths, "components", "securitySchemes", "bearerAuth", "type", "http", "scheme",
                "bearer", "basicAuth", "type", "http", "scheme", "basic");
}
