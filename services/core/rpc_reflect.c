/* rpc_reflect.c - server reflection from the embedded FileDescriptorSet.
 *
 * The set is made by protoc --include_imports, so every file a symbol needs
 * is in it; answers carry the file and its transitive dependencies, each
 * once, as grpcurl and grpc-go expect. */
#include "rpc_reflect.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "google/protobuf/descriptor.pb-c.h"
#include "grpc/reflection/v1/reflection.pb-c.h"

typedef struct rfile {
  const Google__Protobuf__FileDescriptorProto *fd;
  uint8_t *bytes;
  size_t len;
} rfile;

typedef struct rsym {
  char *name;
  size_t file;
} rsym;

struct reflect {
  const Google__Protobuf__FileDescriptorSet *set;
  Google__Protobuf__FileDescriptorSet *owned; /* set, when reflect_open unpacked it */
  rfile *files;
  size_t n_files;
  rsym *syms;
  size_t n_syms, cap_syms;
  char **served;
  size_t n_served;
};

static int add_sym(reflect *r, const char *scope, const char *name, size_t file) {
  if (r->n_syms == r->cap_syms) {
    size_t cap = r->cap_syms ? r->cap_syms * 2 : 256;
    rsym *v = realloc(r->syms, cap * sizeof *v);
    if (!v) return -1;
    r->syms = v;
    r->cap_syms = cap;
  }
  size_t n = strlen(scope) + strlen(name) + 2;
  char *full = malloc(n);
  if (!full) return -1;
  if (*scope)
    snprintf(full, n, "%s.%s", scope, name);
  else
    snprintf(full, n, "%s", name);
  r->syms[r->n_syms++] = (rsym){full, file};
  return 0;
}

static int add_message(reflect *r, const char *scope, const Google__Protobuf__DescriptorProto *m,
                       size_t file) {
  if (add_sym(r, scope, m->name, file) < 0) return -1;
  /* Copied: adding nested symbols may move r->syms. */
  char *full = strdup(r->syms[r->n_syms - 1].name);
  if (!full) return -1;
  int rc = 0;
  for (size_t i = 0; i < m->n_nested_type && rc == 0; i++)
    rc = add_message(r, full, m->nested_type[i], file);
  for (size_t i = 0; i < m->n_enum_type && rc == 0; i++)
    rc = add_sym(r, full, m->enum_type[i]->name, file);
  free(full);
  return rc;
}

static int index_file(reflect *r, size_t i) {
  const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
  const char *pkg = fd->package ? fd->package : "";
  for (size_t m = 0; m < fd->n_message_type; m++)
    if (add_message(r, pkg, fd->message_type[m], i) < 0) return -1;
  for (size_t e = 0; e < fd->n_enum_type; e++)
    if (add_sym(r, pkg, fd->enum_type[e]->name, i) < 0) return -1;
  for (size_t s = 0; s < fd->n_service; s++) {
    const Google__Protobuf__ServiceDescriptorProto *sd = fd->service[s];
    if (add_sym(r, pkg, sd->name, i) < 0) return -1;
    char *svc = strdup(r->syms[r->n_syms - 1].name);
    if (!svc) return -1;
    for (size_t m = 0; m < sd->n_method; m++) {
      if (add_sym(r, svc, sd->method[m]->name, i) < 0) {
        free(svc);
        return -1;
      }
    }
    free(svc);
  }
  return 0;
}

static int reflect_index(reflect *r, const char *const *served, size_t n_served, reflect **out);

int reflect_open(const uint8_t *set, size_t len, const char *const *served, size_t n_served,
                 reflect **out) {
  reflect *r = calloc(1, sizeof *r);
  if (!r) return -1;
  r->set = r->owned = google__protobuf__file_descriptor_set__unpack(NULL, len, set);
  if (!r->set) {
    reflect_free(r);
    return -1;
  }
  return reflect_index(r, served, n_served, out);
}

int reflect_open_set(const Google__Protobuf__FileDescriptorSet *set, const char *const *served,
                     size_t n_served, reflect **out) {
  reflect *r = calloc(1, sizeof *r);
  if (!r) return -1;
  r->set = set;
  return reflect_index(r, served, n_served, out);
}

/* Packs each file once and indexes its symbols; frees r on failure. */
static int reflect_index(reflect *r, const char *const *served, size_t n_served, reflect **out) {
  r->n_files = r->set->n_file;
  r->files = calloc(r->n_files ? r->n_files : 1, sizeof *r->files);
  if (!r->files) goto free_reflect;
  for (size_t i = 0; i < r->n_files; i++) {
    rfile *f = &r->files[i];
    f->fd = r->set->file[i];
    f->len = protobuf_c_message_get_packed_size(&f->fd->base);
    f->bytes = malloc(f->len ? f->len : 1);
    if (!f->bytes) goto free_reflect;
    protobuf_c_message_pack(&f->fd->base, f->bytes);
    if (index_file(r, i) < 0) goto free_reflect;
  }
  r->served = calloc(n_served ? n_served : 1, sizeof *r->served);
  if (!r->served) goto free_reflect;
  for (size_t i = 0; i < n_served; i++) {
    if (!(r->served[i] = strdup(served[i]))) goto free_reflect;
    r->n_served++;
  }
  *out = r;
  return 0;
free_reflect:
  reflect_free(r);
  return -1;
}

void reflect_free(reflect *r) {
  if (!r) return;
  for (size_t i = 0; i < r->n_files && r->files; i++)
    free(r->files[i].bytes);
  free(r->files);
  for (size_t i = 0; i < r->n_syms; i++)
    free(r->syms[i].name);
  free(r->syms);
  for (size_t i = 0; i < r->n_served; i++)
    free(r->served[i]);
  free(r->served);
  if (r->owned) google__protobuf__file_descriptor_set__free_unpacked(r->owned, NULL);
  free(r);
}

