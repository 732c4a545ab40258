/* pbjson.c - protobuf-c message <-> jansson JSON, driven only by descriptors.
 *
 * Decoding builds every part of a message with malloc, as protobuf-c's default
 * allocator does, so protobuf_c_message_free_unpacked(msg, NULL) frees it.
 * New values are built aside and installed only once complete, so a failed
 * member leaves the message valid (freeable) with that member untouched.
 * Well-known types are recognised by full name and shape, never by symbol. */
#include "pbjson.h"

#include <errno.h>
#include <float.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

#define MEMBER(msg, off) ((void *)((char *)(msg) + (off)))
#define CMEMBER(msg, off) ((const void *)((const char *)(msg) + (off)))

enum { PB_OK = 0, PB_FAIL = -1 };

/* Seconds of 0001-01-01T00:00:00Z and 9999-12-31T23:59:59Z: the range of
 * google.protobuf.Timestamp, and all that four-digit years can show. */
#define TS_MIN_SECONDS INT64_C(-62135596800)
#define TS_MAX_SECONDS INT64_C(253402300799)

/* ---- well-known types ---- */

typedef enum wkt {
  WKT_NONE,
  WKT_WRAPPER,
  WKT_TIMESTAMP,
  WKT_STRUCT,
  WKT_VALUE,
  WKT_LIST,
  WKT_MASK,
} wkt;

static const ProtobufCFieldDescriptor *field_by_id(const ProtobufCMessageDescriptor *d,
                                                   unsigned id) {
  return protobuf_c_message_descriptor_get_field(d, id);
}

static int has_field(const ProtobufCMessageDescriptor *d, unsigned id, ProtobufCType type,
                     int repeated) {
  const ProtobufCFieldDescriptor *f = field_by_id(d, id);
  return f && f->type == type && (f->label == PROTOBUF_C_LABEL_REPEATED) == (repeated != 0);
}

/* The shape checks keep a look-alike type (same name, other fields) on the
 * generic path instead of being read at the wrong offsets. */
static wkt wkt_of(const ProtobufCMessageDescriptor *d) {
  static const char *const wrappers[] = {"DoubleValue", "FloatValue",  "Int64Value",
                                         "UInt64Value", "Int32Value",  "UInt32Value",
                                         "BoolValue",   "StringValue", "BytesValue"};
  const char *n = d->name;
  size_t i;

  if (!n || strncmp(n, "google.protobuf.", 16) != 0) return WKT_NONE;
  n += 16;
  if (!strcmp(n, "Timestamp"))
    return has_field(d, 1, PROTOBUF_C_TYPE_INT64, 0) && has_field(d, 2, PROTOBUF_C_TYPE_INT32, 0)
               ? WKT_TIMESTAMP
               : WKT_NONE;
  if (!strcmp(n, "Struct"))
    return has_field(d, 1, PROTOBUF_C_TYPE_MESSAGE, 1) ? WKT_STRUCT : WKT_NONE;
  if (!strcmp(n, "ListValue"))
    return has_field(d, 1, PROTOBUF_C_TYPE_MESSAGE, 1) ? WKT_LIST : WKT_NONE;
  if (!strcmp(n, "FieldMask"))
    return has_field(d, 1, PROTOBUF_C_TYPE_STRING, 1) ? WKT_MASK : WKT_NONE;
  if (!strcmp(n, "Value")) {
    const ProtobufCFieldDescriptor *k = field_by_id(d, 1);
    return d->n_fields == 6 && k && (k->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) ? WKT_VALUE : WKT_NONE;
  }
  for (i = 0; i < sizeof wrappers / sizeof wrappers[0]; i++)
    if (!strcmp(n, wrappers[i]))
      return d->n_fields == 1 && d->fields[0].id == 1 &&
                     d->fields[0].label != PROTOBUF_C_LABEL_REPEATED
                 ? WKT_WRAPPER
                 : WKT_NONE;
  return WKT_NONE;
}

static int is_null_value_enum(const ProtobufCFieldDescriptor *f) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  return f->type == PROTOBUF_C_TYPE_ENUM && ed && ed->name &&
         !strcmp(ed->name, "google.protobuf.NullValue");
}

/* ---- field storage ---- */

static size_t elem_size(ProtobufCType t) {
  switch (t) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return 4;
  case PROTOBUF_C_TYPE_ENUM:
    return sizeof(int);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    return 8;
  case PROTOBUF_C_TYPE_FLOAT:
    return sizeof(float);
  case PROTOBUF_C_TYPE_DOUBLE:
    return sizeof(double);
  case PROTOBUF_C_TYPE_BOOL:
    return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_STRING:
    return sizeof(char *);
  case PROTOBUF_C_TYPE_BYTES:
    return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_MESSAGE:
    return sizeof(ProtobufCMessage *);
  }
  return 8;
}

/* Big enough for one value of any field type; the type decides the member. */
typedef union slot {
  int32_t i32;
  uint32_t u32;
  int64_t i64;
  uint64_t u64;
  float f;
  double d;
  int e;
  protobuf_c_boolean b;
  char *s;
  ProtobufCBinaryData bd;
  ProtobufCMessage *m;
} slot;

static uint32_t oneof_case(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  uint32_t c;
  memcpy(&c, CMEMBER(m, f->quantifier_offset), sizeof c);
  return c;
}

static void set_oneof_case(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, uint32_t c) {
  memcpy(MEMBER(m, f->quantifier_offset), &c, sizeof c);
}

/* proto2 optional scalars (and bytes) carry a has_ flag; strings and
 * messages use NULL instead. */
static int uses_has_flag(const ProtobufCFieldDescriptor *f) {
  return f->label == PROTOBUF_C_LABEL_OPTIONAL && !(f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
         f->type != PROTOBUF_C_TYPE_STRING && f->type != PROTOBUF_C_TYPE_MESSAGE;
}

/* Frees what one stored value owns, following free_unpacked's rules: a
 * string or bytes equal to the field's default (protobuf_c_empty_string for
 * proto3) is static and must stay. */
static void free_value(const ProtobufCFieldDescriptor *f, void *p) {
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    char *s;
    memcpy(&s, p, sizeof s);
    if (s && s != f->default_value && s != protobuf_c_empty_string) free(s);
    break;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    ProtobufCBinaryData bd;
    const ProtobufCBinaryData *def = f->default_value;
    memcpy(&bd, p, sizeof bd);
    if (bd.data && (!def || def->data != bd.data)) free(bd.data);
    break;
  }
  case PROTOBUF_C_TYPE_MESSAGE: {
    ProtobufCMessage *m;
    memcpy(&m, p, sizeof m);
    if (m && m != f->default_value) protobuf_c_message_free_unpacked(m, NULL);
    break;
  }
  default:
    break;
  }
}

static void free_elems(const ProtobufCFieldDescriptor *f, void *arr, size_t n) {
  size_t i, sz = elem_size(f->type);
  for (i = 0; arr && i < n; i++)
    free_value(f, (char *)arr + i * sz);
  free(arr);
}

/* Frees a field's contents and puts back its initial value. A oneof member
 * is cleared only when it is the selected one. */
static void clear_field(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  void *p = MEMBER(m, f->offset);

  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    if (oneof_case(m, f) != f->id) return;
    free_value(f, p);
    memset(p, 0, elem_size(f->type));
    set_oneof_case(m, f, 0);
    return;
  }
  if (f->label == PROTOBUF_C_LABEL_REPEATED) {
    void *arr;
    size_t n;
    memcpy(&arr, p, sizeof arr);
    memcpy(&n, MEMBER(m, f->quantifier_offset), sizeof n);
    free_elems(f, arr, n);
    memset(p, 0, sizeof arr);
    memset(MEMBER(m, f->quantifier_offset), 0, sizeof n);
    return;
  }
  free_value(f, p);
  if (f->type == PROTOBUF_C_TYPE_STRING) {
    const char *def = f->default_value;
    memcpy(p, &def, sizeof def);
  } else if (f->default_value && f->type != PROTOBUF_C_TYPE_MESSAGE) {
    memcpy(p, f->default_value, elem_size(f->type));
  } else {
    memset(p, 0, elem_size(f->type));
  }
  if (uses_has_flag(f)) memset(MEMBER(m, f->quantifier_offset), 0, sizeof(protobuf_c_boolean));
}

/* Installs a complete value (ownership moves into the message), releasing
 * whatever the field, or the selected member of its oneof, held before. */
static void set_single(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, const slot *v) {
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
    uint32_t cur = oneof_case(m, f);
    const ProtobufCFieldDescriptor *old = cur ? field_by_id(m->descriptor, cur) : NULL;
    if (old) clear_field(m, old);
    memcpy(MEMBER(m, f->offset), v, elem_size(f->type));
    set_oneof_case(m, f, f->id);
    return;
  }
  clear_field(m, f);
  memcpy(MEMBER(m, f->offset), v, elem_size(f->type));
  if (uses_has_flag(f)) {
    protobuf_c_boolean yes = 1;
    memcpy(MEMBER(m, f->quantifier_offset), &yes, sizeof yes);
  }
}

