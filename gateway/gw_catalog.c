/* gw_catalog.c - catalog events (seed 002) under /api/v1/event/: bare
 * resource objects, page envelopes with absolute links as Django REST
 * framework's page-number pagination writes them, and {"detail": "..."}
 * errors. One set of builders and renderers serves categories, events and
 * event properties; the hook rows pick the RPC. The three kinds' list
 * requests and responses are declared alike, field for field, so the event
 * kind's C types stand for all three (the category list request lacks only
 * the trailing parent and integration filters, which it never reads). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gw.h"
#include "gw_dialects.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "ids.h"

typedef Events__Catalog__V1__Resource Resource;

static void catalog_error(const gw_req *req, const gw_fail *f, gw_resp *resp) {
  (void)req;
  /* The service names request fields; the REST body is the resource itself. */
  const char *field = f->field;
  if (strncmp(field, "resource.", 9) == 0) field += 9;
  if (*field)
    resp->body = json_pack("{s:o, s:o}", "detail", gw_text(f->message), "field", gw_text(field));
  else
    resp->body = json_pack("{s:o}", "detail", gw_text(f->message));
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

/* A resource body: the annotations say which members are output-only. */
static int body_resource(const gw_req *req, json_t **body, gw_fail *f) {
  if (gw_body_json(req, body, f) < 0) return -1;
  if (gw_body_check(req->route->api, *body, &events__catalog__v1__resource__descriptor,
                    gw_catalog.json_flags, f) == 0)
    return 0;
  json_decref(*body);
  *body = NULL;
  return -1;
}

/* Merges body into the request's resource (created empty when absent). */
static int merge_resource(ProtobufCMessage *in, json_t *body, gw_fail *f) {
  json_t *wrapped = json_pack("{s:O}", "resource", body);
  int rc = wrapped ? gw_merge(in, wrapped, gw_catalog.json_flags, f) : -1;
  if (!wrapped) gw_fail_set(f, 500, "", "", "out of memory");
  json_decref(wrapped);
  return rc;
}

int catalog_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body;
  if (gw_query_fields(req, in, req->route->query, gw_catalog.json_flags, f) < 0 ||
      body_resource(req, &body, f) < 0)
    return -1;
  int rc = merge_resource(in, body, f);
  json_decref(body);
  return rc;
}

int catalog_build_path_id(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  if (gw_query_fields(req, in, req->route->query, gw_catalog.json_flags, f) < 0) return -1;
  return check_path_id(req, f);
}

/* A member a PATCH may change: a field neither output-only nor immutable. */
static int updatable(const ProtobufCFieldDescriptor *fd) {
  const api *a = gw_api();
  return fd && a &&
         !(api_field_of(a, &events__catalog__v1__resource__descriptor, fd).behavior &
           (API_OUTPUT_ONLY | API_IMMUTABLE));
}

/* The update mask is the body's members, each one updatable. */
static int patch_mask(json_t *body, json_t **mask, gw_fail *f) {
  const ProtobufCMessageDescriptor *d = &events__catalog__v1__resource__descriptor;
  char paths[512] = "", allowed[512] = "";
  for (unsigned i = 0; i < d->n_fields; i++)
    if (updatable(&d->fields[i]))
      snprintf(allowed + strlen(allowed), sizeof allowed - strlen(allowed), "%s%s",
               allowed[0] ? ", " : "", d->fields[i].name);
  const char *key;
  json_t *v;
  json_object_foreach(body, key, v) {
    const ProtobufCFieldDescriptor *fd = protobuf_c_message_descriptor_get_field_by_name(d, key);
    if (!updatable(fd)) {
      gw_fail_set(f, 400, key, "not_allowed_value", "%s cannot be updated; updatable fields: %s",
                  key, allowed);
      return -1;
    }
    /* fits: every field at most once (the parser refuses duplicates) */
    snprintf(paths + strlen(paths), sizeof paths - strlen(paths), "%s%s", paths[0] ? "," : "",
             fd->name);
  }
  *mask = json_pack("{s:s}", "update_mask", paths);
  return 0;
}