static const Google__Protobuf__ServiceDescriptorProto *find_service(const reflect *r,
                                                                    const char *full) {
  for (size_t i = 0; i < r->n_files; i++) {
    const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
    size_t pl = fd->package ? strlen(fd->package) : 0;
    if (pl && (strncmp(full, fd->package, pl) != 0 || full[pl] != '.')) continue;
    const char *name = pl ? full + pl + 1 : full;
    for (size_t s = 0; s < fd->n_service; s++)
      if (strcmp(fd->service[s]->name, name) == 0) return fd->service[s];
  }
  return NULL;
}

int reflect_is_streaming(const reflect *r, const char *service, const char *method) {
  const Google__Protobuf__ServiceDescriptorProto *sd = find_service(r, service);
  if (!sd) return -1;
  for (size_t m = 0; m < sd->n_method; m++) {
    const Google__Protobuf__MethodDescriptorProto *md = sd->method[m];
    if (strcmp(md->name, method) == 0)
      return (md->has_client_streaming && md->client_streaming) ||
             (md->has_server_streaming && md->server_streaming);
  }
  return -1;
}

static long find_file(const reflect *r, const char *name) {
  for (size_t i = 0; i < r->n_files; i++)
    if (strcmp(r->files[i].fd->name, name) == 0) return (long)i;
  return -1;
}

static long find_symbol(const reflect *r, const char *name) {
  if (*name == '.') name++;
  for (size_t i = 0; i < r->n_syms; i++)
    if (strcmp(r->syms[i].name, name) == 0) return (long)r->syms[i].file;
  return -1;
}

/* Appends file i and, after it, its transitive dependencies not yet seen. */
static void collect(const reflect *r, size_t i, unsigned char *seen, size_t *order, size_t *n) {
  if (seen[i]) return;
  seen[i] = 1;
  order[(*n)++] = i;
  const Google__Protobuf__FileDescriptorProto *fd = r->files[i].fd;
  for (size_t d = 0; d < fd->n_dependency; d++) {
    long j = find_file(r, fd->dependency[d]);
    if (j >= 0) collect(r, (size_t)j, seen, order, n);
  }
}

int reflect_answer(const reflect *r, const uint8_t *req_bytes, size_t req_len, uint8_t **resp,
                   size_t *resp_len) {
  Grpc__Reflection__V1__ServerReflectionRequest *req =
      grpc__reflection__v1__server_reflection_request__unpack(NULL, req_len, req_bytes);
  Grpc__Reflection__V1__ServerReflectionResponse res =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__INIT;
  Grpc__Reflection__V1__FileDescriptorResponse fdr =
      GRPC__REFLECTION__V1__FILE_DESCRIPTOR_RESPONSE__INIT;
  Grpc__Reflection__V1__ListServiceResponse lsr = GRPC__REFLECTION__V1__LIST_SERVICE_RESPONSE__INIT;
  Grpc__Reflection__V1__ErrorResponse er = GRPC__REFLECTION__V1__ERROR_RESPONSE__INIT;
  Grpc__Reflection__V1__ServiceResponse *svcs = NULL, **svcp = NULL;
  ProtobufCBinaryData *blobs = NULL;
  unsigned char *seen = NULL;
  size_t *order = NULL;
  int rc = -1;
  if (!req) return -1;

  res.original_request = req;
  res.valid_host = req->host;
  long file = -1;
  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    svcs = calloc(r->n_served ? r->n_served : 1, sizeof *svcs);
    svcp = calloc(r->n_served ? r->n_served : 1, sizeof *svcp);
    if (!svcs || !svcp) goto free_all;
    for (size_t i = 0; i < r->n_served; i++) {
      grpc__reflection__v1__service_response__init(&svcs[i]);
      svcs[i].name = r->served[i];
      svcp[i] = &svcs[i];
    }
    lsr.n_service = r->n_served;
    lsr.service = svcp;
    res.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
    res.list_services_response = &lsr;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    file = find_file(r, req->file_by_filename);
    goto answer_file;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    file = find_symbol(r, req->file_containing_symbol);
  answer_file:
    if (file < 0) {
      er.error_code = 5; /* NOT_FOUND */
      er.error_message = "not found";
      res.message_response_case =
          GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
      res.error_response = &er;
      break;
    }
    seen = calloc(r->n_files, 1);
    order = calloc(r->n_files, sizeof *order);
    blobs = calloc(r->n_files, sizeof *blobs);
    if (!seen || !order || !blobs) goto free_all;
    size_t n = 0;
    collect(r, (size_t)file, seen, order, &n);
    for (size_t i = 0; i < n; i++)
      blobs[i] = (ProtobufCBinaryData){r->files[order[i]].len, r->files[order[i]].bytes};
    fdr.n_file_descriptor_proto = n;
    fdr.file_descriptor_proto = blobs;
    res.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
    res.file_descriptor_response = &fdr;
    break;
  default:
    er.error_code = 12; /* UNIMPLEMENTED: no extensions in this API */
    er.error_message = "not supported";
    res.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
    res.error_response = &er;
    break;
  }
  *resp_len = grpc__reflection__v1__server_reflection_response__get_packed_size(&res);
  *resp = malloc(*resp_len ? *resp_len : 1);
  if (!*resp) goto free_all;
  grpc__reflection__v1__server_reflection_response__pack(&res, *resp);
  rc = 0;
free_all:
  free(svcs);
  free(svcp);
  free(blobs);
  free(seen);
  free(order);
  grpc__reflection__v1__server_reflection_request__free_unpacked(req, NULL);
  return rc;
}
