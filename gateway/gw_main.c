/* gw_main.c - events-gateway: configuration, the HTTP server, the shared
 * gRPC channel; serve until SIGTERM/SIGINT, drain, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <grpc/grpc.h>

#include "config.h"
#include "gw.h"
#include "gw_http.h"
#include "log.h"
#include "metrics.h"

static config_var vars[] = {
    {"EVENTS_HTTP_ADDR", "127.0.0.1:8080", "HTTP listen address", NULL},
    {"EVENTS_GRPC_TARGET", "127.0.0.1:50051", "the events-service address", NULL},
    {"EVENTS_LOG_LEVEL", "info", "debug, info, warn or error", NULL},
    {"EVENTS_RPC_TIMEOUT_MS", "10000", "deadline of each gRPC call", NULL},
    {"EVENTS_MAX_CONNECTIONS", "512", "concurrent HTTP connections", NULL},
    {"EVENTS_IDLE_TIMEOUT_S", "30", "idle or stalled connections are closed after this", NULL},
};
#define N_VARS (sizeof vars / sizeof *vars)

static const char *get(const char *name) {
  return config_get(vars, N_VARS, name);
}

int main(int argc, char **argv) {
  char err[512];
  int rc = config_load(argc, argv, vars, N_VARS, err, sizeof err);
  if (rc != 0) {
    if (rc < 0) fprintf(stderr, "events-gateway: %s (see --help)\n", err);
    return rc < 0 ? 2 : 0;
  }
  if (log_init("events-gateway", get("EVENTS_LOG_LEVEL")) < 0) {
    fprintf(stderr, "events-gateway: EVENTS_LOG_LEVEL must be debug, info, warn or error\n");
    return 2;
  }
  gw_http_config cfg = {
      .addr = get("EVENTS_HTTP_ADDR"),
      .rpc_timeout_ms = atoi(get("EVENTS_RPC_TIMEOUT_MS")),
      .max_connections = (unsigned)atoi(get("EVENTS_MAX_CONNECTIONS")),
      .idle_timeout_s = (unsigned)atoi(get("EVENTS_IDLE_TIMEOUT_S")),
  };
  if (cfg.rpc_timeout_ms <= 0 || cfg.max_connections == 0) {
    fprintf(stderr,
            "events-gateway: EVENTS_RPC_TIMEOUT_MS and EVENTS_MAX_CONNECTIONS must be positive\n");
    return 2;
  }

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  metrics_describe("events_http_requests_total", "counter", "HTTP requests by route and status");
  metrics_describe("events_http_request_duration_seconds", "histogram",
                   "HTTP request latency by route");
  metrics_describe("events_http_requests_in_flight", "gauge", "HTTP requests being served");

  grpc_init();
  rc = 1;
  if (gw_rpc_init(get("EVENTS_GRPC_TARGET")) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot create the gRPC channel",
             json_pack("{s:s}", "target", get("EVENTS_GRPC_TARGET")));
    goto shutdown_grpc;
  }
  gw_http *http = NULL;
  int port = 0;
  if (gw_http_start(&cfg, &http, &port, err, sizeof err) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot start the HTTP server", json_pack("{s:s}", "error", err));
    goto close_channel;
  }
  log_json(LOG_LEVEL_INFO, "serving",
           json_pack("{s:s, s:i, s:s}", "addr", cfg.addr, "port", port, "target",
                     get("EVENTS_GRPC_TARGET")));
  int sig = 0;
  sigwait(&sigs, &sig);
  log_json(LOG_LEVEL_INFO, "draining", json_pack("{s:i}", "signal", sig));
  gw_http_stop(http);
  log_printf(LOG_LEVEL_INFO, "stopped");
  rc = 0;
close_channel:
  gw_rpc_shutdown();
shutdown_grpc:
  grpc_shutdown();
  return rc;
}
