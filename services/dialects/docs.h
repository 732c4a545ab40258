/* docs.h - what every dialect's handlers share: messages <-> stored
 * documents (one mapper, times as integer microseconds), validation helpers
 * that record field violations, and timestamps. */
#ifndef EVENTS_DOCS_H
#define EVENTS_DOCS_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

#include "google/protobuf/timestamp.pb-c.h"
#include "google/protobuf/wrappers.pb-c.h"
#include "rpc.h"

/* The stored form of a message; `id` (stolen) becomes the document key. */
json_t *doc_encode(const ProtobufCMessage *msg, json_t *id);
/* A message from a stored document (unknown members such as "id" are
 * skipped); NULL and an INTERNAL failure on a corrupt document. */
ProtobufCMessage *doc_decode(rpc_call *c, json_t *doc, const ProtobufCMessageDescriptor *desc);

/* Checks of request fields: each records a violation naming `field` and
 * returns 0 when the value is bad. */
int check_required(rpc_call *c, const char *field, const char *value);
int check_length(rpc_call *c, const char *field, const char *value, size_t max);
int check_page_size(rpc_call *c, const char *field, int32_t size, int32_t max);

/* Timestamps: heap-allocated, freed by protobuf_c_message_free_unpacked. */
long long ts_micros(const Google__Protobuf__Timestamp *t);
void ts_set(Google__Protobuf__Timestamp *t, long long micros);
json_t *ts_json(const Google__Protobuf__Timestamp *t); /* integer micros */

#endif
