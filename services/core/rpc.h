/* rpc.h - what a dialect handler sees of the call it serves.
 *
 * Handlers are the protobuf-c service methods: they get the decoded request
 * and a closure; the closure_data is the rpc_call. On success a handler
 * passes its response to the closure; on failure it records the status with
 * rpc_fail or rpc_violation and passes NULL. The tenant is resolved before
 * any handler runs. */
#ifndef EVENTS_RPC_H
#define EVENTS_RPC_H

#include <grpc/status.h>
#include <protobuf-c/protobuf-c.h>

#include "store.h"

typedef struct rpc_call rpc_call;

/* A service the server exposes, with the handlers built so far (a NULL
 * handler or impl answers UNIMPLEMENTED). */
typedef struct rpc_service_def {
  const ProtobufCServiceDescriptor *desc;
  ProtobufCService *impl;
  int public; /* no credentials needed: health */
} rpc_service_def;

const char *rpc_tenant(const rpc_call *c);
store *rpc_store(const rpc_call *c);
void rpc_fail(rpc_call *c, grpc_status_code code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Records a field violation; the call fails with INVALID_ARGUMENT and
 * google.rpc.BadRequest details. `field` is the request field path. */
void rpc_violation(rpc_call *c, const char *field, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* A uniqueness conflict on field: ALREADY_EXISTS, with the field named in
 * BadRequest details as rpc_violation does (a dialect may answer it as a
 * validation error over REST). */
void rpc_conflict(rpc_call *c, const char *field, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int rpc_failed(const rpc_call *c);
/* Passes out to the handler's closure `done`: the method's response, or
 * the one resource the response only wraps (each method has its own
 * <Rpc>Response; Get, Create and Update ones carry the resource in their
 * first field), wrapped here. NULL passes NULL. */
void rpc_reply(ProtobufCClosure done, rpc_call *c, const ProtobufCMessage *out);
/* Passes the method's (empty) response to done, or NULL once the call failed. */
void rpc_reply_empty(ProtobufCClosure done, rpc_call *c);
/* The page size a list call asked for, or its method's declared default
 * ((events.api.v1.method).default_page_size) when it asked for none. */
size_t rpc_page_size(const rpc_call *c, int32_t asked);
/* The google.api.field_behavior of field `name` of message d (API_* bits
 * of api.h); 0 when it has none or the call checks no annotations. */
unsigned rpc_field_behavior(const rpc_call *c, const ProtobufCMessageDescriptor *d,
                            const char *name);
/* The response type of the method being served. */
const ProtobufCMessageDescriptor *rpc_output(const rpc_call *c);
/* Maps a store error to its status (NOT_FOUND, ALREADY_EXISTS, UNAVAILABLE...). */
void rpc_fail_store(rpc_call *c, const store_err *err);
/* The same, naming the resource ("event", "event category") in the generic
 * text the client gets; the store's own message only reaches the log. */
void rpc_fail_store_as(rpc_call *c, const store_err *err, const char *what);

#endif
