/* test_pbjson.c - the protobuf <-> JSON mapper against pbjson_test.proto:
 * round trips of every type and flag, and each kind of bad input with the
 * reason and path it must report. Every decoded message also goes through
 * protobuf-c's own pack/unpack/free, so ASan checks what the mapper built. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "jsontext.h"
#include "pbjson.h"
#include "google/protobuf/empty.pb-c.h"
#include "pbjson_test.pb-c.h"

#define SCALARS (&pbjsontest__scalars__descriptor)
#define REPEATS (&pbjsontest__repeats__descriptor)
#define WRAPPERS (&pbjsontest__wrappers__descriptor)
#define WKT (&pbjsontest__wkt__descriptor)
#define CHOICE (&pbjsontest__choice__descriptor)
#define CHILD (&pbjsontest__child__descriptor)
#define EVERYTHING (&pbjsontest__everything__descriptor)

/* ---- helpers ---- */

/* Test buffers: running out of memory ends the test run. */
__attribute__((returns_nonnull, malloc)) static void *xmalloc(size_t n) {
  void *p = malloc(n);
  if (!p) abort();
  return p;
}

static json_t *load(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, JSON_DECODE_ANY, &e);
  if (!j) fail_msg("test JSON does not parse: %s (%s)", text, e.text);
  return j;
}

static ProtobufCMessage *decode_json(const json_t *in, const ProtobufCMessageDescriptor *d,
                                     unsigned flags) {
  ProtobufCMessage *m = NULL;
  pbjson_err err;
  if (pbjson_decode(in, d, flags, &m, &err) != 0)
    fail_msg("decode failed: %s at '%s': %s", err.reason, err.path, err.msg);
  assert_non_null(m);
  return m;
}

static ProtobufCMessage *decode_ok(const char *text, const ProtobufCMessageDescriptor *d,
                                   unsigned flags) {
  json_t *in = load(text);
  ProtobufCMessage *m = decode_json(in, d, flags);
  json_decref(in);
  return m;
}

static void check_error(const json_t *in, const ProtobufCMessageDescriptor *d, unsigned flags,
                        const char *reason, const char *path) {
  ProtobufCMessage *m = (ProtobufCMessage *)1;
  pbjson_err err;
  int rc = pbjson_decode(in, d, flags, &m, &err);
  char *text = json_dumps(in, JSON_ENCODE_ANY | JSON_COMPACT);
  if (rc == 0) fail_msg("decode of %s succeeded, wanted %s at '%s'", text, reason, path);
  assert_int_equal(rc, -1);
  assert_null(m);
  assert_non_null(err.reason);
  if (strcmp(err.reason, reason) != 0 || strcmp(err.path, path) != 0)
    fail_msg("%s: got %s at '%s' (%s), wanted %s at '%s'", text, err.reason, err.path, err.msg,
             reason, path);
  assert_true(err.msg[0] != '\0');
  free(text);
}

static void decode_fails(const char *text, const ProtobufCMessageDescriptor *d, unsigned flags,
                         const char *reason, const char *path) {
  json_t *in = load(text);
  check_error(in, d, flags, reason, path);
  json_decref(in);
}

static void assert_json(const json_t *got, const char *want_text) {
  json_t *want = load(want_text);
  if (!got || !json_equal(got, want)) {
    char *g = got ? json_dumps(got, JSON_ENCODE_ANY | JSON_SORT_KEYS | JSON_COMPACT) : NULL;
    fail_msg("encoded\n  %s\nwanted\n  %s", g ? g : "(null)", want_text);
  }
  json_decref(want);
}

static ProtobufCMessage *pack_unpack(const ProtobufCMessage *m) {
  size_t n = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = xmalloc(n ? n : 1);
  ProtobufCMessage *u;
  assert_int_equal(protobuf_c_message_pack(m, buf), n);
  u = protobuf_c_message_unpack(m->descriptor, NULL, n, buf);
  free(buf);
  assert_non_null(u);
  return u;
}

/* Encodes m, and the same message after protobuf-c's own pack and unpack. */
static void encode_is(const ProtobufCMessage *m, unsigned flags, const char *want) {
  json_t *j = pbjson_encode(m, flags);
  ProtobufCMessage *u;
  assert_json(j, want);
  json_decref(j);
  u = pack_unpack(m);
  j = pbjson_encode(u, flags);
  assert_json(j, want);
  json_decref(j);
  protobuf_c_message_free_unpacked(u, NULL);
}

/* JSON -> message -> JSON: the result is `want`, or the input itself. */
static void roundtrip(const char *text, const ProtobufCMessageDescriptor *d, unsigned flags,
                      const char *want) {
  ProtobufCMessage *m = decode_ok(text, d, flags);
  encode_is(m, flags, want ? want : text);
  protobuf_c_message_free_unpacked(m, NULL);
}

/* A single member of Everything must fail with reason at path. */
#define FAILS(text, reason, path) decode_fails(text, EVERYTHING, 0, reason, path)

/* ---- scalars ---- */

static const char *const scalar_defaults =
    "{\"f_double\":0,\"f_float\":0,\"f_int32\":0,\"f_int64\":0,\"f_uint32\":0,"
    "\"f_uint64\":0,\"f_sint32\":0,\"f_sint64\":0,\"f_fixed32\":0,\"f_fixed64\":0,"
    "\"f_sfixed32\":0,\"f_sfixed64\":0,\"f_bool\":false,\"f_string\":\"\",\"f_bytes\":\"\"}";

static void test_scalar_defaults_always_emitted(void **state) {
  (void)state;
  roundtrip("{}", SCALARS, 0, scalar_defaults);
  roundtrip(scalar_defaults, SCALARS, 0, NULL);
}

