/* main.c - events-service: configuration, start-up checks, serve until
 * SIGTERM/SIGINT, then drain in-flight calls and exit 0. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/grpc.h>

#include "config.h"
#include "creds_live.h"
#include "dialects.h"
#include "grpc/reflection/v1/reflection.pb-c.h"
#include "grpc/reflection/v1alpha/reflection.pb-c.h"
#include "log.h"
#include "otlp.h"
#include "rpc_health.h"
#include "store_live.h"
#include "rpc_metrics.h"
#include "rpc_reflect.h"
#include "feed_prune.h"
#include "rpc_server.h"
#include "store.h"

extern const unsigned char events_descriptor_set[];
extern const size_t events_descriptor_set_len;

static config_var vars[] = {
    {.name = "EVENTS_GRPC_ADDR",
     .def = "127.0.0.1:50051",
     .help = "gRPC listen address",
     .kind = CONFIG_ADDR},
    {.name = "EVENTS_STORE", .def = "sqlite:var/events.db", .help = "mongodb://... or sqlite:PATH"},
    {.name = "EVENTS_CREDENTIALS", .help = "credentials file (required)"},
    {.name = "EVENTS_LOG_LEVEL",
     .def = "info",
     .help = "debug, info, warn or error",
     .kind = CONFIG_LEVEL},
    {.name = "EVENTS_WORKERS",
     .def = "16",
     .help = "worker threads serving calls (one per CPU less one runs at once; the others "
             "take over while one waits on the store, and concurrent writes share a commit "
             "or a bulk insert only as far as there are workers to wait in it)",
     .kind = CONFIG_INT,
     .min = 1,
     .max = 256},
    {.name = "EVENTS_GRACE_MS",
     .def = "20000",
     .help = "how long SIGTERM waits for in-flight calls (250ms, 20s, ...; bare: ms)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1,
     .max = 3600 * 1000},
    {.name = "EVENTS_CHANGES_RETAIN",
     .def = "168h",
     .help = "how long the change log keeps changes for Watch resumes (10s, 2h, ...; bare: ms)",
     .kind = CONFIG_DURATION,
     .unit_ms = 1,
     .min = 1,
     .max = 3650LL * 24 * 3600 * 1000},
    {.name = "EVENTS_METRICS_ADDR",
     .def = "",
     .help = "HTTP address of GET /metrics (empty: off)",
     .kind = CONFIG_ADDR},
    {.name = "EVENTS_OTLP_ENDPOINT", .help = "OTLP/HTTP collector URL: export spans (empty: off)"},
    {.name = "EVENTS_TLS_CERT", .help = "PEM certificate chain: serve gRPC over TLS"},
    {.name = "EVENTS_TLS_KEY", .help = "PEM private key of EVENTS_TLS_CERT"},
    {.name = "EVENTS_TLS_CLIENT_CA", .help = "PEM CA bundle: require client certificates (mTLS)"},
};
#define N_VARS (sizeof vars / sizeof *vars)

static const char *get(const char *name) {
  return config_get(vars, N_VARS, name);
}

/* The store driver's warnings and errors, as JSON log lines. */
static void driver_log(int error, const char *component, const char *message) {
  log_json(error ? LOG_LEVEL_ERROR : LOG_LEVEL_WARN, message,
           json_pack("{s:s}", "component", component));
}

static int fatal(const char *what, const char *detail) {
  json_t *f = json_pack("{s:s}", "error", detail);
  log_json(LOG_LEVEL_ERROR, what, f);
  return 1;
}

/* Workers that wait on the queue at once (rpc_run.c): one per CPU less one,
 * at least one. The CPU left over runs gRPC core's executor and the
 * kernel's socket work; on 2 CPUs one runner against two cost 19 against
 * 28 µs per Health/Check and 40 against 55 per GetEvent (bench/RESULTS.md). */
static int running_workers(int workers) {
  unsigned cpus = config_cpus();
  int n = cpus > 1 ? (int)cpus - 1 : 1;
  return n < workers ? n : workers;
}

