/* gw_jsonapi.h - JSON:API 1.0 over one resource message: documents in and
 * out, sparse fieldsets, the query syntax of filters, sorts and cursor pages,
 * error objects and content negotiation. Which members are attributes and
 * which relationships, which query parameter sets which request field, and
 * what may be sorted, all come from the descriptors and their annotations;
 * a dialect names only its resource type and message. */
#ifndef EVENTS_GW_JSONAPI_H
#define EVENTS_GW_JSONAPI_H

#include <stdint.h>

#include "gw.h"

#define GW_JSONAPI_MEDIA_TYPE "application/vnd.api+json"

typedef struct gw_jsonapi {
  const char *type;                       /* the resource type, "event" */
  const char *path;                       /* the collection's path, for links */
  const ProtobufCMessageDescriptor *desc; /* the resource message */
  const char *body_field;                 /* the request field holding it, "event" */
  /* A message field of desc whose own fields are the to-one relationships
   * (each an integer id, its type its name); NULL: none. */
  const char *links_field;
  /* A field of desc shown under the resource's meta only when the request
   * field of the same name (a bool) asks for it; NULL: none. */
  const char *meta_field;
} gw_jsonapi;

/* What a request asked to see: fields[type] (a bit per field of desc and
 * of the links message) and the meta field. */
typedef struct gw_jsonapi_view {
  int given;
  uint64_t attrs, links;
  int meta;
} gw_jsonapi_view;

/* Content negotiation (406 / 415), a dialect's check. */
int gw_jsonapi_check(const gw_req *req, gw_fail *f);
/* {"errors": [...], "meta": {...}}: a violation of the resource document
 * is 422 with its pointer, one of the query 400 with its parameter. */
void gw_jsonapi_error(const gw_jsonapi *ja, const gw_req *req, const gw_fail *f, gw_resp *resp);
json_t *gw_jsonapi_error_schema(void);

/* The request document of a create (want_id 0: a client id is 403) or an
 * update of want_id, into {body_field: {attributes..., links_field: {...}}}
 * in the mapper's form; *mask (may be NULL) gets the members sent, as
 * update_mask paths. 0, or -1 with f filled. */
int gw_jsonapi_read(const gw_jsonapi *ja, const gw_req *req, long long want_id, json_t **msg,
                    char *mask, size_t mask_len, gw_fail *f);
/* Merges msg (the mapper's camelCase form) into `in`; a complaint names the
 * document member (422). */
int gw_jsonapi_merge(const gw_jsonapi *ja, ProtobufCMessage *in, json_t *msg, gw_fail *f);
/* The query of a GET: every parameter by the route's map, in JSON:API's
 * syntax for the field it sets, plus fields[type]; into `in` and *view. */
int gw_jsonapi_query(const gw_jsonapi *ja, const gw_req *req, ProtobufCMessage *in,
                     gw_jsonapi_view *view, gw_fail *f);
/* fields[type] of a query gw_jsonapi_query accepted (for renderers). */
void gw_jsonapi_fields(const gw_jsonapi *ja, const gw_req *req, gw_jsonapi_view *view);
/* The resource object of msg. */
json_t *gw_jsonapi_resource(const gw_jsonapi *ja, const gw_req *req, const ProtobufCMessage *msg,
                            const gw_jsonapi_view *view);
/* OpenAPI: the resource object (create: its REQUIRED attributes required). */
json_t *gw_jsonapi_resource_schema(const gw_jsonapi *ja, int create);

#endif
