/* api.c - reads the API's annotations out of a FileDescriptorSet (see
 * api.h). */
#include "api.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"

/* Extension field numbers: google/api/annotations.proto,
 * google/api/field_behavior.proto and events/api/v1/options.proto. */
#define EXT_HTTP 72295728u
#define EXT_FIELD_BEHAVIOR 1052u
#define EXT_FIELD_RULES 51701u
#define EXT_METHOD_RULES 51702u

typedef struct field_entry {
  char *key; /* "events.activity.v1.Event.name" */
  api_field field;
} field_entry;

struct api {
  Google__Protobuf__FileDescriptorSet *set;
  api_method *methods;
  size_t n_methods;
  field_entry *fields;
  size_t n_fields, cap_fields;
  /* Decoded options, freed with the api. */
  ProtobufCMessage **owned;
  size_t n_owned, cap_owned;
  /* api_prepare's tables, sorted by descriptor address. */
  struct prepared_msg *msgs;
  size_t n_msgs, cap_msgs;
  struct prepared_method *meths;
  size_t n_meths, cap_meths;
};

typedef struct prepared_msg {
  const ProtobufCMessageDescriptor *d;
  api_field *fields; /* d->n_fields of them */
} prepared_msg;

typedef struct prepared_method {
  const ProtobufCMethodDescriptor *md;
  const api_method *m; /* NULL: not annotated */
} prepared_method;

static const Events__Api__V1__FieldRules no_field_rules = EVENTS__API__V1__FIELD_RULES__INIT;
static const Events__Api__V1__MethodRules no_method_rules = EVENTS__API__V1__METHOD_RULES__INIT;

static int own(api *a, ProtobufCMessage *m) {
  if (a->n_owned == a->cap_owned) {
    size_t cap = a->cap_owned ? 2 * a->cap_owned : 32;
    ProtobufCMessage **o = realloc(a->owned, cap * sizeof *o);
    if (!o) return -1;
    a->owned = o;
    a->cap_owned = cap;
  }
  a->owned[a->n_owned++] = m;
  return 0;
}

static const ProtobufCMessageUnknownField *unknown(const ProtobufCMessage *options, uint32_t tag) {
  for (unsigned i = 0; options && i < options->n_unknown_fields; i++)
    if (options->unknown_fields[i].tag == tag) return &options->unknown_fields[i];
  return NULL;
}

static size_t varint(const uint8_t *p, size_t len, uint64_t *v) {
  *v = 0;
  for (size_t i = 0; i < len && i < 10; i++) {
    *v |= (uint64_t)(p[i] & 0x7f) << (7 * i);
    if (!(p[i] & 0x80)) return i + 1;
  }
  return 0;
}

/* The payload of a length-delimited unknown field: protobuf-c keeps its
 * length prefix in data. */
static int payload(const ProtobufCMessageUnknownField *u, const uint8_t **p, size_t *len) {
  uint64_t n;
  size_t k = varint(u->data, u->len, &n);
  if (u->wire_type != PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED || !k || n != u->len - k) return -1;
  *p = u->data + k;
  *len = (size_t)n;
  return 0;
}

/* Unpacks the message-typed extension `tag` of options; NULL when absent,
 * *bad set when it does not decode. */
static ProtobufCMessage *extension(api *a, const ProtobufCMessage *options, uint32_t tag,
                                   const ProtobufCMessageDescriptor *d, int *bad) {
  const ProtobufCMessageUnknownField *u = unknown(options, tag);
  if (!u) return NULL;
  const uint8_t *p;
  size_t len;
  ProtobufCMessage *m =
      payload(u, &p, &len) == 0 ? protobuf_c_message_unpack(d, NULL, len, p) : NULL;
  if (!m || own(a, m) < 0) {
    if (m) protobuf_c_message_free_unpacked(m, NULL);
    *bad = 1;
    return NULL;
  }
  return m;
}

