/* gw_util.c - small helpers the dialects share: query strings, headers,
 * bodies, failures, typed conversion of query values, and the REST names,
 * enum names, bounds and page links the annotations imply. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "gw.h"

typedef struct query_iter {
  gw_query_arg *out;
  size_t cap, n;
} query_iter;

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key,
                               const char *value) {
  (void)kind;
  query_iter *it = cls;
  if (it->n < it->cap) it->out[it->n] = (gw_query_arg){key, value ? value : ""};
  it->n++;
  return MHD_YES;
}

size_t gw_query(const gw_req *req, gw_query_arg *out, size_t cap) {
  query_iter it = {out, cap, 0};
  if (!req->conn) {
    for (size_t i = 0; i < req->n_args; i++)
      collect(&it, MHD_GET_ARGUMENT_KIND, req->args[i].key, req->args[i].value);
    return it.n;
  }
  MHD_get_connection_values(req->conn, MHD_GET_ARGUMENT_KIND, collect, &it);
  return it.n;
}

/* The first pair named `key`, ignoring case as libmicrohttpd does. */
static const gw_query_arg *find_pair(const gw_query_arg *v, size_t n, const char *key) {
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(v[i].key, key) == 0) return &v[i];
  return NULL;
}

const char *gw_query_get(const gw_req *req, const char *key) {
  if (req->conn) return MHD_lookup_connection_value(req->conn, MHD_GET_ARGUMENT_KIND, key);
  const gw_query_arg *a = find_pair(req->args, req->n_args, key);
  return a ? a->value : NULL;
}

const char *gw_header(const gw_req *req, const char *name) {
  if (req->conn) return MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, name);
  const gw_query_arg *h = find_pair(req->headers, req->n_headers, name);
  return h ? h->value : NULL;
}

/* The length of the first host of h (behind a chain of proxies the first
 * is the one the client used), when it is one links may carry: RFC 3986
 * host[:port] characters only (no quotes, controls or non-ASCII bytes, which
 * JSON strings and URLs could not hold as they are); 0 otherwise. */
static size_t host_len(const char *h) {
  size_t n = h ? strcspn(h, ", ") : 0;
  if (n == 0 || n > 255) return 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)h[i];
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
          strchr("-._~!$&'()*+;=:[]%", c)))
      return 0;
  }
  return n;
}

