/* catalog.h - what the catalog dialect's two files share: the three kinds
 * of resource, each stored in its own collection. */
#ifndef EVENTS_CATALOG_H
#define EVENTS_CATALOG_H

#include "events/catalog/v1/catalog.pb-c.h"
#include "rpc.h"

#define ID_LEN 32
#define COLL_CATEGORIES "catalog_event_categories"
#define COLL_EVENTS "catalog_events"
#define COLL_PROPERTIES "catalog_event_properties"

typedef Events__Catalog__V1__Resource Resource;

typedef struct kind {
  Events__Catalog__V1__EntityType type;
  const char *name; /* for messages */
  const char *coll;
  const struct kind *parent; /* NULL: top level */
  const char *ref;           /* member holding this kind's id in descendants */
  const char *id_field;      /* the request field naming one (get, update, delete) */
} kind;

enum { CATEGORY, EVENT, PROPERTY, N_KINDS };

/* Indexed by the enum above. */
extern const kind catalog_kinds[N_KINDS];

/* A UUID as 32 hex digits or in the dashed 8-4-4-4-12 form, either case,
 * written to out as 32 lowercase hex digits; 0 if s is neither. */
int catalog_norm_uuid(const char *s, char out[ID_LEN + 1]);

/* ListResources (catalog_resources.c). */
void catalog_list_resources(Events__Catalog__V1__EventCatalogService_Service *svc,
                            const Events__Catalog__V1__ListResourcesRequest *in,
                            Events__Catalog__V1__ListResourcesResponse_Closure done, void *call);

/* WatchResources (catalog_resources.c): ListResources' filter on the feed. */
void catalog_watch_resources(Events__Catalog__V1__EventCatalogService_Service *svc,
                             const Events__Catalog__V1__WatchResourcesRequest *in,
                             Events__Catalog__V1__WatchResourcesResponse_Closure done, void *call);

#endif
