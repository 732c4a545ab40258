/* object.c - object events (seed 003): scheduled events (meetings, calls,
 * visits) attached to a record of an object. Ids are UUIDv7, so the store's
 * id order is creation order and listing is a keyset walk over ids; every
 * event is scoped to its tenant by the store and to its object here. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "dialects.h"
#include "docs.h"
#include "events/object/v1/object.pb-c.h"
#include "ids.h"
#include "rpc_feed.h"
#include "pbjson.h"
#include "rpc_batch.h"

#define COLL "object_events"

typedef Events__Object__V1__Event Event;
typedef Google__Protobuf__StringValue StringValue;

static const store_index indexes[] = {
    {{"object", "id", NULL}, 0},          {{"object", "record_id", NULL}, 0},
    {{"object", "external_id", NULL}, 0}, {{"object", "sync_token", NULL}, 0},
    {{"object", "start_at", NULL}, 0},
};
static const store_collection collections[] = {
    {COLL, indexes, sizeof indexes / sizeof *indexes},
};

static void check_object_id(rpc_call *c, const char *object_id) {
  check_required(c, "object_id", object_id);
}

/* Event ids are UUIDs (the declared format, checked by rpc_validate when
 * given); stored ones are lowercase, so the lookup key is too. */
static int check_event_id(rpc_call *c, const char *event_id, char key[37]) {
  if (!event_id || !*event_id)
    rpc_violation(c, "event_id", "invalid_value_format", "event_id must be a UUID");
  if (rpc_failed(c)) return 0;
  for (int i = 0; i < 37; i++)
    key[i] = (char)tolower((unsigned char)event_id[i]);
  return 1;
}

/* A Timestamp a calendar can show (the mapper stores nothing for others). */
static int check_time(rpc_call *c, const char *field, const Google__Protobuf__Timestamp *t) {
  char buf[64];
  if (pbjson_time_format(t->seconds, t->nanos, 0, buf, sizeof buf) == 0) return 1;
  rpc_violation(c, field, "out_of_range", "%s must be a time within years 0001..9999", field);
  return 0;
}

/* Only a system recommendation carries why and how it was planned. */
static void check_recommendation(rpc_call *c, const Event *e) {
  if (e->source == EVENTS__OBJECT__V1__SOURCE__SOURCE_SYSTEM_RECOMMENDATION) return;
  if (e->recommendation_reason)
    rpc_violation(c, "event.recommendation_reason", "not_allowed_value",
                  "event.recommendation_reason is only allowed with source "
                  "system_recommendation");
  if (e->planning_strategy)
    rpc_violation(c, "event.planning_strategy", "not_allowed_value",
                  "event.planning_strategy is only allowed with source system_recommendation");
}

static void check_times(rpc_call *c, const Event *e) {
  if (!e->start_at || !e->end_at) return; /* required: rpc_behavior.c */
  if (check_time(c, "event.start_at", e->start_at) & check_time(c, "event.end_at", e->end_at) &&
      ts_micros(e->end_at) < ts_micros(e->start_at))
    rpc_violation(c, "event.end_at", "out_of_range", "event.end_at must not be before start_at");
}

/* The writable fields of an event, on create and on replace, beyond their
 * declared behaviour (rpc_behavior.c): enum values the proto knows. */
static void validate_event(rpc_call *c, const Event *e) {
  if (!protobuf_c_enum_descriptor_get_value(&events__object__v1__source__descriptor,
                                            (int)e->source))
    rpc_violation(c, "event.source", "not_allowed_value",
                  "event.source must be external, manual or system_recommendation");
  if (!protobuf_c_enum_descriptor_get_value(&events__object__v1__review_status__descriptor,
                                            (int)e->review_status))
    rpc_violation(c, "event.review_status", "not_allowed_value",
                  "event.review_status must be pending, approved or rejected");
  check_times(c, e);
  check_recommendation(c, e);
}

/* Stores `ev` (insert or replace) and decodes the stored document back, so
 * the reply is exactly what a later read returns. NULL with the call failed. */
static Event *save_event(rpc_call *c, const Event *ev, int insert) {
  json_t *doc = doc_encode(&ev->base, json_string(ev->id));
  store_err err;
  Event *saved = NULL;
  if (!doc) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return NULL;
  }
  int rc = insert ? store_insert(rpc_store(c), rpc_tenant(c), COLL, doc, &err)
                  : store_replace(rpc_store(c), rpc_tenant(c), COLL, doc, &err);
  if (rc < 0) {
    if (err.code == STORE_ENOTFOUND)
      rpc_fail(c, GRPC_STATUS_NOT_FOUND, "event %s not found", ev->id);
    else
      rpc_fail_store_as(c, &err, "event");
  } else {
    saved = (Event *)doc_decode(c, doc, &events__object__v1__event__descriptor);
  }
  json_decref(doc);
  return saved;
}

