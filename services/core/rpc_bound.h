/* rpc_bound.h - bounds an inbound request before protobuf-c unpacks it.
 *
 * protobuf_c_message_unpack recurses once per nested message with no limit
 * and allocates for every element, so a small hostile message can overflow a
 * worker's stack or make the request far larger in memory than on the wire.
 * rpc_bound_check walks the wire format guided by the message descriptors,
 * with its own recursion bounded, and refuses what the service could not
 * serve: nesting deeper than the JSON mapper's PBJSON_MAX_DEPTH (counted in
 * JSON levels, as the mapper encodes the request, so what the REST side
 * accepts passes and what passes can be stored and rendered), too many
 * elements in total, malformed wire data, and strings that are not valid
 * UTF-8 or contain NUL (proto3 strings are UTF-8, and C strings end at NUL:
 * such input would be rewritten, so it is refused). */
#ifndef EVENTS_RPC_BOUND_H
#define EVENTS_RPC_BOUND_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* Field occurrences (each element of a repeated or packed field counts) in
 * one request. A 1 MiB REST body holds at most ~512 Ki JSON values, so this
 * never refuses what the gateway can send, and it bounds what one 4 MiB
 * message can make protobuf-c allocate. */
#define RPC_BOUND_MAX_ELEMENTS (1u << 20)

/* Why a request was refused: field is the request field path in the form
 * the handlers use ("event.payload.a[2]", "property_records[0].property_id";
 * Struct keys and list indexes as in JSON); reason is a BadRequest reason
 * ("invalid_value_format", "out_of_range"). */
typedef struct rpc_bound_err {
  char field[256];
  char msg[256];
  const char *reason;
} rpc_bound_err;

/* 0 when the len bytes at data are a message of type desc within the
 * bounds; -1 with err filled otherwise. */
int rpc_bound_check(const ProtobufCMessageDescriptor *desc, const uint8_t *data, size_t len,
                    rpc_bound_err *err);

#endif
