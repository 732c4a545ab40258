/* catalog.c - catalog events (seed 002): a tracking plan of event categories,
 * events and event properties, each kind the parent of the next. The kinds
 * share one message and one set of handlers, parametrised by a row of
 * `kinds`; the fifteen service methods are one-line wrappers around them.
 *
 * Each stored document also keeps the ids of all its ancestors under their
 * kinds' `ref` member (an event property has "category_id" and "event_id"),
 * so deleting a resource deletes every descendant with one
 * store_delete_where per level, after the resource itself (see
 * delete_resource and parent_still_there). Ids given by clients (parent,
 * integration, teams...) are UUIDs, accepted with or without dashes in
 * either case and kept as 32 lowercase hex digits, the form of the API's own
 * ids, so that filters match whichever form a client sends. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "dialects.h"
#include "catalog.h"
#include "docs.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "ids.h"
#include "rpc_batch.h"

#define NOT_FOUND_MSG "Not found."

typedef Events__Catalog__V1__EventCatalogService_Service Service;

const kind catalog_kinds[N_KINDS] = {
    [CATEGORY] = {EVENTS__CATALOG__V1__ENTITY_TYPE__ENTITY_TYPE_EVENT_CATEGORY, "event category",
                  COLL_CATEGORIES, NULL, "category_id", "event_category_id"},
    [EVENT] = {EVENTS__CATALOG__V1__ENTITY_TYPE__ENTITY_TYPE_EVENT, "event", COLL_EVENTS,
               &catalog_kinds[CATEGORY], "event_id", "event_id"},
    [PROPERTY] = {EVENTS__CATALOG__V1__ENTITY_TYPE__ENTITY_TYPE_EVENT_PROPERTY, "event property",
                  COLL_PROPERTIES, &catalog_kinds[EVENT], NULL, "event_property_id"},
};

/* Lists are ordered by (created_at, id); filters lead with their field. */
static const store_index indexes[] = {
    {{"created_at", NULL}, 0},
    {{"parent", "created_at", NULL}, 0},
    {{"integration", "created_at", NULL}, 0},
    {{"title", "created_at", NULL}, 0},
    {{"category_id", NULL}, 0},
    {{"event_id", NULL}, 0},
};
#define N_INDEXES (sizeof indexes / sizeof *indexes)
static const store_collection collections[] = {
    {COLL_CATEGORIES, indexes, N_INDEXES},
    {COLL_EVENTS, indexes, N_INDEXES},
    {COLL_PROPERTIES, indexes, N_INDEXES},
};

/* ---- validation ---- */

/* A UUID as 32 hex digits or in the dashed 8-4-4-4-12 form, either case,
 * written to out as 32 lowercase hex digits. */
int catalog_norm_uuid(const char *s, char out[ID_LEN + 1]) {
  size_t len = strlen(s), n = 0;
  if (len != 32 && len != 36) return 0;
  for (size_t i = 0; i < len; i++) {
    char ch = s[i];
    if (len == 36 && (i == 8 || i == 13 || i == 18 || i == 23)) {
      if (ch != '-') return 0;
      continue;
    }
    if (ch >= 'A' && ch <= 'F')
      ch = (char)(ch - 'A' + 'a');
    else if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
      return 0;
    out[n++] = ch;
  }
  out[n] = '\0';
  return 1;
}

static int blank(const char *s) {
  for (; *s; s++)
    if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r') return 0;
  return 1;
}

/* The id's format is its declared rule's (rpc_validate), which passes over
 * an empty string: here that is no id at all. */
static int check_id(rpc_call *c, const char *field, const char *id) {
  if (!id || !*id)
    rpc_violation(c, field, "invalid_value_format", "%s must be %d lowercase hex characters", field,
                  ID_LEN);
  return !rpc_failed(c);
}

/* Rewrites the UUID in string v as 32 lowercase hex digits, the form of the
 * API's own ids, so that filters match whichever form a client sent (its
 * syntax was checked by rpc_validate). */
static void norm_member(json_t *v) {
  char norm[ID_LEN + 1];
  if (json_is_string(v) && catalog_norm_uuid(json_string_value(v), norm)) json_string_set(v, norm);
}

