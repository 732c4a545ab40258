/* activity.c - activity events (seed 000): application events with integer
 * ids increasing per tenant, links to other records by id, and facts about
 * the HTTP request that created them (filled by the gateway).
 *
 * The payload is stored as JSON text: it is opaque (never queried) and
 * MongoDB refuses member names with dots or a leading '$', which a free-form
 * object may well have. Everything else is the mapper's stored form. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "dialects.h"
#include "docs.h"
#include "events/activity/v1/activity.pb-c.h"
#include "ids.h"
#include "rpc_batch.h"
#include "rpc_feed.h"

#define COLL "activity_events"
#define SEQUENCE "activity_events"
#define MAX_VALUES 1000 /* members of one filter list */
#define MAX_PATHS 64    /* update_mask paths */
#define MAX_CONDS 16
#define TS_MIN INT64_C(-62135596800) /* 0001-01-01T00:00:00Z */
#define TS_MAX INT64_C(253402300799) /* 9999-12-31T23:59:59Z */

typedef Events__Activity__V1__Event Event;
typedef Events__Activity__V1__Relationships Relationships;
typedef Events__Activity__V1__ListEventsRequest ListRequest;
typedef Google__Protobuf__Int64Value Int64Value;
typedef Google__Protobuf__StringValue StringValue;
typedef Google__Protobuf__Timestamp Timestamp;

static const store_index indexes[] = {
    {{"created_at", NULL}, 0},
    {{"event_at", NULL}, 0},
    {{"name", NULL}, 0},
    {{"relationships.account", NULL}, 0},
    {{"relationships.call", NULL}, 0},
    {{"relationships.mailing", NULL}, 0},
    {{"relationships.opportunity", NULL}, 0},
    {{"relationships.prospect", NULL}, 0},
    {{"relationships.task", NULL}, 0},
    {{"relationships.user", NULL}, 0},
};
static const store_collection collections[] = {
    {COLL, indexes, sizeof indexes / sizeof *indexes},
};

/* List filters on linked records: request field -> stored path. */
static const struct {
  const char *field, *path;
} rel_filters[] = {
    {"account_ids", "relationships.account"},   {"call_ids", "relationships.call"},
    {"mailing_ids", "relationships.mailing"},   {"opportunity_ids", "relationships.opportunity"},
    {"prospect_ids", "relationships.prospect"}, {"task_ids", "relationships.task"},
    {"user_ids", "relationships.user"},
};

/* ---- field checks ---- */

static int check_name(rpc_call *c, const char *field, const StringValue *v) {
  return check_required(c, field, v ? v->value : NULL);
}

static int check_time(rpc_call *c, const char *field, const Timestamp *t) {
  if (!t ||
      (t->seconds >= TS_MIN && t->seconds <= TS_MAX && t->nanos >= 0 && t->nanos <= 999999999))
    return 1;
  rpc_violation(c, field, "out_of_range", "%s must be a time in the years 0001..9999", field);
  return 0;
}

static int check_id(rpc_call *c, const char *field, int64_t id) {
  if (id > 0) return 1;
  rpc_violation(c, field, "out_of_range", "%s must be a positive integer", field);
  return 0;
}

/* Linked records live elsewhere; their ids are integers from 0 (the seed's
 * samples link id 0). Relationship ids in requests carry that as a declared
 * rule; the list filters' id lists are checked here. */
static int check_link(rpc_call *c, const char *field, int64_t id) {
  if (id >= 0) return 1;
  rpc_violation(c, field, "out_of_range", "%s must not be negative", field);
  return 0;
}

/* The wrapper of one relationship, by its field in Relationships. */
static Int64Value **rel_slot(Relationships *r, const ProtobufCFieldDescriptor *f) {
  return (Int64Value **)((char *)r + f->offset);
}

/* Whether the member `name` of an Event message is set (message fields). */
static int event_has(const Event *e, const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(
      &events__activity__v1__event__descriptor, name);
  const void *p;
  memcpy(&p, (const char *)e + f->offset, sizeof p);
  return p != NULL;
}