/* One create request as the document to store (rpc_batch.h). */
static json_t *build_event(rpc_call *c, const ProtobufCMessage *req, const void *ctx) {
  (void)ctx;
  const Events__Object__V1__CreateEventRequest *in =
      (const Events__Object__V1__CreateEventRequest *)req;
  if (in->event) validate_event(c, in->event);
  if (rpc_failed(c)) return NULL;
  char id[37], token[37];
  Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  StringValue generated = GOOGLE__PROTOBUF__STRING_VALUE__INIT;
  Event ev = *in->event; /* shallow: the request owns every member */
  if (ids_uuid7(id) < 0 || ids_uuid4(token) < 0) {
    rpc_fail(c, GRPC_STATUS_UNAVAILABLE, "no randomness for ids");
    return NULL;
  }
  ts_set(&now, ids_now_us());
  ev.id = id;
  ev.object = in->object_id;
  ev.created_at = ev.updated_at = &now;
  if (!ev.sync_token) {
    generated.value = token;
    ev.sync_token = &generated;
  }
  if (ev.review_status == EVENTS__OBJECT__V1__REVIEW_STATUS__REVIEW_STATUS_UNSPECIFIED)
    ev.review_status = EVENTS__OBJECT__V1__REVIEW_STATUS__REVIEW_STATUS_APPROVED;
  json_t *doc = doc_encode(&ev.base, json_string(ev.id));
  if (!doc) rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return doc;
}

/* What a later read returns. */
static ProtobufCMessage *stored_event(rpc_call *c, json_t *doc, const void *ctx) {
  (void)ctx;
  return doc_decode(c, doc, &events__object__v1__event__descriptor);
}

static const rpc_create_ops create_ops = {
    .what = "event",
    .coll = COLL,
    .build = build_event,
    .result = stored_event,
};

static void create_event(Events__Object__V1__ObjectEventService_Service *svc,
                         const Events__Object__V1__CreateEventRequest *in,
                         Events__Object__V1__CreateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  json_t *doc = rpc_create_one(c, &in->base, &create_ops);
  ProtobufCMessage *saved = doc ? stored_event(c, doc, NULL) : NULL;
  rpc_reply((ProtobufCClosure)done, c, saved);
  if (saved) protobuf_c_message_free_unpacked(saved, NULL);
  json_decref(doc);
}

static void batch_create_events(Events__Object__V1__ObjectEventService_Service *svc,
                                const Events__Object__V1__BatchCreateEventsRequest *in,
                                Events__Object__V1__BatchCreateEventsResponse_Closure done,
                                void *call) {
  (void)svc;
  rpc_batch_create(call, &in->base, &create_ops, (ProtobufCClosure)done);
}

/* Loads an event of the tenant that belongs to `object_id`; an event of
 * another object does not exist here either. NULL with the call failed. */
static Event *load_event(rpc_call *c, const char *object_id, const char *event_id) {
  char key[37];
  check_object_id(c, object_id);
  if (!check_event_id(c, event_id, key) || rpc_failed(c)) return NULL;
  json_t *id = json_string(key);
  Event *ev = (Event *)doc_load(c, COLL, id, &events__object__v1__event__descriptor, NULL, "event");
  json_decref(id);
  if (ev && strcmp(ev->object, object_id) != 0) {
    protobuf_c_message_free_unpacked(&ev->base, NULL);
    ev = NULL;
    rpc_fail(c, GRPC_STATUS_NOT_FOUND, "event %s not found", event_id);
  }
  return ev;
}