void gw_base_url(const gw_req *req, char *buf, size_t len) {
  const char *host = gw_header(req, "X-Forwarded-Host");
  size_t n = host_len(host);
  if (!n) n = host_len(host = gw_header(req, "Host"));
  if (!n) n = strlen(host = "localhost");
  const char *proto = gw_header(req, "X-Forwarded-Proto");
  if (!proto || (strcmp(proto, "https") != 0 && strcmp(proto, "http") != 0)) proto = "http";
  snprintf(buf, len, "%s://%.*s", proto, (int)n, host);
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

json_t *gw_page_url(const gw_req *req, const char *const *drop, const char *set_param,
                    const char *set_value) {
  gw_query_arg args[64];
  size_t n = gw_query(req, args, 64);
  char base[512], *text = NULL, sep = '?';
  size_t len = 0;
  FILE *out = open_memstream(&text, &len);
  if (!out) return json_null();
  gw_base_url(req, base, sizeof base);
  fprintf(out, "%s%s", base, req->path);
  for (size_t i = 0; i < n && i < 64; i++) {
    const char *const *d = drop;
    while (d && *d && strcmp(*d, args[i].key) != 0)
      d++;
    if (d && *d) continue;
    fputc(sep, out);
    url_encode(out, args[i].key);
    fputc('=', out);
    url_encode(out, args[i].value ? args[i].value : "");
    sep = '&';
  }
  if (set_param) {
    fputc(sep, out);
    url_encode(out, set_param);
    fputc('=', out);
    url_encode(out, set_value);
  }
  fclose(out);
  json_t *j = text ? json_string(text) : NULL;
  free(text);
  return j ? j : json_null();
}

json_t *gw_text(const char *s) {
  json_t *j = utf8_json(s ? s : "", s ? strlen(s) : 0);
  return j ? j : json_string("");
}

void gw_fail_set(gw_fail *f, int http, const char *field, const char *reason, const char *fmt,
                 ...) {
  va_list ap;
  f->http = http;
  f->code = GRPC_STATUS_OK;
  snprintf(f->field, sizeof f->field, "%s", field ? field : "");
  snprintf(f->reason, sizeof f->reason, "%s", reason ? reason : "");
  va_start(ap, fmt);
  vsnprintf(f->message, sizeof f->message, fmt, ap);
  va_end(ap);
  /* Client text (a parameter name, a cut value) ends up in JSON bodies. */
  utf8_scrub(f->field);
  utf8_scrub(f->message);
}

void gw_fail_from_pbjson(gw_fail *f, const pbjson_err *e, const char *prefix) {
  char field[256];
  if (prefix && *prefix)
    snprintf(field, sizeof field, "%s%s%s", prefix, e->path[0] ? "." : "", e->path);
  else
    snprintf(field, sizeof field, "%s", e->path);
  gw_fail_set(f, 400, field, e->reason ? e->reason : "invalid_value_format", "%s%s%s", field,
              field[0] ? ": " : "", e->msg);
}

int gw_body_json(const gw_req *req, json_t **out, gw_fail *f) {
  json_error_t je;
  if (req->body_len == 0) {
    gw_fail_set(f, 400, "", "required", "a JSON body is required");
    return -1;
  }
  json_t *j = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &je);
  if (!j) {
    /* Valid JSON all the same: name the number jansson cannot hold, as a
     * mapper refusal would (a JSON pointer where the dialect speaks JSON:API). */
    char path[256], token[64];
    const gw_dialect *d = req->route ? req->route->dialect : NULL;
    unsigned style = d && d->content_type && strstr(d->content_type, "vnd.api+json")
                         ? PBJSON_PATH_POINTER
                         : PBJSON_PATH_DOTTED;
    if (json_error_code(&je) == json_error_numeric_overflow &&
        pbjson_find_unkeepable(req->body, req->body_len, style, path, sizeof path, token,
                               sizeof token) == 0) {
      gw_fail_set(f, 400, path, "out_of_range", "%s%sthe number %s is too large to keep", path,
                  path[0] ? ": " : "", token);
      return -1;
    }
    gw_fail_set(f, 400, "", "invalid_value_format", "malformed JSON at line %d column %d: %s",
                je.line, je.column, je.text);
    return -1;
  }
  if (!json_is_object(j)) {
    json_decref(j);
    gw_fail_set(f, 400, "", "invalid_value_format", "the body must be a JSON object");
    return -1;
  }
  *out = j;
  return 0;
}

int gw_merge(ProtobufCMessage *msg, json_t *fields, unsigned flags, gw_fail *f) {
  pbjson_err e = {0};
  if (pbjson_merge(fields, msg, flags, &e) < 0) {
    gw_fail_from_pbjson(f, &e, NULL);
    return -1;
  }
  return 0;
}

static json_t *parse_int(const char *param, const char *v, long long lo, long long hi, gw_fail *f) {
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (!*v || *end || errno == ERANGE) {
    gw_fail_set(f, 400, param, "invalid_value_format", "%s must be an integer", param);
    return NULL;
  }
  if (x < lo || x > hi) {
    gw_fail_set(f, 400, param, "out_of_range", "%s is out of range", param);
    return NULL;
  }
  return json_integer(x);
}

static json_t *parse_bool(const char *param, const char *v, gw_fail *f) {
  if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0) return json_true();
  if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0) return json_false();
  gw_fail_set(f, 400, param, "invalid_value_format", "%s must be true or false", param);
  return NULL;
}

/* A query value as a JSON string; a value that is not UTF-8 (a decoded %FF)
 * is the client's mistake, named by its parameter. */