/* Required and read-only members were checked by their declared behaviour
 * (rpc_behavior.c). */
static void validate_create(rpc_call *c, const Event *e) {
  check_time(c, "event.event_at", e->event_at);
}

/* ---- stored documents ---- */

/* The stored form of an event: the payload as JSON text (see the top). */
static json_t *event_doc(const Event *e) {
  json_t *doc = doc_encode(&e->base, json_integer(e->id));
  json_t *payload = doc ? json_object_get(doc, "payload") : NULL;
  if (payload) {
    char *text = json_dumps(payload, JSON_COMPACT | JSON_ENCODE_ANY);
    if (!text || json_object_set_new(doc, "payload", json_string(text)) != 0) {
      json_decref(doc);
      doc = NULL;
    }
    free(text);
  }
  return doc;
}

/* An event from its stored document (which may be modified); NULL with
 * the call failed INTERNAL when the document is unreadable. */
static Event *event_from_doc(rpc_call *c, json_t *doc) {
  json_t *payload = json_object_get(doc, "payload");
  if (json_is_string(payload)) {
    json_t *obj = json_loads(json_string_value(payload), 0, NULL);
    if (!json_is_object(obj)) {
      json_decref(obj);
      rpc_fail(c, GRPC_STATUS_INTERNAL, "stored payload unreadable");
      return NULL;
    }
    json_object_set_new(doc, "payload", obj);
  }
  return (Event *)doc_decode(c, doc, &events__activity__v1__event__descriptor);
}

static void free_event(Event *e) {
  if (e) protobuf_c_message_free_unpacked(&e->base, NULL);
}

/* Data connections are shown only when asked for. */
static void drop_connections(Event *e) {
  for (size_t i = 0; i < e->n_data_connections; i++)
    protobuf_c_message_free_unpacked(&e->data_connections[i]->base, NULL);
  free(e->data_connections);
  e->data_connections = NULL;
  e->n_data_connections = 0;
}

static ProtobufCMessage *decode_event(rpc_call *c, json_t *doc) {
  Event *e = event_from_doc(c, doc);
  return e ? &e->base : NULL;
}

static Event *load_event(rpc_call *c, int64_t id) {
  json_t *key = json_integer(id);
  Event *e = (Event *)doc_load(c, COLL, key, NULL, decode_event, "event");
  json_decref(key);
  return e;
}

/* ---- CreateEvent ---- */

/* One create request as the document to store; its id comes from the
 * sequence (rpc_batch.h). */
static json_t *build_event(rpc_call *c, const ProtobufCMessage *req, const void *ctx) {
  (void)ctx;
  const Events__Activity__V1__CreateEventRequest *in =
      (const Events__Activity__V1__CreateEventRequest *)req;
  const Events__Activity__V1__RequestInfo *ri = in->request_info;
  if (in->event) validate_create(c, in->event);
  if (rpc_failed(c)) return NULL;
  Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  ts_set(&now, ids_now_us());
  Event ev = *in->event; /* shallow: borrows the request's members */
  ev.created_at = &now;
  if (!ev.event_at) ev.event_at = &now;
  if (ri) {
    ev.request_host = ri->host;
    ev.request_device = ri->device;
    ev.request_proxied = ri->proxied;
    ev.request_city = ri->city;
    ev.request_region = ri->region;
  }
  json_t *doc = event_doc(&ev);
  if (!doc) rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  return doc;
}

/* The stored form, so create and get show the same times. */
static ProtobufCMessage *stored_event(rpc_call *c, json_t *doc, const void *ctx) {
  (void)ctx;
  Event *out = event_from_doc(c, doc);
  if (out) drop_connections(out);
  return out ? &out->base : NULL;
}

static const rpc_create_ops create_ops = {
    .what = "event",
    .coll = COLL,
    .sequence = SEQUENCE,
    .build = build_event,
    .result = stored_event,
};

