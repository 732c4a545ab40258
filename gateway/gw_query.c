/* gw_query.c - query strings into request fields: each value typed by the
 * field it sets (integers, booleans, times, enums by their names), checked
 * against the field's annotated bounds, the parameter named in failures. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

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