static json_t *text_value(const char *param, const char *v, gw_fail *f) {
  json_t *j = json_string(v);
  if (!j) gw_fail_set(f, 400, param, "invalid_value_format", "%s must be UTF-8 text", param);
  return j;
}

/* An unencoded '+' in a query string arrives as a space, so
 * "...T10:00:00 01:00" is the offset +01:00 a client meant. */
static json_t *time_value(const char *param, const char *v, gw_fail *f) {
  const char *t = strchr(v, 'T');
  const char *sp = t ? strchr(t, ' ') : NULL;
  char buf[64];
  /* Longer is no time anyway: left for the mapper to refuse, and never
   * written past buf. */
  if (!sp || strlen(sp) != 6 || sp[3] != ':' || strlen(v) >= sizeof buf)
    return text_value(param, v, f);
  snprintf(buf, sizeof buf, "%s", v);
  buf[sp - v] = '+';
  return text_value(param, buf, f);
}

json_t *gw_query_value(const ProtobufCMessageDescriptor *desc, const char *field, const char *param,
                       const char *value, gw_fail *f) {
  const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(desc, field);
  if (!fd) {
    gw_fail_set(f, 500, param, "", "no field %s", field);
    return NULL;
  }
  switch (fd->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return parse_int(param, value, INT32_MIN, INT32_MAX, f);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return parse_int(param, value, INT64_MIN, INT64_MAX, f);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return parse_int(param, value, 0, UINT32_MAX, f);
  case PROTOBUF_C_TYPE_BOOL:
    return parse_bool(param, value, f);
  case PROTOBUF_C_TYPE_MESSAGE: {
    const char *wk = ((const ProtobufCMessageDescriptor *)fd->descriptor)->name;
    if (strcmp(wk, "google.protobuf.Int64Value") == 0)
      return parse_int(param, value, INT64_MIN, INT64_MAX, f);
    if (strcmp(wk, "google.protobuf.Int32Value") == 0)
      return parse_int(param, value, INT32_MIN, INT32_MAX, f);
    if (strcmp(wk, "google.protobuf.BoolValue") == 0) return parse_bool(param, value, f);
    if (strcmp(wk, "google.protobuf.Timestamp") == 0) return time_value(param, value, f);
    return text_value(param, value, f);
  }
  default:
    return text_value(param, value, f);
  }
}

int gw_query_fields(const gw_req *req, ProtobufCMessage *msg, const gw_qparam *map, unsigned flags,
                    gw_fail *f) {
  size_t n = 0;
  while (map && map[n].param)
    n++;
  gw_query_arg args[64];
  size_t n_args = gw_query(req, args, 64);
  if (n_args > 64) {
    gw_fail_set(f, 400, "", "invalid_value_format", "too many query parameters");
    return -1;
  }
  json_t *fields = json_object();
  int rc = -1;
  for (size_t i = 0; i < n_args; i++) {
    const gw_qparam *q = NULL;
    for (size_t j = 0; j < n && !q; j++)
      if (strcmp(map[j].param, args[i].key) == 0) q = &map[j];
    if (!q) {
      gw_fail_set(f, 400, args[i].key, "not_allowed_value", "unknown query parameter %s",
                  args[i].key);
      goto free_fields;
    }
    if (json_object_get(fields, q->field)) {
      gw_fail_set(f, 400, q->param, "invalid_value_format", "%s is given more than once", q->param);
      goto free_fields;
    }
    json_t *v = gw_query_value(msg->descriptor, q->field, q->param, args[i].value, f);
    if (!v) goto free_fields;
    json_object_set_new(fields, q->field, v);
  }
  pbjson_err e = {0};
  if (pbjson_merge(fields, msg, flags & ~PBJSON_CAMEL, &e) < 0) {
    /* Name the query parameter the user wrote, not the request field. */
    const char *param = e.path;
    for (size_t j = 0; j < n; j++)
      if (strcmp(map[j].field, e.path) == 0) param = map[j].param;
    gw_fail_set(f, 400, param, e.reason ? e.reason : "invalid_value_format", "%s: %s", param,
                e.msg);
    goto free_fields;
  }
  /* The annotated bounds, in the request's field order, once every value
   * parsed (over gRPC the service checks them; a URL may not say 0). */
  for (size_t j = 0; j < n; j++)
    if (gw_query_bounds(req->route ? req->route->api : gw_api(), msg->descriptor, map[j].field,
                        map[j].param, json_object_get(fields, map[j].field), f) < 0)
      goto free_fields;
  rc = 0;
free_fields:
  json_decref(fields);
  return rc;
}

