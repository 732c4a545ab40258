/* gw_openapi.c - GET /openapi.json: an OpenAPI 3 document built from the
 * route table, so the document and the served paths cannot drift apart. */
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* "/v1/objects/{objectId}/events" -> [{"name":"objectId","in":"path",...}] */
static json_t *path_params(const char *tmpl) {
  json_t *arr = json_array();
  for (const char *p = strchr(tmpl, '{'); p; p = strchr(p + 1, '{')) {
    const char *e = strchr(p, '}');
    if (!e) break;
    char name[64];
    snprintf(name, sizeof name, "%.*s", (int)(e - p - 1), p + 1);
    json_array_append_new(arr, json_pack("{s:s, s:s, s:b, s:{s:s}}", "name", name, "in", "path",
                                         "required", 1, "schema", "type", "string"));
  }
  return arr;
}

static json_t *operation(const gw_route *rt) {
  char id[160], lower[16];
  size_t i = 0;
  for (; rt->method[i] && i < sizeof lower - 1; i++) lower[i] = (char)(rt->method[i] | 0x20);
  lower[i] = '\0';
  snprintf(id, sizeof id, "%s%s", lower, rt->tmpl);
  for (char *c = id; *c; c++)
    if (*c == '/' || *c == '{' || *c == '}' || *c == '.' || *c == '-') *c = '_';
  json_t *op = json_pack("{s:s, s:s, s:[s], s:o}", "operationId", id, "summary",
                         rt->summary ? rt->summary : "", "tags", rt->dialect->name, "parameters",
                         path_params(rt->tmpl));
  json_t *responses = json_object();
  json_object_set_new(responses, "default",
                      json_pack("{s:s, s:{s:{s:{}}}}", "description", "a response or an error",
                                "content", rt->dialect->content_type, "schema"));
  json_object_set_new(op, "responses", responses);
  if (rt->needs_body)
    json_object_set_new(op, "requestBody",
                        json_pack("{s:b, s:{s:{s:{s:s}}}}", "required", 1, "content",
                                  rt->dialect == &gw_activity ? "application/vnd.api+json"
                                                              : "application/json",
                                  "schema", "type", "object"));
  if (rt->dialect != &gw_plain)
    json_object_set_new(op, "security",
                        json_pack("[{s:[]}, {s:[]}]", "bearerAuth", "basicAuth"));
  return op;
}

void gw_openapi(const gw_req *req, gw_resp *resp) {
  (void)req;
  size_t n;
  const gw_route *rt = gw_routes(&n);
  json_t *paths = json_object();
  for (size_t i = 0; i < n; i++) {
    json_t *item = json_object_get(paths, rt[i].tmpl);
    if (!item) {
      item = json_object();
      json_object_set_new(paths, rt[i].tmpl, item);
    }
    char lower[16];
    size_t j = 0;
    for (; rt[i].method[j] && j < sizeof lower - 1; j++) lower[j] = (char)(rt[i].method[j] | 0x20);
    lower[j] = '\0';
    json_object_set_new(item, lower, operation(&rt[i]));
  }
  resp->status = 200;
  resp->body = json_pack(
      "{s:s, s:{s:s, s:s, s:s}, s:o, s:{s:{s:{s:s, s:s}, s:{s:s, s:s}}}}", "openapi", "3.0.3",
      "info", "title", "Events API", "version", "1.0.0", "description",
      "REST gateway of the events service: four dialects over one gRPC API.", "paths", paths,
      "components", "securitySchemes", "bearerAuth", "type", "http", "scheme", "bearer",
      "basicAuth", "type", "http", "scheme", "basic");
}
