/* fuzz_pipeline.h - the gateway's request pipeline without a network:
 * gw_handle of gateway/gw_http.c (route match, 413/404/405, dialect check,
 * request builder, response renderer, dialect error bodies), with req->call
 * answering a status and an optional response the fuzzer supplies. Every response is checked the
 * way a client would: a status line in 100..599 and a body that serialises as JSON. */
#ifndef EVENTS_FUZZ_PIPELINE_H
#define EVENTS_FUZZ_PIPELINE_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_check.h"
#include "google/rpc/error_details.pb-c.h"
#include "gw.h"

/* What the (skipped) RPC answers. */
typedef struct fz_rpc {
  grpc_status_code code;   /* OK: render `response` */
  const uint8_t *response; /* protobuf bytes of the response (OK) or a BadRequest (else) */
  size_t response_len;
  const char *message; /* status message */
} fz_rpc;

/* Sets string fields named like page tokens so renderers build links. */
static inline void fz_fill_tokens(ProtobufCMessage *m) {
  static const char *const names[] = {"next_page_token", "prev_page_token"};
  for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(m->descriptor, names[i]);
    if (!fd || fd->type != PROTOBUF_C_TYPE_STRING || fd->label == PROTOBUF_C_LABEL_REPEATED)
      continue;
    char **slot = (char **)((char *)m + fd->offset);
    if (*slot && *slot != protobuf_c_empty_string && *slot != fd->default_value) continue;
    *slot = strdup("tok/+ =&?%");
  }
}

/* The answer of the request being handled (the fuzzers are single-threaded)
 * and whether the pipeline got as far as calling the service. */
static const fz_rpc *fz_answer;
static int fz_called;

/* Stands in for gw_rpc_call. What the builder made must survive the wire. */
static inline int fz_call(const char *method, const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessageDescriptor *out_desc, int timeout_ms,
                          gw_rpc_result *res) {
  (void)method;
  (void)req;
  (void)timeout_ms;
  const fz_rpc *rpc = fz_answer;
  memset(res, 0, sizeof *res);
  fz_called = 1;
  size_t len = protobuf_c_message_get_packed_size(in);
  uint8_t *wire = malloc(len ? len : 1);
  FZ_CHECK(wire != NULL);
  FZ_CHECK(protobuf_c_message_pack(in, wire) == len);
  ProtobufCMessage *back = protobuf_c_message_unpack(in->descriptor, NULL, len, wire);
  FZ_CHECK(back != NULL);
  protobuf_c_message_free_unpacked(back, NULL);
  free(wire);

  res->code = rpc->code;
  res->message = strdup(rpc->message ? rpc->message : "");
  if (rpc->code != GRPC_STATUS_OK) {
    if (rpc->response_len)
      res->bad_request = google__rpc__bad_request__unpack(NULL, rpc->response_len, rpc->response);
    return 0;
  }
  if (rpc->response_len)
    res->response = protobuf_c_message_unpack(out_desc, NULL, rpc->response_len, rpc->response);
  if (!res->response) {
    res->response = protobuf_c_message_unpack(out_desc, NULL, 0, (const uint8_t *)"");
    FZ_CHECK(res->response != NULL);
    fz_fill_tokens(res->response);
  }
  return 0;
}

/* What send_resp would put on the wire, checked. */
static inline void fz_check_resp(const gw_resp *r) {
  FZ_CHECK(r->status >= 100 && r->status <= 599);
  FZ_CHECK(r->status < 400 || r->body != NULL); /* every error has a body */
  if (r->body) {
    char *text = json_dumps(r->body, JSON_COMPACT | JSON_ENCODE_ANY);
    FZ_CHECK(text != NULL);
    json_error_t je;
    json_t *again = json_loads(text, JSON_DECODE_ANY, &je);
    FZ_CHECK(again != NULL);
    json_decref(again);
    free(text);
  }
}

/* Every route names a method of its service (else it would answer 500). */
static inline void fz_check_routes(void) {
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  for (size_t i = 0; i < n_routes; i++) {
    if (routes[i].local) continue;
    const char *mname = strrchr(routes[i].rpc, '/');
    FZ_CHECK(mname && protobuf_c_service_descriptor_get_method_by_name(routes[i].service,
                                                                       mname + 1) != NULL);
  }
}

/* The gateway's own pipeline (gw_handle) after the body is read, with
 * `rpc` standing in for the service. */
static inline void fz_handle(gw_req *req, const fz_rpc *rpc) {
  static int routes_checked;
  if (!routes_checked) {
    fz_check_routes();
    routes_checked = 1;
  }
  gw_resp resp = {0};
  fz_answer = rpc;
  fz_called = 0;
  req->call = fz_call;
  gw_handle(req, req->body_len > GW_MAX_BODY, &resp);
  if (req->route && !req->route->local) {
    /* A request refused before the call is an error; so is a failed call. */
    if (!fz_called || rpc->code != GRPC_STATUS_OK) FZ_CHECK(resp.status >= 400);
  }
  fz_check_resp(&resp);
  gw_resp_clear(&resp);
  gw_req_free_params(req);
}

#endif
