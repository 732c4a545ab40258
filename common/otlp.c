/* otlp.c - the OTLP/HTTP span exporter. Request threads copy a finished
 * span into a fixed ring under a short lock; one exporter thread wakes every
 * second (or when a batch is full), encodes the batch as an OTLP
 * ExportTraceServiceRequest with protobuf-c and POSTs it with libcurl. */
#include "otlp.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <curl/curl.h>

#include "log.h"
#include "metrics.h"
#include "otlp/v1/trace.pb-c.h"

#define RING 4096
#define BATCH 512
#define MAX_ATTRS 6

typedef struct span {
  uint8_t trace_id[16], span_id[8], parent_id[8];
  int has_parent, kind, error;
  char name[128];
  uint64_t start_ns, end_ns;
  size_t n_attrs;
  char keys[MAX_ATTRS][32], values[MAX_ATTRS][160];
} span;

static struct {
  pthread_mutex_t mu;
  pthread_cond_t cv;
  pthread_t thread;
  int running, stopping;
  span *ring;
  size_t head, count;
  char *url, *service;
  CURL *curl;
} ex = {.mu = PTHREAD_MUTEX_INITIALIZER, .cv = PTHREAD_COND_INITIALIZER};

uint64_t otlp_now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int otlp_enabled(void) {
  return ex.running;
}

void otlp_record(const trace_ctx *t, const char *name, int kind, uint64_t start_ns, uint64_t end_ns,
                 int error, const otlp_attr *attrs, size_t n_attrs) {
  if (!ex.running) return;
  pthread_mutex_lock(&ex.mu);
  if (ex.count == RING) {
    pthread_mutex_unlock(&ex.mu);
    metrics_count("events_otlp_spans_dropped_total", "", 1);
    return;
  }
  span *s = &ex.ring[(ex.head + ex.count++) % RING];
  memcpy(s->trace_id, t->trace_id, 16);
  memcpy(s->span_id, t->span_id, 8);
  memcpy(s->parent_id, t->parent_id, 8);
  s->has_parent = trace_has_parent(t);
  s->kind = kind;
  s->error = error;
  snprintf(s->name, sizeof s->name, "%s", name);
  s->start_ns = start_ns;
  s->end_ns = end_ns;
  s->n_attrs = n_attrs < MAX_ATTRS ? n_attrs : MAX_ATTRS;
  for (size_t i = 0; i < s->n_attrs; i++) {
    snprintf(s->keys[i], sizeof s->keys[i], "%s", attrs[i].key);
    snprintf(s->values[i], sizeof s->values[i], "%s", attrs[i].value ? attrs[i].value : "");
  }
  if (ex.count >= BATCH) pthread_cond_signal(&ex.cv);
  pthread_mutex_unlock(&ex.mu);
}

static size_t discard(char *p, size_t size, size_t n, void *u) {
  (void)p, (void)u;
  return size * n;
}

