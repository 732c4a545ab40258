/* registry.c - the list of dialects and the store schema they add up to. */
#include "dialects.h"

static const dialect *const all[] = {&activity_dialect, &customer_dialect, &catalog_dialect,
                                     &object_dialect};

const dialect *const *dialects_all(size_t *n) {
  *n = sizeof all / sizeof *all;
  return all;
}

const store_schema *dialects_schema(void) {
  static store_collection colls[16];
  static store_schema schema = {colls, 0};
  if (schema.n_collections == 0) {
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
      for (size_t j = 0; j < all[i]->n_collections; j++)
        colls[schema.n_collections++] = all[i]->collections[j];
  }
  return &schema;
}