/* The members holding client-given UUIDs. */
static const char *const uuid_members[] = {"integration", "parent", "teams",      "owners",
                                           "collections", "tags",   "subscribers"};

/* Checks what the declared rules cannot say (a title is not blank) in a
 * document about to be written, and normalises its ids; violations name
 * `prefix` + member. */
static void check_members(rpc_call *c, json_t *doc, const char *prefix) {
  json_t *title = json_object_get(doc, "title");
  if (json_is_string(title) && blank(json_string_value(title))) {
    char field[96];
    snprintf(field, sizeof field, "%stitle", prefix);
    rpc_violation(c, field, "required", "title must not be blank");
  }
  for (size_t i = 0; i < sizeof uuid_members / sizeof *uuid_members; i++) {
    json_t *v = json_object_get(doc, uuid_members[i]);
    if (json_is_array(v))
      for (size_t k = 0; k < json_array_size(v); k++)
        norm_member(json_array_get(v, k));
    else
      norm_member(v);
  }
}

/* ---- store access ---- */

static Resource *decode(rpc_call *c, json_t *doc) {
  return (Resource *)doc_decode(c, doc, &events__catalog__v1__resource__descriptor);
}

static void fail_lookup(rpc_call *c, const store_err *err) {
  if (err->code == STORE_ENOTFOUND)
    rpc_fail(c, GRPC_STATUS_NOT_FOUND, NOT_FOUND_MSG);
  else
    rpc_fail_store(c, err);
}

/* The parent document the new resource names; NULL with a violation when
 * it is not one of the tenant's. */
static json_t *load_parent(rpc_call *c, const kind *k, json_t *doc) {
  json_t *pid = json_object_get(doc, "parent"), *pdoc = NULL;
  store_err err;
  if (store_get(rpc_store(c), rpc_tenant(c), k->parent->coll, pid, &pdoc, &err) == 0) return pdoc;
  if (err.code == STORE_ENOTFOUND)
    rpc_violation(c, "resource.parent", "not_found", "parent %s is not an %s of this workspace",
                  json_string_value(pid), k->parent->name);
  else
    rpc_fail_store_as(c, &err, k->parent->name);
  return NULL;
}

/* After the insert: the parent may have been deleted (by any replica) since
 * load_parent read it. A delete removes the resource first and then sweeps
 * its descendants level by level, so a child inserted after its level's
 * sweep finds its parent gone here, takes itself back out and reports the
 * parent as missing; one inserted before the sweep goes with it. Either way
 * no resource outlives its parent. */
static int parent_still_there(rpc_call *c, const kind *k, json_t *doc) {
  json_t *pid = json_object_get(doc, k->parent->ref), *pdoc = NULL;
  store_err err;
  int rc = store_get(rpc_store(c), rpc_tenant(c), k->parent->coll, pid, &pdoc, &err);
  json_decref(pdoc);
  if (rc == 0) return 1;
  if (err.code != STORE_ENOTFOUND) {
    /* Unknown: keep the child; a retried delete of the parent sweeps it. */
    rpc_fail_store_as(c, &err, k->name);
    return 0;
  }
  if (store_delete(rpc_store(c), rpc_tenant(c), k->coll, json_object_get(doc, "id"), &err) < 0 &&
      err.code != STORE_ENOTFOUND) {
    rpc_fail_store_as(c, &err, k->name);
    return 0;
  }
  rpc_violation(c, "resource.parent", "not_found", "parent %s is not an %s of this workspace",
                json_string_value(pid), k->parent->name);
  return 0;
}

/* The new resource records its ancestors' ids, and takes its parent's
 * integration when it names none. */
static void inherit(const kind *k, json_t *doc, json_t *parent) {
  json_object_set(doc, k->parent->ref, json_object_get(parent, "id"));
  for (const kind *a = k->parent->parent; a; a = a->parent) {
    json_t *v = json_object_get(parent, a->ref);
    if (v) json_object_set(doc, a->ref, v);
  }
  json_t *integration = json_object_get(parent, "integration");
  if (integration && !json_object_get(doc, "integration"))
    json_object_set(doc, "integration", integration);
}

