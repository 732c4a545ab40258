/* customer.c - customer events (seed 001): events of a customer account with
 * their property records, stored as one document so a create is atomic, and
 * unique on (event_type_id, customer_id, external_id) by a unique index. */
#include <stdlib.h>
#include <string.h>

#include "dialects.h"
#include "docs.h"
#include "events/customer/v1/customer.pb-c.h"
#include "ids.h"
#include "rpc_batch.h"
#include "rpc_feed.h"

#define COLL "customer_events"
#define ID_LEN 26

typedef Events__Customer__V1__Event Event;
typedef Events__Customer__V1__PropertyRecord PropertyRecord;

static const store_index indexes[] = {
    {{"event_type_id", "customer_id", "external_id", NULL}, 1},
    {{"created_at", NULL}, 0},
    {{"customer_id", "created_at", NULL}, 0},
    {{"external_id", NULL}, 0},
};
static const store_collection collections[] = {
    {COLL, indexes, sizeof indexes / sizeof *indexes},
};

/* The id's format is its declared rule's (rpc_validate), which passes over
 * an empty string: here that is no id at all. */
static int check_id(rpc_call *c, const char *field, const char *id) {
  if (!id || !*id)
    rpc_violation(c, field, "invalid_value_format", "%s must be %d lowercase hex characters", field,
                  ID_LEN);
  return !rpc_failed(c);
}

/* One create request as the document to store (see rpc_batch.h); its
 * required members were checked by their declared behaviour (rpc_behavior.c). */
static json_t *build_event(rpc_call *c, const ProtobufCMessage *req, const void *ctx) {
  (void)ctx;
  const Events__Customer__V1__CreateEventRequest *in =
      (const Events__Customer__V1__CreateEventRequest *)req;
  if (rpc_failed(c)) return NULL;
  char id[ID_LEN + 1];
  long long now = ids_now_us();
  Google__Protobuf__Timestamp ts = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts_set(&ts, now);
  Event ev = *in->event;
  ev.event_id = id;
  ev.created_at = &ts;
  ev.state = 1;
  ev.n_property_records = in->n_property_records;
  PropertyRecord *recs = calloc(in->n_property_records + 1, sizeof *recs);
  PropertyRecord **ptrs = calloc(in->n_property_records + 1, sizeof *ptrs);
  char(*rec_ids)[ID_LEN + 1] = calloc(in->n_property_records + 1, sizeof *rec_ids);
  json_t *doc = NULL;
  if (!recs || !ptrs || !rec_ids || ids_hex_ordered(id, ID_LEN) < 0) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of resources");
    goto free_records;
  }
  for (size_t i = 0; i < in->n_property_records; i++) {
    recs[i] = *in->property_records[i];
    ids_hex(rec_ids[i], ID_LEN);
    recs[i].property_record_id = rec_ids[i];
    recs[i].last_change = &ts;
    ptrs[i] = &recs[i];
  }
  ev.property_records = ptrs;
  if (!(doc = doc_encode(&ev.base, json_string(id))))
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
free_records:
  free(recs);
  free(ptrs);
  free(rec_ids);
  return doc;
}

/* The triple is a unique index: a repeat is the documented conflict. */
static void write_failed(rpc_call *c, const store_err *err, const void *ctx) {
  (void)ctx;
  if (err->code == STORE_EDUPLICATE)
    rpc_conflict(c, "event.external_id", "relation_already_exists",
                 "an event with this event_type_id, customer_id and external_id exists");
  else
    rpc_fail_store_as(c, err, "event");
}

static ProtobufCMessage *stored_event(rpc_call *c, json_t *doc, const void *ctx) {
  (void)ctx;
  return doc_decode(c, doc, &events__customer__v1__event__descriptor);
}

static const rpc_create_ops create_ops = {
    .what = "event",
    .coll = COLL,
    .build = build_event,
    .write_failed = write_failed,
    .result = stored_event,
};

