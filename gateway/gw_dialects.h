/* gw_dialects.h - each dialect's hooks: per RPC, the builder and renderer
 * for what its http rule cannot say (envelopes, query syntax, document
 * checks). The route table (gw_routes.c) takes paths, verbs, bodies,
 * statuses and query parameters from the annotations; an RPC without a hook
 * row, or a hook without a builder or renderer, gets the generic ones. */
#ifndef EVENTS_GW_DIALECTS_H
#define EVENTS_GW_DIALECTS_H

#include "gw.h"

int customer_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_events(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);

#define CUSTOMER_SVC "/events.customer.v1.CustomerEventService/"
#define CUSTOMER_HOOK(R_, B_, RENDER_)                                                             \
  {                                                                                                \
    .rpc = CUSTOMER_SVC R_, .dialect = &gw_customer, .build = B_, .render = RENDER_,               \
    .resp_wrap = "data"                                                                            \
  }
#define CUSTOMER_HOOKS                                                                             \
  CUSTOMER_HOOK("CreateEvent", customer_build_create, NULL),                                       \
      CUSTOMER_HOOK("ListEvents", NULL, customer_render_events),                                   \
      CUSTOMER_HOOK("GetEvent", NULL, customer_render_events),                                     \
      CUSTOMER_HOOK("ListPropertyRecords", NULL, NULL),

int object_build_event(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                       gw_resp *resp, gw_fail *f);
json_t *object_list_schema(void);

#define OBJECT_SVC "/events.object.v1.ObjectEventService/"
/* Get and Delete are the generic binding and rendering. */
#define OBJECT_HOOKS                                                                               \
  {.rpc = OBJECT_SVC "CreateEvent", .dialect = &gw_object, .build = object_build_event},           \
      {.rpc = OBJECT_SVC "UpdateEvent", .dialect = &gw_object, .build = object_build_event},       \
      {.rpc = OBJECT_SVC "ListEvents",                                                             \
       .dialect = &gw_object,                                                                      \
       .build = object_build_list,                                                                 \
       .render = object_render_list,                                                               \
       .resp_schema = object_list_schema},

/* ---- catalog (seed 002): one set of builders/renderers for the three kinds ---- */
int catalog_build_path_id(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_resources(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_render_delete(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int catalog_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f);
json_t *catalog_list_schema(void);
json_t *catalog_delete_schema(void);

#define CATALOG_SVC "/events.catalog.v1.EventCatalogService/"
#define CATALOG_HOOK(R_, B_, RENDER_, ...)                                                         \
  { .rpc = CATALOG_SVC R_, .dialect = &gw_catalog, .build = B_, .render = RENDER_, __VA_ARGS__ }
/* Create is the generic binding and rendering (the body into resource). */
#define CATALOG_KIND(ONE_, MANY_)                                                                  \
  CATALOG_HOOK("List" MANY_, NULL, catalog_render_list, .resp_schema = catalog_list_schema),       \
      CATALOG_HOOK("Get" ONE_, catalog_build_path_id, NULL),                                       \
      CATALOG_HOOK("Update" ONE_, catalog_build_update, NULL),                                     \
      CATALOG_HOOK("Delete" ONE_, catalog_build_path_id, catalog_render_delete,                    \
                   .resp_schema = catalog_delete_schema)
#define CATALOG_HOOKS                                                                              \
  CATALOG_KIND("EventCategory", "EventCategories"), CATALOG_KIND("Event", "Events"),               \
      CATALOG_KIND("EventProperty", "EventProperties"),                                            \
      CATALOG_HOOK("ListResources", catalog_build_resources, catalog_render_list,                  \
                   .resp_schema = catalog_list_schema),

int activity_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_render_event(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int activity_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f);
json_t *activity_event_schema(void);
json_t *activity_new_event_schema(void);
json_t *activity_list_schema(void);

#define ACTIVITY_SVC "/events.activity.v1.ActivityEventService/"
#define ACTIVITY_HOOK(R_, B_, RENDER_, ...)                                                        \
  { .rpc = ACTIVITY_SVC R_, .dialect = &gw_activity, .build = B_, .render = RENDER_, __VA_ARGS__ }
/* fields[event]: read by the JSON:API syntax, no request field. */
#define ACTIVITY_FIELDSET                                                                          \
  (const char *const[]) {                                                                          \
    "fields[event]", NULL                                                                          \
  }
#define ACTIVITY_HOOKS                                                                             \
  ACTIVITY_HOOK("CreateEvent", activity_build_create, activity_render_event,                       \
                .resp_schema = activity_event_schema, .body_schema = activity_new_event_schema),   \
      ACTIVITY_HOOK("ListEvents", activity_build_list, activity_render_list,                       \
                    .doc_query = ACTIVITY_FIELDSET, .resp_schema = activity_list_schema),          \
      ACTIVITY_HOOK("GetEvent", activity_build_get, activity_render_event,                         \
                    .doc_query = ACTIVITY_FIELDSET, .resp_schema = activity_event_schema),         \
      ACTIVITY_HOOK("UpdateEvent", activity_build_update, activity_render_event,                   \
                    .resp_schema = activity_event_schema, .body_schema = activity_event_schema),   \
      ACTIVITY_HOOK("DeleteEvent", activity_build_delete, NULL),

#endif