static void set_repeated(ProtobufCMessage *m, const ProtobufCFieldDescriptor *f, void *arr,
                         size_t n) {
  clear_field(m, f);
  memcpy(MEMBER(m, f->offset), &arr, sizeof arr);
  memcpy(MEMBER(m, f->quantifier_offset), &n, sizeof n);
}

static ProtobufCMessage *new_message(const ProtobufCMessageDescriptor *d) {
  ProtobufCMessage *m = malloc(d->sizeof_message);
  if (!m) return NULL;
  if (d->message_init) {
    d->message_init(m);
  } else {
    memset(m, 0, d->sizeof_message);
    m->descriptor = d;
  }
  return m;
}

/* ---- names ---- */

/* protoc's json_name rule: drop each '_' and upper-case the letter after it. */
static int to_camel(const char *in, size_t n, char *out, size_t len) {
  size_t i, o = 0;
  int up = 0;
  for (i = 0; i < n; i++) {
    char ch = in[i];
    if (ch == '_') {
      up = 1;
      continue;
    }
    if (o + 1 >= len) return PB_FAIL;
    out[o++] = up && ch >= 'a' && ch <= 'z' ? (char)(ch - 'a' + 'A') : ch;
    up = 0;
  }
  if (o >= len) return PB_FAIL;
  out[o] = '\0';
  return PB_OK;
}

const char *pbjson_field_name(const ProtobufCFieldDescriptor *f, unsigned flags, char *buf,
                              size_t len) {
  if (!(flags & PBJSON_CAMEL)) return f->name;
  if (!buf || to_camel(f->name, strlen(f->name), buf, len) != PB_OK) return NULL;
  return buf;
}

/* Compares a proto field name's lowerCamelCase form with a JSON key without
 * building it. */
static int camel_equals(const char *name, const char *key, size_t klen) {
  size_t k = 0;
  int up = 0;
  for (; *name; name++) {
    char ch = *name;
    if (ch == '_') {
      up = 1;
      continue;
    }
    if (up && ch >= 'a' && ch <= 'z') ch = (char)(ch - 'a' + 'A');
    up = 0;
    if (k >= klen || key[k] != ch) return 0;
    k++;
  }
  return k == klen;
}

static const ProtobufCFieldDescriptor *find_member(const ProtobufCMessageDescriptor *d,
                                                   const char *key, size_t klen, unsigned flags) {
  unsigned i;
  if (strlen(key) != klen) return NULL; /* a NUL inside the key names no field */
  if (!(flags & PBJSON_CAMEL)) return protobuf_c_message_descriptor_get_field_by_name(d, key);
  for (i = 0; i < d->n_fields; i++)
    if (camel_equals(d->fields[i].name, key, klen)) return &d->fields[i];
  return NULL;
}

static char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static int ascii_caseeq(const char *a, const char *b) {
  for (; *a && *b; a++, b++)
    if (ascii_lower(*a) != ascii_lower(*b)) return 0;
  return *a == *b;
}

/* The UPPER_SNAKE form of an enum's CamelCase name plus '_': ReviewStatus ->
 * REVIEW_STATUS_, HTTPMethod -> HTTP_METHOD_. 0 when it does not fit. */
static size_t enum_prefix(const ProtobufCEnumDescriptor *ed, char *buf, size_t len) {
  const char *n = ed->short_name ? ed->short_name : "";
  size_t i, o = 0;
  for (i = 0; n[i]; i++) {
    char c = n[i];
    int upper = c >= 'A' && c <= 'Z';
    if (upper && i > 0) {
      char prev = n[i - 1], next = n[i + 1];
      int prev_lower = (prev >= 'a' && prev <= 'z') || (prev >= '0' && prev <= '9');
      int acronym_end = prev >= 'A' && prev <= 'Z' && next >= 'a' && next <= 'z';
      if (prev_lower || acronym_end) {
        if (o + 1 >= len) return 0;
        buf[o++] = '_';
      }
    }
    if (o + 1 >= len) return 0;
    buf[o++] = c >= 'a' && c <= 'z' ? (char)(c - 'a' + 'A') : c;
  }
  if (o + 2 > len) return 0;
  buf[o++] = '_';
  buf[o] = '\0';
  return o;
}

/* The value name without the enum's prefix, when it has it and more. */
static const char *enum_short(const char *name, const char *prefix, size_t plen) {
  if (plen && !strncmp(name, prefix, plen) && name[plen]) return name + plen;
  return name;
}

const char *pbjson_enum_name(const ProtobufCEnumDescriptor *ed, int v, char *buf, size_t len) {
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
  char prefix[128];
  if (!ev || !ev->name) return NULL;
  const char *s = enum_short(ev->name, prefix, enum_prefix(ed, prefix, sizeof prefix));
  size_t n = strlen(s);
  if (n >= len) return NULL;
  for (size_t i = 0; i <= n; i++)
    buf[i] = ascii_lower(s[i]);
  return buf;
}

/* ---- UTF-8 and base64 ---- */

/* protobuf-c does not check that received strings are UTF-8 but jansson only
 * holds UTF-8: invalid bytes become U+FFFD rather than failing the encode. */
static json_t *utf8_string(const char *s) {
  return utf8_json(s ? s : "", s ? strlen(s) : 0);
}

static const char b64_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

static json_t *base64_string(const uint8_t *d, size_t n) {
  size_t i, o = 0;
  char *out = malloc((n + 2) / 3 * 4 + 1);
  json_t *j;

  if (!out) return NULL;
  for (i = 0; i + 2 < n; i += 3) {
    uint32_t v = (uint32_t)d[i] << 16 | (uint32_t)d[i + 1] << 8 | d[i + 2];
    out[o++] = b64_chars[v >> 18 & 63];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = b64_chars[v >> 6 & 63];
    out[o++] = b64_chars[v & 63];
  }
  if (i < n) {
    uint32_t v = (uint32_t)d[i] << 16 | (i + 1 < n ? (uint32_t)d[i + 1] << 8 : 0);
    out[o++] = b64_chars[v >> 18 & 63];
    out[o++] = b64_chars[v >> 12 & 63];
    out[o++] = i + 1 < n ? b64_chars[v >> 6 & 63] : '=';
    out[o++] = '=';
  }
  out[o] = '\0';
  j = json_stringn(out, o);
  free(out);
  return j;
}

/* proto3 JSON accepts both the standard and the URL-safe alphabet. */
static int b64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+' || c == '-') return 62;
  if (c == '/' || c == '_') return 63;
  return -1;
}

/* Padding is optional, but when present it must complete the last quantum. */
static int base64_decode(const char *s, size_t n, ProtobufCBinaryData *out) {
  size_t i, o = 0, pad = 0;
  uint32_t acc = 0;
  int bits = 0;
  uint8_t *data;

  while (pad < 2 && n > 0 && s[n - 1] == '=') {
    n--;
    pad++;
  }
  if (pad && (n + pad) % 4) return PB_FAIL;
  if (n % 4 == 1) return PB_FAIL;
  out->len = 0;
  out->data = NULL;
  if (n == 0) return PB_OK;
  data = malloc(n / 4 * 3 + 3);
  if (!data) return PB_FAIL;
  for (i = 0; i < n; i++) {
    int v = b64_value(s[i]);
    if (v < 0) goto free_data;
    acc = (acc << 6 | (uint32_t)v) & 0xFFFFFF;
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      data[o++] = (uint8_t)(acc >> bits);
    }
  }
  out->data = data;
  out->len = o;
  return PB_OK;

free_data:
  free(data);
  return PB_FAIL;
}

/* ---- time ---- */

static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  int64_t era;
  unsigned yoe, doy, doe;
  y -= m <= 2;
  era = (y >= 0 ? y : y - 399) / 400;
  yoe = (unsigned)(y - era * 400);
  doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + (int64_t)doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
  int64_t era;
  unsigned doe, yoe, doy, mp;
  z += 719468;
  era = (z >= 0 ? z : z - 146096) / 146097;
  doe = (unsigned)(z - era * 146097);
  yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  mp = (5 * doy + 2) / 153;
  *d = doy - (153 * mp + 2) / 5 + 1;
  *m = mp < 10 ? mp + 3 : mp - 9;
  *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

int pbjson_time_format(int64_t seconds, int32_t nanos, unsigned flags, char *buf, size_t len) {
  int64_t days, rem, year;
  unsigned mon, day;
  int n;

  if (!buf || len == 0 || nanos < 0 || nanos > 999999999 || seconds < TS_MIN_SECONDS ||
      seconds > TS_MAX_SECONDS)
    return -1;
  if (flags & PBJSON_MICROS_TIME) {
    n = snprintf(buf, len, "%" PRId64, seconds * 1000000 + nanos / 1000);
    return n < 0 || (size_t)n >= len ? -1 : 0;
  }
  days = floor_div(seconds, 86400);
  rem = seconds - days * 86400;
  civil_from_days(days, &year, &mon, &day);
  n = snprintf(buf, len, "%04d-%02u-%02u%c%02d:%02d:%02d", (int)year, mon, day,
               (flags & PBJSON_SQL_TIME) ? ' ' : 'T', (int)(rem / 3600), (int)(rem / 60 % 60),
               (int)(rem % 60));
  if (n < 0 || (size_t)n >= len) return -1;
  if (flags & PBJSON_SQL_TIME) return 0;
  /* Fraction in groups of 3 digits, only as long as needed. */
  if (nanos == 0)
    n += snprintf(buf + n, len - (size_t)n, "Z");
  else if (nanos % 1000000 == 0)
    n += snprintf(buf + n, len - (size_t)n, ".%03dZ", (int)(nanos / 1000000));
  else if (nanos % 1000 == 0)
    n += snprintf(buf + n, len - (size_t)n, ".%06dZ", (int)(nanos / 1000));
  else
    n += snprintf(buf + n, len - (size_t)n, ".%09dZ", (int)nanos);
  return (size_t)n >= len ? -1 : 0;
}

