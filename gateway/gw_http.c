/* gw_http.c - the libmicrohttpd front, event driven: a small pool of epoll
 * threads owns every connection, so an idle or slow connection costs memory,
 * not a thread. A whole request is turned into an asynchronous gRPC call
 * (gw_begin); its connection is suspended meanwhile and resumed from the
 * call's completion, when the answer is rendered (gw_finish) and sent.
 * Bodies are buffered up to GW_MAX_BODY with 413 decided from
 * Content-Length before reading; every response carries X-Request-Id. */
#include "gw_http.h"

#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "gw.h"
#include "gw_conn.h"
#include "gw_guard.h"
#include "gw_park.h"
#include "gw_tls.h"
#include "ids.h"
#include "jsontext.h"
#include "log.h"
#include "metrics.h"
#include "otlp.h"

struct gw_http {
  struct MHD_Daemon *daemon;
  gw_http_config cfg;
};

enum { PHASE_READING, PHASE_CALLING, PHASE_ANSWERED };

/* One request, from its first byte to its response. */
typedef struct req_state {
  struct MHD_Connection *conn;
  char *body;
  size_t len, cap;
  int too_large;
  int phase;
  long long started_us;
  uint64_t started_ns;
  gw_req req;
  gw_call_spec spec;
  gw_rpc_result res; /* PHASE_ANSWERED: the call's outcome */
} req_state;

/* Requests whose connection is suspended on a call: drained before stop. */
static long in_flight;

static enum MHD_Result send_resp(struct MHD_Connection *conn, const gw_req *req, gw_resp *r) {
  char *text = r->text;
  if (!text && r->body) text = jsontext_dumps(r->body, JSON_COMPACT | JSON_ENCODE_ANY);
  size_t len = text ? strlen(text) : 0;
  struct MHD_Response *resp =
      MHD_create_response_from_buffer(len, text ? text : "", MHD_RESPMEM_MUST_COPY);
  if (text != r->text) free(text);
  if (!resp) return MHD_NO;
  if (r->body || r->text)
    MHD_add_response_header(resp, "Content-Type",
                            r->content_type ? r->content_type : "application/json; charset=utf-8");
  MHD_add_response_header(resp, "X-Request-Id", req->request_id);
  if (r->allow[0]) MHD_add_response_header(resp, "Allow", r->allow);
  if (r->status == 401) MHD_add_response_header(resp, "WWW-Authenticate", gw_challenge(req->path));
  if (r->retry_after) {
    char secs[16];
    snprintf(secs, sizeof secs, "%d", r->retry_after);
    MHD_add_response_header(resp, "Retry-After", secs);
  }
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
  MHD_destroy_response(resp);
  return ret;
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
      {.key = "trace_id", .kind = LOG_STR, .s = req->trace.trace_hex},
      {.key = "span_id", .kind = LOG_STR, .s = req->trace.span_hex},
  };
  log_fields(level, "http", f, sizeof f / sizeof *f);
}

/* Series are labelled by route template and status class, never by raw
 * path or exact status, so their number stays bounded whatever clients send. */
void gw_http_observe(const gw_route *rt, int status, long long us) {
  char route[256], labels[512];
  metrics_label(rt ? rt->tmpl : "unmatched", route, sizeof route);
  const char *m = rt ? rt->method : "other";
  snprintf(labels, sizeof labels, "code=\"%dxx\",method=\"%s\",route=\"%s\"", status / 100, m,
           route);
  metrics_count("events_http_requests_total", labels, 1);
  metrics_observe("events_http_request_duration_seconds", labels, (double)us / 1e6);
}

static void export_span(const req_state *rs, int status) {
  if (!otlp_enabled()) return;
  const gw_req *req = &rs->req;
  const char *route = req->route ? req->route->tmpl : "unmatched";
  char name[300], code[8];
  snprintf(name, sizeof name, "%s %s", req->method, route);
  snprintf(code, sizeof code, "%d", status);
  const otlp_attr attrs[] = {
      {"http.request.method", req->method}, {"http.route", route},
      {"http.response.status_code", code},  {"url.path", req->path},
      {"request_id", req->request_id},
  };
  otlp_record(&req->trace, name, OTLP_SPAN_SERVER, rs->started_ns, otlp_now_ns(), status >= 500,
              attrs, sizeof attrs / sizeof *attrs);
}

