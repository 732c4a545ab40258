/* rpc_status.c - call outcomes: status codes, messages and the
 * google.rpc.Status/BadRequest details that let the gateway name the field. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/slice.h>

#include "google/protobuf/any.pb-c.h"
#include "google/rpc/status.pb-c.h"
#include "log.h"
#include "metrics.h"
#include "rpc_int.h"
#include "store_live.h"

const char *rpc_tenant(const rpc_call *c) {
  return c->tenant;
}

int rpc_failed(const rpc_call *c) {
  return c->status != GRPC_STATUS_OK;
}

static char *vformat(const char *fmt, va_list ap) {
  char *s = NULL;
  if (vasprintf(&s, fmt, ap) < 0) return NULL;
  return s;
}

void rpc_fail(rpc_call *c, grpc_status_code code, const char *fmt, ...) {
  if (c->status != GRPC_STATUS_OK) return; /* the first failure explains the call */
  va_list ap;
  va_start(ap, fmt);
  c->status = code;
  c->message = vformat(fmt, ap);
  va_end(ap);
}

/* Records a violation; the first one gives the call its status `code`. */
static void add_violation(rpc_call *c, grpc_status_code code, const char *field, const char *reason,
                          const char *fmt, va_list ap) {
  if (c->status != GRPC_STATUS_OK && c->status != code) return;
  if (c->n_violations >= 100) return; /* bounded: one bad list should not flood the reply */
  /* One violation per field: the first explains it (the declared checks
   * run before the handler's, which may find the same absence). */
  for (size_t i = 0; i < c->n_violations; i++)
    if (strcmp(c->violations[i]->field, field) == 0) return;
  Google__Rpc__BadRequest__FieldViolation *v = malloc(sizeof *v);
  void *grown = realloc(c->violations, (c->n_violations + 1) * sizeof *c->violations);
  if (!v || !grown) {
    free(v);
    if (grown) c->violations = grown;
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  c->violations = grown;
  google__rpc__bad_request__field_violation__init(v);
  v->description = vformat(fmt, ap);
  v->field = strdup(field);
  v->reason = strdup(reason ? reason : "");
  c->violations[c->n_violations++] = v;
  if (c->status == GRPC_STATUS_OK) {
    c->status = code;
    c->message = strdup(v->description ? v->description : "invalid argument");
  }
}

void rpc_violation(rpc_call *c, const char *field, const char *reason, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_violation(c, GRPC_STATUS_INVALID_ARGUMENT, field, reason, fmt, ap);
  va_end(ap);
}

void rpc_conflict(rpc_call *c, const char *field, const char *reason, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  add_violation(c, GRPC_STATUS_ALREADY_EXISTS, field, reason, fmt, ap);
  va_end(ap);
}

void rpc_fail_store(rpc_call *c, const store_err *err) {
  rpc_fail_store_as(c, err, "resource");
}

/* A store failure as the client sees it: a generic text about `what` (the
 * dialect's resource). The store's own message (driver, SQL, server text:
 * names of collections and indexes, addresses, E11000...) only goes to the
 * log, with what ties the line to the call. */
void rpc_fail_store_as(rpc_call *c, const store_err *err, const char *what) {
  grpc_status_code code;
  const char *text;
  char buf[128];
  switch (err->code) {
  case STORE_ENOTFOUND:
    code = GRPC_STATUS_NOT_FOUND;
    snprintf(buf, sizeof buf, "%s not found", what);
    text = buf;
    break;
  case STORE_EDUPLICATE:
    code = GRPC_STATUS_ALREADY_EXISTS;
    snprintf(buf, sizeof buf, "%s already exists", what);
    text = buf;
    break;
  case STORE_EUNAVAILABLE:
    code = GRPC_STATUS_UNAVAILABLE;
    store_live_down();
    text = "store unavailable";
    break;
  case STORE_EBUSY: /* retryable too, but readiness stays: other calls get through */
    code = GRPC_STATUS_UNAVAILABLE;
    text = "store busy, try again";
    break;
  case STORE_EINVAL:
    code = GRPC_STATUS_INVALID_ARGUMENT;
    snprintf(buf, sizeof buf, "invalid %s request", what);
    text = buf;
    break;
  default:
    code = GRPC_STATUS_INTERNAL;
    text = "internal error";
    break;
  }
  char labels[64];
  snprintf(labels, sizeof labels, "code=\"%d\"", err->code);
  metrics_count("events_store_errors_total", labels, 1);
  if (c->status == GRPC_STATUS_OK) {
    int level = code == GRPC_STATUS_INTERNAL || code == GRPC_STATUS_UNAVAILABLE ? LOG_LEVEL_ERROR
                                                                                : LOG_LEVEL_INFO;
    if (log_enabled(level)) {
      log_field f[5] = {
          {.key = "store_code", .kind = LOG_INT, .i = err->code},
          {.key = "detail", .kind = LOG_STR, .s = err->msg},
          {.key = "trace_id", .kind = LOG_STR, .s = c->trace ? c->trace->trace_hex : ""},
          {.key = "span_id", .kind = LOG_STR, .s = c->trace ? c->trace->span_hex : ""},
      };
      size_t n = 4;
      if (c->request_id[0])
        f[n++] = (log_field){.key = "request_id", .kind = LOG_STR, .s = c->request_id};
      log_fields(level, "store error", f, n);
    }
  }
  rpc_fail(c, code, "%s", text);
}

/* Appends a violation whatever the call's status: a failed atomic batch
 * names its items' fields, whichever code each item failed with. */
void rpc_violation_add(rpc_call *c, grpc_status_code code, const char *field, const char *reason,
                       const char *description) {
  if (c->n_violations >= 100) return;
  Google__Rpc__BadRequest__FieldViolation *v = malloc(sizeof *v);
  void *grown = realloc(c->violations, (c->n_violations + 1) * sizeof *c->violations);
  if (grown) c->violations = grown;
  if (!v || !grown) {
    free(v);
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return;
  }
  google__rpc__bad_request__field_violation__init(v);
  v->field = strdup(field);
  v->reason = strdup(reason ? reason : "");
  v->description = strdup(description ? description : "");
  c->violations[c->n_violations++] = v;
  if (c->status == GRPC_STATUS_OK) {
    c->status = code;
    c->message = strdup(v->description);
  }
}

Google__Rpc__Status *rpc_status_message(const rpc_call *c) {
  Google__Rpc__Status *st = malloc(sizeof *st);
  if (!st) return NULL;
  google__rpc__status__init(st);
  st->code = (int32_t)c->status;
  st->message = strdup(c->message ? c->message : "");
  if (!st->message) goto fail_status;
  if (c->n_violations == 0) return st;
  Google__Rpc__BadRequest br = GOOGLE__RPC__BAD_REQUEST__INIT;
  br.n_field_violations = c->n_violations;
  br.field_violations = c->violations;
  size_t blen = google__rpc__bad_request__get_packed_size(&br);
  Google__Protobuf__Any *any = malloc(sizeof *any);
  if (!any || !(st->details = malloc(sizeof *st->details))) {
    free(any);
    goto fail_status;
  }
  google__protobuf__any__init(any);
  st->details[0] = any;
  st->n_details = 1;
  any->type_url = strdup("type.googleapis.com/google.rpc.BadRequest");
  any->value.data = malloc(blen ? blen : 1);
  if (!any->type_url || !any->value.data) goto fail_status;
  any->value.len = google__rpc__bad_request__pack(&br, any->value.data);
  return st;
fail_status:
  protobuf_c_message_free_unpacked(&st->base, NULL);
  return NULL;
}

void rpc_status_finish(rpc_call *c) {
  if (c->n_violations == 0) return;
  Google__Rpc__Status *st = rpc_status_message(c);
  if (!st) return;
  size_t slen = google__rpc__status__get_packed_size(st);
  c->details_bin = grpc_slice_malloc(slen);
  google__rpc__status__pack(st, GRPC_SLICE_START_PTR(c->details_bin));
  c->has_details = 1;
  protobuf_c_message_free_unpacked(&st->base, NULL);
}

void rpc_status_clear(rpc_call *c) {
  for (size_t i = 0; i < c->n_violations; i++) {
    free(c->violations[i]->field);
    free(c->violations[i]->description);
    free(c->violations[i]->reason);
    free(c->violations[i]);
  }
  free(c->violations);
  free(c->message);
  if (c->has_details) grpc_slice_unref(c->details_bin);
}
