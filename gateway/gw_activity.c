/* gw_activity.c - activity events (seed 000): JSON:API 1.0 at /api/v2/events.
 *
 * Only envelopes live here: resource objects <-> Event messages through the
 * mapper (lowerCamelCase), JSON:API query parameters -> ListEventsRequest
 * fields, request facts from headers, and {"errors": [...]} bodies whose
 * source names the member (pointer) or query parameter the client wrote.
 * Problems with a parsed body are 422 validationError; unreadable bodies and
 * bad query parameters are 400 badRequest. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/activity/v1/activity.pb-c.h"

#define MEDIA_TYPE "application/vnd.api+json"
#define RESOURCE_TYPE "event"
#define EVENTS_PATH "/api/v2/events"
#define MAX_PAGE 1000
#define MAX_TEXT 255 /* characters of a request fact */
#define MAX_ARGS 64

typedef Events__Activity__V1__Event Event;

/* Attributes in the order the seed lists them, and which a client may write. */
static const struct {
  const char *name;
  int writable;
} attributes[] = {
    {"body", 1},        {"createdAt", 0},      {"eventAt", 1},       {"externalUrl", 1},
    {"name", 1},        {"payload", 1},        {"requestCity", 0},   {"requestDevice", 0},
    {"requestHost", 0}, {"requestProxied", 0}, {"requestRegion", 0},
};
#define N_ATTRIBUTES (sizeof attributes / sizeof *attributes)

/* To-one relationships; the type of each is its name. */
static const char *const relationships[] = {"account",      "call",   "mailing",  "note",
                                            "opportunity",  "plugin", "prospect", "sequence",
                                            "sequenceStep", "task",   "user"};
#define N_RELATIONSHIPS (sizeof relationships / sizeof *relationships)

static int attribute_index(const char *name) {
  for (size_t i = 0; i < N_ATTRIBUTES; i++)
    if (strcmp(name, attributes[i].name) == 0) return (int)i;
  return -1;
}

static int relationship_index(const char *name) {
  for (size_t i = 0; i < N_RELATIONSHIPS; i++)
    if (strcmp(name, relationships[i]) == 0) return (int)i;
  return -1;
}

/* "sequence_step" -> "sequenceStep" (the mapper's rule), up to '.' or '['. */
static void camel_segment(const char *in, char *out, size_t len) {
  size_t o = 0;
  int up = 0;
  for (; *in && *in != '.' && *in != '[' && o + 1 < len; in++) {
    if (*in == '_') {
      up = 1;
      continue;
    }
    out[o++] = up && *in >= 'a' && *in <= 'z' ? (char)(*in - 'a' + 'A') : *in;
    up = 0;
  }
  out[o] = '\0';
}

/* ---- errors ---- */

static const struct {
  int http;
  const char *id, *title;
} error_kinds[] = {
    {400, "badRequest", "Bad Request"},
    {401, "unauthorized", "Unauthorized"},
    {403, "forbidden", "Forbidden"},
    {404, "resourceNotFound", "Resource Not Found"},
    {405, "methodNotAllowed", "Method Not Allowed"},
    {406, "notAcceptable", "Not Acceptable"},
    {409, "conflict", "Conflict"},
    {413, "requestEntityTooLarge", "Request Entity Too Large"},
    {415, "unsupportedMediaType", "Unsupported Media Type"},
    {422, "validationError", "Validation Error"},
    {429, "tooManyRequests", "Too Many Requests"},
    {431, "requestHeaderFieldsTooLarge", "Request Header Fields Too Large"},
    {501, "notImplemented", "Not Implemented"},
    {503, "serviceUnavailable", "Service Unavailable"},
    {504, "gatewayTimeout", "Gateway Timeout"},
};

static json_t *error_object(int http, const char *detail, json_t *source) {
  const char *id = "internalServerError", *title = "Internal Server Error";
  for (size_t i = 0; i < sizeof error_kinds / sizeof *error_kinds; i++)
    if (error_kinds[i].http == http) {
      id = error_kinds[i].id;
      title = error_kinds[i].title;
    }
  char status[8];
  snprintf(status, sizeof status, "%d", http);
  json_t *e = json_pack("{s:s, s:s, s:s, s:o}", "id", id, "status", status, "title", title,
                        "detail", gw_text(detail));
  if (source) json_object_set_new(e, "source", source);
  return e;
}

/* A request field of CreateEventRequest/UpdateEventRequest as the JSON
 * pointer of the member the client wrote: "event.external_url" ->
 * "/data/attributes/externalUrl", "event.relationships.sequence_step" ->
 * "/data/relationships/sequenceStep". 0 when the field is not in the body. */
static int body_pointer(const char *field, char *out, size_t len) {
  char name[128];
  if (strncmp(field, "event", 5) != 0 || (field[5] && field[5] != '.')) return 0;
  const char *p = field[5] ? field + 6 : "";
  if (!*p) {
    snprintf(out, len, "/data");
  } else if (strncmp(p, "relationships", 13) == 0 && (!p[13] || p[13] == '.')) {
    camel_segment(p[13] ? p + 14 : "", name, sizeof name);
    snprintf(out, len, "/data/relationships%s%s", name[0] ? "/" : "", name);
  } else {
    camel_segment(p, name, sizeof name);
    if (strcmp(name, "id") == 0)
      snprintf(out, len, "/data/id");
    else
      snprintf(out, len, "/data/attributes/%s", name);
  }
  return 1;
}

/* List query parameters and the request fields they set. `kind` says how
 * the value reads. The field is also the OpenAPI schema source, so filters
 * that are messages on the wire but strings in the URL leave it empty. */
