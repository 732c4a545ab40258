/* gw_main.c - events-gateway: configuration, the HTTP server, the shared
 * gRPC channel; serve until SIGTERM/SIGINT, drain, exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>

#include <grpc/grpc.h>

#include "config.h"
#include "gw.h"
#include "gw_http.h"
#include "gw_tls.h"
#include "log.h"
#include "metrics.h"
#include "otlp.h"

static config_var vars[] = {
    {.name = "EVENTS_HTTP_ADDR",
     .def = "127.0.0.1:8080",
     .help = "HTTP listen address",
     .kind = CONFIG_ADDR},
    {.name = "EVENTS_GRPC_TARGET", .def = "127.0.0.1:50051", .help = "the events-service address"},
    {.name = "EVENTS_LOG_LEVEL",
     .def = "info",
     .help = "debug, info, warn or error",
     .kind = CONFIG_LEVEL},
    {.name = "EVENTS_RPC_TIMEOUT_MS",
     .def = "10000",
     .help = "deadline of each gRPC call (250ms, 10s, ...; bare: ms)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1,
     .min = 1,
     .max = 3600 * 1000},
    {.name = "EVENTS_MAX_CONNECTIONS",
     .def = "16384",
     .help = "concurrent HTTP connections (the open-files limit is raised to fit)",
     .kind = CONFIG_INT,
     .min = 1,
     .max = 1000000},
    {.name = "EVENTS_IDLE_TIMEOUT_S",
     .def = "30",
     .help = "idle or stalled connections are closed after this (30s, 2m, ...; bare: s)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1000,
     .min = 1000,
     .max = 24 * 3600 * 1000},
    {.name = "EVENTS_HTTP_PARK_AFTER_S",
     .def = "2",
     .help = "a keep-alive connection idle this long leaves libmicrohttpd, and its memory, "
             "until it sends again (1s, 5s, ...; bare: s; 0: never; plain HTTP only)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1000,
     .min = 0,
     .max = 3600 * 1000},
    {.name = "EVENTS_REQUEST_TIMEOUT_S",
     .def = "30",
     .help = "time to receive a whole request, headers and body, from when the connection is "
             "ready for one (10s, 1m, ...; bare: s; 0: no limit)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1000,
     .min = 0,
     .max = 24 * 3600 * 1000},
    {.name = "EVENTS_HTTP_THREADS",
     .def = "0",
     .help = "HTTP event-loop threads (0: one per CPU less the gRPC completion thread, at least 1)",
     .kind = CONFIG_INT,
     .min = 0,
     .max = 256},
    {.name = "EVENTS_HTTP_CONN_MEMORY_KIB",
     .def = "64",
     .help = "memory of each connection for its request headers, in KiB; held all the time "
             "a connection is in libmicrohttpd (it zeroes it after each request), until it is "
             "parked; headers larger get libmicrohttpd's own 431",
     .kind = CONFIG_INT,
     .min = 8,
     .max = 1024},
    {.name = "EVENTS_OTLP_ENDPOINT", .help = "OTLP/HTTP collector URL: export spans (empty: off)"},
    {.name = "EVENTS_HTTP_TLS_CERT", .help = "PEM certificate chain: serve HTTPS"},
    {.name = "EVENTS_HTTP_TLS_KEY", .help = "PEM private key of EVENTS_HTTP_TLS_CERT"},
    {.name = "EVENTS_GRPC_TLS_CA", .help = "PEM CA bundle: dial the service over TLS"},
    {.name = "EVENTS_GRPC_TLS_CERT", .help = "PEM client certificate for the service (mTLS)"},
    {.name = "EVENTS_GRPC_TLS_KEY", .help = "PEM private key of EVENTS_GRPC_TLS_CERT"},
    {.name = "EVENTS_GRPC_TLS_SERVER_NAME",
     .help = "name the service's certificate must carry (default: the target's host)"},
};
#define N_VARS (sizeof vars / sizeof *vars)

static const char *get(const char *name) {
  return config_get(vars, N_VARS, name);
}

/* Every connection is a descriptor: raise the soft open-files limit to the
 * hard one, and keep the connection cap within it. */
static unsigned fit_connections(unsigned want) {
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return want;
  if (rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    getrlimit(RLIMIT_NOFILE, &rl);
  }
  const rlim_t reserve = 64; /* listeners, epoll, the channel, logs */
  if (rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur >= (rlim_t)want + reserve) return want;
  unsigned fit = rl.rlim_cur > reserve ? (unsigned)(rl.rlim_cur - reserve) : 1;
  log_json(LOG_LEVEL_WARN, "EVENTS_MAX_CONNECTIONS lowered to fit the open-files limit",
           json_pack("{s:i, s:i, s:i}", "wanted", (int)want, "limit", (int)rl.rlim_cur,
                     "max_connections", (int)fit));
  return fit;
}