static void test_scalar_values(void **state) {
  const char *text =
      "{\"f_double\":1.5,\"f_float\":-2.25,\"f_int32\":-7,\"f_int64\":1234567890123,"
      "\"f_uint32\":7,\"f_uint64\":9007199254740993,\"f_sint32\":-8,\"f_sint64\":-9,"
      "\"f_fixed32\":10,\"f_fixed64\":11,\"f_sfixed32\":-12,\"f_sfixed64\":-13,"
      "\"f_bool\":true,\"f_string\":\"h\\u00e9llo \\u2603\",\"f_bytes\":\"AAEC/w==\"}";
  Pbjsontest__Scalars *s;
  (void)state;
  roundtrip(text, SCALARS, 0, NULL);
  s = (Pbjsontest__Scalars *)decode_ok(text, SCALARS, 0);
  assert_int_equal(s->f_int64, 1234567890123LL);
  assert_true(s->f_uint64 == 9007199254740993ULL);
  assert_string_equal(s->f_string, "h\xc3\xa9llo \xe2\x98\x83");
  assert_int_equal(s->f_bytes.len, 4);
  assert_memory_equal(s->f_bytes.data, "\x00\x01\x02\xff", 4);
  protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void test_integer_limits(void **state) {
  (void)state;
  roundtrip("{\"f_int32\":-2147483648,\"f_sint32\":-2147483648,\"f_sfixed32\":-2147483648,"
            "\"f_uint32\":4294967295,\"f_fixed32\":4294967295,"
            "\"f_int64\":-9223372036854775808,\"f_sint64\":-9223372036854775808,"
            "\"f_sfixed64\":-9223372036854775808,"
            "\"f_uint64\":\"18446744073709551615\",\"f_fixed64\":\"18446744073709551615\"}",
            SCALARS, PBJSON_OMIT_NULL,
            "{\"f_double\":0,\"f_float\":0,\"f_int32\":-2147483648,"
            "\"f_int64\":-9223372036854775808,\"f_uint32\":4294967295,"
            "\"f_uint64\":\"18446744073709551615\",\"f_sint32\":-2147483648,"
            "\"f_sint64\":-9223372036854775808,\"f_fixed32\":4294967295,"
            "\"f_fixed64\":\"18446744073709551615\",\"f_sfixed32\":-2147483648,"
            "\"f_sfixed64\":-9223372036854775808,\"f_bool\":false,\"f_string\":\"\","
            "\"f_bytes\":\"\"}");
  roundtrip("{\"f_int32\":2147483647,\"f_sint32\":2147483647,\"f_sfixed32\":2147483647,"
            "\"f_int64\":9223372036854775807,\"f_sint64\":9223372036854775807,"
            "\"f_sfixed64\":9223372036854775807,\"f_uint64\":9223372036854775807,"
            "\"f_fixed64\":\"9223372036854775808\"}",
            SCALARS, 0,
            "{\"f_double\":0,\"f_float\":0,\"f_int32\":2147483647,"
            "\"f_int64\":9223372036854775807,\"f_uint32\":0,"
            "\"f_uint64\":9223372036854775807,\"f_sint32\":2147483647,"
            "\"f_sint64\":9223372036854775807,\"f_fixed32\":0,"
            "\"f_fixed64\":\"9223372036854775808\",\"f_sfixed32\":2147483647,"
            "\"f_sfixed64\":9223372036854775807,\"f_bool\":false,\"f_string\":\"\","
            "\"f_bytes\":\"\"}");
}

static void test_integer_spellings(void **state) {
  Pbjsontest__Scalars *s;
  (void)state;
  /* 64-bit from decimal strings; integral reals for every integer type. */
  s = (Pbjsontest__Scalars *)decode_ok(
      "{\"f_int64\":\"-9223372036854775808\",\"f_sint64\":\"42\",\"f_sfixed64\":\"-0\","
      "\"f_uint64\":\"007\",\"f_fixed64\":\"-0\",\"f_int32\":5.0,\"f_uint32\":1e3,"
      "\"f_sfixed32\":-2.0e1,\"f_fixed32\":4294967295.0}",
      SCALARS, 0);
  assert_true(s->f_int64 == INT64_MIN);
  assert_int_equal(s->f_sint64, 42);
  assert_int_equal(s->f_sfixed64, 0);
  assert_int_equal(s->f_uint64, 7);
  assert_int_equal(s->f_fixed64, 0);
  assert_int_equal(s->f_int32, 5);
  assert_int_equal(s->f_uint32, 1000);
  assert_int_equal(s->f_sfixed32, -20);
  assert_int_equal(s->f_fixed32, 4294967295u);
  protobuf_c_message_free_unpacked(&s->base, NULL);
}

static void test_integer_bad_input(void **state) {
  (void)state;
  decode_fails("{\"f_int32\":2147483648}", SCALARS, 0, "out_of_range", "f_int32");
  decode_fails("{\"f_int32\":-2147483649}", SCALARS, 0, "out_of_range", "f_int32");
  decode_fails("{\"f_sint32\":1.5}", SCALARS, 0, "out_of_range", "f_sint32");
  decode_fails("{\"f_uint32\":-1}", SCALARS, 0, "out_of_range", "f_uint32");
  decode_fails("{\"f_fixed32\":4294967296}", SCALARS, 0, "out_of_range", "f_fixed32");
  decode_fails("{\"f_int64\":1e19}", SCALARS, 0, "out_of_range", "f_int64");
  decode_fails("{\"f_int64\":9.3e18}", SCALARS, 0, "out_of_range", "f_int64");
  decode_fails("{\"f_int64\":0.5}", SCALARS, 0, "out_of_range", "f_int64");
  decode_fails("{\"f_int64\":\"9223372036854775808\"}", SCALARS, 0, "out_of_range", "f_int64");
  decode_fails("{\"f_sint64\":\"-9223372036854775809\"}", SCALARS, 0, "out_of_range", "f_sint64");
  decode_fails("{\"f_int64\":\"99999999999999999999999\"}", SCALARS, 0, "out_of_range", "f_int64");
  decode_fails("{\"f_uint64\":\"18446744073709551616\"}", SCALARS, 0, "out_of_range", "f_uint64");
  decode_fails("{\"f_uint64\":\"-1\"}", SCALARS, 0, "out_of_range", "f_uint64");
  decode_fails("{\"f_uint64\":-1}", SCALARS, 0, "out_of_range", "f_uint64");
  decode_fails("{\"f_fixed64\":1e300}", SCALARS, 0, "out_of_range", "f_fixed64");
  decode_fails("{\"f_int64\":\"12a\"}", SCALARS, 0, "invalid_value_format", "f_int64");
  decode_fails("{\"f_int64\":\"\"}", SCALARS, 0, "invalid_value_format", "f_int64");
  decode_fails("{\"f_int64\":\" 1\"}", SCALARS, 0, "invalid_value_format", "f_int64");
  decode_fails("{\"f_int64\":\"+1\"}", SCALARS, 0, "invalid_value_format", "f_int64");
  decode_fails("{\"f_uint64\":\"1.0\"}", SCALARS, 0, "invalid_value_format", "f_uint64");
  /* Only 64-bit integers come as strings. */
  decode_fails("{\"f_int32\":\"5\"}", SCALARS, 0, "invalid_type", "f_int32");
  decode_fails("{\"f_uint32\":\"5\"}", SCALARS, 0, "invalid_type", "f_uint32");
  decode_fails("{\"f_int32\":true}", SCALARS, 0, "invalid_type", "f_int32");
  decode_fails("{\"f_int64\":null}", SCALARS, 0, "invalid_type", "f_int64");
  decode_fails("{\"f_uint64\":[]}", SCALARS, 0, "invalid_type", "f_uint64");
}

static void test_bool_string_bad_input(void **state) {
  json_t *in;
  (void)state;
  decode_fails("{\"f_bool\":1}", SCALARS, 0, "invalid_type", "f_bool");
  decode_fails("{\"f_bool\":\"true\"}", SCALARS, 0, "invalid_type", "f_bool");
  decode_fails("{\"f_bool\":null}", SCALARS, 0, "invalid_type", "f_bool");
  decode_fails("{\"f_string\":5}", SCALARS, 0, "invalid_type", "f_string");
  decode_fails("{\"f_string\":null}", SCALARS, 0, "invalid_type", "f_string");
  decode_fails("{\"f_string\":{}}", SCALARS, 0, "invalid_type", "f_string");
  /* A NUL inside a string would silently cut the C string. */
  in = json_object();
  json_object_set_new(in, "f_string", json_stringn("a\0b", 3));
  check_error(in, SCALARS, 0, "invalid_value_format", "f_string");
  json_decref(in);
  in = json_object();
  json_object_set_new(in, "f_int64", json_stringn("1\0002", 3));
  check_error(in, SCALARS, 0, "invalid_value_format", "f_int64");
  json_decref(in);
}

static void test_bytes(void **state) {
  Pbjsontest__Scalars *s;
  (void)state;
  roundtrip("{\"f_bytes\":\"\"}", SCALARS, PBJSON_OMIT_NULL, scalar_defaults);
  /* URL-safe alphabet and missing padding are accepted, output is standard. */
  s = (Pbjsontest__Scalars *)decode_ok("{\"f_bytes\":\"-_8\"}", SCALARS, 0);
  assert_int_equal(s->f_bytes.len, 2);
  assert_memory_equal(s->f_bytes.data, "\xfb\xff", 2);
  encode_is(&s->base, 0,
            "{\"f_double\":0,\"f_float\":0,\"f_int32\":0,\"f_int64\":0,\"f_uint32\":0,"
            "\"f_uint64\":0,\"f_sint32\":0,\"f_sint64\":0,\"f_fixed32\":0,\"f_fixed64\":0,"
            "\"f_sfixed32\":0,\"f_sfixed64\":0,\"f_bool\":false,\"f_string\":\"\","
            "\"f_bytes\":\"+/8=\"}");
  protobuf_c_message_free_unpacked(&s->base, NULL);
  s = (Pbjsontest__Scalars *)decode_ok("{\"f_bytes\":\"aGk\"}", SCALARS, 0);
  assert_int_equal(s->f_bytes.len, 2);
  assert_memory_equal(s->f_bytes.data, "hi", 2);
  protobuf_c_message_free_unpacked(&s->base, NULL);
  decode_fails("{\"f_bytes\":\"@@@@\"}", SCALARS, 0, "invalid_value_format", "f_bytes");
  decode_fails("{\"f_bytes\":\"QQ=\"}", SCALARS, 0, "invalid_value_format", "f_bytes");
  decode_fails("{\"f_bytes\":\"Q\"}", SCALARS, 0, "invalid_value_format", "f_bytes");
  decode_fails("{\"f_bytes\":\"Q=Q=\"}", SCALARS, 0, "invalid_value_format", "f_bytes");
  decode_fails("{\"f_bytes\":\"QUJD RA==\"}", SCALARS, 0, "invalid_value_format", "f_bytes");
  decode_fails("{\"f_bytes\":12}", SCALARS, 0, "invalid_type", "f_bytes");
}

static void test_floating_point(void **state) {
  Pbjsontest__Scalars *s;
  json_t *j;
  (void)state;
  s = (Pbjsontest__Scalars *)decode_ok("{\"f_double\":\"NaN\",\"f_float\":\"-Infinity\"}", SCALARS,
                                       0);
  assert_true(s->f_double != s->f_double);
  j = pbjson_encode(&s->base, 0);
  assert_string_equal(json_string_value(json_object_get(j, "f_double")), "NaN");
  assert_string_equal(json_string_value(json_object_get(j, "f_float")), "-Infinity");
  json_decref(j);
  protobuf_c_message_free_unpacked(&s->base, NULL);

  s = (Pbjsontest__Scalars *)decode_ok("{\"f_double\":\"Infinity\",\"f_float\":0.1}", SCALARS, 0);
  j = pbjson_encode(&s->base, 0);
  assert_string_equal(json_string_value(json_object_get(j, "f_double")), "Infinity");
  /* A float is written as its shortest decimal, not as the widened double. */
  assert_true(json_real_value(json_object_get(j, "f_float")) == 0.1);
  json_decref(j);
  protobuf_c_message_free_unpacked(&s->base, NULL);

  s = (Pbjsontest__Scalars *)decode_ok("{\"f_double\":\"-1.5e3\",\"f_float\":3}", SCALARS, 0);
  assert_true(s->f_double == -1500.0);
  assert_true(s->f_float == 3.0f);
  protobuf_c_message_free_unpacked(&s->base, NULL);

  decode_fails("{\"f_float\":1e39}", SCALARS, 0, "out_of_range", "f_float");
  decode_fails("{\"f_double\":\"1e999\"}", SCALARS, 0, "out_of_range", "f_double");
  decode_fails("{\"f_double\":\"abc\"}", SCALARS, 0, "invalid_value_format", "f_double");
  decode_fails("{\"f_double\":\"0x10\"}", SCALARS, 0, "invalid_value_format", "f_double");
  decode_fails("{\"f_double\":\"nan\"}", SCALARS, 0, "invalid_value_format", "f_double");
  decode_fails("{\"f_double\":\" 1\"}", SCALARS, 0, "invalid_value_format", "f_double");
  decode_fails("{\"f_float\":false}", SCALARS, 0, "invalid_type", "f_float");
  decode_fails("{\"f_double\":null}", SCALARS, 0, "invalid_type", "f_double");
}

/* ---- enums ---- */

static void test_enum_names(void **state) {
  static const char *const spellings[] = {"\"pending\"",
                                          "\"PENDING\"",
                                          "\"REVIEW_STATUS_PENDING\"",
                                          "\"review_status_pending\"",
                                          "\"Pending\"",
                                          "1",
                                          "1.0"};
  char text[128];
  size_t i;
  Pbjsontest__Everything *e;
  json_t *j;
  (void)state;

  for (i = 0; i < sizeof spellings / sizeof spellings[0]; i++) {
    snprintf(text, sizeof text, "{\"status\":%s}", spellings[i]);
    e = (Pbjsontest__Everything *)decode_ok(text, EVERYTHING, 0);
    assert_int_equal(e->status, PBJSONTEST__REVIEW_STATUS__REVIEW_STATUS_PENDING);
    protobuf_c_message_free_unpacked(&e->base, NULL);
  }
  e = (Pbjsontest__Everything *)decode_ok(
      "{\"status\":\"rejected\",\"entity_type\":\"event_category\",\"method\":\"get\"}", EVERYTHING,
      0);
  assert_int_equal(e->status, PBJSONTEST__REVIEW_STATUS__REVIEW_STATUS_REJECTED);
  assert_int_equal(e->entity_type, PBJSONTEST__ENTITY_TYPE__ENTITY_TYPE_EVENT_CATEGORY);
  assert_int_equal(e->method, PBJSONTEST__HTTPMETHOD__HTTP_METHOD_GET);
  j = pbjson_encode(&e->base, 0);
  assert_string_equal(json_string_value(json_object_get(j, "status")), "rejected");
  assert_string_equal(json_string_value(json_object_get(j, "entity_type")), "event_category");
  assert_string_equal(json_string_value(json_object_get(j, "method")), "get");
  json_decref(j);

  /* A value without the type's prefix keeps its whole name. */
  e->method = PBJSONTEST__HTTPMETHOD__POST;
  e->entity_type = PBJSONTEST__ENTITY_TYPE__ENTITY_TYPE_UNSPECIFIED;
  /* A number no value has (from a newer peer) stays a number. */
  e->status = 42;
  j = pbjson_encode(&e->base, 0);
  assert_string_equal(json_string_value(json_object_get(j, "method")), "post");
  assert_string_equal(json_string_value(json_object_get(j, "entity_type")), "unspecified");
  assert_int_equal(json_integer_value(json_object_get(j, "status")), 42);
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  e = (Pbjsontest__Everything *)decode_ok("{\"method\":\"POST\",\"entity_type\":2}", EVERYTHING, 0);
  assert_int_equal(e->method, PBJSONTEST__HTTPMETHOD__POST);
  assert_int_equal(e->entity_type, PBJSONTEST__ENTITY_TYPE__ENTITY_TYPE_EVENT);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_enum_bad_input(void **state) {
  (void)state;
  FAILS("{\"status\":\"bogus\"}", "not_allowed_value", "status");
  FAILS("{\"status\":\"event_category\"}", "not_allowed_value", "status");
  FAILS("{\"status\":99}", "not_allowed_value", "status");
  FAILS("{\"status\":\"pend ing\"}", "invalid_value_format", "status");
  FAILS("{\"status\":\"\"}", "invalid_value_format", "status");
  FAILS("{\"status\":1.5}", "out_of_range", "status");
  FAILS("{\"status\":4294967296}", "out_of_range", "status");
  FAILS("{\"status\":true}", "invalid_type", "status");
  FAILS("{\"status\":null}", "invalid_type", "status");
  FAILS("{\"repeats\":{\"r_status\":[\"pending\",\"nope\"]}}", "not_allowed_value",
        "repeats.r_status[1]");
}

/* ---- nested and repeated ---- */

static void test_repeated_every_type(void **state) {
  const char *text =
      "{\"r_double\":[1.5,\"NaN\"],\"r_float\":[0.5],\"r_int32\":[-2147483648,0,2147483647],"
      "\"r_int64\":[-9223372036854775808,9223372036854775807],\"r_uint32\":[4294967295],"
      "\"r_uint64\":[0,\"18446744073709551615\"],\"r_sint32\":[-1],\"r_sint64\":[-2],"
      "\"r_fixed32\":[3],\"r_fixed64\":[4],\"r_sfixed32\":[-5],\"r_sfixed64\":[-6],"
      "\"r_bool\":[true,false],\"r_string\":[\"a\",\"\",\"c\"],\"r_bytes\":[\"\",\"AA==\"],"
      "\"r_status\":[\"pending\",\"approved\"],"
      "\"r_child\":[{\"name\":\"x\",\"rank\":1,\"child\":null,\"children\":[]},"
      "{\"name\":\"\",\"rank\":0,\"child\":{\"name\":\"y\",\"rank\":2,\"child\":null,"
      "\"children\":[]},\"children\":[]}]}";
  Pbjsontest__Repeats *r;
  (void)state;
  roundtrip(text, REPEATS, 0, NULL);
  r = (Pbjsontest__Repeats *)decode_ok(text, REPEATS, 0);
  assert_int_equal(r->n_r_string, 3);
  assert_string_equal(r->r_string[1], "");
  assert_int_equal(r->n_r_child, 2);
  assert_string_equal(r->r_child[1]->child->name, "y");
  protobuf_c_message_free_unpacked(&r->base, NULL);
  /* Empty lists are [] on output; null is an empty list on input. */
  roundtrip("{\"r_int32\":null,\"r_child\":[]}", REPEATS, 0,
            "{\"r_double\":[],\"r_float\":[],\"r_int32\":[],\"r_int64\":[],\"r_uint32\":[],"
            "\"r_uint64\":[],\"r_sint32\":[],\"r_sint64\":[],\"r_fixed32\":[],"
            "\"r_fixed64\":[],\"r_sfixed32\":[],\"r_sfixed64\":[],\"r_bool\":[],"
            "\"r_string\":[],\"r_bytes\":[],\"r_status\":[],\"r_child\":[]}");
}

static void test_nested_messages_and_paths(void **state) {
  Pbjsontest__Everything *e;
  (void)state;
  e = (Pbjsontest__Everything *)decode_ok(
      "{\"property_records\":[{\"name\":\"a\",\"children\":[{\"name\":\"b\",\"child\":"
      "{\"rank\":3}}]},{\"rank\":2}],\"scalars\":{\"f_int32\":1}}",
      EVERYTHING, 0);
  assert_int_equal(e->n_property_records, 2);
  assert_int_equal(e->property_records[0]->children[0]->child->rank, 3);
  assert_int_equal(e->scalars->f_int32, 1);
  assert_null(e->wrappers);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  FAILS("{\"property_records\":[{},{},{},{\"rank\":\"x\"}]}", "invalid_type",
        "property_records[3].rank");
  FAILS("{\"property_records\":[{\"children\":[{},{\"child\":{\"name\":1}}]}]}", "invalid_type",
        "property_records[0].children[1].child.name");
  FAILS("{\"scalars\":{\"f_bool\":0}}", "invalid_type", "scalars.f_bool");
  FAILS("{\"scalars\":5}", "invalid_type", "scalars");
  FAILS("{\"scalars\":[]}", "invalid_type", "scalars");
  FAILS("{\"property_records\":{}}", "invalid_type", "property_records");
  FAILS("{\"property_records\":[null]}", "invalid_type", "property_records[0]");
  FAILS("{\"property_records\":[1]}", "invalid_type", "property_records[0]");
  FAILS("{\"repeats\":{\"r_int32\":[1,2,\"3\"]}}", "invalid_type", "repeats.r_int32[2]");
  FAILS("{\"repeats\":{\"r_string\":[\"a\",null]}}", "invalid_type", "repeats.r_string[1]");
  /* Null for a message member means unset. */
  e = (Pbjsontest__Everything *)decode_ok("{\"scalars\":null,\"choice\":null}", EVERYTHING, 0);
  assert_null(e->scalars);
  assert_null(e->choice);
  protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_unknown_members(void **state) {
  Pbjsontest__Everything *e;
  json_t *in;
  (void)state;
  FAILS("{\"bogus\":1}", "unknown_field", "bogus");
  FAILS("{\"scalars\":{\"f_int32\":1,\"fInt64\":2}}", "unknown_field", "scalars.fInt64");
  FAILS("{\"property_records\":[{\"name\":\"a\"},{\"nmae\":\"b\"}]}", "unknown_field",
        "property_records[1].nmae");
  e = (Pbjsontest__Everything *)decode_ok(
      "{\"bogus\":1,\"scalars\":{\"x\":{\"deep\":[1]},\"f_int32\":4}}", EVERYTHING,
      PBJSON_IGNORE_UNKNOWN);
  assert_int_equal(e->scalars->f_int32, 4);
  protobuf_c_message_free_unpacked(&e->base, NULL);
  /* A key with a NUL in it names no field. */
  in = json_object();
  json_object_setn_new(in, "status\0x", 8, json_integer(1));
  check_error(in, EVERYTHING, 0, "unknown_field", "status");
  json_decref(in);
}

/* ---- oneof ---- */

static void test_oneof(void **state) {
  Pbjsontest__Choice *c;
  (void)state;
  roundtrip("{\"label\":\"l\",\"pick_text\":\"t\"}", CHOICE, 0, NULL);
  roundtrip("{\"label\":\"\",\"pick_number\":\"-5\"}", CHOICE, 0,
            "{\"label\":\"\",\"pick_number\":-5}");
  roundtrip("{\"pick_child\":{\"name\":\"n\"}}", CHOICE, 0,
            "{\"label\":\"\",\"pick_child\":{\"name\":\"n\",\"rank\":0,\"child\":null,"
            "\"children\":[]}}");
  roundtrip("{\"pick_wrapped\":7}", CHOICE, 0, "{\"label\":\"\",\"pick_wrapped\":7}");
  /* Nothing picked: no member appears at all. */
  roundtrip("{}", CHOICE, 0, "{\"label\":\"\"}");
  roundtrip("{\"pick_wrapped\":null}", CHOICE, 0, "{\"label\":\"\"}");

  c = (Pbjsontest__Choice *)decode_ok("{\"pick_text\":\"\"}", CHOICE, 0);
  assert_int_equal(c->pick_case, PBJSONTEST__CHOICE__PICK_PICK_TEXT);
  assert_string_equal(c->pick_text, "");
  protobuf_c_message_free_unpacked(&c->base, NULL);
  c = (Pbjsontest__Choice *)decode_ok("{\"pick_child\":null,\"pick_number\":3}", CHOICE, 0);
  assert_int_equal(c->pick_case, PBJSONTEST__CHOICE__PICK_PICK_NUMBER);
  assert_int_equal(c->pick_number, 3);
  protobuf_c_message_free_unpacked(&c->base, NULL);

  decode_fails("{\"pick_text\":\"a\",\"pick_number\":1}", CHOICE, 0, "not_allowed_value",
               "pick_number");
  decode_fails("{\"pick_child\":{},\"pick_text\":\"a\"}", CHOICE, 0, "not_allowed_value",
               "pick_text");
  decode_fails("{\"pick_wrapped\":1,\"pick_child\":{}}", CHOICE, 0, "not_allowed_value",
               "pick_child");
  FAILS("{\"choice\":{\"label\":\"x\",\"pick_text\":\"a\",\"pick_wrapped\":null,"
        "\"pick_number\":2}}",
        "not_allowed_value", "choice.pick_number");
  decode_fails("{\"pick_number\":\"x\"}", CHOICE, 0, "invalid_value_format", "pick_number");
  decode_fails("{\"pick_text\":null}", CHOICE, 0, "invalid_type", "pick_text");
}

/* ---- wrappers ---- */

static const char *const wrappers_null =
    "{\"w_double\":null,\"w_float\":null,\"w_int64\":null,\"w_uint64\":null,\"w_int32\":null,"
    "\"w_uint32\":null,\"w_bool\":null,\"w_string\":null,\"w_bytes\":null}";

static void test_wrappers(void **state) {
  Pbjsontest__Wrappers *w;
  (void)state;
  roundtrip("{\"w_double\":2.5,\"w_float\":0.25,\"w_int64\":-9223372036854775808,"
            "\"w_uint64\":\"18446744073709551615\",\"w_int32\":-2147483648,"
            "\"w_uint32\":4294967295,\"w_bool\":false,\"w_string\":\"\",\"w_bytes\":\"AA==\"}",
            WRAPPERS, 0, NULL);
  roundtrip("{\"w_int64\":\"123\",\"w_double\":\"-Infinity\"}", WRAPPERS, PBJSON_OMIT_NULL,
            "{\"w_int64\":123,\"w_double\":\"-Infinity\"}");
  /* Unset wrappers are null, or absent with PBJSON_OMIT_NULL. */
  roundtrip("{}", WRAPPERS, 0, wrappers_null);
  roundtrip(wrappers_null, WRAPPERS, 0, NULL);
  roundtrip(wrappers_null, WRAPPERS, PBJSON_OMIT_NULL, "{}");

  w = (Pbjsontest__Wrappers *)decode_ok("{\"w_bool\":false,\"w_string\":null,\"w_int32\":0}",
                                        WRAPPERS, 0);
  assert_non_null(w->w_bool);
  assert_false(w->w_bool->value);
  assert_null(w->w_string);
  assert_non_null(w->w_int32);
  protobuf_c_message_free_unpacked(&w->base, NULL);

  decode_fails("{\"w_int32\":\"1\"}", WRAPPERS, 0, "invalid_type", "w_int32");
  decode_fails("{\"w_int32\":{\"value\":1}}", WRAPPERS, 0, "invalid_type", "w_int32");
  decode_fails("{\"w_uint32\":-1}", WRAPPERS, 0, "out_of_range", "w_uint32");
  decode_fails("{\"w_bool\":\"yes\"}", WRAPPERS, 0, "invalid_type", "w_bool");
  decode_fails("{\"w_bytes\":\"*\"}", WRAPPERS, 0, "invalid_value_format", "w_bytes");
  decode_fails("{\"w_string\":7}", WRAPPERS, 0, "invalid_type", "w_string");
  FAILS("{\"external_url\":[]}", "invalid_type", "external_url");
}

/* ---- Timestamp ---- */

static void expect_time(const char *text, unsigned flags, int64_t secs, int32_t nanos) {
  char json[160];
  Pbjsontest__Wkt *w;
  snprintf(json, sizeof json, "{\"at\":%s}", text);
  w = (Pbjsontest__Wkt *)decode_ok(json, WKT, flags);
  assert_non_null(w->at);
  if (w->at->seconds != secs || w->at->nanos != nanos)
    fail_msg("%s: got %lld.%09d, wanted %lld.%09d", text, (long long)w->at->seconds,
             (int)w->at->nanos, (long long)secs, (int)nanos);
  protobuf_c_message_free_unpacked(&w->base, NULL);
}

static void expect_time_out(int64_t secs, int32_t nanos, unsigned flags, const char *want) {
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Pbjsontest__Wkt w = PBJSONTEST__WKT__INIT;
  char json[200];
  ts.seconds = secs;
  ts.nanos = nanos;
  w.at = &ts;
  snprintf(json, sizeof json, "{\"at\":%s,\"times\":[],\"values\":[]}", want);
  encode_is(&w.base, flags | PBJSON_OMIT_NULL, json);
}

static void test_timestamp_input_forms(void **state) {
  (void)state;
  expect_time("\"2019-08-24T14:15:22Z\"", 0, 1566656122, 0);
  expect_time("\"2019-08-24t14:15:22z\"", 0, 1566656122, 0);
  expect_time("\"2019-08-24T14:15:22.1Z\"", 0, 1566656122, 100000000);
  expect_time("\"2019-08-24T14:15:22.123Z\"", 0, 1566656122, 123000000);
  expect_time("\"2019-08-24T14:15:22.123456Z\"", 0, 1566656122, 123456000);
  expect_time("\"2019-08-24T14:15:22.123456789Z\"", 0, 1566656122, 123456789);
  expect_time("\"2019-08-24T16:15:22+02:00\"", 0, 1566656122, 0);
  expect_time("\"2019-08-24T08:45:22.5-05:30\"", 0, 1566656122, 500000000);
  expect_time("\"2019-08-24 14:15:22\"", 0, 1566656122, 0);
  expect_time("\"2019-08-24 14:15:22\"", PBJSON_SQL_TIME, 1566656122, 0);
  expect_time("\"2019-08-24 14:15:22Z\"", 0, 1566656122, 0);
  expect_time("\"2000-02-29T12:00:00Z\"", 0, 951825600, 0);
  expect_time("\"1969-12-31T23:59:59Z\"", 0, -1, 0);
  expect_time("\"0001-01-01T00:00:00Z\"", 0, -62135596800LL, 0);
  expect_time("\"9999-12-31T23:59:59.999999999Z\"", 0, 253402300799LL, 999999999);
  /* Microseconds since the epoch only with PBJSON_MICROS_TIME; strings still work. */
  expect_time("1566656122123456", PBJSON_MICROS_TIME, 1566656122, 123456000);
  expect_time("-1", PBJSON_MICROS_TIME, -1, 999999000);
  expect_time("-1500000", PBJSON_MICROS_TIME, -2, 500000000);
  expect_time("\"2019-08-24T14:15:22Z\"", PBJSON_MICROS_TIME, 1566656122, 0);
}

static void test_timestamp_output_forms(void **state) {
  (void)state;
  expect_time_out(1566656122, 0, 0, "\"2019-08-24T14:15:22Z\"");
  expect_time_out(1566656122, 120000000, 0, "\"2019-08-24T14:15:22.120Z\"");
  expect_time_out(1566656122, 123456000, 0, "\"2019-08-24T14:15:22.123456Z\"");
  expect_time_out(1566656122, 100, 0, "\"2019-08-24T14:15:22.000000100Z\"");
  expect_time_out(-1, 0, 0, "\"1969-12-31T23:59:59Z\"");
  expect_time_out(-62135596800LL, 0, 0, "\"0001-01-01T00:00:00Z\"");
  expect_time_out(253402300799LL, 999999999, 0, "\"9999-12-31T23:59:59.999999999Z\"");
  expect_time_out(1566656122, 999000000, PBJSON_SQL_TIME, "\"2019-08-24 14:15:22\"");
  expect_time_out(1566656122, 123456789, PBJSON_MICROS_TIME, "1566656122123456");
  expect_time_out(-2, 500000000, PBJSON_MICROS_TIME, "-1500000");
  /* No calendar form shows these: null. */
  expect_time_out(253402300800LL, 0, 0, "null");
  expect_time_out(0, -1, 0, "null");
  expect_time_out(0, 1000000000, 0, "null");
  expect_time_out(INT64_MIN, 0, PBJSON_MICROS_TIME, "null");
}

static void test_timestamp_bad_input(void **state) {
  static const char *const bad[] = {
      "garbage",
      "",
      "2019-08-24",
      "2019-08-24T14:15:22",
      "2019-08-24T14:15Z",
      "2019-08-24T14:15:22.Z",
      "2019-08-24T14:15:22.1234567890Z",
      "2019-08-24T14:15:22+0200",
      "2019-08-24T14:15:22+24:00",
      "2019-08-24T14:15:22Z ",
      " 2019-08-24T14:15:22Z",
      "2019-02-29T00:00:00Z",
      "2019-13-01T00:00:00Z",
      "2019-00-01T00:00:00Z",
      "2019-04-31T00:00:00Z",
      "2019-08-24T24:00:00Z",
      "2019-08-24T23:60:00Z",
      "2019-08-24T23:59:60Z",
      "10000-01-01T00:00:00Z",
      "2019/08/24 14:15:22",
      "2019-08-24_14:15:22",
  };
  char json[128];
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    snprintf(json, sizeof json, "{\"wkt\":{\"at\":\"%s\"}}", bad[i]);
    FAILS(json, "invalid_value_format", "wkt.at");
  }
  FAILS("{\"wkt\":{\"at\":\"0000-12-31T23:59:59Z\"}}", "out_of_range", "wkt.at");
  FAILS("{\"wkt\":{\"at\":\"0001-01-01T00:30:00+01:00\"}}", "out_of_range", "wkt.at");
  FAILS("{\"wkt\":{\"at\":\"9999-12-31T23:30:00-01:00\"}}", "out_of_range", "wkt.at");
  FAILS("{\"wkt\":{\"times\":[\"2019-08-24T14:15:22Z\",\"x\"]}}", "invalid_value_format",
        "wkt.times[1]");
  FAILS("{\"wkt\":{\"at\":1566656122}}", "invalid_type", "wkt.at");
  FAILS("{\"wkt\":{\"at\":{\"seconds\":1}}}", "invalid_type", "wkt.at");
  FAILS("{\"wkt\":{\"at\":true}}", "invalid_type", "wkt.at");
  decode_fails("{\"at\":253402300800000000}", WKT, PBJSON_MICROS_TIME, "out_of_range", "at");
  decode_fails("{\"at\":-9223372036854775808}", WKT, PBJSON_MICROS_TIME, "out_of_range", "at");
  decode_fails("{\"at\":1.5}", WKT, PBJSON_MICROS_TIME, "out_of_range", "at");
}

static void test_time_helpers(void **state) {
  char buf[64];
  int64_t s = 0;
  int32_t n = 0;
  (void)state;
  assert_int_equal(pbjson_time_format(1566656122, 5000000, 0, buf, sizeof buf), 0);
  assert_string_equal(buf, "2019-08-24T14:15:22.005Z");
  assert_int_equal(pbjson_time_format(1566656122, 5000000, PBJSON_SQL_TIME, buf, sizeof buf), 0);
  assert_string_equal(buf, "2019-08-24 14:15:22");
  assert_int_equal(pbjson_time_format(1566656122, 5000, PBJSON_MICROS_TIME, buf, sizeof buf), 0);
  assert_string_equal(buf, "1566656122000005");
  assert_int_equal(pbjson_time_format(1566656122, 0, 0, buf, 20), -1); /* needs 21 */
  assert_int_equal(pbjson_time_format(1566656122, 0, 0, buf, 21), 0);
  assert_int_equal(pbjson_time_format(1566656122, 1, 0, buf, 25), -1);
  assert_int_equal(pbjson_time_format(-62135596801LL, 0, 0, buf, sizeof buf), -1);
  assert_int_equal(pbjson_time_parse("2019-08-24T14:15:22.005Z", &s, &n), 0);
  assert_int_equal(s, 1566656122);
  assert_int_equal(n, 5000000);
  assert_int_equal(pbjson_time_parse("2019-08-24 14:15:22", &s, &n), 0);
  assert_int_equal(n, 0);
  assert_int_equal(pbjson_time_parse("2019-08-24T14:15:22", &s, &n), -1);
  assert_int_equal(pbjson_time_parse("0000-01-01 00:00:00", &s, &n), -2);
  assert_int_equal(pbjson_time_parse(NULL, &s, &n), -1);
}

/* ---- Struct, Value, ListValue ---- */

static void test_struct_value_list(void **state) {
  const char *text =
      "{\"payload\":{\"s\":\"x\",\"n\":1.5,\"i\":3,\"b\":true,\"z\":null,\"o\":{\"a\":[1,"
      "\"two\",{\"three\":[]},null,false]},\"e\":{},\"l\":[]},"
      "\"value\":{\"k\":[null]},\"list\":[1,\"a\",null,[[]],{}],"
      "\"values\":[null,0,\"\",true,{},[]]}";
  const char *want =
      "{\"at\":null,\"times\":[],\"mask\":null,"
      "\"payload\":{\"s\":\"x\",\"n\":1.5,\"i\":3,\"b\":true,\"z\":null,\"o\":{\"a\":[1,"
      "\"two\",{\"three\":[]},null,false]},\"e\":{},\"l\":[]},"
      "\"value\":{\"k\":[null]},\"list\":[1,\"a\",null,[[]],{}],"
      "\"values\":[null,0,\"\",true,{},[]]}";
  Pbjsontest__Wkt *w;
  (void)state;
  roundtrip(text, WKT, 0, want);

  w = (Pbjsontest__Wkt *)decode_ok(text, WKT, 0);
  assert_int_equal(w->payload->n_fields, 8);
  assert_int_equal(w->values[0]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  assert_int_equal(w->values[1]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE);
  assert_int_equal(w->values[2]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE);
  assert_int_equal(w->values[3]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_BOOL_VALUE);
  assert_int_equal(w->values[4]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_STRUCT_VALUE);
  assert_int_equal(w->values[5]->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_LIST_VALUE);
  protobuf_c_message_free_unpacked(&w->base, NULL);

  /* Value: null is the null value, not unset; Struct and ListValue null is unset. */
  w = (Pbjsontest__Wkt *)decode_ok("{\"value\":null,\"payload\":null,\"list\":null}", WKT, 0);
  assert_non_null(w->value);
  assert_int_equal(w->value->kind_case, GOOGLE__PROTOBUF__VALUE__KIND_NULL_VALUE);
  assert_null(w->payload);
  assert_null(w->list);
  encode_is(&w->base, PBJSON_OMIT_NULL, "{\"times\":[],\"value\":null,\"values\":[]}");
  protobuf_c_message_free_unpacked(&w->base, NULL);
  roundtrip("{\"value\":\"Infinity\"}", WKT, PBJSON_OMIT_NULL,
            "{\"times\":[],\"value\":\"Infinity\",\"values\":[]}");

  FAILS("{\"wkt\":{\"payload\":[]}}", "invalid_type", "wkt.payload");
  FAILS("{\"wkt\":{\"payload\":\"{}\"}}", "invalid_type", "wkt.payload");
  FAILS("{\"wkt\":{\"list\":{}}}", "invalid_type", "wkt.list");
  FAILS("{\"wkt\":{\"values\":{}}}", "invalid_type", "wkt.values");
}

static void test_struct_bad_strings(void **state) {
  json_t *in, *payload, *list;
  (void)state;
  in = json_object();
  payload = json_object();
  json_object_set_new(payload, "ok", json_true());
  json_object_set_new(payload, "deep", json_pack("{s:[i,s%]}", "a", 1, "x\0y", (size_t)3));
  json_object_set_new(in, "payload", payload);
  check_error(in, WKT, 0, "invalid_value_format", "payload.deep.a[1]");
  json_decref(in);

  in = json_object();
  payload = json_object();
  json_object_setn_new(payload, "k\0", 2, json_null());
  json_object_set_new(in, "payload", payload);
  check_error(in, WKT, 0, "invalid_value_format", "payload.k");
  json_decref(in);

  in = json_object();
  list = json_array();
  json_array_append_new(list, json_stringn("\0", 1));
  json_object_set_new(in, "list", list);
  check_error(in, WKT, 0, "invalid_value_format", "list[0]");
  json_decref(in);
}

/* open^n + inner + close^n, e.g. [[[true]]] or {"a":{"a":true}}. */
static char *nested(size_t n, const char *open, const char *inner, char close) {
  size_t lo = strlen(open), li = strlen(inner), at = 0, i;
  char *s = xmalloc(n * (lo + 1) + li + 1);
  for (i = 0; i < n; i++, at += lo)
    memcpy(s + at, open, lo);
  memcpy(s + at, inner, li);
  at += li;
  memset(s + at, close, n);
  s[at + n] = '\0';
  return s;
}

static char *nested_text(size_t n, int objects) {
  return objects ? nested(n, "{\"a\":", "true", '}') : nested(n, "[", "true", ']');
}

/* {"<member>": <n levels of objects or arrays>} */
static json_t *deep_member(const char *member, size_t n, int objects) {
  char *inner = nested_text(n, objects);
  json_t *j = json_pack("{s:o}", member, load(inner));
  free(inner);
  assert_non_null(j);
  return j;
}

static void test_depth_limit(void **state) {
  char *text, path[256];
  Pbjsontest__Child *chain[PBJSON_MAX_DEPTH];
  ProtobufCMessage *m = NULL;
  pbjson_err err;
  json_t *j;
  size_t i;
  (void)state;

  /* The Wkt object is level 1, so 63 nested objects fit under it... */
  j = deep_member("payload", PBJSON_MAX_DEPTH - 1, 1);
  m = decode_json(j, WKT, 0);
  json_object_set_new(j, "times", json_array());
  json_object_set_new(j, "values", json_array());
  text = json_dumps(j, 0);
  encode_is(m, PBJSON_OMIT_NULL, text);
  protobuf_c_message_free_unpacked(m, NULL);
  m = NULL;
  free(text);
  json_decref(j);
  /* ...and 64 do not. */
  j = deep_member("payload", PBJSON_MAX_DEPTH, 1);
  assert_int_equal(pbjson_decode(j, WKT, 0, &m, &err), -1);
  assert_string_equal(err.reason, "invalid_value_format");
  json_decref(j);

  /* Hostile nesting is refused where it crosses the limit, not recursed into. */
  j = deep_member("list", 2000, 0);
  strcpy(path, "list");
  for (i = 0; i < PBJSON_MAX_DEPTH - 1; i++)
    strcat(path, "[0]");
  check_error(j, WKT, 0, "invalid_value_format", path);
  json_decref(j);
  j = deep_member("value", 2000, 1);
  assert_int_equal(pbjson_decode(j, WKT, 0, &m, &err), -1);
  assert_string_equal(err.reason, "invalid_value_format");
  assert_null(m);
  json_decref(j);

  /* Recursive message types are bounded the same way... */
  text = nested(2000, "{\"child\":", "{}", '}');
  j = load(text);
  assert_int_equal(pbjson_decode(j, CHILD, 0, &m, &err), -1);
  assert_string_equal(err.reason, "invalid_value_format");
  json_decref(j);
  free(text);

  /* ...and so is encoding a message built deeper than the limit (each
   * Child's "children" array is a level of its own). */
  for (i = 0; i < PBJSON_MAX_DEPTH; i++) {
    chain[i] = xmalloc(sizeof *chain[i]);
    pbjsontest__child__init(chain[i]);
    if (i) chain[i - 1]->child = chain[i];
  }
  assert_null(pbjson_encode(&chain[0]->base, 0));
  chain[PBJSON_MAX_DEPTH - 2]->child = NULL;
  j = pbjson_encode(&chain[0]->base, 0);
  assert_non_null(j);
  json_decref(j);
  chain[PBJSON_MAX_DEPTH - 2]->child = chain[PBJSON_MAX_DEPTH - 1];
  protobuf_c_message_free_unpacked(&chain[0]->base, NULL);
}

/* ---- FieldMask ---- */

static void test_field_mask(void **state) {
  Pbjsontest__Wkt *w;
  (void)state;
  w = (Pbjsontest__Wkt *)decode_ok("{\"mask\":\"name,event.external_url,a1\"}", WKT, 0);
  assert_int_equal(w->mask->n_paths, 3);
  assert_string_equal(w->mask->paths[0], "name");
  assert_string_equal(w->mask->paths[1], "event.external_url");
  assert_string_equal(w->mask->paths[2], "a1");
  encode_is(&w->base, PBJSON_OMIT_NULL,
            "{\"times\":[],\"mask\":\"name,event.external_url,a1\",\"values\":[]}");
  /* With PBJSON_CAMEL, paths travel in lowerCamelCase. */
  encode_is(&w->base, PBJSON_OMIT_NULL | PBJSON_CAMEL,
            "{\"times\":[],\"mask\":\"name,event.externalUrl,a1\",\"values\":[]}");
  protobuf_c_message_free_unpacked(&w->base, NULL);

  w = (Pbjsontest__Wkt *)decode_ok("{\"mask\":\"externalUrl,event.sequenceStep\"}", WKT,
                                   PBJSON_CAMEL);
  assert_int_equal(w->mask->n_paths, 2);
  assert_string_equal(w->mask->paths[0], "external_url");
  assert_string_equal(w->mask->paths[1], "event.sequence_step");
  protobuf_c_message_free_unpacked(&w->base, NULL);

  w = (Pbjsontest__Wkt *)decode_ok("{\"mask\":\"\"}", WKT, 0);
  assert_non_null(w->mask);
  assert_int_equal(w->mask->n_paths, 0);
  encode_is(&w->base, PBJSON_OMIT_NULL, "{\"times\":[],\"mask\":\"\",\"values\":[]}");
  protobuf_c_message_free_unpacked(&w->base, NULL);

  decode_fails("{\"mask\":\"a,,b\"}", WKT, 0, "invalid_value_format", "mask");
  decode_fails("{\"mask\":\"a,\"}", WKT, 0, "invalid_value_format", "mask");
  decode_fails("{\"mask\":\"a b\"}", WKT, 0, "invalid_value_format", "mask");
  decode_fails("{\"mask\":[\"a\"]}", WKT, 0, "invalid_type", "mask");
  decode_fails("{\"mask\":5}", WKT, 0, "invalid_type", "mask");
}

/* ---- flags ---- */

static void test_camel_case(void **state) {
  Pbjsontest__Everything *e;
  json_t *j;
  char buf[32];
  (void)state;
  e = (Pbjsontest__Everything *)decode_ok(
      "{\"sequenceStep\":\"s\",\"externalUrl\":\"http://x\",\"entityType\":\"event\","
      "\"scalars\":{\"fInt32\":3},\"propertyRecords\":[{\"name\":\"p\"}]}",
      EVERYTHING, PBJSON_CAMEL);
  assert_string_equal(e->sequence_step, "s");
  assert_string_equal(e->external_url->value, "http://x");
  assert_int_equal(e->scalars->f_int32, 3);
  j = pbjson_encode(&e->base, PBJSON_CAMEL | PBJSON_OMIT_NULL);
  assert_string_equal(json_string_value(json_object_get(j, "sequenceStep")), "s");
  assert_string_equal(json_string_value(json_object_get(j, "externalUrl")), "http://x");
  assert_int_equal(json_integer_value(json_object_get(json_object_get(j, "scalars"), "fInt32")), 3);
  assert_non_null(json_object_get(j, "propertyRecords"));
  assert_null(json_object_get(j, "sequence_step"));
  json_decref(j);
  /* Without the flag, the same message uses the proto names. */
  j = pbjson_encode(&e->base, 0);
  assert_non_null(json_object_get(j, "sequence_step"));
  assert_null(json_object_get(j, "sequenceStep"));
  json_decref(j);
  protobuf_c_message_free_unpacked(&e->base, NULL);

  /* Only the chosen form is accepted. */
  decode_fails("{\"sequence_step\":\"s\"}", EVERYTHING, PBJSON_CAMEL, "unknown_field",
               "sequence_step");
  decode_fails("{\"sequenceStep\":\"s\"}", EVERYTHING, 0, "unknown_field", "sequenceStep");
  decode_fails("{\"propertyRecords\":[{\"rank\":\"x\"}]}", EVERYTHING, PBJSON_CAMEL, "invalid_type",
               "propertyRecords[0].rank");
  decode_fails("{\"choice\":{\"pickText\":\"a\",\"pickNumber\":1}}", EVERYTHING, PBJSON_CAMEL,
               "not_allowed_value", "choice.pickNumber");

  assert_string_equal(pbjson_field_name(&pbjsontest__everything__descriptor.fields[8], PBJSON_CAMEL,
                                        buf, sizeof buf),
                      "sequenceStep");
  assert_string_equal(
      pbjson_field_name(&pbjsontest__everything__descriptor.fields[8], 0, buf, sizeof buf),
      "sequence_step");
  assert_null(
      pbjson_field_name(&pbjsontest__everything__descriptor.fields[8], PBJSON_CAMEL, buf, 5));
}

static void test_omit_null(void **state) {
  Pbjsontest__Everything e = PBJSONTEST__EVERYTHING__INIT;
  (void)state;
  encode_is(&e.base, 0,
            "{\"scalars\":null,\"repeats\":null,\"wrappers\":null,\"wkt\":null,\"choice\":null,"
            "\"status\":\"unspecified\",\"entity_type\":\"unspecified\",\"method\":"
            "\"unspecified\",\"sequence_step\":\"\",\"external_url\":null,"
            "\"property_records\":[]}");
  encode_is(&e.base, PBJSON_OMIT_NULL,
            "{\"status\":\"unspecified\",\"entity_type\":\"unspecified\",\"method\":"
            "\"unspecified\",\"sequence_step\":\"\",\"property_records\":[]}");
}

/* ---- merge, top level, robustness ---- */

static void test_merge(void **state) {
  Pbjsontest__Everything *e;
  json_t *in;
  pbjson_err err;
  (void)state;
  e = (Pbjsontest__Everything *)decode_ok(
      "{\"sequence_step\":\"old\",\"scalars\":{\"f_int32\":1,\"f_string\":\"keep\"},"
      "\"external_url\":\"u\",\"property_records\":[{},{}],\"choice\":{\"pick_text\":\"t\"},"
      "\"wkt\":{\"payload\":{\"a\":1}}}",
      EVERYTHING, 0);
  in = load("{\"sequence_step\":\"new\",\"scalars\":{\"f_int32\":2},\"external_url\":null,"
            "\"property_records\":[{\"name\":\"only\"}],\"choice\":{\"pick_number\":9},"
            "\"wkt\":{\"payload\":{\"b\":2}}}");
  assert_int_equal(pbjson_merge(in, &e->base, 0, &err), 0);
  json_decref(in);
  assert_string_equal(e->sequence_step, "new");
  assert_int_equal(e->scalars->f_int32, 2);
  assert_string_equal(e->scalars->f_string, "keep"); /* sub-messages merge */
  assert_null(e->external_url);                      /* null unsets */
  assert_int_equal(e->n_property_records, 1);        /* lists are replaced */
  assert_int_equal(e->choice->pick_case, PBJSONTEST__CHOICE__PICK_PICK_NUMBER);
  assert_int_equal(e->wkt->payload->n_fields, 1); /* well-known types are replaced */
  assert_string_equal(e->wkt->payload->fields[0]->key, "b");

  /* A failed merge leaves a message that still frees cleanly. */
  in = load("{\"sequence_step\":\"newer\",\"scalars\":{\"f_string\":\"x\",\"f_bool\":1}}");
  assert_int_equal(pbjson_merge(in, &e->base, 0, &err), -1);
  assert_string_equal(err.path, "scalars.f_bool");
  json_decref(in);
  encode_is(&e->base, 0,
            "{\"scalars\":{\"f_double\":0,\"f_float\":0,\"f_int32\":2,\"f_int64\":0,"
            "\"f_uint32\":0,\"f_uint64\":0,\"f_sint32\":0,\"f_sint64\":0,\"f_fixed32\":0,"
            "\"f_fixed64\":0,\"f_sfixed32\":0,\"f_sfixed64\":0,\"f_bool\":false,"
            "\"f_string\":\"x\",\"f_bytes\":\"\"},\"repeats\":null,\"wrappers\":null,"
            "\"wkt\":{\"at\":null,\"times\":[],\"payload\":{\"b\":2},\"value\":null,"
            "\"list\":null,\"mask\":null,\"values\":[]},\"choice\":{\"label\":\"\","
            "\"pick_number\":9},\"status\":\"unspecified\",\"entity_type\":\"unspecified\","
            "\"method\":\"unspecified\",\"sequence_step\":\"newer\",\"external_url\":null,"
            "\"property_records\":[{\"name\":\"only\",\"rank\":0,\"child\":null,"
            "\"children\":[]}]}");
  protobuf_c_message_free_unpacked(&e->base, NULL);
}

static void test_merge_into_stack_message(void **state) {
  Pbjsontest__Choice c = PBJSONTEST__CHOICE__INIT;
  json_t *in = load("{\"label\":\"l\",\"pick_child\":{\"name\":\"c\"}}");
  (void)state;
  assert_int_equal(pbjson_merge(in, &c.base, 0, NULL), 0);
  json_decref(in);
  assert_string_equal(c.label, "l");
  assert_string_equal(c.pick_child->name, "c");
  free(c.label);
  protobuf_c_message_free_unpacked(&c.pick_child->base, NULL);
}

static void test_top_level(void **state) {
  ProtobufCMessage *m = NULL;
  json_t *in;
  pbjson_err err;
  (void)state;
  decode_fails("[]", EVERYTHING, 0, "invalid_type", "");
  decode_fails("\"x\"", EVERYTHING, 0, "invalid_type", "");
  decode_fails("null", EVERYTHING, 0, "invalid_type", "");
  assert_int_equal(pbjson_decode(NULL, EVERYTHING, 0, &m, &err), -1);
  assert_string_equal(err.reason, "invalid_type");
  assert_null(m);
  assert_int_equal(pbjson_decode(NULL, EVERYTHING, 0, &m, NULL), -1);
  /* Well-known types map at the top level too. */
  roundtrip("{\"a\":[1,{\"b\":null}]}", &google__protobuf__struct__descriptor, 0, NULL);
  roundtrip("\"2019-08-24T14:15:22Z\"", &google__protobuf__timestamp__descriptor, 0, NULL);
  roundtrip("[true,\"x\"]", &google__protobuf__list_value__descriptor, 0, NULL);
  roundtrip("\"a,b\"", &google__protobuf__field_mask__descriptor, 0, NULL);
  roundtrip("12", &google__protobuf__int32_value__descriptor, 0, NULL);
  in = load("{}");
  m = decode_json(in, &google__protobuf__empty__descriptor, 0);
  encode_is(m, 0, "{}");
  protobuf_c_message_free_unpacked(m, NULL);
  json_decref(in);
  assert_null(pbjson_encode(NULL, 0));
}

static void test_encode_invalid_utf8(void **state) {
  Pbjsontest__Child c = PBJSONTEST__CHILD__INIT;
  json_t *j;
  /* a stray byte, a lead byte without its tail, a truncated sequence */
  char name[] = "ok\xff\xc3(\xe2\x82";
  (void)state;
  c.name = name;
  j = pbjson_encode(&c.base, 0);
  assert_non_null(j);
  assert_string_equal(json_string_value(json_object_get(j, "name")),
                      "ok\xef\xbf\xbd\xef\xbf\xbd(\xef\xbf\xbd\xef\xbf\xbd");
  json_decref(j);
}

/* Each prefix of a valid document that fails must fail cleanly (ASan checks
 * that nothing partially built leaks). */
static void test_failures_free_partial_work(void **state) {
  const char *const bad[] = {
      "{\"repeats\":{\"r_string\":[\"a\",\"b\",1]}}",
      "{\"repeats\":{\"r_bytes\":[\"AA==\",\"!\"]}}",
      "{\"repeats\":{\"r_child\":[{\"name\":\"a\",\"children\":[{\"name\":\"b\"}]},"
      "{\"name\":\"c\",\"rank\":\"x\"}]}}",
      "{\"wkt\":{\"payload\":{\"a\":\"x\",\"b\":{\"c\":[1,2,{\"d\":\"e\"}]}},\"at\":1}}",
      "{\"wkt\":{\"values\":[{\"a\":[\"x\"]},\"y\"],\"mask\":\"a,b,\"}}",
      "{\"choice\":{\"pick_child\":{\"name\":\"x\"},\"pick_wrapped\":3}}",
      "{\"wrappers\":{\"w_string\":\"a\",\"w_bytes\":\"AA==\",\"w_int32\":\"1\"}}",
      "{\"property_records\":[{\"name\":\"a\"}],\"bogus\":true}",
  };
  size_t i;
  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    json_t *in = load(bad[i]);
    ProtobufCMessage *m = NULL;
    pbjson_err err;
    assert_int_equal(pbjson_decode(in, EVERYTHING, 0, &m, &err), -1);
    assert_null(m);
    json_decref(in);
  }
}

static void test_everything_roundtrip(void **state) {
  const char *text =
      "{\"scalars\":{\"f_double\":-0.5,\"f_float\":1.25,\"f_int32\":1,\"f_int64\":2,"
      "\"f_uint32\":3,\"f_uint64\":4,\"f_sint32\":5,\"f_sint64\":6,\"f_fixed32\":7,"
      "\"f_fixed64\":8,\"f_sfixed32\":9,\"f_sfixed64\":10,\"f_bool\":true,\"f_string\":\"s\","
      "\"f_bytes\":\"YWJj\"},"
      "\"repeats\":{\"r_double\":[],\"r_float\":[],\"r_int32\":[1],\"r_int64\":[],"
      "\"r_uint32\":[],\"r_uint64\":[],\"r_sint32\":[],\"r_sint64\":[],\"r_fixed32\":[],"
      "\"r_fixed64\":[],\"r_sfixed32\":[],\"r_sfixed64\":[],\"r_bool\":[],\"r_string\":[],"
      "\"r_bytes\":[],\"r_status\":[\"rejected\"],\"r_child\":[]},"
      "\"wrappers\":{\"w_double\":null,\"w_float\":1.5,\"w_int64\":null,\"w_uint64\":5,"
      "\"w_int32\":null,\"w_uint32\":null,\"w_bool\":true,\"w_string\":\"w\",\"w_bytes\":null},"
      "\"wkt\":{\"at\":\"2019-08-24T14:15:22.500Z\",\"times\":[\"1970-01-01T00:00:00Z\"],"
      "\"payload\":{\"k\":\"v\"},\"value\":1,\"list\":[],\"mask\":\"a\",\"values\":[]},"
      "\"choice\":{\"label\":\"c\",\"pick_wrapped\":null},"
      "\"status\":\"approved\",\"entity_type\":\"event\",\"method\":\"post\","
      "\"sequence_step\":\"step\",\"external_url\":\"https://example.com\","
      "\"property_records\":[{\"name\":\"p\",\"rank\":1,\"child\":null,\"children\":[]}]}";
  (void)state;
  roundtrip(text, EVERYTHING, 0,
            /* the oneof member set to null is unset, so it is not shown */
            "{\"scalars\":{\"f_double\":-0.5,\"f_float\":1.25,\"f_int32\":1,\"f_int64\":2,"
            "\"f_uint32\":3,\"f_uint64\":4,\"f_sint32\":5,\"f_sint64\":6,\"f_fixed32\":7,"
            "\"f_fixed64\":8,\"f_sfixed32\":9,\"f_sfixed64\":10,\"f_bool\":true,"
            "\"f_string\":\"s\",\"f_bytes\":\"YWJj\"},"
            "\"repeats\":{\"r_double\":[],\"r_float\":[],\"r_int32\":[1],\"r_int64\":[],"
            "\"r_uint32\":[],\"r_uint64\":[],\"r_sint32\":[],\"r_sint64\":[],\"r_fixed32\":[],"
            "\"r_fixed64\":[],\"r_sfixed32\":[],\"r_sfixed64\":[],\"r_bool\":[],"
            "\"r_string\":[],\"r_bytes\":[],\"r_status\":[\"rejected\"],\"r_child\":[]},"
            "\"wrappers\":{\"w_double\":null,\"w_float\":1.5,\"w_int64\":null,\"w_uint64\":5,"
            "\"w_int32\":null,\"w_uint32\":null,\"w_bool\":true,\"w_string\":\"w\","
            "\"w_bytes\":null},"
            "\"wkt\":{\"at\":\"2019-08-24T14:15:22.500Z\",\"times\":[\"1970-01-01T00:00:00Z\"],"
            "\"payload\":{\"k\":\"v\"},\"value\":1,\"list\":[],\"mask\":\"a\",\"values\":[]},"
            "\"choice\":{\"label\":\"c\"},"
            "\"status\":\"approved\",\"entity_type\":\"event\",\"method\":\"post\","
            "\"sequence_step\":\"step\",\"external_url\":\"https://example.com\","
            "\"property_records\":[{\"name\":\"p\",\"rank\":1,\"child\":null,\"children\":[]}]}");
  /* The customer dialect's time form. */
  roundtrip("{\"wkt\":{\"at\":\"2019-08-24 14:15:22\"}}", EVERYTHING,
            PBJSON_SQL_TIME | PBJSON_OMIT_NULL,
            "{\"wkt\":{\"at\":\"2019-08-24 14:15:22\",\"times\":[],\"values\":[]},"
            "\"status\":\"unspecified\",\"entity_type\":\"unspecified\",\"method\":"
            "\"unspecified\",\"sequence_step\":\"\",\"property_records\":[]}");
}

/* Numbers keep their form: integers stay integers, 2^53 is the largest
 * integer a Value takes exactly and one more is refused, reals print as
 * the shortest text that reads back the same. */
static void test_exact_numbers(void **state) {
  (void)state;
  roundtrip("{\"i\":42,\"z\":0,\"n\":-7,\"big\":9007199254740992,\"r\":0.1,\"h\":1.5}",
            &google__protobuf__struct__descriptor, 0, NULL);
  json_t *j = json_loads("{\"a\":9007199254740993}", 0, NULL);
  ProtobufCMessage *m = NULL;
  pbjson_err err = {0};
  assert_int_equal(pbjson_decode(j, &google__protobuf__struct__descriptor, 0, &m, &err), -1);
  assert_string_equal(err.path, "a");
  assert_non_null(strstr(err.msg, "2^53"));
  json_decref(j);
  /* Each real on its own: one needing 17 digits leaves the others short. */
  j = json_pack("[f,f,f,f,f,f,f,f]", 0.1, 0.30000000000000004, 1e300, 42.0, 1e20, -0.0, 1e-7,
                -2.5e-300);
  char *text = jsontext_dumps(j, JSON_COMPACT);
  assert_string_equal(text, "[0.1,0.30000000000000004,1e300,42.0,1e20,-0.0,1e-7,-2.5e-300]");
  free(text);
  json_decref(j);
  j = json_pack("{s:f, s:[f]}", "a", 0.1, "b", 2.5);
  text = jsontext_dumps(j, JSON_COMPACT);
  assert_string_equal(text, "{\"a\":0.1,\"b\":[2.5]}");
  free(text);
  json_decref(j);
}

/* Struct text -> message -> jsontext_dumps text, compared byte for byte. */
static void struct_text_is(const char *in, const char *want) {
  ProtobufCMessage *m = decode_ok(in, &google__protobuf__struct__descriptor, 0);
  json_t *j = pbjson_encode(m, 0);
  char *text = jsontext_dumps(j, JSON_COMPACT);
  assert_non_null(text);
  assert_string_equal(text, want);
  free(text);
  json_decref(j);
  protobuf_c_message_free_unpacked(m, NULL);
}

/* The forms a Value number takes: an integral value within 2^53 is an
 * integer whatever its spelling, anything else the shortest real. */
static void test_number_forms(void **state) {
  (void)state;
  struct_text_is("{\"a\":42,\"b\":-42,\"c\":0,\"d\":-0,\"e\":1.5,\"f\":-1.5}",
                 "{\"a\":42,\"b\":-42,\"c\":0,\"d\":0,\"e\":1.5,\"f\":-1.5}");
  struct_text_is("{\"a\":1.0,\"b\":1e2,\"c\":-0.0,\"d\":2.5e1,\"e\":1E-2}",
                 "{\"a\":1,\"b\":100,\"c\":0,\"d\":25,\"e\":0.01}");
  struct_text_is("{\"max\":9007199254740992,\"min\":-9007199254740992,\"l\":[9007199254740991]}",
                 "{\"max\":9007199254740992,\"min\":-9007199254740992,\"l\":[9007199254740991]}");
  /* A real beyond 2^53 stays a real: the client sent an approximation. */
  struct_text_is("{\"a\":1e20,\"b\":-1.5e300,\"c\":0.1,\"d\":0.30000000000000004}",
                 "{\"a\":1e20,\"b\":-1.5e300,\"c\":0.1,\"d\":0.30000000000000004}");
  /* One past 2^53, either sign, at any depth: refused, naming the member. */
  decode_fails("{\"a\":9007199254740993}", &google__protobuf__struct__descriptor, 0, "out_of_range",
               "a");
  decode_fails("{\"a\":-9007199254740993}", &google__protobuf__struct__descriptor, 0,
               "out_of_range", "a");
  decode_fails("{\"a\":{\"b\":[1,9223372036854775807]}}", &google__protobuf__struct__descriptor, 0,
               "out_of_range", "a.b[1]");
  decode_fails("{\"payload\":{\"x\":[{\"y\":-9223372036854775807}]}}", WKT, 0, "out_of_range",
               "payload.x[0].y");
  decode_fails("{\"value\":9007199254740993}", WKT, 0, "out_of_range", "value");
  /* double fields hold no more */
  FAILS("{\"scalars\":{\"f_double\":9007199254740993}}", "out_of_range", "scalars.f_double");
}

/* Apart from reals, jsontext_dumps writes what json_dumps writes. */
static void test_dumps_matches_jansson(void **state) {
  static const size_t flag_sets[] = {
      JSON_COMPACT | JSON_ENCODE_ANY, JSON_COMPACT | JSON_ENSURE_ASCII,
      JSON_COMPACT | JSON_ESCAPE_SLASH | JSON_SORT_KEYS, JSON_INDENT(2), 0};
  const char *doc =
      "{\"z\":\"a\\\"b\\\\c\\/d\\b\\f\\n\\r\\t\\u0001\\u001f\\u007f\",\"a\":[],\"m\":{},"
      "\"u\":\"\\u00e9\\u20ac\\ud83d\\ude00\",\"n\":[null,true,false,0,-1,"
      "9223372036854775807,-9223372036854775808,{\"k\":[[{}]]}],\"\\u00e9\":1,"
      "\"r\":0.5}";
  json_t *j = load(doc);
  (void)state;
  for (size_t i = 0; i < sizeof flag_sets / sizeof *flag_sets; i++) {
    char *want = json_dumps(j, flag_sets[i]), *got = jsontext_dumps(j, flag_sets[i]);
    assert_non_null(got);
    assert_string_equal(got, want);
    free(want);
    free(got);
  }
  json_decref(j);
  /* Scalars only with JSON_ENCODE_ANY, as json_dumps. */
  j = json_real(0.1);
  assert_null(jsontext_dumps(j, JSON_COMPACT));
  char *text = jsontext_dumps(j, JSON_COMPACT | JSON_ENCODE_ANY);
  assert_string_equal(text, "0.1");
  free(text);
  json_decref(j);
  char buf[40];
  assert_int_equal(jsontext_real(NAN, buf, sizeof buf), -1);
  assert_int_equal(jsontext_real(1.0, buf, 8), -1);
  /* positional for exponents -4..15, as Python's repr */
  static const struct {
    double d;
    const char *text;
  } reals[] = {{123456789.0, "123456789.0"},
               {100.0, "100.0"},
               {0.001, "0.001"},
               {0.0001, "0.0001"},
               {0.00001, "1e-5"},
               {1e15, "1000000000000000.0"},
               {1e16, "1e16"},
               {-1.25e-5, "-1.25e-5"},
               {9007199254740994.0, "9007199254740994.0"},
               {0.1 + 0.2, "0.30000000000000004"},
               {2.0 / 3, "0.6666666666666666"}};
  for (size_t i = 0; i < sizeof reals / sizeof *reals; i++) {
    assert_int_equal(jsontext_real(reals[i].d, buf, sizeof buf), 0);
    assert_string_equal(buf, reals[i].text);
  }
  assert_int_equal(jsontext_real(1.7976931348623157e308, buf, sizeof buf), 0);
  assert_string_equal(buf, "1.7976931348623157e308");
  assert_int_equal(jsontext_real(5e-324, buf, sizeof buf), 0);
  assert_string_equal(buf, "5e-324");
}

/* Finds the number jansson refused, and where it stands. */
static void unkeepable_is(const char *text, unsigned style, const char *path, const char *token) {
  char p[64], t[32];
  json_error_t je;
  json_t *j = json_loads(text, 0, &je);
  int rc = pbjson_find_unkeepable(text, strlen(text), style, p, sizeof p, t, sizeof t);
  if (!path) {
    assert_int_equal(rc, -1);
    json_decref(j);
    return;
  }
  /* exactly the texts jansson refuses for a number */
  assert_null(j);
  assert_int_equal(json_error_code(&je), json_error_numeric_overflow);
  assert_int_equal(rc, 0);
  assert_string_equal(p, path);
  assert_string_equal(t, token);
}

static void test_find_unkeepable(void **state) {
  (void)state;
  unkeepable_is("{\"a\":18446744073709551616}", PBJSON_PATH_DOTTED, "a", "18446744073709551616");
  unkeepable_is("{\"a\":[1,{\"b\":-9223372036854775809}]}", PBJSON_PATH_DOTTED, "a[1].b",
                "-9223372036854775809");
  unkeepable_is("{\"a\":[1,{\"b\":-9223372036854775809}]}", PBJSON_PATH_POINTER, "/a/1/b",
                "-9223372036854775809");
  unkeepable_is("{\"x\":{},\"y\":[],\"\":\"s\\\"}\",\"a/~\\u00e9\":[true,null,1e400]}",
                PBJSON_PATH_POINTER, "/a~1~0\xc3\xa9/2", "1e400");
  unkeepable_is(" [ 0 , -1e400 ] ", PBJSON_PATH_DOTTED, "[1]", "-1e400");
  unkeepable_is("1e999", PBJSON_PATH_DOTTED, "", "1e999");
  /* the token is cut to fit */
  unkeepable_is("{\"k\":1000000000000000000000000000000000000000000000000}", PBJSON_PATH_DOTTED,
                "k", "1000000000000000000000000000000");
  /* keepable numbers, syntax errors first, and nothing at all */
  unkeepable_is("{\"a\":9223372036854775807,\"b\":1e308,\"c\":1e-400}", 0, NULL, NULL);
  unkeepable_is("{\"a\":1,}", 0, NULL, NULL);
  unkeepable_is("{\"a\" 1e400}", 0, NULL, NULL);
  unkeepable_is("[01e400]", 0, NULL, NULL);
  unkeepable_is("{\"a\":\"\\x\",\"b\":1e400}", 0, NULL, NULL);
  unkeepable_is("", 0, NULL, NULL);
  unkeepable_is("{\"\xab\":1e400}", 0, NULL, NULL);
  unkeepable_is("[1e400\x83]", 0, NULL, NULL);
  unkeepable_is("[\"\xed\xa0\x80\",1e400]", 0, NULL, NULL);
  unkeepable_is("{\"\xc3\xa9\":1e400}", 0, "\xc3\xa9", "1e400");
  /* a long real that reads is kept; a long one that overflows is not */
  char longs[1200] = "[0.";
  memset(longs + 3, '0', 1000);
  strcpy(longs + 1003, "1]");
  unkeepable_is(longs, 0, NULL, NULL);
  longs[1] = '1';
  longs[2] = '0';
  strcpy(longs + 1003, "0.5]"); /* 1e1002 */
  unkeepable_is(longs, PBJSON_PATH_POINTER, "/0", "1000000000000000000000000000000");
  char deep[600];
  memset(deep, '[', 300);
  strcpy(deep + 300, "1e400");
  unkeepable_is(deep, 0, NULL, NULL);
}

/* NaN and infinities in free-form values are found, with where. */
static void test_find_nonfinite(void **state) {
  char path[64];
  (void)state;
  ProtobufCMessage *m =
      decode_ok("{\"a\":[1,{\"b\":2.5}],\"c\":\"NaN\"}", &google__protobuf__struct__descriptor, 0);
  assert_int_equal(pbjson_find_nonfinite(m, path, sizeof path), 0);
  /* reach into the decoded Struct: a -> list[1] -> struct b */
  Google__Protobuf__Struct *st = (Google__Protobuf__Struct *)m;
  Google__Protobuf__Value *a = st->fields[0]->value;
  Google__Protobuf__Value *b = a->list_value->values[1]->struct_value->fields[0]->value;
  for (int i = 0; i < 3; i++) {
    b->number_value = i == 0 ? NAN : i == 1 ? INFINITY : -INFINITY;
    assert_int_equal(pbjson_find_nonfinite(m, path, sizeof path), 1);
    assert_string_equal(path, ".a[1].b");
    assert_int_equal(pbjson_find_nonfinite(&a->base, path, sizeof path), 1);
    assert_string_equal(path, "[1].b");
    assert_int_equal(pbjson_find_nonfinite(&b->base, path, sizeof path), 1);
    assert_string_equal(path, "");
  }
  /* cut to fit */
  assert_int_equal(pbjson_find_nonfinite(m, path, 4), 1);
  assert_true(strlen(path) < 4);
  /* other messages are not looked into */
  assert_int_equal(pbjson_find_nonfinite(NULL, path, sizeof path), 0);
  protobuf_c_message_free_unpacked(m, NULL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_exact_numbers),
      cmocka_unit_test(test_number_forms),
      cmocka_unit_test(test_dumps_matches_jansson),
      cmocka_unit_test(test_find_unkeepable),
      cmocka_unit_test(test_find_nonfinite),
      cmocka_unit_test(test_scalar_defaults_always_emitted),
      cmocka_unit_test(test_scalar_values),
      cmocka_unit_test(test_integer_limits),
      cmocka_unit_test(test_integer_spellings),
      cmocka_unit_test(test_integer_bad_input),
      cmocka_unit_test(test_bool_string_bad_input),
      cmocka_unit_test(test_bytes),
      cmocka_unit_test(test_floating_point),
      cmocka_unit_test(test_enum_names),
      cmocka_unit_test(test_enum_bad_input),
      cmocka_unit_test(test_repeated_every_type),
      cmocka_unit_test(test_nested_messages_and_paths),
      cmocka_unit_test(test_unknown_members),
      cmocka_unit_test(test_oneof),
      cmocka_unit_test(test_wrappers),
      cmocka_unit_test(test_timestamp_input_forms),
      cmocka_unit_test(test_timestamp_output_forms),
      cmocka_unit_test(test_timestamp_bad_input),
      cmocka_unit_test(test_time_helpers),
      cmocka_unit_test(test_struct_value_list),
      cmocka_unit_test(test_struct_bad_strings),
      cmocka_unit_test(test_depth_limit),
      cmocka_unit_test(test_field_mask),
      cmocka_unit_test(test_camel_case),
      cmocka_unit_test(test_omit_null),
      cmocka_unit_test(test_merge),
      cmocka_unit_test(test_merge_into_stack_message),
      cmocka_unit_test(test_top_level),
      cmocka_unit_test(test_encode_invalid_utf8),
      cmocka_unit_test(test_failures_free_partial_work),
      cmocka_unit_test(test_everything_roundtrip),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
