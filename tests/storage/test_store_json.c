/* test_store_json.c - store_json_load reads every text exactly as json_loadb
 * does: the same values where both read it, NULL where jansson refuses it
 * (the fast reader gives up on anything unusual and defers to jansson); and
 * store_json_dumps writes exactly json_dumps(JSON_COMPACT)'s text. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "store_int.h"

static const char *const texts[] = {
    "{}",
    "[]",
    " \t\r\n{ } ",
    "{\"a\":1,\"b\":-2,\"c\":0,\"d\":-0,\"e\":123456789012345678}",
    "{\"big\":1234567890123456789,\"huge\":99999999999999999999}",
    "{\"r\":42.5,\"s\":-0.25,\"t\":1e5,\"u\":1E-3,\"v\":2.5e+10,\"w\":0.0}",
    "{\"inf\":1e400}",
    "{\"tiny\":1e-400}",
    "{\"s\":\"plain\",\"e\":\"{\\\"source\\\":\\\"bench\\\"}\",\"x\":\"a\\\\b\\/"
    "c\\b\\f\\n\\r\\t\"}",
    "{\"u\":\"\\u00e9\\ud83d\\ude00\",\"z\":\"\\u0000\"}",
    "{\"utf8\":\"caf\xc3\xa9\"}",
    "{\"bad\":\"\xff\"}",
    "{\"k\":true,\"f\":false,\"n\":null,\"a\":[1,[2,[3,{}]],\"x\"]}",
    "{\"dup\":1,\"dup\":2}",
    "{\"a\":01}",
    "{\"a\":1.}",
    "{\"a\":.5}",
    "{\"a\":-}",
    "{\"a\":1e}",
    "{\"a\":tru}",
    "{\"a\":1,}",
    "[1,]",
    "{\"a\" 1}",
    "{\"a\":1}x",
    "{\"a\":1}{}",
    "\"top\"",
    "42",
    "",
    "{\"ctl\":\"a\tb\"}",
    "{\"unterminated\":\"abc",
    "{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":{\"f\":{\"g\":{\"h\":{\"i\":{\"j\":[[[[[[[[[[[[[[[[[[[["
    "[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}}}}}}}}}}",
    "{\"event_id\":\"5e000000000000000000000000\",\"data\":\"{\\\"source\\\":\\\"bench\\\"}\","
    "\"created_at\":1796358686788001,\"state\":1,\"property_records\":[{\"property_id\":"
    "\"amount\",\"property_value\":42.5}],\"id\":\"5e000000000000000000000000\"}",
};

static void same_as_jansson(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    json_error_t jerr;
    size_t len = strlen(texts[i]);
    json_t *want = json_loadb(texts[i], len, 0, &jerr);
    json_t *got = store_json_load(texts[i], len);
    if (!want) {
      assert_null(got);
      continue;
    }
    assert_non_null(got);
    assert_true(json_equal(want, got));
    /* Integers stay integers and reals reals (json_equal compares values). */
    char *a = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *b = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    assert_string_equal(a, b);
    free(a);
    free(b);
    json_decref(want);
    json_decref(got);
  }
}

static void assert_dumps_same(const json_t *v) {
  char *want = json_dumps(v, JSON_COMPACT);
  char *got = store_json_dumps(v);
  if (!want) {
    assert_null(got);
    return;
  }
  assert_non_null(got);
  assert_string_equal(want, got);
  free(want);
  free(got);
}

static void writes_as_jansson(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof texts / sizeof *texts; i++) {
    json_error_t jerr;
    json_t *v = json_loadb(texts[i], strlen(texts[i]), JSON_ALLOW_NUL, &jerr);
    if (!v) continue;
    assert_dumps_same(v);
    json_decref(v);
  }
  /* Reals: exponents, ".0", the shortest and the longest forms; and every
   * control character and escape in keys and values. */
  static const double reals[] = {
      0.0,         -0.0, 1.0,     -1.5,     42.5,   0.1,
      1e21,        1e-7, 1.5e300, 2.5e-300, 5e-324, 1.7976931348623157e308,
      123456789.0, 1e16, 1e17,    -3.14159, 100.0,  1e100};
  json_t *doc = json_object(), *arr = json_array();
  for (size_t i = 0; i < sizeof reals / sizeof *reals; i++)
    json_array_append_new(arr, json_real(reals[i]));
  uint64_t x = 0x9E3779B97F4A7C15ULL;
  for (int i = 0; i < 2000; i++) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    double d;
    memcpy(&d, &x, sizeof d);
    if (d == d && d - d == 0) json_array_append_new(arr, json_real(d));
    json_array_append_new(arr, json_integer((json_int_t)x));
  }
  json_object_set_new(doc, "reals", arr);
  char ctl[40] = {0};
  for (int c = 1; c < 0x20; c++)
    ctl[c - 1] = (char)c;
  strcat(ctl, "\"\\/\x7f");
  json_object_set_new(doc, ctl, json_string(ctl));
  json_object_set_new(doc, "nul", json_stringn("a\0b", 3));
  json_object_set_new(doc, "min", json_integer(INT64_MIN));
  json_object_set_new(doc, "nested",
                      json_pack("{s:[{s:[]},{}],s:null,s:b,s:b}", "a", "b", "n", "t", 1, "f", 0));
  assert_dumps_same(doc); /* all ASCII: the fast writer's own text */
  json_object_set_new(doc, "utf8", json_string("caf\xc3\xa9"));
  assert_dumps_same(doc); /* left to json_dumps */
  json_decref(doc);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(same_as_jansson),
                                     cmocka_unit_test(writes_as_jansson)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
