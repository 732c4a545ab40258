/* docs.c - shared handler plumbing: stored documents and field checks. */
#include "docs.h"

#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "pbjson.h"

#define DOC_FLAGS (PBJSON_MICROS_TIME | PBJSON_OMIT_NULL)

json_t *doc_encode(const ProtobufCMessage *msg, json_t *id) {
  json_t *doc = pbjson_encode(msg, DOC_FLAGS);
  if (doc && id)
    json_object_set_new(doc, "id", id);
  else
    json_decref(id);
  return doc;
}

ProtobufCMessage *doc_decode(rpc_call *c, json_t *doc, const ProtobufCMessageDescriptor *desc) {
  ProtobufCMessage *msg = NULL;
  pbjson_err err = {0};
  if (pbjson_decode(doc, desc, DOC_FLAGS | PBJSON_IGNORE_UNKNOWN, &msg, &err) < 0) {
    log_printf(LOG_LEVEL_ERROR, "stored %s document unreadable at %s: %s", desc->name, err.path,
               err.msg);
    rpc_fail(c, GRPC_STATUS_INTERNAL, "internal error");
    return NULL;
  }
  return msg;
}

static ProtobufCMessage *decode_with(rpc_call *c, json_t *doc,
                                     const ProtobufCMessageDescriptor *desc, doc_decoder decode) {
  return decode ? decode(c, doc) : doc_decode(c, doc, desc);
}

ProtobufCMessage *doc_load(rpc_call *c, const char *coll, json_t *key,
                           const ProtobufCMessageDescriptor *desc, doc_decoder decode,
                           const char *what) {
  json_t *doc = NULL;
  store_err err;
  ProtobufCMessage *msg = NULL;
  if (store_get(rpc_store(c), rpc_tenant(c), coll, key, &doc, &err) < 0) {
    if (err.code != STORE_ENOTFOUND)
      rpc_fail_store_as(c, &err, what);
    else if (json_is_integer(key))
      rpc_fail(c, GRPC_STATUS_NOT_FOUND, "%s %lld not found", what,
               (long long)json_integer_value(key));
    else
      rpc_fail(c, GRPC_STATUS_NOT_FOUND, "%s %s not found", what, json_string_value(key));
  } else {
    msg = decode_with(c, doc, desc, decode);
  }
  json_decref(doc);
  return msg;
}

int doc_decode_all(rpc_call *c, json_t *docs, const ProtobufCMessageDescriptor *desc,
                   doc_decoder decode, ProtobufCMessage ***out, size_t *n) {
  *n = 0;
  *out = calloc(json_array_size(docs) + 1, sizeof **out);
  if (!*out) {
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
    return -1;
  }
  for (size_t i = 0; i < json_array_size(docs); i++) {
    if (!((*out)[i] = decode_with(c, json_array_get(docs, i), desc, decode))) return -1;
    *n = i + 1;
  }
  return 0;
}

void doc_free_all(ProtobufCMessage **msgs, size_t n) {
  for (size_t i = 0; i < n; i++)
    protobuf_c_message_free_unpacked(msgs[i], NULL);
  free(msgs);
}

int check_required(rpc_call *c, const char *field, const char *value) {
  if (value && *value) return 1;
  rpc_violation(c, field, "required", "%s is required", field);
  return 0;
}

int check_length(rpc_call *c, const char *field, const char *value, size_t max) {
  if (!value || strlen(value) <= max) return 1;
  rpc_violation(c, field, "invalid_value_format", "%s must be at most %zu characters", field, max);
  return 0;
}

int check_page_size(rpc_call *c, const char *field, int32_t size, int32_t max) {
  if (size >= 0 && size <= max) return 1;
  rpc_violation(c, field, "out_of_range", "%s must be between 1 and %d", field, max);
  return 0;
}

long long ts_micros(const Google__Protobuf__Timestamp *t) {
  return (long long)t->seconds * 1000000 + t->nanos / 1000;
}

void ts_set(Google__Protobuf__Timestamp *t, long long micros) {
  long long s = micros / 1000000, us = micros % 1000000;
  if (us < 0) {
    us += 1000000;
    s--;
  }
  t->seconds = s;
  t->nanos = (int32_t)(us * 1000);
}

json_t *ts_json(const Google__Protobuf__Timestamp *t) {
  return json_integer(ts_micros(t));
}
