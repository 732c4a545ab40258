/* gw_local.c - endpoints the gateway answers itself: liveness, readiness
 * (the service's health check) and the OpenAPI document. */
#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "gw.h"
#include "metrics.h"

void gw_healthz(const gw_req *req, gw_resp *resp) {
  (void)req;
  resp->status = 200;
  resp->body = json_pack("{s:s}", "status", "ok");
}

void gw_readyz(const gw_req *req, gw_resp *resp) {
  Grpc__Health__V1__HealthCheckRequest in = GRPC__HEALTH__V1__HEALTH_CHECK_REQUEST__INIT;
  gw_rpc_result res;
  req->call("/grpc.health.v1.Health/Check", req, &in.base,
            &grpc__health__v1__health_check_response__descriptor, 2000, &res);
  int serving = res.code == GRPC_STATUS_OK &&
                ((Grpc__Health__V1__HealthCheckResponse *)res.response)->status ==
                    GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  resp->status = serving ? 200 : 503;
  resp->body = json_pack("{s:s}", "status", serving ? "ready" : "unavailable");
  if (!serving && res.code != GRPC_STATUS_OK)
    json_object_set_new(resp->body, "detail",
                        json_string(gw_public_message(res.code, res.message)));
  gw_rpc_result_clear(&res);
}

void gw_metrics(const gw_req *req, gw_resp *resp) {
  (void)req;
  resp->status = 200;
  resp->text = metrics_render();
  resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}
