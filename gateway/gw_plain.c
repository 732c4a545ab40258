/* gw_plain.c - the error shape for paths outside every dialect. */
#include "gw.h"

static void plain_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  (void)req;
  resp->body =
      json_pack("{s:{s:i, s:o}}", "error", "status", f->http, "message", gw_text(f->message));
}

const gw_dialect gw_plain = {
    .name = "plain",
    .content_type = "application/json; charset=utf-8",
    .error = plain_error,
};
