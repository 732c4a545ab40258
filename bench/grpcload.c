/* grpcload.c - a CreateEvent (or GetEvent) load generator in C, for
 * bench/run.sh sections 1 and 3.
 *
 * Section 3 sets the service's creates against raw single-insert
 * transactions (bench/rawinsert, C). With ghz (Go) as the service's client,
 * the client took ~650 ms of CPU per 1k creates on a 2-core machine against
 * rawinsert's ~290, so the service was measured starved of CPU by its own
 * load generator. This one is C on gRPC core like the service: one channel
 * (one HTTP/2 connection, as ghz --connections 1), one completion queue
 * polled by the main thread, `c` calls in flight, no thread per call.
 *
 * It sends the documents ghz sends (bench/run.sh CREATE_DATA): event type
 * 8bed991c68a470e7aaeffbf048, customer 85bc5819e09dab95437552ce79,
 * external_id PREFIX-i, data {"source":"bench"}, property records
 * has_purchase = "true" and amount = 42.5. A call counts as ok only with
 * status OK and a response carrying a 26-character event_id.
 *
 * With --get IDS (a file of event ids, one per line) it sends GetEvent for
 * the ids in turn instead, and a call counts as ok only with status OK and
 * the event asked for. Section 1 uses it for the cost of a gRPC core client
 * per unary call, the least the gateway's gRPC side can cost.
 *
 * Usage: grpcload TARGET TOKEN [--concurrency C] [--count N] [--seconds S]
 *                 [--prefix P] [--timeout S] [--get IDS]
 *   Stops starting calls after N calls or S seconds, whichever comes first
 *   (either may be 0: no bound); calls in flight then are waited for and
 *   counted. Prints one JSON line as rawinsert does:
 *   {"n","ok","errors","seconds","rate","p50_ms","p99_ms"}; exits 1 if any
 *   call failed. */
#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "events/customer/v1/customer.pb-c.h"

#define CREATE_METHOD "/events.customer.v1.CustomerEventService/CreateEvent"
#define GET_METHOD "/events.customer.v1.CustomerEventService/GetEvent"
#define MAX_REPORTED_ERRORS 5

typedef struct opts {
  const char *target, *token, *prefix, *ids_file;
  char **ids; /* --get: the ids, asked for in turn */
  size_t n_ids;
  int conc;
  long count;     /* 0: no bound */
  double seconds; /* 0: no bound */
  double timeout; /* per call */
} opts;

/* One call in flight; a slot is reused for the next call once it ends. */
typedef struct slot {
  grpc_call *call;
  grpc_byte_buffer *req, *resp;
  grpc_metadata_array init_md, trail_md;
  grpc_status_code status;
  grpc_slice details;
  double t0;
  long i; /* the call's number: its request */
} slot;

typedef struct load {
  const opts *o;
  grpc_channel *ch;
  grpc_completion_queue *cq;
  grpc_metadata auth;
  double t_start, t_stop; /* t_stop: when no new call starts (0: never) */
  long started, ok, errors;
  double *lat_ms;
  size_t n_lat, cap_lat;
} load;

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int usage(void) {
  fprintf(stderr, "usage: grpcload TARGET TOKEN [--concurrency C] [--count N] [--seconds S]"
                  " [--prefix P] [--timeout S] [--get IDS]\n");
  return 2;
}

static int parse_args(int argc, char **argv, opts *o) {
  *o = (opts){.prefix = "grpcload", .conc = 16, .count = 1000, .timeout = 60};
  if (argc < 3) return usage();
  o->target = argv[1];
  o->token = argv[2];
  for (int i = 3; i < argc; i += 2) {
    const char *k = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!v) return usage();
    if (!strcmp(k, "--concurrency"))
      o->conc = atoi(v);
    else if (!strcmp(k, "--count"))
      o->count = atol(v);
    else if (!strcmp(k, "--seconds"))
      o->seconds = atof(v);
    else if (!strcmp(k, "--prefix"))
      o->prefix = v;
    else if (!strcmp(k, "--timeout"))
      o->timeout = atof(v);
    else if (!strcmp(k, "--get"))
      o->ids_file = v;
    else
      return usage();
  }
  if (o->conc < 1 || o->count < 0 || o->seconds < 0 || o->timeout <= 0 ||
      (!o->count && !o->seconds))
    return usage();
  return 0;
}