static void create_event(Events__Activity__V1__ActivityEventService_Service *svc,
                         const Events__Activity__V1__CreateEventRequest *in,
                         Events__Activity__V1__CreateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  json_t *doc = rpc_create_one(c, &in->base, &create_ops);
  ProtobufCMessage *out = doc ? stored_event(c, doc, NULL) : NULL;
  rpc_reply((ProtobufCClosure)done, c, out);
  if (out) protobuf_c_message_free_unpacked(out, NULL);
  json_decref(doc);
}

static void batch_create_events(Events__Activity__V1__ActivityEventService_Service *svc,
                                const Events__Activity__V1__BatchCreateEventsRequest *in,
                                Events__Activity__V1__BatchCreateEventsResponse_Closure done,
                                void *call) {
  (void)svc;
  rpc_batch_create(call, &in->base, &create_ops, (ProtobufCClosure)done);
}

/* ---- GetEvent / DeleteEvent ---- */

static void get_event(Events__Activity__V1__ActivityEventService_Service *svc,
                      const Events__Activity__V1__GetEventRequest *in,
                      Events__Activity__V1__GetEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  /* The id's range is declared (rpc_validate). */
  Event *e = rpc_failed(c) ? NULL : load_event(c, in->id);
  if (e && !in->provide_data_connections) drop_connections(e);
  rpc_reply((ProtobufCClosure)done, c, e ? &e->base : NULL);
  free_event(e);
}

static void delete_event(Events__Activity__V1__ActivityEventService_Service *svc,
                         const Events__Activity__V1__DeleteEventRequest *in,
                         Events__Activity__V1__DeleteEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  if (rpc_failed(c)) { /* the id's range is declared (rpc_validate) */
    done(NULL, c);
    return;
  }
  json_t *key = json_integer(in->id);
  store_err err;
  if (store_delete(rpc_store(c), rpc_tenant(c), COLL, key, &err) < 0) {
    if (err.code == STORE_ENOTFOUND)
      rpc_fail(c, GRPC_STATUS_NOT_FOUND, "event %lld not found", (long long)in->id);
    else
      rpc_fail_store_as(c, &err, "event");
    done(NULL, c);
  } else {
    Events__Activity__V1__DeleteEventResponse out =
        EVENTS__ACTIVITY__V1__DELETE_EVENT_RESPONSE__INIT;
    done(&out, c);
  }
  json_decref(key);
}

/* ---- ListEvents ---- */

/* The conditions of one find and the values they own. */
typedef struct conds {
  store_cond c[MAX_CONDS];
  size_t n;
} conds;

static void conds_add(conds *q, const char *field, store_op op, json_t *value) {
  if (!value || q->n >= MAX_CONDS) { /* the bound holds by construction */
    json_decref(value);
    return;
  }
  q->c[q->n++] = (store_cond){field, op, value};
}

static void conds_clear(conds *q) {
  for (size_t i = 0; i < q->n; i++)
    json_decref(q->c[i].value);
  q->n = 0;
}

/* `values` (one: EQ, more: IN) or the range [gte, lte]; never both, since
 * the store ANDs conditions and "either" would need an OR. */
static int check_filter(rpc_call *c, const char *field, size_t n_values, int has_range) {
  if (n_values && has_range) {
    rpc_violation(c, field, "not_allowed_value", "%s: give values or a range, not both", field);
    return 0;
  }
  if (n_values > MAX_VALUES) {
    rpc_violation(c, field, "out_of_range", "%s: at most %d values", field, MAX_VALUES);
    return 0;
  }
  return 1;
}

static void add_values(conds *q, const char *path, json_t *values) {
  if (json_array_size(values) == 1) {
    conds_add(q, path, STORE_EQ, json_incref(json_array_get(values, 0)));
    json_decref(values);
  } else {
    conds_add(q, path, STORE_IN, values);
  }
}

