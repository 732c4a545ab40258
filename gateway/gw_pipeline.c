/* gw_pipeline.c - what the gateway does with one request once its body is
 * read, split around the gRPC call so the server can make that call
 * asynchronously: gw_begin routes and builds the request message, gw_finish
 * renders the answer or the dialect's error body. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "log.h"

static int rpc_timeout_ms = 10000;

void gw_set_rpc_timeout(int ms) {
  rpc_timeout_ms = ms;
}

void gw_resp_clear(gw_resp *r) {
  json_decref(r->body);
  free(r->text);
  memset(r, 0, sizeof *r);
}

static void fail_resp(const gw_req *req, const gw_dialect *d, const gw_fail *f, gw_resp *resp) {
  if (!d) d = &gw_plain;
  d->error(req, f, resp);
  if (!resp->status) resp->status = f->http; /* a dialect may answer another status */
  if (!resp->content_type) resp->content_type = d->content_type;
}

int gw_begin(gw_req *req, int too_large, gw_resp *resp, gw_call_spec *spec) {
  gw_fail f = {0};
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  int status = 404;
  memset(spec, 0, sizeof *spec);
  /* RFC 9110: OPTIONS names the methods of a path; HEAD is GET without the
   * body (libmicrohttpd sends none for HEAD, keeping the headers). */
  if (strcmp(req->method, "OPTIONS") == 0 && !too_large) {
    gw_route_allow(routes, n_routes, req->path, resp->allow, sizeof resp->allow);
    if (resp->allow[0]) {
      resp->status = 204;
      return 1;
    }
  }
  const char *method = strcmp(req->method, "HEAD") == 0 ? "GET" : req->method;
  req->route = gw_route_match(routes, n_routes, method, req->path, req, &status);
  const gw_route *rt = req->route;
  if (too_large) {
    gw_fail_set(&f, 413, "", "", "request body larger than %u bytes", GW_MAX_BODY);
    fail_resp(req, rt ? rt->dialect : gw_dialect_for_path(req->path), &f, resp);
    return 1;
  }
  if (!rt) {
    if (status == 405)
      gw_fail_set(&f, 405, "", "", "method %s not allowed on %s", req->method, req->path);
    else
      gw_fail_set(&f, 404, "", "", "no such path %s", req->path);
    fail_resp(req, gw_dialect_for_path(req->path), &f, resp);
    if (status == 405) gw_route_allow(routes, n_routes, req->path, resp->allow, sizeof resp->allow);
    return 1;
  }
  if (rt->local) {
    rt->local(req, resp);
    return 1;
  }
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(rt->service, strrchr(rt->rpc, '/') + 1);
  if (!md) {
    gw_fail_set(&f, 500, "", "", "route to an unknown method");
    goto fail;
  }
  if (rt->dialect->check && rt->dialect->check(req, &f) < 0) goto fail;
  spec->in = calloc(1, md->input->sizeof_message);
  if (!spec->in) {
    gw_fail_set(&f, 500, "", "", "out of memory");
    goto fail;
  }
  md->input->message_init(spec->in);
  /* The http rule's path variables first; a value that the field cannot
   * hold (a word for an integer id) names no resource. */
  if (gw_bind_path(req, spec->in, &f) < 0) {
    if (f.http == 400) gw_fail_set(&f, 404, "", "", "no such resource %s", req->path);
    goto free_in;
  }
  if ((rt->build ? rt->build : gw_bind_request)(req, spec->in, &f) < 0) goto free_in;
  spec->method = rt->rpc;
  spec->out_desc = md->output;
  spec->timeout_ms = rt->timeout_ms ? rt->timeout_ms : rpc_timeout_ms;
  return 0;
free_in:
  protobuf_c_message_free_unpacked(spec->in, NULL);
  spec->in = NULL;
fail:
  fail_resp(req, rt->dialect, &f, resp);
  return 1;
}

/* Failures that come from the transport or the service's insides: their
 * texts (addresses, socket errors) are not for clients. */
