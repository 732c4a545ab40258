/* rpc_batch.c - the create driver behind every dialect's Create… and
 * BatchCreate… (see rpc_batch.h): per item the dialect's steps on a call of
 * the item's own, one store write for the batch, results or one atomic
 * failure. */
#include "rpc_batch.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_int.h"
#include "rpc_behavior.h"
#include "rpc_validate.h"

/* Fresh ids tried for a document whose sequence id was taken, as a single
 * create retries. */
#define ID_TRIES 8

enum item_state { ITEM_PENDING, ITEM_WRITTEN, ITEM_FAILED };

typedef struct batch_item {
  rpc_call call; /* the item's own outcome */
  json_t *doc;
  enum item_state state;
} batch_item;

static void write_failed(rpc_call *c, const store_err *err, const rpc_create_ops *ops) {
  if (ops->write_failed)
    ops->write_failed(c, err, ops->ctx);
  else
    rpc_fail_store_as(c, err, ops->what);
}

static int set_id(json_t *doc, long long id) {
  return json_object_set_new(doc, "id", json_integer(id));
}

json_t *rpc_create_one(rpc_call *c, const ProtobufCMessage *req, const rpc_create_ops *ops) {
  json_t *doc = ops->build(c, req, ops->ctx);
  store_err err;
  if (!doc || rpc_failed(c)) goto fail_doc;
  for (int attempt = 0;; attempt++) {
    long long id;
    if (ops->sequence) {
      if (store_next_id(rpc_store(c), rpc_tenant(c), ops->sequence, &id, &err) < 0) {
        rpc_fail_store_as(c, &err, ops->what);
        goto fail_doc;
      }
      if (set_id(doc, id)) {
        rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
        goto fail_doc;
      }
    }
    if (store_insert(rpc_store(c), rpc_tenant(c), ops->coll, doc, &err) == 0) break;
    /* The sequence hands each number out once, but an id can still be
     * taken (a document written around the sequence): then the next. */
    if (ops->sequence && err.code == STORE_EDUPLICATE && attempt + 1 < ID_TRIES) continue;
    write_failed(c, &err, ops);
    goto fail_doc;
  }
  if (ops->written && !ops->written(c, doc, ops->ctx)) goto fail_doc;
  return doc;
fail_doc:
  json_decref(doc);
  return NULL;
}

/* ---- the batch's items ---- */

/* A call for one item: the batch's caller, store and rules, an outcome of
 * its own. */
static void item_init(rpc_call *ic, const rpc_call *c) {
  memset(ic, 0, sizeof *ic);
  ic->srv = c->srv;
  ic->store = c->store;
  ic->api = c->api;
  ic->service = c->service;
  ic->method_desc = c->method_desc;
  ic->deadline = c->deadline;
  ic->started = c->started;
  memcpy(ic->tenant, c->tenant, sizeof ic->tenant);
  memcpy(ic->request_id, c->request_id, sizeof ic->request_id);
  ic->trace = c->trace;
  ic->status = GRPC_STATUS_OK;
}

static void items_free(batch_item *items, size_t n) {
  for (size_t i = 0; items && i < n; i++) {
    json_decref(items[i].doc);
    rpc_status_clear(&items[i].call);
  }
  free(items);
}

/* Writes the pending items: one store_insert_many per round; later rounds
 * only re-id documents whose sequence id was taken. 0, or -1 with the
 * whole call failed (the store, not an item). */
static int write_items(rpc_call *c, batch_item *items, size_t n, const rpc_create_ops *ops,
                       int atomic) {
  json_t **docs = calloc(n, sizeof *docs);
  size_t *index = calloc(n, sizeof *index);
  int *results = calloc(n, sizeof *results);
  int rc = 0;
  store_err err;
  if (!docs || !index || !results) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    rc = -1;
    goto cleanup_lists;
  }
  for (int round = 0; round < ID_TRIES; round++) {
    size_t m = 0, failed = 0, retry = 0;
    for (size_t i = 0; i < n; i++)
      if (items[i].state == ITEM_PENDING) {
        index[m] = i;
        docs[m++] = items[i].doc;
      }
    if (m == 0) break;
    if (ops->sequence) {
      long long first;
      if (store_next_ids(rpc_store(c), rpc_tenant(c), ops->sequence, (long long)m, &first, &err) <
          0) {
        rpc_fail_store_as(c, &err, ops->what);
        rc = -1;
        goto cleanup_lists;
      }
      for (size_t k = 0; k < m; k++)
        if (set_id(docs[k], first + (long long)k)) {
          rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
          rc = -1;
          goto cleanup_lists;
        }
    }
    if (store_insert_many(rpc_store(c), rpc_tenant(c), ops->coll, docs, m, atomic, results, &err) <
        0) {
      rpc_fail_store_as(c, &err, ops->what);
      rc = -1;
      goto cleanup_lists;
    }
    int last_round = round + 1 == ID_TRIES;
    for (size_t k = 0; k < m; k++) {
      batch_item *it = &items[index[k]];
      int r = results[k];
      if (r == STORE_OK) {
        it->state = ITEM_WRITTEN;
      } else if (r == STORE_EABORTED) {
        continue; /* atomic: decided below */
      } else if (r == STORE_EDUPLICATE && ops->sequence && !last_round) {
        retry++;
      } else {
        store_err item_err = {.code = r};
        snprintf(item_err.msg, sizeof item_err.msg, "batch item %zu refused by the store",
                 index[k]);
        write_failed(&it->call, &item_err, ops);
        it->state = ITEM_FAILED;
        failed++;
      }
    }
    if (failed && atomic) break; /* the others stay unwritten */
    if (!retry) break;
  }