enum { K_STRING, K_INT, K_TIME, K_IDS, K_SORT, K_SIZE, K_CURSOR, K_BOOL, K_FIELDS };
static const struct {
  const char *param, *field;
  int kind;
} list_params[] = {
    {"filter[name]", "name", K_STRING},
    {"filter[id]", "id", K_INT},
    {"filter[createdAt]", "created_at", K_TIME},
    {"filter[eventAt]", "event_at", K_TIME},
    {"filter[account][id]", "account_ids", K_IDS},
    {"filter[call][id]", "call_ids", K_IDS},
    {"filter[mailing][id]", "mailing_ids", K_IDS},
    {"filter[opportunity][id]", "opportunity_ids", K_IDS},
    {"filter[prospect][id]", "prospect_ids", K_IDS},
    {"filter[task][id]", "task_ids", K_IDS},
    {"filter[user][id]", "user_ids", K_IDS},
    {"sort", "order_by", K_SORT},
    {"page[size]", "page_size", K_SIZE},
    {"page[after]", "page_token", K_CURSOR},
    {"page[before]", "before_page_token", K_CURSOR},
    {"count", "include_count", K_BOOL},
    {"fields[event]", "", K_FIELDS},
    {"provideDataConnections", "provide_data_connections", K_BOOL},
};
#define N_LIST_PARAMS (sizeof list_params / sizeof *list_params)

const gw_qparam activity_list_query[] = {
    {"filter[name]", ""},
    {"filter[id]", ""},
    {"filter[createdAt]", ""},
    {"filter[eventAt]", ""},
    {"filter[account][id]", ""},
    {"filter[call][id]", ""},
    {"filter[mailing][id]", ""},
    {"filter[opportunity][id]", ""},
    {"filter[prospect][id]", ""},
    {"filter[task][id]", ""},
    {"filter[user][id]", ""},
    {"sort", ""},
    {"page[size]", "page_size"},
    {"page[after]", "page_token"},
    {"page[before]", "before_page_token"},
    {"count", "include_count"},
    {"fields[event]", ""},
    {"provideDataConnections", "provide_data_connections"},
    {NULL, NULL},
};

const gw_qparam activity_get_query[] = {
    {"fields[event]", ""},
    {"provideDataConnections", "provide_data_connections"},
    {NULL, NULL},
};

/* The query parameter behind a ListEventsRequest field ("created_at.gte"). */
static const char *list_param_of(const char *field) {
  size_t n = strcspn(field, ".[");
  for (size_t i = 0; i < N_LIST_PARAMS; i++)
    if (list_params[i].field[0] && strlen(list_params[i].field) == n &&
        strncmp(field, list_params[i].field, n) == 0)
      return list_params[i].param;
  return NULL;
}

/* Where a service violation points: the body member or the query parameter;
 * sets *in_body for the former. *name is what the client calls the field. */
static json_t *violation_source(const gw_req *req, const char *field, int *in_body, char *name,
                                size_t len) {
  char pointer[300];
  *in_body = 0;
  snprintf(name, len, "%s", field);
  if (body_pointer(field, pointer, sizeof pointer)) {
    *in_body = 1;
    const char *last = strrchr(pointer, '/');
    snprintf(name, len, "%s", strcmp(pointer, "/data") ? last + 1 : "data");
    return json_pack("{s:o}", "pointer", gw_text(pointer));
  }
  int listing = req->route && req->route->rpc && strstr(req->route->rpc, "/ListEvents");
  const char *param = listing ? list_param_of(field) : NULL;
  if (!param) return NULL;
  snprintf(name, len, "%s", param);
  return json_pack("{s:s}", "parameter", param);
}

/* The service's description with its leading request field renamed to what
 * the client wrote ("event.created_at is read-only" -> "createdAt is ..."). */
static json_t *violation_detail(const Google__Rpc__BadRequest__FieldViolation *v,
                                const char *name) {
  const char *desc = v->description ? v->description : "", *field = v->field ? v->field : "";
  size_t n = strlen(field);
  if (!n || strncmp(desc, field, n) != 0) return gw_text(desc);
  char buf[600];
  snprintf(buf, sizeof buf, "%s%s", name, desc + n);
  return gw_text(buf);
}

static void activity_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  int http = f->http;
  json_t *errors = json_array();
  const Google__Rpc__BadRequest *br = f->bad_request;
  if (br && br->n_field_violations) {
    json_t *sources = json_array(), *details = json_array();
    int any_body = 0;
    for (size_t i = 0; i < br->n_field_violations; i++) {
      int in_body;
      char name[300];
      json_t *src =
          violation_source(req, br->field_violations[i]->field, &in_body, name, sizeof name);
      any_body |= in_body;
      json_array_append_new(sources, src ? src : json_null());
      json_array_append_new(details, violation_detail(br->field_violations[i], name));
    }
    /* The service says INVALID_ARGUMENT; about a resource document that is
     * JSON:API's 422, about the query it stays 400. */
    if (http == 400 && any_body) http = 422;
    for (size_t i = 0; i < br->n_field_violations; i++) {
      json_t *src = json_array_get(sources, i);
      json_array_append_new(errors,
                            error_object(http, json_string_value(json_array_get(details, i)),
                                         json_is_null(src) ? NULL : json_incref(src)));
    }
    json_decref(sources);
    json_decref(details);
  } else {
    json_t *src = NULL;
    if (f->field[0] == '/')
      src = json_pack("{s:o}", "pointer", gw_text(f->field));
    else if (f->field[0])
      src = json_pack("{s:o}", "parameter", gw_text(f->field));
    json_array_append_new(errors, error_object(http, f->message, src));
  }
  /* The document's meta carries what correlates it with both processes'
   * logs and the trace. */
  json_t *meta = json_pack("{s:s}", "requestId", req->request_id);
  if (req->trace.trace_hex[0])
    json_object_set_new(meta, "traceId", json_string(req->trace.trace_hex));
  resp->body = json_pack("{s:o, s:o}", "errors", errors, "meta", meta);
  resp->status = http; /* may differ from f->http: 422 for document violations */
}

