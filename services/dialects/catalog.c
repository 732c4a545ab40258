/* catalog.c - the catalog dialect's handlers (not built yet: every method answers
 * UNIMPLEMENTED until they are). */
#include "dialects.h"
#include "events/catalog/v1/catalog.pb-c.h"

static Events__Catalog__V1__EventCatalogService_Service service = {
    .base = EVENTS__CATALOG__V1__EVENT_CATALOG_SERVICE__BASE_INIT,
};

const dialect catalog_dialect = {
    .service = {&events__catalog__v1__event_catalog_service__descriptor, &service.base, 0},
};
