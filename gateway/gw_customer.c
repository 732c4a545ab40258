/* gw_customer.c - customer events (seed 001) under
 * /rest-api/enterprise-interface/v1.0: {"data": ...} envelopes and
 * {"error": {...}} bodies with invalid_params. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "jsontext.h"
#include "gw_dialects.h"

static const char *exception_name(int http) {
  static const struct {
    int http;
    const char *name;
  } names[] = {{400, "ValidationException"},
               {401, "UnauthorizedException"},
               {403, "ForbiddenException"},
               {404, "NotFoundException"},
               {405, "MethodNotAllowedException"},
               {413, "PayloadTooLargeException"},
               {431, "RequestHeaderFieldsTooLargeException"},
               {503, "ServiceUnavailableException"}};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (names[i].http == http) return names[i].name;
  return "ServerException";
}

/* The API's documented reasons; finer ones of the mapper fold into them. */
static const char *reason_name(const char *r) {
  static const char *const documented[] = {"required", "not_allowed_value",
                                           "relation_already_exists"};
  if (r && strcmp(r, "unknown_field") == 0) return "not_allowed_value";
  for (size_t i = 0; r && i < sizeof documented / sizeof *documented; i++)
    if (strcmp(r, documented[i]) == 0) return r;
  return "invalid_value_format";
}

/* The value the client sent for `field` ("event.customer_id",
 * "property_records[2].property_id", or a query parameter), as sent; null
 * when it sent none. */
static json_t *sent_value(const gw_req *req, json_t *body, const char *field) {
  json_t *v = body;
  for (const char *p = field; v && *p;) {
    size_t n = strcspn(p, ".[");
    char key[128];
    snprintf(key, sizeof key, "%.*s", (int)(n < sizeof key ? n : sizeof key - 1), p);
    if (n) v = json_object_get(v, key);
    p += n;
    while (v && *p == '[') {
      char *end;
      unsigned long i = strtoul(p + 1, &end, 10);
      v = *end == ']' ? json_array_get(v, i) : NULL;
      p = *end == ']' ? end + 1 : end;
    }
    if (*p == '.') p++;
  }
  if (v) return json_incref(v);
  /* A body jansson refused for a number too large: that number's text. */
  char path[256], token[512];
  if (!body && req->body_len &&
      pbjson_find_unkeepable(req->body, req->body_len, PBJSON_PATH_DOTTED, path, sizeof path, token,
                             sizeof token) == 0 &&
      strcmp(path, field) == 0)
    return gw_text(token);
  const char *q = strchr(field, '.') || strchr(field, '[') ? NULL : gw_query_get(req, field);
  return q ? gw_text(q) : json_null();
}

static json_t *invalid_param(const char *name, const char *reason, const char *message,
                             json_t *value) {
  return json_pack("{s:o, s:s, s:o, s:o}", "name", gw_text(name), "reason", reason_name(reason),
                   "value", value, "message", gw_text(message));
}

static void customer_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  json_t *data = json_object();
  /* The API documents a duplicate event as a 400 relation_already_exists
   * parameter error; over gRPC it is ALREADY_EXISTS. */
  int http = f->code == GRPC_STATUS_ALREADY_EXISTS && f->bad_request ? 400 : f->http;
  if (http == 400) {
    json_t *params = json_array();
    json_t *body = req->body_len ? json_loadb(req->body, req->body_len, 0, NULL) : NULL;
    if (f->bad_request && f->bad_request->n_field_violations) {
      for (size_t i = 0; i < f->bad_request->n_field_violations; i++) {
        const Google__Rpc__BadRequest__FieldViolation *v = f->bad_request->field_violations[i];
        json_array_append_new(params, invalid_param(v->field, v->reason, v->description,
                                                    sent_value(req, body, v->field)));
      }
    } else if (f->field[0]) {
      json_array_append_new(
          params, invalid_param(f->field, f->reason, f->message, sent_value(req, body, f->field)));
    }
    json_decref(body);
    json_object_set_new(data, "invalid_params", params);
  } else if (http == 404 && req->route) {
    /* the resource is the one the path's last variable names */
    const char *id = req->n_params ? req->param_values[req->n_params - 1] : NULL;
    json_object_set_new(data, "resource_name", json_string("events"));
    json_object_set_new(data, "resource_id", id ? gw_text(id) : json_null());
  }
  resp->status = http;
  resp->body =
      json_pack("{s:{s:s, s:s, s:s, s:o, s:o}}", "error", "type", "about:blank", "exception",
                exception_name(http), "title", MHD_get_reason_phrase_for((unsigned)http), "detail",
                gw_text(f->message), "error_data", data);
}

static json_t *customer_error_schema(void) {
  return json_pack(
      "{s:s, s:{s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, s:{s:{s:s, s:{s:s}}}}}}}}",
      "type", "object", "properties", "error", "type", "object", "properties", "type", "type",
      "string", "exception", "type", "string", "title", "type", "string", "detail", "type",
      "string", "error_data", "type", "object", "properties", "invalid_params", "type", "array",
      "items", "type", "object");
}

const gw_dialect gw_customer = {
    .name = "customer",
    .content_type = "application/json; charset=utf-8",
    .json_flags = PBJSON_SQL_TIME,
    .error = customer_error,
    .error_schema = customer_error_schema,
};

/* ---- routes ---- */

/* Create: the request as its body, output-only members refused (as in the
 * other dialects, rather than dropped: the server assigns them). */
int customer_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body;
  if (gw_body_json(req, &body, f) < 0) return -1;
  if (gw_body_check(req->route->api, body, req->route->body_desc,
                    gw_customer.json_flags | PBJSON_IGNORE_UNKNOWN, f) < 0) {
    json_decref(body);
    return -1;
  }
  /* "data" may be any JSON; the API stores and returns it as JSON text. */
  json_t *event = json_object_get(body, "event");
  json_t *data = json_is_object(event) ? json_object_get(event, "data") : NULL;
  if (data && !json_is_string(data) && !json_is_null(data)) {
    /* as sent: 0.1 stays 0.1 in the stored text, not 0.10000000000000001 */
    char *text = jsontext_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    json_object_set_new(event, "data", json_string(text ? text : ""));
    free(text);
  }
  int rc = gw_merge(in, body, gw_customer.json_flags, f);
  json_decref(body);
  return rc;
}

/* Get and List: the generic rendering, less what was not asked for: a
 * request flag include_<member> left false leaves <member> out of the
 * event, and out of each event of a list. */
int customer_render_events(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  if (gw_render_default(req, in, out, resp, f) < 0) return -1;
  json_t *data = json_object_get(resp->body, req->route->resp_wrap), *v, *x;
  const ProtobufCMessageDescriptor *d = in->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    protobuf_c_boolean asked = 1;
    if (fd->type == PROTOBUF_C_TYPE_BOOL && strncmp(fd->name, "include_", 8) == 0)
      memcpy(&asked, (const char *)in + fd->offset, sizeof asked);
    if (asked) continue;
    const char *key;
    size_t k;
    json_object_del(data, fd->name + 8);
    json_object_foreach(data, key, v) json_array_foreach(v, k, x) json_object_del(x, fd->name + 8);
  }
  return 0;
}
