/* api.h - the API's annotations, read once from the embedded descriptor set:
 * each method's google.api.http bindings and events.api.v1 method rules,
 * each field's google.api.field_behavior and events.api.v1 field rules. The
 * .proto files state them once; the service validates by them and the
 * gateway routes and documents by them.
 *
 * protobuf-c does not generate extensions: they stay unknown fields of the
 * options messages, and are decoded here by their field numbers. */
#ifndef EVENTS_API_H
#define EVENTS_API_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

#include "events/api/v1/options.pb-c.h"
#include "google/api/field_behavior.pb-c.h"
#include "google/api/http.pb-c.h"

typedef struct api api;

/* field_behavior values as bits. */
enum {
  API_REQUIRED = 1u << GOOGLE__API__FIELD_BEHAVIOR__REQUIRED,
  API_OUTPUT_ONLY = 1u << GOOGLE__API__FIELD_BEHAVIOR__OUTPUT_ONLY,
  API_IMMUTABLE = 1u << GOOGLE__API__FIELD_BEHAVIOR__IMMUTABLE,
  API_OPTIONAL = 1u << GOOGLE__API__FIELD_BEHAVIOR__OPTIONAL,
};

/* One REST binding of a method (its rule or one of additional_bindings). */
typedef struct api_binding {
  const char *verb;          /* "GET", "POST", "PUT", "PATCH", "DELETE" */
  const char *path;          /* "/api/v2/events/{id}": variables name request fields */
  const char *body;          /* "": none, "*": the request, else a field name */
  const char *response_body; /* "": the response, else a field name */
} api_binding;

typedef struct api_method {
  char *rpc;    /* "/events.activity.v1.ActivityEventService/GetEvent" */
  char *input;  /* "events.activity.v1.GetEventRequest" */
  char *output; /* "events.activity.v1.GetEventResponse" */
  api_binding *bindings;
  size_t n_bindings;
  const Events__Api__V1__MethodRules *rules; /* never NULL: defaults when unset */
} api_method;

/* The annotations of one field (a default, empty one when it has none). */
typedef struct api_field {
  unsigned behavior;                        /* API_* bits */
  const Events__Api__V1__FieldRules *rules; /* never NULL */
} api_field;

/* Reads the annotations of the descriptor set (a FileDescriptorSet). 0, or
 * -1 with err filled. */
int api_open(const uint8_t *set, size_t len, api **out, char *err, size_t err_len);
void api_close(api *a);

/* Every method with its bindings, in file order (also those without one). */
const api_method *api_methods(const api *a, size_t *n);
const api_method *api_method_find(const api *a, const char *rpc);
/* The annotations of field f of message m (matched by full names). */
api_field api_field_of(const api *a, const ProtobufCMessageDescriptor *m,
                       const ProtobufCFieldDescriptor *f);

/* The unpacked descriptor set the annotations were read from: reflection
 * serves the same files and borrows it rather than unpack a second copy. */
const struct Google__Protobuf__FileDescriptorSet *api_descriptor_set(const api *a);

/* Per-request look-ups by name cost a format and a search each; these tables,
 * indexed by protobuf-c descriptor address, are built once at start-up.
 * api_prepare adds every method of service sd and every message reachable
 * from their requests (google.protobuf.* excepted). Not thread-safe: call it
 * before the api is shared, then only read. 0, or -1 out of memory. */
int api_prepare(api *a, const ProtobufCServiceDescriptor *sd);
/* The annotations of every field of m, in m->fields order, or NULL when m
 * was not prepared (then use api_field_of). */
const api_field *api_fields_of(const api *a, const ProtobufCMessageDescriptor *m);
/* The method md of service sd: from the prepared table, else by name. */
const api_method *api_method_of(const api *a, const ProtobufCServiceDescriptor *sd,
                                const ProtobufCMethodDescriptor *md);

#endif
