/* gw_rpc.c - the gateway's gRPC client: one shared channel and one shared
 * completion queue, served by one thread; each HTTP request becomes one
 * asynchronous unary call carrying the caller's Authorization, request id
 * and trace context as metadata. No thread waits on a call: the HTTP side
 * suspends the connection and is resumed from the completion callback. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include "google/rpc/status.pb-c.h"
#include "gw.h"

static grpc_channel *channel;
static grpc_completion_queue *cq;
static pthread_t cq_thread;

typedef struct pending {
  grpc_call *call;
  grpc_byte_buffer *send, *recv;
  grpc_metadata md[4];
  size_t n_md;
  grpc_metadata_array initial, trailer;
  grpc_status_code status;
  grpc_slice details;
  const ProtobufCMessageDescriptor *out_desc;
  gw_rpc_done_fn done;
  void *arg;
} pending;

static void complete(pending *p);

static void *cq_loop(void *unused) {
  (void)unused;
  for (;;) {
    grpc_event ev = grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) return NULL;
    if (ev.type == GRPC_OP_COMPLETE) complete(ev.tag);
  }
}

int gw_rpc_init(const char *target, const tls_files *tls, int tls_on, const char *server_name) {
  grpc_channel_credentials *cr = tls_channel_credentials(tls, tls_on);
  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = 64 << 20},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_RETRIES, .value.integer = 0},
      /* With several service pods behind a headless Service, spread calls
       * over all of them rather than pinning to the first address. */
      {.type = GRPC_ARG_STRING,
       .key = GRPC_ARG_SERVICE_CONFIG,
       .value.string = "{\"loadBalancingConfig\":[{\"round_robin\":{}}]}"},
      /* A restarted service is dialled again within a second, not after
       * the default backoff that grows towards two minutes; until then
       * calls fail fast (UNAVAILABLE) rather than wait. */
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS,
       .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, .value.integer = 100},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, .value.integer = 1000},
      {0}, /* room for the TLS name override */
  };
  size_t n_args = 6;
  if (tls_on && server_name && *server_name)
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                .value.string = (char *)server_name};
  grpc_channel_args chargs = {.num_args = n_args, .args = args};
  channel = grpc_channel_create(target, cr, &chargs);
  grpc_channel_credentials_release(cr);
  if (!channel) return -1;
  cq = grpc_completion_queue_create_for_next(NULL);
  if (pthread_create(&cq_thread, NULL, cq_loop, NULL) != 0) goto destroy_cq;
  return 0;
destroy_cq:
  grpc_completion_queue_destroy(cq);
  cq = NULL;
  grpc_channel_destroy(channel);
  channel = NULL;
  return -1;
}

void gw_rpc_shutdown(void) {
  if (!channel) return;
  grpc_channel_destroy(channel);
  channel = NULL;
  grpc_completion_queue_shutdown(cq);
  pthread_join(cq_thread, NULL);
  grpc_completion_queue_destroy(cq);
  cq = NULL;
}

int gw_http_status(grpc_status_code code) {
  switch (code) {
  case GRPC_STATUS_OK:
    return 200;
  case GRPC_STATUS_INVALID_ARGUMENT:
    return 400;
  case GRPC_STATUS_FAILED_PRECONDITION:
    return 400;
  case GRPC_STATUS_OUT_OF_RANGE:
    return 400;
  case GRPC_STATUS_UNAUTHENTICATED:
    return 401;
  case GRPC_STATUS_PERMISSION_DENIED:
    return 403;
  case GRPC_STATUS_NOT_FOUND:
    return 404;
  case GRPC_STATUS_ALREADY_EXISTS:
    return 409;
  case GRPC_STATUS_RESOURCE_EXHAUSTED:
    return 429;
  case GRPC_STATUS_UNIMPLEMENTED:
    return 501;
  case GRPC_STATUS_UNAVAILABLE:
    return 503;
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    return 504;
  default:
    return 500;
  }
}

static void decode_details(const grpc_metadata_array *trailer, gw_rpc_result *res) {
  for (size_t i = 0; i < trailer->count; i++) {
    const grpc_metadata *m = &trailer->metadata[i];
    if (!grpc_slice_eq(m->key, grpc_slice_from_static_string("grpc-status-details-bin"))) continue;
    Google__Rpc__Status *st = google__rpc__status__unpack(NULL, GRPC_SLICE_LENGTH(m->value),
                                                          GRPC_SLICE_START_PTR(m->value));
    if (!st) return;
    for (size_t d = 0; d < st->n_details && !res->bad_request; d++) {
      const char *url = st->details[d]->type_url;
      size_t n = strlen(url);
      if (n >= 22 && strcmp(url + n - 22, "/google.rpc.BadRequest") == 0)
        res->bad_request = google__rpc__bad_request__unpack(NULL, st->details[d]->value.len,
                                                            st->details[d]->value.data);
    }
    google__rpc__status__free_unpacked(st, NULL);
    return;
  }
}

