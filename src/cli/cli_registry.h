/* SPDX-License-Identifier: Apache-2.0 */
/* cli_registry.h -- helpers shared by the registry subcommands (model, activate, rollback,
 * deployment, migrate): connecting with --pg or PG*, and NAME[:VERSION] references. */
#ifndef KINFER_CLI_REGISTRY_H
#define KINFER_CLI_REGISTRY_H

#include <stdint.h>

#include "kinfer/registry/registry.h"

/* Connect with @p conninfo (NULL: libpq's PG* environment). On failure prints an error
 * for @p cmd and returns NULL. */
kinfer_registry_t *cli_registry_connect(const char *cmd, const char *conninfo);

/* Split "NAME:VERSION" (or "NAME" when @p allow_latest: version 0 = the latest) into @p name
 * and @p versionp. Prints an error for @p cmd and returns -1 when malformed. */
int cli_parse_model_ref(const char *cmd, const char *ref, int allow_latest, char *name,
                        size_t name_size, int32_t *versionp);

#endif
