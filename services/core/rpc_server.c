/* rpc_server.c - gRPC C core server loop.
 *
 * The worker threads share one completion queue, on which every method has
 * REQUESTS_PER_METHOD calls requested; whichever worker takes an arrived
 * call re-arms the request and serves the call to completion (handlers
 * block on the store), so the number of workers bounds concurrency; only
 * one per CPU less one waits on the queue at once, the others stand by
 * (rpc_run.c). One queue rather than one per worker: core's poller hands a completion to the thread
 * that polled when it waits on that queue, where a queue per worker meant waking another thread for
 * most events (2.3 context switches and 60 µs of CPU per Health/Check with 8 workers, against 0.8
 * and 40 µs). Methods come from the protobuf-c service descriptors: no switch per method. Unknown
 * methods are requested through grpc_server_request_call and answered UNIMPLEMENTED at once, since
 * core itself never answers them.
 *
 * Each arrived call also has a RECV_CLOSE_ON_SERVER batch of its own, which
 * completes when the call is over; before a handler runs, the worker looks
 * at what its queue already holds, and a call whose close came before our
 * status (client cancelled, deadline hit, connection gone) is answered
 * CANCELLED without running the handler: abandoned calls cost no store work.
 * A call is freed when its last outstanding batch completes. */
#include "rpc_server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc_security.h>
#include <grpc/support/log.h>

#include "log.h"
#include "metrics.h"
#include "otlp.h"
#include "grpc/health/v1/health.pb-c.h"
#include "rpc_feed.h"
#include "rpc_health.h"
#include "rpc_invoke.h"
#include "rpc_run.h"
#include "store_live.h"
#include "rpc_int.h"

enum method_kind { METHOD_UNARY, METHOD_REFLECTION, METHOD_WATCH, METHOD_FEED };

/* Calls kept requested from core for each method (see rpc_server_start). */
#define REQUESTS_PER_METHOD 8
#define N_CODES 17 /* grpc_status_code OK .. UNAUTHENTICATED */

/* A method's metric series, each found on first use and then kept: a call
 * updates them with atomics, without formatting labels, hashing them or
 * taking the registry's lock. Lazily, so that /metrics lists only series
 * that were used, as before. */
typedef struct method_metrics {
  metrics_series *started, *received, *sent;
  metrics_series *handled[N_CODES], *seconds[N_CODES];
} method_metrics;

struct rpc_method {
  char path[256];
  char labels[320]; /* grpc_type, grpc_service, grpc_method: go-grpc-prometheus's */
  const ProtobufCMethodDescriptor *md;
  ProtobufCService *impl;
  unsigned index;
  int public;
  enum method_kind kind;
  void *handle;
  method_metrics mx;
};

/* Events taken off the queue while looking for closed calls (see
 * drain_closes), served next by whichever worker is free, in arrival order.
 * Fixed: when it is full the look stops early, which only means a cancelled
 * call may still run. */
#define BACKLOG_MAX 256

/* A worker is "behind" when events may have waited in its queue long enough
 * for clients to give up on calls: after an event that took longer than this
 * to handle, and for as long as looking at the queue finds anything. */
#define BEHIND_AFTER_MS 1

struct rpc_worker {
  rpc_server *srv;
  int behind;       /* see BEHIND_AFTER_MS */
  int from_backlog; /* the event being handled was queued behind another */
};

struct rpc_server {
  grpc_server *server;
  const api *api;
  grpc_completion_queue *cq;    /* every call's events, taken by every worker */
  grpc_completion_queue *io_cq; /* the I/O poller's; never gets a call */
  pthread_mutex_t backlog_mu;
  grpc_event backlog[BACKLOG_MAX];
  size_t head, n_backlog; /* n_backlog is also read unlocked, atomically */
  rpc_worker *workers;
  pthread_t *threads;
  int n_workers, n_started;
  rpc_method *methods;
  size_t n_methods;
  creds_live *creds;
  store *store;
  const reflect *reflect;
  volatile int stopping;
  /* Events being handled, and whether the queues are closing: a handler may
   * still be serving a call the client abandoned when the server's shutdown
   * completes (cancelled calls do not hold it back), and starting its reply
   * batch on a shut-down queue aborts inside gRPC. */
  pthread_mutex_t busy_mu;
  pthread_cond_t idle;
  int busy, closing;
  pthread_cond_t all_busy; /* wakes the I/O poller: every worker is handling an event */
  rpc_run run;
  int ending;                /* calls arrived that end by themselves (not Watch, reflection) */
  method_metrics unknown_mx; /* every unknown method shares one label set */
};

store *rpc_store(const rpc_call *c) {
  return c->store;
}

/* ---- call lifecycle ---- */

/* A call requested from core that no client has made yet: only what core
 * fills in when one arrives. Every worker keeps one for every method (368
 * with 8 workers), so they stay small; the call itself (rpc_call, about 600
 * bytes) is allocated on arrival and takes these over. */
typedef struct rpc_pending {
  rpc_tag tag; /* first, so the queue's tag is the record; tag.call is NULL */
  rpc_method *method;
  rpc_server *srv;
  grpc_call *call;
  gpr_timespec deadline;
  grpc_metadata_array md;
  grpc_byte_buffer *payload;
  grpc_call_details *details; /* unknown methods only */
} rpc_pending;

static void pending_free(rpc_pending *p) {
  if (p->call) grpc_call_unref(p->call);
  grpc_metadata_array_destroy(&p->md);
  if (p->details) grpc_call_details_destroy(p->details);
  free(p->details);
  if (p->payload) grpc_byte_buffer_destroy(p->payload);
  free(p);
}

/* The call that arrived on p: it takes over what core filled in and frees
 * p. NULL (p untouched) when out of memory. */
static rpc_call *call_new(rpc_server *s, rpc_pending *p) {
  rpc_call *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->srv = s;
  c->store = s->store;
  c->api = s->api;
  c->method = p->method;
  c->state = CALL_ARRIVED;
  c->tag.call = c;
  c->close_tag.call = c;
  c->close_tag.close = 1;
  c->call = p->call;
  c->deadline = p->deadline;
  c->md = p->md;
  c->payload = p->payload;
  if (p->details) c->details = *p->details;
  free(p->details);
  free(p);
  return c;
}

