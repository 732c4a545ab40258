/* rpc_metrics.c - GET /metrics of events-service on its own plain-HTTP
 * port, so Prometheus scrapes it without gRPC, and /healthz and /readyz
 * for probes that cannot speak gRPC over TLS. One polling thread is plenty:
 * a scrape renders a few kilobytes. */
#include "rpc_metrics.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "config.h"
#include "grpc/health/v1/health.pb-c.h"
#include "metrics.h"
#include "rpc_health.h"

struct rpc_metrics {
  struct MHD_Daemon *daemon;
  store *st;
};

void rpc_metrics_describe(void) {
  metrics_describe("grpc_server_started_total", "counter",
                   "Total number of RPCs started on the server.");
  metrics_describe("grpc_server_handled_total", "counter",
                   "Total number of RPCs completed on the server, regardless of success or "
                   "failure.");
  metrics_describe(
      "grpc_server_handling_seconds", "histogram",
      "Histogram of response latency (seconds) of gRPC that had been application-level "
      "handled by the server.");
  metrics_describe("grpc_server_msg_received_total", "counter",
                   "Total number of RPC stream messages received on the server.");
  metrics_describe("grpc_server_msg_sent_total", "counter",
                   "Total number of gRPC stream messages sent by the server.");
  metrics_describe("events_rpc_in_flight", "gauge", "RPCs being served");
  metrics_describe("events_rpc_skipped_total", "counter",
                   "calls answered without running their handler because the client had "
                   "cancelled or the deadline had passed, by method and reason");
  metrics_describe("events_store_errors_total", "counter",
                   "store failures seen by handlers, by store error code");
  metrics_describe("events_store_calls_in_flight", "gauge",
                   "store calls running (pool connections in use)");
  metrics_describe("events_store_calls_total", "counter", "store calls made");
  metrics_describe("events_store_unavailable_total", "counter",
                   "store calls that failed because the store was unreachable");
}

static void sample_store(store *st) {
  store_stats s;
  store_get_stats(st, &s);
  metrics_gauge_set("events_store_calls_in_flight", "", (double)s.in_flight);
  metrics_gauge_set("events_store_calls_total", "", (double)s.calls);
  metrics_gauge_set("events_store_unavailable_total", "", (double)s.unavailable);
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *upload,
                                  size_t *upload_size, void **con_cls) {
  (void)version;
  (void)upload;
  (void)upload_size;
  (void)con_cls;
  rpc_metrics *m = cls;
  int get = strcmp(method, "GET") == 0;
  int status = 404;
  char *text = NULL;
  const char *body = "not found\n", *type = "text/plain; charset=utf-8";
  if (get && strcmp(url, "/metrics") == 0) {
    sample_store(m->st);
    text = metrics_render();
    body = text ? text : "";
    status = text ? 200 : 500;
    type = "text/plain; version=0.0.4; charset=utf-8";
  } else if (get && strcmp(url, "/healthz") == 0) {
    /* Plain HTTP twins of health "liveness" and "": probes for when gRPC
     * is served over TLS, which the kubelet's gRPC probe cannot speak. */
    status = 200;
    body = "{\"status\":\"ok\"}";
    type = "application/json";
  } else if (get && strcmp(url, "/readyz") == 0) {
    int ready =
        rpc_health_status("") == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
    status = ready ? 200 : 503;
    body = ready ? "{\"status\":\"ready\"}" : "{\"status\":\"unavailable\"}";
    type = "application/json";
  }
  struct MHD_Response *r =
      MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
  free(text);
  if (!r) return MHD_NO;
  MHD_add_response_header(r, "Content-Type", type);
  enum MHD_Result ret = MHD_queue_response(conn, (unsigned)status, r);
  MHD_destroy_response(r);
  return ret;
}

int rpc_metrics_start(const char *addr, store *st, rpc_metrics **out, int *port, char *err,
                      size_t errlen) {
  struct sockaddr_in sa;
  if (config_parse_addr(addr, &sa) < 0) {
    snprintf(err, errlen, "bad EVENTS_METRICS_ADDR \"%s\" (want IPv4 host:port)", addr);
    return -1;
  }
  rpc_metrics *m = calloc(1, sizeof *m);
  if (!m) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  m->st = st;
  m->daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
                               on_request, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
                               MHD_OPTION_CONNECTION_LIMIT, 64u, MHD_OPTION_CONNECTION_TIMEOUT, 10u,
                               MHD_OPTION_END);
  if (!m->daemon) {
    snprintf(err, errlen, "cannot listen on %s", addr);
    free(m);
    return -1;
  }
  const union MHD_DaemonInfo *info = MHD_get_daemon_info(m->daemon, MHD_DAEMON_INFO_BIND_PORT);
  *port = info ? info->port : 0;
  *out = m;
  return 0;
}

void rpc_metrics_stop(rpc_metrics *m) {
  if (!m) return;
  MHD_stop_daemon(m->daemon);
  free(m);
}
