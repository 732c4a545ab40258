/* test_bindings.c - a REST binding is a proto edit: a route table built from
 * a test proto's annotations (binding_test.proto, a service the gateway has
 * no code for) routes, binds path, query and body into the request and
 * renders the response, with no route code of its own. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "binding_test.pb-c.h"
#include "gw.h"

static api *the_api;
static gw_route *routes;
static size_t n_routes;

static int setup(void **state) {
  (void)state;
  FILE *f = fopen(BINDING_TEST_DESC, "rb");
  if (!f) return -1;
  static uint8_t buf[1 << 20];
  size_t len = fread(buf, 1, sizeof buf, f);
  fclose(f);
  char err[256];
  if (api_open(buf, len, &the_api, err, sizeof err) < 0) return -1;
  const ProtobufCServiceDescriptor *svc = &bindingtest__v1__widget_service__descriptor;
  return gw_routes_build(the_api, &svc, 1, NULL, 0, NULL, 0, &routes, &n_routes, err, sizeof err);
}

static int teardown(void **state) {
  (void)state;
  gw_routes_free(routes, n_routes);
  api_close(the_api);
  return 0;
}

static void test_routes_come_from_the_annotations(void **state) {
  (void)state;
  assert_int_equal(n_routes, 3); /* two bindings of GetWidget, one of PutWidget */
  assert_string_equal(routes[0].method, "GET");
  assert_string_equal(routes[0].tmpl, "/test/v1/shelves/{shelf}/widgets/{widget_id}");
  assert_string_equal(routes[0].doc_tmpl, "/test/v1/shelves/{shelf}/widgets/{widgetId}");
  assert_string_equal(routes[0].rpc, "/bindingtest.v1.WidgetService/GetWidget");
  assert_string_equal(routes[1].tmpl, "/test/v1/widgets/{widget_id}");
  assert_string_equal(routes[2].method, "POST");
  assert_int_equal(routes[2].ok_status, 201);
  assert_true(routes[2].needs_body);
  assert_ptr_equal(routes[2].body_desc, &bindingtest__v1__widget__descriptor);
  assert_ptr_equal(routes[0].resp_desc, &bindingtest__v1__widget__descriptor);
  /* Query parameters: the fields neither the path nor the body binds, by
   * their REST names; "-" keeps one gRPC-only. */
  const char *names[8] = {0};
  size_t n = 0;
  for (const gw_qparam *q = routes[0].query; q && q->param && n < 8; q++)
    names[n++] = q->param;
  assert_int_equal(n, 2);
  assert_string_equal(names[0], "verbose");
  assert_string_equal(names[1], "limit");
}

static gw_req request(const char *method, const char *path, const gw_query_arg *args, size_t n,
                      const char *body) {
  gw_req req = {.method = method, .path = path, .args = args, .n_args = n, .body = body};
  req.body_len = body ? strlen(body) : 0;
  return req;
}

static void test_a_get_is_bound_and_rendered(void **state) {
  (void)state;
  static const gw_query_arg args[] = {{"verbose", "true"}, {"limit", "5"}};
  gw_req req = request("GET", "/test/v1/shelves/s1/widgets/w%201", args, 2, NULL);
  int status = 0;
  req.route = gw_route_match(routes, n_routes, "GET", req.path, &req, &status);
  assert_ptr_equal(req.route, &routes[0]);
  Bindingtest__V1__GetWidgetRequest in = BINDINGTEST__V1__GET_WIDGET_REQUEST__INIT;
  gw_fail f = {0};
  assert_int_equal(gw_bind_path(&req, &in.base, &f), 0);
  assert_int_equal(gw_bind_request(&req, &in.base, &f), 0);
  assert_string_equal(in.shelf, "s1");
  assert_string_equal(in.widget_id, "w 1"); /* decoded once */
  assert_true(in.verbose);
  assert_int_equal(in.page_size, 5);

  Bindingtest__V1__Widget w = BINDINGTEST__V1__WIDGET__INIT;
  w.id = "w1";
  w.label = "spanner";
  gw_resp resp = {0};
  assert_int_equal(gw_render_default(&req, &in.base, &w.base, &resp, &f), 0);
  assert_int_equal(resp.status, 200);
  assert_string_equal(json_string_value(json_object_get(resp.body, "label")), "spanner");
  gw_resp_clear(&resp);
  free(in.shelf);
  free(in.widget_id);
  gw_req_free_params(&req);
}

static void test_unknown_and_grpc_only_parameters_are_refused(void **state) {
  (void)state;
  static const gw_query_arg args[] = {{"secret", "x"}};
  gw_req req = request("GET", "/test/v1/widgets/w1", args, 1, NULL);
  int status = 0;
  req.route = gw_route_match(routes, n_routes, "GET", req.path, &req, &status);
  assert_ptr_equal(req.route, &routes[1]);
  Bindingtest__V1__GetWidgetRequest in = BINDINGTEST__V1__GET_WIDGET_REQUEST__INIT;
  gw_fail f = {0};
  assert_int_equal(gw_bind_path(&req, &in.base, &f), 0);
  assert_int_equal(gw_bind_request(&req, &in.base, &f), -1);
  assert_int_equal(f.http, 400);
  assert_string_equal(f.field, "secret");
  free(in.widget_id);
  gw_req_free_params(&req);
}

