/* gw_object.c - object events (seed 003) under /v1/objects/{objectId}/events. */
#include "gw.h"

static void object_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  resp->body = json_pack("{s:i, s:s, s:s}", "status_code", f->http, "message", f->message,
                         "request_id", req->request_id);
}

const gw_dialect gw_object = {
    .name = "object",
    .content_type = "application/json; charset=utf-8",
    .error = object_error,
};