/* Reads --get's ids, one per line; 0, or -1 with a message. */
static int load_ids(opts *o) {
  FILE *f = fopen(o->ids_file, "r");
  if (!f) {
    perror(o->ids_file);
    return -1;
  }
  char line[256];
  size_t cap = 0;
  int rc = 0;
  while (fgets(line, sizeof line, f)) {
    line[strcspn(line, "\r\n")] = 0;
    if (!*line) continue;
    if (o->n_ids == cap) {
      cap = cap ? 2 * cap : 256;
      char **p = realloc(o->ids, cap * sizeof *p);
      if (!p) goto fail;
      o->ids = p;
    }
    if (!(o->ids[o->n_ids] = strdup(line))) goto fail;
    o->n_ids++;
  }
  if (!o->n_ids) {
    fprintf(stderr, "grpcload: %s holds no id\n", o->ids_file);
    rc = -1;
  }
  fclose(f);
  return rc;
fail:
  fprintf(stderr, "grpcload: out of memory\n");
  fclose(f);
  return -1;
}

static void free_ids(opts *o) {
  for (size_t i = 0; i < o->n_ids; i++)
    free(o->ids[i]);
  free(o->ids);
}

static int pack_request(const ProtobufCMessage *m, grpc_byte_buffer **out) {
  uint8_t buf[1024];
  size_t len = protobuf_c_message_get_packed_size(m);
  if (len > sizeof buf) return -1;
  protobuf_c_message_pack(m, buf);
  grpc_slice s = grpc_slice_from_copied_buffer((const char *)buf, len);
  *out = grpc_raw_byte_buffer_create(&s, 1);
  grpc_slice_unref(s); /* the byte buffer holds its own reference */
  return *out ? 0 : -1;
}

/* The request of call i, serialised into a byte buffer the call will own. */
static int build_request(const opts *o, long i, grpc_byte_buffer **out) {
  if (o->ids) {
    Events__Customer__V1__GetEventRequest get = EVENTS__CUSTOMER__V1__GET_EVENT_REQUEST__INIT;
    get.event_id = o->ids[(size_t)i % o->n_ids];
    return pack_request(&get.base, out);
  }
  char external[160];
  snprintf(external, sizeof external, "%s-%ld", o->prefix, i);
  Google__Protobuf__StringValue data = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
  data.value = "{\"source\":\"bench\"}";
  Events__Customer__V1__Event ev = EVENTS__CUSTOMER__V1__EVENT__INIT;
  ev.event_type_id = "8bed991c68a470e7aaeffbf048";
  ev.customer_id = "85bc5819e09dab95437552ce79";
  ev.external_id = external;
  ev.data = &data;
  Google__Protobuf__Value v_purchase = GOOGLE__PROTOBUF__VALUE__INIT;
  v_purchase.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_STRING_VALUE;
  v_purchase.string_value = "true";
  Google__Protobuf__Value v_amount = GOOGLE__PROTOBUF__VALUE__INIT;
  v_amount.kind_case = GOOGLE__PROTOBUF__VALUE__KIND_NUMBER_VALUE;
  v_amount.number_value = 42.5;
  Events__Customer__V1__PropertyRecord p_purchase = EVENTS__CUSTOMER__V1__PROPERTY_RECORD__INIT;
  p_purchase.property_id = "has_purchase";
  p_purchase.property_value = &v_purchase;
  Events__Customer__V1__PropertyRecord p_amount = EVENTS__CUSTOMER__V1__PROPERTY_RECORD__INIT;
  p_amount.property_id = "amount";
  p_amount.property_value = &v_amount;
  Events__Customer__V1__PropertyRecord *props[] = {&p_purchase, &p_amount};
  Events__Customer__V1__CreateEventRequest req = EVENTS__CUSTOMER__V1__CREATE_EVENT_REQUEST__INIT;
  req.event = &ev;
  req.n_property_records = 2;
  req.property_records = props;
  return pack_request(&req.base, out);
}

/* Whether a response is a CreateEventResponse with a 26-character event
 * id, or the GetEventResponse of the event asked for. */
