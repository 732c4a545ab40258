/* rpc_batch.h - creates, single and bulk, from one set of dialect steps.
 *
 * A dialect states how one create request becomes a stored document (check
 * and build), what a failed write of it means, what must still hold once it
 * is written, and which resource a stored document shows. rpc_create_one
 * runs those steps for a Create… call; rpc_batch_create runs them for each
 * item of a BatchCreate… call, each item as a call of its own (so it fails
 * with exactly the status, message and BadRequest details its Create… would
 * have), and writes every valid item with one store_insert_many.
 *
 * A BatchCreate… request is `repeated <Create…Request> requests = 1` (its
 * rule batch_items: not checked as part of the batch) and `bool atomic = 2`;
 * its response `repeated <Result> results = 1`, each Result a oneof of the
 * resource (field 1) and a google.rpc.Status (field 2), in request order.
 * Atomic: all or nothing; if any item fails, nothing is written and the call
 * fails with the first failing item's code, its message prefixed
 * "requests[i]: ", and BadRequest details naming every failing item's fields
 * as "requests[i].<field>" (an item failing without field violations is
 * named "requests[i]" with its message). */
#ifndef EVENTS_RPC_BATCH_H
#define EVENTS_RPC_BATCH_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "rpc.h"

typedef struct rpc_create_ops {
  const char *what; /* the resource, in store error texts ("event") */
  const char *coll;
  /* Non-NULL: the document's "id" is the next value of this per-tenant
   * sequence (a batch takes a block); an id found taken is replaced by a
   * fresh one, a few times, as a single create retries. */
  const char *sequence;
  /* Checks one create request and builds the document to store; NULL with
   * the call failed. Runs also when the declared rules already failed the
   * call, to add what only it knows, but then touches no store. */
  json_t *(*build)(rpc_call *c, const ProtobufCMessage *req, const void *ctx);
  /* The write of doc was refused (a uniqueness conflict, say); NULL:
   * rpc_fail_store_as with `what`. */
  void (*write_failed)(rpc_call *c, const store_err *err, const void *ctx);
  /* After the write, whether the document may stay (a parent deleted
   * meanwhile); when not, it took the document back out and failed c.
   * NULL: nothing to check. */
  int (*written)(rpc_call *c, json_t *doc, const void *ctx);
  /* The resource a stored document shows (doc may be modified); NULL with
   * the call failed. */
  ProtobufCMessage *(*result)(rpc_call *c, json_t *doc, const void *ctx);
  const void *ctx;
} rpc_create_ops;

/* One create: the stored document (a new reference), or NULL with c failed. */
json_t *rpc_create_one(rpc_call *c, const ProtobufCMessage *req, const rpc_create_ops *ops);

/* A BatchCreate… call (see the top); replies through done. */
void rpc_batch_create(rpc_call *c, const ProtobufCMessage *in, const rpc_create_ops *ops,
                      ProtobufCClosure done);

#endif