static json_t *activity_error_schema(void) {
  return json_pack("{s:s, s:{s:{s:s, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, "
                   "s:{s:{s:s}, s:{s:s}}}}}}, s:{s:s, s:{s:{s:s}, s:{s:s}}}}}",
                   "type", "object", "properties", "errors", "type", "array", "items", "type",
                   "object", "properties", "id", "type", "string", "status", "type", "string",
                   "title", "type", "string", "detail", "type", "string", "source", "type",
                   "object", "properties", "pointer", "type", "string", "parameter", "type",
                   "string", "meta", "type", "object", "properties", "requestId", "type", "string",
                   "traceId", "type", "string");
}

/* ---- media types (JSON:API 1.0 "Content Negotiation") ---- */

static const char *skip_space(const char *s) {
  while (*s == ' ' || *s == '\t')
    s++;
  return s;
}

/* Whether [s, s+n) is the JSON:API media type, ignoring case and blanks. */
static int is_media_type(const char *s, size_t n) {
  const char *t = skip_space(s);
  if ((size_t)(t - s) >= n) return 0;
  n -= (size_t)(t - s);
  s = t;
  size_t m = strlen(MEDIA_TYPE);
  if (n < m || strncasecmp(s, MEDIA_TYPE, m) != 0) return 0;
  for (s += m, n -= m; n; s++, n--)
    if (*s != ' ' && *s != '\t') return 0;
  return 1;
}

/* A media range's parameters other than the quality weight "q". */
static int has_media_params(const char *params, size_t n) {
  while (n) {
    const char *semi = memchr(params, ';', n);
    size_t len = semi ? (size_t)(semi - params) : n;
    const char *p = skip_space(params);
    size_t skipped = (size_t)(p - params);
    if (len > skipped && !(p[0] == 'q' && len > skipped + 1 && skip_space(p + 1)[0] == '='))
      return 1;
    if (!semi) break;
    n -= len + 1;
    params = semi + 1;
  }
  return 0;
}

/* 406 when Accept names the JSON:API media type only with parameters. */
static int accept_ok(const char *accept) {
  int listed = 0;
  for (const char *p = accept; *p;) {
    size_t len = strcspn(p, ",");
    size_t type_len = strcspn(p, ";,");
    if (type_len > len) type_len = len;
    if (is_media_type(p, type_len)) {
      if (type_len == len || !has_media_params(p + type_len + 1, len - type_len - 1)) return 1;
      listed = 1;
    }
    p += len;
    if (*p == ',') p++;
  }
  return !listed;
}

static int activity_check(const gw_req *req, gw_fail *f) {
  const char *accept = gw_header(req, "Accept");
  if (accept && !accept_ok(accept)) {
    gw_fail_set(f, 406, "", "", "Accept allows " MEDIA_TYPE " only with media type parameters");
    return -1;
  }
  if (!(req->route && req->route->needs_body) && req->body_len == 0) return 0;
  const char *ct = gw_header(req, "Content-Type");
  if (!ct || !is_media_type(ct, strlen(ct))) {
    gw_fail_set(f, 415, "", "",
                "request bodies must be sent as Content-Type: " MEDIA_TYPE " without parameters");
    return -1;
  }
  return 0;
}

const gw_dialect gw_activity = {
    .name = "activity",
    .content_type = MEDIA_TYPE,
    .json_flags = PBJSON_CAMEL,
    .error = activity_error,
    .check = activity_check,
    .error_schema = activity_error_schema,
};

/* ---- small helpers ---- */

/* A positive decimal integer, whole string; 0 when not one. */
static long long parse_positive(const char *s) {
  if (!s || *s < '1' || *s > '9') return 0;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return *end || errno == ERANGE ? 0 : v;
}

/* The event id of the path; a path id that is not a positive integer names
 * no event, so it is 404 like an unknown one. */
static long long path_id(const gw_req *req, gw_fail *f) {
  const char *raw = req->n_params ? req->param_values[0] : NULL;
  long long id = parse_positive(raw);
  if (!id) gw_fail_set(f, 404, "", "", "event %s not found", raw ? raw : "");
  return id;
}

static int no_query(const gw_req *req, gw_fail *f) {
  gw_query_arg args[1];
  if (gw_query(req, args, 1) == 0) return 0;
  gw_fail_set(f, 400, args[0].key, "not_allowed_value", "unknown query parameter %s", args[0].key);
  return -1;
}

/* Merges `j` into the request; mapper complaints name the member written. */
static int merge_body(ProtobufCMessage *in, json_t *j, gw_fail *f) {
  pbjson_err e = {0};
  if (pbjson_merge(j, in, PBJSON_CAMEL, &e) == 0) return 0;
  char pointer[300] = "";
  if (!body_pointer(e.path, pointer, sizeof pointer)) pointer[0] = '\0';
  int oom = e.reason && strcmp(e.reason, "out_of_memory") == 0;
  gw_fail_set(f, oom ? 500 : 422, pointer, e.reason, "%s: %s", pointer[0] ? pointer : e.path,
              e.msg);
  return -1;
}

/* ---- request documents ---- */

static int doc_fail(gw_fail *f, const char *pointer, const char *reason, const char *what) {
  gw_fail_set(f, 422, pointer, reason, "%s: %s", pointer, what);
  return -1;
}