static int take_digits(const char **p, int count, int *out) {
  int i, v = 0;
  for (i = 0; i < count; i++) {
    char c = (*p)[i];
    if (c < '0' || c > '9') return PB_FAIL;
    v = v * 10 + (c - '0');
  }
  *p += count;
  *out = v;
  return PB_OK;
}

static int take_char(const char **p, char c) {
  if (**p != c) return PB_FAIL;
  (*p)++;
  return PB_OK;
}

static int days_in_month(int y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : dim[m - 1];
}

/* Returns 0, -1 when s is not a time in either form, -2 when it is one but
 * outside years 1..9999 (UTC). */
int pbjson_time_parse(const char *s, int64_t *seconds, int32_t *nanos) {
  const char *p = s;
  int y, mo, d, h, mi, sec, frac = 0, digits = 0, oh = 0, om = 0, sign = 0;
  char sep;
  int64_t t;

  if (!s || take_digits(&p, 4, &y) || take_char(&p, '-') || take_digits(&p, 2, &mo) ||
      take_char(&p, '-') || take_digits(&p, 2, &d))
    return -1;
  sep = *p;
  if (sep != 'T' && sep != 't' && sep != ' ') return -1;
  p++;
  if (take_digits(&p, 2, &h) || take_char(&p, ':') || take_digits(&p, 2, &mi) ||
      take_char(&p, ':') || take_digits(&p, 2, &sec))
    return -1;
  if (*p == '.') {
    p++;
    while (*p >= '0' && *p <= '9') {
      if (++digits > 9) return -1;
      frac = frac * 10 + (*p++ - '0');
    }
    if (digits == 0) return -1;
    while (digits++ < 9)
      frac *= 10;
  }
  if (*p == 'Z' || *p == 'z') {
    p++;
  } else if (*p == '+' || *p == '-') {
    sign = *p++ == '-' ? -1 : 1;
    if (take_digits(&p, 2, &oh) || take_char(&p, ':') || take_digits(&p, 2, &om)) return -1;
  } else if (sep != ' ') {
    return -1; /* RFC 3339 needs a zone; only the SQL form implies UTC */
  }
  if (*p != '\0') return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 59 ||
      oh > 23 || om > 59)
    return -1;
  t = days_from_civil(y, (unsigned)mo, (unsigned)d) * 86400 + h * 3600 + mi * 60 + sec;
  t -= (int64_t)sign * (oh * 3600 + om * 60);
  if (y < 1 || t < TS_MIN_SECONDS || t > TS_MAX_SECONDS) return -2;
  *seconds = t;
  *nanos = frac;
  return 0;
}

/* ---- decoding ---- */

typedef struct dctx {
  unsigned flags;
  unsigned depth;
  size_t plen;
  char path[sizeof(((pbjson_err *)0)->path)];
  pbjson_err *err;
} dctx;

#define R_UNKNOWN "unknown_field"
#define R_TYPE "invalid_type"
#define R_FORMAT "invalid_value_format"
#define R_RANGE "out_of_range"
#define R_NOT_ALLOWED "not_allowed_value"
#define R_NOMEM "out_of_memory"

/* Records the reason at the current path; always returns PB_FAIL. */
__attribute__((format(printf, 3, 4))) static int fail(dctx *c, const char *reason, const char *fmt,
                                                      ...) {
  va_list ap;
  c->err->reason = reason;
  memcpy(c->err->path, c->path, sizeof c->err->path);
  va_start(ap, fmt);
  vsnprintf(c->err->msg, sizeof c->err->msg, fmt, ap);
  va_end(ap);
  return PB_FAIL;
}

static int nomem(dctx *c) {
  return fail(c, R_NOMEM, "out of memory");
}

/* A path longer than the buffer is cut, never overrun. */
static void path_append(dctx *c, const char *s, size_t n) {
  size_t room = sizeof c->path - 1 - c->plen;
  if (n > room) n = room;
  memcpy(c->path + c->plen, s, n);
  c->plen += n;
  c->path[c->plen] = '\0';
}

static size_t path_push_key(dctx *c, const char *key, size_t klen) {
  size_t saved = c->plen;
  if (c->plen) path_append(c, ".", 1);
  path_append(c, key, klen);
  return saved;
}

static size_t path_push_index(dctx *c, size_t i) {
  size_t saved = c->plen;
  char b[32];
  int n = snprintf(b, sizeof b, "[%zu]", i);
  path_append(c, b, n > 0 ? (size_t)n : 0);
  return saved;
}

static void path_pop(dctx *c, size_t saved) {
  c->plen = saved;
  c->path[saved] = '\0';
}

/* Bounds recursion on hostile input: every JSON object or array is a level. */
static int enter(dctx *c) {
  if (c->depth >= PBJSON_MAX_DEPTH)
    return fail(c, R_FORMAT, "nested deeper than %d levels", PBJSON_MAX_DEPTH);
  c->depth++;
  return PB_OK;
}

static void leave(dctx *c) {
  c->depth--;
}

/* The string of a JSON string, refusing embedded NULs (C strings end there). */
static int get_string(dctx *c, const json_t *v, const char **s, size_t *n) {
  if (!json_is_string(v)) return fail(c, R_TYPE, "expected a string");
  *s = json_string_value(v);
  *n = json_string_length(v);
  if (memchr(*s, '\0', *n)) return fail(c, R_FORMAT, "string contains a NUL character");
  return PB_OK;
}

/* Optional '-' then decimal digits, nothing else: 0, -1 bad format, -2 too big. */
static int parse_decimal(const char *s, size_t n, int *neg, uint64_t *mag) {
  size_t i = 0;
  uint64_t v = 0;
  int over = 0;

  *neg = n > 0 && s[0] == '-';
  i = (size_t)*neg;
  if (i == n) return -1;
  for (; i < n; i++) {
    unsigned dg;
    if (s[i] < '0' || s[i] > '9') return -1;
    dg = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - dg) / 10)
      over = 1;
    else
      v = v * 10 + dg;
  }
  if (over) return -2;
  *mag = v;
  return 0;
}

static int get_int(dctx *c, const json_t *v, int strings, int64_t min, int64_t max, int64_t *out) {
  int64_t x;

  if (json_is_integer(v)) {
    x = json_integer_value(v);
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    /* Bounds first: casting an out-of-range double is undefined. */
    if (!(d >= -9223372036854775808.0 && d < 9223372036854775808.0) || (double)(int64_t)d != d)
      return fail(c, R_RANGE, "must be an integer between %" PRId64 " and %" PRId64, min, max);
    x = (int64_t)d;
  } else if (json_is_string(v) && strings) {
    const char *s = NULL;
    size_t n = 0;
    uint64_t mag = 0;
    int neg, rc;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    rc = parse_decimal(s, n, &neg, &mag);
    if (rc == -1) return fail(c, R_FORMAT, "not a decimal integer");
    if (rc == -2 || (neg ? mag > (uint64_t)INT64_MAX + 1 : mag > (uint64_t)INT64_MAX))
      return fail(c, R_RANGE, "must be an integer between %" PRId64 " and %" PRId64, min, max);
    x = !neg ? (int64_t)mag : mag == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(int64_t)mag;
  } else {
    return fail(c, R_TYPE, "expected an integer");
  }
  if (x < min || x > max)
    return fail(c, R_RANGE, "must be an integer between %" PRId64 " and %" PRId64, min, max);
  *out = x;
  return PB_OK;
}

static int get_uint(dctx *c, const json_t *v, int strings, uint64_t max, uint64_t *out) {
  uint64_t x;

  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    if (i < 0) return fail(c, R_RANGE, "must be an integer between 0 and %" PRIu64, max);
    x = (uint64_t)i;
  } else if (json_is_real(v)) {
    double d = json_real_value(v);
    if (!(d >= 0 && d < 18446744073709551616.0) || (double)(uint64_t)d != d)
      return fail(c, R_RANGE, "must be an integer between 0 and %" PRIu64, max);
    x = (uint64_t)d;
  } else if (json_is_string(v) && strings) {
    const char *s = NULL;
    size_t n = 0;
    uint64_t mag = 0;
    int neg, rc;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    rc = parse_decimal(s, n, &neg, &mag);
    if (rc == -1) return fail(c, R_FORMAT, "not a decimal integer");
    if (rc == -2 || (neg && mag != 0))
      return fail(c, R_RANGE, "must be an integer between 0 and %" PRIu64, max);
    x = mag;
  } else {
    return fail(c, R_TYPE, "expected an integer");
  }
  if (x > max) return fail(c, R_RANGE, "must be an integer between 0 and %" PRIu64, max);
  *out = x;
  return PB_OK;
}

