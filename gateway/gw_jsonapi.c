/* gw_jsonapi.c - JSON:API 1.0 over one resource message (see gw_jsonapi.h).
 *
 * Member names are the mapper's lowerCamelCase. Attributes are the
 * resource's fields other than its id, its links message and its meta
 * field; relationships are the links message's fields. Query parameters are
 * the route's map (the fields' rest_name annotations: "filter[createdAt]",
 * "page[size]", "sort"), read by the shape of the field they set: a message
 * of `values`/`gte`/`lte` is a filter (a comma list, or a range a..b with
 * neginf/inf ends), a repeated SortKey-like message (an enum `field` and a
 * bool `descending`) a sort (-name for descending, names from the enum), a
 * repeated scalar a comma list. */
#include "gw_jsonapi.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define MAX_ARGS 64
#define MAX_VALUES 1000

/* ---- members ---- */

static const ProtobufCFieldDescriptor *field_named(const ProtobufCMessageDescriptor *d,
                                                   const char *name) {
  return name ? protobuf_c_message_descriptor_get_field_by_name(d, name) : NULL;
}

static const ProtobufCMessageDescriptor *links_desc(const gw_jsonapi *ja) {
  const ProtobufCFieldDescriptor *f = field_named(ja->desc, ja->links_field);
  return f ? f->descriptor : NULL;
}

static int is_attribute(const gw_jsonapi *ja, const ProtobufCFieldDescriptor *f) {
  return strcmp(f->name, "id") != 0 && !(ja->links_field && !strcmp(f->name, ja->links_field)) &&
         !(ja->meta_field && !strcmp(f->name, ja->meta_field));
}

static const char *camel(const ProtobufCFieldDescriptor *f, char *buf, size_t len) {
  const char *n = pbjson_field_name(f, PBJSON_CAMEL, buf, len);
  return n ? n : f->name;
}

/* The index of the field of d whose member name is `name` (n bytes), or -1. */
static int member_index(const ProtobufCMessageDescriptor *d, const char *name, size_t n) {
  for (unsigned i = 0; d && i < d->n_fields; i++) {
    char buf[128];
    const char *m = camel(&d->fields[i], buf, sizeof buf);
    if (strlen(m) == n && strncmp(m, name, n) == 0) return (int)i;
  }
  return -1;
}

static int attribute_index(const gw_jsonapi *ja, const char *name) {
  int i = member_index(ja->desc, name, strlen(name));
  return i >= 0 && is_attribute(ja, &ja->desc->fields[i]) ? i : -1;
}

/* "sequence_step" -> "sequenceStep", up to '.' or '['. */
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

/* A request field ("event.external_url", "event.relationships.sequence_step")
 * as the JSON pointer of the member the client wrote; 0 when the field is
 * not in the document. */
static int body_pointer(const gw_jsonapi *ja, const char *field, char *out, size_t len) {
  char name[128];
  size_t n = strlen(ja->body_field);
  if (strncmp(field, ja->body_field, n) != 0 || (field[n] && field[n] != '.')) return 0;
  const char *p = field[n] ? field + n + 1 : "";
  size_t ln = ja->links_field ? strlen(ja->links_field) : 0;
  if (!*p) {
    snprintf(out, len, "/data");
  } else if (ln && strncmp(p, ja->links_field, ln) == 0 && (!p[ln] || p[ln] == '.')) {
    camel_segment(p[ln] ? p + ln + 1 : "", name, sizeof name);
    snprintf(out, len, "/data/relationships%s%s", name[0] ? "/" : "", name);
  } else {
    camel_segment(p, name, sizeof name);
    snprintf(out, len, strcmp(name, "id") ? "/data/attributes/%s" : "/data/%s", name);
  }
  return 1;
}