/* The first member of obj not named in `allowed` (NULL-terminated), or NULL. */
static const char *unknown_member(json_t *obj, const char *const *allowed) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    const char *const *a = allowed;
    while (*a && strcmp(*a, k) != 0)
      a++;
    if (!*a) return k;
  }
  return NULL;
}

/* Fails with pointer "<prefix>/<member>" for a member outside `allowed`. */
static int only_members(json_t *obj, const char *const *allowed, const char *prefix,
                        const char *what, gw_fail *f) {
  const char *k = unknown_member(obj, allowed);
  if (!k) return 0;
  char ptr[300];
  snprintf(ptr, sizeof ptr, "%s/%.200s", prefix, k);
  return doc_fail(f, ptr, "unknown_field", what);
}

/* A relationship id: an integer >= 0 (the seed's samples link id 0), as a
 * number or a string of digits; -1 when it is not one. */
static long long rel_id(json_t *v) {
  if (json_is_integer(v)) return json_integer_value(v) >= 0 ? json_integer_value(v) : -1;
  const char *s = json_string_value(v);
  if (s && strcmp(s, "0") == 0) return 0;
  long long id = parse_positive(s);
  return id ? id : -1;
}

/* relationships -> {"account": 5, "sequenceStep": null, ...}. */
static int read_relationships(json_t *rels, json_t *out, gw_fail *f) {
  const char *name;
  json_t *rel;
  char ptr[160];
  if (!json_is_object(rels))
    return doc_fail(f, "/data/relationships", "invalid_type", "must be an object");
  json_object_foreach(rels, name, rel) {
    snprintf(ptr, sizeof ptr, "/data/relationships/%s", name);
    if (relationship_index(name) < 0)
      return doc_fail(f, ptr, "unknown_field", "no such relationship");
    static const char *const rel_members[] = {"data", "links", "meta", NULL};
    static const char *const id_members[] = {"type", "id", "meta", NULL};
    json_t *data = json_object_get(rel, "data");
    if (!json_is_object(rel) || !data)
      return doc_fail(f, ptr, "invalid_type", "must be an object with a data member");
    if (only_members(rel, rel_members, ptr, "unknown member", f) < 0) return -1;
    if (json_is_null(data)) {
      json_object_set_new(out, name, json_null());
      continue;
    }
    snprintf(ptr, sizeof ptr, "/data/relationships/%s/data", name);
    if (!json_is_object(data))
      return doc_fail(f, ptr, "invalid_type", "must be null or a resource identifier (to-one)");
    if (only_members(data, id_members, ptr, "unknown member", f) < 0) return -1;
    json_t *type = json_object_get(data, "type");
    if (!json_is_string(type) || strcmp(json_string_value(type), name) != 0) {
      snprintf(ptr, sizeof ptr, "/data/relationships/%s/data/type", name);
      char what[64];
      snprintf(what, sizeof what, "must be \"%s\"", name);
      return doc_fail(f, ptr, type ? "not_allowed_value" : "required", what);
    }
    long long id = rel_id(json_object_get(data, "id"));
    if (id < 0) {
      snprintf(ptr, sizeof ptr, "/data/relationships/%s/data/id", name);
      return doc_fail(f, ptr, json_object_get(data, "id") ? "invalid_value_format" : "required",
                      "must be an integer id (0 or more)");
    }
    json_object_set_new(out, name, json_integer(id));
  }
  return 0;
}

/* Checks a request document and returns its resource object's members:
 * *attrs and *rels (new references, empty objects when absent) and, for
 * updates, that data.id is `want_id`. */
static int read_document(json_t *body, long long want_id, json_t **attrs, json_t **rels,
                         gw_fail *f) {
  static const char *const top_members[] = {"data", "meta", "jsonapi", NULL};
  static const char *const data_members[] = {"type",  "id",   "attributes", "relationships",
                                             "links", "meta", NULL};
  const char *k;
  json_t *v;
  *attrs = *rels = NULL;
  if (only_members(body, top_members, "", "unknown top-level member", f) < 0) return -1;
  json_t *data = json_object_get(body, "data");
  if (!data) return doc_fail(f, "/data", "required", "a resource object is required");
  if (!json_is_object(data)) return doc_fail(f, "/data", "invalid_type", "must be an object");
  if (only_members(data, data_members, "/data", "unknown member", f) < 0) return -1;
  json_t *type = json_object_get(data, "type");
  if (!type) return doc_fail(f, "/data/type", "required", "type is required");
  /* JSON:API 1.0: a type this endpoint does not hold, or an id other than
   * the URL's, is 409 Conflict; an id the client made up is 403. */
  if (!json_is_string(type) || strcmp(json_string_value(type), RESOURCE_TYPE) != 0) {
    gw_fail_set(f, 409, "/data/type", "conflict",
                "/data/type: this endpoint holds resources of type \"" RESOURCE_TYPE "\"");
    return -1;
  }
  json_t *id = json_object_get(data, "id");
  if (!want_id && id) {
    gw_fail_set(f, 403, "/data/id", "forbidden",
                "/data/id: client-generated ids are not supported; the server assigns ids");
    return -1;
  }
  if (want_id && !id) return doc_fail(f, "/data/id", "required", "id is required");
  if (want_id && rel_id(id) != want_id) {
    gw_fail_set(f, 409, "/data/id", "conflict", "/data/id: must be the id of the URL");
    return -1;
  }
  json_t *a = json_object_get(data, "attributes");
  if (a && !json_is_object(a))
    return doc_fail(f, "/data/attributes", "invalid_type", "must be an object");
  json_object_foreach(a, k, v) {
    if (attribute_index(k) >= 0) continue;
    char ptr[300];
    snprintf(ptr, sizeof ptr, "/data/attributes/%.200s", k);
    return doc_fail(f, ptr, "unknown_field", "no such attribute");
  }
  *rels = json_object();
  json_t *r = json_object_get(data, "relationships");
  if (r && read_relationships(r, *rels, f) < 0) {
    json_decref(*rels);
    *rels = NULL;
    return -1;
  }
  *attrs = a ? json_incref(a) : json_object();
  return 0;
}