static void filter_string(rpc_call *c, conds *q, const char *path,
                          const Events__Activity__V1__StringFilter *f) {
  if (!f || !check_filter(c, path, f->n_values, f->gte || f->lte)) return;
  if (f->n_values) {
    json_t *vals = json_array();
    for (size_t i = 0; i < f->n_values; i++)
      json_array_append_new(vals, json_string(f->values[i]));
    add_values(q, path, vals);
  }
  if (f->gte) conds_add(q, path, STORE_GTE, json_string(f->gte->value));
  if (f->lte) conds_add(q, path, STORE_LTE, json_string(f->lte->value));
}

static void filter_int(rpc_call *c, conds *q, const char *path,
                       const Events__Activity__V1__Int64Filter *f) {
  if (!f || !check_filter(c, path, f->n_values, f->gte || f->lte)) return;
  if (f->n_values) {
    json_t *vals = json_array();
    for (size_t i = 0; i < f->n_values; i++)
      json_array_append_new(vals, json_integer(f->values[i]));
    add_values(q, path, vals);
  }
  if (f->gte) conds_add(q, path, STORE_GTE, json_integer(f->gte->value));
  if (f->lte) conds_add(q, path, STORE_LTE, json_integer(f->lte->value));
}

static void filter_time(rpc_call *c, conds *q, const char *path,
                        const Events__Activity__V1__TimeFilter *f) {
  if (!f || !check_filter(c, path, f->n_values, f->gte || f->lte)) return;
  int ok = check_time(c, path, f->gte) && check_time(c, path, f->lte);
  for (size_t i = 0; ok && i < f->n_values; i++)
    ok = check_time(c, path, f->values[i]);
  if (!ok) return;
  if (f->n_values) {
    json_t *vals = json_array();
    for (size_t i = 0; i < f->n_values; i++)
      json_array_append_new(vals, ts_json(f->values[i]));
    add_values(q, path, vals);
  }
  if (f->gte) conds_add(q, path, STORE_GTE, ts_json(f->gte));
  if (f->lte) conds_add(q, path, STORE_LTE, ts_json(f->lte));
}

static void filter_rels(rpc_call *c, conds *q, const ListRequest *in) {
  for (size_t i = 0; i < sizeof rel_filters / sizeof *rel_filters; i++) {
    const ProtobufCFieldDescriptor *f =
        protobuf_c_message_descriptor_get_field_by_name(in->base.descriptor, rel_filters[i].field);
    size_t n;
    const int64_t *ids;
    memcpy(&n, (const char *)in + f->quantifier_offset, sizeof n);
    memcpy(&ids, (const char *)in + f->offset, sizeof ids);
    if (!n || !check_filter(c, rel_filters[i].field, n, 0)) continue;
    json_t *vals = json_array();
    for (size_t j = 0; j < n; j++) {
      char field[64];
      snprintf(field, sizeof field, "%s[%zu]", rel_filters[i].field, j);
      if (check_link(c, field, ids[j])) json_array_append_new(vals, json_integer(ids[j]));
    }
    add_values(q, rel_filters[i].path, vals);
  }
}

static const char *sort_path(Events__Activity__V1__SortField f) {
  switch (f) {
  case EVENTS__ACTIVITY__V1__SORT_FIELD__SORT_FIELD_ID:
    return "id";
  case EVENTS__ACTIVITY__V1__SORT_FIELD__SORT_FIELD_CREATED_AT:
    return "created_at";
  case EVENTS__ACTIVITY__V1__SORT_FIELD__SORT_FIELD_EVENT_AT:
    return "event_at";
  default:
    return NULL;
  }
}

/* The requested order (default: id ascending); returns the number of keys. */
static size_t list_order(rpc_call *c, const ListRequest *in, store_order *order) {
  size_t n = 0;
  if (in->n_order_by > 3) {
    rpc_violation(c, "order_by", "out_of_range",
                  "order_by: at most 3 keys (id, created_at, event_at)");
    return 0;
  }
  for (size_t i = 0; i < in->n_order_by; i++) {
    char field[48];
    const char *path = sort_path(in->order_by[i]->field);
    snprintf(field, sizeof field, "order_by[%zu].field", i);
    if (!path) {
      rpc_violation(c, field, "not_allowed_value", "%s must be id, created_at or event_at", field);
      continue;
    }
    for (size_t j = 0; j < n; j++)
      if (strcmp(order[j].field, path) == 0)
        rpc_violation(c, field, "not_allowed_value", "%s: %s is given twice", field, path);
    order[n++] = (store_order){path, in->order_by[i]->descending};
  }
  if (n == 0) order[n++] = (store_order){"id", 0};
  return n;
}

