/* The API certificate of this node: loaded from <state_dir>/tls, made on first start. */
#pragma once

#include "daemon/herdd.h"

#include <stdbool.h>

/* Load (or make) the node's API certificate into @d. */
bool herdd_tls_load(herdd *d, GError **error);
