/* gw_customer.c - customer events (seed 001) under
 * /rest-api/enterprise-interface/v1.0: {"data": ...} envelopes and
 * {"error": {...}} bodies with invalid_params. */
#include <string.h>

#include "gw.h"

static const char *exception_name(int http) {
  switch (http) {
  case 400: return "ValidationException";
  case 401: return "UnauthorizedException";
  case 403: return "ForbiddenException";
  case 404: return "NotFoundException";
  case 405: return "MethodNotAllowedException";
  case 413: return "PayloadTooLargeException";
  case 503: return "ServiceUnavailableException";
  default: return "ServerException";
  }
}

static json_t *invalid_param(const char *name, const char *reason, const char *message) {
  return json_pack("{s:s, s:s, s:n, s:s}", "name", name, "reason",
                   reason && *reason ? reason : "invalid_value_format", "value", "message",
                   message);
}

static void customer_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  json_t *data = json_object();
  if (f->http == 400) {
    json_t *params = json_array();
    if (f->bad_request && f->bad_request->n_field_violations) {
      for (size_t i = 0; i < f->bad_request->n_field_violations; i++) {
        const Google__Rpc__BadRequest__FieldViolation *v = f->bad_request->field_violations[i];
        json_array_append_new(params, invalid_param(v->field, v->reason, v->description));
      }
    } else if (f->field[0]) {
      json_array_append_new(params, invalid_param(f->field, f->reason, f->message));
    }
    json_object_set_new(data, "invalid_params", params);
  } else if (f->http == 404 && req->route) {
    const char *id = gw_param(req, "event_id");
    json_object_set_new(data, "resource_name", json_string("events"));
    json_object_set_new(data, "resource_id", id ? json_string(id) : json_null());
  }
  resp->body = json_pack("{s:{s:s, s:s, s:s, s:s, s:o}}", "error", "type", "about:blank",
                         "exception", exception_name(f->http), "title",
                         MHD_get_reason_phrase_for((unsigned)f->http), "detail", f->message,
                         "error_data", data);
}

const gw_dialect gw_customer = {
    .name = "customer",
    .content_type = "application/json; charset=utf-8",
    .json_flags = PBJSON_SQL_TIME,
    .error = customer_error,
};
