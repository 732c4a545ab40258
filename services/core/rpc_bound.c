/* rpc_bound.c - the pre-unpack bound of inbound requests (see rpc_bound.h).
 *
 * One pass over the wire bytes, recursing into message fields only, with the
 * depth counted the way pbjson encodes: a plain message, a Struct, a
 * ListValue and a repeated field's array are one JSON level each; Value, a
 * Struct entry, wrappers, Timestamp and FieldMask are none (they are the
 * JSON value itself). Every 3 message levels add at least one JSON level, so
 * the JSON limit also bounds this walk's recursion; RPC_BOUND_MAX_NESTING is
 * a second guard for schemas where that would not hold. */
#include "rpc_bound.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pbjson.h"
#include "utf8.h"

#define RPC_BOUND_MAX_NESTING (4 * PBJSON_MAX_DEPTH)

#define R_FORMAT "invalid_value_format"
#define R_RANGE "out_of_range"

enum kind {
  K_MESSAGE, /* a JSON object of its fields */
  K_STRUCT,  /* a JSON object of its entries */
  K_ENTRY,   /* Struct.FieldsEntry: a member of that object */
  K_VALUE,   /* whatever its kind holds */
  K_LIST,    /* a JSON array */
  K_SCALAR,  /* wrappers, Timestamp, FieldMask: one JSON scalar */
};

typedef struct walk {
  size_t elements;
  size_t plen;
  char path[sizeof(((rpc_bound_err *)0)->field)];
  rpc_bound_err *err;
} walk;

static enum kind kind_of(const ProtobufCMessageDescriptor *d) {
  static const char *const scalars[] = {"DoubleValue", "FloatValue",  "Int64Value", "UInt64Value",
                                        "Int32Value",  "UInt32Value", "BoolValue",  "StringValue",
                                        "BytesValue",  "Timestamp",   "FieldMask"};
  const char *n = d->name;
  if (!n || strncmp(n, "google.protobuf.", 16) != 0) return K_MESSAGE;
  n += 16;
  if (!strcmp(n, "Struct")) return K_STRUCT;
  if (!strcmp(n, "Struct.FieldsEntry")) return K_ENTRY;
  if (!strcmp(n, "Value")) return K_VALUE;
  if (!strcmp(n, "ListValue")) return K_LIST;
  for (size_t i = 0; i < sizeof scalars / sizeof *scalars; i++)
    if (!strcmp(n, scalars[i])) return K_SCALAR;
  return K_MESSAGE;
}

/* Records the refusal at the current path; always returns -1. */
__attribute__((format(printf, 3, 4))) static int fail(walk *w, const char *reason, const char *fmt,
                                                      ...) {
  va_list ap;
  w->err->reason = reason;
  memcpy(w->err->field, w->path, sizeof w->err->field);
  va_start(ap, fmt);
  vsnprintf(w->err->msg, sizeof w->err->msg, fmt, ap);
  va_end(ap);
  return -1;
}

static int malformed(walk *w) {
  return fail(w, R_FORMAT, "%s%smalformed protobuf data", w->path, w->plen ? ": " : "");
}

/* ---- the path of the field being read ---- */

/* Appends bytes, each invalid UTF-8 sequence or control byte as '?', and
 * only whole sequences: the path travels in a protobuf string and in logs. */
static void path_append(walk *w, const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t room = sizeof w->path - 1 - w->plen;
  while (n) {
    size_t k = utf8_seq(p, n);
    int bad = k == 0 || *p < 0x20 || *p == 0x7f;
    size_t take = bad ? 1 : k;
    if ((bad ? 1 : k) > room) break;
    if (bad)
      w->path[w->plen] = '?';
    else
      memcpy(w->path + w->plen, p, k);
    w->plen += bad ? 1 : k;
    room -= bad ? 1 : k;
    p += take;
    n -= take;
  }
  w->path[w->plen] = '\0';
}

static size_t path_push_name(walk *w, const char *name, size_t n) {
  size_t saved = w->plen;
  if (w->plen) path_append(w, ".", 1);
  path_append(w, name, n);
  return saved;
}