static int check_response(const opts *o, long i, grpc_byte_buffer *resp) {
  grpc_byte_buffer_reader r;
  if (!resp || !grpc_byte_buffer_reader_init(&r, resp)) return -1;
  grpc_slice s = grpc_byte_buffer_reader_readall(&r);
  grpc_byte_buffer_reader_destroy(&r);
  if (o->ids) {
    Events__Customer__V1__GetEventResponse *g = events__customer__v1__get_event_response__unpack(
        NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    grpc_slice_unref(s);
    if (!g) return -1;
    int rc = g->event && !strcmp(g->event->event_id, o->ids[(size_t)i % o->n_ids]) ? 0 : -1;
    events__customer__v1__get_event_response__free_unpacked(g, NULL);
    return rc;
  }
  Events__Customer__V1__CreateEventResponse *m =
      events__customer__v1__create_event_response__unpack(NULL, GRPC_SLICE_LENGTH(s),
                                                          GRPC_SLICE_START_PTR(s));
  grpc_slice_unref(s);
  if (!m) return -1;
  int rc = strlen(m->event_id) == 26 ? 0 : -1;
  events__customer__v1__create_event_response__free_unpacked(m, NULL);
  return rc;
}

/* Starts call number i on a free slot: one batch with every op of the call. */
static int slot_start(load *l, slot *sl, long i) {
  memset(sl, 0, sizeof *sl);
  if (build_request(l->o, i, &sl->req)) return -1;
  gpr_timespec deadline =
      gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                   gpr_time_from_millis((int64_t)(l->o->timeout * 1000), GPR_TIMESPAN));
  sl->i = i;
  grpc_slice method = grpc_slice_from_static_string(l->o->ids ? GET_METHOD : CREATE_METHOD);
  sl->call = grpc_channel_create_call(l->ch, NULL, GRPC_PROPAGATE_DEFAULTS, l->cq, method, NULL,
                                      deadline, NULL);
  if (!sl->call) goto fail_request;
  grpc_metadata_array_init(&sl->init_md);
  grpc_metadata_array_init(&sl->trail_md);
  grpc_op ops[6];
  memset(ops, 0, sizeof ops);
  ops[0].op = GRPC_OP_SEND_INITIAL_METADATA;
  ops[0].data.send_initial_metadata.count = 1;
  ops[0].data.send_initial_metadata.metadata = &l->auth;
  /* Waits for the connection instead of failing calls made while it is set up. */
  ops[0].flags = GRPC_INITIAL_METADATA_WAIT_FOR_READY;
  ops[1].op = GRPC_OP_SEND_MESSAGE;
  ops[1].data.send_message.send_message = sl->req;
  ops[2].op = GRPC_OP_SEND_CLOSE_FROM_CLIENT;
  ops[3].op = GRPC_OP_RECV_INITIAL_METADATA;
  ops[3].data.recv_initial_metadata.recv_initial_metadata = &sl->init_md;
  ops[4].op = GRPC_OP_RECV_MESSAGE;
  ops[4].data.recv_message.recv_message = &sl->resp;
  ops[5].op = GRPC_OP_RECV_STATUS_ON_CLIENT;
  ops[5].data.recv_status_on_client.trailing_metadata = &sl->trail_md;
  ops[5].data.recv_status_on_client.status = &sl->status;
  ops[5].data.recv_status_on_client.status_details = &sl->details;
  sl->t0 = now_s();
  grpc_call_error e = grpc_call_start_batch(sl->call, ops, 6, sl, NULL);
  if (e != GRPC_CALL_OK) {
    fprintf(stderr, "grpcload: start_batch: %s\n", grpc_call_error_to_string(e));
    goto fail_call;
  }
  l->started++;
  return 0;

fail_call:
  grpc_metadata_array_destroy(&sl->init_md);
  grpc_metadata_array_destroy(&sl->trail_md);
  grpc_call_unref(sl->call);
  sl->call = NULL;
fail_request:
  grpc_byte_buffer_destroy(sl->req);
  return -1;
}

static int record_latency(load *l, double ms) {
  if (l->n_lat == l->cap_lat) {
    size_t cap = l->cap_lat ? 2 * l->cap_lat : 4096;
    double *p = realloc(l->lat_ms, cap * sizeof *p);
    if (!p) return -1;
    l->lat_ms = p;
    l->cap_lat = cap;
  }
  l->lat_ms[l->n_lat++] = ms;
  return 0;
}

/* Accounts for a call that ended and frees what it held. */
static void slot_finish(load *l, slot *sl, int batch_ok) {
  double ms = (now_s() - sl->t0) * 1e3;
  int ok = batch_ok && sl->status == GRPC_STATUS_OK && !check_response(l->o, sl->i, sl->resp);
  if (ok) {
    l->ok++;
  } else {
    if (l->errors < MAX_REPORTED_ERRORS)
      fprintf(stderr, "grpcload: call failed: batch %d, status %d: %.*s\n", batch_ok,
              (int)sl->status, (int)GRPC_SLICE_LENGTH(sl->details),
              (const char *)GRPC_SLICE_START_PTR(sl->details));
    l->errors++;
  }
  if (record_latency(l, ms)) l->errors++;
  grpc_slice_unref(sl->details);
  grpc_metadata_array_destroy(&sl->init_md);
  grpc_metadata_array_destroy(&sl->trail_md);
  if (sl->resp) grpc_byte_buffer_destroy(sl->resp);
  grpc_byte_buffer_destroy(sl->req);
  grpc_call_unref(sl->call);
  sl->call = NULL;
}