/* `parent` is required below the top level and meaningless at it. */
static void check_parent(rpc_call *c, const kind *k, json_t *doc) {
  json_t *p = json_object_get(doc, "parent");
  if (!k->parent) {
    if (p) rpc_violation(c, "resource.parent", "not_allowed_value", "an %s has no parent", k->name);
    return;
  }
  if (p && json_string_length(p) > 0) return;
  json_object_del(doc, "parent");
  rpc_violation(c, "resource.parent", "required", "parent is required: the id of an %s",
                k->parent->name);
}

/* ---- the handlers, once for every kind ---- */

/* One create request of kind ctx as the document to store (rpc_batch.h):
 * the three kinds' create requests hold just the resource. */
static json_t *build_resource(rpc_call *c, const ProtobufCMessage *req, const void *ctx) {
  const kind *k = ctx;
  const Events__Catalog__V1__CreateEventRequest *in =
      (const Events__Catalog__V1__CreateEventRequest *)req;
  static const Resource empty = EVENTS__CATALOG__V1__RESOURCE__INIT;
  Resource r = in->resource ? *in->resource : empty;
  char id[ID_LEN + 1];
  Google__Protobuf__Timestamp now = GOOGLE__PROTOBUF__TIMESTAMP__INIT;
  json_t *doc = NULL, *parent = NULL;
  if (ids_hex_ordered(id, ID_LEN) < 0) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of resources");
    goto done;
  }
  /* Output-only fields are the service's to set, whatever the client sent. */
  ts_set(&now, ids_now_us());
  r.id = id;
  r.entity_type = k->type;
  r.created_at = r.updated_at = &now;
  doc = doc_encode(&r.base, json_string(id));
  if (!doc) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto done;
  }
  check_parent(c, k, doc);
  check_members(c, doc, "resource.");
  if (rpc_failed(c)) goto done;
  if (k->parent) {
    if (!(parent = load_parent(c, k, doc))) goto done;
    inherit(k, doc, parent);
  }
done:
  json_decref(parent);
  if (rpc_failed(c)) {
    json_decref(doc);
    doc = NULL;
  }
  return doc;
}

static void write_failed(rpc_call *c, const store_err *err, const void *ctx) {
  rpc_fail_store_as(c, err, ((const kind *)ctx)->name);
}

static int still_there(rpc_call *c, json_t *doc, const void *ctx) {
  const kind *k = ctx;
  return !k->parent || parent_still_there(c, k, doc);
}

static ProtobufCMessage *stored_resource(rpc_call *c, json_t *doc, const void *ctx) {
  (void)ctx;
  Resource *r = decode(c, doc);
  return r ? &r->base : NULL;
}

#define CREATE_OPS(K_, COLL_, NAME_)                                                               \
  {                                                                                                \
    .what = NAME_, .coll = COLL_, .build = build_resource, .write_failed = write_failed,           \
    .written = still_there, .result = stored_resource, .ctx = &catalog_kinds[K_]                   \
  }
static const rpc_create_ops create_ops[N_KINDS] = {
    CREATE_OPS(CATEGORY, COLL_CATEGORIES, "event category"),
    CREATE_OPS(EVENT, COLL_EVENTS, "event"),
    CREATE_OPS(PROPERTY, COLL_PROPERTIES, "event property"),
};

static const rpc_create_ops *ops_of(const kind *k) {
  return &create_ops[k - catalog_kinds];
}

static void create_resource(const kind *k, const ProtobufCMessage *req, ProtobufCClosure done,
                            rpc_call *c) {
  json_t *doc = rpc_create_one(c, req, ops_of(k));
  Resource *out = doc ? decode(c, doc) : NULL;
  rpc_reply(done, c, rpc_failed(c) || !out ? NULL : &out->base);
  if (out) protobuf_c_message_free_unpacked(&out->base, NULL);
  json_decref(doc);
}