static size_t path_push_index(walk *w, size_t i) {
  size_t saved = w->plen;
  char b[32];
  int n = snprintf(b, sizeof b, "[%zu]", i);
  path_append(w, b, n > 0 ? (size_t)n : 0);
  return saved;
}

static void path_pop(walk *w, size_t saved) {
  w->plen = saved;
  w->path[saved] = '\0';
}

/* ---- wire format ---- */

static int read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v) {
  uint64_t x = 0;
  for (unsigned i = 0; i < 10 && *p < end; i++) {
    uint8_t b = *(*p)++;
    x |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* The wire type a field's values use when not packed. */
static unsigned wire_type_of(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_BOOL:
  case PROTOBUF_C_TYPE_ENUM:
    return 0;
  case PROTOBUF_C_TYPE_FIXED64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_DOUBLE:
    return 1;
  case PROTOBUF_C_TYPE_FIXED32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_FLOAT:
    return 5;
  default:
    return 2;
  }
}

/* The element count of a packed field's payload, or -1 when it does not
 * split into whole values. */
static long packed_count(unsigned wt, const uint8_t *p, size_t len) {
  if (wt == 1) return len % 8 ? -1 : (long)(len / 8);
  if (wt == 5) return len % 4 ? -1 : (long)(len / 4);
  const uint8_t *end = p + len;
  long n = 0;
  while (p < end) {
    uint64_t v;
    if (read_varint(&p, end, &v) < 0) return -1;
    n++;
  }
  return n;
}

static int check_string(walk *w, const uint8_t *s, size_t n) {
  for (size_t i = 0; i < n;) {
    if (s[i] == 0) return fail(w, R_FORMAT, "%s contains a NUL character", w->path);
    size_t k = utf8_seq(s + i, n - i);
    if (!k) return fail(w, R_FORMAT, "%s is not valid UTF-8", w->path);
    i += k;
  }
  return 0;
}

/* The key of a Struct entry (its last field 1), for the path of its value;
 * malformed entries are left to the walk that reports them. */
static void entry_key(const uint8_t *p, size_t len, const uint8_t **key, size_t *klen) {
  const uint8_t *end = p + len;
  *key = NULL;
  *klen = 0;
  while (p < end) {
    uint64_t tag, v;
    if (read_varint(&p, end, &tag) < 0) return;
    switch (tag & 7) {
    case 0:
      if (read_varint(&p, end, &v) < 0) return;
      break;
    case 1:
    case 5: {
      size_t sz = (tag & 7) == 1 ? 8 : 4;
      if ((size_t)(end - p) < sz) return;
      p += sz;
      break;
    }
    case 2:
      if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p)) return;
      if (tag >> 3 == 1) {
        *key = p;
        *klen = (size_t)v;
      }
      p += v;
      break;
    default:
      return;
    }
  }
}

static int walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                        unsigned depth, unsigned nesting);

/* One length-delimited occurrence of a known field: a message, a string,
 * bytes, or a packed run. `level` is the JSON depth of the containers open
 * around the field's value. */
static int walk_delimited(walk *w, const ProtobufCFieldDescriptor *f, enum kind parent,
                          const uint8_t *p, size_t len, unsigned level, unsigned nesting) {
  unsigned wt = wire_type_of(f->type);
  if (wt != 2) {
    long n = packed_count(wt, p, len);
    if (n < 0) return malformed(w);
    /* the first element was counted with the field */
    if (n > 0) w->elements += (size_t)n - 1;
    if (w->elements > RPC_BOUND_MAX_ELEMENTS)
      return fail(w, R_RANGE, "more than %u elements", RPC_BOUND_MAX_ELEMENTS);
    return 0;
  }
  if (f->type == PROTOBUF_C_TYPE_STRING) return check_string(w, p, len);
  if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
  size_t saved = w->plen;
  if (parent == K_STRUCT) {
    const uint8_t *key;
    size_t klen;
    entry_key(p, len, &key, &klen);
    path_push_name(w, (const char *)key, klen);
  }
  int rc = walk_message(w, f->descriptor, p, len, level, nesting + 1);
  path_pop(w, saved);
  return rc;
}

