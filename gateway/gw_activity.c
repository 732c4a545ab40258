/* gw_activity.c - activity events (seed 000): JSON:API at /api/v2/events. */
#include <string.h>

#include "gw.h"

static const char *error_id(int http) {
  switch (http) {
  case 400: return "badRequest";
  case 401: return "unauthorized";
  case 403: return "forbidden";
  case 404: return "resourceNotFound";
  case 405: return "methodNotAllowed";
  case 409: return "conflict";
  case 413: return "requestEntityTooLarge";
  case 415: return "unsupportedMediaType";
  case 422: return "validationError";
  case 429: return "tooManyRequests";
  case 501: return "notImplemented";
  case 503: return "serviceUnavailable";
  case 504: return "gatewayTimeout";
  default: return "internalServerError";
  }
}

static void activity_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  (void)req;
  int http = f->http;
  json_t *err = json_pack("{s:s, s:s, s:s}", "id", error_id(http), "title",
                          MHD_get_reason_phrase_for((unsigned)http), "detail", f->message);
  if (f->field[0]) {
    char pointer[300];
    snprintf(pointer, sizeof pointer, "/data/attributes/%s", f->field);
    json_object_set_new(err, "source", json_pack("{s:s}", "pointer", pointer));
  }
  resp->body = json_pack("{s:[o]}", "errors", err);
}

const gw_dialect gw_activity = {
    .name = "activity",
    .content_type = "application/vnd.api+json",
    .json_flags = PBJSON_CAMEL,
    .error = activity_error,
};