/* google.api.field_behavior: a repeated enum, packed or not. */
static unsigned behavior(const ProtobufCMessage *options) {
  unsigned bits = 0;
  for (unsigned i = 0; options && i < options->n_unknown_fields; i++) {
    const ProtobufCMessageUnknownField *u = &options->unknown_fields[i];
    if (u->tag != EXT_FIELD_BEHAVIOR) continue;
    uint64_t v;
    const uint8_t *p;
    size_t len;
    if (u->wire_type == PROTOBUF_C_WIRE_TYPE_VARINT) {
      if (varint(u->data, u->len, &v) && v < 32) bits |= 1u << v;
    } else if (payload(u, &p, &len) == 0) {
      for (size_t off = 0, k; off < len; off += k) {
        if (!(k = varint(p + off, len - off, &v))) break;
        if (v < 32) bits |= 1u << v;
      }
    }
  }
  return bits;
}

static int add_field(api *a, const char *message, const Google__Protobuf__FieldDescriptorProto *f,
                     int *bad) {
  const ProtobufCMessage *opts = f->options ? &f->options->base : NULL;
  unsigned bits = behavior(opts);
  const Events__Api__V1__FieldRules *rules = (const void *)extension(
      a, opts, EXT_FIELD_RULES, &events__api__v1__field_rules__descriptor, bad);
  if (!bits && !rules) return 0;
  if (a->n_fields == a->cap_fields) {
    size_t cap = a->cap_fields ? 2 * a->cap_fields : 64;
    field_entry *e = realloc(a->fields, cap * sizeof *e);
    if (!e) return -1;
    a->fields = e;
    a->cap_fields = cap;
  }
  field_entry *e = &a->fields[a->n_fields];
  size_t n = strlen(message) + strlen(f->name) + 2;
  if (!(e->key = malloc(n))) return -1;
  snprintf(e->key, n, "%s.%s", message, f->name);
  e->field.behavior = bits;
  e->field.rules = rules ? rules : &no_field_rules;
  a->n_fields++;
  return 0;
}

static int add_messages(api *a, const char *scope, Google__Protobuf__DescriptorProto **msgs,
                        size_t n, int *bad) {
  for (size_t i = 0; i < n; i++) {
    char name[512];
    snprintf(name, sizeof name, "%s%s%s", scope, *scope ? "." : "", msgs[i]->name);
    for (size_t j = 0; j < msgs[i]->n_field; j++)
      if (add_field(a, name, msgs[i]->field[j], bad) < 0) return -1;
    if (add_messages(a, name, msgs[i]->nested_type, msgs[i]->n_nested_type, bad) < 0) return -1;
  }
  return 0;
}

static void set_binding(api_binding *b, const Google__Api__HttpRule *r) {
  switch (r->pattern_case) {
  case GOOGLE__API__HTTP_RULE__PATTERN_GET:
    b->verb = "GET", b->path = r->get;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PUT:
    b->verb = "PUT", b->path = r->put;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_POST:
    b->verb = "POST", b->path = r->post;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_DELETE:
    b->verb = "DELETE", b->path = r->delete_;
    break;
  case GOOGLE__API__HTTP_RULE__PATTERN_PATCH:
    b->verb = "PATCH", b->path = r->patch;
    break;
  default:
    b->verb = NULL, b->path = NULL;
    break; /* custom verbs: not served */
  }
  b->body = r->body ? r->body : "";
  b->response_body = r->response_body ? r->response_body : "";
}

static char *type_name(const char *t) {
  return strdup(t && *t == '.' ? t + 1 : t ? t : "");
}