static void create_event(Events__Customer__V1__CustomerEventService_Service *svc,
                         const Events__Customer__V1__CreateEventRequest *in,
                         Events__Customer__V1__CreateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  json_t *doc = rpc_create_one(c, &in->base, &create_ops);
  if (!doc) {
    done(NULL, c);
    return;
  }
  Events__Customer__V1__CreateEventResponse out = EVENTS__CUSTOMER__V1__CREATE_EVENT_RESPONSE__INIT;
  out.event_id = (char *)json_string_value(json_object_get(doc, "id"));
  done(&out, c);
  json_decref(doc);
}

static void batch_create_events(Events__Customer__V1__CustomerEventService_Service *svc,
                                const Events__Customer__V1__BatchCreateEventsRequest *in,
                                Events__Customer__V1__BatchCreateEventsResponse_Closure done,
                                void *call) {
  (void)svc;
  rpc_batch_create(call, &in->base, &create_ops, (ProtobufCClosure)done);
}

/* Loads one event of the tenant; NULL with the call failed otherwise. */
static Event *load_event(rpc_call *c, const char *event_id) {
  if (!check_id(c, "event_id", event_id)) return NULL;
  json_t *id = json_string(event_id);
  Event *ev =
      (Event *)doc_load(c, COLL, id, &events__customer__v1__event__descriptor, NULL, "event");
  json_decref(id);
  return ev;
}

static void drop_records(Event *ev) {
  for (size_t i = 0; i < ev->n_property_records; i++)
    protobuf_c_message_free_unpacked(&ev->property_records[i]->base, NULL);
  free(ev->property_records);
  ev->property_records = NULL;
  ev->n_property_records = 0;
}

