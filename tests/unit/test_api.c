/* test_api.c - the annotations read out of the embedded descriptor set: the
 * http bindings, field behaviours and the project's own rules the protos
 * declare. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "api.h"
#include "events/activity/v1/activity.pb-c.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "events/customer/v1/customer.pb-c.h"

extern const unsigned char events_descriptor_set[];
extern const size_t events_descriptor_set_len;

static api *open_api(void) {
  api *a = NULL;
  char err[128];
  assert_int_equal(api_open(events_descriptor_set, events_descriptor_set_len, &a, err, sizeof err),
                   0);
  return a;
}

static api_field field(const api *a, const ProtobufCMessageDescriptor *m, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(m, name);
  assert_non_null(f);
  return api_field_of(a, m, f);
}

static void test_bindings(void **state) {
  (void)state;
  api *a = open_api();
  const api_method *m = api_method_find(a, "/events.activity.v1.ActivityEventService/UpdateEvent");
  assert_non_null(m);
  assert_int_equal(m->n_bindings, 1);
  assert_string_equal(m->bindings[0].verb, "PATCH");
  assert_string_equal(m->bindings[0].path, "/api/v2/events/{event.id}");
  assert_string_equal(m->bindings[0].body, "event");
  assert_string_equal(m->bindings[0].response_body, "event");
  assert_string_equal(m->input, "events.activity.v1.UpdateEventRequest");
  m = api_method_find(a, "/events.activity.v1.ActivityEventService/CreateEvent");
  assert_int_equal(m->rules->http_status, 201);
  m = api_method_find(a, "/events.customer.v1.CustomerEventService/ListEvents");
  assert_int_equal(m->rules->default_page_size, 100);
  assert_string_equal(m->bindings[0].body, "");
  /* gRPC-only methods are listed, without bindings. */
  m = api_method_find(a, "/events.customer.v1.CustomerEventService/DeleteEvent");
  assert_non_null(m);
  assert_int_equal(m->n_bindings, 0);
  assert_null(api_method_find(a, "/events.customer.v1.CustomerEventService/Nope"));
  api_close(a);
}

static void test_fields(void **state) {
  (void)state;
  api *a = open_api();
  const ProtobufCMessageDescriptor *ev = &events__activity__v1__event__descriptor;
  assert_int_equal(field(a, ev, "id").behavior, API_OUTPUT_ONLY);
  api_field name = field(a, ev, "name");
  assert_int_equal(name.behavior, API_REQUIRED);
  assert_int_equal(name.rules->max_chars, 255);
  assert_int_equal(field(a, ev, "payload").behavior, API_OPTIONAL | API_IMMUTABLE);
  /* No annotation: no behaviour, empty rules. */
  api_field body = field(a, &events__activity__v1__relationships__descriptor, "account");
  assert_int_equal(body.behavior, 0);
  assert_int_equal(body.rules->max_chars, 0);
  api_field count = field(a, &events__customer__v1__list_events_request__descriptor, "page_size");
  assert_string_equal(count.rules->rest_name, "count");
  assert_int_equal(count.rules->max, 1000);
  api_field teams = field(a, &events__catalog__v1__resource__descriptor, "teams");
  assert_int_equal(teams.rules->format, EVENTS__API__V1__FORMAT__FORMAT_UUID_ANY_FORM);
  assert_int_equal(teams.rules->max_items, 100);
  api_close(a);
}

static void test_malformed_set(void **state) {
  (void)state;
  static const uint8_t junk[] = {0x0a, 0x05, 0x01};
  api *a = NULL;
  char err[128] = "";
  assert_int_equal(api_open(junk, sizeof junk, &a, err, sizeof err), -1);
  assert_null(a);
  assert_true(err[0]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bindings),
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_malformed_set),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