static const char *generic_message(grpc_status_code code, int *retry_after) {
  switch (code) {
  case GRPC_STATUS_UNAVAILABLE:
  case GRPC_STATUS_CANCELLED:
    *retry_after = 1;
    return "the service is unavailable; retry later";
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    return "the service did not answer in time";
  case GRPC_STATUS_UNKNOWN:
  case GRPC_STATUS_INTERNAL:
  case GRPC_STATUS_DATA_LOSS:
    return "internal error";
  default:
    return NULL;
  }
}

/* The message a renderer gets: the http rule's response_body field of the
 * response (GetEventResponse's event), an empty one of its type when the
 * service left it unset (*owned then holds it), or the response itself. */
static const ProtobufCMessage *response_body(const gw_route *rt, const ProtobufCMessage *out,
                                             ProtobufCMessage **owned) {
  *owned = NULL;
  if (!rt->response_field || !*rt->response_field) return out;
  const ProtobufCFieldDescriptor *fd =
      protobuf_c_message_descriptor_get_field_by_name(out->descriptor, rt->response_field);
  if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE) return out;
  const ProtobufCMessage *inner;
  memcpy(&inner, (const char *)out + fd->offset, sizeof inner);
  if (inner) return inner;
  const ProtobufCMessageDescriptor *d = fd->descriptor;
  if ((*owned = calloc(1, d->sizeof_message))) d->message_init(*owned);
  return *owned ? *owned : out;
}

void gw_finish(gw_req *req, gw_call_spec *spec, gw_rpc_result *res, gw_resp *resp) {
  const gw_route *rt = req->route;
  gw_fail f = {0};
  int retry_after = 0;
  if (res->code == GRPC_STATUS_OK) {
    gw_render_fn render = rt->render ? rt->render : gw_render_default;
    ProtobufCMessage *empty;
    const ProtobufCMessage *body = response_body(rt, res->response, &empty);
    int rc = render(req, spec->in, body, resp, &f);
    free(empty);
    if (rc < 0) goto fail;
    if (!resp->content_type) resp->content_type = rt->dialect->content_type;
    goto done;
  }
  /* The service never cancels; a CANCELLED is a call it dropped unstarted
   * while shutting down, which a client may retry elsewhere. */
  f.code = res->code == GRPC_STATUS_CANCELLED ? GRPC_STATUS_UNAVAILABLE : res->code;
  f.http = gw_http_status(f.code);
  const char *generic = generic_message(res->code, &retry_after);
  if (generic && res->message && *res->message)
    log_json(LOG_LEVEL_WARN, "service call failed",
             json_pack("{s:s, s:i, s:s, s:s, s:s}", "rpc", spec->method, "code", (int)res->code,
                       "detail", res->message, "request_id", req->request_id, "trace_id",
                       req->trace.trace_hex));
  snprintf(f.message, sizeof f.message, "%s", generic ? generic : res->message ? res->message : "");
  f.bad_request = res->bad_request;
  if (res->bad_request && res->bad_request->n_field_violations) {
    const Google__Rpc__BadRequest__FieldViolation *v = res->bad_request->field_violations[0];
    snprintf(f.field, sizeof f.field, "%s", v->field);
    snprintf(f.reason, sizeof f.reason, "%s", v->reason);
  }
  if (rt->render_failures && rt->render(req, spec->in, NULL, resp, &f) == 0) goto done;
fail:
  gw_resp_clear(resp);
  fail_resp(req, rt->dialect, &f, resp);
  resp->retry_after = retry_after;
done:
  gw_rpc_result_clear(res);
  if (spec->in) protobuf_c_message_free_unpacked(spec->in, NULL);
  memset(spec, 0, sizeof *spec);
}

void gw_handle(gw_req *req, int too_large, gw_resp *resp) {
  gw_call_spec spec;
  if (gw_begin(req, too_large, resp, &spec)) return;
  gw_rpc_result res = {0};
  if (req->call(spec.method, req, spec.in, spec.out_desc, spec.timeout_ms, &res) < 0 &&
      res.code == GRPC_STATUS_OK)
    res.code = GRPC_STATUS_INTERNAL;
  gw_finish(req, &spec, &res, resp);
}