/* Encodes and sends n spans; the protobuf-c tree points into `batch`. */
static void send_batch(const span *batch, size_t n) {
  Otlp__V1__Span *spans = calloc(n, sizeof *spans), **sp = calloc(n, sizeof *sp);
  Otlp__V1__KeyValue *kvs = calloc(n * MAX_ATTRS, sizeof *kvs),
                     **kvp = calloc(n * MAX_ATTRS, sizeof *kvp);
  Otlp__V1__AnyValue *vals = calloc(n * MAX_ATTRS, sizeof *vals);
  Otlp__V1__Status *sts = calloc(n, sizeof *sts);
  uint8_t *buf = NULL;
  if (!spans || !sp || !kvs || !kvp || !vals || !sts) goto free_tree;
  for (size_t i = 0; i < n; i++) {
    const span *s = &batch[i];
    Otlp__V1__Span *o = &spans[i];
    otlp__v1__span__init(o);
    o->trace_id = (ProtobufCBinaryData){16, (uint8_t *)s->trace_id};
    o->span_id = (ProtobufCBinaryData){8, (uint8_t *)s->span_id};
    if (s->has_parent) o->parent_span_id = (ProtobufCBinaryData){8, (uint8_t *)s->parent_id};
    o->name = (char *)s->name;
    o->kind = s->kind;
    o->start_time_unix_nano = s->start_ns;
    o->end_time_unix_nano = s->end_ns;
    o->n_attributes = s->n_attrs;
    o->attributes = &kvp[i * MAX_ATTRS];
    for (size_t a = 0; a < s->n_attrs; a++) {
      size_t k = i * MAX_ATTRS + a;
      otlp__v1__key_value__init(&kvs[k]);
      otlp__v1__any_value__init(&vals[k]);
      vals[k].value_case = OTLP__V1__ANY_VALUE__VALUE_STRING_VALUE;
      vals[k].string_value = (char *)s->values[a];
      kvs[k].key = (char *)s->keys[a];
      kvs[k].value = &vals[k];
      kvp[k] = &kvs[k];
    }
    otlp__v1__status__init(&sts[i]);
    sts[i].code = s->error ? 2 : 1;
    o->status = &sts[i];
    sp[i] = o;
  }
  Otlp__V1__AnyValue svc = OTLP__V1__ANY_VALUE__INIT;
  svc.value_case = OTLP__V1__ANY_VALUE__VALUE_STRING_VALUE;
  svc.string_value = ex.service;
  Otlp__V1__KeyValue svc_kv = OTLP__V1__KEY_VALUE__INIT, *svc_kvp = &svc_kv;
  svc_kv.key = "service.name";
  svc_kv.value = &svc;
  Otlp__V1__Resource res = OTLP__V1__RESOURCE__INIT;
  res.n_attributes = 1;
  res.attributes = &svc_kvp;
  Otlp__V1__InstrumentationScope scope = OTLP__V1__INSTRUMENTATION_SCOPE__INIT;
  scope.name = "events";
  Otlp__V1__ScopeSpans ss = OTLP__V1__SCOPE_SPANS__INIT, *ssp = &ss;
  ss.scope = &scope;
  ss.n_spans = n;
  ss.spans = sp;
  Otlp__V1__ResourceSpans rs = OTLP__V1__RESOURCE_SPANS__INIT, *rsp = &rs;
  rs.resource = &res;
  rs.n_scope_spans = 1;
  rs.scope_spans = &ssp;
  Otlp__V1__ExportTraceServiceRequest req = OTLP__V1__EXPORT_TRACE_SERVICE_REQUEST__INIT;
  req.n_resource_spans = 1;
  req.resource_spans = &rsp;

  size_t len = otlp__v1__export_trace_service_request__get_packed_size(&req);
  buf = malloc(len ? len : 1);
  if (!buf) goto free_tree;
  otlp__v1__export_trace_service_request__pack(&req, buf);

  struct curl_slist *hdrs = curl_slist_append(NULL, "Content-Type: application/x-protobuf");
  curl_easy_setopt(ex.curl, CURLOPT_URL, ex.url);
  curl_easy_setopt(ex.curl, CURLOPT_HTTPHEADER, hdrs);
  curl_easy_setopt(ex.curl, CURLOPT_POSTFIELDS, (char *)buf);
  curl_easy_setopt(ex.curl, CURLOPT_POSTFIELDSIZE, (long)len);
  curl_easy_setopt(ex.curl, CURLOPT_TIMEOUT_MS, 5000L);
  curl_easy_setopt(ex.curl, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(ex.curl, CURLOPT_WRITEFUNCTION, discard);
  CURLcode rc = curl_easy_perform(ex.curl);
  long status = 0;
  curl_easy_getinfo(ex.curl, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(hdrs);
  if (rc != CURLE_OK || status / 100 != 2) {
    metrics_count("events_otlp_spans_dropped_total", "", (double)n);
    log_json(LOG_LEVEL_WARN, "span export failed",
             json_pack("{s:s, s:i, s:i}", "error", curl_easy_strerror(rc), "status", (int)status,
                       "spans", (int)n));
  } else {
    metrics_count("events_otlp_spans_exported_total", "", (double)n);
  }
free_tree:
  free(buf);
  free(sts);
  free(vals);
  free(kvp);
  free(kvs);
  free(sp);
  free(spans);
}

static void *run(void *arg) {
  (void)arg;
  span *batch = malloc(BATCH * sizeof *batch);
  if (!batch) return NULL;
  pthread_mutex_lock(&ex.mu);
  for (;;) {
    if (ex.count < BATCH && !ex.stopping) {
      struct timespec until;
      clock_gettime(CLOCK_REALTIME, &until);
      until.tv_sec += 1;
      pthread_cond_timedwait(&ex.cv, &ex.mu, &until);
    }
    size_t n = ex.count < BATCH ? ex.count : BATCH;
    for (size_t i = 0; i < n; i++)
      batch[i] = ex.ring[(ex.head + i) % RING];
    ex.head = (ex.head + n) % RING;
    ex.count -= n;
    int done = ex.stopping && ex.count == 0;
    pthread_mutex_unlock(&ex.mu);
    if (n) send_batch(batch, n);
    if (done) break;
    pthread_mutex_lock(&ex.mu);
  }
  free(batch);
  return NULL;
}

int otlp_start(const char *endpoint, const char *service_name, char *err, size_t errlen) {
  size_t len = strlen(endpoint);
  if (strncmp(endpoint, "http://", 7) != 0 && strncmp(endpoint, "https://", 8) != 0) {
    snprintf(err, errlen, "\"%s\" is not an http:// or https:// URL", endpoint);
    return -1;
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  ex.ring = calloc(RING, sizeof *ex.ring);
  ex.url = malloc(len + sizeof "/v1/traces");
  ex.service = strdup(service_name);
  ex.curl = curl_easy_init();
  if (!ex.ring || !ex.url || !ex.service || !ex.curl) {
    snprintf(err, errlen, "out of memory");
    goto free_all;
  }
  int has_path = len >= 10 && strcmp(endpoint + len - 10, "/v1/traces") == 0;
  sprintf(ex.url, "%s%s", endpoint,
          has_path                            ? ""
          : (len && endpoint[len - 1] == '/') ? "v1/traces"
                                              : "/v1/traces");
  metrics_describe("events_otlp_spans_exported_total", "counter", "Spans sent to the collector");
  metrics_describe("events_otlp_spans_dropped_total", "counter",
                   "Spans dropped (queue full or the collector failed)");
  ex.running = 1;
  if (pthread_create(&ex.thread, NULL, run, NULL) != 0) {
    ex.running = 0;
    snprintf(err, errlen, "cannot start the exporter thread");
    goto free_all;
  }
  return 0;
free_all:
  if (ex.curl) curl_easy_cleanup(ex.curl);
  free(ex.service);
  free(ex.url);
  free(ex.ring);
  ex.ring = NULL;
  ex.curl = NULL, ex.service = ex.url = NULL;
  curl_global_cleanup();
  return -1;
}

void otlp_stop(void) {
  if (!ex.running) return;
  pthread_mutex_lock(&ex.mu);
  ex.stopping = 1;
  pthread_cond_signal(&ex.cv);
  pthread_mutex_unlock(&ex.mu);
  pthread_join(ex.thread, NULL);
  ex.running = 0;
  curl_easy_cleanup(ex.curl);
  free(ex.service);
  free(ex.url);
  free(ex.ring);
  ex.ring = NULL;
  ex.curl = NULL, ex.service = ex.url = NULL;
  curl_global_cleanup();
}
