/* rpc_health.c - the standard health service, answered without credentials:
 * SERVING unless draining or the store is unreachable; the service name
 * "liveness" only says the process answers. Watch streams live in
 * rpc_server.c, the only place that holds calls open. */
#include "rpc_health.h"

#include <string.h>

#include "grpc/health/v1/health.pb-c.h"
#include "store_live.h"

static const char *const *served;
static size_t n_served;
static volatile int draining;

int rpc_health_status(const char *service) {
  /* "liveness": the process answers (a liveness probe must not restart
   * pods for a store outage or a drain). */
  if (strcmp(service, "liveness") == 0)
    return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
  int known = service[0] == '\0';
  for (size_t i = 0; i < n_served && !known; i++)
    known = strcmp(service, served[i]) == 0;
  if (!known) return GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN;
  return draining || !store_live_up()
             ? GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__NOT_SERVING
             : GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVING;
}

static void check(Grpc__Health__V1__Health_Service *svc,
                  const Grpc__Health__V1__HealthCheckRequest *in,
                  Grpc__Health__V1__HealthCheckResponse_Closure done, void *call) {
  (void)svc;
  Grpc__Health__V1__HealthCheckResponse out = GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__INIT;
  int status = rpc_health_status(in->service);
  if (status == GRPC__HEALTH__V1__HEALTH_CHECK_RESPONSE__SERVING_STATUS__SERVICE_UNKNOWN) {
    rpc_fail(call, GRPC_STATUS_NOT_FOUND, "unknown service \"%s\"", in->service);
    done(NULL, call);
    return;
  }
  out.status = (Grpc__Health__V1__HealthCheckResponse__ServingStatus)status;
  done(&out, call);
}

static Grpc__Health__V1__Health_Service health = {
    .base = GRPC__HEALTH__V1__HEALTH__BASE_INIT,
    .check = check,
};

rpc_service_def rpc_health_def(const char *const *names, size_t n) {
  served = names;
  n_served = n;
  return (rpc_service_def){&grpc__health__v1__health__descriptor, &health.base, 1};
}

void rpc_health_set_draining(void) {
  draining = 1;
  rpc_watch_notify();
}