static int add_method(api *a, const char *service, const Google__Protobuf__MethodDescriptorProto *m,
                      int *bad) {
  api_method *am = &a->methods[a->n_methods];
  memset(am, 0, sizeof *am);
  size_t n = strlen(service) + strlen(m->name) + 3;
  am->rpc = malloc(n);
  am->input = type_name(m->input_type);
  am->output = type_name(m->output_type);
  a->n_methods++;
  if (!am->rpc || !am->input || !am->output) return -1;
  snprintf(am->rpc, n, "/%s/%s", service, m->name);
  const ProtobufCMessage *opts = m->options ? &m->options->base : NULL;
  const Google__Api__HttpRule *http =
      (const void *)extension(a, opts, EXT_HTTP, &google__api__http_rule__descriptor, bad);
  const Events__Api__V1__MethodRules *rules = (const void *)extension(
      a, opts, EXT_METHOD_RULES, &events__api__v1__method_rules__descriptor, bad);
  am->rules = rules ? rules : &no_method_rules;
  if (!http) return 0;
  am->bindings = calloc(1 + http->n_additional_bindings, sizeof *am->bindings);
  if (!am->bindings) return -1;
  set_binding(&am->bindings[am->n_bindings++], http);
  for (size_t i = 0; i < http->n_additional_bindings; i++)
    set_binding(&am->bindings[am->n_bindings++], http->additional_bindings[i]);
  return 0;
}

static int by_key(const void *x, const void *y) {
  return strcmp(((const field_entry *)x)->key, ((const field_entry *)y)->key);
}

int api_open(const uint8_t *set, size_t len, api **out, char *err, size_t err_len) {
  api *a = calloc(1, sizeof *a);
  int bad = 0;
  if (!a) goto fail_memory;
  a->set = google__protobuf__file_descriptor_set__unpack(NULL, len, set);
  if (!a->set) {
    snprintf(err, err_len, "the descriptor set does not decode");
    goto fail_close;
  }
  size_t n_methods = 0;
  for (size_t i = 0; i < a->set->n_file; i++)
    for (size_t j = 0; j < a->set->file[i]->n_service; j++)
      n_methods += a->set->file[i]->service[j]->n_method;
  if (!(a->methods = calloc(n_methods + 1, sizeof *a->methods))) goto fail_memory;
  for (size_t i = 0; i < a->set->n_file; i++) {
    const Google__Protobuf__FileDescriptorProto *fd = a->set->file[i];
    const char *pkg = fd->package ? fd->package : "";
    for (size_t j = 0; j < fd->n_service; j++) {
      char service[256];
      snprintf(service, sizeof service, "%s%s%s", pkg, *pkg ? "." : "", fd->service[j]->name);
      for (size_t k = 0; k < fd->service[j]->n_method; k++)
        if (add_method(a, service, fd->service[j]->method[k], &bad) < 0) goto fail_memory;
    }
    if (add_messages(a, pkg, fd->message_type, fd->n_message_type, &bad) < 0) goto fail_memory;
  }
  if (bad) {
    snprintf(err, err_len, "an annotation in the descriptor set does not decode");
    goto fail_close;
  }
  qsort(a->fields, a->n_fields, sizeof *a->fields, by_key);
  *out = a;
  return 0;
fail_memory:
  snprintf(err, err_len, "out of memory");
fail_close:
  api_close(a);
  return -1;
}

void api_close(api *a) {
  if (!a) return;
  for (size_t i = 0; i < a->n_methods; i++) {
    free(a->methods[i].rpc);
    free(a->methods[i].input);
    free(a->methods[i].output);
    free(a->methods[i].bindings);
  }
  free(a->methods);
  for (size_t i = 0; i < a->n_fields; i++)
    free(a->fields[i].key);
  free(a->fields);
  for (size_t i = 0; i < a->n_msgs; i++)
    free(a->msgs[i].fields);
  free(a->msgs);
  free(a->meths);
  for (size_t i = 0; i < a->n_owned; i++)
    protobuf_c_message_free_unpacked(a->owned[i], NULL);
  free(a->owned);
  if (a->set) google__protobuf__file_descriptor_set__free_unpacked(a->set, NULL);
  free(a);
}

const Google__Protobuf__FileDescriptorSet *api_descriptor_set(const api *a) {
  return a->set;
}

const api_method *api_methods(const api *a, size_t *n) {
  *n = a->n_methods;
  return a->methods;
}

const api_method *api_method_find(const api *a, const char *rpc) {
  for (size_t i = 0; i < a->n_methods; i++)
    if (strcmp(a->methods[i].rpc, rpc) == 0) return &a->methods[i];
  return NULL;
}

