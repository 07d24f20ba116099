/* SPDX-License-Identifier: Apache-2.0 */
/* cli_registry.c -- connecting to the registry and parsing NAME[:VERSION] for the CLI. */
#include "cli/cli_registry.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"

kinfer_registry_t *cli_registry_connect(const char *cmd, const char *conninfo)
{
        char errstr[512];
        kinfer_registry_t *reg = kinfer_registry_new(conninfo, errstr, sizeof(errstr));
        if (!reg)
                cli_error(cmd, "%s%s", errstr,
                          conninfo ? "" : " (set --pg CONNINFO or the PG* environment variables)");
        return reg;
}

int cli_parse_model_ref(const char *cmd, const char *ref, int allow_latest, char *name,
                        size_t name_size, int32_t *versionp)
{
        const char *colon = strrchr(ref, ':');
        *versionp = 0;
        if (!colon) {
                if (!allow_latest || !*ref) {
                        cli_error(cmd, "expected NAME:VERSION, got \"%s\"", ref);
                        return -1;
                }
                snprintf(name, name_size, "%s", ref);
                return 0;
        }
        if (colon == ref || (size_t)(colon - ref) >= name_size) {
                cli_error(cmd, "expected NAME:VERSION, got \"%s\"", ref);
                return -1;
        }
        char *end;
        errno = 0;
        long v = strtol(colon + 1, &end, 10);
        if (errno || end == colon + 1 || *end || v < 1 || v > 0x7fffffff) {
                cli_error(cmd, "\"%s\": the version must be a whole number >= 1", ref);
                return -1;
        }
        snprintf(name, name_size, "%.*s", (int)(colon - ref), ref);
        *versionp = (int32_t)v;
        return 0;
}
