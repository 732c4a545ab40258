/* gw_catalog.c - catalog events (seed 002) under /api/v1/event/: bare
 * resource objects, page envelopes with absolute links as Django REST
 * framework's page-number pagination writes them, and {"detail": "..."}
 * errors. One set of builders and renderers serves categories, events and
 * event properties; the hook rows pick the RPC, and list responses are
 * read by their members' names, whichever kind's type they are. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "ids.h"

static void catalog_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  /* The service names request fields; the REST body is the resource itself. */
  char field[256], detail[600];
  gw_rest_detail(req, f->field, f->message, detail, sizeof detail);
  if (*gw_rest_field(req, f->field, field, sizeof field))
    resp->body = json_pack("{s:o, s:o}", "detail", gw_text(detail), "field", gw_text(field));
  else
    resp->body = json_pack("{s:o}", "detail", gw_text(detail));
}

static json_t *catalog_error_schema(void) {
  return json_pack("{s:s, s:{s:{s:s}, s:{s:s}}, s:[s]}", "type", "object", "properties", "detail",
                   "type", "string", "field", "type", "string", "required", "detail");
}

const gw_dialect gw_catalog = {
    .name = "catalog",
    .content_type = "application/json",
    .error = catalog_error,
    .error_schema = catalog_error_schema,
};

/* ---- requests ---- */

/* The route's one path parameter (bound to the request already); a
 * malformed id is not found, as for any id the API does not know. */
static int check_path_id(const gw_req *req, gw_fail *f) {
  if (req->n_params && ids_is_hex(req->param_values[0], 32)) return 0;
  gw_fail_set(f, 404, "", "", "Not found.");
  return -1;
}

/* Get, Delete and (first) Update: the query, then the id. */
int catalog_build_path_id(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  return gw_query_fields(req, in, req->route->query, gw_catalog.json_flags, f) < 0
             ? -1
             : check_path_id(req, f);
}

int catalog_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body = NULL, *mask = NULL;
  int rc = -1;
  if (catalog_build_path_id(req, in, f) < 0 || gw_body_json(req, &body, f) < 0) return -1;
  if ((mask = gw_patch_mask(req->route->api, req->route->body_desc, body, f)) &&
      gw_merge(in, mask, gw_catalog.json_flags, f) == 0)
    rc = gw_merge_body(req, in, body, f);
  json_decref(mask);
  json_decref(body);
  return rc;
}

/* ---- List Resources: filter and sort as URL-encoded JSON ---- */

#define FILTER_DEPTH 14 /* the service's limit (catalog_resources.c) */

/* The REST filter {"operator": "exact", "field": ..., "value": ...} or
 * {"operator": "and", "operands": [...]} as a FilterExpression in proto
 * JSON, operators by the names of the proto's enums; NULL with f filled
 * (400 naming the part). */
static json_t *filter_proto(json_t *x, const char *path, int depth, gw_fail *f) {
  char names[256], logical_names[128], sub[256];
  if (depth >= FILTER_DEPTH) {
    gw_fail_set(f, 400, "filter", "out_of_range", "%s: nested deeper than %d levels", path,
                FILTER_DEPTH);
    return NULL;
  }
  const char *op = json_string_value(json_object_get(x, "operator"));
  if (!json_is_object(x) || !op) {
    gw_fail_set(f, 400, "filter", "invalid_value_format",
                "%s: expected an object with an \"operator\"", path);
    return NULL;
  }
  const ProtobufCEnumValue *ev = gw_enum_named(&events__catalog__v1__logical_operator__descriptor,
                                               op, ", ", logical_names, sizeof logical_names);
  if (ev) {
    json_t *operands = json_object_get(x, "operands"), *out = json_array(), *v;
    size_t i;
    if (!json_is_array(operands)) {
      json_decref(out);
      gw_fail_set(f, 400, "filter", "invalid_value_format", "%s: \"%s\" takes \"operands\"", path,
                  op);
      return NULL;
    }
    json_array_foreach(operands, i, v) {
      snprintf(sub, sizeof sub, "%s.operands[%zu]", path, i);
      json_t *p = filter_proto(v, sub, depth + 1, f);
      if (!p) {
        json_decref(out);
        return NULL;
      }
      json_array_append_new(out, p);
    }
    return json_pack("{s:{s:s, s:o}}", "logical", "operator", ev->name, "operands", out);
  }
  if ((ev = gw_enum_named(&events__catalog__v1__operator__descriptor, op, ", ", names,
                          sizeof names))) {
    json_t *field = json_object_get(x, "field"), *value = json_object_get(x, "value");
    if (!json_is_string(field)) {
      gw_fail_set(f, 400, "filter", "required", "%s: \"%s\" takes a \"field\"", path, op);
      return NULL;
    }
    return json_pack("{s:{s:O, s:s, s:O}}", "condition", "field", field, "operator", ev->name,
                     "value", value ? value : json_null());
  }
  gw_fail_set(f, 400, "filter", "not_allowed_value", "%s: unknown operator \"%.40s\" (%s, %s)",
              path, op, names, logical_names);
  return NULL;
}

/* {"field": ..., "order": "asc" or "desc" (the default)} as a SortOrder. */
static json_t *sort_proto(json_t *j, const char *param, gw_fail *f) {
  char names[64];
  const char *order = json_string_value(json_object_get(j, "order"));
  json_t *field = json_object_get(j, "field");
  const ProtobufCEnumValue *ev =
      gw_enum_named(&events__catalog__v1__sort_direction__descriptor, order ? order : "asc",
                    "\" or \"", names, sizeof names);
  if (json_is_string(field) && ev)
    return json_pack("{s:O, s:s}", "field", field, "order", ev->name);
  gw_fail_set(f, 400, param, "invalid_value_format",
              "%s: expected {\"field\": ..., \"order\": \"%s\"}", param, names);
  return NULL;
}