/* ---- REST names and values from the annotations ---- */

static const ProtobufCMessageDescriptor *route_input(const gw_route *rt) {
  const ProtobufCMethodDescriptor *md =
      rt && rt->service && rt->rpc
          ? protobuf_c_service_descriptor_get_method_by_name(rt->service, strrchr(rt->rpc, '/') + 1)
          : NULL;
  return md ? md->input : NULL;
}

const char *gw_rest_field(const gw_req *req, const char *field, char *out, size_t len) {
  const gw_route *rt = req ? req->route : NULL;
  const ProtobufCMessageDescriptor *in = route_input(rt);
  const ProtobufCFieldDescriptor *fd =
      in ? protobuf_c_message_descriptor_get_field_by_name(in, field) : NULL;
  const char *name = field, *body = rt && rt->body_field ? rt->body_field : "";
  size_t bl = strcmp(body, "*") == 0 ? 0 : strlen(body);
  for (size_t i = 0; rt && rt->query && rt->query[i].param && name == field; i++)
    if (strcmp(rt->query[i].field, field) == 0) name = rt->query[i].param;
  const char *r = fd && rt->api ? api_field_of(rt->api, in, fd).rules->rest_name : NULL;
  if (name == field && r && *r && strcmp(r, "-") != 0) name = r;
  if (name == field && bl && strncmp(field, body, bl) == 0 && field[bl] == '.' && field[bl + 1])
    name = field + bl + 1;
  snprintf(out, len, "%s", name);
  return out;
}

int gw_rest_detail(const gw_req *req, const char *field, const char *desc, char *out, size_t len) {
  size_t n = strlen(field);
  if (!n || strncmp(desc, field, n) != 0) {
    snprintf(out, len, "%s", desc);
    return 0;
  }
  char rest[256];
  snprintf(out, len, "%s%s", gw_rest_field(req, field, rest, sizeof rest), desc + n);
  return 1;
}

const ProtobufCEnumValue *gw_enum_named(const ProtobufCEnumDescriptor *ed, const char *s,
                                        const char *sep, char *names, size_t len) {
  const ProtobufCEnumValue *found = NULL;
  char buf[128];
  if (names && len) names[0] = '\0';
  for (unsigned i = 0; i < ed->n_values; i++) {
    const char *name =
        ed->values[i].value ? pbjson_enum_name(ed, ed->values[i].value, buf, sizeof buf) : NULL;
    if (!name) continue;
    if (!found && s && strcmp(s, name) == 0) found = &ed->values[i];
    size_t used = names ? strlen(names) : 0;
    if (names && used < len) snprintf(names + used, len - used, "%s%s", used ? sep : "", name);
  }
  return found;
}

int gw_body_enums(json_t *body, const ProtobufCMessageDescriptor *d, unsigned flags, gw_fail *f) {
  char key_buf[128], names[512];
  for (unsigned i = 0; d && i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *fd = &d->fields[i];
    if (fd->type != PROTOBUF_C_TYPE_ENUM || fd->label == PROTOBUF_C_LABEL_REPEATED) continue;
    const char *key = pbjson_field_name(fd, flags, key_buf, sizeof key_buf);
    json_t *v = key ? json_object_get(body, key) : NULL;
    if (v && json_is_null(v)) json_object_del(body, key);
    if (!v || json_is_null(v) ||
        gw_enum_named(fd->descriptor, json_string_value(v), ", ", names, sizeof names))
      continue;
    gw_fail_set(f, 400, key, json_is_string(v) ? "not_allowed_value" : "invalid_type",
                "%s must be one of %s", key, names);
    return -1;
  }
  return 0;
}