/* JSON's number grammar, so strtod's extras (hex, "inf", spaces) stay out. */
static int is_json_number(const char *s) {
  if (*s == '-') s++;
  if (*s == '0')
    s++;
  else if (*s >= '1' && *s <= '9')
    while (*s >= '0' && *s <= '9')
      s++;
  else
    return 0;
  if (*s == '.') {
    if (!(*++s >= '0' && *s <= '9')) return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  if (*s == 'e' || *s == 'E') {
    s++;
    if (*s == '+' || *s == '-') s++;
    if (!(*s >= '0' && *s <= '9')) return 0;
    while (*s >= '0' && *s <= '9')
      s++;
  }
  return *s == '\0';
}

/* Integers a double holds exactly: |n| <= 2^53. */
#define EXACT_INT 9007199254740992LL

static int get_number(dctx *c, const json_t *v, int single, double *out) {
  double d;

  if (json_is_integer(v)) {
    json_int_t i = json_integer_value(v);
    /* Rounding would change the number the client sent. */
    if (i > EXACT_INT || i < -EXACT_INT)
      return fail(c, R_RANGE,
                  "integers beyond +/-9007199254740992 (2^53) cannot be kept exactly; send a "
                  "string or a smaller number");
    d = (double)i;
  } else if (json_is_real(v)) {
    d = json_real_value(v);
  } else if (json_is_string(v)) {
    const char *s = NULL;
    size_t n = 0;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    if (!strcmp(s, "NaN")) {
      d = NAN;
    } else if (!strcmp(s, "Infinity")) {
      d = INFINITY;
    } else if (!strcmp(s, "-Infinity")) {
      d = -INFINITY;
    } else if (is_json_number(s)) {
      d = strtod(s, NULL);
      if (isinf(d)) return fail(c, R_RANGE, "number too large");
    } else {
      return fail(c, R_FORMAT, "not a number");
    }
  } else {
    return fail(c, R_TYPE, "expected a number");
  }
  if (single && isfinite(d) && (d > FLT_MAX || d < -FLT_MAX))
    return fail(c, R_RANGE, "number too large for a float");
  *out = d;
  return PB_OK;
}

static int get_enum(dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v, int *out) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  char prefix[128];
  size_t plen;
  unsigned i;

  if (json_is_null(v) && is_null_value_enum(f)) {
    *out = 0;
    return PB_OK;
  }
  if (json_is_integer(v) || json_is_real(v)) {
    int64_t x;
    if (get_int(c, v, 0, INT32_MIN, INT32_MAX, &x) != PB_OK) return PB_FAIL;
    if (!protobuf_c_enum_descriptor_get_value(ed, (int)x))
      return fail(c, R_NOT_ALLOWED, "%" PRId64 " is not a value of %s", x, ed->short_name);
    *out = (int)x;
    return PB_OK;
  }
  if (json_is_string(v)) {
    const char *s = NULL;
    size_t n, k;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    for (k = 0; k < n; k++) {
      char ch = s[k];
      if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            ch == '_'))
        break;
    }
    if (n == 0 || k < n) return fail(c, R_FORMAT, "not an enum value name");
    plen = enum_prefix(ed, prefix, sizeof prefix);
    for (i = 0; i < ed->n_values; i++) {
      const char *name = ed->values[i].name;
      if (ascii_caseeq(s, name) || ascii_caseeq(s, enum_short(name, prefix, plen))) {
        *out = ed->values[i].value;
        return PB_OK;
      }
    }
    return fail(c, R_NOT_ALLOWED, "not a value of %s", ed->short_name);
  }
  return fail(c, R_TYPE, "expected an enum value name");
}

static int decode_object(dctx *c, const json_t *v, ProtobufCMessage *m);
static int fill_wkt(dctx *c, wkt kind, const json_t *v, ProtobufCMessage *m);

/* A new message of type d from v; null only makes a google.protobuf.Value. */
static int decode_submessage(dctx *c, const ProtobufCMessageDescriptor *d, const json_t *v,
                             ProtobufCMessage **out) {
  wkt kind = wkt_of(d);
  ProtobufCMessage *m;

  if (json_is_null(v) && kind != WKT_VALUE) return fail(c, R_TYPE, "must not be null");
  m = new_message(d);
  if (!m) return nomem(c);
  if ((kind == WKT_NONE ? decode_object(c, v, m) : fill_wkt(c, kind, v, m)) != PB_OK) {
    protobuf_c_message_free_unpacked(m, NULL);
    return PB_FAIL;
  }
  *out = m;
  return PB_OK;
}

/* One value of f's type from v into *out; *out is written only on success. */
static int decode_elem(dctx *c, const ProtobufCFieldDescriptor *f, const json_t *v, slot *out) {
  int64_t i;
  uint64_t u;
  double d;

  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    if (get_int(c, v, 0, INT32_MIN, INT32_MAX, &i) != PB_OK) return PB_FAIL;
    out->i32 = (int32_t)i;
    return PB_OK;
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    if (get_int(c, v, 1, INT64_MIN, INT64_MAX, &i) != PB_OK) return PB_FAIL;
    out->i64 = i;
    return PB_OK;
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    if (get_uint(c, v, 0, UINT32_MAX, &u) != PB_OK) return PB_FAIL;
    out->u32 = (uint32_t)u;
    return PB_OK;
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (get_uint(c, v, 1, UINT64_MAX, &u) != PB_OK) return PB_FAIL;
    out->u64 = u;
    return PB_OK;
  case PROTOBUF_C_TYPE_FLOAT:
    if (get_number(c, v, 1, &d) != PB_OK) return PB_FAIL;
    out->f = (float)d;
    return PB_OK;
  case PROTOBUF_C_TYPE_DOUBLE:
    if (get_number(c, v, 0, &d) != PB_OK) return PB_FAIL;
    out->d = d;
    return PB_OK;
  case PROTOBUF_C_TYPE_BOOL:
    if (!json_is_boolean(v)) return fail(c, R_TYPE, "expected true or false");
    out->b = json_is_true(v);
    return PB_OK;
  case PROTOBUF_C_TYPE_ENUM:
    return get_enum(c, f, v, &out->e);
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = NULL;
    size_t n = 0;
    char *copy;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    /* Always our own copy, even when empty: repeated strings are freed one by one. */
    copy = malloc(n + 1);
    if (!copy) return nomem(c);
    memcpy(copy, s, n + 1);
    out->s = copy;
    return PB_OK;
  }
  case PROTOBUF_C_TYPE_BYTES: {
    const char *s = NULL;
    size_t n = 0;
    if (!json_is_string(v)) return fail(c, R_TYPE, "expected a base64 string");
    s = json_string_value(v);
    n = json_string_length(v);
    if (base64_decode(s, n, &out->bd) != PB_OK) return fail(c, R_FORMAT, "not valid base64");
    return PB_OK;
  }
  case PROTOBUF_C_TYPE_MESSAGE:
    return decode_submessage(c, f->descriptor, v, &out->m);
  }
  return fail(c, R_TYPE, "unsupported field type");
}

/* A JSON array replaces the whole list; null empties it. */
static int decode_repeated(dctx *c, ProtobufCMessage *m, const ProtobufCFieldDescriptor *f,
                           const json_t *v) {
  size_t n, i, sz = elem_size(f->type);
  char *arr = NULL;
  slot tmp;

  if (json_is_null(v)) {
    set_repeated(m, f, NULL, 0);
    return PB_OK;
  }
  if (!json_is_array(v)) return fail(c, R_TYPE, "expected an array");
  if (enter(c) != PB_OK) return PB_FAIL;
  n = json_array_size(v);
  if (n) {
    arr = calloc(n, sz);
    if (!arr) {
      nomem(c);
      goto undo_depth;
    }
  }
  for (i = 0; i < n; i++) {
    size_t saved = path_push_index(c, i);
    int rc = decode_elem(c, f, json_array_get(v, i), &tmp);
    path_pop(c, saved);
    if (rc != PB_OK) goto free_decoded;
    memcpy(arr + i * sz, &tmp, sz);
  }
  leave(c);
  set_repeated(m, f, arr, n);
  return PB_OK;

free_decoded:
  free_elems(f, arr, i);
undo_depth:
  leave(c);
  return PB_FAIL;
}

