/* rpc_behavior.h - REQUIRED and OUTPUT_ONLY fields of creates and
 * replacements, checked before their handlers (see rpc_behavior.c). */
#ifndef EVENTS_RPC_BEHAVIOR_H
#define EVENTS_RPC_BEHAVIOR_H

#include <protobuf-c/protobuf-c.h>

#include "api.h"
#include "rpc.h"

/* Records a violation on c for every REQUIRED field of `in` that is not set
 * and every OUTPUT_ONLY one that is, when c's method creates (POST) or
 * replaces (PUT) a resource; other methods pass. */
void rpc_behavior(rpc_call *c, const api *a, const ProtobufCMessage *in);

/* The same for `in` as the request of a create, whatever c's method (a
 * batch's items). */
void rpc_behavior_create(rpc_call *c, const api *a, const ProtobufCMessage *in);

#endif