static void add_md(pending *p, const char *key, const char *value) {
  p->md[p->n_md].key = grpc_slice_from_static_string(key);
  p->md[p->n_md].value = grpc_slice_from_copied_string(value);
  p->n_md++;
}

static void free_pending(pending *p) {
  if (p->recv) grpc_byte_buffer_destroy(p->recv);
  if (p->send) grpc_byte_buffer_destroy(p->send);
  for (size_t i = 0; i < p->n_md; i++)
    grpc_slice_unref(p->md[i].value);
  grpc_metadata_array_destroy(&p->initial);
  grpc_metadata_array_destroy(&p->trailer);
  if (p->call) grpc_call_unref(p->call);
  free(p);
}

static void fail_now(gw_rpc_done_fn done, void *arg, const char *why) {
  gw_rpc_result res = {.code = GRPC_STATUS_INTERNAL, .message = strdup(why)};
  done(arg, &res);
}

void gw_rpc_start(const gw_call_spec *spec, const gw_req *req, gw_rpc_done_fn done, void *arg) {
  pending *p = calloc(1, sizeof *p);
  if (!p) {
    fail_now(done, arg, "out of memory");
    return;
  }
  p->out_desc = spec->out_desc;
  p->done = done;
  p->arg = arg;
  p->status = GRPC_STATUS_UNKNOWN;
  grpc_metadata_array_init(&p->initial);
  grpc_metadata_array_init(&p->trailer);

  size_t len = protobuf_c_message_get_packed_size(spec->in);
  grpc_slice payload = grpc_slice_malloc(len);
  protobuf_c_message_pack(spec->in, GRPC_SLICE_START_PTR(payload));
  p->send = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);

  /* Header values were checked by the guard before they got here: gRPC
   * refuses a call whose metadata it cannot send. */
  if (req->authorization) add_md(p, "authorization", req->authorization);
  if (req->request_id[0]) add_md(p, "x-request-id", req->request_id);
  if (req->trace.trace_hex[0]) {
    char tp[56];
    trace_header(&req->trace, tp);
    add_md(p, "traceparent", tp);
    if (req->trace.state[0]) add_md(p, "tracestate", req->trace.state);
  }

  gpr_timespec deadline = gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                                       gpr_time_from_millis(spec->timeout_ms, GPR_TIMESPAN));
  p->call =
      grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq,
                               grpc_slice_from_static_string(spec->method), NULL, deadline, NULL);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = p->n_md;
  ops[0].data.send_initial_metadata.metadata = p->md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = p->send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &p->initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &p->recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &p->trailer;
  ops[5].data.recv_status_on_client.status = &p->status;
  ops[5].data.recv_status_on_client.status_details = &p->details;
  if (!p->call || grpc_call_start_batch(p->call, ops, 6, p, NULL) != GRPC_CALL_OK) {
    free_pending(p);
    fail_now(done, arg, "cannot start the call");
  }
}

/* The call's outcome, on the completion thread. */
static void complete(pending *p) {
  gw_rpc_result res = {.code = p->status};
  /* Not strndup: an inlined slice is not NUL-terminated and sits in `details`. */
  size_t mlen = GRPC_SLICE_LENGTH(p->details);
  res.message = malloc(mlen + 1);
  if (res.message) {
    memcpy(res.message, GRPC_SLICE_START_PTR(p->details), mlen);
    res.message[mlen] = '\0';
  }
  grpc_slice_unref(p->details);
  if (res.code != GRPC_STATUS_OK) {
    decode_details(&p->trailer, &res);
  } else if (!p->recv) {
    res.code = GRPC_STATUS_INTERNAL;
  } else {
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, p->recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    res.response = protobuf_c_message_unpack(p->out_desc, NULL, GRPC_SLICE_LENGTH(all),
                                             GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (!res.response) res.code = GRPC_STATUS_INTERNAL;
  }
  gw_rpc_done_fn done = p->done;
  void *arg = p->arg;
  free_pending(p);
  done(arg, &res);
}

void gw_rpc_result_clear(gw_rpc_result *res) {
  free(res->message);
  if (res->bad_request) google__rpc__bad_request__free_unpacked(res->bad_request, NULL);
  if (res->response) protobuf_c_message_free_unpacked(res->response, NULL);
  memset(res, 0, sizeof *res);
}