/* Two members of one oneof in the same object would silently drop one. */
static int check_oneof(dctx *c, const ProtobufCMessageDescriptor *d, unsigned idx,
                       unsigned char *seen) {
  const ProtobufCFieldDescriptor *f = &d->fields[idx];
  unsigned j;
  for (j = 0; j < d->n_fields; j++) {
    const ProtobufCFieldDescriptor *g = &d->fields[j];
    if (j != idx && seen[j] && (g->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
        g->quantifier_offset == f->quantifier_offset) {
      char b1[128], b2[128];
      const char *n1 = pbjson_field_name(g, c->flags, b1, sizeof b1);
      const char *n2 = pbjson_field_name(f, c->flags, b2, sizeof b2);
      return fail(c, R_NOT_ALLOWED, "only one of %s and %s may be set", n1 ? n1 : g->name,
                  n2 ? n2 : f->name);
    }
  }
  seen[idx] = 1;
  return PB_OK;
}

static int decode_field(dctx *c, ProtobufCMessage *m, unsigned idx, const json_t *v,
                        unsigned char *seen) {
  const ProtobufCFieldDescriptor *f = &m->descriptor->fields[idx];
  int oneof = (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) != 0;
  slot tmp;

  if (f->label == PROTOBUF_C_LABEL_REPEATED) return decode_repeated(c, m, f, v);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE) {
    const ProtobufCMessageDescriptor *sd = f->descriptor;
    wkt kind = wkt_of(sd);
    ProtobufCMessage *cur;
    if (json_is_null(v) && kind != WKT_VALUE) {
      clear_field(m, f); /* null unsets a message or wrapper */
      return PB_OK;
    }
    if (oneof && check_oneof(c, m->descriptor, idx, seen) != PB_OK) return PB_FAIL;
    memcpy(&cur, CMEMBER(m, f->offset), sizeof cur);
    /* A plain message already present is merged into, as protobuf merges. */
    if (kind == WKT_NONE && cur && (!oneof || oneof_case(m, f) == f->id))
      return decode_object(c, v, cur);
  } else if (oneof && check_oneof(c, m->descriptor, idx, seen) != PB_OK) {
    return PB_FAIL;
  }
  if (decode_elem(c, f, v, &tmp) != PB_OK) return PB_FAIL;
  set_single(m, f, &tmp);
  return PB_OK;
}

static int has_oneof(const ProtobufCMessageDescriptor *d) {
  unsigned i;
  for (i = 0; i < d->n_fields; i++)
    if (d->fields[i].flags & PROTOBUF_C_FIELD_FLAG_ONEOF) return 1;
  return 0;
}

static int decode_object(dctx *c, const json_t *v, ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  unsigned char *seen = NULL;
  void *it;
  int rc = PB_FAIL;

  if (!json_is_object(v)) return fail(c, R_TYPE, "expected an object");
  if (enter(c) != PB_OK) return PB_FAIL;
  if (has_oneof(d)) {
    seen = calloc(d->n_fields, 1);
    if (!seen) {
      nomem(c);
      goto undo_depth;
    }
  }
  for (it = json_object_iter((json_t *)v); it; it = json_object_iter_next((json_t *)v, it)) {
    const char *key = json_object_iter_key(it);
    size_t klen = json_object_iter_key_len(it);
    const ProtobufCFieldDescriptor *f = find_member(d, key, klen, c->flags);
    size_t saved;
    int frc;

    if (!f && (c->flags & PBJSON_IGNORE_UNKNOWN)) continue;
    saved = path_push_key(c, key, klen);
    frc = f ? decode_field(c, m, (unsigned)(f - d->fields), json_object_iter_value(it), seen)
            : fail(c, R_UNKNOWN, "unknown field");
    path_pop(c, saved);
    if (frc != PB_OK) goto free_seen;
  }
  rc = PB_OK;

free_seen:
  free(seen);
undo_depth:
  leave(c);
  return rc;
}

static int fill_timestamp(dctx *c, const json_t *v, ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *fs = field_by_id(m->descriptor, 1);
  const ProtobufCFieldDescriptor *fn = field_by_id(m->descriptor, 2);
  int64_t secs;
  int32_t nanos;

  if (json_is_string(v)) {
    const char *s = NULL;
    size_t n = 0;
    int rc;
    if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
    rc = pbjson_time_parse(s, &secs, &nanos);
    if (rc == -2) return fail(c, R_RANGE, "time outside years 0001..9999");
    if (rc != 0) return fail(c, R_FORMAT, "not an RFC 3339 or YYYY-MM-DD HH:MM:SS time");
  } else if ((c->flags & PBJSON_MICROS_TIME) && (json_is_integer(v) || json_is_real(v))) {
    int64_t us, rem;
    if (get_int(c, v, 0, INT64_MIN, INT64_MAX, &us) != PB_OK) return PB_FAIL;
    rem = us % 1000000;
    /* Floor division without forming us - rem, which can overflow. */
    secs = us / 1000000 - (rem < 0);
    nanos = (int32_t)(rem < 0 ? rem + 1000000 : rem) * 1000;
    if (secs < TS_MIN_SECONDS || secs > TS_MAX_SECONDS)
      return fail(c, R_RANGE, "time outside years 0001..9999");
  } else {
    return fail(c, R_TYPE, "expected a time string");
  }
  memcpy(MEMBER(m, fs->offset), &secs, sizeof secs);
  memcpy(MEMBER(m, fn->offset), &nanos, sizeof nanos);
  return PB_OK;
}

/* One Struct.FieldsEntry {key, value} from a JSON member. */
static int decode_entry(dctx *c, const ProtobufCMessageDescriptor *ed, const char *key, size_t klen,
                        const json_t *v, ProtobufCMessage **out) {
  const ProtobufCFieldDescriptor *kf = field_by_id(ed, 1), *vf = field_by_id(ed, 2);
  ProtobufCMessage *entry;
  slot ks, vs;

  if (memchr(key, '\0', klen)) return fail(c, R_FORMAT, "key contains a NUL character");
  entry = new_message(ed);
  if (!entry) return nomem(c);
  ks.s = malloc(klen + 1);
  if (!ks.s) {
    nomem(c);
    goto free_entry;
  }
  memcpy(ks.s, key, klen + 1);
  set_single(entry, kf, &ks);
  if (decode_submessage(c, vf->descriptor, v, &vs.m) != PB_OK) goto free_entry;
  set_single(entry, vf, &vs);
  *out = entry;
  return PB_OK;

free_entry:
  protobuf_c_message_free_unpacked(entry, NULL);
  return PB_FAIL;
}

/* Struct is map<string, Value>: one FieldsEntry per member. */
static int fill_struct(dctx *c, const json_t *v, ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *ff = field_by_id(m->descriptor, 1);
  const ProtobufCMessageDescriptor *ed = ff->descriptor;
  const ProtobufCFieldDescriptor *kf = field_by_id(ed, 1), *vf = field_by_id(ed, 2);
  ProtobufCMessage **arr = NULL;
  size_t n, i = 0;
  void *it;

  if (!kf || !vf || kf->type != PROTOBUF_C_TYPE_STRING || vf->type != PROTOBUF_C_TYPE_MESSAGE)
    return fail(c, R_TYPE, "unsupported Struct layout");
  if (!json_is_object(v)) return fail(c, R_TYPE, "expected an object");
  if (enter(c) != PB_OK) return PB_FAIL;
  n = json_object_size(v);
  if (n) {
    arr = calloc(n, sizeof *arr);
    if (!arr) {
      nomem(c);
      goto undo_depth;
    }
  }
  for (it = json_object_iter((json_t *)v); it && i < n;
       it = json_object_iter_next((json_t *)v, it)) {
    const char *key = json_object_iter_key(it);
    size_t klen = json_object_iter_key_len(it), saved = path_push_key(c, key, klen);
    int rc = decode_entry(c, ed, key, klen, json_object_iter_value(it), &arr[i]);
    path_pop(c, saved);
    if (rc != PB_OK) goto free_entries;
    i++;
  }
  leave(c);
  set_repeated(m, ff, arr, i);
  return PB_OK;

free_entries:
  free_elems(ff, arr, i);
undo_depth:
  leave(c);
  return PB_FAIL;
}

/* The JSON type picks the Value's kind; set_single drops the previous kind. */
static int fill_value(dctx *c, const json_t *v, ProtobufCMessage *m) {
  const char *member;
  const ProtobufCFieldDescriptor *kf;
  slot tmp;

  switch (json_typeof(v)) {
  case JSON_NULL:
    member = "null_value";
    break;
  case JSON_TRUE:
  case JSON_FALSE:
    member = "bool_value";
    break;
  case JSON_INTEGER:
  case JSON_REAL:
    member = "number_value";
    break;
  case JSON_STRING:
    member = "string_value";
    break;
  case JSON_OBJECT:
    member = "struct_value";
    break;
  case JSON_ARRAY:
    member = "list_value";
    break;
  default:
    return fail(c, R_TYPE, "unsupported JSON value");
  }
  kf = protobuf_c_message_descriptor_get_field_by_name(m->descriptor, member);
  if (!kf) return fail(c, R_TYPE, "unsupported Value layout");
  if (decode_elem(c, kf, v, &tmp) != PB_OK) return PB_FAIL;
  set_single(m, kf, &tmp);
  return PB_OK;
}

static int fill_list(dctx *c, const json_t *v, ProtobufCMessage *m) {
  if (!json_is_array(v)) return fail(c, R_TYPE, "expected an array");
  return decode_repeated(c, m, field_by_id(m->descriptor, 1), v);
}

static int is_path_char(char ch) {
  return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
         ch == '_' || ch == '.';
}