/* The query parameter that sets request field `field` ("created_at.gte"). */
static const char *param_of(const gw_req *req, const char *field) {
  size_t n = strcspn(field, ".[");
  const gw_qparam *q = req->route ? req->route->query : NULL;
  for (; q && q->param; q++)
    if (strlen(q->field) == n && strncmp(field, q->field, n) == 0) return q->param;
  return NULL;
}

/* Where a violation points: the body member (*in_body) or the query
 * parameter; *name is what the client calls the field. */
static json_t *violation_source(const gw_jsonapi *ja, const gw_req *req, const char *field,
                                int *in_body, char *name, size_t len) {
  char pointer[300];
  *in_body = 0;
  snprintf(name, len, "%s", field);
  if (body_pointer(ja, field, pointer, sizeof pointer)) {
    *in_body = 1;
    const char *last = strrchr(pointer, '/');
    snprintf(name, len, "%s", strcmp(pointer, "/data") ? last + 1 : "data");
    return json_pack("{s:o}", "pointer", gw_text(pointer));
  }
  const char *param = param_of(req, field);
  if (!param) return NULL;
  snprintf(name, len, "%s", param);
  return json_pack("{s:s}", "parameter", param);
}

/* The service's description with its leading request field renamed. */
static json_t *violation_detail(const Google__Rpc__BadRequest__FieldViolation *v,
                                const char *name) {
  const char *desc = v->description ? v->description : "", *field = v->field ? v->field : "";
  size_t n = strlen(field);
  if (!n || strncmp(desc, field, n) != 0) return gw_text(desc);
  char buf[600];
  snprintf(buf, sizeof buf, "%s%s", name, desc + n);
  return gw_text(buf);
}

void gw_jsonapi_error(const gw_jsonapi *ja, const gw_req *req, const gw_fail *f, gw_resp *resp) {
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
          violation_source(ja, req, br->field_violations[i]->field, &in_body, name, sizeof name);
      any_body |= in_body;
      json_array_append_new(sources, src ? src : json_null());
      json_array_append_new(details, violation_detail(br->field_violations[i], name));
    }
    /* INVALID_ARGUMENT about a resource document is JSON:API's 422; about
     * the query it stays 400. */
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
    if (f->field[0])
      src = json_pack("{s:o}", f->field[0] == '/' ? "pointer" : "parameter", gw_text(f->field));
    json_array_append_new(errors, error_object(http, f->message, src));
  }
  /* meta carries what correlates the document with both processes' logs
   * and the trace. */
  json_t *meta = json_pack("{s:s}", "requestId", req->request_id);
  if (req->trace.trace_hex[0])
    json_object_set_new(meta, "traceId", json_string(req->trace.trace_hex));
  resp->body = json_pack("{s:o, s:o}", "errors", errors, "meta", meta);
  resp->status = http;
}

json_t *gw_jsonapi_error_schema(void) {
  return json_pack("{s:s, s:{s:{s:s, s:{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s}, s:{s:s, "
                   "s:{s:{s:s}, s:{s:s}}}}}}, s:{s:s, s:{s:{s:s}, s:{s:s}}}}}",
                   "type", "object", "properties", "errors", "type", "array", "items", "type",
                   "object", "properties", "id", "type", "string", "status", "type", "string",
                   "title", "type", "string", "detail", "type", "string", "source", "type",
                   "object", "properties", "pointer", "type", "string", "parameter", "type",
                   "string", "meta", "type", "object", "properties", "requestId", "type", "string",
                   "traceId", "type", "string");
}

/* ---- content negotiation ---- */

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
  size_t m = strlen(GW_JSONAPI_MEDIA_TYPE);
  if (n < m || strncasecmp(s, GW_JSONAPI_MEDIA_TYPE, m) != 0) return 0;
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

/* 406 when Accept names the media type only with parameters. */
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