/* Sends the response, then logs, counts and exports the request. */
static enum MHD_Result respond(req_state *rs, gw_resp *resp) {
  enum MHD_Result ret = send_resp(rs->conn, &rs->req, resp);
  long long us = ids_now_us() - rs->started_us;
  log_request(&rs->req, resp->status, us);
  gw_http_observe(rs->req.route, resp->status, us);
  export_span(rs, resp->status);
  gw_resp_clear(resp);
  return ret;
}

/* On the completion thread: hand the outcome over and wake the connection. */
static void on_answer(void *arg, gw_rpc_result *res) {
  req_state *rs = arg;
  rs->res = *res;
  rs->phase = PHASE_ANSWERED;
  MHD_resume_connection(rs->conn); /* takes a lock: publishes the above */
}

static int append_body(req_state *rs, const char *data, size_t n) {
  if (!rs->too_large && rs->len + n > GW_MAX_BODY) rs->too_large = 1;
  if (rs->too_large) return 0;
  if (rs->len + n + 1 > rs->cap) {
    size_t cap = rs->cap ? rs->cap : 4096;
    while (cap < rs->len + n + 1)
      cap *= 2;
    char *nb = realloc(rs->body, cap);
    if (!nb) return -1;
    rs->body = nb;
    rs->cap = cap;
  }
  memcpy(rs->body + rs->len, data, n);
  rs->len += n;
  rs->body[rs->len] = '\0';
  return 0;
}

/* The whole request is in: answer it, or start its call and suspend. */
static enum MHD_Result dispatch(req_state *rs, const char *method, const char *url) {
  struct MHD_Connection *conn = rs->conn;
  gw_req *req = &rs->req;
  gw_conn_busy(conn);
  *req = (gw_req){.conn = conn,
                  .method = method,
                  .path = url,
                  .body = rs->body ? rs->body : "",
                  .body_len = rs->len};
  req->authorization = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
  gw_guard_request_id(conn, req->request_id, sizeof req->request_id);
  const char *tp = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "traceparent");
  const char *ts = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "tracestate");
  trace_begin(&req->trace, tp, tp ? strlen(tp) : 0, ts, ts ? strlen(ts) : 0);

  gw_resp resp = {0};
  if (gw_begin(req, rs->too_large, &resp, &rs->spec)) return respond(rs, &resp);
  rs->phase = PHASE_CALLING;
  __atomic_add_fetch(&in_flight, 1, __ATOMIC_RELAXED);
  metrics_gauge_add("events_http_requests_in_flight", "", 1);
  /* Suspended before the call starts: libmicrohttpd 0.9.75 suspends at
   * once, so a resume from a call that completes immediately finds the
   * connection suspended. */
  MHD_suspend_connection(conn);
  gw_rpc_start(&rs->spec, req, on_answer, rs);
  return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)cls;
  req_state *rs = *con_cls;
  if (!rs) {
    enum MHD_Result refused;
    if (gw_guard_request(conn, method, url, version, &refused)) return refused;
    rs = calloc(1, sizeof *rs);
    if (!rs) return MHD_NO;
    rs->conn = conn;
    rs->started_us = ids_now_us();
    rs->started_ns = otlp_now_ns();
    *con_cls = rs;
    /* Refuse an announced oversize body before reading any of it. */
    const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > GW_MAX_BODY) rs->too_large = 1;
    if (!rs->too_large) return MHD_YES;
    return dispatch(rs, method, url);
  }
  if (rs->phase == PHASE_ANSWERED) {
    gw_resp resp = {0};
    gw_finish(&rs->req, &rs->spec, &rs->res, &resp);
    rs->phase = PHASE_READING;
    metrics_gauge_add("events_http_requests_in_flight", "", -1);
    enum MHD_Result ret = respond(rs, &resp);
    __atomic_sub_fetch(&in_flight, 1, __ATOMIC_RELAXED);
    return ret;
  }
  if (*upload_size) {
    int rc = append_body(rs, upload, *upload_size);
    *upload_size = 0;
    return rc < 0 ? MHD_NO : MHD_YES;
  }
  return dispatch(rs, method, url);
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
  (void)cls;
  gw_conn_request_done(conn, toe == MHD_REQUEST_TERMINATED_COMPLETED_OK);
  req_state *rs = *con_cls;
  if (!rs) return;
  gw_req_free_params(&rs->req);
  free(rs->body);
  free(rs);
  *con_cls = NULL;
}