/* "a.b,c" -> paths ["a.b", "c"]; with PBJSON_CAMEL "fooBar" -> "foo_bar". */
static int fill_mask(dctx *c, const json_t *v, ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *pf = field_by_id(m->descriptor, 1);
  const char *s = NULL;
  size_t n = 0, count = 1, i = 0, k;
  char **paths = NULL;

  if (get_string(c, v, &s, &n) != PB_OK) return PB_FAIL;
  if (n == 0) {
    set_repeated(m, pf, NULL, 0);
    return PB_OK;
  }
  for (k = 0; k < n; k++)
    count += s[k] == ',';
  paths = calloc(count, sizeof *paths);
  if (!paths) return nomem(c);
  while (i < count) {
    const char *end = strchr(s, ',');
    size_t len = end ? (size_t)(end - s) : strlen(s), o = 0;
    char *p;
    if (len == 0) {
      fail(c, R_FORMAT, "empty path in field mask");
      goto free_paths;
    }
    p = malloc(len * 2 + 1);
    if (!p) {
      nomem(c);
      goto free_paths;
    }
    paths[i++] = p;
    for (k = 0; k < len; k++) {
      char ch = s[k];
      if (!is_path_char(ch)) {
        fail(c, R_FORMAT, "field mask paths hold only letters, digits, '_' and '.'");
        goto free_paths;
      }
      /* lowerCamelCase paths have no '_': "a_" or "__" would not come back
       * from the encoder as written (proto3 JSON refuses them too). */
      if ((c->flags & PBJSON_CAMEL) && ch == '_') {
        fail(c, R_FORMAT, "lowerCamelCase field mask paths hold no '_'");
        goto free_paths;
      }
      if ((c->flags & PBJSON_CAMEL) && ch >= 'A' && ch <= 'Z') {
        p[o++] = '_';
        ch = ascii_lower(ch);
      }
      p[o++] = ch;
    }
    p[o] = '\0';
    s += len + 1;
  }
  set_repeated(m, pf, paths, count);
  return PB_OK;

free_paths:
  free_elems(pf, paths, i);
  return PB_FAIL;
}

static int fill_wkt(dctx *c, wkt kind, const json_t *v, ProtobufCMessage *m) {
  switch (kind) {
  case WKT_WRAPPER: {
    const ProtobufCFieldDescriptor *f = &m->descriptor->fields[0];
    slot tmp;
    if (decode_elem(c, f, v, &tmp) != PB_OK) return PB_FAIL;
    set_single(m, f, &tmp);
    return PB_OK;
  }
  case WKT_TIMESTAMP:
    return fill_timestamp(c, v, m);
  case WKT_STRUCT:
    return fill_struct(c, v, m);
  case WKT_VALUE:
    return fill_value(c, v, m);
  case WKT_LIST:
    return fill_list(c, v, m);
  case WKT_MASK:
    return fill_mask(c, v, m);
  case WKT_NONE:
    break;
  }
  return decode_object(c, v, m);
}

int pbjson_merge(const json_t *in, ProtobufCMessage *msg, unsigned flags, pbjson_err *err) {
  pbjson_err scratch;
  dctx c;

  memset(&c, 0, sizeof c);
  c.flags = flags;
  c.err = err ? err : &scratch;
  memset(c.err, 0, sizeof *c.err);
  if (!msg || !msg->descriptor) return fail(&c, R_TYPE, "no message");
  if (!in) return fail(&c, R_TYPE, "expected an object");
  return fill_wkt(&c, wkt_of(msg->descriptor), in, msg);
}

int pbjson_decode(const json_t *in, const ProtobufCMessageDescriptor *desc, unsigned flags,
                  ProtobufCMessage **out, pbjson_err *err) {
  ProtobufCMessage *m;

  if (!out || !desc) return pbjson_merge(in, NULL, flags, err);
  *out = NULL;
  m = new_message(desc);
  if (!m) {
    if (err) {
      memset(err, 0, sizeof *err);
      err->reason = R_NOMEM;
      snprintf(err->msg, sizeof err->msg, "out of memory");
    }
    return -1;
  }
  if (pbjson_merge(in, m, flags, err) != 0) {
    protobuf_c_message_free_unpacked(m, NULL);
    return -1;
  }
  *out = m;
  return 0;
}

/* ---- encoding ---- */

typedef struct ectx {
  unsigned flags;
  unsigned depth;
} ectx;

static json_t *enc_message(ectx *c, const ProtobufCMessage *m);

/* JSON has no NaN or infinities: proto3 JSON spells them as strings. An
 * integral value within 2^53 is written as an integer: 42 stays 42, never
 * 42.0 (JSON does not tell them apart; clients' parsers do). */
static json_t *enc_double(double d) {
  if (isnan(d)) return json_string("NaN");
  if (isinf(d)) return json_string(d > 0 ? "Infinity" : "-Infinity");
  /* In range first: casting a larger double is undefined. */
  if (d >= -(double)EXACT_INT && d <= (double)EXACT_INT && d == (double)(json_int_t)d)
    return json_integer((json_int_t)d);
  return json_real(d);
}

/* The shortest decimal that reads back as the same float, so 0.1f is 0.1
 * in JSON, not 0.10000000149011612. */
static json_t *enc_float(float f) {
  char buf[32];
  int p;
  /* integral ones as enc_double writes them (the range check comes first) */
  if (!isfinite(f) || ((double)f >= -(double)EXACT_INT && (double)f <= (double)EXACT_INT &&
                       (double)f == (double)(json_int_t)f))
    return enc_double((double)f);
  for (p = 1; p <= 9; p++) {
    snprintf(buf, sizeof buf, "%.*g", p, (double)f);
    if (strtof(buf, NULL) == f) return json_real(strtod(buf, NULL));
  }
  return json_real((double)f);
}

static json_t *enc_enum(const ProtobufCFieldDescriptor *f, int v) {
  const ProtobufCEnumDescriptor *ed = f->descriptor;
  const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(ed, v);
  char prefix[128], *lower;
  const char *s;
  size_t plen, n, i;
  json_t *j;

  if (!ev || !ev->name) return json_integer(v);
  if (is_null_value_enum(f)) return json_null();
  plen = enum_prefix(ed, prefix, sizeof prefix);
  s = enum_short(ev->name, prefix, plen);
  n = strlen(s);
  lower = malloc(n + 1);
  if (!lower) return NULL;
  for (i = 0; i <= n; i++)
    lower[i] = ascii_lower(s[i]);
  j = utf8_string(lower);
  free(lower);
  return j;
}

static json_t *enc_elem(ectx *c, const ProtobufCFieldDescriptor *f, const void *p) {
  slot v;
  memcpy(&v, p, elem_size(f->type));
  switch (f->type) {
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32:
    return json_integer(v.i32);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32:
    return json_integer(v.u32);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return json_integer(v.i64);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64:
    if (v.u64 > (uint64_t)INT64_MAX) {
      /* JSON integers here are int64: larger values travel as strings. */
      char buf[24];
      snprintf(buf, sizeof buf, "%" PRIu64, v.u64);
      return json_string(buf);
    }
    return json_integer((json_int_t)v.u64);
  case PROTOBUF_C_TYPE_FLOAT:
    return enc_float(v.f);
  case PROTOBUF_C_TYPE_DOUBLE:
    return enc_double(v.d);
  case PROTOBUF_C_TYPE_BOOL:
    return json_boolean(v.b);
  case PROTOBUF_C_TYPE_ENUM:
    return enc_enum(f, v.e);
  case PROTOBUF_C_TYPE_STRING:
    return utf8_string(v.s);
  case PROTOBUF_C_TYPE_BYTES:
    return base64_string(v.bd.data, v.bd.data ? v.bd.len : 0);
  case PROTOBUF_C_TYPE_MESSAGE:
    return v.m ? enc_message(c, v.m) : json_null();
  }
  return json_null();
}

static int enc_enter(ectx *c) {
  if (c->depth >= PBJSON_MAX_DEPTH) return PB_FAIL;
  c->depth++;
  return PB_OK;
}

static json_t *enc_repeated(ectx *c, const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  size_t n, i, sz = elem_size(f->type);
  const char *arr;
  json_t *a;

  if (enc_enter(c) != PB_OK) return NULL;
  memcpy(&n, CMEMBER(m, f->quantifier_offset), sizeof n);
  memcpy(&arr, CMEMBER(m, f->offset), sizeof arr);
  a = json_array();
  for (i = 0; a && arr && i < n; i++) {
    if (json_array_append_new(a, enc_elem(c, f, arr + i * sz)) != 0) {
      json_decref(a);
      a = NULL;
    }
  }
  c->depth--;
  return a;
}

/* Whether an unset optional field (message, wrapper, proto2 optional) is
 * absent; those are null or left out, never shown as a default. */
static int is_unset(const ProtobufCMessage *m, const ProtobufCFieldDescriptor *f) {
  const void *p = CMEMBER(m, f->offset);
  if (f->type == PROTOBUF_C_TYPE_MESSAGE ||
      (f->type == PROTOBUF_C_TYPE_STRING && f->label == PROTOBUF_C_LABEL_OPTIONAL)) {
    const void *ptr;
    memcpy(&ptr, p, sizeof ptr);
    return ptr == NULL;
  }
  if (uses_has_flag(f)) {
    protobuf_c_boolean has;
    memcpy(&has, CMEMBER(m, f->quantifier_offset), sizeof has);
    return !has;
  }
  return 0;
}