/* ---- request facts ---- */

/* A header value as valid UTF-8 of at most MAX_TEXT characters (bad bytes
 * become U+FFFD); NULL when absent or blank. */
static json_t *header_text(const gw_req *req, const char *name, int first_of_list) {
  const char *v = gw_header(req, name);
  if (!v) return NULL;
  v = skip_space(v);
  size_t n = first_of_list ? strcspn(v, ",") : strlen(v);
  while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
    n--;
  if (!n) return NULL;
  /* Cut after MAX_TEXT characters, a bad byte counting as one. */
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
  if (!ua || !*skip_space(ua)) return NULL;
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

/* ---- POST / PATCH / GET one / DELETE ---- */

int activity_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body = NULL, *attrs = NULL, *rels = NULL;
  int rc = -1;
  if (no_query(req, f) < 0 || gw_body_json(req, &body, f) < 0) return -1;
  if (read_document(body, 0, &attrs, &rels, f) < 0) goto free_body;
  /* A null relationship on create links nothing. */
  const char *k;
  void *tmp;
  json_t *v;
  json_object_foreach_safe(rels, tmp, k, v) {
    if (json_is_null(v)) json_object_del(rels, k);
  }
  json_object_set(attrs, "relationships", rels);
  json_t *msg = json_pack("{s:O, s:o}", "event", attrs, "requestInfo", request_info(req));
  rc = merge_body(in, msg, f);
  json_decref(msg);
free_body:
  json_decref(attrs);
  json_decref(rels);
  json_decref(body);
  return rc;
}

int activity_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body = NULL, *attrs = NULL, *rels = NULL;
  long long id = path_id(req, f);
  int rc = -1;
  if (!id || no_query(req, f) < 0 || gw_body_json(req, &body, f) < 0) return -1;
  if (read_document(body, id, &attrs, &rels, f) < 0) goto free_body;
  /* The mask lists exactly the members sent: a null clears, absent keeps. */
  char mask[1024] = "";
  const char *k;
  json_t *v;
  json_object_foreach(attrs, k, v) {
    size_t n = strlen(mask);
    snprintf(mask + n, sizeof mask - n, "%s%s", n ? "," : "", k);
  }
  json_object_foreach(rels, k, v) {
    size_t n = strlen(mask);
    snprintf(mask + n, sizeof mask - n, "%srelationships.%s", n ? "," : "", k);
  }
  json_object_set(attrs, "relationships", rels);
  json_object_set_new(attrs, "id", json_integer(id));
  json_t *msg = json_pack("{s:O, s:s}", "event", attrs, "updateMask", mask);
  rc = merge_body(in, msg, f);
  json_decref(msg);
free_body:
  json_decref(attrs);
  json_decref(rels);
  json_decref(body);
  return rc;
}

int activity_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  Events__Activity__V1__DeleteEventRequest *r = (void *)in;
  if (!(r->id = path_id(req, f))) return -1;
  return no_query(req, f);
}

/* Sparse fieldset: which attributes and relationships to show. */
typedef struct fieldset {
  int given;
  unsigned char attr[N_ATTRIBUTES], rel[N_RELATIONSHIPS];
} fieldset;

static int parse_fieldset(const char *value, fieldset *fs, gw_fail *f) {
  memset(fs, 0, sizeof *fs);
  fs->given = 1;
  for (const char *p = value; *p;) {
    size_t n = strcspn(p, ",");
    char name[64];
    int a = -1, r = -1;
    if (n && n < sizeof name) {
      memcpy(name, p, n);
      name[n] = '\0';
      a = attribute_index(name);
      r = relationship_index(name);
    }
    if (a < 0 && r < 0) {
      gw_fail_set(f, 400, "fields[event]", "not_allowed_value",
                  "fields[event]: \"%.*s\" is no attribute or relationship of event", (int)n, p);
      return -1;
    }
    if (a >= 0) fs->attr[a] = 1;
    if (r >= 0) fs->rel[r] = 1;
    p += n;
    if (*p == ',' && !p[1]) {
      gw_fail_set(f, 400, "fields[event]", "invalid_value_format", "fields[event]: empty name");
      return -1;
    }
    if (*p == ',') p++;
  }
  return 0;
}

/* fields[event] and provideDataConnections of GET requests. Reads and checks
 * the query; unknown parameters are 400. */
static int read_view(const gw_req *req, const gw_qparam *allowed, fieldset *fs, int *connections,
                     gw_fail *f) {
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  fs->given = 0;
  *connections = 0;
  if (n > MAX_ARGS) {
    gw_fail_set(f, 400, "", "invalid_value_format", "too many query parameters");
    return -1;
  }
  for (size_t i = 0; i < n; i++) {
    size_t j = 0;
    while (allowed[j].param && strcmp(allowed[j].param, args[i].key))
      j++;
    if (!allowed[j].param) {
      gw_fail_set(f, 400, args[i].key, "not_allowed_value", "unknown query parameter %s",
                  args[i].key);
      return -1;
    }
    for (size_t k = 0; k < i; k++)
      if (strcmp(args[k].key, args[i].key) == 0) {
        gw_fail_set(f, 400, args[i].key, "invalid_value_format", "%s is given more than once",
                    args[i].key);
        return -1;
      }
    if (strcmp(args[i].key, "fields[event]") == 0) {
      if (parse_fieldset(args[i].value, fs, f) < 0) return -1;
    } else if (strcmp(args[i].key, "provideDataConnections") == 0) {
      if (strcmp(args[i].value, "true") && strcmp(args[i].value, "false")) {
        gw_fail_set(f, 400, args[i].key, "invalid_value_format", "%s must be true or false",
                    args[i].key);
        return -1;
      }
      *connections = strcmp(args[i].value, "true") == 0;
    }
  }
  return 0;
}

