/* gw_activity.c - activity events (seed 000): JSON:API 1.0 at /api/v2/events.
 *
 * The documents, the query syntax and the error bodies are JSON:API's
 * (gw_jsonapi.c) over the Event message; what is left here is the API's
 * own: the facts a create records about its request, an update's mask, and
 * the two cursors that exclude each other. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "gw_dialects.h"
#include "gw_jsonapi.h"
#include "events/activity/v1/activity.pb-c.h"

#define MAX_TEXT 255 /* characters of a request fact */

static const gw_jsonapi events = {
    .type = "event",
    .path = "/api/v2/events",
    .desc = &events__activity__v1__event__descriptor,
    .body_field = "event",
    .links_field = "relationships",
    .meta_field = "data_connections",
};

static void activity_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  gw_jsonapi_error(&events, req, f, resp);
}

const gw_dialect gw_activity = {
    .name = "activity",
    .content_type = GW_JSONAPI_MEDIA_TYPE,
    .json_flags = PBJSON_CAMEL,
    .error = activity_error,
    .check = gw_jsonapi_check,
    .error_schema = gw_jsonapi_error_schema,
};

/* An event id in the path that is not positive names no event. */
static int path_id(const gw_req *req, long long id, gw_fail *f) {
  if (id > 0) return 0;
  gw_fail_set(f, 404, "", "", "event %s not found", req->n_params ? req->param_values[0] : "");
  return -1;
}

/* ---- request facts ---- */

/* A header value as valid UTF-8 of at most MAX_TEXT characters (bad bytes
 * become U+FFFD); NULL when absent or blank. */
static json_t *header_text(const gw_req *req, const char *name, int first_of_list) {
  const char *v = gw_header(req, name);
  if (!v) return NULL;
  v += strspn(v, " \t");
  size_t n = first_of_list ? strcspn(v, ",") : strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  if (!n) return NULL;
  const unsigned char *s = (const unsigned char *)v;
  size_t i = 0;
  for (size_t chars = 0; i < n && chars < MAX_TEXT; chars++) {
    size_t len = utf8_seq(s + i, n - i);
    i += len ? len : 1;
  }
  return utf8_json(v, i);
}

static int ua_has(const char *ua, const char *const *words) {
  for (; *words; words++)
    if (strcasestr(ua, *words)) return 1;
  return 0;
}

/* The kind of device a User-Agent describes; NULL without one. */
static const char *device_of(const char *ua) {
  static const char *const bots[] = {
      "bot", "crawl", "spider", "slurp", "facebookexternalhit", "mediapartners", "headless", NULL};
  static const char *const tablets[] = {"ipad", "tablet", "kindle", "silk/", "playbook", NULL};
  static const char *const mobiles[] = {"mobi",          "iphone",     "ipod",       "android",
                                        "windows phone", "blackberry", "opera mini", NULL};
  static const char *const desktops[] = {"windows nt", "macintosh", "mac os x", "x11",
                                         "linux",      "cros",      NULL};
  if (!ua || !ua[strspn(ua, " \t")]) return NULL;
  if (ua_has(ua, bots)) return "bot";
  /* Android tablets are the Android agents without "Mobile". */
  if (ua_has(ua, tablets) || (strcasestr(ua, "android") && !strcasestr(ua, "mobile")))
    return "tablet";
  if (ua_has(ua, mobiles)) return "mobile";
  if (ua_has(ua, desktops)) return "desktop";
  return "other";
}

/* What the gateway knows about the request that creates an event. */
static json_t *request_info(const gw_req *req) {
  json_t *info = json_object(), *v;
  if ((v = header_text(req, "X-Forwarded-Host", 1)) || (v = header_text(req, "Host", 0)))
    json_object_set_new(info, "host", v);
  const char *device = device_of(gw_header(req, "User-Agent"));
  if (device) json_object_set_new(info, "device", json_string(device));
  json_object_set_new(info, "proxied", json_boolean(gw_header(req, "X-Forwarded-For") != NULL));
  if ((v = header_text(req, "X-Client-City", 0))) json_object_set_new(info, "city", v);
  if ((v = header_text(req, "X-Client-Region", 0))) json_object_set_new(info, "region", v);
  return info;
}

/* ---- builders ---- */

int activity_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *msg;
  if (gw_query_fields(req, in, req->route->query, 0, f) < 0 ||
      gw_jsonapi_read(&events, req, 0, &msg, NULL, 0, f) < 0)
    return -1;
  json_object_set_new(msg, "requestInfo", request_info(req));
  int rc = gw_jsonapi_merge(&events, in, msg, f);
  json_decref(msg);
  return rc;
}