int gw_query_enums(const gw_req *req, const ProtobufCMessageDescriptor *d, gw_fail *f) {
  const gw_qparam *map = req->route ? req->route->query : NULL;
  char names[512];
  for (size_t i = 0; map && map[i].param; i++) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(d, map[i].field);
    const char *v = fd && fd->type == PROTOBUF_C_TYPE_ENUM ? gw_query_get(req, map[i].param) : NULL;
    if (!v || gw_enum_named(fd->descriptor, v, ", ", names, sizeof names)) continue;
    gw_fail_set(f, 400, map[i].param, "not_allowed_value", "%s must be one of %s", map[i].param,
                names);
    return -1;
  }
  return 0;
}

int gw_query_bounds(const api *a, const ProtobufCMessageDescriptor *d, const char *field,
                    const char *param, const json_t *v, gw_fail *f) {
  const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, field);
  if (!a || !fd || !json_is_integer(v)) return 0;
  const Events__Api__V1__FieldRules *r = api_field_of(a, d, fd).rules;
  int has_lo = r->has_min || r->rest_min > 0;
  long long x = json_integer_value(v), lo = r->has_min ? r->min : r->rest_min, hi = r->max;
  if (r->rest_min > lo) lo = r->rest_min;
  if ((!has_lo || x >= lo) && (!r->has_max || x <= hi)) return 0;
  if (has_lo && r->has_max)
    gw_fail_set(f, 400, param, "out_of_range", "%s must be between %lld and %lld", param, lo, hi);
  else if (r->has_max)
    gw_fail_set(f, 400, param, "out_of_range", "%s must be at most %lld", param, hi);
  else if (lo == 0 || lo == 1)
    gw_fail_set(f, 400, param, "out_of_range", "%s must %s", param,
                lo ? "be a positive integer" : "not be negative");
  else
    gw_fail_set(f, 400, param, "out_of_range", "%s must be at least %lld", param, lo);
  return -1;
}

int gw_merge_body(const gw_req *req, ProtobufCMessage *in, json_t *body, gw_fail *f) {
  const gw_route *rt = req->route;
  unsigned flags = rt->dialect->json_flags;
  if (strcmp(rt->body_field, "*") == 0) return gw_merge(in, body, flags, f);
  /* the body field is named as the proto spells it */
  json_t *wrapped = json_pack("{s:O}", rt->body_field, body);
  int rc = wrapped ? gw_merge(in, wrapped, flags & ~PBJSON_CAMEL, f) : -1;
  if (!wrapped) gw_fail_set(f, 500, "", "", "out of memory");
  json_decref(wrapped);
  return rc;
}

json_t *gw_patch_mask(const api *a, const ProtobufCMessageDescriptor *d, json_t *body, gw_fail *f) {
  char paths[512] = "", allowed[512] = "";
  unsigned fixed = API_OUTPUT_ONLY | API_IMMUTABLE;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (!(api_field_of(a, d, &d->fields[i]).behavior & fixed))
      snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
               allowed[0] ? ", " : "", d->fields[i].name);
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!fd || api_field_of(a, d, fd).behavior & fixed) {
      gw_fail_set(f, 400, key, "not_allowed_value", "%s cannot be updated; updatable fields: %s",
                  key, allowed);
      return NULL;
    }
    /* fits: every field at most once (the parser refuses duplicates) */
    snprintf(paths + strlen(paths), sizeof paths - strlen(paths), "%s%s", paths[0] ? "," : "",
             fd->name);
  }
  return json_pack("{s:s}", "update_mask", paths);
}
