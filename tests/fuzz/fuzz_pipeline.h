/* fuzz_pipeline.h - the gateway's request pipeline without a network: the
 * same steps as on_request/serve_rpc in gateway/gw_http.c (route match,
 * 413/404/405, dialect check, request builder, response renderer, dialect
 * error bodies), with the gRPC call replaced by a status and an optional
 * response the fuzzer supplies. Every response is checked the way a client
 * would: a status line in 100..599 and a body that serialises as JSON. */
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

static inline void fz_resp_clear(gw_resp *r) {
  json_decref(r->body);
  free(r->text);
  memset(r, 0, sizeof *r);
}

static inline void fz_fail_resp(const gw_req *req, const gw_dialect *d, const gw_fail *f,
                                gw_resp *resp) {
  if (!d) d = &gw_plain;
  FZ_CHECK(f->http >= 400 && f->http <= 599);
  d->error(req, f, resp);
  FZ_CHECK(resp->body != NULL); /* every dialect answers errors with a body */
  if (!resp->status) resp->status = f->http;
  if (!resp->content_type) resp->content_type = d->content_type;
}

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

/* serve_rpc of gw_http.c with the call replaced by `rpc`. */
static inline void fz_serve_rpc(gw_req *req, gw_resp *resp, const fz_rpc *rpc) {
  const gw_route *rt = req->route;
  const gw_dialect *d = rt->dialect;
  gw_fail f = {0};
  ProtobufCMessage *in = NULL, *out = NULL;
  Google__Rpc__BadRequest *br = NULL;

  const char *mname = strrchr(rt->rpc, '/') + 1;
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(rt->service, mname);
  FZ_CHECK(md != NULL); /* every route names a method of its service */
  if (d->check && d->check(req, &f) < 0) goto fail;
  in = calloc(1, md->input->sizeof_message);
  FZ_CHECK(in != NULL);
  md->input->message_init(in);
  if (rt->build(req, in, &f) < 0) {
    FZ_CHECK(f.http >= 400 && f.http <= 599);
    goto fail;
  }
  /* What the builder made goes on the wire and must read back. */
  size_t len = protobuf_c_message_get_packed_size(in);
  uint8_t *wire = malloc(len ? len : 1);
  FZ_CHECK(wire != NULL);
  FZ_CHECK(protobuf_c_message_pack(in, wire) == len);
  ProtobufCMessage *back = protobuf_c_message_unpack(md->input, NULL, len, wire);
  FZ_CHECK(back != NULL);
  protobuf_c_message_free_unpacked(back, NULL);
  free(wire);

  if (rpc->code != GRPC_STATUS_OK) {
    f.http = gw_http_status(rpc->code);
    f.code = rpc->code;
    snprintf(f.message, sizeof f.message, "%s", rpc->message ? rpc->message : "");
    if (rpc->response_len)
      br = google__rpc__bad_request__unpack(NULL, rpc->response_len, rpc->response);
    f.bad_request = br;
    if (br && br->n_field_violations) {
      const Google__Rpc__BadRequest__FieldViolation *v = br->field_violations[0];
      snprintf(f.field, sizeof f.field, "%s", v->field);
      snprintf(f.reason, sizeof f.reason, "%s", v->reason);
    }
    goto fail;
  }
  out = rpc->response_len
            ? protobuf_c_message_unpack(md->output, NULL, rpc->response_len, rpc->response)
            : NULL;
  if (!out) {
    out = protobuf_c_message_unpack(md->output, NULL, 0, (const uint8_t *)"");
    FZ_CHECK(out != NULL);
    fz_fill_tokens(out);
  }
  if (rt->render(req, in, out, resp, &f) < 0) goto fail;
  if (!resp->content_type) resp->content_type = d->content_type;
  goto done;
fail:
  fz_resp_clear(resp);
  fz_fail_resp(req, d, &f, resp);
done:
  if (br) google__rpc__bad_request__free_unpacked(br, NULL);
  if (out) protobuf_c_message_free_unpacked(out, NULL);
  if (in) protobuf_c_message_free_unpacked(in, NULL);
}

/* What send_resp would put on the wire, checked. */
static inline void fz_check_resp(const gw_resp *r) {
  FZ_CHECK(r->status >= 100 && r->status <= 599);
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

/* on_request of gw_http.c after the body is read; `rpc` stands in for the
 * service. Local routes that need the service (readyz) are skipped. */
static inline void fz_handle(gw_req *req, const fz_rpc *rpc, int with_openapi) {
  gw_resp resp = {0};
  gw_fail f = {0};
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  int status = 404;
  req->route = gw_route_match(routes, n_routes, req->method, req->path, req, &status);
  if (req->body_len > GW_MAX_BODY) {
    gw_fail_set(&f, 413, "", "", "request body larger than %u bytes", GW_MAX_BODY);
    fz_fail_resp(req, req->route ? req->route->dialect : gw_dialect_for_path(req->path), &f, &resp);
  } else if (!req->route) {
    FZ_CHECK(status == 404 || status == 405);
    if (status == 405)
      gw_fail_set(&f, 405, "", "", "method %s not allowed on %s", req->method, req->path);
    else
      gw_fail_set(&f, 404, "", "", "no such path %s", req->path);
    fz_fail_resp(req, gw_dialect_for_path(req->path), &f, &resp);
  } else if (req->route->local) {
    if (req->route->local == gw_healthz || (req->route->local == gw_openapi && with_openapi))
      req->route->local(req, &resp);
    else
      resp.status = 200;
  } else {
    fz_serve_rpc(req, &resp, rpc);
    if (rpc->code != GRPC_STATUS_OK) FZ_CHECK(resp.status >= 400);
  }
  fz_check_resp(&resp);
  fz_resp_clear(&resp);
  gw_req_free_params(req);
}

#endif
