/* test_creds.c - the credentials file parser and lookup. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "creds.h"

static creds *parse_ok(const char *text) {
  creds *c = NULL;
  creds_err err = {0};
  int rc = creds_parse(text, strlen(text), "creds.txt", &c, &err);
  if (rc != 0) fprintf(stderr, "unexpected error: %s\n", err.msg);
  assert_int_equal(rc, 0);
  return c;
}

static void expect_error(const char *text, int line, const char *needle) {
  creds *c = NULL;
  creds_err err = {0};
  assert_int_equal(creds_parse(text, strlen(text), "creds.txt", &c, &err), -1);
  assert_null(c);
  assert_int_equal(err.line, line);
  if (!strstr(err.msg, needle)) fail_msg("\"%s\" does not mention \"%s\"", err.msg, needle);
  char where[64];
  snprintf(where, sizeof where, "creds.txt:%d:", line);
  if (line && strncmp(err.msg, where, strlen(where)) != 0)
    fail_msg("\"%s\" does not start with %s", err.msg, where);
}

static void test_spec_example(void **state) {
  (void)state;
  creds *c = parse_ok("# tenant   scheme   secret\n"
                      "acme       bearer   sk:6f1c0e     # Authorization: Bearer sk:6f1c0e\n"
                      "\n"
                      "acme       basic    crm:s3cret\n"
                      "globex     bearer   "
                      "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n");
  assert_int_equal(creds_count(c), 3);
  const char *h = "Bearer sk:6f1c0e";
  assert_string_equal(creds_lookup(c, h, strlen(h)), "acme");
  h = "Basic Y3JtOnMzY3JldA=="; /* crm:s3cret */
  assert_string_equal(creds_lookup(c, h, strlen(h)), "acme");
  h = "Bearer test"; /* sha256("test") = 9f86d0... */
  assert_string_equal(creds_lookup(c, h, strlen(h)), "globex");
  h = "bearer test"; /* the scheme is case-insensitive */
  assert_string_equal(creds_lookup(c, h, strlen(h)), "globex");
  creds_free(c);
}

static void test_lookup_misses(void **state) {
  (void)state;
  creds *c = parse_ok("acme bearer sk:abc\nacme basic u:p\n");
  const char *bad[] = {"",
                       "Bearer",
                       "Bearer ",
                       "Bearer sk:abd",
                       "Bearer sk:ab",
                       "Basic !!!!",
                       "Basic dTpx",
                       "Token sk:abc",
                       "Basic c2s6YWJj" /* sk:abc */,
                       "Bearer u:p"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    assert_null(creds_lookup(c, bad[i], strlen(bad[i])));
  assert_null(creds_lookup(c, NULL, 0));
  const char *ok = "Basic dTpw"; /* u:p, unpadded length 4 */
  assert_string_equal(creds_lookup(c, ok, strlen(ok)), "acme");
  creds_free(c);
}

static void test_bad_lines(void **state) {
  (void)state;
  expect_error("acme bearer\n", 1, "tenant scheme secret");
  expect_error("# ok\nacme token sk:1\n", 2, "unknown scheme");
  expect_error("acme bearer a\n\nacme basic nocolon\n", 3, "user:password");
  expect_error("acme bearer sha256:abc\n", 1, "64 hex");
  expect_error("acme bearer sk:1 extra\n", 1, "unexpected \"extra\"");
  expect_error("ac/me bearer sk:1\n", 1, "bad tenant");
  expect_error("# nothing\n\n", 0, "no credentials");
  expect_error("", 0, "no credentials");
  char nul[] = "acme bearer sk:1\nacme bearer s\0k\n";
  creds *c = NULL;
  creds_err err;
  assert_int_equal(creds_parse(nul, sizeof nul - 1, "creds.txt", &c, &err), -1);
  assert_int_equal(err.line, 2);
}

static void test_load_missing_file(void **state) {
  (void)state;
  creds *c = NULL;
  creds_err err;
  assert_int_equal(creds_load("/nonexistent/creds", &c, &err), -1);
  assert_non_null(strstr(err.msg, "/nonexistent/creds"));
  assert_int_equal(creds_load(NULL, &c, &err), -1);
  assert_non_null(strstr(err.msg, "EVENTS_CREDENTIALS"));
}

static void test_crlf_and_tabs(void **state) {
  (void)state;
  creds *c = parse_ok("acme\tbearer\tsk:tab\r\n");
  const char *h = "Bearer sk:tab";
  assert_string_equal(creds_lookup(c, h, strlen(h)), "acme");
  creds_free(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_spec_example),  cmocka_unit_test(test_lookup_misses),
      cmocka_unit_test(test_bad_lines),     cmocka_unit_test(test_load_missing_file),
      cmocka_unit_test(test_crlf_and_tabs),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
