/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_model.c -- libFuzzer target: kinfer_model_load_mem() on arbitrary bytes must refuse or
 * accept, never crash; an accepted model must classify a text. The harness repairs the
 * header's size and content checksum first, so mutations reach the structural checks behind
 * them instead of all dying at the checksum. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/runtime/runtime.h"
#include "kinfer/core/sha256.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        uint8_t *buf = malloc(size ? size : 1);
        if (!buf)
                return 0;
        memcpy(buf, data, size);
        if (size >= 64 && (data[12] & 1) == 0) { /* flags bit 0 clear: repair the header */
                uint64_t sz = size;
                memcpy(buf + 16, &sz, 8);
                kinfer_sha256(buf + 64, size - 64, buf + 24);
        }
        char errstr[512];
        kinfer_model_t *m = kinfer_model_load_mem(buf, size, errstr, sizeof(errstr));
        free(buf);
        if (!m)
                return 0;
        kinfer_runtime_t *rt = kinfer_runtime_new(2, errstr, sizeof(errstr));
        const char *texts[2] = {"a python module for parsing files", "Ünïcode ﬁle 中文"};
        size_t lens[2] = {strlen(texts[0]), strlen(texts[1])};
        kinfer_prediction_t out[2];
        if (rt)
                kinfer_runtime_classify(rt, m, texts, lens, 2, 3, out, errstr, sizeof(errstr));
        kinfer_runtime_destroy(rt);
        kinfer_model_release(m);
        return 0;
}