static metrics_series *in_flight(void) {
  static metrics_series *s;
  metrics_series *p = __atomic_load_n(&s, __ATOMIC_ACQUIRE);
  if (!p) __atomic_store_n(&s, p = metrics_gauge_of("events_rpc_in_flight", ""), __ATOMIC_RELEASE);
  return p;
}

/* Calls that end without the client's help: unary ones, and change feeds
 * (rpc_feed_stop ends them). Health watches and reflection streams last as
 * long as their client wants. */
static int call_ends(const rpc_call *c) {
  return !c->method || (c->method->kind != METHOD_WATCH && c->method->kind != METHOD_REFLECTION);
}

static void call_free(rpc_call *c) {
  if (c->arrived) {
    metrics_add(in_flight(), -1);
    if (call_ends(c)) __atomic_sub_fetch(&c->srv->ending, 1, __ATOMIC_RELEASE);
  }
  if (c->call) grpc_call_unref(c->call);
  grpc_metadata_array_destroy(&c->md);
  if (!c->method) grpc_call_details_destroy(&c->details); /* moved in from rpc_pending */
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  if (c->response) grpc_byte_buffer_destroy(c->response);
  rpc_status_clear(c);
  free(c->trace);
  free(c->watch_service);
  free(c);
}

void rpc_call_unref(rpc_call *c) {
  /* Atomic: a health watcher gets batches started by whichever thread
   * notices a status change. */
  if (__atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL) == 0) call_free(c);
}

/* Starts a batch that holds a reference until it completes. A call whose
 * batch cannot start is cancelled, so that its close batch completes and
 * the call is freed. */
int rpc_call_batch(rpc_call *c, const grpc_op *ops, size_t n, rpc_tag *tag) {
  /* The reference is taken first: the batch may complete, on another thread
   * taking from the shared queue, before start_batch returns. */
  __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL);
  grpc_call_error e = grpc_call_start_batch(c->call, ops, n, tag, NULL);
  if (e != GRPC_CALL_OK) {
    log_printf(LOG_LEVEL_ERROR, "start_batch: %s", grpc_call_error_to_string(e));
    grpc_call_cancel(c->call, NULL);
    __atomic_sub_fetch(&c->refs, 1, __ATOMIC_ACQ_REL); /* the caller still holds one */
    return -1;
  }
  return 0;
}

static int call_request(rpc_server *s, rpc_method *m) {
  rpc_pending *p = calloc(1, sizeof *p);
  if (!p) return -1;
  p->method = m;
  p->srv = s;
  grpc_metadata_array_init(&p->md);
  grpc_call_error e = GRPC_CALL_ERROR;
  if (m) {
    e = grpc_server_request_registered_call(s->server, m->handle, &p->call, &p->deadline, &p->md,
                                            m->kind != METHOD_REFLECTION ? &p->payload : NULL,
                                            s->cq, s->cq, &p->tag);
  } else if ((p->details = malloc(sizeof *p->details))) {
    grpc_call_details_init(p->details);
    e = grpc_server_request_call(s->server, &p->call, p->details, &p->md, s->cq, s->cq, &p->tag);
  }
  if (e != GRPC_CALL_OK) {
    pending_free(p);
    return -1;
  }
  return 0;
}

/* Learns, without waiting, whether clients already left: a close batch
 * that completes before we sent our status means the call was cancelled (by
 * the client, its deadline or its connection). Takes what the queue holds
 * ready, notes the closes of unary calls and keeps the rest, in order, in
 * the backlog every worker serves first. Streams' closes go to the backlog
 * too: their handlers act on them (see on_event). */