int main(int argc, char **argv) {
  char err[512];
  config_err cfgerr;
  log_init("events-service", NULL);
  int rc = config_load(argc, argv, vars, N_VARS, &cfgerr);
  if (rc != 0) return rc < 0 ? config_fail(&cfgerr) : 0;
  log_init("events-service", get("EVENTS_LOG_LEVEL"));
  config_warn_unknown(vars, N_VARS);
  tls_files tls = {.cert = get("EVENTS_TLS_CERT"),
                   .key = get("EVENTS_TLS_KEY"),
                   .ca = get("EVENTS_TLS_CLIENT_CA"),
                   .cert_var = "EVENTS_TLS_CERT",
                   .key_var = "EVENTS_TLS_KEY",
                   .ca_var = "EVENTS_TLS_CLIENT_CA"};
  const char *bad_var = NULL;
  if (tls_check(&tls, &bad_var, cfgerr.msg, sizeof cfgerr.msg) < 0) {
    snprintf(cfgerr.variable, sizeof cfgerr.variable, "%s", bad_var);
    return config_fail(&cfgerr);
  }

  /* Signals are taken synchronously by sigwait below; block them before any
   * thread (gRPC's, the workers, the credentials watcher) exists so none of
   * those receives them. */
  sigset_t sigs;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGTERM);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &sigs, NULL);
  signal(SIGPIPE, SIG_IGN);

  const char *otlp = get("EVENTS_OTLP_ENDPOINT");
  if (otlp && *otlp && otlp_start(otlp, "events-service", cfgerr.msg, sizeof cfgerr.msg) < 0) {
    snprintf(cfgerr.variable, sizeof cfgerr.variable, "EVENTS_OTLP_ENDPOINT");
    return config_fail(&cfgerr);
  }
  creds_live *cr = NULL;
  creds_err cerr;
  if (creds_live_open(get("EVENTS_CREDENTIALS"), 1000, &cr, &cerr) < 0) {
    otlp_stop();
    return fatal("refusing to start without valid credentials", cerr.msg);
  }

  store_set_driver_log(driver_log);
  rpc_metrics_describe();
  rc = 1;
  store *st = NULL;
  store_err serr;
  if (store_open(get("EVENTS_STORE"), dialects_schema(), &st, &serr) < 0) {
    fatal("cannot open the store", serr.msg);
    goto free_creds;
  }
  if (store_live_start(st) < 0) {
    fatal("cannot start the store pinger", "pthread_create");
    goto close_store;
  }
  if (feed_prune_start(st, config_num(vars, N_VARS, "EVENTS_CHANGES_RETAIN")) < 0) {
    fatal("cannot start the change log pruner", "pthread_create");
    store_live_stop();
    goto close_store;
  }

  size_t n_dialects;
  const dialect *const *ds = dialects_all(&n_dialects);
  const char *names[8];
  rpc_service_def defs[8];
  size_t n = 0;
  for (size_t i = 0; i < n_dialects; i++) {
    defs[n] = ds[i]->service;
    names[n++] = ds[i]->service.desc->name;
  }
  names[n] = "grpc.health.v1.Health";
  defs[n] = rpc_health_def(names, n + 1);
  n++;
  names[n++] = "grpc.reflection.v1.ServerReflection";
  names[n++] = "grpc.reflection.v1alpha.ServerReflection";

  grpc_init();
  reflect *rf = NULL;
  api *rules = NULL;
  char api_err[128];
  if (api_open(events_descriptor_set, events_descriptor_set_len, &rules, api_err, sizeof api_err) <
      0) {
    fatal("cannot read the API's annotations", api_err);
    goto shutdown_grpc;
  }
  /* Reflection serves the very files the annotations came from: one
   * unpacked copy of the set, not two. */
  if (reflect_open_set(api_descriptor_set(rules), names, n, &rf) < 0) {
    fatal("cannot load the embedded descriptor set", "corrupt");
    goto close_api;
  }
  /* The reflection services: their handler is built into the server. */
  size_t n_defs = n - 2;
  defs[n_defs++] = (rpc_service_def){&grpc__reflection__v1__server_reflection__descriptor, NULL, 1};
  defs[n_defs++] =
      (rpc_service_def){&grpc__reflection__v1alpha__server_reflection__descriptor, NULL, 1};

  /* Validation and page sizes look annotations up by descriptor per call. */
  for (size_t i = 0; i < n_defs; i++) {
    if (api_prepare(rules, defs[i].desc) < 0) {
      fatal("cannot index the API's annotations", "out of memory");
      goto free_reflect;
    }
  }
  int workers = (int)config_num(vars, N_VARS, "EVENTS_WORKERS");
  rpc_server_config cfg = {
      .addr = get("EVENTS_GRPC_ADDR"),
      .workers = workers,
      .running = running_workers(workers),
      .creds = cr,
      .store = st,
      .services = defs,
      .n_services = n_defs,
      .reflect = rf,
      .api = rules,
      .tls = &tls,
  };
  rpc_server *srv = NULL;
  int port = 0;
  if (rpc_server_start(&cfg, &srv, &port, err, sizeof err) < 0) {
    fatal("cannot start the gRPC server", err);
    goto free_reflect;
  }
  rpc_metrics *metrics = NULL;
  const char *maddr = get("EVENTS_METRICS_ADDR");
  int mport = 0;
  if (maddr && *maddr && rpc_metrics_start(maddr, st, &metrics, &mport, err, sizeof err) < 0) {
    fatal("cannot start the metrics listener", err);
    rpc_server_stop(srv, 0);
    goto free_reflect;
  }
  log_json(LOG_LEVEL_INFO, "serving",
           json_pack("{s:s, s:i, s:s, s:i, s:i, s:i, s:i, s:s}", "addr", cfg.addr, "port", port,
                     "store", store_engine(st), "workers", cfg.workers, "running", cfg.running,
                     "credentials", (int)creds_live_count(cr), "metrics_port", mport, "tls",
                     !tls_enabled(&tls)  ? "off"
                     : tls.ca && *tls.ca ? "mtls"
                                         : "on"));

  int sig = 0;
  /* SIGHUP re-reads the credentials (the watcher also notices changes). */
  while (sigwait(&sigs, &sig) == 0 && sig == SIGHUP) {
    creds_err herr;
    creds_live_reload(cr, &herr);
  }
  log_json(LOG_LEVEL_INFO, "draining", json_pack("{s:i}", "signal", sig));
  rpc_health_set_draining();
  rpc_server_stop(srv, (int)config_num(vars, N_VARS, "EVENTS_GRACE_MS"));
  rpc_metrics_stop(metrics);
  log_printf(LOG_LEVEL_INFO, "stopped");
  rc = 0;

free_reflect:
  reflect_free(rf); /* first: it borrows the api's descriptor set */
close_api:
  api_close(rules);
shutdown_grpc:
  grpc_shutdown();
  feed_prune_stop();
  store_live_stop();
close_store:
  store_close(st);
free_creds:
  creds_live_close(cr);
  otlp_stop(); /* after the server: the last calls' spans are sent */
  return rc;
}
