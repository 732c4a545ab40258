/* customer.c - the customer dialect's handlers (not built yet: every method answers
 * UNIMPLEMENTED until they are). */
#include "dialects.h"
#include "events/customer/v1/customer.pb-c.h"

static Events__Customer__V1__CustomerEventService_Service service = {
    .base = EVENTS__CUSTOMER__V1__CUSTOMER_EVENT_SERVICE__BASE_INIT,
};

const dialect customer_dialect = {
    .service = {&events__customer__v1__customer_event_service__descriptor, &service.base, 0},
};
