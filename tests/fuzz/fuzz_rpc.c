/* fuzz_rpc.c - the service's unary request path from raw bytes: the bound
 * check, protobuf-c unpack and the real handler over a SQLite store in a
 * temporary directory, for every method of every dialect service; health
 * and reflection requests get the bound check, unpack and free.
 *
 * Input: byte 0 picks the method (modulo their number, in service then
 * descriptor order); the rest is the request as it would arrive on the wire.
 * Checked: nothing crashes or leaks; a request the bound accepts and
 * protobuf-c unpacks encodes to JSON (so it is never too deep to store or
 * render); no handler fails INTERNAL on a healthy store; success carries a
 * response, or for a Watch method an opened (then discarded) stream. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>

#include "dialects.h"
#include "fuzz_check.h"
#include "grpc/health/v1/health.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "pbjson.h"
#include "rpc_bound.h"
#include "rpc_feed.h"
#include "rpc_int.h"
#include "rpc_invoke.h"

typedef struct target {
  const ProtobufCMethodDescriptor *md;
  ProtobufCService *impl; /* NULL: bound, unpack and free only */
  unsigned index;
} target;

static target targets[128];
static size_t n_targets;
static store *st;
static api *rules; /* the request rules, as the server checks them */
extern const unsigned char events_descriptor_set[];
extern const size_t events_descriptor_set_len;

static void add_service(const ProtobufCServiceDescriptor *d, ProtobufCService *impl) {
  for (unsigned i = 0; i < d->n_methods && n_targets < sizeof targets / sizeof *targets; i++)
    targets[n_targets++] =
        (target){&d->methods[i], rpc_invoke_has_handler(impl, i) ? impl : NULL, i};
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  grpc_init();
  /* tmpfs when there is one: every create commits. */
  char dir[] = "/dev/shm/fuzz-rpc-XXXXXX", alt[] = "/tmp/fuzz-rpc-XXXXXX";
  const char *d = mkdtemp(dir);
  if (!d) d = mkdtemp(alt);
  FZ_CHECK(d != NULL);
  char url[128];
  snprintf(url, sizeof url, "sqlite:%s/events.db", d);
  store_err err;
  FZ_CHECK(store_open(url, dialects_schema(), &st, &err) == 0);
  char api_err[128];
  FZ_CHECK(api_open(events_descriptor_set, events_descriptor_set_len, &rules, api_err,
                    sizeof api_err) == 0);
  size_t n;
  const dialect *const *ds = dialects_all(&n);
  for (size_t i = 0; i < n; i++)
    add_service(ds[i]->service.desc, ds[i]->service.impl);
  add_service(&grpc__health__v1__health__descriptor, NULL);
  add_service(&grpc__reflection__v1__server_reflection__descriptor, NULL);
  add_service(&grpc__reflection__v1alpha__server_reflection__descriptor, NULL);
  return 0;
}

/* What the bound lets through must be within the mapper's depth. */
static void check_accepted(const target *t, const uint8_t *data, size_t len) {
  rpc_bound_err be;
  if (rpc_bound_check(t->md->input, data, len, &be) < 0) {
    FZ_CHECK(be.reason != NULL);
    return;
  }
  ProtobufCMessage *in = protobuf_c_message_unpack(t->md->input, NULL, len, data);
  if (!in) return;
  json_t *j = pbjson_encode(in, 0);
  FZ_CHECK(j != NULL);
  json_decref(j);
  protobuf_c_message_free_unpacked(in, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  const target *t = &targets[data[0] % n_targets];
  data++;
  size--;
  check_accepted(t, data, size);
  if (!t->impl) return 0;

  rpc_call *c = calloc(1, sizeof *c);
  FZ_CHECK(c != NULL);
  c->store = st;
  c->api = rules;
  snprintf(c->tenant, sizeof c->tenant, "fuzz");
  rpc_invoke(c, t->md, t->impl, t->index, data, size);
  /* A Watch handler that accepted its request opened a stream instead of
   * answering: the checks ran (token, filter), there is no call to stream
   * on, so it is freed unstarted rather than left to wait for changes. */
  int streamed = c->feed != NULL;
  rpc_feed_discard(c);
  if (c->status == GRPC_STATUS_INTERNAL)
    fprintf(stderr, "%s: INTERNAL: %s\n", t->md->name, c->message ? c->message : "");
  FZ_CHECK(c->status != GRPC_STATUS_INTERNAL);
  FZ_CHECK(c->status != GRPC_STATUS_OK || c->response != NULL || streamed);
  if (c->response) grpc_byte_buffer_destroy(c->response);
  rpc_status_clear(c);
  free(c);
  return 0;
}