static int more_to_start(const load *l) {
  if (l->o->count && l->started >= l->o->count) return 0;
  return !l->t_stop || now_s() < l->t_stop;
}

/* Keeps conc calls in flight until the bound, then drains. */
static int run_load(load *l, slot *slots) {
  long in_flight = 0;
  l->t_start = now_s();
  l->t_stop = l->o->seconds ? l->t_start + l->o->seconds : 0;
  for (int k = 0; k < l->o->conc && more_to_start(l); k++) {
    if (slot_start(l, &slots[k], l->started)) return -1;
    in_flight++;
  }
  while (in_flight) {
    grpc_event ev = grpc_completion_queue_next(l->cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE) {
      fprintf(stderr, "grpcload: completion queue event %d\n", (int)ev.type);
      return -1;
    }
    slot *sl = ev.tag;
    slot_finish(l, sl, ev.success);
    in_flight--;
    if (more_to_start(l)) {
      if (slot_start(l, sl, l->started)) return -1;
      in_flight++;
    }
  }
  return 0;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(load *l, double secs) {
  size_t n = l->n_lat;
  qsort(l->lat_ms, n, sizeof *l->lat_ms, cmp_double);
  double p50 = n ? l->lat_ms[(size_t)(0.50 * (double)(n - 1))] : 0;
  double p99 = n ? l->lat_ms[(size_t)(0.99 * (double)(n - 1))] : 0;
  printf("{\"n\":%zu,\"ok\":%ld,\"errors\":%ld,\"seconds\":%.3f,\"rate\":%.1f,\"p50_ms\":%.3f,"
         "\"p99_ms\":%.3f}\n",
         n, l->ok, l->errors, secs, secs > 0 ? (double)l->ok / secs : 0, p50, p99);
}

/* Drains a shut down queue: required before destroying it. */
static void cq_drain(grpc_completion_queue *cq) {
  grpc_completion_queue_shutdown(cq);
  while (grpc_completion_queue_next(cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL).type !=
         GRPC_QUEUE_SHUTDOWN) {
  }
}

int main(int argc, char **argv) {
  opts o;
  int rc = parse_args(argc, argv, &o);
  if (rc) return rc;
  if (o.ids_file && load_ids(&o)) {
    free_ids(&o);
    return 2;
  }
  rc = 1;
  load l = {.o = &o};
  size_t bearer_len = strlen("Bearer ") + strlen(o.token) + 1;
  char *bearer = malloc(bearer_len);
  slot *slots = calloc((size_t)o.conc, sizeof *slots);
  if (!bearer || !slots) goto cleanup_memory;
  snprintf(bearer, bearer_len, "Bearer %s", o.token);

  grpc_init();
  l.auth.key = grpc_slice_from_static_string("authorization");
  l.auth.value = grpc_slice_from_static_string(bearer); /* bearer outlives every call */
  grpc_channel_credentials *creds = grpc_insecure_credentials_create();
  l.ch = grpc_channel_create(o.target, creds, NULL);
  grpc_channel_credentials_release(creds);
  if (!l.ch) goto cleanup_grpc;
  l.cq = grpc_completion_queue_create_for_next(NULL);
  if (!l.cq) goto cleanup_channel;

  if (!run_load(&l, slots)) {
    report(&l, now_s() - l.t_start);
    rc = l.errors ? 1 : 0;
  }
  /* After a failed start, calls may still be in flight: cancel them and
   * wait for their completions so the queue can be destroyed. */
  long pending = 0;
  for (int k = 0; k < o.conc; k++)
    if (slots[k].call) {
      grpc_call_cancel(slots[k].call, NULL);
      pending++;
    }
  for (; pending > 0; pending--) {
    grpc_event ev = grpc_completion_queue_next(l.cq, gpr_inf_future(GPR_CLOCK_MONOTONIC), NULL);
    if (ev.type != GRPC_OP_COMPLETE) break;
    slot_finish(&l, ev.tag, ev.success);
  }
  cq_drain(l.cq);
  grpc_completion_queue_destroy(l.cq);
cleanup_channel:
  grpc_channel_destroy(l.ch);
cleanup_grpc:
  grpc_shutdown();
cleanup_memory:
  free(l.lat_ms);
  free(slots);
  free(bearer);
  free_ids(&o);
  return rc;
}