static json_t *enc_object(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  json_t *obj;
  unsigned i;

  if (enc_enter(c) != PB_OK) return NULL;
  obj = json_object();
  for (i = 0; obj && i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    char buf[256];
    const char *name = pbjson_field_name(f, c->flags, buf, sizeof buf);
    json_t *v;

    /* Only the selected member of a oneof exists. */
    if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) && oneof_case(m, f) != f->id) continue;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      v = enc_repeated(c, m, f);
    } else if (is_unset(m, f)) {
      if (c->flags & PBJSON_OMIT_NULL) continue;
      v = json_null();
    } else {
      v = enc_elem(c, f, CMEMBER(m, f->offset));
    }
    if (json_object_set_new(obj, name ? name : f->name, v) != 0) {
      json_decref(obj);
      obj = NULL;
    }
  }
  c->depth--;
  return obj;
}

static json_t *enc_timestamp(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *fs = field_by_id(m->descriptor, 1);
  const ProtobufCFieldDescriptor *fn = field_by_id(m->descriptor, 2);
  int64_t secs;
  int32_t nanos;
  char buf[64];

  memcpy(&secs, CMEMBER(m, fs->offset), sizeof secs);
  memcpy(&nanos, CMEMBER(m, fn->offset), sizeof nanos);
  /* A time no calendar form can show is as good as none. */
  if (pbjson_time_format(secs, nanos, c->flags, buf, sizeof buf) != 0) return json_null();
  if (c->flags & PBJSON_MICROS_TIME) return json_integer(secs * 1000000 + nanos / 1000);
  return json_string(buf);
}

static json_t *enc_struct(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *ff = field_by_id(m->descriptor, 1);
  const ProtobufCMessageDescriptor *ed = ff->descriptor;
  const ProtobufCFieldDescriptor *kf = field_by_id(ed, 1), *vf = field_by_id(ed, 2);
  ProtobufCMessage **arr;
  size_t n, i;
  json_t *obj;

  if (!kf || !vf) return json_object();
  if (enc_enter(c) != PB_OK) return NULL;
  memcpy(&n, CMEMBER(m, ff->quantifier_offset), sizeof n);
  memcpy(&arr, CMEMBER(m, ff->offset), sizeof arr);
  obj = json_object();
  for (i = 0; obj && arr && i < n; i++) {
    const char *key;
    json_t *k, *v;
    if (!arr[i]) continue;
    memcpy(&key, CMEMBER(arr[i], kf->offset), sizeof key);
    k = utf8_string(key); /* keys must be UTF-8 too */
    v = k ? enc_elem(c, vf, CMEMBER(arr[i], vf->offset)) : NULL;
    /* setn_new takes v even when it fails */
    if (!v || json_object_setn_new(obj, json_string_value(k), json_string_length(k), v) != 0) {
      json_decref(obj);
      obj = NULL;
    }
    json_decref(k);
  }
  c->depth--;
  return obj;
}

static json_t *enc_value(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *kf = field_by_id(m->descriptor, 1);
  uint32_t kind = kf ? oneof_case(m, kf) : 0;
  const ProtobufCFieldDescriptor *f = kind ? field_by_id(m->descriptor, kind) : NULL;

  if (!f || is_null_value_enum(f)) return json_null();
  return enc_elem(c, f, CMEMBER(m, f->offset));
}

static json_t *enc_mask(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCFieldDescriptor *pf = field_by_id(m->descriptor, 1);
  char **paths, *out;
  size_t n, i, total = 1, o = 0;
  json_t *j;

  memcpy(&n, CMEMBER(m, pf->quantifier_offset), sizeof n);
  memcpy(&paths, CMEMBER(m, pf->offset), sizeof paths);
  for (i = 0; paths && i < n; i++)
    total += (paths[i] ? strlen(paths[i]) : 0) + 1;
  out = malloc(total);
  if (!out) return NULL;
  for (i = 0; paths && i < n; i++) {
    const char *p = paths[i] ? paths[i] : "";
    if (i) out[o++] = ',';
    if (c->flags & PBJSON_CAMEL) {
      /* camel form is never longer, so the room computed above suffices */
      to_camel(p, strlen(p), out + o, total - o);
      o += strlen(out + o);
    } else {
      memcpy(out + o, p, strlen(p));
      o += strlen(p);
    }
  }
  out[o] = '\0';
  j = utf8_string(out);
  free(out);
  return j;
}

static json_t *enc_message(ectx *c, const ProtobufCMessage *m) {
  const ProtobufCMessageDescriptor *d = m->descriptor;
  switch (wkt_of(d)) {
  case WKT_WRAPPER:
    return enc_elem(c, &d->fields[0], CMEMBER(m, d->fields[0].offset));
  case WKT_TIMESTAMP:
    return enc_timestamp(c, m);
  case WKT_STRUCT:
    return enc_struct(c, m);
  case WKT_VALUE:
    return enc_value(c, m);
  case WKT_LIST:
    return enc_repeated(c, m, field_by_id(d, 1));
  case WKT_MASK:
    return enc_mask(c, m);
  case WKT_NONE:
    break;
  }
  return enc_object(c, m);
}

json_t *pbjson_encode(const ProtobufCMessage *msg, unsigned flags) {
  ectx c = {flags, 0};
  if (!msg || !msg->descriptor) return NULL;
  return enc_message(&c, msg);
}

/* ---- numbers jansson cannot read ---- */

/* One open container of the scan: a member name or an element index. */
typedef struct frame {
  int is_array;
  size_t index;
  char key[128];
} frame;

#define SCAN_MAX_DEPTH 128

static const char *skip_ws(const char *p, const char *end) {
  while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r'))
    p++;
  return p;
}

static int hex4(const char *p, const char *end, unsigned *out) {
  unsigned v = 0;
  if (end - p < 4) return -1;
  for (int i = 0; i < 4; i++) {
    char ch = p[i];
    v <<= 4;
    if (ch >= '0' && ch <= '9')
      v |= (unsigned)(ch - '0');
    else if (ch >= 'a' && ch <= 'f')
      v |= (unsigned)(ch - 'a' + 10);
    else if (ch >= 'A' && ch <= 'F')
      v |= (unsigned)(ch - 'A' + 10);
    else
      return -1;
  }
  *out = v;
  return 0;
}

/* Scans the string at p (its opening quote) and returns the position after
 * the closing quote, or NULL. With `key`, writes the decoded text there
 * (cut at keylen - 1 bytes). */
static const char *scan_string(const char *p, const char *end, char *key, size_t keylen) {
  size_t o = 0;
  for (p++; p < end && *p != '"'; p++) {
    char tmp[4];
    size_t n = 1;
    unsigned cp;
    if ((unsigned char)*p < 0x20) return NULL;
    if ((unsigned char)*p >= 0x80) {
      /* jansson refuses bad UTF-8 before any number after it */
      size_t k = utf8_seq((const unsigned char *)p, (size_t)(end - p));
      if (!k) return NULL;
      if (key && o + k < keylen) {
        memcpy(key + o, p, k);
        o += k;
      }
      p += k - 1;
      continue;
    }
    tmp[0] = *p;
    if (*p == '\\') {
      if (++p >= end) return NULL;
      switch (*p) {
      case 'b':
        tmp[0] = '\b';
        break;
      case 'f':
        tmp[0] = '\f';
        break;
      case 'n':
        tmp[0] = '\n';
        break;
      case 'r':
        tmp[0] = '\r';
        break;
      case 't':
        tmp[0] = '\t';
        break;
      case '"':
      case '\\':
      case '/':
        tmp[0] = *p;
        break;
      case 'u':
        if (hex4(p + 1, end, &cp) != 0) return NULL;
        p += 4;
        if (cp >= 0xD800 && cp < 0xDC00) {
          unsigned lo;
          if (end - p < 7 || p[1] != '\\' || p[2] != 'u' || hex4(p + 3, end, &lo) != 0 ||
              lo < 0xDC00 || lo > 0xDFFF)
            return NULL;
          cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          p += 6;
        } else if (cp == 0 || (cp >= 0xDC00 && cp <= 0xDFFF)) {
          return NULL; /* jansson refuses \u0000 and a lone low surrogate */
        }
        if (cp < 0x80) {
          tmp[0] = (char)cp;
        } else if (cp < 0x800) {
          tmp[0] = (char)(0xC0 | (cp >> 6));
          tmp[1] = (char)(0x80 | (cp & 0x3F));
          n = 2;
        } else if (cp < 0x10000) {
          tmp[0] = (char)(0xE0 | (cp >> 12));
          tmp[1] = (char)(0x80 | ((cp >> 6) & 0x3F));
          tmp[2] = (char)(0x80 | (cp & 0x3F));
          n = 3;
        } else {
          tmp[0] = (char)(0xF0 | (cp >> 18));
          tmp[1] = (char)(0x80 | ((cp >> 12) & 0x3F));
          tmp[2] = (char)(0x80 | ((cp >> 6) & 0x3F));
          tmp[3] = (char)(0x80 | (cp & 0x3F));
          n = 4;
        }
        break;
      default:
        return NULL;
      }
    }
    if (key && o + n < keylen) {
      memcpy(key + o, tmp, n);
      o += n;
    }
  }
  if (key && keylen) key[o] = '\0';
  return p < end ? p + 1 : NULL;
}