static void get_event(Events__Object__V1__ObjectEventService_Service *svc,
                      const Events__Object__V1__GetEventRequest *in,
                      Events__Object__V1__GetEventResponse_Closure done, void *call) {
  (void)svc;
  Event *ev = load_event(call, in->object_id, in->event_id);
  rpc_reply((ProtobufCClosure)done, call, ev ? &ev->base : NULL);
  if (ev) protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* The replacement of `cur` by the writable fields of `e`: identity, record,
 * creation time and (when `e` leaves it out) the sync token stay. */
static Event *replace_event(rpc_call *c, const Event *e, const Event *cur) {
  if (e->record_id[0] && strcmp(e->record_id, cur->record_id) != 0) {
    rpc_violation(c, "event.record_id", "not_allowed_value",
                  "event.record_id cannot be changed (it is %s)", cur->record_id);
    return NULL;
  }
  Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  Event next = *e; /* shallow: the request and the stored event own the members */
  ts_set(&now, ids_now_us());
  next.id = cur->id;
  next.object = cur->object;
  next.record_id = cur->record_id;
  next.created_at = cur->created_at;
  next.updated_at = &now;
  if (!next.sync_token) next.sync_token = cur->sync_token;
  if (next.review_status == EVENTS__OBJECT__V1__REVIEW_STATUS__REVIEW_STATUS_UNSPECIFIED)
    next.review_status = EVENTS__OBJECT__V1__REVIEW_STATUS__REVIEW_STATUS_APPROVED;
  return save_event(c, &next, 0);
}

static void update_event(Events__Object__V1__ObjectEventService_Service *svc,
                         const Events__Object__V1__UpdateEventRequest *in,
                         Events__Object__V1__UpdateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  Event *cur = NULL, *saved = NULL;
  char key[37];
  check_event_id(c, in->event_id, key);
  if (in->event) validate_event(c, in->event);
  if (!rpc_failed(c) && (cur = load_event(c, in->object_id, in->event_id)))
    saved = replace_event(c, in->event, cur);
  rpc_reply((ProtobufCClosure)done, c, saved ? &saved->base : NULL);
  if (saved) protobuf_c_message_free_unpacked(&saved->base, NULL);
  if (cur) protobuf_c_message_free_unpacked(&cur->base, NULL);
}

static void delete_event(Events__Object__V1__ObjectEventService_Service *svc,
                         const Events__Object__V1__DeleteEventRequest *in,
                         Events__Object__V1__DeleteEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  Event *ev = load_event(c, in->object_id, in->event_id);
  if (ev) {
    json_t *id = json_string(ev->id);
    store_err err;
    if (store_delete(rpc_store(c), rpc_tenant(c), COLL, id, &err) < 0) {
      if (err.code == STORE_ENOTFOUND)
        rpc_fail(c, GRPC_STATUS_NOT_FOUND, "event %s not found", ev->id);
      else
        rpc_fail_store_as(c, &err, "event");
    }
    json_decref(id);
  }
  rpc_reply((ProtobufCClosure)done, c, rpc_failed(c) || !ev ? NULL : &ev->base);
  if (ev) protobuf_c_message_free_unpacked(&ev->base, NULL);
}

/* ---- listing ---- */

#define MAX_CONDS 16

typedef struct conds {
  store_cond items[MAX_CONDS];
  size_t n;
} conds;

static void cond_add(conds *cs, const char *field, store_op op, json_t *value) {
  if (cs->n < MAX_CONDS) cs->items[cs->n++] = (store_cond){field, op, value};
}

/* The filters as store conditions. Values come from the request encoded in
 * the stored form (enums as names, times as microseconds), so they compare
 * like the documents do; `enc` owns them. */
static void list_conds(const Events__Object__V1__ListEventsRequest *in, json_t *enc, conds *cs) {
  static const char *const eq[] = {"record_id", "external_id", "sync_token", "event_type"};
  static const struct {
    const char *param, *field;
    store_op op;
  } ranges[] = {
      {"start_at_gte", "start_at", STORE_GTE},
      {"start_at_lte", "start_at", STORE_LTE},
      {"end_at_gte", "end_at", STORE_GTE},
      {"end_at_lte", "end_at", STORE_LTE},
  };
  cond_add(cs, "object", STORE_EQ, json_object_get(enc, "object_id"));
  for (size_t i = 0; i < sizeof eq / sizeof *eq; i++) {
    json_t *v = json_object_get(enc, eq[i]);
    if (v && !json_is_null(v)) cond_add(cs, eq[i], STORE_EQ, v);
  }
  if (in->source) cond_add(cs, "source", STORE_EQ, json_object_get(enc, "source"));
  if (in->review_status)
    cond_add(cs, "review_status", STORE_EQ, json_object_get(enc, "review_status"));
  for (size_t i = 0; i < sizeof ranges / sizeof *ranges; i++) {
    json_t *v = json_object_get(enc, ranges[i].param);
    if (v && !json_is_null(v)) cond_add(cs, ranges[i].field, ranges[i].op, v);
  }
  if (in->has_external_id)
    cond_add(cs, "external_id", in->has_external_id->value ? STORE_EXISTS : STORE_MISSING, NULL);
}

static void validate_list(rpc_call *c, const Events__Object__V1__ListEventsRequest *in) {
  check_object_id(c, in->object_id);
  if (in->source && !protobuf_c_enum_descriptor_get_value(&events__object__v1__source__descriptor,
                                                          (int)in->source))
    rpc_violation(c, "source", "not_allowed_value",
                  "source must be external, manual or system_recommendation");
  if (in->review_status &&
      !protobuf_c_enum_descriptor_get_value(&events__object__v1__review_status__descriptor,
                                            (int)in->review_status))
    rpc_violation(c, "review_status", "not_allowed_value",
                  "review_status must be pending, approved or rejected");
  const Google__Protobuf__Timestamp *times[] = {in->start_at_gte, in->start_at_lte, in->end_at_gte,
                                                in->end_at_lte};
  static const char *const names[] = {"start_at_gte", "start_at_lte", "end_at_gte", "end_at_lte"};
  for (int i = 0; i < 4; i++)
    if (times[i]) check_time(c, names[i], times[i]);
}

static void list_events(Events__Object__V1__ObjectEventService_Service *svc,
                        const Events__Object__V1__ListEventsRequest *in,
                        Events__Object__V1__ListEventsResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  validate_list(c, in);
  if (rpc_failed(c)) {
    done(NULL, c);
    return;
  }
  json_t *enc = pbjson_encode(&in->base, PBJSON_MICROS_TIME | PBJSON_OMIT_NULL);
  conds cs = {.n = 0};
  store_page page = {0};
  store_err err;
  Event **events = NULL;
  size_t n_events = 0;
  Events__Object__V1__ListEventsResponse out = EVENTS__OBJECT__V1__LIST_EVENTS_RESPONSE__INIT;
  if (!enc) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto reply;
  }
  list_conds(in, enc, &cs);
  char token[RPC_FEED_TOKEN_MAX];
  rpc_feed_list_token(c, token, sizeof token);
  store_query q = {.conds = cs.items,
                   .n_conds = cs.n,
                   .limit = rpc_page_size(c, in->page_size),
                   .after = in->page_token[0] ? in->page_token : NULL};
  if (store_find(rpc_store(c), rpc_tenant(c), COLL, &q, &page, &err) < 0) {
    /* The filters are checked above: an invalid query is the cursor. */
    if (err.code == STORE_EINVAL)
      rpc_violation(c, "page_token", "invalid_value_format", "page_token is not a valid cursor");
    else
      rpc_fail_store_as(c, &err, "event");
    goto reply;
  }
  if (doc_decode_all(c, page.docs, &events__object__v1__event__descriptor, NULL,
                     (ProtobufCMessage ***)&events, &n_events) < 0)
    goto free_results;
  out.n_events = n_events;
  out.events = events;
  if (page.next) out.next_page_token = page.next;
  out.resume_token = token;
  done(&out, c);
free_results:
  doc_free_all((ProtobufCMessage **)events, n_events);
  store_page_clear(&page);
reply:
  json_decref(enc);
  if (rpc_failed(c)) done(NULL, c);
}

