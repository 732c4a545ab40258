/* gw_http.c - libmicrohttpd front: one thread per connection (handlers block
 * on a gRPC call), bodies buffered up to 1 MiB with 413 decided from
 * Content-Length before reading, X-Request-Id on every response, and the
 * generic route -> build -> call -> render pipeline. */
#include "gw_http.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "gw.h"
#include "gw_guard.h"
#include "gw_tls.h"
#include "ids.h"
#include "log.h"
#include "metrics.h"

struct gw_http {
  struct MHD_Daemon *daemon;
  gw_http_config cfg;
};

typedef struct conn_state {
  char *body;
  size_t len, cap;
  int too_large;
  long long started_us;
} conn_state;

static int rpc_timeout_ms = 10000;

static int valid_request_id(const char *s) {
  size_t n = strlen(s);
  if (n == 0 || n > 64) return 0;
  for (size_t i = 0; i < n; i++)
    if (s[i] < 0x21 || s[i] > 0x7e) return 0;
  return 1;
}

static enum MHD_Result send_resp(struct MHD_Connection *conn, const gw_req *req, gw_resp *r) {
  char *text = r->text;
  if (!text && r->body) text = json_dumps(r->body, JSON_COMPACT | JSON_ENCODE_ANY);
  size_t len = text ? strlen(text) : 0;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, text ? text : "", MHD_RESPMEM_MUST_COPY);
  if (text != r->text) free(text);
  if (!resp) return MHD_NO;
  if (r->body || r->text)
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json; charset=utf-8");
  MHD_add_response_header(resp, "X-Request-Id", req->request_id);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
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

/* The RPC pipeline for one routed request. */

/* The text a client may see for a call's status. Codes that gRPC core itself
 * produces (a refused or reset connection, a deadline, a broken stream)
 * carry transport text, addresses included; those are logged here and
 * answered generically. The service's own texts of other codes pass. */
const char *gw_public_message(grpc_status_code code, const char *message) {
  const char *generic = NULL;
  switch (code) {
  case GRPC_STATUS_UNAVAILABLE:
    generic = "service unavailable";
    break;
  case GRPC_STATUS_DEADLINE_EXCEEDED:
    generic = "deadline exceeded";
    break;
  case GRPC_STATUS_CANCELLED:
  case GRPC_STATUS_UNKNOWN:
  case GRPC_STATUS_INTERNAL:
  case GRPC_STATUS_DATA_LOSS:
    generic = "internal error";
    break;
  default:
    return message ? message : "";
  }
  if (message && *message && strcmp(message, generic) != 0)
    log_printf(LOG_LEVEL_WARN, "grpc status %d: %s", (int)code, message);
  return generic;
}

static void serve_rpc(gw_req *req, gw_resp *resp) {
  const gw_route *rt = req->route;
  const gw_dialect *d = rt->dialect;
  gw_fail f = {0};
  ProtobufCMessage *in = NULL;
  gw_rpc_result res = {0};

  const char *mname = strrchr(rt->rpc, '/') + 1;
  const ProtobufCMethodDescriptor *md =
      protobuf_c_service_descriptor_get_method_by_name(rt->service, mname);
  if (!md) {
    gw_fail_set(&f, 500, "", "", "route to an unknown method");
    goto fail;
  }
  if (d->check && d->check(req, &f) < 0) goto fail;
  in = calloc(1, md->input->sizeof_message);
  if (!in) {
    gw_fail_set(&f, 500, "", "", "out of memory");
    goto fail;
  }
  md->input->message_init(in);
  if (rt->build(req, in, &f) < 0) goto fail;
  if (req->call(rt->rpc, req, in, md->output, rpc_timeout_ms, &res) < 0 &&
      res.code == GRPC_STATUS_OK)
    res.code = GRPC_STATUS_INTERNAL;
  if (res.code != GRPC_STATUS_OK) {
    f.http = gw_http_status(res.code);
    f.code = res.code;
    snprintf(f.message, sizeof f.message, "%s", gw_public_message(res.code, res.message));
    f.bad_request = res.bad_request;
    if (res.bad_request && res.bad_request->n_field_violations) {
      const Google__Rpc__BadRequest__FieldViolation *v = res.bad_request->field_violations[0];
      snprintf(f.field, sizeof f.field, "%s", v->field);
      snprintf(f.reason, sizeof f.reason, "%s", v->reason);
    }
    goto fail;
  }
  if (rt->render(req, in, res.response, resp, &f) < 0) goto fail;
  if (!resp->content_type) resp->content_type = d->content_type;
  goto done;
fail:
  gw_resp_clear(resp);
  fail_resp(req, d, &f, resp);
done:
  gw_rpc_result_clear(&res);
  if (in) protobuf_c_message_free_unpacked(in, NULL);
}

void gw_handle(gw_req *req, int too_large, gw_resp *resp) {
  gw_fail f = {0};
  size_t n_routes;
  const gw_route *routes = gw_routes(&n_routes);
  int status = 404;
  req->route = gw_route_match(routes, n_routes, req->method, req->path, req, &status);
  if (too_large) {
    gw_fail_set(&f, 413, "", "", "request body larger than %u bytes", GW_MAX_BODY);
    fail_resp(req, req->route ? req->route->dialect : gw_dialect_for_path(req->path), &f, resp);
  } else if (!req->route) {
    if (status == 405)
      gw_fail_set(&f, 405, "", "", "method %s not allowed on %s", req->method, req->path);
    else
      gw_fail_set(&f, 404, "", "", "no such path %s", req->path);
    fail_resp(req, gw_dialect_for_path(req->path), &f, resp);
  } else if (req->route->local) {
    req->route->local(req, resp);
  } else {
    serve_rpc(req, resp);
  }
}

