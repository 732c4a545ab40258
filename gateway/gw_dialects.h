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

#define CUSTOMER_BASE "/rest-api/enterprise-interface/v1.0"
#define CUSTOMER_SVC "/events.customer.v1.CustomerEventService/"
#define CUSTOMER_ROUTE(M_, P_, R_, B_, W_, BODY_, WHAT_)                                          \
  {.method = M_,                                                                                   \
   .tmpl = CUSTOMER_BASE P_,                                                                       \
   .dialect = &gw_customer,                                                                        \
   .rpc = CUSTOMER_SVC R_,                                                                         \
   .service = &events__customer__v1__customer_event_service__descriptor,                          \
   .build = B_,                                                                                    \
   .render = W_,                                                                                   \
   .needs_body = BODY_,                                                                            \
   .summary = WHAT_}
#define CUSTOMER_ROUTES                                                                            \
  CUSTOMER_ROUTE("POST", "/events", "CreateEvent", customer_build_create, customer_render_create,  \
                 1, "Create a new event"),                                                         \
      CUSTOMER_ROUTE("GET", "/events", "ListEvents", customer_build_list, customer_render_list, 0, \
                     "Get information about all events"),                                          \
      CUSTOMER_ROUTE("GET", "/events/{event_id}", "GetEvent", customer_build_get,                  \
                     customer_render_get, 0, "Get information about a specific event"),           \
      CUSTOMER_ROUTE("GET", "/events/{event_id}/property-records", "ListPropertyRecords",          \
                     customer_build_records, customer_render_records, 0,                           \
                     "Get a list of all property records of an event"),

#endif
