/* rpc_behavior.c - google.api.field_behavior, checked once for every method
 * that creates or replaces a resource, before its handler runs: a REQUIRED
 * field must be set and an OUTPUT_ONLY one must not be, at every level of
 * the request. Which methods those are, the http rule says, as AIP-133/134
 * define them: a POST with a body creates, a PUT replaces; a replacement
 * need not repeat an IMMUTABLE field, it keeps the stored value.
 *
 * Updates with a field mask are their handlers': whether a read-only member
 * sent back unchanged is a change depends on what is stored, and whether a
 * member may be cleared on the dialect.
 *
 * "Set" is proto3 presence as a client means it: a message or wrapper that
 * is there (a StringValue only when not empty), a scalar other than its
 * default, a repeated field with items. Empty values are what generated
 * clients send for fields they never touched, so they are not refused. */
#include "rpc_behavior.h"

#include <stdio.h>
#include <string.h>

#include "google/protobuf/wrappers.pb-c.h"
#include "rpc_int.h"
#include "rpc_validate.h"

/* Requests are bounded to 64 levels before unpacking (rpc_bound.c); the
 * behaviours sit on the resource's few top levels. */
#define MAX_DEPTH 8

enum { KIND_NONE, KIND_CREATE, KIND_REPLACE };

static int method_kind(const rpc_call *c, const api *a) {
  const api_method *m = c->method_desc ? api_method_of(a, c->service, c->method_desc) : NULL;
  if (!m || !m->n_bindings) return KIND_NONE;
  const api_binding *b = &m->bindings[0];
  if (strcmp(b->verb, "POST") == 0 && b->body[0]) return KIND_CREATE;
  if (strcmp(b->verb, "PUT") == 0) return KIND_REPLACE;
  return KIND_NONE;
}

static int is_set(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const char *p = (const char *)m + f->offset;
  if (f->label == PROTOBUF_C_LABEL_REPEATED)
    return *(const size_t *)((const char *)m + f->quantifier_offset) != 0;
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    return *(const uint32_t *)((const char *)m + f->quantifier_offset) == f->id;
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return s && *s;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    const ProtobufCMessage *sub = *(const ProtobufCMessage *const *)p;
    if (sub && sub->descriptor == &google__protobuf__string_value__descriptor) {
      const char *s = ((const Google__Protobuf__StringValue *)sub)->value;
      return s && *s;
    }
    return sub != NULL;
  }
  case PROTOBUF_C_TYPE_BYTES:
    return ((const ProtobufCBinaryData *)p)->len != 0;
  default: { /* a number, bool or enum: set when not all zero bytes */
    static const unsigned char zero[8];
    return memcmp(p, zero, rpc_value_size(f)) != 0;
  }
  }
}

static void walk(rpc_call *c, const api *a, const ProtobufCMessage *m, int kind, const char *prefix,
                 int depth) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  const api_field *fields = api_fields_of(a, d); /* prepared at start-up */
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    unsigned b = fields ? fields[i].behavior : api_field_of(a, d, f).behavior;
    int set = is_set(m, f);
    int read_only = set && b & API_OUTPUT_ONLY;
    int missing = !set && b & API_REQUIRED && !(kind == KIND_REPLACE && b & API_IMMUTABLE);
    /* Into the API's own messages (the well-known types carry no behaviour). */
    int into = set && !read_only && f->type == PROTOBUF_C_TYPE_MESSAGE && depth < MAX_DEPTH &&
               strncmp(((const ProtobufCMessageDescriptor *)f->descriptor)->name,
                       "google.protobuf.", 16) != 0;
    if (!read_only && !missing && !into) continue; /* the path is formatted only when needed */
    char path[256];
    rpc_path_field(path, sizeof path, prefix, f->name);
    if (read_only) rpc_violation(c, path, "not_allowed_value", "%s is read-only", path);
    if (missing) rpc_violation(c, path, "required", "%s is required", path);
    if (!into) continue;
    const char *base = (const char *)m + f->offset;
    if (f->label != PROTOBUF_C_LABEL_REPEATED) {
      walk(c, a, *(const ProtobufCMessage *const *)base, kind, path, depth + 1);
      continue;
    }
    size_t n = *(const size_t *)((const char *)m + f->quantifier_offset);
    const ProtobufCMessage *const *items = *(const ProtobufCMessage *const *const *)base;
    for (size_t k = 0; k < n; k++) {
      char elem[280];
      rpc_path_index(elem, sizeof elem, path, k);
      walk(c, a, items[k], kind, elem, depth + 1);
    }
  }
}

void rpc_behavior(rpc_call *c, const api *a, const ProtobufCMessage *in) {
  int kind = method_kind(c, a);
  if (kind != KIND_NONE) walk(c, a, in, kind, "", 0);
}

void rpc_behavior_create(rpc_call *c, const api *a, const ProtobufCMessage *in) {
  walk(c, a, in, KIND_CREATE, "", 0);
}