/* Scans a number token at p; returns its end or NULL. *keepable says
 * whether jansson reads it: an integer within int64, a real that does not
 * overflow. */
static const char *scan_number(const char *p, const char *end, int *keepable) {
  const char *s = p;
  int real = 0;
  char small[64];
  if (p < end && *p == '-') p++;
  if (p >= end || !(*p >= '0' && *p <= '9')) return NULL;
  while (p < end && ((*p >= '0' && *p <= '9') || *p == '.' || *p == 'e' || *p == 'E' || *p == '+' ||
                     *p == '-')) {
    real |= *p == '.' || *p == 'e' || *p == 'E';
    p++;
  }
  size_t n = (size_t)(p - s);
  /* jansson reads the byte after a number before the number: bad UTF-8
   * there is refused first */
  if (p < end && (unsigned char)*p >= 0x80 &&
      !utf8_seq((const unsigned char *)p, (size_t)(end - p)))
    return NULL;
  /* a long real may still read (0.000...1): it is copied whole */
  char *buf = n < sizeof small ? small : malloc(n + 1);
  if (!buf) return NULL;
  memcpy(buf, s, n);
  buf[n] = '\0';
  if (!is_json_number(buf)) {
    p = NULL;
  } else if (real) {
    errno = 0;
    double d = strtod(buf, NULL);
    *keepable = !(isinf(d) && errno == ERANGE);
  } else {
    errno = 0;
    (void)strtoll(buf, NULL, 10);
    *keepable = errno != ERANGE;
  }
  if (buf != small) free(buf);
  return p;
}

static void frame_path(const frame *st, int depth, unsigned style, char *path, size_t len) {
  size_t o = 0;
  path[0] = '\0';
  for (int i = 0; i < depth && o < len; i++) {
    int n;
    if (st[i].is_array) {
      n = snprintf(path + o, len - o, style == PBJSON_PATH_POINTER ? "/%zu" : "[%zu]", st[i].index);
    } else if (style == PBJSON_PATH_POINTER) {
      n = snprintf(path + o, len - o, "/");
      for (const char *k = st[i].key; *k && n >= 0 && o + (size_t)n < len; k++) {
        /* RFC 6901: '~' as ~0, '/' as ~1 */
        int m = snprintf(path + o + (size_t)n, len - o - (size_t)n, "%s",
                         *k == '~'   ? "~0"
                         : *k == '/' ? "~1"
                                     : (char[2]){*k, '\0'});
        n += m;
      }
    } else {
      n = snprintf(path + o, len - o, "%s%s", i ? "." : "", st[i].key);
    }
    if (n < 0) break;
    o += (size_t)n;
  }
  if (o >= len) path[len - 1] = '\0';
}

int pbjson_find_unkeepable(const char *text, size_t len, unsigned style, char *path, size_t pathlen,
                           char *token, size_t toklen) {
  frame *st = calloc(SCAN_MAX_DEPTH, sizeof *st);
  const char *p = text, *end = text + len;
  int depth = 0, rc = -1;
  /* expecting: 0 a value, 1 a member name or '}', 2 ',' or the end */
  int want = 0;
  if (!st || !text || !pathlen || !toklen) goto done;
  for (;;) {
    p = skip_ws(p, end);
    if (p >= end) goto done;
    if (want == 1) {
      if (*p == '}' && st[depth - 1].key[0] == '\0' && !st[depth - 1].index) {
        depth--;
        p++;
        want = 2;
      } else if (*p == '"') {
        frame *f = &st[depth - 1];
        if (!(p = scan_string(p, end, f->key, sizeof f->key))) goto done;
        p = skip_ws(p, end);
        if (p >= end || *p != ':') goto done;
        p++;
        f->index = 1; /* a member was seen: '}' now needs a ',' before it */
        want = 0;
      } else {
        goto done;
      }
      continue;
    }
    if (want == 2) {
      if (depth == 0) goto done;
      frame *f = &st[depth - 1];
      if (*p == ',') {
        p++;
        if (f->is_array) {
          f->index++;
          want = 0;
        } else {
          f->key[0] = '\0';
          want = 1;
          /* after ',' a name must follow, never '}' */
          p = skip_ws(p, end);
          if (p >= end || *p != '"') goto done;
        }
      } else if (*p == (f->is_array ? ']' : '}')) {
        depth--;
        p++;
      } else {
        goto done;
      }
      continue;
    }
    /* a value */
    if (*p == '{' || *p == '[') {
      if (depth >= SCAN_MAX_DEPTH) goto done;
      frame *f = &st[depth++];
      f->is_array = *p == '[';
      f->index = 0;
      f->key[0] = '\0';
      p = skip_ws(p + 1, end);
      if (f->is_array && p < end && *p == ']') {
        depth--;
        p++;
        want = 2;
      } else {
        want = f->is_array ? 0 : 1;
      }
    } else if (*p == '"') {
      if (!(p = scan_string(p, end, NULL, 0))) goto done;
      want = 2;
    } else if (*p == '-' || (*p >= '0' && *p <= '9')) {
      int keepable = 1;
      const char *s = p;
      if (!(p = scan_number(p, end, &keepable))) goto done;
      if (!keepable) {
        frame_path(st, depth, style, path, pathlen);
        snprintf(token, toklen, "%.*s", (int)(p - s), s);
        rc = 0;
        goto done;
      }
      want = 2;
    } else {
      static const char *const words[] = {"true", "false", "null"};
      size_t i;
      for (i = 0; i < 3; i++)
        if ((size_t)(end - p) >= strlen(words[i]) && !memcmp(p, words[i], strlen(words[i]))) break;
      if (i == 3) goto done;
      p += strlen(words[i]);
      want = 2;
    }
  }
done:
  free(st);
  return rc;
}

/* ---- numbers JSON cannot write ---- */

/* Appends to path at *o; 0, or -1 when it does not fit. */
static int path_add(char *path, size_t len, size_t *o, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(path + *o, len - *o, fmt, ap);
  va_end(ap);
  if (n < 0 || (size_t)n >= len - *o) return -1;
  *o += (size_t)n;
  return 0;
}

static int nonfinite_in(const ProtobufCMessage *m, char *path, size_t len, size_t o, int depth) {
  const ProtobufCMessageDescriptor *d = m ? m->descriptor : NULL;
  if (!d || depth > PBJSON_MAX_DEPTH) return 0;
  switch (wkt_of(d)) {
  case WKT_VALUE: {
    const ProtobufCFieldDescriptor *kf = field_by_id(d, 1);
    uint32_t kind = kf ? oneof_case(m, kf) : 0;
    const ProtobufCFieldDescriptor *f = kind ? field_by_id(d, kind) : NULL;
    if (!f) return 0;
    if (f->type == PROTOBUF_C_TYPE_DOUBLE) {
      double x;
      memcpy(&x, CMEMBER(m, f->offset), sizeof x);
      path[o] = '\0';
      return !isfinite(x);
    }
    if (f->type != PROTOBUF_C_TYPE_MESSAGE) return 0;
    const ProtobufCMessage *sub;
    memcpy(&sub, CMEMBER(m, f->offset), sizeof sub);
    return nonfinite_in(sub, path, len, o, depth + 1);
  }
  case WKT_STRUCT: {
    const ProtobufCFieldDescriptor *ff = field_by_id(d, 1);
    const ProtobufCFieldDescriptor *kf = field_by_id(ff->descriptor, 1);
    const ProtobufCFieldDescriptor *vf = field_by_id(ff->descriptor, 2);
    ProtobufCMessage **arr;
    size_t n;
    if (!kf || !vf) return 0;
    memcpy(&n, CMEMBER(m, ff->quantifier_offset), sizeof n);
    memcpy(&arr, CMEMBER(m, ff->offset), sizeof arr);
    for (size_t i = 0; arr && i < n; i++) {
      const char *key;
      const ProtobufCMessage *v;
      size_t k = o;
      if (!arr[i]) continue;
      memcpy(&key, CMEMBER(arr[i], kf->offset), sizeof key);
      memcpy(&v, CMEMBER(arr[i], vf->offset), sizeof v);
      if (path_add(path, len, &k, ".%s", key ? key : "") != 0) k = o;
      if (nonfinite_in(v, path, len, k, depth + 1)) return 1;
    }
    return 0;
  }
  case WKT_LIST: {
    const ProtobufCFieldDescriptor *ff = field_by_id(d, 1);
    ProtobufCMessage **arr;
    size_t n;
    memcpy(&n, CMEMBER(m, ff->quantifier_offset), sizeof n);
    memcpy(&arr, CMEMBER(m, ff->offset), sizeof arr);
    for (size_t i = 0; arr && i < n; i++) {
      size_t k = o;
      if (path_add(path, len, &k, "[%zu]", i) != 0) k = o;
      if (nonfinite_in(arr[i], path, len, k, depth + 1)) return 1;
    }
    return 0;
  }
  default:
    return 0;
  }
}

int pbjson_find_nonfinite(const ProtobufCMessage *m, char *path, size_t len) {
  if (!path || !len) return 0;
  path[0] = '\0';
  return nonfinite_in(m, path, len, 0, 0);
}
