/* rpc_validate.c - the limits of request fields that the protos declare
 * ((events.api.v1.field) rules), checked here for every method before its
 * handler runs, so that gRPC and REST callers meet one rule per field,
 * stated once. Handlers keep what depends on data or on the dialect:
 * parents, uniqueness, which paths a mask may name, whether a field is
 * required on an update.
 *
 * Lengths count Unicode code points, as a user counts characters. */
#include "rpc_validate.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "google/protobuf/wrappers.pb-c.h"
#include "ids.h"
#include "pbjson.h"
#include "utf8.h"

/* Requests are bounded to 64 levels before they are unpacked (rpc_bound.c);
 * rules sit on the few top levels, and Struct/Value members carry none. */
#define MAX_DEPTH 8

typedef Events__Api__V1__FieldRules rules;

static size_t code_points(const char *s) {
  size_t n = 0, len = strlen(s);
  for (size_t i = 0; i < len; n++) {
    size_t k = utf8_seq((const unsigned char *)s + i, len - i);
    i += k ? k : 1; /* invalid bytes were refused by rpc_bound */
  }
  return n;
}

static int is_uuidv7(const char *s) {
  return ids_is_uuid(s) && s[14] == '7' && strspn(s, "0123456789abcdef-") == 36;
}

static void check_format(rpc_call *c, const char *path, const char *s, Events__Api__V1__Format f) {
  switch (f) {
  case EVENTS__API__V1__FORMAT__FORMAT_HEX26:
    if (!ids_is_hex(s, 26))
      rpc_violation(c, path, "invalid_value_format", "%s must be 26 lowercase hex characters",
                    path);
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_HEX32:
    if (!ids_is_hex(s, 32))
      rpc_violation(c, path, "invalid_value_format", "%s must be 32 lowercase hex characters",
                    path);
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_UUID:
    if (!ids_is_uuid(s)) rpc_violation(c, path, "invalid_value_format", "%s must be a UUID", path);
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_UUIDV7:
    if (!is_uuidv7(s))
      rpc_violation(c, path, "invalid_value_format", "%s must be a version-7 UUID", path);
    break;
  case EVENTS__API__V1__FORMAT__FORMAT_UUID_ANY_FORM:
    if (!ids_is_uuid(s) && !(strlen(s) == 32 && strspn(s, "0123456789abcdefABCDEF") == 32))
      rpc_violation(c, path, "invalid_value_format",
                    "%s must be a UUID (32 hex digits, with or without dashes)", path);
    break;
  default:
    break;
  }
}

/* A string that is set (proto3: not empty); absent values are the
 * handlers' to require. */
static void check_string(rpc_call *c, const char *path, const char *s, const rules *r) {
  if (!s || !*s) return;
  if (r->max_chars && code_points(s) > r->max_chars) {
    rpc_violation(c, path, "invalid_value_format", "%s must be at most %u characters", path,
                  r->max_chars);
    return;
  }
  check_format(c, path, s, r->format);
}

static void check_number(rpc_call *c, const char *path, int64_t v, const rules *r) {
  if ((!r->has_min || v >= r->min) && (!r->has_max || v <= r->max)) return;
  if (r->has_min && r->has_max)
    rpc_violation(c, path, "out_of_range", "%s must be between %" PRId64 " and %" PRId64, path,
                  r->min, r->max);
  else if (r->has_min)
    rpc_violation(c, path, "out_of_range", "%s must be at least %" PRId64, path, r->min);
  else
    rpc_violation(c, path, "out_of_range", "%s must be at most %" PRId64, path, r->max);
}

static void walk(rpc_call *c, const api *a, const ProtobufCMessage *m, const char *prefix,
                 int depth);

/* Free-form numbers (Value, Struct, ListValue) must be finite: JSON has no
 * NaN or infinity, and a stored "NaN" would come back a string. */
static void check_finite(rpc_call *c, const char *path, const ProtobufCMessage *m) {
  char rel[200];
  if (!pbjson_find_nonfinite(m, rel, sizeof rel)) return;
  rpc_violation(c, path, "out_of_range", "%s%s: JSON numbers are finite (no NaN or infinity)", path,
                rel);
}

