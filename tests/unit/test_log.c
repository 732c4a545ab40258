/* test_log.c - log lines stay one valid JSON object whatever they carry:
 * quotes, controls, invalid UTF-8, values too long for a line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "utf8.h"

/* Runs fn with stderr sent to a pipe; returns the one line it wrote, parsed. */
static json_t *capture(void (*fn)(const void *), const void *arg) {
  int fds[2], saved = dup(STDERR_FILENO);
  assert_int_equal(pipe(fds), 0);
  dup2(fds[1], STDERR_FILENO);
  close(fds[1]);
  fn(arg);
  dup2(saved, STDERR_FILENO);
  close(saved);
  static char buf[1 << 16];
  ssize_t n = read(fds[0], buf, sizeof buf - 1);
  close(fds[0]);
  assert_true(n > 0);
  buf[n] = '\0';
  assert_int_equal(buf[n - 1], '\n');
  assert_ptr_equal(strchr(buf, '\n'), buf + n - 1); /* exactly one line */
  json_error_t err;
  json_t *j = json_loads(buf, 0, &err);
  if (!j) fail_msg("not JSON (%s): %s", err.text, buf);
  return j;
}

static void write_fields(const void *arg) {
  const log_field *f = arg;
  log_fields(LOG_LEVEL_WARN, "m\"sg", f, 4);
}

static void test_escapes_and_types(void **state) {
  (void)state;
  const log_field f[4] = {
      {.key = "s", .kind = LOG_STR, .s = "a\"b\\c\n\x01\xff\xc3\xa9"},
      {.key = "i", .kind = LOG_INT, .i = -42},
      {.key = "d", .kind = LOG_NUM, .d = 1.5},
      {.key = "r", .kind = LOG_RAW, .s = "[1,{\"x\":null}]"},
  };
  json_t *j = capture(write_fields, f);
  assert_string_equal(json_string_value(json_object_get(j, "level")), "warn");
  assert_string_equal(json_string_value(json_object_get(j, "msg")), "m\"sg");
  assert_string_equal(json_string_value(json_object_get(j, "s")),
                      "a\"b\\c\n\x01\xef\xbf\xbd\xc3\xa9");
  assert_int_equal(json_integer_value(json_object_get(j, "i")), -42);
  assert_true(json_number_value(json_object_get(j, "d")) == 1.5);
  assert_int_equal(json_array_size(json_object_get(j, "r")), 2);
  json_decref(j);
}

static void write_long(const void *arg) {
  const char *big = arg;
  const log_field f[3] = {
      {.key = "a", .kind = LOG_INT, .i = 1},
      {.key = "big", .kind = LOG_STR, .s = big},
      {.key = "after", .kind = LOG_INT, .i = 2},
  };
  log_fields(LOG_LEVEL_ERROR, "long", f, 3);
}

static void test_overlong_value_is_cut(void **state) {
  (void)state;
  /* Escapes make it ~6x longer than the line could hold. */
  size_t n = 20000;
  char *big = malloc(n + 1);
  assert_non_null(big);
  for (size_t i = 0; i < n; i++)
    big[i] = i % 3 ? '\x02' : '"';
  big[n] = '\0';
  json_t *j = capture(write_long, big);
  assert_int_equal(json_integer_value(json_object_get(j, "a")), 1);
  const char *cut = json_string_value(json_object_get(j, "big"));
  assert_non_null(cut);
  assert_true(strlen(cut) > 100 && strlen(cut) < n);
  assert_null(json_object_get(j, "after"));
  json_decref(j);
  free(big);
}

static void write_json(const void *arg) {
  (void)arg;
  log_json(LOG_LEVEL_INFO, "j",
           json_pack("{s:s, s:i, s:b, s:[i]}", "k", "v", "n", 7, "t", 1, "a", 3));
}

static void test_log_json_members(void **state) {
  (void)state;
  json_t *j = capture(write_json, NULL);
  assert_string_equal(json_string_value(json_object_get(j, "k")), "v");
  assert_int_equal(json_integer_value(json_object_get(j, "n")), 7);
  assert_true(json_is_true(json_object_get(j, "t")));
  assert_int_equal(json_integer_value(json_array_get(json_object_get(j, "a"), 0)), 3);
  json_decref(j);
}

static void test_utf8(void **state) {
  (void)state;
  const unsigned char ok[] = "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80";
  assert_int_equal(utf8_seq(ok, 9), 2);
  assert_int_equal(utf8_seq(ok + 2, 7), 3);
  assert_int_equal(utf8_seq(ok + 5, 4), 4);
  assert_int_equal(utf8_seq(ok + 5, 3), 0);                                /* cut short */
  assert_int_equal(utf8_seq((const unsigned char *)"\xc0\xaf", 2), 0);     /* overlong */
  assert_int_equal(utf8_seq((const unsigned char *)"\xed\xa0\x80", 3), 0); /* surrogate */
  char s[] = "a\xff\xc3";
  utf8_scrub(s);
  assert_string_equal(s, "a??");
  json_t *j = utf8_json("x\xfey", 3);
  assert_string_equal(json_string_value(j), "x\xef\xbf\xbdy");
  json_decref(j);
}

int main(void) {
  log_init("test", "debug");
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_escapes_and_types),
      cmocka_unit_test(test_overlong_value_is_cut),
      cmocka_unit_test(test_log_json_members),
      cmocka_unit_test(test_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