int catalog_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  json_t *body = NULL, *mask = NULL;
  int rc = -1;
  if (catalog_build_path_id(req, in, f) < 0 || gw_body_json(req, &body, f) < 0) return -1;
  if (patch_mask(body, &mask, f) == 0 && gw_merge(in, mask, gw_catalog.json_flags, f) == 0)
    rc = merge_resource(in, body, f);
  json_decref(mask);
  json_decref(body);
  return rc;
}

int catalog_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  if (gw_query_fields(req, in, req->route->query, gw_catalog.json_flags, f) < 0) return -1;
  const Events__Catalog__V1__ListEventsRequest *r = (const void *)in;
  /* page 0 means "the first" over gRPC; in a URL it is a mistake. */
  if (gw_query_get(req, "page") && r->page < 1) {
    gw_fail_set(f, 400, "page", "out_of_range", "page must be a positive integer");
    return -1;
  }
  return 0;
}

/* ---- List Resources: filter and sort as URL-encoded JSON ---- */

#define FILTER_DEPTH 14 /* the service's limit (catalog_resources.c) */

/* The REST filter {"operator": "exact", "field": ..., "value": ...} or
 * {"operator": "and", "operands": [...]} as a FilterExpression in proto
 * JSON; NULL with f filled (400 naming the part). */
static json_t *filter_proto(json_t *x, const char *path, int depth, gw_fail *f) {
  static const char *const logical[] = {"and", "or", "not"};
  static const char *const ops[] = {"exact", "contains", "in", "is_set", "gt", "gte", "lt", "lte"};
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
  char upper[32], sub[256];
  size_t i;
  for (i = 0; op[i] && i < sizeof upper - 1; i++)
    upper[i] = (char)(op[i] >= 'a' && op[i] <= 'z' ? op[i] - 32 : op[i]);
  upper[i] = '\0';
  for (size_t k = 0; k < sizeof logical / sizeof *logical; k++) {
    if (strcmp(op, logical[k]) != 0) continue;
    json_t *operands = json_object_get(x, "operands"), *out = json_array(), *v;
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
    char name[48];
    snprintf(name, sizeof name, "LOGICAL_OPERATOR_%s", upper);
    return json_pack("{s:{s:s, s:o}}", "logical", "operator", name, "operands", out);
  }
  for (size_t k = 0; k < sizeof ops / sizeof *ops; k++) {
    if (strcmp(op, ops[k]) != 0) continue;
    json_t *field = json_object_get(x, "field"), *value = json_object_get(x, "value");
    if (!json_is_string(field)) {
      gw_fail_set(f, 400, "filter", "required", "%s: \"%s\" takes a \"field\"", path, op);
      return NULL;
    }
    char name[48];
    snprintf(name, sizeof name, "OPERATOR_%s", upper);
    return json_pack("{s:{s:O, s:s, s:O}}", "condition", "field", field, "operator", name, "value",
                     value ? value : json_null());
  }
  gw_fail_set(f, 400, "filter", "not_allowed_value",
              "%s: unknown operator \"%.40s\" (exact, contains, in, is_set, gt, gte, lt, lte, "
              "and, or, not)",
              path, op);
  return NULL;
}

static json_t *query_json(const char *name, const char *text, gw_fail *f) {
  json_error_t je;
  json_t *j = json_loads(text, JSON_REJECT_DUPLICATES, &je);
  if (!j) gw_fail_set(f, 400, name, "invalid_value_format", "%s: not JSON: %s", name, je.text);
  return j;
}

