/* gw_bind.c - the generic half of turning a request into an RPC, driven by
 * the route's http rule: path variables into the request fields they name,
 * query parameters by the map derived from the request's fields, the body
 * into the rule's body field (a PATCH's mask from its members), the REST
 * names of request fields for error bodies; and the response (its
 * response_body field) as the dialect's JSON. Dialect hooks run on top of it
 * where an API differs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"

/* {"a": {"b": v}} for the field path "a.b", and the message that holds the
 * last field; NULL (f filled) when the path names no field of desc. */
static json_t *nest(const ProtobufCMessageDescriptor *desc, const char *path, const char *param,
                    const char *value, gw_fail *f) {
  const char *dot = strchr(path, '.');
  char head[128];
  snprintf(head, sizeof head, "%.*s", dot ? (int)(dot - path) : (int)strlen(path), path);
  json_t *v;
  if (!dot) {
    v = gw_query_value(desc, head, param, value, f);
  } else {
    const ProtobufCFieldDescriptor *fd =
        protobuf_c_message_descriptor_get_field_by_name(desc, head);
    if (!fd || fd->type != PROTOBUF_C_TYPE_MESSAGE) {
      gw_fail_set(f, 500, param, "", "the route names no field %s", path);
      return NULL;
    }
    v = nest(fd->descriptor, dot + 1, param, value, f);
  }
  return v ? json_pack("{s:o}", head, v) : NULL;
}

/* Merges src into dst, objects member by member (both path variables of
 * one message, e.g. {event.id} beside a body field, land in it). */
static void deep_merge(json_t *dst, json_t *src) {
  const char *k;
  json_t *v;
  json_object_foreach(src, k, v) {
    json_t *d = json_object_get(dst, k);
    if (json_is_object(d) && json_is_object(v))
      deep_merge(d, v);
    else
      json_object_set(dst, k, v);
  }
}

int gw_bind_path(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  if (!req->n_params) return 0;
  json_t *fields = json_object();
  int rc = -1;
  for (size_t i = 0; i < req->n_params; i++) {
    json_t *one =
        nest(in->descriptor, req->param_names[i], req->param_names[i], req->param_values[i], f);
    if (!one) goto free_fields;
    deep_merge(fields, one);
    json_decref(one);
  }
  /* Field names as the proto spells them, whatever the dialect's bodies use. */
  rc = gw_merge(in, fields, req->route->dialect->json_flags & ~PBJSON_CAMEL, f);
free_fields:
  json_decref(fields);
  return rc;
}

int gw_bind_request(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const gw_route *rt = req->route;
  unsigned flags = rt->dialect->json_flags;
  if (gw_query_fields(req, in, rt->query, flags, f) < 0) return -1;
  if (!rt->needs_body) return 0;
  json_t *body;
  if (gw_body_json(req, &body, f) < 0) return -1;
  int rc = -1;
  const ProtobufCMessageDescriptor *d = rt->body_desc ? rt->body_desc : in->descriptor;
  if (gw_body_check(rt->api, body, d, flags, f) < 0) goto free_body;
  if (strcmp(rt->body_field, "*") == 0) {
    rc = gw_merge(in, body, flags, f);
  } else {
    json_t *wrapped = json_pack("{s:O}", rt->body_field, body);
    rc = wrapped ? gw_merge(in, wrapped, flags & ~PBJSON_CAMEL, f) : -1;
    json_decref(wrapped);
  }
free_body:
  json_decref(body);
  return rc;
}

/* Whether field f of d is gRPC-only: (events.api.v1.field).rest_name "-". */
int gw_grpc_only(const ProtobufCMessageDescriptor *d, const ProtobufCFieldDescriptor *f) {
  const api *a = gw_api();
  const char *r = a ? api_field_of(a, d, f).rules->rest_name : NULL;
  return r && strcmp(r, "-") == 0;
}

int gw_render_default(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                      gw_resp *resp, gw_fail *f) {
  (void)in;
  const gw_route *rt = req->route;
  resp->status = rt->ok_status ? rt->ok_status : 200;
  if (resp->status == 204) return 0;
  resp->body = pbjson_encode(out, rt->dialect->json_flags);
  /* members only gRPC callers get (e.g. a list's resume_token) */
  const ProtobufCMessageDescriptor *d = out->descriptor;
  for (unsigned i = 0; resp->body && i < d->n_fields; i++)
    if (gw_grpc_only(d, &d->fields[i])) {
      char buf[128];
      const char *name = pbjson_field_name(&d->fields[i], rt->dialect->json_flags, buf, sizeof buf);
      json_object_del(resp->body, name ? name : d->fields[i].name);
    }
  /* the dialect's envelope ({"data": ...}) around it, when the route has one */
  if (resp->body && rt->resp_wrap) resp->body = json_pack("{s:o}", rt->resp_wrap, resp->body);
  if (!resp->body) {
    gw_fail_set(f, 500, "", "", "out of memory");
    return -1;
  }
  return 0;
}

