/* rpc_invoke.h - a unary request's bytes to its handler's outcome: bound,
 * unpack, handler, free. The server calls it for every unary call once the
 * caller is known; the fuzzer calls it with raw bytes and no network. */
#ifndef EVENTS_RPC_INVOKE_H
#define EVENTS_RPC_INVOKE_H

#include <stddef.h>
#include <stdint.h>

#include "rpc_int.h"

/* Whether impl has a handler at index (services are built up gradually). */
int rpc_invoke_has_handler(const ProtobufCService *impl, unsigned index);

/* Runs handler `index` of `impl` (method descriptor md) on the len bytes
 * at data. The outcome is in c: its status and violations, and on success
 * c->response (the packed reply). */
void rpc_invoke(rpc_call *c, const ProtobufCMethodDescriptor *md, ProtobufCService *impl,
                unsigned index, const uint8_t *data, size_t len);

#endif
