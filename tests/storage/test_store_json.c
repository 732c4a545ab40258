/* test_store_json.c - store_json_load reads every text exactly as json_loadb
 * does: the same values where both read it, NULL where jansson refuses it
 * (the fast reader gives up on anything unusual and defers to jansson). */
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

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(same_as_jansson)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
