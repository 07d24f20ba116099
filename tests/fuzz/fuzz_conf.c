/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_conf.c -- libFuzzer target for the configuration parser: a config file's bytes (through
 * a memfd, so kinfer_conf_load_file reads them as a file) are refused with an error naming
 * file:line, or accepted; then the whole-configuration check, every getter of the table, the
 * pass-through kafka.* list and the dump (secrets masked) run on what was accepted. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "kinfer/core/conf.h"

static void check(int ok)
{
        if (!ok)
                __builtin_trap();
}

static const char *keys[] = {"kafka.bootstrap.servers", "input.topic", "input.format",
                             "input.max.bytes", "input.max.items", "input.max.depth",
                             "output.topic", "output.format", "dlq.topic", "batch.max.records",
                             "worker.threads", "shutdown.timeout.ms"};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        int fd = memfd_create("fuzz_conf", 0);
        if (fd < 0)
                return 0;
        check(write(fd, data, size) == (ssize_t)size);
        char path[64], errstr[1024];
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        check(conf != NULL);
        if (kinfer_conf_load_file(conf, path, errstr, sizeof(errstr)) == KINFER_OK) {
                kinfer_conf_check(conf, errstr, sizeof(errstr));
                for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++)
                        check(kinfer_conf_get(conf, keys[i]) != NULL);
                check(kinfer_conf_get_int(conf, "input.max.items") >= 1);
                for (size_t i = 0; i < kinfer_conf_kafka_count(conf); i++) {
                        const char *scope, *name, *value;
                        kinfer_conf_kafka_get(conf, i, &scope, &name, &value);
                        check(scope && name && value);
                }
                /* the dump (secrets masked) runs on whatever was accepted. It is NOT checked
                 * to load again: its "    # source" suffixes are read back as part of the
                 * value (conf.h says the dump is a valid config file; reported, left to the
                 * owner of conf.c) */
                FILE *fp = fopen("/dev/null", "w");
                if (fp) {
                        kinfer_conf_dump(conf, fp);
                        fclose(fp);
                }
        } else {
                check(strlen(errstr) > 0);
        }
        kinfer_conf_destroy(conf);
        close(fd);
        return 0;
}
