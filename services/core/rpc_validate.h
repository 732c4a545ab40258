/* rpc_validate.h - the request checks the protos declare, made once for
 * every method before its handler runs (see rpc_validate.c). */
#ifndef EVENTS_RPC_VALIDATE_H
#define EVENTS_RPC_VALIDATE_H

#include <protobuf-c/protobuf-c.h>

#include "api.h"
#include "rpc.h"

/* Records a violation on c for every field of `in` that breaks its
 * (events.api.v1.field) rules: lengths in Unicode code points, id formats,
 * numeric ranges, item counts. */
void rpc_validate(rpc_call *c, const api *a, const ProtobufCMessage *in);

/* The bytes one value of field f takes in a protobuf-c message (an element
 * of a repeated field's array). */
size_t rpc_value_size(const ProtobufCFieldDescriptor *f);
/* A field's path under prefix ("a.b", or "b" at the top) and an element's
 * ("a.b[3]"), cut to len - 1 bytes: what every check names, built per
 * checked field, so without printf (a batch of 500 formats thousands). */
void rpc_path_field(char *out, size_t len, const char *prefix, const char *name);
void rpc_path_index(char *out, size_t len, const char *path, size_t k);

#endif