static int drain_closes(rpc_server *s) {
  int took = 0;
  pthread_mutex_lock(&s->backlog_mu);
  while (s->n_backlog < BACKLOG_MAX) {
    grpc_event ev = grpc_completion_queue_next(s->cq, gpr_inf_past(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type == GRPC_QUEUE_TIMEOUT) break;
    took = 1;
    rpc_tag *t = ev.type == GRPC_OP_COMPLETE ? ev.tag : NULL;
    if (t && t->close && (!t->call->method || t->call->method->kind == METHOD_UNARY)) {
      __atomic_store_n(&t->call->closed, 1, __ATOMIC_RELEASE);
      rpc_call_unref(t->call);
      continue;
    }
    s->backlog[(s->head + s->n_backlog) % BACKLOG_MAX] = ev;
    __atomic_store_n(&s->n_backlog, s->n_backlog + 1, __ATOMIC_RELEASE);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
  }
  pthread_mutex_unlock(&s->backlog_mu);
  return took;
}

/* The oldest event of the backlog, if there is one. */
static int backlog_take(rpc_server *s, grpc_event *ev) {
  if (!__atomic_load_n(&s->n_backlog, __ATOMIC_ACQUIRE)) return 0;
  pthread_mutex_lock(&s->backlog_mu);
  int took = s->n_backlog > 0;
  if (took) {
    *ev = s->backlog[s->head];
    s->head = (s->head + 1) % BACKLOG_MAX;
    __atomic_store_n(&s->n_backlog, s->n_backlog - 1, __ATOMIC_RELEASE);
  }
  pthread_mutex_unlock(&s->backlog_mu);
  return took;
}

static const char *method_name(const rpc_call *c, char *buf, size_t len) {
  if (c->method) return c->method->path;
  size_t n = GRPC_SLICE_LENGTH(c->details.method);
  if (n >= len) n = len - 1;
  memcpy(buf, GRPC_SLICE_START_PTR(c->details.method), n);
  buf[n] = '\0';
  return buf;
}

/* go-grpc-prometheus spells codes as Go's codes.Code.String() does, so
 * dashboards and alerts written for grpc_server_handled_total work here. */
static const char *code_name(grpc_status_code code) {
  static const char *const names[] = {
      "OK",       "Canceled",       "Unknown",          "InvalidArgument",   "DeadlineExceeded",
      "NotFound", "AlreadyExists",  "PermissionDenied", "ResourceExhausted", "FailedPrecondition",
      "Aborted",  "OutOfRange",     "Unimplemented",    "Internal",          "Unavailable",
      "DataLoss", "Unauthenticated"};
  return (unsigned)code < sizeof names / sizeof *names ? names[code] : "Unknown";
}

/* Unknown methods share one label set so clients cannot grow the series. */
static const char *method_labels(const rpc_call *c) {
  return c->method ? c->method->labels
                   : "grpc_type=\"unary\",grpc_service=\"unknown\",grpc_method=\"unknown\"";
}

static method_metrics *mx_of(rpc_call *c) {
  return c->method ? &c->method->mx : &c->srv->unknown_mx;
}

/* One cached series: found under the registry's lock the first time only.
 * Threads racing on the first use find the same series. */
static metrics_series *mx_get(metrics_series **slot,
                              metrics_series *(*of)(const char *, const char *), const char *name,
                              const char *labels) {
  metrics_series *p = __atomic_load_n(slot, __ATOMIC_ACQUIRE);
  if (!p) __atomic_store_n(slot, p = of(name, labels), __ATOMIC_RELEASE);
  return p;
}

static void count_sent(rpc_call *c) {
  metrics_add(
      mx_get(&mx_of(c)->sent, metrics_counter_of, "grpc_server_msg_sent_total", method_labels(c)),
      1);
}

void rpc_call_log(rpc_call *c) {
  static const trace_ctx no_trace; /* a call whose context could not be kept */
  const trace_ctx *t = c->trace ? c->trace : &no_trace;
  char buf[256], code[16];
  gpr_timespec d = gpr_time_sub(gpr_now(GPR_CLOCK_MONOTONIC), c->started);
  double ms = (double)d.tv_sec * 1e3 + d.tv_nsec / 1e6;
  method_metrics *mx = mx_of(c);
  unsigned k = (unsigned)c->status < N_CODES ? (unsigned)c->status : GRPC_STATUS_UNKNOWN;
  if (!__atomic_load_n(&mx->handled[k], __ATOMIC_ACQUIRE) ||
      !__atomic_load_n(&mx->seconds[k], __ATOMIC_ACQUIRE)) {
    char labels[512];
    snprintf(labels, sizeof labels, "%s,grpc_code=\"%s\"", method_labels(c), code_name(k));
    mx_get(&mx->handled[k], metrics_counter_of, "grpc_server_handled_total", labels);
    mx_get(&mx->seconds[k], metrics_histogram_of, "grpc_server_handling_seconds", labels);
  }
  metrics_add(mx->handled[k], 1);
  metrics_observe_in(mx->seconds[k], ms / 1e3);
  if (c->status == GRPC_STATUS_OK && c->method && c->method->kind == METHOD_UNARY) count_sent(c);
  if (otlp_enabled()) {
    const char *name = method_name(c, buf, sizeof buf);
    snprintf(code, sizeof code, "%d", (int)c->status);
    otlp_attr attrs[] = {{"rpc.system", "grpc"},
                         {"rpc.method", name},
                         {"rpc.grpc.status_code", code},
                         {"request.id", c->request_id}};
    uint64_t end = otlp_now_ns();
    otlp_record(t, name + (name[0] == '/'), OTLP_SPAN_SERVER, end - (uint64_t)(ms * 1e6), end,
                c->status != GRPC_STATUS_OK, attrs, c->request_id[0] ? 4 : 3);
  }
  /* Probes ask for health every few seconds: their successes are debug. */
  int level = c->status == GRPC_STATUS_INTERNAL ? LOG_LEVEL_ERROR
              : c->status == GRPC_STATUS_OK && c->method && c->method->public &&
                      strncmp(c->method->path, "/grpc.health.", 13) == 0
                  ? LOG_LEVEL_DEBUG
                  : LOG_LEVEL_INFO;
  if (!log_enabled(level)) return;
  char parent[17] = "";
  if (trace_has_parent(t)) {
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 8; i++) {
      parent[2 * i] = digits[t->parent_id[i] >> 4];
      parent[2 * i + 1] = digits[t->parent_id[i] & 15];
    }
    parent[16] = '\0';
  }
  log_field f[9] = {
      {.key = "method", .kind = LOG_STR, .s = method_name(c, buf, sizeof buf)},
      {.key = "code", .kind = LOG_INT, .i = (int)c->status},
      {.key = "ms", .kind = LOG_NUM, .d = ms},
      {.key = "trace_id", .kind = LOG_STR, .s = t->trace_hex},
      {.key = "span_id", .kind = LOG_STR, .s = t->span_hex},
  };
  size_t n = 5;
  if (parent[0]) f[n++] = (log_field){.key = "parent_span_id", .kind = LOG_STR, .s = parent};
  if (c->request_id[0])
    f[n++] = (log_field){.key = "request_id", .kind = LOG_STR, .s = c->request_id};
  if (c->tenant[0]) f[n++] = (log_field){.key = "tenant", .kind = LOG_STR, .s = c->tenant};
  if (c->status != GRPC_STATUS_OK && c->message)
    f[n++] = (log_field){.key = "error", .kind = LOG_STR, .s = c->message};
  log_fields(level, "rpc", f, n);
}

/* Sends status (and, for unary, the response) and the close op in one batch. */
void rpc_call_reply(rpc_call *c, int send_initial) {
  grpc_op ops[4];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (send_initial) {
    ops[n].op = GRPC_OP_SEND_INITIAL_METADATA;
    n++;
  }
  if (c->status == GRPC_STATUS_OK && c->response) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = c->response;
    n++;
  }
  rpc_status_finish(c);
  grpc_slice msg = grpc_slice_from_copied_string(c->message ? c->message : "");
  ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
  ops[n].data.send_status_from_server.status = c->status;
  ops[n].data.send_status_from_server.status_details = c->status == GRPC_STATUS_OK ? NULL : &msg;
  if (c->has_details) {
    c->trailer.key = grpc_slice_from_static_string("grpc-status-details-bin");
    c->trailer.value = c->details_bin;
    ops[n].data.send_status_from_server.trailing_metadata_count = 1;
    ops[n].data.send_status_from_server.trailing_metadata = &c->trailer;
  }
  n++;
  c->state = CALL_REPLYING;
  if (rpc_call_batch(c, ops, n, &c->tag) < 0) rpc_call_log(c);
  grpc_slice_unref(msg);
}

