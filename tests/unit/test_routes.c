/* test_routes.c - path template matching over the route table. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gw.h"

static const gw_route table[] = {
    {.method = "GET", .tmpl = "/v1/objects/{objectId}/events"},
    {.method = "POST", .tmpl = "/v1/objects/{objectId}/events"},
    {.method = "GET", .tmpl = "/v1/objects/{objectId}/events/{eventId}"},
    {.method = "GET", .tmpl = "/api/v1/event/category"},
    {.method = "GET", .tmpl = "/api/v1/event/category/{event_category_id}"},
};
#define N (sizeof table / sizeof *table)

static void test_params(void **state) {
  (void)state;
  gw_req req = {0};
  int status = 0;
  const gw_route *r = gw_route_match(table, N, "GET", "/v1/objects/meet/events/e1", &req, &status);
  assert_ptr_equal(r, &table[2]);
  assert_int_equal(req.n_params, 2);
  assert_string_equal(gw_param(&req, "objectId"), "meet");
  assert_string_equal(gw_param(&req, "eventId"), "e1");
  assert_null(gw_param(&req, "other"));
  gw_req_free_params(&req);
}

static void test_method_picks_route(void **state) {
  (void)state;
  gw_req req = {0};
  int status = 0;
  assert_ptr_equal(gw_route_match(table, N, "POST", "/v1/objects/x/events", &req, &status),
                   &table[1]);
  gw_req_free_params(&req);
  assert_null(gw_route_match(table, N, "DELETE", "/v1/objects/x/events", &req, &status));
  assert_int_equal(status, 405);
  assert_int_equal(req.n_params, 0);
}

static void test_no_match(void **state) {
  (void)state;
  gw_req req = {0};
  int status = 0;
  const char *paths[] = {
      "/v1/objects//events",     "/v1/objects/x/events/a/b", "/v1/objects/x", "/", "",
      "/api/v1/event/categoryX", "/v1/objects/x/eventsX"};
  for (size_t i = 0; i < sizeof paths / sizeof *paths; i++) {
    assert_null(gw_route_match(table, N, "GET", paths[i], &req, &status));
    assert_int_equal(status, 404);
    assert_int_equal(req.n_params, 0);
  }
}

static void test_trailing_slash(void **state) {
  (void)state;
  gw_req req = {0};
  int status = 0;
  assert_ptr_equal(gw_route_match(table, N, "GET", "/api/v1/event/category/", &req, &status),
                   &table[3]);
  const gw_route *r =
      gw_route_match(table, N, "GET", "/api/v1/event/category/43d7c33d/", &req, &status);
  assert_ptr_equal(r, &table[4]);
  assert_string_equal(gw_param(&req, "event_category_id"), "43d7c33d");
  gw_req_free_params(&req);
}

static void test_real_table(void **state) {
  (void)state;
  size_t n;
  const gw_route *routes = gw_routes(&n);
  gw_req req = {0};
  int status = 0;
  const gw_route *r = gw_route_match(routes, n, "GET", "/healthz", &req, &status);
  assert_non_null(r);
  assert_ptr_equal(r->local, gw_healthz);
  /* Every template matches itself with placeholder values, and no two
   * routes share method and template. */
  for (size_t i = 0; i < n; i++)
    for (size_t j = i + 1; j < n; j++)
      assert_false(strcmp(routes[i].method, routes[j].method) == 0 &&
                   strcmp(routes[i].tmpl, routes[j].tmpl) == 0);
}

/* Parameters are decoded once from the path as sent; what cannot be an id
 * is a 400 naming the parameter, never another route. */
static void test_param_decoding(void **state) {
  (void)state;
  gw_req req = {0};
  int status = 0;
  const gw_route *r =
      gw_route_match(table, N, "GET", "/v1/objects/m%C3%A9et/events/a%20b%25", &req, &status);
  assert_ptr_equal(r, &table[2]);
  assert_string_equal(gw_param(&req, "objectId"), "m\xc3\xa9"
                                                  "et");
  assert_string_equal(gw_param(&req, "eventId"), "a b%");
  gw_req_free_params(&req);
  const char *bad[] = {"%00", "1%00",      "%2F", "a%2fb", "%2e", "%2e%2E", ".",   "..", "%ff",
                       "%C3", "%ED%A0%80", "%zz", "%",     "a%4", "%0a",    "%7F", "%1b"};
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    char path[64], name[32] = "";
    snprintf(path, sizeof path, "/v1/objects/o/events/%s", bad[i]);
    for (size_t m = 0; m < 2; m++) {
      status = 0;
      assert_null(
          gw_route_find(table, N, m ? "DELETE" : "GET", path, &req, &status, name, sizeof name));
      assert_int_equal(status, 400);
      assert_string_equal(name, "eventId");
      assert_int_equal(req.n_params, 0);
    }
  }
  /* A decoded slash never reaches the collection's shorter template. */
  assert_null(gw_route_match(table, N, "GET", "/v1/objects/o%2Fevents", &req, &status));
  assert_int_equal(status, 404);
  assert_null(gw_route_match(table, N, "GET", "/v1/objects/%2e%2e/events", &req, &status));
  assert_int_equal(status, 400);
  char *v = NULL;
  assert_int_equal(gw_path_param("%F0%9F%98%80", 12, &v), 0);
  assert_string_equal(v, "\xf0\x9f\x98\x80");
  free(v);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_params),     cmocka_unit_test(test_method_picks_route),
      cmocka_unit_test(test_no_match),   cmocka_unit_test(test_trailing_slash),
      cmocka_unit_test(test_real_table), cmocka_unit_test(test_param_decoding),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