int activity_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const Events__Activity__V1__UpdateEventRequest *r = (const void *)in;
  json_t *msg;
  /* The mask lists exactly the members sent: a null clears, absent keeps. */
  char mask[1024] = "";
  if (path_id(req, r->event ? r->event->id : 0, f) < 0 ||
      gw_query_fields(req, in, req->route->query, 0, f) < 0 ||
      gw_jsonapi_read(&events, req, r->event->id, &msg, mask, sizeof mask, f) < 0)
    return -1;
  json_object_set_new(msg, "updateMask", json_string(mask));
  int rc = gw_jsonapi_merge(&events, in, msg, f);
  json_decref(msg);
  return rc;
}

int activity_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const Events__Activity__V1__DeleteEventRequest *r = (const void *)in;
  if (path_id(req, r->id, f) < 0) return -1;
  return gw_query_fields(req, in, req->route->query, 0, f);
}

int activity_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const Events__Activity__V1__GetEventRequest *r = (const void *)in;
  gw_jsonapi_view view;
  if (path_id(req, r->id, f) < 0) return -1;
  return gw_jsonapi_query(&events, req, in, &view, f);
}

int activity_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const Events__Activity__V1__ListEventsRequest *r = (const void *)in;
  gw_jsonapi_view view;
  if (gw_jsonapi_query(&events, req, in, &view, f) < 0) return -1;
  if (r->page_token[0] && r->before_page_token[0]) {
    gw_fail_set(f, 400, "page[before]", "not_allowed_value",
                "page[after] and page[before] exclude each other");
    return -1;
  }
  return 0;
}

/* ---- renderers ---- */

int activity_render_event(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)f;
  gw_jsonapi_view view = {0};
  if (in->descriptor == &events__activity__v1__get_event_request__descriptor) {
    gw_jsonapi_fields(&events, req, &view);
    view.meta = ((const Events__Activity__V1__GetEventRequest *)in)->provide_data_connections;
  }
  resp->status = req->route->ok_status ? req->route->ok_status : 200;
  resp->body = json_pack("{s:o}", "data", gw_jsonapi_resource(&events, req, out, &view));
  return 0;
}

int activity_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f) {
  (void)f;
  static const char *const cursors[] = {"page[after]", "page[before]", NULL};
  const Events__Activity__V1__ListEventsRequest *q = (const void *)in;
  const Events__Activity__V1__ListEventsResponse *r = (const void *)out;
  gw_jsonapi_view view;
  gw_jsonapi_fields(&events, req, &view);
  view.meta = q->provide_data_connections;
  json_t *data = json_array();
  for (size_t i = 0; i < r->n_events; i++)
    json_array_append_new(data, gw_jsonapi_resource(&events, req, &r->events[i]->base, &view));
  json_t *meta = json_object();
  if (q->include_count && r->total_count)
    json_object_set_new(meta, "count", json_integer(r->total_count->value));
  json_t *next = r->next_page_token[0]
                     ? gw_page_url(req, cursors, "page[after]", r->next_page_token)
                     : json_null();
  json_t *prev = r->prev_page_token[0]
                     ? gw_page_url(req, cursors, "page[before]", r->prev_page_token)
                     : json_null();
  resp->status = 200;
  resp->body =
      json_pack("{s:o, s:{s:o, s:o, s:o}, s:o}", "data", data, "links", "first",
                gw_page_url(req, cursors, NULL, NULL), "next", next, "prev", prev, "meta", meta);
  return 0;
}

/* ---- OpenAPI ---- */

static json_t *resource_schema(void) {
  return gw_jsonapi_resource_schema(&events, 0);
}

static json_t *new_resource_schema(void) {
  return gw_jsonapi_resource_schema(&events, 1);
}

static json_t *document(const char *name, json_t *(*resource)(void), int many) {
  json_t *data = gw_schema_component(name, resource);
  if (many) data = json_pack("{s:s, s:o}", "type", "array", "items", data);
  return json_pack("{s:s, s:{s:o, s:{s:s}, s:{s:s}}, s:[s]}", "type", "object", "properties",
                   "data", data, "links", "type", "object", "meta", "type", "object", "required",
                   "data");
}

static json_t *event_document(void) {
  return document("activity.EventResource", resource_schema, 0);
}

static json_t *new_event_document(void) {
  return document("activity.NewEventResource", new_resource_schema, 0);
}

static json_t *list_document(void) {
  return document("activity.EventResource", resource_schema, 1);
}

/* A single-event document: the response of create, get and update, and
 * the body of an update. */
json_t *activity_event_schema(void) {
  return gw_schema_component("activity.EventDocument", event_document);
}

json_t *activity_new_event_schema(void) {
  return gw_schema_component("activity.NewEventDocument", new_event_document);
}

json_t *activity_list_schema(void) {
  return gw_schema_component("activity.EventListDocument", list_document);
}