static void get_resource(const kind *k, const char *id, ProtobufCClosure done, rpc_call *c) {
  json_t *key = NULL, *doc = NULL;
  Resource *out = NULL;
  store_err err;
  if (!check_id(c, k->id_field, id)) goto reply;
  key = json_string(id);
  if (store_get(rpc_store(c), rpc_tenant(c), k->coll, key, &doc, &err) < 0)
    fail_lookup(c, &err);
  else
    out = decode(c, doc);
reply:
  rpc_reply(done, c, rpc_failed(c) || !out ? NULL : &out->base);
  if (out) protobuf_c_message_free_unpacked(&out->base, NULL);
  json_decref(doc);
  json_decref(key);
}

/* A PATCH may change a field that is neither output-only nor immutable
 * (the seed's list, as the proto annotates it). */
static int is_updatable(rpc_call *c, const char *path) {
  const ProtobufCMessageDescriptor *d = &events__catalog__v1__resource__descriptor;
  return protobuf_c_message_descriptor_get_field_by_name(d, path) &&
         !(rpc_field_behavior(c, d, path) & (API_OUTPUT_ONLY | API_IMMUTABLE));
}

/* "description, definition, ...": the updatable fields, for messages. */
static void updatable_list(rpc_call *c, char *buf, size_t len) {
  const ProtobufCMessageDescriptor *d = &events__catalog__v1__resource__descriptor;
  buf[0] = '\0';
  for (unsigned i = 0; i < d->n_fields; i++)
    if (is_updatable(c, d->fields[i].name))
      snprintf(buf + strlen(buf), len - strlen(buf), "%s%s", buf[0] ? ", " : "", d->fields[i].name);
}

/* The stored changes the mask asks for: each path's value, or null (which
 * removes the member) for an unset wrapper. */
static json_t *mask_changes(rpc_call *c, const Resource *r,
                            const Google__Protobuf__FieldMask *mask) {
  json_t *given = doc_encode(&r->base, NULL), *set = json_object();
  size_t n_paths = mask ? mask->n_paths : 0;
  for (size_t i = 0; given && set && i < n_paths; i++) {
    const char *p = mask->paths[i];
    if (!is_updatable(c, p)) {
      char allowed[256];
      updatable_list(c, allowed, sizeof allowed);
      rpc_violation(c, "update_mask", "not_allowed_value",
                    "%s cannot be updated; updatable fields: %s", p, allowed);
      continue;
    }
    json_t *v = json_object_get(given, p);
    json_object_set(set, p, v ? v : json_null());
  }
  if (!given || !set) rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  json_decref(given);
  return set;
}

static void update_resource(const kind *k, const char *id, const Resource *r,
                            const Google__Protobuf__FieldMask *mask, ProtobufCClosure done,
                            rpc_call *c) {
  json_t *key = NULL, *set = NULL, *doc = NULL;
  Resource *out = NULL;
  store_err err;
  if (!r) {
    rpc_violation(c, "resource", "required", "resource is required");
    goto reply;
  }
  if (!check_id(c, k->id_field, id)) goto reply;
  set = mask_changes(c, r, mask);
  if (set) check_members(c, set, "resource.");
  if (rpc_failed(c)) goto reply;
  /* Even an empty mask touches updated_at, as a save does. */
  json_object_set_new(set, "updated_at", json_integer(ids_now_us()));
  key = json_string(id);
  if (store_patch(rpc_store(c), rpc_tenant(c), k->coll, key, set, &doc, &err) < 0)
    fail_lookup(c, &err);
  else
    out = decode(c, doc);
reply:
  rpc_reply(done, c, rpc_failed(c) || !out ? NULL : &out->base);
  if (out) protobuf_c_message_free_unpacked(&out->base, NULL);
  json_decref(doc);
  json_decref(set);
  json_decref(key);
}

static int descends(const kind *m, const kind *k) {
  for (const kind *a = m->parent; a; a = a->parent)
    if (a == k) return 1;
  return 0;
}