/* ---- unary dispatch ---- */

static int read_payload(grpc_byte_buffer *bb, grpc_slice *out) {
  grpc_byte_buffer_reader r;
  if (!grpc_byte_buffer_reader_init(&r, bb)) return -1;
  *out = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  return 0;
}

static int authenticate(rpc_call *c) {
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_metadata *m = &c->md.metadata[i];
    if (!grpc_slice_eq(m->key, grpc_slice_from_static_string("authorization"))) continue;
    return creds_live_lookup(c->srv->creds, (const char *)GRPC_SLICE_START_PTR(m->value),
                             GRPC_SLICE_LENGTH(m->value), c->tenant, sizeof c->tenant);
  }
  return -1;
}

static void count_skipped(const rpc_call *c, const char *why) {
  char labels[384];
  snprintf(labels, sizeof labels, "method=\"%s\",reason=\"%s\"", c->method->path, why);
  metrics_count("events_rpc_skipped_total", labels, 1);
}

static void handler_missing(rpc_call *c) {
  rpc_fail(c, GRPC_STATUS_UNIMPLEMENTED, "%s is not implemented", c->method->path);
}

static void serve_unary(rpc_worker *w, rpc_call *c) {
  rpc_method *m = c->method;
  /* Nobody waits for the answer of a call that is over: the handler does
   * not run and the store is not touched. Looking is a non-blocking poll of
   * the queue, which cost more than a whole health Check (about 15 of 75 µs
   * of CPU per call): so only a worker that is behind, or serving a call
   * that waited behind another, looks; public methods (health) touch no
   * store and never do. */
  rpc_server *s = c->srv;
  if (!m->public && (w->behind || w->from_backlog))
    w->behind = drain_closes(s) || __atomic_load_n(&s->n_backlog, __ATOMIC_ACQUIRE);
  if (gpr_time_cmp(gpr_convert_clock_type(c->deadline, GPR_CLOCK_REALTIME),
                   gpr_now(GPR_CLOCK_REALTIME)) < 0) {
    rpc_fail(c, GRPC_STATUS_DEADLINE_EXCEEDED, "deadline exceeded before the call was served");
    count_skipped(c, "deadline");
    return;
  }
  if (__atomic_load_n(&c->closed, __ATOMIC_ACQUIRE)) {
    rpc_fail(c, GRPC_STATUS_CANCELLED, "cancelled before the call was served");
    count_skipped(c, "cancelled");
    return;
  }
  if (!m->public && authenticate(c) < 0) {
    rpc_fail(c, GRPC_STATUS_UNAUTHENTICATED, "missing or unknown credentials");
    return;
  }
  if (!rpc_invoke_has_handler(m->impl, m->index)) {
    handler_missing(c);
    return;
  }
  /* Every non-public method needs the store: while it is known to be down,
   * say so at once rather than after the driver's timeout. */
  if (!m->public && !store_live_up()) {
    rpc_fail(c, GRPC_STATUS_UNAVAILABLE, "store unavailable");
    count_skipped(c, "store_down");
    return;
  }
  grpc_slice raw = grpc_empty_slice();
  if (c->payload && read_payload(c->payload, &raw) < 0) {
    rpc_fail(c, GRPC_STATUS_INTERNAL, "cannot read the request");
    return;
  }
  rpc_invoke(c, m->md, m->impl, m->index, GRPC_SLICE_START_PTR(raw), GRPC_SLICE_LENGTH(raw));
  grpc_slice_unref(raw);
}

/* ---- reflection stream ---- */

static void stream_read(rpc_call *c, int send_initial, grpc_byte_buffer *reply) {
  grpc_op ops[3];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (send_initial) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  if (reply) {
    ops[n].op = GRPC_OP_SEND_MESSAGE;
    ops[n].data.send_message.send_message = reply;
    n++;
  }
  if (c->payload) grpc_byte_buffer_destroy(c->payload);
  c->payload = NULL;
  ops[n].op = GRPC_OP_RECV_MESSAGE;
  ops[n].data.recv_message.recv_message = &c->payload;
  n++;
  if (c->response) grpc_byte_buffer_destroy(c->response);
  c->response = reply;
  c->state = CALL_STREAM_READ;
  rpc_call_batch(c, ops, n, &c->tag);
}

static void stream_step(rpc_call *c) {
  if (!c->payload) { /* the client half-closed: end the stream */
    c->state = CALL_STREAM_CLOSING;
    rpc_call_reply(c, 0);
    return;
  }
  grpc_slice raw;
  uint8_t *resp = NULL;
  size_t resp_len = 0;
  if (read_payload(c->payload, &raw) < 0) goto fail;
  int rc = reflect_answer(c->srv->reflect, GRPC_SLICE_START_PTR(raw), GRPC_SLICE_LENGTH(raw), &resp,
                          &resp_len);
  grpc_slice_unref(raw);
  if (rc < 0) goto fail;
  grpc_slice s = grpc_slice_new(resp, resp_len, free);
  grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s);
  stream_read(c, 0, bb);
  return;
fail:
  rpc_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "bad reflection request");
  c->state = CALL_STREAM_CLOSING;
  rpc_call_reply(c, 0);
}

/* ---- health watch streams ---- */

/* Every open Watch, each holding a reference; the lock also orders each
 * watcher's state, since a status change starts sends from whichever
 * thread noticed it, while completions arrive on the call's worker. */
static pthread_mutex_t watch_mu = PTHREAD_MUTEX_INITIALIZER;
static rpc_call *watchers;

