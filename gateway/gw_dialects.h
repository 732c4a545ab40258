/* gw_dialects.h - each dialect's builders and renderers, as rows of the one
 * route table in gw_routes.c. */
#ifndef EVENTS_GW_DIALECTS_H
#define EVENTS_GW_DIALECTS_H

#include "gw.h"

int customer_build_create(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_create(const gw_req *req, const ProtobufCMessage *in,
                           const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int customer_build_list(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_list(const gw_req *req, const ProtobufCMessage *in,
                         const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int customer_build_get(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_get(const gw_req *req, const ProtobufCMessage *in,
                        const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);
int customer_build_records(const gw_req *req, ProtobufCMessage *in, gw_fail *f);
int customer_render_records(const gw_req *req, const ProtobufCMessage *in,
                            const ProtobufCMessage *out, gw_resp *resp, gw_fail *f);

extern const gw_qparam customer_list_query[];
extern const gw_qparam customer_get_query[];

#define CUSTOMER_BASE "/rest-api/enterprise-interface/v1.0"
#define CUSTOMER_SVC "/events.customer.v1.CustomerEventService/"
#define CUSTOMER_COMMON                                                                            \
  .dialect = &gw_customer, .service = &events__customer__v1__customer_event_service__descriptor,  \
  .resp_wrap = "data"
#define CUSTOMER_ROUTES                                                                            \
  {CUSTOMER_COMMON, .method = "POST", .tmpl = CUSTOMER_BASE "/events",                             \
   .rpc = CUSTOMER_SVC "CreateEvent", .build = customer_build_create,                              \
   .render = customer_render_create, .needs_body = 1, .summary = "Create a new event",             \
   .body_desc = &events__customer__v1__create_event_request__descriptor, .ok_status = 201,         \
   .resp_desc = &events__customer__v1__create_event_response__descriptor},                         \
      {CUSTOMER_COMMON, .method = "GET", .tmpl = CUSTOMER_BASE "/events",                          \
       .rpc = CUSTOMER_SVC "ListEvents", .build = customer_build_list,                             \
       .render = customer_render_list, .summary = "Get information about all events",              \
       .query = customer_list_query,                                                               \
       .resp_desc = &events__customer__v1__list_events_response__descriptor},                      \
      {CUSTOMER_COMMON, .method = "GET", .tmpl = CUSTOMER_BASE "/events/{event_id}",               \
       .rpc = CUSTOMER_SVC "GetEvent", .build = customer_build_get,                                \
       .render = customer_render_get, .summary = "Get information about a specific event",         \
       .query = customer_get_query, .resp_desc = &events__customer__v1__event__descriptor},        \
      {CUSTOMER_COMMON, .method = "GET",                                                           \
       .tmpl = CUSTOMER_BASE "/events/{event_id}/property-records",                                \
       .rpc = CUSTOMER_SVC "ListPropertyRecords", .build = customer_build_records,                 \
       .render = customer_render_records,                                                          \
       .summary = "Get a list of all property records of an event",                                \
       .resp_desc = &events__customer__v1__list_property_records_response__descriptor},

#endif
