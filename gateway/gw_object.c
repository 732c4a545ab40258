/* gw_object.c - object events (seed 003) under /v1/objects/{objectId}/events:
 * bare event bodies, {"data": [...], "paging": {...}} lists and
 * {"status_code", "message", "request_id"} errors whose message names the
 * REST field (the service names the request field). */
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/object/v1/object.pb-c.h"

/* One violation as the REST client reads it: the description with its
 * leading request field renamed. */
static void append_violation(const gw_req *req, char *buf, size_t len,
                             const Google__Rpc__BadRequest__FieldViolation *v) {
  const char *field = v->field ? v->field : "", *desc = v->description ? v->description : "";
  size_t used = strlen(buf);
  char text[600], rest[256];
  if (used >= len - 1) return;
  if (!gw_rest_detail(req, field, desc, text, sizeof text) && *field)
    snprintf(text, sizeof text, "%s: %s", gw_rest_field(req, field, rest, sizeof rest), desc);
  snprintf(buf + used, len - used, "%s%s", used ? "; " : "", text);
}

static void object_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  char message[1024] = "";
  if (f->bad_request && f->bad_request->n_field_violations) {
    for (size_t i = 0; i < f->bad_request->n_field_violations; i++)
      append_violation(req, message, sizeof message, f->bad_request->field_violations[i]);
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

/* ---- requests ---- */

/* Create and Update (a replacement) take the event as their body (the path
 * is bound already): its writable members, enums by their names. */
int object_build_event(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const gw_route *rt = req->route;
  unsigned flags = gw_object.json_flags;
  json_t *body = NULL;
  int rc = gw_query_fields(req, in, rt->query, flags, f) < 0 || gw_body_json(req, &body, f) < 0 ||
                   gw_body_check(rt->api, body, rt->body_desc, flags, f) < 0 ||
                   gw_body_enums(body, rt->body_desc, flags, f) < 0 ||
                   gw_merge_body(req, in, body, f) < 0
               ? -1
               : 0;
  json_decref(body);
  return rc;
}

/* The generic binding (bounds included), then what the mapper would let
 * pass: an empty cursor (gRPC's "first page"), enum filters by number or
 * in other spellings. */
int object_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  char after[64];
  if (gw_bind_request(req, in, f) < 0) return -1;
  const char *v = gw_query_get(req, gw_rest_field(req, "page_token", after, sizeof after));
  if (v && !v[0]) {
    gw_fail_set(f, 400, after, "invalid_value_format", "%s must be a cursor from paging.next",
                after);
    return -1;
  }
  return gw_query_enums(req, in->descriptor, f);
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