static void log_request(const gw_req *req, int status, long long us) {
  int level = status >= 500 ? LOG_LEVEL_WARN : LOG_LEVEL_INFO;
  if (!log_enabled(level)) return;
  const log_field f[] = {
      {.key = "method", .kind = LOG_STR, .s = req->method},
      {.key = "path", .kind = LOG_STR, .s = req->path},
      {.key = "status", .kind = LOG_INT, .i = status},
      {.key = "ms", .kind = LOG_NUM, .d = (double)us / 1000.0},
      {.key = "request_id", .kind = LOG_STR, .s = req->request_id},
  };
  log_fields(level, "http", f, sizeof f / sizeof *f);
}

/* Series are labelled by route template, never by raw path, so their number
 * stays bounded whatever clients send. */
static void observe(const gw_req *req, int status, long long us) {
  char route[256], labels[512];
  metrics_label(req->route ? req->route->tmpl : "unmatched", route, sizeof route);
  const char *m = req->route ? req->route->method : "other";
  snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\",status=\"%d\"", m, route, status);
  metrics_count("events_http_requests_total", labels, 1);
  snprintf(labels, sizeof labels, "method=\"%s\",route=\"%s\"", m, route);
  metrics_observe("events_http_request_duration_seconds", labels, (double)us / 1e6);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls;
  (void)version;
  conn_state *cs = *con_cls;
  if (!cs) {
    enum MHD_Result refused;
    if (gw_guard_request(conn, method, url, version, &refused)) return refused;
    cs = calloc(1, sizeof *cs);
    if (!cs) return MHD_NO;
    cs->started_us = ids_now_us();
    *con_cls = cs;
    /* Refuse an announced oversize body before reading any of it. */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > GW_MAX_BODY) cs->too_large = 1;
    if (!cs->too_large) return MHD_YES;
  } else if (*upload_size) {
    if (!cs->too_large && cs->len + *upload_size > GW_MAX_BODY) cs->too_large = 1;
    if (!cs->too_large) {
      if (cs->len + *upload_size + 1 > cs->cap) {
        size_t cap = cs->cap ? cs->cap : 4096;
        while (cap < cs->len + *upload_size + 1)
          cap *= 2;
        char *nb = realloc(cs->body, cap);
        if (!nb) return MHD_NO;
        cs->body = nb;
        cs->cap = cap;
      }
      memcpy(cs->body + cs->len, upload, *upload_size);
      cs->len += *upload_size;
      cs->body[cs->len] = '\0';
    }
    *upload_size = 0;
    return MHD_YES;
  }

  gw_req req = {.conn = conn,
                .call = gw_rpc_call,
                .method = method,
                .path = url,
                .body = cs->body ? cs->body : "",
                .body_len = cs->len};
  req.authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  const char *rid = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-Request-Id");
  if (rid && valid_request_id(rid))
    snprintf(req.request_id, sizeof req.request_id, "%s", rid);
  else
    ids_uuid4(req.request_id);

  metrics_gauge_add("events_http_requests_in_flight", "", 1);
  gw_resp resp = {0};
  gw_handle(&req, cs->too_large, &resp);
  enum MHD_Result ret = send_resp(conn, &req, &resp);
  long long us = ids_now_us() - cs->started_us;
  log_request(&req, resp.status, us);
  observe(&req, resp.status, us);
  gw_resp_clear(&resp);
  gw_req_free_params(&req);
  metrics_gauge_add("events_http_requests_in_flight", "", -1);
  return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  (void)conn;
  (void)toe;
  conn_state *cs = *con_cls;
  if (!cs) return;
  free(cs->body);
  free(cs);
  *con_cls = NULL;
}

int gw_http_start(const gw_http_config *cfg, gw_http **out, int *port, char *err, size_t errlen) {
  struct sockaddr_in sa;
  if (config_parse_addr(cfg->addr, &sa) < 0) {
    snprintf(err, errlen, "bad listen address \"%s\" (want IPv4 host:port)", cfg->addr);
    return -1;
  }
  gw_http *h = calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  h->cfg = *cfg;
  rpc_timeout_ms = cfg->rpc_timeout_ms;
  /* HTTPS is optional, so its options travel in an array. */
  struct MHD_OptionItem tls_opts[] = {
      {cfg->https ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0,
       cfg->https ? gw_tls_cert_callback() : NULL},
      {MHD_OPTION_END, 0, NULL},
  };
  h->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_THREAD_PER_CONNECTION | MHD_USE_ERROR_LOG |
          (cfg->https ? MHD_USE_TLS : 0),
      0, NULL, NULL, on_request, h, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
      MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL, MHD_OPTION_CONNECTION_LIMIT,
      cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT, cfg->idle_timeout_s,
      MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(64 * 1024), MHD_OPTION_LISTENING_ADDRESS_REUSE,
      1, GW_GUARD_MHD_OPTIONS, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
  if (!h->daemon) {
    snprintf(err, errlen, "cannot listen on %s", cfg->addr);
    free(h);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : 0;
  *out = h;
  return 0;
}

void gw_http_stop(gw_http *h) {
  MHD_socket s = MHD_quiesce_daemon(h->daemon);
  if (s != MHD_INVALID_SOCKET) close(s);
  MHD_stop_daemon(h->daemon);
  free(h);
}