static void get_event(Events__Customer__V1__CustomerEventService_Service *svc,
                      const Events__Customer__V1__GetEventRequest *in,
                      Events__Customer__V1__GetEventResponse_Closure done, void *call) {
  (void)svc;
  Event *ev = load_event(call, in->event_id);
  if (!ev) {
    done(NULL, call);
    return;
  }
  if (!in->include_property_records) drop_records(ev);
  rpc_reply((ProtobufCClosure)done, call, &ev->base);
  protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static const char *sort_field(Events__Customer__V1__SortField f) {
  switch (f) {
  case EVENTS__CUSTOMER__V1__SORT_FIELD__SORT_FIELD_EVENT_TYPE_ID:
    return "event_type_id";
  case EVENTS__CUSTOMER__V1__SORT_FIELD__SORT_FIELD_CUSTOMER_ID:
    return "customer_id";
  case EVENTS__CUSTOMER__V1__SORT_FIELD__SORT_FIELD_EXTERNAL_ID:
    return "external_id";
  default:
    return "created_at";
  }
}

/* The list's filters as store conditions, values in vals (the caller
 * frees them); shared by ListEvents and WatchEvents. */
#define MAX_CONDS 5
static size_t list_conds(const Events__Customer__V1__ListEventsRequest *in, store_cond *conds,
                         json_t **vals) {
  size_t n = 0;
  const Google__Protobuf__StringValue *eq[] = {in->event_type_id, in->customer_id, in->external_id};
  static const char *const eq_fields[] = {"event_type_id", "customer_id", "external_id"};
  for (int i = 0; i < 3; i++) {
    if (!eq[i]) continue;
    vals[n] = json_string(eq[i]->value);
    conds[n] = (store_cond){eq_fields[i], STORE_EQ, vals[n]};
    n++;
  }
  if (in->time_from) {
    vals[n] = ts_json(in->time_from);
    conds[n] = (store_cond){"created_at", STORE_GTE, vals[n]};
    n++;
  }
  if (in->time_to) {
    vals[n] = ts_json(in->time_to);
    conds[n] = (store_cond){"created_at", STORE_LTE, vals[n]};
    n++;
  }
  return n;
}

static void list_events(Events__Customer__V1__CustomerEventService_Service *svc,
                        const Events__Customer__V1__ListEventsRequest *in,
                        Events__Customer__V1__ListEventsResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  if (in->offset < 0) rpc_violation(c, "offset", "out_of_range", "offset must not be negative");
  if (rpc_failed(c)) {
    done(NULL, c);
    return;
  }
  store_cond conds[MAX_CONDS];
  json_t *vals[MAX_CONDS] = {0};
  size_t n = list_conds(in, conds, vals);
  char token[RPC_FEED_TOKEN_MAX];
  rpc_feed_list_token(c, token, sizeof token);
  store_order order = {sort_field(in->sort_field),
                       in->sort_direction ==
                           EVENTS__CUSTOMER__V1__SORT_DIRECTION__SORT_DIRECTION_DESC};
  store_query q = {.conds = conds,
                   .n_conds = n,
                   .order = &order,
                   .n_order = 1,
                   .limit = rpc_page_size(c, in->page_size),
                   .offset = (size_t)in->offset,
                   .count = 1};
  store_page page = {0};
  store_err err;
  Events__Customer__V1__ListEventsResponse out = EVENTS__CUSTOMER__V1__LIST_EVENTS_RESPONSE__INIT;
  Event **events = NULL;
  size_t n_events = 0;
  if (store_find(rpc_store(c), rpc_tenant(c), COLL, &q, &page, &err) < 0) {
    rpc_fail_store_as(c, &err, "event");
    goto free_values;
  }
  if (doc_decode_all(c, page.docs, &events__customer__v1__event__descriptor, NULL,
                     (ProtobufCMessage ***)&events, &n_events) < 0)
    goto free_results;
  for (size_t i = 0; !in->include_property_records && i < n_events; i++)
    drop_records(events[i]);
  out.n_events = n_events;
  out.events = events;
  out.total_items = page.total;
  out.resume_token = token;
  done(&out, c);
free_results:
  doc_free_all((ProtobufCMessage **)events, n_events);
  store_page_clear(&page);
free_values:
  for (size_t i = 0; i < n; i++)
    json_decref(vals[i]);
  if (rpc_failed(c)) done(NULL, c);
}

static void list_property_records(Events__Customer__V1__CustomerEventService_Service *svc,
                                  const Events__Customer__V1__ListPropertyRecordsRequest *in,
                                  Events__Customer__V1__ListPropertyRecordsResponse_Closure done,
                                  void *call) {
  (void)svc;
  Event *ev = load_event(call, in->event_id);
  if (!ev) {
    done(NULL, call);
    return;
  }
  Events__Customer__V1__ListPropertyRecordsResponse out =
      EVENTS__CUSTOMER__V1__LIST_PROPERTY_RECORDS_RESPONSE__INIT;
  out.n_property_records = ev->n_property_records;
  out.property_records = ev->property_records;
  out.total_items = (int64_t)ev->n_property_records;
  done(&out, call);
  protobuf_c_message_free_unpacked(&ev->base, NULL);
}

static void update_event(Events__Customer__V1__CustomerEventService_Service *svc,
                         const Events__Customer__V1__UpdateEventRequest *in,
                         Events__Customer__V1__UpdateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  const Event *e = in->event;
  if (!e) {
    rpc_violation(c, "event", "required", "event is required");
    done(NULL, c);
    return;
  }
  if (!check_id(c, "event.event_id", e->event_id)) {
    done(NULL, c);
    return;
  }
  json_t *set = json_object();
  size_t n_paths = in->update_mask ? in->update_mask->n_paths : 0;
  for (size_t i = 0; i < n_paths; i++) {
    const char *p = in->update_mask->paths[i];
    const Google__Protobuf__StringValue *v;
    if (strcmp(p, "data") == 0) {
      v = e->data;
    } else if (strcmp(p, "secondary_external_id") == 0) {
      v = e->secondary_external_id;
    } else {
      rpc_violation(c, "update_mask", "not_allowed_value",
                    "%s cannot be updated (data, secondary_external_id)", p);
      continue;
    }
    json_object_set_new(set, p, v ? json_string(v->value) : json_null());
  }
  if (n_paths == 0) rpc_violation(c, "update_mask", "required", "update_mask is required");
  json_t *id = json_string(e->event_id), *doc = NULL;
  store_err err;
  Event *ev = NULL;
  if (!rpc_failed(c)) {
    if (store_patch(rpc_store(c), rpc_tenant(c), COLL, id, set, &doc, &err) < 0)
      rpc_fail_store_as(c, &err, "event");
    else if ((ev = (Event *)doc_decode(c, doc, &events__customer__v1__event__descriptor)))
      drop_records(ev);
  }
  rpc_reply((ProtobufCClosure)done, c, ev ? &ev->base : NULL);
  if (ev) protobuf_c_message_free_unpacked(&ev->base, NULL);
  json_decref(doc);
  json_decref(id);
  json_decref(set);
}

static void delete_event(Events__Customer__V1__CustomerEventService_Service *svc,
                         const Events__Customer__V1__DeleteEventRequest *in,
                         Events__Customer__V1__DeleteEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  if (!check_id(c, "event_id", in->event_id)) {
    done(NULL, c);
    return;
  }
  json_t *id = json_string(in->event_id);
  store_err err;
  if (store_delete(rpc_store(c), rpc_tenant(c), COLL, id, &err) < 0) {
    rpc_fail_store_as(c, &err, "event");
    done(NULL, c);
  } else {
    Events__Customer__V1__DeleteEventResponse out =
        EVENTS__CUSTOMER__V1__DELETE_EVENT_RESPONSE__INIT;
    done(&out, c);
  }
  json_decref(id);
}

/* ---- WatchEvents ---- */

static ProtobufCMessage *watch_decode(rpc_call *c, const char *coll, json_t *doc) {
  (void)coll;
  Event *ev = (Event *)doc_decode(c, doc, &events__customer__v1__event__descriptor);
  if (ev) drop_records(ev); /* as a list without include_property_records */
  return ev ? &ev->base : NULL;
}

static void watch_events(Events__Customer__V1__CustomerEventService_Service *svc,
                         const Events__Customer__V1__WatchEventsRequest *in,
                         Events__Customer__V1__WatchEventsResponse_Closure done, void *call) {
  (void)svc;
  (void)done; /* a stream: rpc_feed answers */
  rpc_call *c = call;
  static const Events__Customer__V1__ListEventsRequest none =
      EVENTS__CUSTOMER__V1__LIST_EVENTS_REQUEST__INIT;
  store_cond conds[MAX_CONDS];
  json_t *vals[MAX_CONDS] = {0};
  size_t n = list_conds(in->filter ? in->filter : &none, conds, vals);
  rpc_feed_filter *f = rpc_feed_filter_new();
  if (f && rpc_feed_filter_add(f, COLL, conds, n, NULL) < 0) {
    rpc_feed_filter_free(f);
    f = NULL;
  }
  rpc_feed_open(c, f, watch_decode, in->resume_token);
  for (size_t i = 0; i < n; i++)
    json_decref(vals[i]);
}

static Events__Customer__V1__CustomerEventService_Service service = {
    .base = EVENTS__CUSTOMER__V1__CUSTOMER_EVENT_SERVICE__BASE_INIT,
    .create_event = create_event,
    .get_event = get_event,
    .list_events = list_events,
    .list_property_records = list_property_records,
    .update_event = update_event,
    .delete_event = delete_event,
    .batch_create_events = batch_create_events,
    .watch_events = watch_events,
};

const dialect customer_dialect = {
    .service = {&events__customer__v1__customer_event_service__descriptor, &service.base, 0},
    .collections = collections,
    .n_collections = sizeof collections / sizeof *collections,
};