int activity_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  Events__Activity__V1__GetEventRequest *r = (void *)in;
  fieldset fs;
  int connections;
  if (!(r->id = path_id(req, f))) return -1;
  if (read_view(req, activity_get_query, &fs, &connections, f) < 0) return -1;
  r->provide_data_connections = connections;
  return 0;
}

/* ---- resource objects ---- */

static json_t *resource(const gw_req *req, const ProtobufCMessage *msg, const fieldset *fs,
                        int connections) {
  const Event *e = (const Event *)msg;
  json_t *all = pbjson_encode(msg, PBJSON_CAMEL);
  json_t *attrs = json_object(), *rels = json_object();
  json_t *linked = json_object_get(all, "relationships");
  for (size_t i = 0; i < N_ATTRIBUTES; i++) {
    if (fs->given && !fs->attr[i]) continue;
    json_t *v = json_object_get(all, attributes[i].name);
    json_object_set(attrs, attributes[i].name, v ? v : json_null());
  }
  for (size_t i = 0; i < N_RELATIONSHIPS; i++) {
    json_t *id = json_object_get(linked, relationships[i]);
    if ((fs->given && !fs->rel[i]) || !json_is_integer(id)) continue;
    json_object_set_new(rels, relationships[i],
                        json_pack("{s:{s:s, s:O}}", "data", "type", relationships[i], "id", id));
  }
  char base[512], self[600];
  gw_base_url(req, base, sizeof base);
  snprintf(self, sizeof self, "%s" EVENTS_PATH "/%lld", base, (long long)e->id);
  json_t *r =
      json_pack("{s:s, s:I, s:o, s:o, s:{s:s}}", "type", RESOURCE_TYPE, "id", (json_int_t)e->id,
                "attributes", attrs, "relationships", rels, "links", "self", self);
  if (connections) {
    json_t *dc = json_object_get(all, "dataConnections");
    json_object_set_new(
        r, "meta",
        json_pack("{s:o}", "dataConnections", json_is_array(dc) ? json_incref(dc) : json_array()));
  }
  json_decref(all);
  return r;
}

int activity_render_event(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  fieldset fs = {0};
  int connections = 0;
  if (strcmp(req->method, "GET") == 0) {
    if (read_view(req, activity_get_query, &fs, &connections, f) < 0) return -1;
  }
  (void)in;
  resp->status = strcmp(req->method, "POST") == 0 ? 201 : 200;
  resp->body = json_pack("{s:o}", "data", resource(req, out, &fs, connections));
  return 0;
}

int activity_render_delete(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)out;
  (void)f;
  resp->status = 204;
  resp->body = NULL;
  return 0;
}

/* ---- GET list ---- */

static int bad_param(gw_fail *f, const char *param, const char *reason, const char *what,
                     const char *value) {
  gw_fail_set(f, 400, param, reason, "%s: %s (got \"%.100s\")", param, what, value);
  return -1;
}