static void test_a_body_binds_into_its_field(void **state) {
  (void)state;
  gw_req req = request("POST", "/test/v1/shelves/s2/widgets", NULL, 0,
                       "{\"label\": \"hammer\", \"size\": 3}");
  int status = 0;
  req.route = gw_route_match(routes, n_routes, "POST", req.path, &req, &status);
  assert_ptr_equal(req.route, &routes[2]);
  Bindingtest__V1__PutWidgetRequest *in = malloc(sizeof *in);
  bindingtest__v1__put_widget_request__init(in);
  gw_fail f = {0};
  assert_int_equal(gw_bind_path(&req, &in->base, &f), 0);
  assert_int_equal(gw_bind_request(&req, &in->base, &f), 0);
  assert_string_equal(in->shelf, "s2");
  assert_non_null(in->widget);
  assert_string_equal(in->widget->label, "hammer");
  assert_int_equal(in->widget->size, 3);
  protobuf_c_message_free_unpacked(&in->base, NULL);

  /* A member that is no field is refused, naming it (output-only ones are
   * the service's to refuse: rpc_behavior.c). */
  req.body = "{\"nope\": \"mine\"}";
  req.body_len = strlen(req.body);
  in = malloc(sizeof *in);
  bindingtest__v1__put_widget_request__init(in);
  assert_int_equal(gw_bind_request(&req, &in->base, &f), -1);
  assert_int_equal(f.http, 400);
  assert_string_equal(f.field, "nope");
  protobuf_c_message_free_unpacked(&in->base, NULL);
  gw_req_free_params(&req);
}

static void test_rest_names_enums_and_bounds_come_from_the_annotations(void **state) {
  (void)state;
  char buf[64], names[64];
  gw_req get = {.route = &routes[0]}, post = {.route = &routes[2]};
  /* Query parameters and path variables by their REST names, body members
   * without the body field. */
  assert_string_equal(gw_rest_field(&get, "page_size", buf, sizeof buf), "limit");
  assert_string_equal(gw_rest_field(&get, "widget_id", buf, sizeof buf), "widgetId");
  assert_string_equal(gw_rest_field(&get, "shelf", buf, sizeof buf), "shelf");
  assert_string_equal(gw_rest_field(&post, "widget.label", buf, sizeof buf), "label");
  assert_string_equal(gw_rest_field(&post, "widget", buf, sizeof buf), "widget");
  assert_string_equal(gw_rest_field(NULL, "widget.label", buf, sizeof buf), "widget.label");

  /* Enum names as the mapper writes them, the zero value left out. */
  const ProtobufCEnumDescriptor *ed = &bindingtest__v1__colour__descriptor;
  assert_null(gw_enum_named(ed, "BLUE", ", ", names, sizeof names));
  assert_string_equal(names, "dark_red, blue");
  assert_null(gw_enum_named(ed, "unspecified", ", ", NULL, 0));
  assert_int_equal(gw_enum_named(ed, "dark_red", ", ", NULL, 0)->value, 1);
  gw_fail f = {0};
  json_t *body = json_pack("{s:n}", "colour");
  assert_int_equal(gw_body_enums(body, &bindingtest__v1__widget__descriptor, 0, &f), 0);
  assert_int_equal(json_object_size(body), 0); /* null: left out */
  json_object_set_new(body, "colour", json_integer(2));
  assert_int_equal(gw_body_enums(body, &bindingtest__v1__widget__descriptor, 0, &f), -1);
  assert_string_equal(f.message, "colour must be one of dark_red, blue");
  assert_string_equal(f.reason, "invalid_type");
  json_decref(body);

  /* A URL may not say limit=0, which over gRPC means the default. */
  static const gw_query_arg zero[] = {{"limit", "0"}}, big[] = {{"limit", "101"}};
  const gw_query_arg *cases[] = {zero, big};
  for (size_t i = 0; i < 2; i++) {
    gw_req req = {.method = "GET", .path = "/test/v1/widgets/w1", .args = cases[i], .n_args = 1};
    int status = 0;
    req.route = gw_route_match(routes, n_routes, "GET", req.path, &req, &status);
    Bindingtest__V1__GetWidgetRequest in = BINDINGTEST__V1__GET_WIDGET_REQUEST__INIT;
    assert_int_equal(gw_bind_request(&req, &in.base, &f), -1);
    assert_int_equal(f.http, 400);
    assert_string_equal(f.message, "limit must be between 1 and 100");
    gw_req_free_params(&req);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes_come_from_the_annotations),
      cmocka_unit_test(test_a_get_is_bound_and_rendered),
      cmocka_unit_test(test_unknown_and_grpc_only_parameters_are_refused),
      cmocka_unit_test(test_a_body_binds_into_its_field),
      cmocka_unit_test(test_rest_names_enums_and_bounds_come_from_the_annotations),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