static void delete_resource(const kind *k, const char *id, ProtobufCClosure done, rpc_call *c) {
  json_t *key = NULL;
  store_err err;
  if (!check_id(c, k->id_field, id)) goto reply;
  key = json_string(id);
  /* The resource first, then its descendants, shallowest level first: a
   * child created meanwhile (by any replica) either is swept or finds its
   * parent gone (see parent_still_there). A delete that finds the resource
   * gone still sweeps, so repeating a delete that failed part-way finishes
   * it. */
  int missing = 0;
  if (store_delete(rpc_store(c), rpc_tenant(c), k->coll, key, &err) < 0) {
    if (err.code != STORE_ENOTFOUND) {
      rpc_fail_store_as(c, &err, k->name);
      goto reply;
    }
    missing = 1;
  }
  for (int m = 0; m < N_KINDS && !rpc_failed(c); m++) {
    if (!descends(&catalog_kinds[m], k)) continue;
    store_cond cond = {k->ref, STORE_EQ, key};
    long long deleted;
    if (store_delete_where(rpc_store(c), rpc_tenant(c), catalog_kinds[m].coll, &cond, 1, &deleted,
                           &err) < 0)
      rpc_fail_store_as(c, &err, catalog_kinds[m].name);
  }
  if (missing && !rpc_failed(c)) rpc_fail(c, GRPC_STATUS_NOT_FOUND, NOT_FOUND_MSG);
reply:
  rpc_reply_empty(done, c);
  json_decref(key);
}

/* The three kinds' list requests and responses share their fields, not their
 * types: members are reached through the descriptors. */
static void *member(const ProtobufCMessage *m, const char *name) {
  const ProtobufCFieldDescriptor *f =
      protobuf_c_message_descriptor_get_field_by_name(m->descriptor, name);
  return f ? (char *)m + f->offset : NULL;
}

static const Google__Protobuf__StringValue *string_member(const ProtobufCMessage *m,
                                                          const char *name) {
  Google__Protobuf__StringValue **v = member(m, name);
  return v ? *v : NULL;
}

static int32_t int_member(const ProtobufCMessage *m, const char *name) {
  int32_t *v = member(m, name);
  return v ? *v : 0;
}

/* Query conditions from the list filters; an empty filter is no filter. */
static size_t list_conds(const ProtobufCMessage *in, store_cond *conds, json_t **vals) {
  const struct {
    const Google__Protobuf__StringValue *v;
    const char *member;
    int is_id;
  } filters[] = {
      {string_member(in, "title"), "title", 0},
      {string_member(in, "integration_id"), "integration", 1},
      {string_member(in, "parent_id"), "parent", 1},
  };
  size_t n = 0;
  for (size_t i = 0; i < sizeof filters / sizeof *filters; i++) {
    if (!filters[i].v || !*filters[i].v->value) continue;
    json_t *v = json_string(filters[i].v->value);
    if (filters[i].is_id) norm_member(v);
    vals[n] = v;
    conds[n] = (store_cond){filters[i].member, STORE_EQ, v};
    n++;
  }
  return n;
}

static void list_resources(const kind *k, const ProtobufCMessage *in, ProtobufCClosure done,
                           rpc_call *c) {
  store_cond conds[3];
  json_t *vals[3] = {0};
  store_page page = {0};
  store_err err;
  Resource **results = NULL;
  size_t n_results = 0;
  int32_t page_number = int_member(in, "page"), page_size = int_member(in, "page_size");
  size_t n = list_conds(in, conds, vals);
  if (rpc_failed(c)) goto reply;
  size_t size = rpc_page_size(c, page_size);
  size_t number = page_number ? (size_t)page_number : 1;
  store_order order = {"created_at", 0};
  store_query q = {.conds = conds,
                   .n_conds = n,
                   .order = &order,
                   .n_order = 1,
                   .limit = size,
                   .offset = (number - 1) * size,
                   .count = 1};
  if (store_find(rpc_store(c), rpc_tenant(c), k->coll, &q, &page, &err) < 0) {
    rpc_fail_store_as(c, &err, k->name);
    goto reply;
  }
  /* An empty list still has its first page. */
  long long pages = page.total ? (page.total + (long long)size - 1) / (long long)size : 1;
  if ((long long)number > pages) {
    rpc_fail(c, GRPC_STATUS_NOT_FOUND, "Invalid page.");
    goto reply;
  }
  if (doc_decode_all(c, page.docs, &events__catalog__v1__resource__descriptor, NULL,
                     (ProtobufCMessage ***)&results, &n_results) < 0)
    goto reply;
  /* The kind's own response type; its members by name, as the request's. */
  const ProtobufCMessageDescriptor *od = rpc_output(c);
  const ProtobufCFieldDescriptor *rf =
      protobuf_c_message_descriptor_get_field_by_name(od, "results");
  ProtobufCMessage *out = calloc(1, od->sizeof_message);
  if (!out) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto reply;
  }
  protobuf_c_message_init(od, out);
  *(int64_t *)member(out, "count") = page.total;
  *(int32_t *)member(out, "total_pages") = pages > INT32_MAX ? INT32_MAX : (int32_t)pages;
  *(int32_t *)member(out, "page") = (int32_t)number;
  *(size_t *)((char *)out + rf->quantifier_offset) = n_results;
  *(Resource ***)((char *)out + rf->offset) = results;
  done(out, c);
  free(out);