int main(int argc, char **argv) {
  char err[512];
  config_err cerr;
  log_init("events-gateway", NULL);
  int rc = config_load(argc, argv, vars, N_VARS, &cerr);
  if (rc != 0) return rc < 0 ? config_fail(&cerr) : 0;
  log_init("events-gateway", get("EVENTS_LOG_LEVEL"));
  config_warn_unknown(vars, N_VARS);
  const char *bad_var = NULL;
  tls_files http_tls = {.cert = get("EVENTS_HTTP_TLS_CERT"),
                        .key = get("EVENTS_HTTP_TLS_KEY"),
                        .cert_var = "EVENTS_HTTP_TLS_CERT",
                        .key_var = "EVENTS_HTTP_TLS_KEY"};
  tls_files grpc_tls = {.cert = get("EVENTS_GRPC_TLS_CERT"),
                        .key = get("EVENTS_GRPC_TLS_KEY"),
                        .ca = get("EVENTS_GRPC_TLS_CA"),
                        .cert_var = "EVENTS_GRPC_TLS_CERT",
                        .key_var = "EVENTS_GRPC_TLS_KEY",
                        .ca_var = "EVENTS_GRPC_TLS_CA"};
  const char *server_name = get("EVENTS_GRPC_TLS_SERVER_NAME");
  if (tls_check(&http_tls, &bad_var, cerr.msg, sizeof cerr.msg) < 0 ||
      tls_check(&grpc_tls, &bad_var, cerr.msg, sizeof cerr.msg) < 0) {
    snprintf(cerr.variable, sizeof cerr.variable, "%s", bad_var);
    return config_fail(&cerr);
  }
  /* A server name alone asks for TLS with the system's roots. */
  int grpc_tls_on = tls_enabled(&grpc_tls) || (server_name && *server_name);
  gw_http_config cfg = {
      .addr = get("EVENTS_HTTP_ADDR"),
      .rpc_timeout_ms = (int)config_num(vars, N_VARS, "EVENTS_RPC_TIMEOUT_MS"),
      .max_connections =
          fit_connections((unsigned)config_num(vars, N_VARS, "EVENTS_MAX_CONNECTIONS")),
      .request_timeout_ms = config_num(vars, N_VARS, "EVENTS_REQUEST_TIMEOUT_S"),
      .threads = (unsigned)config_num(vars, N_VARS, "EVENTS_HTTP_THREADS"),
      .conn_memory = (size_t)config_num(vars, N_VARS, "EVENTS_HTTP_CONN_MEMORY_KIB") * 1024,
      /* MHD counts whole seconds; a sub-second setting still closes. */
      .https = tls_enabled(&http_tls),
      .idle_timeout_s =
          (unsigned)((config_num(vars, N_VARS, "EVENTS_IDLE_TIMEOUT_S") + 999) / 1000),
      .park_after_s =
          (unsigned)((config_num(vars, N_VARS, "EVENTS_HTTP_PARK_AFTER_S") + 999) / 1000),
  };

  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  /* Every call's answer is read and turned into JSON on the gRPC completion
   * thread, so it takes one CPU's share: one event loop per CPU besides it.
   * On 2 CPUs shared with the service, one loop against two cost 74-80 µs
   * of gateway CPU per REST get instead of 90-103 (bench/RESULTS.md). */
  if (!cfg.threads) {
    unsigned cpus = config_cpus();
    cfg.threads = cpus > 1 ? cpus - 1 : 1;
  }
  metrics_set_max_seconds((double)cfg.rpc_timeout_ms / 1000.0);
  const char *otlp = get("EVENTS_OTLP_ENDPOINT");
  if (otlp && *otlp && otlp_start(otlp, "events-gateway", cerr.msg, sizeof cerr.msg) < 0) {
    snprintf(cerr.variable, sizeof cerr.variable, "EVENTS_OTLP_ENDPOINT");
    return config_fail(&cerr);
  }

  log_grpc_core();
  grpc_init();
  rc = 1;
  if (gw_routes_load(err, sizeof err) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot build the routes from the API's annotations",
             json_pack("{s:s}", "error", err));
    goto shutdown_grpc;
  }
  if (cfg.https && gw_tls_open(http_tls.cert, http_tls.key, err, sizeof err) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot load the HTTPS certificate",
             json_pack("{s:s}", "error", err));
    goto shutdown_grpc;
  }
  if (gw_rpc_init(get("EVENTS_GRPC_TARGET"), &grpc_tls, grpc_tls_on, server_name) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot create the gRPC channel",
             json_pack("{s:s}", "target", get("EVENTS_GRPC_TARGET")));
    goto close_tls;
  }
  gw_http *http = NULL;
  int port = 0;
  if (gw_http_start(&cfg, &http, &port, err, sizeof err) < 0) {
    log_json(LOG_LEVEL_ERROR, "cannot start the HTTP server", json_pack("{s:s}", "error", err));
    goto close_channel;
  }
  log_json(LOG_LEVEL_INFO, "serving",
           json_pack("{s:s, s:i, s:s, s:b, s:b}", "addr", cfg.addr, "port", port, "target",
                     get("EVENTS_GRPC_TARGET"), "https", cfg.https, "grpc_tls", grpc_tls_on));
  int sig = 0;
  sigwait(&sigs, &sig);
  log_json(LOG_LEVEL_INFO, "draining", json_pack("{s:i}", "signal", sig));
  gw_http_stop(http);
  log_printf(LOG_LEVEL_INFO, "stopped");
  rc = 0;
close_channel:
  gw_rpc_shutdown();
close_tls:
  gw_tls_close();
shutdown_grpc:
  grpc_shutdown();
  otlp_stop(); /* after the server: the last requests' spans are sent */
  return rc;
}
