/* gw_dialects.h - each dialect's builders and renderers, as rows of the one
 * route table in gw_routes.c. */
#ifndef EVENTS_GW_DIALECTS_H
#define EVENTS_GW_DIALECTS_H

#include "gw.h"

int customer_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_create(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int customer_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f);
int customer_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_get(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f);
int customer_build_records(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_records(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);

extern const gw_qparam customer_list_query[];
extern const gw_qparam customer_get_query[];

#define CUSTOMER_BASE "/rest-api/enterprise-interface/v1.0"
#define CUSTOMER_SVC "/events.customer.v1.CustomerEventService/"
#define CUSTOMER_COMMON                                                                            \
  .dialect = &gw_customer, .service = &events__customer__v1__customer_event_service__descriptor,   \
  .resp_wrap = "data"
#define CUSTOMER_ROUTES                                                                            \
  {CUSTOMER_COMMON,                                                                                \
   .method = "POST",                                                                               \
   .tmpl = CUSTOMER_BASE "/events",                                                                \
   .rpc = CUSTOMER_SVC "CreateEvent",                                                              \
   .build = customer_build_create,                                                                 \
   .render = customer_render_create,                                                               \
   .needs_body = 1,                                                                                \
   .summary = "Create a new event",                                                                \
   .body_desc = &events__customer__v1__create_event_request__descriptor,                           \
   .ok_status = 201,                                                                               \
   .resp_desc = &events__customer__v1__create_event_response__descriptor},                         \
      {CUSTOMER_COMMON,                                                                            \
       .method = "GET",                                                                            \
       .tmpl = CUSTOMER_BASE "/events",                                                            \
       .rpc = CUSTOMER_SVC "ListEvents",                                                           \
       .build = customer_build_list,                                                               \
       .render = customer_render_list,                                                             \
       .summary = "Get information about all events",                                              \
       .query = customer_list_query,                                                               \
       .resp_desc = &events__customer__v1__list_events_response__descriptor},                      \
      {CUSTOMER_COMMON,                                                                            \
       .method = "GET",                                                                            \
       .tmpl = CUSTOMER_BASE "/events/{event_id}",                                                 \
       .rpc = CUSTOMER_SVC "GetEvent",                                                             \
       .build = customer_build_get,                                                                \
       .render = customer_render_get,                                                              \
       .summary = "Get information about a specific event",                                        \
       .query = customer_get_query,                                                                \
       .resp_desc = &events__customer__v1__event__descriptor},                                     \
      {CUSTOMER_COMMON,                                                                            \
       .method = "GET",                                                                            \
       .tmpl = CUSTOMER_BASE "/events/{event_id}/property-records",                                \
       .rpc = CUSTOMER_SVC "ListPropertyRecords",                                                  \
       .build = customer_build_records,                                                            \
       .render = customer_render_records,                                                          \
       .summary = "Get a list of all property records of an event",                                \
       .resp_desc = &events__customer__v1__list_property_records_response__descriptor},

int object_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_build_replace(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int object_render_event(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f);
int object_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                       gw_resp *resp, gw_fail *f);
json_t *object_list_schema(void);
extern const gw_qparam object_list_query[];

#define OBJECT_EVENTS "/v1/objects/{objectId}/events"
#define OBJECT_SVC "/events.object.v1.ObjectEventService/"
#define OBJECT_COMMON                                                                              \
  .dialect = &gw_object, .service = &events__object__v1__object_event_service__descriptor
#define OBJECT_EVENT_ROUTE(M_, P_, R_, B_, BODY_, WHAT_)                                           \
  {                                                                                                \
    OBJECT_COMMON, .method = M_, .tmpl = OBJECT_EVENTS P_, .rpc = OBJECT_SVC R_, .build = B_,      \
                   .render = object_render_event, .needs_body = BODY_, .summary = WHAT_,           \
                   .body_desc = BODY_ ? &events__object__v1__event__descriptor : NULL,             \
                   .resp_desc = &events__object__v1__event__descriptor                             \
  }
#define OBJECT_ROUTES                                                                              \
  OBJECT_EVENT_ROUTE("POST", "", "CreateEvent", object_build_create, 1,                            \
                     "Create an event of an object"),                                              \
      {OBJECT_COMMON,                                                                              \
       .method = "GET",                                                                            \
       .tmpl = OBJECT_EVENTS,                                                                      \
       .rpc = OBJECT_SVC "ListEvents",                                                             \
       .build = object_build_list,                                                                 \
       .render = object_render_list,                                                               \
       .summary = "List the events of an object, oldest first",                                    \
       .query = object_list_query,                                                                 \
       .resp_schema = object_list_schema},                                                         \
      OBJECT_EVENT_ROUTE("GET", "/{eventId}", "GetEvent", object_build_get, 0, "Get an event"),    \
      OBJECT_EVENT_ROUTE("PUT", "/{eventId}", "UpdateEvent", object_build_replace, 1,              \
                         "Replace the writable fields of an event"),                               \
      OBJECT_EVENT_ROUTE("DELETE", "/{eventId}", "DeleteEvent", object_build_delete, 0,            \
                         "Delete an event"),

/* ---- catalog (seed 002): one set of builders/renderers for the three kinds ---- */
int catalog_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int catalog_render_create(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int catalog_render_resource(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int catalog_render_delete(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int catalog_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                        gw_resp *resp, gw_fail *f);
json_t *catalog_list_schema(void);
json_t *catalog_delete_schema(void);
extern const gw_qparam catalog_category_query[];
extern const gw_qparam catalog_list_query[];

#define CATALOG_BASE "/api/v1/event"
#define CATALOG_SVC "/events.catalog.v1.EventCatalogService/"
#define CATALOG_COMMON                                                                             \
  .dialect = &gw_catalog, .service = &events__catalog__v1__event_catalog_service__descriptor
#define CATALOG_LIST(P_, R_, Q_, WHAT_)                                                            \
  {                                                                                                \
    CATALOG_COMMON, .method = "GET", .tmpl = CATALOG_BASE P_, .rpc = CATALOG_SVC R_,               \
                    .build = catalog_build_list, .render = catalog_render_list, .summary = WHAT_,  \
                    .query = Q_, .resp_schema = catalog_list_schema                                \
  }
#define CATALOG_CREATE(P_, R_, WHAT_)                                                              \
  {                                                                                                \
    CATALOG_COMMON, .method = "POST", .tmpl = CATALOG_BASE P_, .rpc = CATALOG_SVC R_,              \
                    .build = catalog_build_create, .render = catalog_render_create,                \
                    .needs_body = 1, .summary = WHAT_,                                             \
                    .body_desc = &events__catalog__v1__resource__descriptor, .ok_status = 201,     \
                    .resp_desc = &events__catalog__v1__resource__descriptor                        \
  }
#define CATALOG_GET(P_, R_, WHAT_)                                                                 \
  {                                                                                                \
    CATALOG_COMMON, .method = "GET", .tmpl = CATALOG_BASE P_, .rpc = CATALOG_SVC R_,               \
                    .build = catalog_build_get, .render = catalog_render_resource,                 \
                    .summary = WHAT_, .resp_desc = &events__catalog__v1__resource__descriptor      \
  }
#define CATALOG_PATCH(P_, R_, WHAT_)                                                               \
  {                                                                                                \
    CATALOG_COMMON, .method = "PATCH", .tmpl = CATALOG_BASE P_, .rpc = CATALOG_SVC R_,             \
                    .build = catalog_build_update, .render = catalog_render_resource,              \
                    .needs_body = 1, .summary = WHAT_,                                             \
                    .body_desc = &events__catalog__v1__resource__descriptor,                       \
                    .resp_desc = &events__catalog__v1__resource__descriptor                        \
  }
#define CATALOG_DELETE(P_, R_, WHAT_)                                                              \
  {                                                                                                \
    CATALOG_COMMON, .method = "DELETE", .tmpl = CATALOG_BASE P_, .rpc = CATALOG_SVC R_,            \
                    .build = catalog_build_delete, .render = catalog_render_delete,                \
                    .summary = WHAT_, .resp_schema = catalog_delete_schema                         \
  }
#define CATALOG_ROUTES                                                                             \
  CATALOG_LIST("/category", "ListEventCategories", catalog_category_query,                         \
               "List the event categories of the workspace"),                                      \
      CATALOG_CREATE("/category", "CreateEventCategory", "Create an event category"),              \
      CATALOG_GET("/category/{event_category_id}", "GetEventCategory",                             \
                  "Get an event category by id"),                                                  \
      CATALOG_LIST("/events", "ListEvents", catalog_list_query, "List events"),                    \
      CATALOG_CREATE("/events", "CreateEvent", "Create an event in a category"),                   \
      CATALOG_GET("/events/{event_id}", "GetEvent", "Get an event"),                               \
      CATALOG_PATCH("/events/{event_id}", "UpdateEvent", "Update an event's metadata"),            \
      CATALOG_DELETE("/events/{event_id}", "DeleteEvent", "Delete an event and its properties"),   \
      CATALOG_LIST("/event_properties", "ListEventProperties", catalog_list_query,                 \
                   "List event properties"),                                                       \
      CATALOG_CREATE("/event_properties", "CreateEventProperty",                                   \
                     "Create an event property of an event"),                                      \
      CATALOG_GET("/event_properties/{event_property_id}", "GetEventProperty",                     \
                  "Get an event property"),                                                        \
      CATALOG_PATCH("/event_properties/{event_property_id}", "UpdateEventProperty",                \
                    "Update an event property's metadata"),                                        \
      CATALOG_DELETE("/event_properties/{event_property_id}", "DeleteEventProperty",               \
                     "Delete an event property"),

int activity_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_update(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_build_delete(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int activity_render_event(const gw_req *req, const ProtobufCMessage *in,
                          const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int activity_render_list(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                         gw_resp *resp, gw_fail *f);
int activity_render_delete(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
json_t *activity_event_schema(void);
json_t *activity_list_schema(void);
extern const gw_qparam activity_list_query[];
extern const gw_qparam activity_get_query[];

#define ACTIVITY_EVENTS "/api/v2/events"
#define ACTIVITY_SVC "/events.activity.v1.ActivityEventService/"
#define ACTIVITY_COMMON                                                                            \
  .dialect = &gw_activity, .service = &events__activity__v1__activity_event_service__descriptor
#define ACTIVITY_ROUTES                                                                            \
  {ACTIVITY_COMMON,                                                                                \
   .method = "POST",                                                                               \
   .tmpl = ACTIVITY_EVENTS,                                                                        \
   .rpc = ACTIVITY_SVC "CreateEvent",                                                              \
   .build = activity_build_create,                                                                 \
   .render = activity_render_event,                                                                \
   .needs_body = 1,                                                                                \
   .summary = "Create an event",                                                                   \
   .ok_status = 201,                                                                               \
   .resp_schema = activity_event_schema},                                                          \
      {ACTIVITY_COMMON,                                                                            \
       .method = "GET",                                                                            \
       .tmpl = ACTIVITY_EVENTS,                                                                    \
       .rpc = ACTIVITY_SVC "ListEvents",                                                           \
       .build = activity_build_list,                                                               \
       .render = activity_render_list,                                                             \
       .summary = "List events (filters, sort, cursor pages, sparse fieldsets)",                   \
       .query = activity_list_query,                                                               \
       .resp_schema = activity_list_schema},                                                       \
      {ACTIVITY_COMMON,                                                                            \
       .method = "GET",                                                                            \
       .tmpl = ACTIVITY_EVENTS "/{id}",                                                            \
       .rpc = ACTIVITY_SVC "GetEvent",                                                             \
       .build = activity_build_get,                                                                \
       .render = activity_render_event,                                                            \
       .summary = "Get an event",                                                                  \
       .query = activity_get_query,                                                                \
       .resp_schema = activity_event_schema},                                                      \
      {ACTIVITY_COMMON,                                                                            \
       .method = "PATCH",                                                                          \
       .tmpl = ACTIVITY_EVENTS "/{id}",                                                            \
       .rpc = ACTIVITY_SVC "UpdateEvent",                                                          \
       .build = activity_build_update,                                                             \
       .render = activity_render_event,                                                            \
       .needs_body = 1,                                                                            \
       .summary = "Update an event's writable attributes and relationships",                       \
       .resp_schema = activity_event_schema},                                                      \
      {ACTIVITY_COMMON,                                                                            \
       .method = "DELETE",                                                                         \
       .tmpl = ACTIVITY_EVENTS "/{id}",                                                            \
       .rpc = ACTIVITY_SVC "DeleteEvent",                                                          \
       .build = activity_build_delete,                                                             \
       .render = activity_render_delete,                                                           \
       .summary = "Delete an event",                                                               \
       .ok_status = 204},

#endif
