/* rpc_reflect.h - the API's descriptor set, indexed for server reflection
 * (grpc.reflection.v1 and v1alpha share the wire format) and for the server's
 * method table (which methods stream). */
#ifndef EVENTS_RPC_REFLECT_H
#define EVENTS_RPC_REFLECT_H

#include <stddef.h>
#include <stdint.h>

struct Google__Protobuf__FileDescriptorSet;

typedef struct reflect reflect;

int reflect_open(const uint8_t *set, size_t len, const char *const *served, size_t n_served,
                 reflect **out);
/* The same over a descriptor set already unpacked (api_descriptor_set),
 * borrowed: it must outlive the reflect. */
int reflect_open_set(const struct Google__Protobuf__FileDescriptorSet *set,
                     const char *const *served, size_t n_served, reflect **out);
void reflect_free(reflect *r);
/* 1 if the method streams in either direction, 0 if unary, -1 if unknown. */
int reflect_is_streaming(const reflect *r, const char *service, const char *method);
/* Answers one serialized ServerReflectionRequest; *resp is malloc'd. */
int reflect_answer(const reflect *r, const uint8_t *req, size_t len, uint8_t **resp,
                   size_t *resp_len);

#endif
