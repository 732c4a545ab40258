/* gw_local.c - endpoints the gateway answers itself: liveness, readiness
 * (the service's health check, as an RPC route) and the OpenAPI document. */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "gw.h"
#include "metrics.h"

void gw_healthz(const gw_req *req, gw_resp *resp) {
  (void)req;
  resp->status = 200;
  resp->body = json_pack("{s:s}", "status", "ok");
}

int gw_readyz_build(const gw_req *req, ProtobufCMessage *in, gw_fail *f) {
  (void)req;
  (void)in; /* the whole server */
  (void)f;
  return 0;
}

/* Ready only when the service says SERVING; why not is for the operator's
 * logs and metrics, not for whoever can reach this public path. */
int gw_readyz_render(const gw_req *req, const ProtobufCMessage *in, const ProtobufCMessage *out,
                     gw_resp *resp, gw_fail *f) {
  (void)req;
  (void)in;
  (void)f;
  int serving = out && ((const Grpc__Health__V1__HealthCheckResponse *)out)->status ==
                           GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  resp->status = serving ? 200 : 503;
  resp->body = json_pack("{s:s}", "status", serving ? "ready" : "unavailable");
  if (!serving) resp->retry_after = 1;
  return 0;
}

void gw_metrics(const gw_req *req, gw_resp *resp) {
  (void)req;
  resp->status = 200;
  resp->text = metrics_render();
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
