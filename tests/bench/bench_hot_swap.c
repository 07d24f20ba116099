/* SPDX-License-Identifier: Apache-2.0 */
/* bench_hot_swap.c -- the operator side of the hot-swap benchmark: N activations of a
 * deployment through kinfer.activate(), cycling over the given versions, one every
 * INTERVAL ms. Prints one line per switch: the wall-clock time (Unix ms) right after the
 * activating transaction committed -- the moment PostgreSQL sends the NOTIFY -- and the
 * version activated. tests/bench/bench_hot_swap.sh joins it with the results' versions.
 *
 *   bench_hot_swap CONNINFO DEPLOYMENT MODEL N INTERVAL_MS VERSION...
 */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "kinfer/registry/registry.h"

static long long wall_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
        if (argc < 7) {
                fprintf(
                    stderr,
                    "usage: bench_hot_swap CONNINFO DEPLOYMENT MODEL N INTERVAL_MS VERSION...\n");
                return 2;
        }
        char errstr[512], summary[256];
        kinfer_registry_t *reg = kinfer_registry_new(argv[1], errstr, sizeof(errstr));
        if (!reg) {
                fprintf(stderr, "bench_hot_swap: %s\n", errstr);
                return 1;
        }
        int n = atoi(argv[4]), interval = atoi(argv[5]), nv = argc - 6;
        for (int i = 0; i < n; i++) {
                struct timespec ts = {interval / 1000, (long)(interval % 1000) * 1000000L};
                nanosleep(&ts, NULL);
                int version = atoi(argv[6 + i % nv]);
                if (kinfer_registry_activate(reg, argv[2], argv[3], version, "bench", summary,
                                             sizeof(summary), errstr, sizeof(errstr))) {
                        fprintf(stderr, "bench_hot_swap: %s\n", errstr);
                        kinfer_registry_destroy(reg);
                        return 1;
                }
                printf("%lld\t%d\n", wall_ms(), version);
                fflush(stdout);
        }
        kinfer_registry_destroy(reg);
        return 0;
}