/* The list's filters as conditions; shared by ListEvents and WatchEvents. */
static void list_filters(rpc_call *c, conds *q, const ListRequest *in) {
  filter_string(c, q, "name", in->name);
  filter_int(c, q, "id", in->id);
  filter_time(c, q, "created_at", in->created_at);
  filter_time(c, q, "event_at", in->event_at);
  filter_rels(c, q, in);
}

static void list_events(Events__Activity__V1__ActivityEventService_Service *svc,
                        const Events__Activity__V1__ListEventsRequest *in,
                        Events__Activity__V1__ListEventsResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  conds q = {.n = 0};
  store_order order[4];
  if (in->page_token[0] && in->before_page_token[0])
    rpc_violation(c, "before_page_token", "not_allowed_value",
                  "page_token and before_page_token exclude each other");
  list_filters(c, &q, in);
  size_t n_order = list_order(c, in, order);
  char token[RPC_FEED_TOKEN_MAX];
  rpc_feed_list_token(c, token, sizeof token);
  if (rpc_failed(c)) {
    conds_clear(&q);
    done(NULL, c);
    return;
  }
  store_query sq = {.conds = q.c,
                    .n_conds = q.n,
                    .order = order,
                    .n_order = n_order,
                    .limit = rpc_page_size(c, in->page_size),
                    .after = in->page_token[0] ? in->page_token : NULL,
                    .before = in->before_page_token[0] ? in->before_page_token : NULL,
                    .count = in->include_count};
  store_page page = {0};
  store_err err;
  Event **events = NULL;
  size_t n_events = 0;
  if (store_find(rpc_store(c), rpc_tenant(c), COLL, &sq, &page, &err) < 0) {
    /* A cursor the store cannot read is the caller's input, so name it. */
    if (err.code == STORE_EINVAL && (sq.after || sq.before))
      rpc_violation(c, sq.after ? "page_token" : "before_page_token", "invalid_value_format",
                    "%s is not a cursor of this listing and order",
                    sq.after ? "page_token" : "before_page_token");
    else
      rpc_fail_store_as(c, &err, "event");
    goto free_conds;
  }
  if (doc_decode_all(c, page.docs, NULL, decode_event, (ProtobufCMessage ***)&events, &n_events) <
      0)
    goto free_results;
  for (size_t i = 0; !in->provide_data_connections && i < n_events; i++)
    drop_connections(events[i]);
  Events__Activity__V1__ListEventsResponse out = EVENTS__ACTIVITY__V1__LIST_EVENTS_RESPONSE__INIT;
  Int64Value total = GOOGLE__PROTOBUF__INT64_VALUE__INIT;
  out.n_events = n_events;
  out.events = events;
  if (page.next) out.next_page_token = page.next;
  if (page.prev) out.prev_page_token = page.prev;
  if (in->include_count) {
    total.value = page.total;
    out.total_count = &total;
  }
  out.resume_token = token;
  done(&out, c);
free_results:
  doc_free_all((ProtobufCMessage **)events, n_events);
  store_page_clear(&page);
free_conds:
  conds_clear(&q);
  if (rpc_failed(c)) done(NULL, c);
}

/* ---- UpdateEvent ---- */