cleanup_lists:
  free(results);
  free(index);
  free(docs);
  return rc;
}

/* Atomic: a written item whose check after the write failed took itself
 * out; the others written with it go too. */
static int take_back(rpc_call *c, batch_item *items, size_t n, const rpc_create_ops *ops) {
  for (size_t i = 0; i < n; i++) {
    store_err err;
    if (items[i].state != ITEM_WRITTEN) continue;
    if (store_delete(rpc_store(c), rpc_tenant(c), ops->coll, json_object_get(items[i].doc, "id"),
                     &err) < 0 &&
        err.code != STORE_ENOTFOUND) {
      rpc_fail_store_as(c, &err, ops->what);
      return -1;
    }
    items[i].state = ITEM_PENDING;
  }
  return 0;
}

/* The failed atomic batch's status: the first failing item's code, every
 * failing item's fields under "requests[i]". */
static void fail_atomic(rpc_call *c, batch_item *items, size_t n) {
  for (size_t i = 0; i < n && !rpc_failed(c); i++) {
    rpc_call *ic = &items[i].call;
    if (items[i].state != ITEM_FAILED) continue;
    rpc_fail(c, ic->status, "requests[%zu]: %s", i, ic->message ? ic->message : "failed");
  }
  for (size_t i = 0; i < n; i++) {
    rpc_call *ic = &items[i].call;
    char field[320];
    if (items[i].state != ITEM_FAILED) continue;
    for (size_t k = 0; k < ic->n_violations; k++) {
      Google__Rpc__BadRequest__FieldViolation *v = ic->violations[k];
      snprintf(field, sizeof field, "requests[%zu].%s", i, v->field);
      rpc_violation_add(c, ic->status, field, v->reason, v->description);
    }
    if (ic->n_violations == 0) {
      snprintf(field, sizeof field, "requests[%zu]", i);
      rpc_violation_add(c, ic->status, field, "", ic->message ? ic->message : "failed");
    }
  }
}

/* ---- the response, through the descriptors ---- */

static const ProtobufCFieldDescriptor *field_no(const ProtobufCMessageDescriptor *d, unsigned id) {
  return protobuf_c_message_descriptor_get_field(d, id);
}

/* A Result with its oneof member `f` set to m (taken). */
static ProtobufCMessage *result_of(const ProtobufCMessageDescriptor *d,
                                   const ProtobufCFieldDescriptor *f, ProtobufCMessage *m) {
  ProtobufCMessage *r = malloc(d->sizeof_message);
  if (!r) return NULL;
  protobuf_c_message_init(d, r);
  if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
    *(uint32_t *)((char *)r + f->quantifier_offset) = f->id;
  memcpy((char *)r + f->offset, &m, sizeof m);
  return r;
}