int gw_jsonapi_check(const gw_req *req, gw_fail *f) {
  const char *accept = gw_header(req, "Accept");
  if (accept && !accept_ok(accept)) {
    gw_fail_set(f, 406, "", "",
                "Accept allows " GW_JSONAPI_MEDIA_TYPE " only with media type parameters");
    return -1;
  }
  if (!(req->route && req->route->needs_body) && req->body_len == 0) return 0;
  const char *ct = gw_header(req, "Content-Type");
  if (!ct || !is_media_type(ct, strlen(ct))) {
    gw_fail_set(f, 415, "", "",
                "request bodies must be sent as Content-Type: " GW_JSONAPI_MEDIA_TYPE
                " without parameters");
    return -1;
  }
  return 0;
}

/* ---- request documents ---- */

static int doc_fail(gw_fail *f, const char *pointer, const char *reason, const char *what) {
  gw_fail_set(f, 422, pointer, reason, "%s: %s", pointer, what);
  return -1;
}

/* Fails with pointer "<prefix>/<member>" for a member outside `allowed`. */
static int only_members(json_t *obj, const char *const *allowed, const char *prefix,
                        const char *what, gw_fail *f) {
  const char *k;
  json_t *v;
  json_object_foreach(obj, k, v) {
    const char *const *a = allowed;
    while (*a && strcmp(*a, k) != 0)
      a++;
    if (*a) continue;
    char ptr[300];
    snprintf(ptr, sizeof ptr, "%s/%.200s", prefix, k);
    return doc_fail(f, ptr, "unknown_field", what);
  }
  return 0;
}