/* The paths an empty update_mask stands for: every set field. */
static size_t implied_paths(const Event *e, const char **paths, char bufs[][48]) {
  static const char *const members[] = {
      "name",          "body",         "external_url",   "event_at",     "payload",
      "created_at",    "request_city", "request_device", "request_host", "request_proxied",
      "request_region"};
  const ProtobufCMessageDescriptor *rd = &events__activity__v1__relationships__descriptor;
  size_t n = 0;
  for (size_t i = 0; i < sizeof members / sizeof *members; i++)
    if (event_has(e, members[i])) paths[n++] = members[i];
  for (unsigned i = 0; e->relationships && i < rd->n_fields; i++) {
    if (!*rel_slot(e->relationships, &rd->fields[i])) continue;
    snprintf(bufs[i], sizeof bufs[i], "relationships.%s", rd->fields[i].name);
    paths[n++] = bufs[i];
  }
  if (e->n_data_connections) paths[n++] = "data_connections";
  return n;
}

/* Sets relationships.<name> in the patch from the request's wrapper. */
static void patch_relationship(const Event *e, const ProtobufCFieldDescriptor *f, json_t *set) {
  char key[64];
  const Int64Value *v = e->relationships ? *rel_slot(e->relationships, f) : NULL;
  snprintf(key, sizeof key, "relationships.%s", f->name);
  json_object_set_new(set, key, v ? json_integer(v->value) : json_null());
}

static int same_member(json_t *a, json_t *b, const char *key) {
  json_t *x = json_object_get(a, key), *y = json_object_get(b, key);
  if (!x || json_is_null(x)) return !y || json_is_null(y);
  return y && json_equal(x, y);
}

/* One update_mask path: adds to `set`, or records why it cannot be. `want`
 * and `have` are the stored forms of the request's and the current event. */
static void patch_path(rpc_call *c, const Event *e, const char *p, json_t *want, json_t *have,
                       json_t *set) {
  const ProtobufCMessageDescriptor *rd = &events__activity__v1__relationships__descriptor;
  char field[96];
  snprintf(field, sizeof field, "event.%s", p);
  if (strcmp(p, "name") == 0) {
    if (check_name(c, field, e->name)) json_object_set_new(set, p, json_string(e->name->value));
  } else if (strcmp(p, "body") == 0 || strcmp(p, "external_url") == 0) {
    json_t *v = json_object_get(want, p);
    json_object_set(set, p, v ? v : json_null());
  } else if (strcmp(p, "event_at") == 0) {
    if (!e->event_at)
      rpc_violation(c, field, "required", "%s cannot be cleared", field);
    else if (check_time(c, field, e->event_at))
      json_object_set_new(set, p, ts_json(e->event_at));
  } else if (strcmp(p, "relationships") == 0) {
    for (unsigned i = 0; i < rd->n_fields; i++)
      patch_relationship(e, &rd->fields[i], set);
  } else if (strncmp(p, "relationships.", 14) == 0 &&
             protobuf_c_message_descriptor_get_field_by_name(rd, p + 14)) {
    patch_relationship(e, protobuf_c_message_descriptor_get_field_by_name(rd, p + 14), set);
  } else if (strcmp(p, "payload") == 0) {
    /* Sending the value it already has is not a change (a GET body sent back). */
    if (!same_member(want, have, p))
      rpc_violation(c, field, "not_allowed_value", "payload cannot be changed once created");
  } else if (strcmp(p, "created_at") == 0 || strncmp(p, "request_", 8) == 0) {
    if (!protobuf_c_message_descriptor_get_field_by_name(&events__activity__v1__event__descriptor,
                                                         p))
      rpc_violation(c, "update_mask", "not_allowed_value", "unknown path %s", p);
    else if (!same_member(want, have, p))
      rpc_violation(c, field, "not_allowed_value", "%s is read-only", field);
  } else if (strcmp(p, "id") == 0 || strcmp(p, "data_connections") == 0) {
    rpc_violation(c, field, "not_allowed_value", "%s is read-only", field);
  } else {
    rpc_violation(c, "update_mask", "not_allowed_value", "unknown path %s", p);
  }
}

