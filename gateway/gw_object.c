/* gw_object.c - object events (seed 003) under /v1/objects/{objectId}/events:
 * bare event bodies, {"data": [...], "paging": {...}} lists and
 * {"status_code", "message", "request_id"} errors whose message names the
 * REST field (the service names the request field). */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/object/v1/object.pb-c.h"

/* gRPC request field -> the name a REST client wrote. */
static const char *rest_name(const char *field) {
  static const struct {
    const char *rpc, *rest;
  } names[] = {
      {"object_id", "objectId"},
      {"event_id", "eventId"},
      {"page_token", "after"},
      {"page_size", "limit"},
  };
  for (size_t i = 0; i < sizeof names / sizeof *names; i++)
    if (strcmp(field, names[i].rpc) == 0) return names[i].rest;
  if (strncmp(field, "event.", 6) == 0 && field[6]) return field + 6;
  return field;
}

/* One violation as the REST client reads it: the description with its
 * leading request field renamed. */
static void append_violation(char *buf, size_t len,
                             const Google__Rpc__BadRequest__FieldViolation *v) {
  const char *field = v->field ? v->field : "", *desc = v->description ? v->description : "";
  size_t used = strlen(buf), flen = strlen(field);
  if (used >= len - 1) return;
  const char *sep = used ? "; " : "";
  if (flen && strncmp(desc, field, flen) == 0)
    snprintf(buf + used, len - used, "%s%s%s", sep, rest_name(field), desc + flen);
  else if (flen)
    snprintf(buf + used, len - used, "%s%s: %s", sep, rest_name(field), desc);
  else
    snprintf(buf + used, len - used, "%s%s", sep, desc);
}

static void object_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  char message[1024] = "";
  if (f->bad_request && f->bad_request->n_field_violations) {
    for (size_t i = 0; i < f->bad_request->n_field_violations; i++)
      append_violation(message, sizeof message, f->bad_request->field_violations[i]);
  } else {
    snprintf(message, sizeof message, "%s",
             f->message[0] ? f->message : MHD_get_reason_phrase_for((unsigned)f->http));
  }
  resp->body = json_pack("{s:i, s:o, s:s}", "status_code", f->http, "message", gw_text(message),
                         "request_id", req->request_id);
}

static json_t *object_error_schema(void) {
  return json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}}}", "type", "object", "properties",
                   "status_code", "type", "integer", "message", "type", "string", "request_id",
                   "type", "string");
}

const gw_dialect gw_object = {
    .name = "object",
    .content_type = "application/json; charset=utf-8",
    .error = object_error,
    .error_schema = object_error_schema,
};

/* ---- request bodies ---- */

static const char *const sources[] = {"external", "manual", "system_recommendation"};
static const char *const statuses[] = {"pending", "approved", "rejected"};

static int in_list(const char *key, const char *const *list, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(key, list[i]) == 0) return 1;
  return 0;
}

/* An enum member must be one of its documented names (the mapper would
 * also take numbers and other spellings) or null, which is dropped. */
static int check_enum(json_t *body, const char *key, const char *const *names, size_t n,
                      const char *listed, gw_fail *f) {
  json_t *v = json_object_get(body, key);
  if (!v) return 0;
  if (json_is_null(v)) { /* documented nullable: the same as leaving it out */
    json_object_del(body, key);
    return 0;
  }
  if (json_is_string(v) && in_list(json_string_value(v), names, n)) return 0;
  gw_fail_set(f, 400, key, json_is_string(v) ? "not_allowed_value" : "invalid_type",
              "%s must be one of %s", key, listed);
  return -1;
}

/* The body of POST and PUT: an Event's writable fields (the annotations say
 * which are output-only), enums by their documented names. */
static int check_body(const gw_req *req, json_t *body, gw_fail *f) {
  if (gw_body_check(req->route->api, body, &events__object__v1__event__descriptor,
                    gw_object.json_flags, f) < 0)
    return -1;
  if (check_enum(body, "source", sources, 3, "external, manual, system_recommendation", f) < 0)
    return -1;
  return check_enum(body, "review_status", statuses, 3, "pending, approved, rejected", f);
}

/* Create and Update (a replacement) take the event as their body; the
 * path is bound already. */
int object_build_event(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body, *wrapped = NULL;
  if (gw_query_fields(req, in, req->route->query, gw_object.json_flags, f) < 0 ||
      gw_body_json(req, &body, f) < 0)
    return -1;
  int rc = check_body(req, body, f);
  if (rc == 0 && !(wrapped = json_pack("{s:O}", "event", body))) {
    gw_fail_set(f, 500, "", "", "out of memory");
    rc = -1;
  }
  if (rc == 0) rc = gw_merge(in, wrapped, gw_object.json_flags, f);
  json_decref(wrapped);
  json_decref(body);
  return rc;
}

int object_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  Events__Object__V1__ListEventsRequest *r = (void *)in;
  if (gw_query_fields(req, in, req->route->query, gw_object.json_flags, f) < 0) return -1;
  /* 0 means "default" over gRPC, but an explicit limit=0 is out of range. */
  if (gw_query_get(req, "limit") && (r->page_size < 1 || r->page_size > 1000)) {
    gw_fail_set(f, 400, "limit", "out_of_range", "limit must be between 1 and 1000");
    return -1;
  }
  const char *after = gw_query_get(req, "after");
  if (after && !after[0]) {
    gw_fail_set(f, 400, "after", "invalid_value_format", "after must be a cursor from paging.next");
    return -1;
  }
  /* Enum filters take the documented names only, not numbers. */
  const char *src = gw_query_get(req, "source");
  if (src && !in_list(src, sources, 3)) {
    gw_fail_set(f, 400, "source", "not_allowed_value",
                "source must be one of external, manual, system_recommendation");
    return -1;
  }
  const char *rs = gw_query_get(req, "review_status");
  if (rs && !in_list(rs, statuses, 3)) {
    gw_fail_set(f, 400, "review_status", "not_allowed_value",
                "review_status must be one of pending, approved, rejected");
    return -1;
  }
  return 0;
}

int object_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                       gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  const Events__Object__V1__ListEventsResponse *r = (const void *)out;
  json_t *data = json_array(), *paging = json_object();
  for (size_t i = 0; i < r->n_events; i++)
    json_array_append_new(data, pbjson_encode(&r->events[i]->base, gw_object.json_flags));
  if (r->next_page_token && r->next_page_token[0])
    json_object_set_new(paging, "next", json_pack("{s:s}", "after", r->next_page_token));
  resp->status = 200;
  resp->body = json_pack("{s:o, s:o}", "data", data, "paging", paging);
  return 0;
}

static json_t *event_page(void) {
  return json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:s, s:{s:{s:s, s:{s:{s:s}}}}}}}", "type", "object",
                   "properties", "data", "type", "array", "items",
                   gw_schema(&events__object__v1__event__descriptor, gw_object.json_flags),
                   "paging", "type", "object", "properties", "next", "type", "object", "properties",
                   "after", "type", "string");
}

/* A page of events. */
json_t *object_list_schema(void) {
  return gw_schema_component("object.EventPage", event_page);
}