static json_t *query_json(const char *name, const char *text, gw_fail *f) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (!j) gw_fail_set(f, 400, name, "invalid_value_format", "%s: not JSON: %s", name, je.text);
  return j;
}

/* Every parameter names a request field (not a gRPC-only one): a list is
 * comma-separated and may repeat, a message is URL-encoded JSON in the
 * API's own syntax, anything else a value as in the other routes. */
int catalog_build_resources(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  const ProtobufCMessageDescriptor *d = in->descriptor;
  gw_query_arg args[64];
  size_t n = gw_query(req, args, 64);
  json_t *fields = json_object(), *lists = json_object();
  int rc = -1;
  for (size_t i = 0; i < n && i < 64; i++) {
    const char *k = args[i].key, *v = args[i].value ? args[i].value : "";
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, k);
    const char *rest = fd ? api_field_of(req->route->api, d, fd).rules->rest_name : NULL;
    json_t *x = NULL;
    if (!fd || (rest && strcmp(rest, "-") == 0)) {
      gw_fail_set(f, 400, k, "not_allowed_value", "unknown query parameter %s", k);
      goto free_fields;
    }
    if (json_object_get(fields, k)) {
      gw_fail_set(f, 400, k, "invalid_value_format", "%s is given more than once", k);
      goto free_fields;
    }
    if (fd->label == PROTOBUF_C_LABEL_REPEATED) {
      json_t *list = json_object_get(lists, k);
      if (!list) json_object_set_new(lists, k, list = json_array());
      for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(list, json_stringn(p, len));
        p += len + (p[len] == ',');
      }
      continue;
    }
    if (fd->type == PROTOBUF_C_TYPE_MESSAGE) {
      json_t *j = query_json(k, v, f);
      if (j)
        x = fd->descriptor == &events__catalog__v1__sort_order__descriptor
                ? sort_proto(j, k, f)
                : filter_proto(j, k, 0, f);
      json_decref(j);
    } else if ((x = gw_query_value(d, k, k, v, f)) &&
               gw_query_bounds(req->route->api, d, k, k, x, f) < 0) {
      json_decref(x);
      x = NULL;
    }
    if (!x) goto free_fields;
    json_object_set_new(fields, k, x);
  }
  json_object_update(fields, lists); /* an empty list: as if not given */
  rc = gw_merge(in, fields, gw_catalog.json_flags, f);
free_fields:
  json_decref(lists);
  json_decref(fields);
  return rc;
}

/* ---- responses ---- */

int catalog_render_delete(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)out;
  (void)f;
  resp->status = 200;
  resp->body = json_pack("{s:s}", "detail", "deleted");
  return 0;
}

int catalog_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f) {
  (void)in;
  (void)f;
  /* members the mapper leaves out are zero or empty */
  json_t *o = pbjson_encode(out, gw_catalog.json_flags), *results = json_object_get(o, "results");
  json_int_t count = json_integer_value(json_object_get(o, "count"));
  int total = (int)json_integer_value(json_object_get(o, "total_pages"));
  int page = (int)json_integer_value(json_object_get(o, "page")), more = page < total;
  /* other pages: this request's URL with page=N (left out for the first,
   * as DRF does) */
  static const char *const drop[] = {"page", NULL};
  char prev[16], next[16];
  snprintf(prev, sizeof prev, "%d", page - 1);
  snprintf(next, sizeof next, "%d", page + 1);
  resp->status = 200;
  resp->body = json_pack(
      "{s:I, s:i, s:{s:o, s:o}, s:{s:i, s:o, s:o}, s:o}", "count", count, "total_pages", total,
      "links", "next", more ? gw_page_url(req, drop, "page", next) : json_null(), "previous",
      page > 1 ? gw_page_url(req, drop, page > 2 ? "page" : NULL, prev) : json_null(), "meta",
      "page", page, "previous_page", page > 1 ? json_integer(page - 1) : json_null(), "next_page",
      more ? json_integer(page + 1) : json_null(), "results",
      results ? json_incref(results) : json_array());
  json_decref(o);
  return 0;
}

/* ---- OpenAPI ---- */

static json_t *resource_page(void) {
  json_t *link = json_pack("{s:s, s:s, s:b}", "type", "string", "format", "uri", "nullable", 1);
  json_t *num = json_pack("{s:s, s:b}", "type", "integer", "nullable", 1);
  json_t *schema =
      json_pack("{s:s, s:{s:{s:s}, s:{s:s}, s:{s:s, s:{s:O, s:O}}, "
                "s:{s:s, s:{s:{s:s}, s:O, s:O}}, s:{s:s, s:o}}}",
                "type", "object", "properties", "count", "type", "integer", "total_pages", "type",
                "integer", "links", "type", "object", "properties", "next", link, "previous", link,
                "meta", "type", "object", "properties", "page", "type", "integer", "previous_page",
                num, "next_page", num, "results", "type", "array", "items",
                gw_schema(&events__catalog__v1__resource__descriptor, 0));
  json_decref(link);
  json_decref(num);
  return schema;
}

/* A page of resources (the list responses of every kind). */
json_t *catalog_list_schema(void) {
  return gw_schema_component("catalog.ResourcePage", resource_page);
}

static json_t *deleted(void) {
  return json_pack("{s:s, s:{s:{s:s}}, s:[s]}", "type", "object", "properties", "detail", "type",
                   "string", "required", "detail");
}

json_t *catalog_delete_schema(void) {
  return gw_schema_component("catalog.Deleted", deleted);
}
