/* gw_dialects.h - each dialect's builders and renderers, as rows of the one
 * route table in gw_routes.c. */
#ifndef EVENTS_GW_DIALECTS_H
#define EVENTS_GW_DIALECTS_H

#include "gw.h"

#define CUSTOMER_ROUTES

#endif
