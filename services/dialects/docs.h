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

/* A dialect's own decoding of a stored document (e.g. undoing an encoding
 * of its own before doc_decode); NULL means doc_decode with the descriptor. */
typedef ProtobufCMessage *(*doc_decoder)(rpc_call *c, json_t *doc);

/* Gets the document `key` of coll and decodes it; a missing one fails the
 * call with NOT_FOUND "<what> <key> not found". NULL when the call failed. */
ProtobufCMessage *doc_load(rpc_call *c, const char *coll, json_t *key,
                           const ProtobufCMessageDescriptor *desc, doc_decoder decode,
                           const char *what);
/* Decodes every document of a page into *out (*n of them, the array one
 * longer than needed so it is never empty); free with doc_free_all, also on
 * failure, which fails the call. */
int doc_decode_all(rpc_call *c, json_t *docs, const ProtobufCMessageDescriptor *desc,
                   doc_decoder decode, ProtobufCMessage ***out, size_t *n);
void doc_free_all(ProtobufCMessage **msgs, size_t n);

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