/* Sends status to the watcher (watch_mu held). */
static void watch_send(rpc_call *c, int status, int send_initial) {
  Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  out.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
  size_t len = grpc__health__v1__health_check_response__get_packed_size(&out);
  grpc_slice slice = grpc_slice_malloc(len);
  grpc__health__v1__health_check_response__pack(&out, GRPC_SLICE_START_PTR(slice));
  if (c->response) grpc_byte_buffer_destroy(c->response);
  c->response = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
  grpc_op ops[2];
  size_t n = 0;
  memset(ops, 0, sizeof ops);
  if (send_initial) ops[n++].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[n].op = GRPC_OP_SEND_MESSAGE;
  ops[n].data.send_message.send_message = c->response;
  n++;
  c->watch_sent = status;
  c->state = CALL_WATCH_SENDING;
  count_sent(c);
  if (rpc_call_batch(c, ops, n, &c->tag) < 0) c->state = CALL_WATCH_IDLE;
}

static void watch_unlink(rpc_call *c) {
  rpc_call **p = &watchers;
  while (*p && *p != c)
    p = &(*p)->watch_next;
  if (*p) *p = c->watch_next;
}

static void watch_start(rpc_call *c) {
  char service[256] = "";
  grpc_slice raw;
  if (c->payload && read_payload(c->payload, &raw) == 0) {
    Grpc__Health__V1__HealthCheckRequest *in = grpc__health__v1__health_check_request__unpack(
        NULL, GRPC_SLICE_LENGTH(raw), GRPC_SLICE_START_PTR(raw));
    grpc_slice_unref(raw);
    if (!in) {
      rpc_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the request is not a valid HealthCheckRequest");
      rpc_call_reply(c, 1);
      return;
    }
    snprintf(service, sizeof service, "%s", in->service);
    grpc__health__v1__health_check_request__free_unpacked(in, NULL);
  }
  if (!(c->watch_service = strdup(service))) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    rpc_call_reply(c, 1);
    return;
  }
  pthread_mutex_lock(&watch_mu);
  __atomic_add_fetch(&c->refs, 1, __ATOMIC_ACQ_REL); /* the list's */
  c->watch_next = watchers;
  watchers = c;
  watch_send(c, rpc_health_status(c->watch_service), 1);
  pthread_mutex_unlock(&watch_mu);
}

/* A send completed (or failed): the next change, or the end. */
static void watch_step(rpc_call *c, int ok) {
  pthread_mutex_lock(&watch_mu);
  int over = !ok || __atomic_load_n(&c->closed, __ATOMIC_ACQUIRE) || c->srv->stopping;
  if (over) {
    watch_unlink(c);
    c->state = CALL_WATCH_DONE;
  } else {
    int now = rpc_health_status(c->watch_service);
    if (now != c->watch_sent)
      watch_send(c, now, 0);
    else
      c->state = CALL_WATCH_IDLE;
  }
  pthread_mutex_unlock(&watch_mu);
  if (over) rpc_call_unref(c); /* the list's */
}

/* The client left: an idle watcher has no send to notice it. */
static void watch_closed(rpc_call *c) {
  pthread_mutex_lock(&watch_mu);
  int idle = c->state == CALL_WATCH_IDLE;
  if (idle) {
    watch_unlink(c);
    c->state = CALL_WATCH_DONE;
  }
  pthread_mutex_unlock(&watch_mu);
  if (idle) rpc_call_unref(c);
}

void rpc_watch_notify(void) {
  pthread_mutex_lock(&watch_mu);
  for (rpc_call *c = watchers; c; c = c->watch_next) {
    if (c->state != CALL_WATCH_IDLE) continue; /* its send's completion looks again */
    int now = rpc_health_status(c->watch_service);
    if (now != c->watch_sent) watch_send(c, now, 0);
  }
  pthread_mutex_unlock(&watch_mu);
}

/* ---- event loop ---- */

/* Starts the call's close batch, which completes when the call is over
 * for whatever reason; until our status is sent, that means abandoned. */
static void watch_close(rpc_call *c) {
  grpc_op op;
  memset(&op, 0, sizeof op);
  op.op = GRPC_OP_RECV_CLOSE_ON_SERVER;
  op.data.recv_close_on_server.cancelled = &c->cancelled;
  rpc_call_batch(c, &op, 1, &c->close_tag);
}

/* The caller's trace context and request id, from metadata. A request id
 * is logged, so only a short visible-ASCII one is kept. */
static void read_context(rpc_call *c) {
  const char *tp = NULL, *ts = NULL;
  size_t tp_len = 0, ts_len = 0;
  for (size_t i = 0; i < c->md.count; i++) {
    const grpc_metadata *m = &c->md.metadata[i];
    const char *v = (const char *)GRPC_SLICE_START_PTR(m->value);
    size_t len = GRPC_SLICE_LENGTH(m->value);
    if (grpc_slice_str_cmp(m->key, "traceparent") == 0) {
      tp = v, tp_len = len;
    } else if (grpc_slice_str_cmp(m->key, "tracestate") == 0) {
      ts = v, ts_len = len;
    } else if (grpc_slice_str_cmp(m->key, "x-request-id") == 0 && len &&
               len < sizeof c->request_id) {
      size_t j = 0;
      while (j < len && v[j] > 0x20 && v[j] < 0x7f)
        j++;
      if (j == len) memcpy(c->request_id, v, len), c->request_id[len] = '\0';
    }
  }
  if ((c->trace = malloc(sizeof *c->trace))) trace_begin(c->trace, tp, tp_len, ts, ts_len);
}