/* One filter value of `kind` as JSON: NULL with f filled when malformed. */
static json_t *filter_value(const char *param, int kind, const char *s, size_t n, gw_fail *f) {
  char buf[512];
  if (n == 0 || n >= sizeof buf) {
    bad_param(f, param, "invalid_value_format", n ? "value too long" : "empty value", s);
    return NULL;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (kind == K_STRING) {
    json_t *j = json_string(buf);
    if (!j) bad_param(f, param, "invalid_value_format", "not UTF-8 text", "...");
    return j;
  }
  if (kind == K_TIME) {
    int64_t secs;
    int32_t nanos;
    if (pbjson_time_parse(buf, &secs, &nanos) == 0) return json_string(buf);
    bad_param(f, param, "invalid_value_format", "not an RFC 3339 time", buf);
    return NULL;
  }
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  if (*end || errno == ERANGE || (kind == K_IDS && v < 0)) {
    bad_param(f, param, "invalid_value_format",
              kind == K_IDS ? "ids are integers from 0" : "not an integer", buf);
    return NULL;
  }
  return json_integer(v);
}

/* "a,b,c" -> [a, b, c]. */
static json_t *filter_list(const char *param, int kind, const char *value, gw_fail *f) {
  json_t *vals = json_array();
  for (const char *p = value;;) {
    size_t n = strcspn(p, ",");
    json_t *v = filter_value(param, kind, p, n, f);
    if (!v) {
      json_decref(vals);
      return NULL;
    }
    json_array_append_new(vals, v);
    if (json_array_size(vals) > MAX_PAGE) {
      json_decref(vals);
      bad_param(f, param, "out_of_range", "at most 1000 values", "...");
      return NULL;
    }
    if (!p[n]) return vals;
    p += n + 1;
  }
}

/* filter[x]: exact value, comma list, or range a..b with neginf/inf ends. */
static json_t *filter_object(const char *param, int kind, const char *value, gw_fail *f) {
  const char *dots = strstr(value, "..");
  if (!dots) {
    json_t *vals = filter_list(param, kind, value, f);
    return vals ? json_pack("{s:o}", "values", vals) : NULL;
  }
  json_t *range = json_object(), *v;
  const char *lo = value, *hi = dots + 2;
  size_t lo_n = (size_t)(dots - value);
  if (!(lo_n == 6 && strncmp(lo, "neginf", 6) == 0)) {
    if (!(v = filter_value(param, kind, lo, lo_n, f))) goto bad;
    json_object_set_new(range, "gte", v);
  }
  if (strcmp(hi, "inf") != 0) {
    if (!(v = filter_value(param, kind, hi, strlen(hi), f))) goto bad;
    json_object_set_new(range, "lte", v);
  }
  return range;
bad:
  json_decref(range);
  return NULL;
}

/* sort=-createdAt,id -> [{"field": "created_at", "descending": true}, ...]. */
static json_t *sort_keys(const char *value, gw_fail *f) {
  static const struct {
    const char *param, *field;
  } keys[] = {{"id", "id"}, {"createdAt", "created_at"}, {"eventAt", "event_at"}};
  json_t *out = json_array();
  for (const char *p = value;;) {
    size_t n = strcspn(p, ",");
    int desc = n && *p == '-';
    const char *name = p + desc;
    size_t len = n - (size_t)desc, k = 0;
    while (k < 3 && !(strlen(keys[k].param) == len && strncmp(name, keys[k].param, len) == 0))
      k++;
    size_t i;
    json_t *prev;
    int twice = 0;
    json_array_foreach(out, i, prev) {
      const char *had = json_string_value(json_object_get(prev, "field"));
      twice |= k < 3 && strcmp(had, keys[k].field) == 0;
    }
    if (k == 3 || twice) {
      json_decref(out);
      gw_fail_set(f, 400, "sort", "not_allowed_value",
                  "sort: \"%.*s\" %s (sortable: id, createdAt, eventAt; '-' for descending)",
                  (int)(n > 100 ? 100 : n), p, twice ? "is given twice" : "is not sortable");
      return NULL;
    }
    json_array_append_new(out, json_pack("{s:s, s:b}", "field", keys[k].field, "descending", desc));
    if (!p[n]) return out;
    p += n + 1;
  }
}

/* One list parameter into the request JSON `req_json`. */
static int list_arg(const gw_query_arg *a, int kind, const char *field, json_t *req_json,
                    gw_fail *f) {
  json_t *v = NULL;
  switch (kind) {
  case K_STRING:
  case K_INT:
  case K_TIME:
    v = filter_object(a->key, kind, a->value, f);
    break;
  case K_IDS:
    v = filter_list(a->key, kind, a->value, f);
    break;
  case K_SORT:
    v = sort_keys(a->value, f);
    break;
  case K_SIZE: {
    long long n = parse_positive(a->value);
    if (n < 1 || n > MAX_PAGE)
      return bad_param(f, a->key, "out_of_range", "must be an integer from 1 to 1000", a->value);
    v = json_integer(n);
    break;
  }
  case K_CURSOR:
    if (!a->value[0]) return bad_param(f, a->key, "invalid_value_format", "empty cursor", "");
    if (!(v = json_string(a->value)))
      return bad_param(f, a->key, "invalid_value_format", "not a cursor", "...");
    break;
  case K_BOOL:
    if (strcmp(a->value, "true") && strcmp(a->value, "false"))
      return bad_param(f, a->key, "invalid_value_format", "must be true or false", a->value);
    v = json_boolean(strcmp(a->value, "true") == 0);
    break;
  case K_FIELDS: {
    fieldset fs;
    return parse_fieldset(a->value, &fs, f);
  }
  }
  if (!v) return -1;
  json_object_set_new(req_json, field, v);
  return 0;
}

int activity_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  if (n > MAX_ARGS) {
    gw_fail_set(f, 400, "", "invalid_value_format", "too many query parameters");
    return -1;
  }
  json_t *req_json = json_object();
  int rc = -1;
  for (size_t i = 0; i < n; i++) {
    size_t p = 0;
    while (p < N_LIST_PARAMS && strcmp(list_params[p].param, args[i].key))
      p++;
    if (p == N_LIST_PARAMS) {
      gw_fail_set(f, 400, args[i].key, "not_allowed_value", "unknown query parameter %s",
                  args[i].key);
      goto free_json;
    }
    for (size_t k = 0; k < i; k++)
      if (strcmp(args[k].key, args[i].key) == 0) {
        gw_fail_set(f, 400, args[i].key, "invalid_value_format", "%s is given more than once",
                    args[i].key);
        goto free_json;
      }
    if (list_arg(&args[i], list_params[p].kind, list_params[p].field, req_json, f) < 0)
      goto free_json;
  }
  if (json_object_get(req_json, "page_token") && json_object_get(req_json, "before_page_token")) {
    gw_fail_set(f, 400, "page[before]", "not_allowed_value",
                "page[after] and page[before] exclude each other");
    goto free_json;
  }
  pbjson_err e = {0};
  if (pbjson_merge(req_json, in, 0, &e) < 0) {
    const char *param = list_param_of(e.path);
    gw_fail_set(f, 400, param ? param : "", e.reason, "%s: %s", param ? param : e.path, e.msg);
    goto free_json;
  }
  rc = 0;
free_json:
  json_decref(req_json);
  return rc;
}

/* Appends s percent-encoded (RFC 3986 unreserved characters stay). */
static void url_encode(FILE *out, const char *s) {
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '.' || c == '_' || c == '~')
      fputc(c, out);
    else
      fprintf(out, "%%%02X", c);
  }
}

/* This listing's URL with the client's parameters, its cursor replaced by
 * `cursor_param`=`token` (none for the first page). NULL without a token
 * when one is needed. */
