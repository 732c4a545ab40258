/* object.c - the object dialect's handlers (not built yet: every method answers
 * UNIMPLEMENTED until they are). */
#include "dialects.h"
#include "events/object/v1/object.pb-c.h"

static Events__Object__V1__ObjectEventService_Service service = {
    .base = EVENTS__OBJECT__V1__OBJECT_EVENT_SERVICE__BASE_INIT,
};

const dialect object_dialect = {
    .service = {&events__object__v1__object_event_service__descriptor, &service.base, 0},
};