/* A positive decimal integer, whole string; 0 when not one. */
static long long parse_positive(const char *s) {
  if (!s || *s < '1' || *s > '9') return 0;
  char *end;
  errno = 0;
  long long v = strtoll(s, &end, 10);
  return *end || errno == ERANGE ? 0 : v;
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
static int read_links(const gw_jsonapi *ja, json_t *rels, json_t *out, gw_fail *f) {
  static const char *const rel_members[] = {"data", "links", "meta", NULL};
  static const char *const id_members[] = {"type", "id", "meta", NULL};
  const ProtobufCMessageDescriptor *ld = links_desc(ja);
  const char *name;
  json_t *rel;
  char ptr[160];
  if (!json_is_object(rels))
    return doc_fail(f, "/data/relationships", "invalid_type", "must be an object");
  json_object_foreach(rels, name, rel) {
    snprintf(ptr, sizeof ptr, "/data/relationships/%s", name);
    if (member_index(ld, name, strlen(name)) < 0)
      return doc_fail(f, ptr, "unknown_field", "no such relationship");
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

/* Appends path to the mask. */
static void mask_add(char *mask, size_t len, const char *prefix, const char *path) {
  size_t n = strlen(mask);
  snprintf(mask + n, len - n, "%s%s%s", n ? "," : "", prefix, path);
}

int gw_jsonapi_read(const gw_jsonapi *ja, const gw_req *req, long long want_id, json_t **msg,
                    char *mask, size_t mask_len, gw_fail *f) {
  static const char *const top_members[] = {"data", "meta", "jsonapi", NULL};
  static const char *const data_members[] = {"type",  "id",   "attributes", "relationships",
                                             "links", "meta", NULL};
  json_t *body, *res = NULL, *rels = NULL;
  const char *k;
  json_t *v;
  char lname[64];
  *msg = NULL;
  if (gw_body_json(req, &body, f) < 0) return -1;
  if (only_members(body, top_members, "", "unknown top-level member", f) < 0) goto fail;
  json_t *data = json_object_get(body, "data");
  if (!data) {
    doc_fail(f, "/data", "required", "a resource object is required");
    goto fail;
  }
  if (!json_is_object(data)) {
    doc_fail(f, "/data", "invalid_type", "must be an object");
    goto fail;
  }
  if (only_members(data, data_members, "/data", "unknown member", f) < 0) goto fail;
  json_t *type = json_object_get(data, "type");
  if (!type) {
    doc_fail(f, "/data/type", "required", "type is required");
    goto fail;
  }
  /* A type this endpoint does not hold, or an id other than the URL's, is
   * 409 Conflict; an id the client made up is 403. */
  if (!json_is_string(type) || strcmp(json_string_value(type), ja->type) != 0) {
    gw_fail_set(f, 409, "/data/type", "conflict",
                "/data/type: this endpoint holds resources of type \"%s\"", ja->type);
    goto fail;
  }
  json_t *id = json_object_get(data, "id");
  if (!want_id && id) {
    gw_fail_set(f, 403, "/data/id", "forbidden",
                "/data/id: client-generated ids are not supported; the server assigns ids");
    goto fail;
  }
  if (want_id && !id) {
    doc_fail(f, "/data/id", "required", "id is required");
    goto fail;
  }
  if (want_id && rel_id(id) != want_id) {
    gw_fail_set(f, 409, "/data/id", "conflict", "/data/id: must be the id of the URL");
    goto fail;
  }
  json_t *a = json_object_get(data, "attributes");
  if (a && !json_is_object(a)) {
    doc_fail(f, "/data/attributes", "invalid_type", "must be an object");
    goto fail;
  }
  res = a ? json_copy(a) : json_object();
  json_object_foreach(res, k, v) {
    if (attribute_index(ja, k) >= 0) {
      if (mask) mask_add(mask, mask_len, "", k);
      continue;
    }
    char ptr[300];
    snprintf(ptr, sizeof ptr, "/data/attributes/%.200s", k);
    doc_fail(f, ptr, "unknown_field", "no such attribute");
    goto fail;
  }
  rels = json_object();
  json_t *r = json_object_get(data, "relationships");
  if (r && read_links(ja, r, rels, f) < 0) goto fail;
  const ProtobufCFieldDescriptor *lf = field_named(ja->desc, ja->links_field);
  if (lf) {
    const char *ln = camel(lf, lname, sizeof lname);
    void *tmp;
    json_object_foreach_safe(rels, tmp, k, v) {
      if (mask) {
        char prefix[80];
        snprintf(prefix, sizeof prefix, "%s.", ln);
        mask_add(mask, mask_len, prefix, k); /* an update: null clears */
      } else if (json_is_null(v)) {
        json_object_del(rels, k); /* a create: null links nothing */
      }
    }
    json_object_set(res, ln, rels);
  }
  if (want_id) json_object_set_new(res, "id", json_integer(want_id));
  *msg = json_pack("{s:O}", ja->body_field, res);
  json_decref(rels);
  json_decref(res);
  json_decref(body);
  return 0;
fail:
  json_decref(rels);
  json_decref(res);
  json_decref(body);
  return -1;
}

int gw_jsonapi_merge(const gw_jsonapi *ja, ProtobufCMessage *in, json_t *msg, gw_fail *f) {
  pbjson_err e = {0};
  if (pbjson_merge(msg, in, PBJSON_CAMEL, &e) == 0) return 0;
  char pointer[300] = "";
  if (!body_pointer(ja, e.path, pointer, sizeof pointer)) pointer[0] = '\0';
  int oom = e.reason && strcmp(e.reason, "out_of_memory") == 0;
  gw_fail_set(f, oom ? 500 : 422, pointer, e.reason, "%s: %s", pointer[0] ? pointer : e.path,
              e.msg);
  return -1;
}

/* ---- the query ---- */

static int bad_param(gw_fail *f, const char *param, const char *reason, const char *what,
                     const char *value) {
  gw_fail_set(f, 400, param, reason, "%s: %s (got \"%.100s\")", param, what, value);
  return -1;
}

/* fields[type]=a,b: which attributes and relationships to show. */
static int parse_fieldset(const gw_jsonapi *ja, const char *param, const char *value,
                          gw_jsonapi_view *v, gw_fail *f) {
  const ProtobufCMessageDescriptor *ld = links_desc(ja);
  v->given = 1;
  v->attrs = v->links = 0;
  for (const char *p = value; *p;) {
    size_t n = strcspn(p, ",");
    int a = member_index(ja->desc, p, n), r = member_index(ld, p, n);
    if (a >= 0 && !is_attribute(ja, &ja->desc->fields[a])) a = -1;
    if (a < 0 && r < 0) {
      gw_fail_set(f, 400, param, "not_allowed_value",
                  "%s: \"%.*s\" is no attribute or relationship of %s", param,
                  (int)(n > 100 ? 100 : n), p, ja->type);
      return -1;
    }
    if (a >= 0) v->attrs |= 1ull << a;
    if (r >= 0) v->links |= 1ull << r;
    p += n;
    if (*p == ',' && !p[1]) {
      gw_fail_set(f, 400, param, "invalid_value_format", "%s: empty name", param);
      return -1;
    }
    if (*p == ',') p++;
  }
  return 0;
}

/* One value of field f (a filter's element type) as JSON; NULL with f filled. */
static json_t *scalar_value(const char *param, const ProtobufCFieldDescriptor *fd, const char *s,
                            size_t n, gw_fail *f) {
  char buf[512];
  if (n == 0 || n >= sizeof buf) {
    bad_param(f, param, "invalid_value_format", n ? "value too long" : "empty value", s);
    return NULL;
  }
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (fd->type == PROTOBUF_C_TYPE_STRING) {
    json_t *j = json_string(buf);
    if (!j) bad_param(f, param, "invalid_value_format", "not UTF-8 text", "...");
    return j;
  }
  if (fd->type == PROTOBUF_C_TYPE_MESSAGE) { /* a Timestamp */
    int64_t secs;
    int32_t nanos;
    if (pbjson_time_parse(buf, &secs, &nanos) == 0) return json_string(buf);
    bad_param(f, param, "invalid_value_format", "not an RFC 3339 time", buf);
    return NULL;
  }
  char *end;
  errno = 0;
  long long v = strtoll(buf, &end, 10);
  /* a bare list of integers is a list of ids, which start at 0 */
  int ids = fd->label == PROTOBUF_C_LABEL_REPEATED && strcmp(fd->name, "values") != 0;
  if (*end || errno == ERANGE || (ids && v < 0)) {
    bad_param(f, param, "invalid_value_format", ids ? "ids are integers from 0" : "not an integer",
              buf);
    return NULL;
  }
  return json_integer(v);
}

/* "a,b,c" -> [a, b, c]. */
static json_t *value_list(const char *param, const ProtobufCFieldDescriptor *fd, const char *value,
                          gw_fail *f) {
  json_t *vals = json_array();
  for (const char *p = value;;) {
    size_t n = strcspn(p, ",");
    json_t *v = scalar_value(param, fd, p, n, f);
    if (!v) goto fail;
    json_array_append_new(vals, v);
    if (json_array_size(vals) > MAX_VALUES) {
      bad_param(f, param, "out_of_range", "at most 1000 values", "...");
      goto fail;
    }
    if (!p[n]) return vals;
    p += n + 1;
  }
fail:
  json_decref(vals);
  return NULL;
}

/* A filter message: exact value, comma list, or range a..b. */
static json_t *filter_value(const char *param, const ProtobufCMessageDescriptor *d,
                            const char *value, gw_fail *f) {
  const ProtobufCFieldDescriptor *vf = field_named(d, "values");
  const char *dots = strstr(value, "..");
  if (!dots) {
    json_t *vals = value_list(param, vf, value, f);
    return vals ? json_pack("{s:o}", "values", vals) : NULL;
  }
  json_t *range = json_object(), *v;
  size_t lo_n = (size_t)(dots - value);
  if (!(lo_n == 6 && strncmp(value, "neginf", 6) == 0)) {
    if (!(v = scalar_value(param, vf, value, lo_n, f))) goto bad;
    json_object_set_new(range, "gte", v);
  }
  if (strcmp(dots + 2, "inf") != 0) {
    if (!(v = scalar_value(param, vf, dots + 2, strlen(dots + 2), f))) goto bad;
    json_object_set_new(range, "lte", v);
  }
  return range;
bad:
  json_decref(range);
  return NULL;
}

/* The name a URL sorts by: SORT_FIELD_CREATED_AT -> "createdAt" (the
 * prefix is the one of the enum's UNSPECIFIED value). */
static const char *sort_name(const ProtobufCEnumDescriptor *ed, unsigned i, char *buf, size_t len) {
  size_t skip = strlen(ed->values[0].name) - strlen("UNSPECIFIED"), o = 0;
  int up = 0;
  for (const char *p = ed->values[i].name + skip; *p && o + 1 < len; p++) {
    if (*p == '_') {
      up = 1;
      continue;
    }
    buf[o++] = up || *p < 'A' || *p > 'Z' ? *p : (char)(*p + 32);
    up = 0;
  }
  buf[o] = '\0';
  return buf;
}

/* sort=-createdAt,id -> [{"field": "SORT_FIELD_CREATED_AT", "descending": true}, ...]. */
static json_t *sort_value(const char *param, const ProtobufCMessageDescriptor *d, const char *value,
                          gw_fail *f) {
  const ProtobufCEnumDescriptor *ed = field_named(d, "field")->descriptor;
  json_t *out = json_array();
  char buf[64];
  for (const char *p = value;;) {
    size_t n = strcspn(p, ",");
    int desc = n && *p == '-';
    const char *name = p + desc, *found = NULL;
    size_t len = n - (size_t)desc;
    for (unsigned i = 1; i < ed->n_values && !found; i++) {
      const char *s = sort_name(ed, i, buf, sizeof buf);
      if (strlen(s) == len && strncmp(s, name, len) == 0) found = ed->values[i].name;
    }
    size_t i;
    json_t *prev;
    int twice = 0;
    json_array_foreach(out, i, prev) {
      twice |= found && strcmp(json_string_value(json_object_get(prev, "field")), found) == 0;
    }
    if (!found || twice) {
      char names[256] = ""; /* the sortable names, for the message only */
      for (unsigned i = 1; i < ed->n_values; i++)
        snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", i > 1 ? ", " : "",
                 sort_name(ed, i, buf, sizeof buf));
      json_decref(out);
      gw_fail_set(f, 400, param, "not_allowed_value",
                  "%s: \"%.*s\" %s (sortable: %s; '-' for descending)", param,
                  (int)(n > 100 ? 100 : n), p, twice ? "is given twice" : "is not sortable", names);
      return NULL;
    }
    json_array_append_new(out, json_pack("{s:s, s:b}", "field", found, "descending", desc));
    if (!p[n]) return out;
    p += n + 1;
  }
}

/* One parameter's value for request field fd, by the field's shape. */
static json_t *param_value(const ProtobufCMessageDescriptor *owner, const gw_query_arg *a,
                           const ProtobufCFieldDescriptor *fd, gw_fail *f) {
  const ProtobufCMessageDescriptor *d = fd->type == PROTOBUF_C_TYPE_MESSAGE ? fd->descriptor : NULL;
  if (d && field_named(d, "values")) return filter_value(a->key, d, a->value, f);
  if (d && fd->label == PROTOBUF_C_LABEL_REPEATED && field_named(d, "descending"))
    return sort_value(a->key, d, a->value, f);
  if (fd->label == PROTOBUF_C_LABEL_REPEATED) return value_list(a->key, fd, a->value, f);
  switch (fd->type) {
  case PROTOBUF_C_TYPE_BOOL:
    if (strcmp(a->value, "true") && strcmp(a->value, "false")) {
      bad_param(f, a->key, "invalid_value_format", "must be true or false", a->value);
      return NULL;
    }
    return json_boolean(strcmp(a->value, "true") == 0);
  case PROTOBUF_C_TYPE_STRING: { /* a cursor */
    json_t *v = a->value[0] ? json_string(a->value) : NULL;
    if (!v)
      bad_param(f, a->key, "invalid_value_format", a->value[0] ? "not a cursor" : "empty cursor",
                a->value[0] ? "..." : "");
    return v;
  }
  default: { /* a page size: from 1 up to the field's declared maximum */
    const api *ap = gw_api();
    const Events__Api__V1__FieldRules *r = ap ? api_field_of(ap, owner, fd).rules : NULL;
    long long max = r && r->has_max ? r->max : MAX_VALUES, n = parse_positive(a->value);
    if (n >= 1 && n <= max) return json_integer(n);
    char what[64];
    snprintf(what, sizeof what, "must be an integer from 1 to %lld", max);
    bad_param(f, a->key, "out_of_range", what, a->value);
    return NULL;
  }
  }
}

void gw_jsonapi_fields(const gw_jsonapi *ja, const gw_req *req, gw_jsonapi_view *view) {
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  char param[80];
  gw_fail ignored;
  snprintf(param, sizeof param, "fields[%s]", ja->type);
  view->given = 0;
  for (size_t i = 0; i < n && i < MAX_ARGS; i++)
    if (strcmp(args[i].key, param) == 0) parse_fieldset(ja, param, args[i].value, view, &ignored);
}

int gw_jsonapi_query(const gw_jsonapi *ja, const gw_req *req, ProtobufCMessage *in,
                     gw_jsonapi_view *view, gw_fail *f) {
  gw_query_arg args[MAX_ARGS];
  size_t n = gw_query(req, args, MAX_ARGS);
  char fields_param[80];
  snprintf(fields_param, sizeof fields_param, "fields[%s]", ja->type);
  memset(view, 0, sizeof *view);
  if (n > MAX_ARGS) {
    gw_fail_set(f, 400, "", "invalid_value_format", "too many query parameters");
    return -1;
  }
  json_t *fields = json_object();
  int rc = -1;
  for (size_t i = 0; i < n; i++) {
    for (size_t k = 0; k < i; k++)
      if (strcmp(args[k].key, args[i].key) == 0) {
        gw_fail_set(f, 400, args[i].key, "invalid_value_format", "%s is given more than once",
                    args[i].key);
        goto free_fields;
      }
    if (strcmp(args[i].key, fields_param) == 0) {
      if (parse_fieldset(ja, fields_param, args[i].value, view, f) < 0) goto free_fields;
      continue;
    }
    const gw_qparam *q = req->route ? req->route->query : NULL;
    while (q && q->param && strcmp(q->param, args[i].key) != 0)
      q++;
    const ProtobufCFieldDescriptor *fd = q && q->param ? field_named(in->descriptor, q->field) : 0;
    if (!fd) {
      gw_fail_set(f, 400, args[i].key, "not_allowed_value", "unknown query parameter %s",
                  args[i].key);
      goto free_fields;
    }
    json_t *v = param_value(in->descriptor, &args[i], fd, f);
    if (!v) goto free_fields;
    json_object_set_new(fields, fd->name, v);
  }
  pbjson_err e = {0};
  if (pbjson_merge(fields, in, 0, &e) < 0) {
    const char *param = param_of(req, e.path);
    gw_fail_set(f, 400, param ? param : "", e.reason, "%s: %s", param ? param : e.path, e.msg);
    goto free_fields;
  }
  rc = 0;
free_fields:
  json_decref(fields);
  return rc;
}

/* ---- resource objects ---- */

json_t *gw_jsonapi_resource(const gw_jsonapi *ja, const gw_req *req, const ProtobufCMessage *msg,
                            const gw_jsonapi_view *view) {
  json_t *all = pbjson_encode(msg, PBJSON_CAMEL);
  json_t *attrs = json_object(), *rels = json_object();
  const ProtobufCMessageDescriptor *d = ja->desc, *ld = links_desc(ja);
  char buf[128];
  for (unsigned i = 0; i < d->n_fields; i++) {
    if (!is_attribute(ja, &d->fields[i]) || (view->given && !(view->attrs >> i & 1))) continue;
    const char *name = camel(&d->fields[i], buf, sizeof buf);
    json_t *v = json_object_get(all, name);
    json_object_set(attrs, name, v ? v : json_null());
  }
  const ProtobufCFieldDescriptor *lf = field_named(d, ja->links_field);
  json_t *linked = lf ? json_object_get(all, camel(lf, buf, sizeof buf)) : NULL;
  for (unsigned i = 0; ld && i < ld->n_fields; i++) {
    const char *name = camel(&ld->fields[i], buf, sizeof buf);
    json_t *id = json_object_get(linked, name);
    if ((view->given && !(view->links >> i & 1)) || !json_is_integer(id)) continue;
    json_object_set_new(rels, name, json_pack("{s:{s:s, s:O}}", "data", "type", name, "id", id));
  }
  json_t *id = json_object_get(all, "id");
  char base[512], self[700];
  gw_base_url(req, base, sizeof base);
  snprintf(self, sizeof self, "%s%s/%lld", base, ja->path, (long long)json_integer_value(id));
  json_t *r =
      json_pack("{s:s, s:O, s:o, s:o, s:{s:s}}", "type", ja->type, "id", id ? id : json_null(),
                "attributes", attrs, "relationships", rels, "links", "self", self);
  const ProtobufCFieldDescriptor *mf = field_named(d, ja->meta_field);
  if (mf && view->meta) {
    const char *name = camel(mf, buf, sizeof buf);
    json_t *m = json_object_get(all, name);
    json_object_set_new(r, "meta",
                        json_pack("{s:o}", name, json_is_array(m) ? json_incref(m) : json_array()));
  }
  json_decref(all);
  return r;
}

json_t *gw_jsonapi_resource_schema(const gw_jsonapi *ja, int create) {
  const ProtobufCMessageDescriptor *d = ja->desc, *ld = links_desc(ja);
  json_t *attrs = json_object(), *rels = json_object();
  char buf[128];
  for (unsigned i = 0; i < d->n_fields; i++)
    if (is_attribute(ja, &d->fields[i]))
      json_object_set_new(attrs, camel(&d->fields[i], buf, sizeof buf),
                          gw_schema_field_of(d, &d->fields[i], PBJSON_CAMEL));
  for (unsigned i = 0; ld && i < ld->n_fields; i++)
    json_object_set_new(rels, camel(&ld->fields[i], buf, sizeof buf),
                        json_pack("{s:s, s:{s:{s:s, s:{s:{s:s}, s:{s:s}}}}}", "type", "object",
                                  "properties", "data", "type", "object", "properties", "type",
                                  "type", "string", "id", "type", "integer"));
  json_t *attributes_schema = json_pack("{s:s, s:o}", "type", "object", "properties", attrs);
  json_t *res = json_pack(
      "{s:s, s:{s:{s:s, s:[s]}, s:{s:s, s:b}, s:o, s:{s:s, s:o}, s:{s:s}, s:{s:s}}}", "type",
      "object", "properties", "type", "type", "string", "enum", ja->type, "id", "type", "integer",
      "readOnly", 1, "attributes", attributes_schema, "relationships", "type", "object",
      "properties", rels, "links", "type", "object", "meta", "type", "object");
  /* A create names its type and the REQUIRED attributes; an update sends
   * what it changes. */
  json_t *req = create ? gw_schema_required(d, PBJSON_CAMEL) : NULL;
  if (json_array_size(req)) json_object_set(attributes_schema, "required", req);
  json_decref(req);
  json_object_set_new(res, "required",
                      create ? json_pack("[s, s]", "type", "attributes")
                             : json_pack("[s]", "type"));
  return res;
}