static void update_event(Events__Activity__V1__ActivityEventService_Service *svc,
                         const Events__Activity__V1__UpdateEventRequest *in,
                         Events__Activity__V1__UpdateEventResponse_Closure done, void *call) {
  (void)svc;
  rpc_call *c = call;
  const Event *e = in->event;
  const char *implied[32];
  char bufs[16][48];
  const char *const *paths = implied;
  size_t n_paths = 0;
  if (!e)
    rpc_violation(c, "event", "required", "event is required");
  else
    check_id(c, "event.id", e->id);
  if (in->update_mask && in->update_mask->n_paths > MAX_PATHS)
    rpc_violation(c, "update_mask", "out_of_range", "update_mask: at most %d paths", MAX_PATHS);
  Event *cur = rpc_failed(c) ? NULL : load_event(c, e->id);
  if (!cur) {
    done(NULL, c);
    return;
  }
  if (in->update_mask && in->update_mask->n_paths) {
    paths = (const char *const *)in->update_mask->paths;
    n_paths = in->update_mask->n_paths;
  } else {
    n_paths = implied_paths(e, implied, bufs);
  }
  /* Both in the mapper's stored form (payload an object), to compare. */
  json_t *want = doc_encode(&e->base, NULL), *have = doc_encode(&cur->base, NULL);
  json_t *set = json_object(), *key = json_integer(e->id), *doc = NULL;
  Event *out = NULL;
  store_err err;
  for (size_t i = 0; i < n_paths; i++)
    patch_path(c, e, paths[i], want, have, set);
  if (rpc_failed(c)) goto free_json;
  if (store_patch(rpc_store(c), rpc_tenant(c), COLL, key, set, &doc, &err) < 0) {
    if (err.code == STORE_ENOTFOUND)
      rpc_fail(c, GRPC_STATUS_NOT_FOUND, "event %lld not found", (long long)e->id);
    else
      rpc_fail_store_as(c, &err, "event");
  } else if ((out = event_from_doc(c, doc))) {
    drop_connections(out);
    rpc_reply((ProtobufCClosure)done, c, &out->base);
  }
free_json:
  if (rpc_failed(c)) done(NULL, c);
  free_event(out);
  free_event(cur);
  json_decref(doc);
  json_decref(key);
  json_decref(set);
  json_decref(want);
  json_decref(have);
}

/* ---- WatchEvents ---- */

static ProtobufCMessage *watch_decode(rpc_call *c, const char *coll, json_t *doc) {
  (void)coll;
  Event *e = event_from_doc(c, doc);
  if (e) drop_connections(e); /* as a list without provide_data_connections */
  return e ? &e->base : NULL;
}

static void watch_events(Events__Activity__V1__ActivityEventService_Service *svc,
                         const Events__Activity__V1__WatchEventsRequest *in,
                         Events__Activity__V1__WatchEventsResponse_Closure done, void *call) {
  (void)svc;
  (void)done; /* a stream: rpc_feed answers */
  rpc_call *c = call;
  static const ListRequest none = EVENTS__ACTIVITY__V1__LIST_EVENTS_REQUEST__INIT;
  conds q = {.n = 0};
  list_filters(c, &q, in->filter ? in->filter : &none);
  if (!rpc_failed(c)) {
    rpc_feed_filter *f = rpc_feed_filter_new();
    if (f && rpc_feed_filter_add(f, COLL, q.c, q.n, NULL) < 0) {
      rpc_feed_filter_free(f);
      f = NULL;
    }
    rpc_feed_open(c, f, watch_decode, in->resume_token);
  }
  conds_clear(&q);
}

static Events__Activity__V1__ActivityEventService_Service service = {
    .base = EVENTS__ACTIVITY__V1__ACTIVITY_EVENT_SERVICE__BASE_INIT,
    .create_event = create_event,
    .get_event = get_event,
    .list_events = list_events,
    .update_event = update_event,
    .delete_event = delete_event,
    .batch_create_events = batch_create_events,
    .watch_events = watch_events,
};

const dialect activity_dialect = {
    .service = {&events__activity__v1__activity_event_service__descriptor, &service.base, 0},
    .collections = collections,
    .n_collections = sizeof collections / sizeof *collections,
};
