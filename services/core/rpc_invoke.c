/* rpc_invoke.c - the unary request path shared by the server and the
 * fuzzer (see rpc_invoke.h). */
#include "rpc_invoke.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_bound.h"
#include "rpc_behavior.h"
#include "rpc_validate.h"

typedef void (*generic_handler)(ProtobufCService *, const ProtobufCMessage *, ProtobufCClosure,
                                void *);

/* A protobuf-c service struct is its base followed by one handler pointer
 * per method, in descriptor order. */
static generic_handler handler_at(const ProtobufCService *impl, unsigned index) {
  return ((const generic_handler *)(impl + 1))[index];
}

int rpc_invoke_has_handler(const ProtobufCService *impl, unsigned index) {
  return impl && handler_at(impl, index);
}

/* The handler's closure: packs its response, or notes that it gave none. */
static void closure(const ProtobufCMessage *out, void *data) {
  rpc_call *c = data;
  if (!out) {
    if (c->status == GRPC_STATUS_OK) rpc_fail(c, GRPC_STATUS_INTERNAL, "handler gave no response");
    return;
  }
  size_t len = protobuf_c_message_get_packed_size(out);
  grpc_slice slice = grpc_slice_malloc(len);
  protobuf_c_message_pack(out, GRPC_SLICE_START_PTR(slice));
  if (c->response) grpc_byte_buffer_destroy(c->response);
  c->response = grpc_raw_byte_buffer_create(&slice, 1);
  grpc_slice_unref(slice);
}

void rpc_reply(ProtobufCClosure done, rpc_call *c, const ProtobufCMessage *out) {
  const ProtobufCMessageDescriptor *w = c->output;
  if (!out || !w || out->descriptor == w) {
    done(out, c);
    return;
  }
  const ProtobufCFieldDescriptor *f = w->n_fields ? &w->fields[0] : NULL;
  void *msg = f && f->type == PROTOBUF_C_TYPE_MESSAGE && f->descriptor == out->descriptor
                  ? malloc(w->sizeof_message)
                  : NULL;
  if (!msg) {
    rpc_fail(c, GRPC_STATUS_INTERNAL, "no response of type %s", w->name);
    done(NULL, c);
    return;
  }
  protobuf_c_message_init(w, msg);
  memcpy((char *)msg + f->offset, &out, sizeof out);
  done(msg, c);
  free(msg); /* the shell only: out stays the handler's */
}

void rpc_reply_empty(ProtobufCClosure done, rpc_call *c) {
  const ProtobufCMessageDescriptor *w = c->output;
  void *msg = rpc_failed(c) || !w ? NULL : malloc(w->sizeof_message);
  if (msg)
    protobuf_c_message_init(w, msg);
  else if (!rpc_failed(c))
    rpc_fail(c, GRPC_STATUS_RESOURCE_EXHAUSTED, "out of memory");
  done(msg, c);
  free(msg);
}

size_t rpc_page_size(const rpc_call *c, int32_t asked) {
  if (asked > 0) return (size_t)asked;
  /* A table look-up by descriptor (api_prepare), not a name per call. */
  const api_method *m =
      c->api && c->method_desc ? api_method_of(c->api, c->service, c->method_desc) : NULL;
  /* Every list method declares its default; 50 only if one forgot. */
  return m && m->rules->default_page_size > 0 ? (size_t)m->rules->default_page_size : 50;
}

unsigned rpc_field_behavior(const rpc_call *c, const ProtobufCMessageDescriptor *d,
                            const char *name) {
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  if (!c->api || !f) return 0;
  const api_field *fields = api_fields_of(c->api, d);
  return fields ? fields[f - d->fields].behavior : api_field_of(c->api, d, f).behavior;
}

const ProtobufCMessageDescriptor *rpc_output(const rpc_call *c) {
  return c->output;
}

void rpc_invoke(rpc_call *c, const ProtobufCMethodDescriptor *md, ProtobufCService *impl,
                unsigned index, const uint8_t *data, size_t len) {
  generic_handler h = handler_at(impl, index);
  /* Bounded before protobuf-c sees it: unpack recurses without a limit. */
  rpc_bound_err be;
  if (rpc_bound_check(md->input, data, len, &be) < 0) {
    rpc_violation(c, be.field, be.reason, "%s", be.msg);
    return;
  }
  ProtobufCMessage *in = protobuf_c_message_unpack(md->input, NULL, len, data);
  if (!in) {
    rpc_fail(c, GRPC_STATUS_INVALID_ARGUMENT, "the request is not a valid %s", md->input->name);
    return;
  }
  c->service = impl->descriptor;
  c->method_desc = md;
  c->output = md->output;
  /* The declared limits first; the handler still runs, to add what only it
   * knows, but touches no store once the call has failed. */
  if (c->api) {
    rpc_behavior(c, c->api, in);
    rpc_validate(c, c->api, in);
  }
  h(impl, in, closure, c);
  protobuf_c_message_free_unpacked(in, NULL);
}