static void reply_results(rpc_call *c, batch_item *items, size_t n, const rpc_create_ops *ops,
                          ProtobufCClosure done) {
  const ProtobufCMessageDescriptor *rd = c->output;
  const ProtobufCFieldDescriptor *rf = rd ? field_no(rd, 1) : NULL;
  const ProtobufCMessageDescriptor *resd = rf ? rf->descriptor : NULL;
  const ProtobufCFieldDescriptor *f_res = resd ? field_no(resd, 1) : NULL;
  const ProtobufCFieldDescriptor *f_st = resd ? field_no(resd, 2) : NULL;
  if (!f_res || !f_st || rf->label != PROTOBUF_C_LABEL_REPEATED) {
    rpc_fail(c, GRPC_STATUS_INTERNAL, "no batch response type");
    done(NULL, c);
    return;
  }
  ProtobufCMessage *resp = malloc(rd->sizeof_message);
  ProtobufCMessage **results = calloc(n ? n : 1, sizeof *results);
  size_t made = 0;
  if (!resp || !results) goto fail_memory;
  protobuf_c_message_init(rd, resp);
  *(size_t *)((char *)resp + rf->quantifier_offset) = 0;
  memcpy((char *)resp + rf->offset, &results, sizeof results);
  for (; made < n; made++) {
    batch_item *it = &items[made];
    ProtobufCMessage *m = NULL;
    if (it->state == ITEM_WRITTEN) m = ops->result(&it->call, it->doc, ops->ctx);
    const ProtobufCFieldDescriptor *f = m ? f_res : f_st;
    if (!m) {
      if (!rpc_failed(&it->call)) rpc_fail(&it->call, GRPC_STATUS_INTERNAL, "no result");
      Google__Rpc__Status *st = rpc_status_message(&it->call);
      m = st ? &st->base : NULL;
    }
    if (m && !(results[made] = result_of(resd, f, m))) protobuf_c_message_free_unpacked(m, NULL);
    if (!results[made]) goto fail_memory;
    *(size_t *)((char *)resp + rf->quantifier_offset) = made + 1;
  }
  done(resp, c);
  protobuf_c_message_free_unpacked(resp, NULL);
  return;
fail_memory:
  if (resp && results)
    protobuf_c_message_free_unpacked(resp, NULL); /* frees results too */
  else {
    free(resp);
    free(results);
  }
  rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  done(NULL, c);
}

void rpc_batch_create(rpc_call *c, const ProtobufCMessage *in, const rpc_create_ops *ops,
                      ProtobufCClosure done) {
  const ProtobufCFieldDescriptor *fr = field_no(in->descriptor, 1),
                                 *fa = field_no(in->descriptor, 2);
  batch_item *items = NULL;
  size_t n = 0, built = 0;
  if (!fr || !fa || fr->type != PROTOBUF_C_TYPE_MESSAGE || fa->type != PROTOBUF_C_TYPE_BOOL) {
    rpc_fail(c, GRPC_STATUS_INTERNAL, "not a batch request");
    goto reply;
  }
  n = *(const size_t *)((const char *)in + fr->quantifier_offset);
  ProtobufCMessage *const *reqs =
      *(ProtobufCMessage *const *const *)((const char *)in + fr->offset);
  int atomic = *(const protobuf_c_boolean *)((const char *)in + fa->offset);
  /* The declared max_items says so first where rules are checked. */
  if (n > STORE_BATCH_MAX && !rpc_failed(c))
    rpc_violation(c, "requests", "out_of_range", "requests holds at most %d items",
                  STORE_BATCH_MAX);
  if (rpc_failed(c)) goto reply;
  if (!(items = calloc(n ? n : 1, sizeof *items))) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    goto reply;
  }
  /* Each item as its single create checks and builds it. */
  for (size_t i = 0; i < n; i++) {
    batch_item *it = &items[i];
    item_init(&it->call, c);
    if (c->api) {
      rpc_behavior_create(&it->call, c->api, reqs[i]);
      rpc_validate(&it->call, c->api, reqs[i]);
    }
    it->doc = ops->build(&it->call, reqs[i], ops->ctx);
    if (!it->doc || rpc_failed(&it->call)) {
      if (!rpc_failed(&it->call)) rpc_fail(&it->call, GRPC_STATUS_INTERNAL, "not built");
      json_decref(it->doc);
      it->doc = NULL;
      it->state = ITEM_FAILED;
    } else {
      built++;
    }
  }
  if (atomic && built < n) goto fail_items;
  if (write_items(c, items, n, ops, atomic) < 0) goto reply;
  /* What must still hold after the write (parents), item by item. */
  for (size_t i = 0; ops->written && i < n; i++)
    if (items[i].state == ITEM_WRITTEN && !ops->written(&items[i].call, items[i].doc, ops->ctx))
      items[i].state = ITEM_FAILED;
  for (size_t i = 0; atomic && i < n; i++)
    if (items[i].state == ITEM_FAILED) {
      if (take_back(c, items, n, ops) < 0) goto reply;
      goto fail_items;
    }
  reply_results(c, items, n, ops, done);
  items_free(items, n);
  return;
fail_items:
  fail_atomic(c, items, n);
reply:
  items_free(items, n);
  done(NULL, c);
}
