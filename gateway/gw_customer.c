/* gw_customer.c - customer events (seed 001) under
 * /rest-api/enterprise-interface/v1.0: {"data": ...} envelopes and
 * {"error": {...}} bodies with invalid_params. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/customer/v1/customer.pb-c.h"

static const char *exception_name(int http) {
  switch (http) {
  case 400:
    return "ValidationException";
  case 401:
    return "UnauthorizedException";
  case 403:
    return "ForbiddenException";
  case 404:
    return "NotFoundException";
  case 405:
    return "MethodNotAllowedException";
  case 413:
    return "PayloadTooLargeException";
  case 431:
    return "RequestHeaderFieldsTooLargeException";
  case 503:
    return "ServiceUnavailableException";
  default:
    return "ServerException";
  }
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
    const char *id = gw_param(req, "event_id");
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

/* Output-only members are refused (400 not_allowed_value), as in the other
 * dialects, rather than silently dropped: the server assigns them. */
int customer_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body;
  if (gw_body_json(req, &body, f) < 0) return -1;
  /* Output-only members (the annotations say which) are refused. */
  if (gw_body_check(req->route->api, body, &events__customer__v1__create_event_request__descriptor,
                    gw_customer.json_flags | PBJSON_IGNORE_UNKNOWN, f) < 0) {
    json_decref(body);
    return -1;
  }
  /* "data" may be any JSON; the API stores and returns it as JSON text. */
  json_t *event = json_object_get(body, "event");
  json_t *data = json_is_object(event) ? json_object_get(event, "data") : NULL;
  if (data && !json_is_string(data) && !json_is_null(data)) {
    /* as sent: 0.1 stays 0.1 in the stored text, not 0.10000000000000001 */
    char *text = pbjson_dumps(data, JSON_COMPACT | JSON_ENCODE_ANY);
    json_object_set_new(event, "data", json_string(text ? text : ""));
    free(text);
  }
  int rc = gw_merge(in, body, gw_customer.json_flags, f);
  json_decref(body);
  return rc;
}

int customer_render_create(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  resp->status = 201;
  resp->body = json_pack("{s:o}", "data", pbjson_encode(out, gw_customer.json_flags));
  return 0;
}

int customer_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  if (gw_query_fields(req, in, req->route->query, gw_customer.json_flags, f) < 0) return -1;
  const Events__Customer__V1__ListEventsRequest *r = (const void *)in;
  /* 0 means "default" over gRPC, but an explicit count=0 is out of range. */
  if (gw_query_get(req, "count") && (r->page_size < 1 || r->page_size > 1000)) {
    gw_fail_set(f, 400, "count", "out_of_range", "count must be between 1 and 1000");
    return -1;
  }
  if (r->offset < 0) {
    gw_fail_set(f, 400, "offset", "out_of_range", "offset must not be negative");
    return -1;
  }
  return 0;
}

static json_t *event_json(const ProtobufCMessage *ev, int with_records) {
  json_t *j = pbjson_encode(ev, gw_customer.json_flags);
  if (!with_records) json_object_del(j, "property_records");
  return j;
}

int customer_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)f;
  const Events__Customer__V1__ListEventsRequest *q = (const void *)in;
  const Events__Customer__V1__ListEventsResponse *r = (const void *)out;
  json_t *events = json_array();
  for (size_t i = 0; i < r->n_events; i++)
    json_array_append_new(events, event_json(&r->events[i]->base, q->include_property_records));
  resp->status = 200;
  resp->body = json_pack("{s:{s:o, s:I}}", "data", "events", events, "total_items",
                         (json_int_t)r->total_items);
  return 0;
}

int customer_render_get(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)f;
  const Events__Customer__V1__GetEventRequest *q = (const void *)in;
  resp->status = 200;
  resp->body = json_pack("{s:o}", "data", event_json(out, q->include_property_records));
  return 0;
}

int customer_render_records(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  json_t *j = pbjson_encode(out, gw_customer.json_flags);
  resp->status = 200;
  resp->body = json_pack("{s:o}", "data", j);
  return 0;
}