static void on_arrival(rpc_worker *w, rpc_call *c) {
  rpc_server *s = c->srv;
  c->started = gpr_now(GPR_CLOCK_MONOTONIC);
  c->arrived = 1;
  metrics_add(in_flight(), 1);
  if (call_ends(c)) __atomic_add_fetch(&s->ending, 1, __ATOMIC_RELEASE);
  read_context(c);
  method_metrics *mx = mx_of(c);
  metrics_add(
      mx_get(&mx->started, metrics_counter_of, "grpc_server_started_total", method_labels(c)), 1);
  if (c->method && c->method->kind == METHOD_UNARY)
    metrics_add(mx_get(&mx->received, metrics_counter_of, "grpc_server_msg_received_total",
                       method_labels(c)),
                1);
  if (!s->stopping) call_request(s, c->method);
  watch_close(c);
  if (!c->method) {
    rpc_fail(c, GRPC_STATUS_UNIMPLEMENTED, "unknown method");
    rpc_call_reply(c, 1);
    return;
  }
  if (c->method->kind == METHOD_REFLECTION) {
    stream_read(c, 1, NULL);
    return;
  }
  if (c->method->kind == METHOD_WATCH) {
    watch_start(c);
    return;
  }
  if (c->method->kind == METHOD_FEED) {
    /* The handler checks the request and opens the feed; a failure is
     * answered like a unary one. */
    serve_unary(w, c);
    if (!rpc_failed(c) && c->feed) {
      rpc_feed_begin(c);
      return;
    }
    if (!rpc_failed(c)) rpc_fail(c, GRPC_STATUS_INTERNAL, "the watch did not start");
    rpc_call_reply(c, 1);
    return;
  }
  serve_unary(w, c);
  rpc_call_reply(c, 1);
}

/* A requested call completed: a client's call arrived, or (!ok) the server
 * is shutting down. `open` is as for on_event. */