static json_t *page_link(const gw_req *req, const char *cursor_param, const char *token) {
  if (cursor_param && (!token || !*token)) return json_null();
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  char base[512], *text = NULL;
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out) return json_null();
  gw_base_url(req, base, sizeof base);
  fprintf(out, "%s" EVENTS_PATH, base);
  char sep = '?';
  for (size_t i = 0; i < n && i < MAX_ARGS; i++) {
    if (strcmp(args[i].key, "page[after]") == 0 || strcmp(args[i].key, "page[before]") == 0)
      continue;
    fputc(sep, out);
    url_encode(out, args[i].key);
    fputc('=', out);
    url_encode(out, args[i].value);
    sep = '&';
  }
  if (cursor_param) {
    fputc(sep, out);
    url_encode(out, cursor_param);
    fputc('=', out);
    url_encode(out, token);
  }
  fclose(out);
  json_t *j = json_string(text);
  free(text);
  return j ? j : json_null();
}

int activity_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f) {
  const Events__Activity__V1__ListEventsRequest *q = (const void *)in;
  const Events__Activity__V1__ListEventsResponse *r = (const void *)out;
  fieldset fs = {0};
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  for (size_t i = 0; i < n && i < MAX_ARGS; i++)
    if (strcmp(args[i].key, "fields[event]") == 0 && parse_fieldset(args[i].value, &fs, f) < 0)
      return -1;
  json_t *data = json_array();
  for (size_t i = 0; i < r->n_events; i++)
    json_array_append_new(data,
                          resource(req, &r->events[i]->base, &fs, q->provide_data_connections));
  json_t *meta = json_object();
  if (q->include_count && r->total_count)
    json_object_set_new(meta, "count", json_integer(r->total_count->value));
  resp->status = 200;
  resp->body = json_pack("{s:o, s:{s:o, s:o, s:o}, s:o}", "data", data, "links", "first",
                         page_link(req, NULL, NULL), "next",
                         page_link(req, "page[after]", r->next_page_token), "prev",
                         page_link(req, "page[before]", r->prev_page_token), "meta", meta);
  return 0;
}

/* ---- OpenAPI ---- */

/* The event resource object. A create must name its type and the
 * attributes the annotations make REQUIRED; a response or an update does
 * not (an update sends what it changes). Attributes carry their annotated
 * limits (maxLength, readOnly for the output-only ones). */
static json_t *resource_schema_for(int create) {
  const ProtobufCMessageDescriptor *d = &events__activity__v1__event__descriptor;
  json_t *attrs = json_object();
  for (size_t i = 0; i < N_ATTRIBUTES; i++) {
    for (unsigned j = 0; j < d->n_fields; j++) {
      char name[64];
      camel_segment(d->fields[j].name, name, sizeof name);
      if (strcmp(name, attributes[i].name) == 0)
        json_object_set_new(attrs, name, gw_schema_field_of(d, &d->fields[j], PBJSON_CAMEL));
    }
  }
  json_t *rels = json_object();
  for (size_t i = 0; i < N_RELATIONSHIPS; i++)
    json_object_set_new(rels, relationships[i],
                        json_pack("{s:s, s:{s:{s:s, s:{s:{s:s}, s:{s:s}}}}}", "type", "object",
                                  "properties", "data", "type", "object", "properties", "type",
                                  "type", "string", "id", "type", "integer"));
  json_t *attributes_schema = json_pack("{s:s, s:o}", "type", "object", "properties", attrs);
  json_t *res = json_pack(
      "{s:s, s:{s:{s:s, s:[s]}, s:{s:s, s:b}, s:o, s:{s:s, s:o}, s:{s:s}, s:{s:s}}}", "type",
      "object", "properties", "type", "type", "string", "enum", RESOURCE_TYPE, "id", "type",
      "integer", "readOnly", 1, "attributes", attributes_schema, "relationships", "type", "object",
      "properties", rels, "links", "type", "object", "meta", "type", "object");
  if (create) {
    json_object_set_new(res, "required", json_pack("[s, s]", "type", "attributes"));
    json_t *req = gw_schema_required(d, PBJSON_CAMEL);
    if (json_array_size(req)) json_object_set(attributes_schema, "required", req);
    json_decref(req);
  } else {
    json_object_set_new(res, "required", json_pack("[s]", "type"));
  }
  return res;
}

static json_t *resource_schema(void) {
  return resource_schema_for(0);
}

static json_t *new_resource_schema(void) {
  return resource_schema_for(1);
}

static json_t *event_document(void) {
  return json_pack("{s:s, s:{s:o}, s:[s]}", "type", "object", "properties", "data",
                   gw_schema_component("activity.EventResource", resource_schema), "required",
                   "data");
}

static json_t *new_event_document(void) {
  return json_pack("{s:s, s:{s:o}, s:[s]}", "type", "object", "properties", "data",
                   gw_schema_component("activity.NewEventResource", new_resource_schema),
                   "required", "data");
}

static json_t *list_document(void) {
  return json_pack("{s:s, s:{s:{s:s, s:o}, s:{s:s}, s:{s:s}}, s:[s]}", "type", "object",
                   "properties", "data", "type", "array", "items",
                   gw_schema_component("activity.EventResource", resource_schema), "links", "type",
                   "object", "meta", "type", "object", "required", "data");
}

/* A single-event document: the response of create, get and update, and
 * the body of an update. */
json_t *activity_event_schema(void) {
  return gw_schema_component("activity.EventDocument", event_document);
}

/* The body of a create. */
json_t *activity_new_event_schema(void) {
  return gw_schema_component("activity.NewEventDocument", new_event_document);
}

json_t *activity_list_schema(void) {
  return gw_schema_component("activity.EventListDocument", list_document);
}