static int walk_message(walk *w, const ProtobufCMessageDescriptor *d, const uint8_t *p, size_t len,
                        unsigned depth, unsigned nesting) {
  enum kind kind = kind_of(d);
  unsigned level = depth;
  if (kind == K_MESSAGE || kind == K_STRUCT || kind == K_LIST) level++;
  if (level > PBJSON_MAX_DEPTH)
    return fail(w, R_FORMAT, "%s%snested deeper than %d levels", w->path, w->plen ? ": " : "",
                PBJSON_MAX_DEPTH);
  if (nesting > RPC_BOUND_MAX_NESTING)
    return fail(w, R_FORMAT, "%s%smessages nested deeper than %d levels", w->path,
                w->plen ? ": " : "", RPC_BOUND_MAX_NESTING);

  /* Occurrences so far of each repeated field, for the [i] of the path. */
  size_t small[32], *seen = small;
  if (d->n_fields > sizeof small / sizeof *small) {
    seen = calloc(d->n_fields, sizeof *seen);
    if (!seen) return fail(w, R_RANGE, "out of memory");
  } else {
    memset(small, 0, sizeof small);
  }
  const uint8_t *end = p + len;
  int rc = 0;
  while (rc == 0 && p < end) {
    uint64_t tag, v = 0;
    if (read_varint(&p, end, &tag) < 0 || tag >> 3 == 0 || tag > UINT32_MAX) {
      rc = malformed(w);
      break;
    }
    unsigned wt = (unsigned)(tag & 7);
    const uint8_t *value = p;
    switch (wt) {
    case 0:
      if (read_varint(&p, end, &v) < 0) rc = malformed(w);
      break;
    case 1:
    case 5: {
      size_t sz = wt == 1 ? 8 : 4;
      if ((size_t)(end - p) < sz)
        rc = malformed(w);
      else
        p += sz;
      break;
    }
    case 2:
      if (read_varint(&p, end, &v) < 0 || v > (uint64_t)(end - p)) {
        rc = malformed(w);
        break;
      }
      value = p;
      p += v;
      break;
    default: /* groups (3, 4) are not proto3, and 6, 7 do not exist */
      rc = malformed(w);
      break;
    }
    if (rc) break;
    if (++w->elements > RPC_BOUND_MAX_ELEMENTS) {
      rc = fail(w, R_RANGE, "more than %u elements", RPC_BOUND_MAX_ELEMENTS);
      break;
    }
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field(d, (unsigned)(tag >> 3));
    if (!f) continue; /* unknown: kept as opaque bytes, never parsed */

    int repeated = f->label == PROTOBUF_C_LABEL_REPEATED;
    unsigned want = wire_type_of(f->type);
    size_t saved = w->plen;
    /* Member names appear only in plain messages; the well-known types are
     * the JSON value itself, and a list's elements are its indexes. */
    if (kind == K_MESSAGE) path_push_name(w, f->name, strlen(f->name));
    if (repeated && kind != K_STRUCT && kind != K_SCALAR) {
      size_t i = (size_t)(f - d->fields);
      path_push_index(w, seen[i]++);
    }
    if (wt != want && !(wt == 2 && repeated)) {
      rc = fail(w, R_FORMAT, "%s has the wrong wire type", w->path);
    } else {
      /* A plain message's repeated field is an array of its own. */
      unsigned inner = level + (kind == K_MESSAGE && repeated);
      if (inner > PBJSON_MAX_DEPTH)
        rc = fail(w, R_FORMAT, "%s: nested deeper than %d levels", w->path, PBJSON_MAX_DEPTH);
      else if (wt == 2)
        rc = walk_delimited(w, f, kind, value, (size_t)v, inner, nesting);
    }
    path_pop(w, saved);
  }
  if (seen != small) free(seen);
  return rc;
}

int rpc_bound_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    rpc_bound_err *err) {
  walk w = {.err = err};
  memset(err, 0, sizeof *err);
  w.path[0] = '\0';
  if (len && !data) return malformed(&w);
  return walk_message(&w, desc, data ? data : (const uint8_t *)"", len, 0, 0);
}