static void on_request_done(rpc_worker *w, rpc_pending *p, int ok, int open) {
  rpc_server *s = p->srv;
  if (!ok || !open) {
    pending_free(p);
    return;
  }
  rpc_call *c = call_new(s, p);
  if (!c) {
    /* Refused, but the method stays requested. */
    if (!s->stopping) call_request(s, p->method);
    grpc_call_cancel_with_status(p->call, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory", NULL);
    pending_free(p);
    return;
  }
  c->refs = 1;
  on_arrival(w, c);
  rpc_call_unref(c);
}

/* One completed batch of a call; `open` is 0 once the queues are closing,
 * when no batch may start any more (logging a finished call needs none). */
static void on_event(rpc_worker *w, rpc_tag *t, int ok, int open) {
  if (!t->call) {
    on_request_done(w, (rpc_pending *)t, ok, open);
    return;
  }
  rpc_call *c = t->call;
  if (t->close) {
    __atomic_store_n(&c->closed, 1, __ATOMIC_RELEASE);
    if (c->method && c->method->kind == METHOD_WATCH) watch_closed(c);
    if (c->method && c->method->kind == METHOD_FEED) rpc_feed_closed(c);
  } else {
    switch (c->state) {
    case CALL_ARRIVED: /* the call's batches start in the states below */
      break;
    case CALL_STREAM_READ:
      if (ok && open) stream_step(c);
      break;
    case CALL_WATCH_SENDING:
      watch_step(c, ok && open);
      break;
    case CALL_WATCH_IDLE:
    case CALL_WATCH_DONE:
      break;
    case CALL_FEED_SENDING:
      rpc_feed_sent(c, ok && open);
      break;
    case CALL_FEED_IDLE:
    case CALL_FEED_DONE:
      break;
    case CALL_REPLYING:
    case CALL_STREAM_CLOSING:
      rpc_call_log(c);
      break;
    }
  }
  rpc_call_unref(c);
}

/* Counts the event as busy, or returns 0 once the queues are closing. */
static int busy_enter(rpc_server *s) {
  pthread_mutex_lock(&s->busy_mu);
  int open = !s->closing;
  if (open && ++s->busy == s->n_workers) pthread_cond_signal(&s->all_busy);
  pthread_mutex_unlock(&s->busy_mu);
  return open;
}

static void busy_leave(rpc_server *s) {
  pthread_mutex_lock(&s->busy_mu);
  if (--s->busy == 0) pthread_cond_broadcast(&s->idle);
  pthread_mutex_unlock(&s->busy_mu);
}

static void *worker(void *arg) {
  rpc_worker *w = arg;
  rpc_server *s = w->srv;
  for (;;) {
    grpc_event ev;
    rpc_run_take(&s->run);
    w->from_backlog = backlog_take(s, &ev);
    if (!w->from_backlog)
      ev = grpc_completion_queue_next(s->cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) break;
    if (ev.type != GRPC_OP_COMPLETE) continue;
    if (!busy_enter(s)) {
      on_event(w, ev.tag, ev.success, 0);
      continue;
    }
    gpr_timespec t0 = gpr_now(GPR_CLOCK_MONOTONIC);
    on_event(w, ev.tag, ev.success, 1);
    if (gpr_time_cmp(gpr_time_sub(gpr_now(GPR_CLOCK_MONOTONIC), t0),
                     gpr_time_from_millis(BEHIND_AFTER_MS, GPR_TIMESPAN)) > 0)
      w->behind = 1;
    busy_leave(s);
  }
  rpc_run_give(); /* to a worker standing by, which then sees the shutdown */
  return NULL;
}

/* Keeps the transport's I/O moving while every worker is inside a handler:
 * gRPC core reads sockets in the threads that wait on a completion queue,
 * and a busy worker waits on none, so without this thread the frames that
 * cancel queued calls sit unread behind them. Its queue never gets a call.
 * It polls only while every worker is busy: a thread that polls beside idle
 * workers reads calls that then have to be handed to one of them (a wake-up
 * per call; 75 against 64 µs of CPU per Health/Check with 8 workers). With
 * run tokens, workers standing by are not busy, and one of them takes up
 * the queue whenever a busy one waits on the store; so while any is idle,
 * the queue is polled or soon will be. */
#define IO_POLL_MS 20

static void *io_poller(void *arg) {
  rpc_server *s = arg;
  pthread_mutex_lock(&s->busy_mu);
  while (!s->closing) {
    if (s->busy < s->n_workers) {
      pthread_cond_wait(&s->all_busy, &s->busy_mu);
      continue;
    }
    pthread_mutex_unlock(&s->busy_mu);
    gpr_timespec until =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(IO_POLL_MS, GPR_TIMESPAN));
    grpc_event ev = grpc_completion_queue_next(s->io_cq, until, NULL);
    pthread_mutex_lock(&s->busy_mu);
    if (ev.type == GRPC_QUEUE_SHUTDOWN) {
      pthread_mutex_unlock(&s->busy_mu);
      return NULL;
    }
  }
  pthread_mutex_unlock(&s->busy_mu);
  while (grpc_completion_queue_next(s->io_cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  return NULL;
}

/* ---- set-up ---- */

static int build_methods(rpc_server *s, const rpc_server_config *cfg, char *err, size_t errlen) {
  size_t n = 1; /* reflection v1alpha shares the v1 handler */
  for (size_t i = 0; i < cfg->n_services; i++)
    n += cfg->services[i].desc->n_methods;
  s->methods = calloc(n, sizeof *s->methods);
  if (!s->methods) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < cfg->n_services; i++) {
    const rpc_service_def *d = &cfg->services[i];
    for (unsigned j = 0; j < d->desc->n_methods; j++) {
      const ProtobufCMethodDescriptor *md = &d->desc->methods[j];
      int streaming = reflect_is_streaming(cfg->reflect, d->desc->name, md->name);
      int reflection = strncmp(d->desc->name, "grpc.reflection.", 16) == 0;
      if (streaming < 0) {
        snprintf(err, errlen, "%s.%s is not in the descriptor set", d->desc->name, md->name);
        return -1;
      }
      int watch = streaming && strcmp(d->desc->name, "grpc.health.v1.Health") == 0 &&
                  strcmp(md->name, "Watch") == 0;
      /* Other server-streaming methods are the dialects' change feeds. */
      int feed = streaming && !reflection && !watch;
      rpc_method *m = &s->methods[s->n_methods++];
      snprintf(m->path, sizeof m->path, "/%s/%s", d->desc->name, md->name);
      snprintf(m->labels, sizeof m->labels,
               "grpc_type=\"%s\",grpc_service=\"%s\",grpc_method=\"%s\"",
               reflection      ? "bidi_stream"
               : watch || feed ? "server_stream"
                               : "unary",
               d->desc->name, md->name);
      m->md = md;
      m->impl = d->impl;
      m->index = j;
      m->public = d->public;
      m->kind = reflection ? METHOD_REFLECTION
                : watch    ? METHOD_WATCH
                : feed     ? METHOD_FEED
                           : METHOD_UNARY;
    }
  }
  return 0;
}

int rpc_server_start(const rpc_server_config *cfg, rpc_server **out, int *port, char *err,
                     size_t errlen) {
  log_grpc_core();
  rpc_server *s = calloc(1, sizeof *s);
  if (!s) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  s->creds = cfg->creds;
  s->store = cfg->store;
  s->api = cfg->api;
  s->reflect = cfg->reflect;
  s->n_workers = cfg->workers > 0 ? cfg->workers : 4;
  int running = cfg->running > 0 && cfg->running < s->n_workers ? cfg->running : s->n_workers;
  if (rpc_run_init(&s->run, running) < 0) {
    snprintf(err, errlen, "out of memory");
    free(s);
    return -1;
  }
  /* Process-wide, and a no-op in any thread that holds no token. */
  store_set_block_hook(rpc_run_give);
  pthread_mutex_init(&s->busy_mu, NULL);
  pthread_mutex_init(&s->backlog_mu, NULL);
  pthread_cond_init(&s->idle, NULL);
  pthread_cond_init(&s->all_busy, NULL);
  if (build_methods(s, cfg, err, errlen) < 0) goto free_server;

  grpc_arg args[] = {
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH,
       .value.integer = 4 << 20},
      /* Clients reconnect (and re-resolve) now and then, so replicas added by
       * the autoscaler receive traffic from long-lived channels. */
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_MAX_CONNECTION_AGE_MS, .value.integer = 300000},
      {.type = GRPC_ARG_INTEGER,
       .key = GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
       .value.integer = 30000},
      /* A second instance on a port in use must fail, not share the port
       * and silently take part of the traffic (core sets SO_REUSEPORT). */
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ALLOW_REUSEPORT, .value.integer = 0},
      /* Per-call bookkeeping nobody reads: channelz is not served, and a
       * client ends its own call at its deadline (we read the deadline and
       * skip calls already past it), so core's timer per call is not needed.
       * Together about a fifth of a Health/Check's CPU. */
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_CHANNELZ, .value.integer = 0},
      {.type = GRPC_ARG_INTEGER, .key = GRPC_ARG_ENABLE_DEADLINE_CHECKS, .value.integer = 0},
  };
  grpc_channel_args chargs = {.num_args = sizeof args / sizeof *args, .args = args};
  s->server = grpc_server_create(&chargs, NULL);
  for (size_t i = 0; i < s->n_methods; i++) {
    rpc_method *m = &s->methods[i];
    m->handle = grpc_server_register_method(s->server, m->path, NULL,
                                            m->kind != METHOD_REFLECTION
                                                ? GRPC_SRM_PAYLOAD_READ_INITIAL_BYTE_BUFFER
                                                : GRPC_SRM_PAYLOAD_NONE,
                                            0);
  }
  /* The workers', and the I/O poller's thread (the last). */
  s->workers = calloc((size_t)s->n_workers, sizeof *s->workers);
  s->threads = calloc((size_t)s->n_workers + 1, sizeof *s->threads);
  if (!s->workers || !s->threads) {
    snprintf(err, errlen, "out of memory");
    goto destroy_server;
  }
  for (int i = 0; i < s->n_workers; i++)
    s->workers[i].srv = s;
  s->cq = grpc_completion_queue_create_for_next(NULL);
  s->io_cq = grpc_completion_queue_create_for_next(NULL);
  grpc_server_register_completion_queue(s->server, s->cq, NULL);
  grpc_server_register_completion_queue(s->server, s->io_cq, NULL);
  const tls_files none = {0};
  grpc_server_credentials *sc = tls_server_credentials(cfg->tls ? cfg->tls : &none);
  *port = grpc_server_add_http2_port(s->server, cfg->addr, sc);
  grpc_server_credentials_release(sc);
  if (*port == 0) {
    snprintf(err, errlen, "cannot listen on %s", cfg->addr);
    goto destroy_server;
  }
  grpc_server_start(s->server);
  rpc_feed_start(s->store);
  /* Calls requested from core per method: a call that arrives when all are
   * taken waits in core until the worker handling an arrival requests
   * another (on_arrival does so first), so this bounds no concurrency, only
   * how many arrivals core hands over before a worker has looked at one.
   * Each costs about 300 bytes; a set per worker was 12 KiB a worker. With
   * 4, creates at c=16 ran 5 % slower (calls queued in core for a request);
   * with 8 as fast as with 16 (bench/RESULTS.md). */
  int per_method = s->n_workers < REQUESTS_PER_METHOD ? s->n_workers : REQUESTS_PER_METHOD;
  for (int i = 0; i < per_method; i++) {
    for (size_t j = 0; j < s->n_methods; j++)
      call_request(s, &s->methods[j]);
    call_request(s, NULL);
  }
  for (int i = 0; i < s->n_workers; i++) {
    if (pthread_create(&s->threads[i], NULL, worker, &s->workers[i]) != 0) {
      snprintf(err, errlen, "cannot start worker thread");
      rpc_server_stop(s, 0);
      return -1;
    }
    s->n_started++;
  }
  if (pthread_create(&s->threads[s->n_workers], NULL, io_poller, s) != 0) {
    snprintf(err, errlen, "cannot start the I/O thread");
    rpc_server_stop(s, 0);
    return -1;
  }
  s->n_started++;
  *out = s;
  return 0;

