/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_model.c -- libFuzzer target: kinfer_model_load_mem() on arbitrary bytes must refuse or
 * accept, never crash; an accepted model must classify texts (one whose NFKD expands). The harness repairs the
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
        kinfer_runtime_t *rt = kinfer_runtime_new(3, errstr, sizeof(errstr));
        /* the third text expands 6-fold under NFKD (U+FDFA is 18 code points): whatever
         * featurizer settings the model holds, the runtime must not write past its buffers */
        static char fdfa[3 * 200 + 1];
        for (int i = 0; i < 200; i++)
                memcpy(fdfa + 3 * i, "\xef\xb7\xba", 3);
        const char *texts[3] = {"a python module for parsing files", "Ünïcode ﬁle 中文", fdfa};
        size_t lens[3] = {strlen(texts[0]), strlen(texts[1]), 3 * 200};
        kinfer_prediction_t out[3];
        if (rt)
                kinfer_runtime_classify(rt, m, texts, lens, 3, 3, out, errstr, sizeof(errstr));
        kinfer_runtime_destroy(rt);
        kinfer_model_release(m);
        return 0;
}
