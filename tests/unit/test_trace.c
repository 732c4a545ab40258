/* test_trace.c - W3C traceparent: what is continued, what starts anew. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>

#include <cmocka.h>

#include "trace.h"

#define TP "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

static int begin(trace_ctx *t, const char *tp, const char *ts) {
  return trace_begin(t, tp, tp ? strlen(tp) : 0, ts, ts ? strlen(ts) : 0);
}

static void test_continues_a_valid_parent(void **state) {
  (void)state;
  trace_ctx t;
  assert_int_equal(begin(&t, TP, "congo=t61rcWkgMzE"), 1);
  assert_string_equal(t.trace_hex, "4bf92f3577b34da6a3ce929d0e0e4736");
  assert_true(trace_has_parent(&t));
  assert_string_not_equal(t.span_hex, "00f067aa0ba902b7"); /* our own span */
  assert_string_equal(t.state, "congo=t61rcWkgMzE");
  char out[56];
  trace_header(&t, out);
  assert_int_equal(strlen(out), 55);
  assert_memory_equal(out, "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36);
  assert_string_equal(out + 36 + 16, "-01");
  assert_memory_equal(out + 36, t.span_hex, 16);
}

static void test_flags_zero_is_valid(void **state) {
  (void)state;
  trace_ctx t;
  assert_int_equal(begin(&t, "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", NULL), 1);
  assert_int_equal(t.flags, 0);
}

static void test_invalid_starts_a_new_trace(void **state) {
  (void)state;
  static const char *const bad[] = {
      NULL,
      "",
      "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", /* unknown version layout */
      "00-00000000000000000000000000000000-00f067aa0ba902b7-01", /* zero trace id */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", /* zero parent */
      "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", /* upper case */
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-0g",
      "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
  };
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    trace_ctx t;
    assert_int_equal(begin(&t, bad[i], "k=v"), 0);
    assert_false(trace_has_parent(&t));
    assert_int_equal(strlen(t.trace_hex), 32);
    assert_string_not_equal(t.trace_hex, "00000000000000000000000000000000");
    assert_string_equal(t.state, ""); /* tracestate only travels with its parent */
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_continues_a_valid_parent),
      cmocka_unit_test(test_flags_zero_is_valid),
      cmocka_unit_test(test_invalid_starts_a_new_trace),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