api_field api_field_of(const api *a, const ProtobufCMessageDescriptor *m,
                       const ProtobufCFieldDescriptor *f) {
  char key[512];
  snprintf(key, sizeof key, "%s.%s", m->name, f->name);
  field_entry probe = {.key = key};
  const field_entry *e = bsearch(&probe, a->fields, a->n_fields, sizeof *a->fields, by_key);
  return e ? e->field : (api_field){0, &no_field_rules};
}

/* ---- prepared tables ---- */

static int by_address(const void *x, const void *y) {
  uintptr_t a = (uintptr_t) * (const void *const *)x, b = (uintptr_t) * (const void *const *)y;
  return a < b ? -1 : a > b;
}

static prepared_msg *msg_find(const api *a, const ProtobufCMessageDescriptor *d) {
  prepared_msg probe = {.d = d};
  return a->n_msgs ? bsearch(&probe, a->msgs, a->n_msgs, sizeof *a->msgs, by_address) : NULL;
}

/* Adds d and the messages its fields hold (a message already there stops the
 * recursion, so cycles end). Kept sorted: lookups during the walk bsearch. */
static int prepare_message(api *a, const ProtobufCMessageDescriptor *d) {
  if (strncmp(d->name, "google.protobuf.", 16) == 0 || msg_find(a, d)) return 0;
  if (a->n_msgs == a->cap_msgs) {
    size_t cap = a->cap_msgs ? 2 * a->cap_msgs : 64;
    prepared_msg *m = realloc(a->msgs, cap * sizeof *m);
    if (!m) return -1;
    a->msgs = m;
    a->cap_msgs = cap;
  }
  api_field *fields = calloc(d->n_fields ? d->n_fields : 1, sizeof *fields);
  if (!fields) return -1;
  for (unsigned i = 0; i < d->n_fields; i++)
    fields[i] = api_field_of(a, d, &d->fields[i]);
  a->msgs[a->n_msgs++] = (prepared_msg){d, fields};
  qsort(a->msgs, a->n_msgs, sizeof *a->msgs, by_address);
  for (unsigned i = 0; i < d->n_fields; i++)
    if (d->fields[i].type == PROTOBUF_C_TYPE_MESSAGE &&
        prepare_message(a, d->fields[i].descriptor) < 0)
      return -1;
  return 0;
}

int api_prepare(api *a, const ProtobufCServiceDescriptor *sd) {
  for (unsigned i = 0; i < sd->n_methods; i++) {
    const ProtobufCMethodDescriptor *md = &sd->methods[i];
    if (a->n_meths == a->cap_meths) {
      size_t cap = a->cap_meths ? 2 * a->cap_meths : 64;
      prepared_method *m = realloc(a->meths, cap * sizeof *m);
      if (!m) return -1;
      a->meths = m;
      a->cap_meths = cap;
    }
    char rpc[512];
    snprintf(rpc, sizeof rpc, "/%s/%s", sd->name, md->name);
    a->meths[a->n_meths++] = (prepared_method){md, api_method_find(a, rpc)};
    if (prepare_message(a, md->input) < 0) return -1;
  }
  qsort(a->meths, a->n_meths, sizeof *a->meths, by_address);
  return 0;
}

const api_field *api_fields_of(const api *a, const ProtobufCMessageDescriptor *m) {
  const prepared_msg *e = msg_find(a, m);
  return e ? e->fields : NULL;
}

const api_method *api_method_of(const api *a, const ProtobufCServiceDescriptor *sd,
                                const ProtobufCMethodDescriptor *md) {
  prepared_method probe = {.md = md};
  const prepared_method *e =
      a->n_meths ? bsearch(&probe, a->meths, a->n_meths, sizeof *a->meths, by_address) : NULL;
  if (e) return e->m;
  char rpc[512];
  snprintf(rpc, sizeof rpc, "/%s/%s", sd ? sd->name : "", md ? md->name : "");
  return api_method_find(a, rpc);
}
