/* gw_routes.c - the one route table: method + path template -> gRPC method
 * and the dialect's request builder and response renderer. */
#include "gw.h"
#include "gw_dialects.h"

#include "events/activity/v1/activity.pb-c.h"
#include "events/catalog/v1/catalog.pb-c.h"
#include "events/customer/v1/customer.pb-c.h"
#include "events/object/v1/object.pb-c.h"
#include "grpc/health/v1/health.pb-c.h"

#define LOCAL(m, path, fn, what)                                                                   \
  { .method = m, .tmpl = path, .dialect = &gw_plain, .local = fn, .summary = what }

static const gw_route routes[] = {
    LOCAL("GET", "/healthz", gw_healthz, "Liveness: the gateway process is up"),
    {.method = "GET",
     .tmpl = "/readyz",
     .dialect = &gw_plain,
     .rpc = "/grpc.health.v1.Health/Check",
     .service = &grpc__health__v1__health__descriptor,
     .build = gw_readyz_build,
     .render = gw_readyz_render,
     .render_failures = 1,
     .timeout_ms = 2000,
     .summary = "Readiness: the service answers its health check SERVING"},
    LOCAL("GET", "/openapi.json", gw_openapi, "This OpenAPI document"),
    LOCAL("GET", "/metrics", gw_metrics, "Prometheus metrics"),
    CUSTOMER_ROUTES CATALOG_ROUTES OBJECT_ROUTES ACTIVITY_ROUTES};

const gw_route *gw_routes(size_t *n) {
  *n = sizeof routes / sizeof *routes;
  return routes;
}