reply:
  if (rpc_failed(c)) done(NULL, c);
  doc_free_all((ProtobufCMessage **)results, n_results);
  store_page_clear(&page);
  for (size_t i = 0; i < 3; i++)
    json_decref(vals[i]);
}

/* ---- the service: each kind's five methods call the handlers above ---- */

#define KIND_METHODS(K_, ONE_, MANY_, T_, TS_)                                                     \
  static void catalog_create_##ONE_(                                                               \
      Service *s, const Events__Catalog__V1__Create##T_##Request *in,                              \
      Events__Catalog__V1__Create##T_##Response_Closure done, void *c) {                           \
    (void)s;                                                                                       \
    create_resource(&catalog_kinds[K_], &in->base, (ProtobufCClosure)done, c);                     \
  }                                                                                                \
  static void catalog_batch_create_##MANY_(                                                        \
      Service *s, const Events__Catalog__V1__BatchCreate##TS_##Request *in,                        \
      Events__Catalog__V1__BatchCreate##TS_##Response_Closure done, void *c) {                     \
    (void)s;                                                                                       \
    rpc_batch_create(c, &in->base, ops_of(&catalog_kinds[K_]), (ProtobufCClosure)done);            \
  }                                                                                                \
  static void catalog_get_##ONE_(Service *s, const Events__Catalog__V1__Get##T_##Request *in,      \
                                 Events__Catalog__V1__Get##T_##Response_Closure done, void *c) {   \
    (void)s;                                                                                       \
    get_resource(&catalog_kinds[K_], in->ONE_##_id, (ProtobufCClosure)done, c);                    \
  }                                                                                                \
  static void catalog_list_##MANY_(Service *s, const Events__Catalog__V1__List##TS_##Request *in,  \
                                   Events__Catalog__V1__List##TS_##Response_Closure done,          \
                                   void *c) {                                                      \
    (void)s;                                                                                       \
    list_resources(&catalog_kinds[K_], &in->base, (ProtobufCClosure)done, c);                      \
  }                                                                                                \
  static void catalog_update_##ONE_(                                                               \
      Service *s, const Events__Catalog__V1__Update##T_##Request *in,                              \
      Events__Catalog__V1__Update##T_##Response_Closure done, void *c) {                           \
    (void)s;                                                                                       \
    update_resource(&catalog_kinds[K_], in->ONE_##_id, in->resource, in->update_mask,              \
                    (ProtobufCClosure)done, c);                                                    \
  }                                                                                                \
  static void catalog_delete_##ONE_(                                                               \
      Service *s, const Events__Catalog__V1__Delete##T_##Request *in,                              \
      Events__Catalog__V1__Delete##T_##Response_Closure done, void *c) {                           \
    (void)s;                                                                                       \
    delete_resource(&catalog_kinds[K_], in->ONE_##_id, (ProtobufCClosure)done, c);                 \
  }

KIND_METHODS(CATEGORY, event_category, event_categories, EventCategory, EventCategories)
KIND_METHODS(EVENT, event, events, Event, Events)
KIND_METHODS(PROPERTY, event_property, event_properties, EventProperty, EventProperties)
static Service service = EVENTS__CATALOG__V1__EVENT_CATALOG_SERVICE__INIT(catalog_);

const dialect catalog_dialect = {
    .service = {&events__catalog__v1__event_catalog_service__descriptor, &service.base, 0},
    .collections = collections,
    .n_collections = sizeof collections / sizeof *collections,
};