/* ---- WatchEvents: the list's filters (an object_id is required as there) ---- */

static ProtobufCMessage *watch_decode(rpc_call *c, const char *coll, json_t *doc) {
  (void)coll;
  return doc_decode(c, doc, &events__object__v1__event__descriptor);
}

static void watch_events(Events__Object__V1__ObjectEventService_Service *svc,
                         const Events__Object__V1__WatchEventsRequest *in,
                         Events__Object__V1__WatchEventsResponse_Closure done, void *call) {
  (void)svc;
  (void)done; /* a stream: rpc_feed answers */
  rpc_call *c = call;
  static const Events__Object__V1__ListEventsRequest none =
      EVENTS__OBJECT__V1__LIST_EVENTS_REQUEST__INIT;
  const Events__Object__V1__ListEventsRequest *q = in->filter ? in->filter : &none;
  if (!q->object_id || !*q->object_id)
    rpc_violation(c, "filter.object_id", "required", "filter.object_id is required");
  else
    validate_list(c, q);
  if (rpc_failed(c)) return;
  json_t *enc = pbjson_encode(&q->base, PBJSON_MICROS_TIME | PBJSON_OMIT_NULL);
  conds cs = {.n = 0};
  rpc_feed_filter *f = enc ? rpc_feed_filter_new() : NULL;
  if (f) list_conds(q, enc, &cs);
  if (f && rpc_feed_filter_add(f, COLL, cs.items, cs.n, NULL) < 0) {
    rpc_feed_filter_free(f);
    f = NULL;
  }
  rpc_feed_open(c, f, watch_decode, in->resume_token);
  json_decref(enc);
}

static Events__Object__V1__ObjectEventService_Service service = {
    .base = EVENTS__OBJECT__V1__OBJECT_EVENT_SERVICE__BASE_INIT,
    .create_event = create_event,
    .get_event = get_event,
    .list_events = list_events,
    .update_event = update_event,
    .delete_event = delete_event,
    .batch_create_events = batch_create_events,
    .watch_events = watch_events,
};

const dialect object_dialect = {
    .service = {&events__object__v1__object_event_service__descriptor, &service.base, 0},
    .collections = collections,
    .n_collections = sizeof collections / sizeof *collections,
};