int catalog_build_resources(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  gw_query_arg args[64];
  size_t n = gw_query(req, args, 64);
  json_t *fields = json_object(), *teams = json_array();
  int rc = -1;
  for (size_t i = 0; i < n && i < 64; i++) {
    const char *k = args[i].key, *v = args[i].value ? args[i].value : "";
    if (json_object_get(fields, k)) {
      gw_fail_set(f, 400, k, "invalid_value_format", "%s is given more than once", k);
      goto free_fields;
    }
    json_t *x = NULL;
    if (strcmp(k, "page") == 0) {
      x = gw_query_value(in->descriptor, "page", "page", v, f);
      if (x && json_integer_value(x) < 1) {
        json_decref(x);
        gw_fail_set(f, 400, "page", "out_of_range", "page must be a positive integer");
        goto free_fields;
      }
    } else if (strcmp(k, "teams") == 0) {
      /* comma-separated, and the parameter may repeat */
      for (const char *p = v; *p;) {
        size_t len = strcspn(p, ",");
        json_array_append_new(teams, json_stringn(p, len));
        p += len + (p[len] == ',');
      }
      continue;
    } else if (strcmp(k, "filter") == 0) {
      json_t *j = query_json("filter", v, f);
      x = j ? filter_proto(j, "filter", 0, f) : NULL;
      json_decref(j);
    } else if (strcmp(k, "sort") == 0) {
      json_t *j = query_json("sort", v, f);
      const char *order = json_string_value(json_object_get(j, "order"));
      json_t *field = json_object_get(j, "field");
      if (j && (!json_is_string(field) ||
                (order && strcmp(order, "asc") != 0 && strcmp(order, "desc") != 0)))
        gw_fail_set(f, 400, "sort", "invalid_value_format",
                    "sort: expected {\"field\": ..., \"order\": \"asc\" or \"desc\"}");
      else if (j)
        x = json_pack("{s:O, s:s}", "field", field, "order",
                      order && strcmp(order, "desc") == 0 ? "SORT_DIRECTION_DESC"
                                                          : "SORT_DIRECTION_ASC");
      json_decref(j);
    } else {
      gw_fail_set(f, 400, k, "not_allowed_value", "unknown query parameter %s", k);
      goto free_fields;
    }
    if (!x) goto free_fields;
    json_object_set_new(fields, k, x);
  }
  if (json_array_size(teams)) json_object_set(fields, "teams", teams);
  rc = gw_merge(in, fields, gw_catalog.json_flags, f);
free_fields:
  json_decref(teams);
  json_decref(fields);
  return rc;
}

/* ---- responses ---- */

static int render_resource(const ProtobufCMessage *out, int status, gw_resp *resp) {
  resp->status = status;
  resp->body = pbjson_encode(out, gw_catalog.json_flags);
  return 0;
}

int catalog_render_create(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  return render_resource(out, 201, resp);
}

int catalog_render_resource(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  return render_resource(out, 200, resp);
}

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

static void put_encoded(FILE *m, const char *s) {
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
        ch == '-' || ch == '.' || ch == '_' || ch == '~')
      fputc(ch, m);
    else
      fprintf(m, "%%%02X", ch);
  }
}

/* The absolute URL of another page of this list: the request's path and
 * other parameters, with page=N (left out for the first page, as DRF does). */
static json_t *page_link(const gw_req *req, int page) {
  char base[512], *url = NULL;
  size_t len = 0;
  gw_query_arg args[64];
  size_t n = gw_query(req, args, 64);
  FILE *m = open_memstream(&url, &len);
  if (!m) return json_null();
  gw_base_url(req, base, sizeof base);
  fprintf(m, "%s%s", base, req->path);
  char sep = '?';
  for (size_t i = 0; i < n && i < 64; i++) {
    if (strcmp(args[i].key, "page") == 0) continue;
    fputc(sep, m);
    put_encoded(m, args[i].key);
    fputc('=', m);
    put_encoded(m, args[i].value);
    sep = '&';
  }
  if (page > 1) fprintf(m, "%cpage=%d", sep, page);
  fclose(m);
  json_t *j = url ? json_string(url) : json_null();
  free(url);
  return j;
}

int catalog_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f) {
  (void)in;
  (void)f;
  const Events__Catalog__V1__ListEventsResponse *r = (const void *)out;
  int page = r->page, more = r->page < r->total_pages;
  json_t *results = json_array();
  for (size_t i = 0; i < r->n_results; i++)
    json_array_append_new(results, pbjson_encode(&r->results[i]->base, gw_catalog.json_flags));
  resp->status = 200;
  resp->body = json_pack(
      "{s:I, s:i, s:{s:o, s:o}, s:{s:i, s:o, s:o}, s:o}", "count", (json_int_t)r->count,
      "total_pages", r->total_pages, "links", "next", more ? page_link(req, page + 1) : json_null(),
      "previous", page > 1 ? page_link(req, page - 1) : json_null(), "meta", "page", page,
      "previous_page", page > 1 ? json_integer(page - 1) : json_null(), "next_page",
      more ? json_integer(page + 1) : json_null(), "results", results);
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
