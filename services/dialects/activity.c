/* activity.c - the activity dialect's handlers (not built yet: every method answers
 * UNIMPLEMENTED until they are). */
#include "dialects.h"
#include "events/activity/v1/activity.pb-c.h"

static Events__Activity__V1__ActivityEventService_Service service = {
    .base = EVENTS__ACTIVITY__V1__ACTIVITY_EVENT_SERVICE__BASE_INIT,
};

const dialect activity_dialect = {
    .service = {&events__activity__v1__activity_event_service__descriptor, &service.base, 0},
};
