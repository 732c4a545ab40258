/* gw_rpc.c - the gateway's gRPC client: one shared channel, one unary call
 * per HTTP request, with the caller's Authorization and X-Request-Id passed
 * on as metadata and google.rpc.BadRequest details decoded from the trailer. */
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>

#include "google/rpc/status.pb-c.h"
#include "gw.h"

static grpc_channel *channel;

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
      {0}, /* room for the TLS name override */
  };
  size_t n_args = 3;
  if (tls_on && server_name && *server_name)
    args[n_args++] = (grpc_arg){.type = GRPC_ARG_STRING,
                                .key = GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
                                .value.string = (char *)server_name};
  grpc_channel_args chargs = {.num_args = n_args, .args = args};
  channel = grpc_channel_create(target, cr, &chargs);
  grpc_channel_credentials_release(cr);
  return channel ? 0 : -1;
}

void gw_rpc_shutdown(void) {
  if (channel) grpc_channel_destroy(channel);
  channel = NULL;
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

int gw_rpc_call(const char *method, const gw_req *req, const ProtobufCMessage *in,
                const ProtobufCMessageDescriptor *out_desc, int timeout_ms, gw_rpc_result *res) {
  memset(res, 0, sizeof *res);
  grpc_completion_queue *cq = grpc_completion_queue_create_for_pluck(NULL);
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_REALTIME), gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
  grpc_slice mslice = grpc_slice_from_static_string(method);
  grpc_call *call = grpc_channel_create_call(channel, NULL, GRPC_PROPAGATE_DEFAULTS, cq, mslice,
                                             NULL, deadline, NULL);

  size_t len = protobuf_c_message_get_packed_size(in);
  grpc_slice payload = grpc_slice_malloc(len);
  protobuf_c_message_pack(in, GRPC_SLICE_START_PTR(payload));
  grpc_byte_buffer *send = grpc_raw_byte_buffer_create(&payload, 1);
  grpc_slice_unref(payload);

  grpc_metadata md[2];
  size_t n_md = 0;
  memset(md, 0, sizeof md);
  if (req && req->authorization) {
    md[n_md].key = grpc_slice_from_static_string("authorization");
    md[n_md].value = grpc_slice_from_copied_string(req->authorization);
    n_md++;
  }
  if (req && req->request_id[0]) {
    md[n_md].key = grpc_slice_from_static_string("x-request-id");
    md[n_md].value = grpc_slice_from_copied_string(req->request_id);
    n_md++;
  }

  grpc_metadata_array initial, trailer;
  grpc_metadata_array_init(&initial);
  grpc_metadata_array_init(&trailer);
  grpc_byte_buffer *recv = NULL;
  grpc_slice details;
  grpc_status_code status = GRPC_STATUS_UNKNOWN;

  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = n_md;
  ops[0].data.send_initial_metadata.metadata = md;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = send;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &initial;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &recv;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &trailer;
  ops[5].data.recv_status_on_client.status = &status;
  ops[5].data.recv_status_on_client.status_details = &details;

  int rc = -1;
  if (grpc_call_start_batch(call, ops, 6, call, NULL) != GRPC_CALL_OK) {
    res->code = GRPC_STATUS_INTERNAL;
    res->message = strdup("cannot start the call");
    goto free_call;
  }
  grpc_completion_queue_pluck(cq, call, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  /* The gateway never cancels its calls: a CANCELLED is the service
   * dropping a call it had not started (it is shutting down), which a
   * client may retry elsewhere - UNAVAILABLE, not an internal error. */
  res->code = status == GRPC_STATUS_CANCELLED ? GRPC_STATUS_UNAVAILABLE : status;
  /* Not strndup: an inlined slice is not NUL-terminated and sits in `details`. */
  size_t mlen = GRPC_SLICE_LENGTH(details);
  res->message = malloc(mlen + 1);
  if (res->message) {
    memcpy(res->message, GRPC_SLICE_START_PTR(details), mlen);
    res->message[mlen] = '\0';
  }
  grpc_slice_unref(details);
  if (status == GRPC_STATUS_OK) {
    if (!recv) {
      res->code = GRPC_STATUS_INTERNAL;
      goto free_call;
    }
    grpc_byte_buffer_reader r;
    grpc_byte_buffer_reader_init(&r, recv);
    grpc_slice all = grpc_byte_buffer_reader_readall(&r);
    grpc_byte_buffer_reader_destroy(&r);
    res->response = protobuf_c_message_unpack(out_desc, NULL, GRPC_SLICE_LENGTH(all),
                                              GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    if (!res->response) {
      res->code = GRPC_STATUS_INTERNAL;
      goto free_call;
    }
  } else {
    decode_details(&trailer, res);
  }
  rc = 0;
free_call:
  if (recv) grpc_byte_buffer_destroy(recv);
  grpc_byte_buffer_destroy(send);
  for (size_t i = 0; i < n_md; i++)
    grpc_slice_unref(md[i].value);
  grpc_metadata_array_destroy(&initial);
  grpc_metadata_array_destroy(&trailer);
  grpc_call_unref(call);
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_pluck(cq, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(cq);
  return rc;
}

void gw_rpc_result_clear(gw_rpc_result *res) {
  free(res->message);
  if (res->bad_request) google__rpc__bad_request__free_unpacked(res->bad_request, NULL);
  if (res->response) protobuf_c_message_free_unpacked(res->response, NULL);
  memset(res, 0, sizeof *res);
}