/* One value of field f (element i of a repeated one) at p. */
static void check_value(rpc_call *c, const api *a, const ProtobufCFieldDescriptor *f, const void *p,
                        const char *path, const rules *r, int depth) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
    check_string(c, path, *(char *const *)p, r);
    break;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    check_number(c, path, *(const int32_t *)p, r);
    break;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    check_number(c, path, *(const int64_t *)p, r);
    break;
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
    if (!sub) break;
    const ProtobufCMessageDescriptor *d = sub->descriptor;
    /* Wrappers carry their field's rules. */
    if (d == &google__protobuf__string_value__descriptor)
      check_string(c, path, ((const Google__Protobuf__StringValue *)sub)->value, r);
    else if (d == &google__protobuf__int64_value__descriptor)
      check_number(c, path, ((const Google__Protobuf__Int64Value *)sub)->value, r);
    else if (d == &google__protobuf__int32_value__descriptor)
      check_number(c, path, ((const Google__Protobuf__Int32Value *)sub)->value, r);
    else if (strncmp(d->name, "google.protobuf.", 16) != 0)
      walk(c, a, sub, path, depth + 1);
    else
      check_finite(c, path, sub);
    break;
  }
  default:
    break;
  }
}

/* Appends n bytes of s at *o, as far as len allows (one byte kept for NUL). */
static void path_put(char *out, size_t len, size_t *o, const char *s, size_t n) {
  if (*o + n >= len) n = *o + 1 < len ? len - 1 - *o : 0;
  memcpy(out + *o, s, n);
  *o += n;
}

void rpc_path_field(char *out, size_t len, const char *prefix, const char *name) {
  size_t o = 0;
  path_put(out, len, &o, prefix, strlen(prefix));
  if (*prefix) path_put(out, len, &o, ".", 1);
  path_put(out, len, &o, name, strlen(name));
  out[o] = '\0';
}

void rpc_path_index(char *out, size_t len, const char *path, size_t k) {
  char num[24], *p = num + sizeof num;
  *--p = ']';
  do
    *--p = (char)('0' + k % 10);
  while (k /= 10);
  *--p = '[';
  size_t o = 0;
  path_put(out, len, &o, path, strlen(path));
  path_put(out, len, &o, p, (size_t)(num + sizeof num - p));
  out[o] = '\0';
}

size_t rpc_value_size(const ProtobufCFieldDescriptor *f) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
  case PROTOBUF_C_TYPE_MESSAGE:
  case PROTOBUF_C_TYPE_BYTES:
    return f->type == PROTOBUF_C_TYPE_BYTES ? sizeof(ProtobufCBinaryData) : sizeof(void *);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 8;
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  default:
    return 4;
  }
}

/* Whether field f with rules r has anything to check: most fields have no
 * rule, and their path is then never formatted. */
static int has_checks(const ProtobufCFieldDescriptor *f, const rules *r) {
  if (f->label == PROTOBUF_C_LABEL_REPEATED && r->max_items) return 1;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING:
    return r->max_chars || r->format;
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return r->has_min || r->has_max;
  case PROTOBUF_C_TYPE_MESSAGE:
    return 1; /* a wrapper with rules, a message to walk, or free-form numbers */
  default:
    return 0;
  }
}

static void walk(rpc_call *c, const api *a, const ProtobufCMessage *m, const char *prefix,
                 int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  if (depth > MAX_DEPTH) return;
  /* Prepared at start-up (api_prepare); the look-up by name is for
   * messages that were not. */
  const api_field *fields = api_fields_of(a, d);
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const rules *r = fields ? fields[i].rules : api_field_of(a, d, f).rules;
    if (!has_checks(f, r)) continue;
    const char *base = (const char *)m + f->offset;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
      /* A oneof member that is not the case set holds another member's bytes. */
      if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF &&
          *(const uint32_t *)((const char *)m + f->quantifier_offset) != f->id)
        continue;
      /* An unset submessage has nothing to check and needs no path. */
      if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(const void *const *)base) continue;
    }
    char path[256];
    rpc_path_field(path, sizeof path, prefix, f->name);
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
      check_value(c, a, f, base, path, r, depth);
      continue;
    }
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
    if (r->max_items && n > r->max_items) {
      rpc_violation(c, path, "out_of_range", "%s holds at most %u items", path, r->max_items);
      continue;
    }
    /* A bulk create's items are requests of their own: its driver checks
     * each as the single create is checked (rpc_batch.c). */
    if (r->batch_items) continue;
    const char *items = *(const char *const *)base;
    for (size_t k = 0; k < n; k++) {
      char elem[280];
      rpc_path_index(elem, sizeof elem, path, k);
      check_value(c, a, f, items + k * rpc_value_size(f), elem, r, depth);
    }
  }
}

void rpc_validate(rpc_call *c, const api *a, const ProtobufCMessage *in) {
  walk(c, a, in, "", 0);
}