destroy_server:;
  /* Core wants a queue to notify even for a server that never started. */
  grpc_completion_queue *done = grpc_completion_queue_create_for_pluck(NULL);
  grpc_server_shutdown_and_notify(s->server, done, s);
  grpc_completion_queue_pluck(done, s, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
  grpc_server_destroy(s->server);
  grpc_completion_queue_shutdown(done);
  while (grpc_completion_queue_pluck(done, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(done);
  grpc_completion_queue *cqs[] = {s->cq, s->io_cq};
  for (size_t i = 0; i < 2; i++) {
    grpc_completion_queue *cq = cqs[i];
    if (!cq) continue;
    grpc_completion_queue_shutdown(cq);
    while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
           GRPC_QUEUE_SHUTDOWN) {
    }
    grpc_completion_queue_destroy(cq);
  }
free_server:
  pthread_mutex_destroy(&s->backlog_mu);
  pthread_cond_destroy(&s->idle);
  pthread_cond_destroy(&s->all_busy);
  pthread_mutex_destroy(&s->busy_mu);
  rpc_run_destroy(&s->run);
  free(s->workers);
  free(s->threads);
  free(s->methods);
  free(s);
  return -1;
}

void rpc_server_stop(rpc_server *s, int grace_ms) {
  s->stopping = 1;
  /* Change feeds never end by themselves: end them first, so that the
   * grace period is the in-flight unary calls'. */
  rpc_feed_stop();
  grpc_completion_queue *done = grpc_completion_queue_create_for_pluck(NULL);
  grpc_server_shutdown_and_notify(s->server, done, s);
  /* Once shutdown has begun, core may take a call it never hands to us
   * (every requested call was failed) and keeps it until the client's
   * deadline, holding the shutdown with it. So when every call a worker
   * took has ended, and stayed so for a few polls (a call handed over just
   * now is still in a worker's queue), the rest are cancelled: their clients
   * see UNAVAILABLE, as for a server that is gone. That also ends health
   * watches and reflection streams, which would otherwise last the grace. */
  gpr_timespec until =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(grace_ms, GPR_TIMESPAN));
  int quiet = 0;
  for (;;) {
    gpr_timespec step =
        gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC), gpr_time_from_millis(25, GPR_TIMESPAN));
    grpc_event ev =
        grpc_completion_queue_pluck(done, s, gpr_time_cmp(step, until) < 0 ? step : until, NULL);
    if (ev.type != GRPC_QUEUE_TIMEOUT) break;
    int over = gpr_time_cmp(gpr_now(GPR_CLOCK_MONOTONIC), until) >= 0;
    quiet = __atomic_load_n(&s->ending, __ATOMIC_ACQUIRE) == 0 ? quiet + 1 : 0;
    if (over || quiet >= 4) {
      if (over) log_printf(LOG_LEVEL_WARN, "grace period over: cancelling the remaining calls");
      grpc_server_cancel_all_calls(s->server);
      grpc_completion_queue_pluck(done, s, gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
      break;
    }
  }
  /* Handlers still running finish their reply batches (the store bounds
   * how long they take); after that no batch may start. */
  pthread_mutex_lock(&s->busy_mu);
  while (s->busy)
    pthread_cond_wait(&s->idle, &s->busy_mu);
  s->closing = 1;
  pthread_cond_broadcast(&s->all_busy); /* the I/O poller drains its queue and ends */
  pthread_mutex_unlock(&s->busy_mu);
  grpc_server_destroy(s->server);
  grpc_completion_queue_shutdown(done);
  while (grpc_completion_queue_pluck(done, NULL, gpr_inf_future(GPR_CLOCK_REALTIME), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
  grpc_completion_queue_destroy(done);
  grpc_completion_queue_shutdown(s->cq);
  grpc_completion_queue_shutdown(s->io_cq);
  for (int i = 0; i < s->n_started; i++)
    pthread_join(s->threads[i], NULL);
  grpc_completion_queue_destroy(s->cq);
  grpc_completion_queue_destroy(s->io_cq);
  rpc_feed_shutdown();
  pthread_mutex_destroy(&s->backlog_mu);
  pthread_cond_destroy(&s->idle);
  pthread_cond_destroy(&s->all_busy);
  pthread_mutex_destroy(&s->busy_mu);
  rpc_run_destroy(&s->run);
  free(s->workers);
  free(s->threads);
  free(s->methods);
  free(s);
}