/* The connection cap counts parked connections too. */
static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t len) {
  (void)addr;
  (void)len;
  const gw_http *h = cls;
  return gw_conn_count() + gw_park_count() < h->cfg.max_connections ? MHD_YES : MHD_NO;
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
  gw_set_rpc_timeout(cfg->rpc_timeout_ms);
  metrics_describe("events_http_requests_total", "counter",
                   "HTTP requests by route, method and status class");
  metrics_describe("events_http_request_duration_seconds", "histogram",
                   "HTTP request latency by route, method and status class");
  metrics_describe("events_http_requests_in_flight", "gauge", "HTTP requests awaiting the service");
  if (gw_conn_reaper_start(cfg->request_timeout_ms) < 0) {
    snprintf(err, errlen, "cannot start the request deadline thread");
    goto free_h;
  }
  /* HTTPS is optional, so its options travel in an array. */
  struct MHD_OptionItem tls_opts[] = {
      {cfg->https ? MHD_OPTION_HTTPS_CERT_CALLBACK : MHD_OPTION_END, 0,
       cfg->https ? gw_tls_cert_callback() : NULL},
      {MHD_OPTION_END, 0, NULL},
  };
  /* A TLS session lives in the library, so HTTPS connections are not
   * parked. MHD_USE_TURBO: a parked socket must outlive the library's close,
   * which then must not shut it down. */
  int parking = cfg->park_after_s && cfg->park_after_s < cfg->idle_timeout_s && !cfg->https;
  gw_conn_park_after(parking ? cfg->park_after_s : 0, cfg->idle_timeout_s);
  /* No MHD_OPTION_LISTENING_ADDRESS_REUSE: a second gateway on a port in
   * use must fail to start, not quietly take part of the traffic. The
   * guard's options come first: they hold the logger, which must be in place
   * before the library reads (and may warn about) the others. A pool of one
   * is the daemon's own thread: the library warns about a size of 1. */
  h->daemon = MHD_start_daemon(
      MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
          MHD_USE_ERROR_LOG | (cfg->https ? MHD_USE_TLS : 0) | (parking ? MHD_USE_TURBO : 0),
      0, admit, h, on_request, h, GW_GUARD_MHD_OPTIONS, MHD_OPTION_SOCK_ADDR,
      (struct sockaddr *)&sa, MHD_OPTION_THREAD_POOL_SIZE, cfg->threads > 1 ? cfg->threads : 0,
      MHD_OPTION_NOTIFY_CONNECTION, gw_conn_notify, NULL, MHD_OPTION_NOTIFY_COMPLETED, on_completed,
      NULL, MHD_OPTION_CONNECTION_LIMIT, cfg->max_connections, MHD_OPTION_CONNECTION_TIMEOUT,
      cfg->idle_timeout_s, MHD_OPTION_CONNECTION_MEMORY_LIMIT, cfg->conn_memory,
      MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)1024, MHD_OPTION_ARRAY, tls_opts, MHD_OPTION_END);
  if (!h->daemon) {
    snprintf(err, errlen, "cannot listen on %s", cfg->addr);
    goto stop_reaper;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(h->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : 0;
  if (parking && gw_park_start(h->daemon, cfg->max_connections,
                               (long long)(cfg->idle_timeout_s - cfg->park_after_s) * 1000) < 0) {
    snprintf(err, errlen, "cannot start the parked-connections thread");
    goto stop_daemon;
  }
  *out = h;
  return 0;
stop_daemon:
  MHD_stop_daemon(h->daemon);
stop_reaper:
  gw_conn_reaper_stop();
free_h:
  free(h);
  return -1;
}

void gw_http_stop(gw_http *h) {
  /* Refuse new connections now, but close the listening socket only after
   * the daemon stops: its epoll workers take it out of their sets on their
   * own time, and one that finds it closed aborts the process ("Failed to
   * remove listen FD from epoll set"). */
  MHD_socket s = MHD_quiesce_daemon(h->daemon);
  if (s != MHD_INVALID_SOCKET) shutdown(s, SHUT_RDWR);
  /* Answer what is in flight: each call ends by its deadline. */
  long long until = ids_now_us() + (long long)h->cfg.rpc_timeout_ms * 1000 + 1000000;
  while (__atomic_load_n(&in_flight, __ATOMIC_RELAXED) > 0 && ids_now_us() < until)
    usleep(10000);
  gw_park_stop(); /* before the daemon: its closes must not park any more */
  MHD_stop_daemon(h->daemon);
  if (s != MHD_INVALID_SOCKET) close(s);
  gw_conn_reaper_stop();
  free(h);
}