static int check_members(json_t *body, const ProtobufCMessageDescriptor *desc, unsigned flags,
                         const char *prefix, int depth, gw_fail *f) {
  const char *key;
  json_t *v;
  char path[300];
  json_object_foreach(body, key, v) {
    const ProtobufCFieldDescriptor *fd = NULL;
    for (unsigned i = 0; i < desc->n_fields && !fd; i++) {
      char buf[128];
      const char *name = pbjson_field_name(&desc->fields[i], flags, buf, sizeof buf);
      if (name && strcmp(name, key) == 0) fd = &desc->fields[i];
    }
    snprintf(path, sizeof path, "%s%s%s", prefix, *prefix ? "." : "", key);
    if (!fd) {
      if (flags & PBJSON_IGNORE_UNKNOWN) continue;
      gw_fail_set(f, 400, path, "unknown_field", "unknown field %s", path);
      return -1;
    }
    /* Into the API's own messages (the well-known types carry no rules). */
    const ProtobufCMessageDescriptor *sub =
        fd->type == PROTOBUF_C_TYPE_MESSAGE ? fd->descriptor : NULL;
    if (!sub || strncmp(sub->name, "google.protobuf.", 16) == 0 || depth >= 8) continue;
    if (json_is_object(v) && check_members(v, sub, flags, path, depth + 1, f) < 0) return -1;
    size_t i;
    json_t *x;
    if (json_is_array(v)) json_array_foreach(v, i, x) {
        char elem[320];
        snprintf(elem, sizeof elem, "%s[%zu]", path, i);
        if (json_is_object(x) && check_members(x, sub, flags, elem, depth + 1, f) < 0) return -1;
      }
  }
  return 0;
}

int gw_body_check(const api *a, json_t *body, const ProtobufCMessageDescriptor *desc,
                  unsigned flags, gw_fail *f) {
  if (!json_is_object(body)) {
    gw_fail_set(f, 400, "", "invalid_type", "the body must be a JSON object");
    return -1;
  }
  (void)a; /* output-only members are the service's to refuse (rpc_behavior.c) */
  return check_members(body, desc, flags, "", 0, f);
}

/* ---- REST names and values from the annotations ---- */

static const ProtobufCMessageDescriptor *route_input(const gw_route *rt) {
  const ProtobufCMethodDescriptor *md =
      rt && rt->service && rt->rpc
          ? protobuf_c_service_descriptor_get_method_by_name(rt->service, strrchr(rt->rpc, '/') + 1)
          : NULL;
  return md ? md->input : NULL;
}

const char *gw_rest_field(const gw_req *req, const char *field, char *out, size_t len) {
  const gw_route *rt = req ? req->route : NULL;
  const ProtobufCMessageDescriptor *in = route_input(rt);
  const ProtobufCFieldDescriptor *fd =
      in ? protobuf_c_message_descriptor_get_field_by_name(in, field) : NULL;
  const char *name = field, *body = rt && rt->body_field ? rt->body_field : "";
  size_t bl = strcmp(body, "*") == 0 ? 0 : strlen(body);
  for (size_t i = 0; rt && rt->query && rt->query[i].param && name == field; i++)
    if (strcmp(rt->query[i].field, field) == 0) name = rt->query[i].param;
  const char *r = fd && rt->api ? api_field_of(rt->api, in, fd).rules->rest_name : NULL;
  if (name == field && r && *r && strcmp(r, "-") != 0) name = r;
  if (name == field && bl && strncmp(field, body, bl) == 0 && field[bl] == '.' && field[bl + 1])
    name = field + bl + 1;
  snprintf(out, len, "%s", name);
  return out;
}

int gw_rest_detail(const gw_req *req, const char *field, const char *desc, char *out, size_t len) {
  size_t n = strlen(field);
  if (!n || strncmp(desc, field, n) != 0) {
    snprintf(out, len, "%s", desc);
    return 0;
  }
  char rest[256];
  snprintf(out, len, "%s%s", gw_rest_field(req, field, rest, sizeof rest), desc + n);
  return 1;
}

int gw_merge_body(const gw_req *req, ProtobufCMessage *in, json_t *body, gw_fail *f) {
  const gw_route *rt = req->route;
  unsigned flags = rt->dialect->json_flags;
  if (strcmp(rt->body_field, "*") == 0) return gw_merge(in, body, flags, f);
  /* the body field is named as the proto spells it */
  json_t *wrapped = json_pack("{s:O}", rt->body_field, body);
  int rc = wrapped ? gw_merge(in, wrapped, flags & ~PBJSON_CAMEL, f) : -1;
  if (!wrapped) gw_fail_set(f, 500, "", "", "out of memory");
  json_decref(wrapped);
  return rc;
}

json_t *gw_patch_mask(const api *a, const ProtobufCMessageDescriptor *d, json_t *body, gw_fail *f) {
  char paths[512] = "", allowed[512] = "";
  unsigned fixed = API_OUTPUT_ONLY | API_IMMUTABLE;
  for (unsigned i = 0; i < d->n_fields; i++)
    if (!(api_field_of(a, d, &d->fields[i]).behavior & fixed))
      snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
               allowed[0] ? ", " : "", d->fields[i].name);
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!fd || api_field_of(a, d, fd).behavior & fixed) {
      gw_fail_set(f, 400, key, "not_allowed_value", "%s cannot be updated; updatable fields: %s",
                  key, allowed);
      return NULL;
    }
    /* fits: every field at most once (the parser refuses duplicates) */
    snprintf(paths + strlen(paths), sizeof paths - strlen(paths), "%s%s", paths[0] ? "," : "",
             fd->name);
  }
  return json_pack("{s:s}", "update_mask", paths);
}
