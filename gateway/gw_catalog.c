/* gw_catalog.c - catalog events (seed 002) under /api/v1/event/. */
#include "gw.h"

static void catalog_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  (void)req;
  if (f->field[0])
    resp->body = json_pack("{s:s, s:s}", "detail", f->message, "field", f->field);
  else
    resp->body = json_pack("{s:s}", "detail", f->message);
}

const gw_dialect gw_catalog = {
    .name = "catalog",
    .content_type = "application/json",
    .error = catalog_error,
};
