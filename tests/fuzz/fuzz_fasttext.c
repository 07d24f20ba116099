/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_fasttext.c -- libFuzzer target: kinfer_fasttext_import() on arbitrary bytes (a fastText
 * .bin/.ftz) must refuse or convert, never crash or allocate past its bound (64 MB of decoded
 * tensors here); a converted model must load and classify texts like any other. Seeds: small
 * .bin and .ftz models tests/fuzz/run.sh trains with the fasttext CLI. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/runtime/runtime.h"
#include "kinfer/train/fasttext.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        kinfer_ft_import_opts_t o = {.name = "fuzz", .source_name = "fuzz.bin", .max_bytes = 64u << 20};
        uint8_t *buf = NULL;
        size_t len = 0;
        char errstr[512];
        if (kinfer_fasttext_import(data, size, &o, &buf, &len, errstr, sizeof(errstr)))
                return 0;
        kinfer_model_t *m = kinfer_model_load_mem(buf, len, errstr, sizeof(errstr));
        free(buf);
        if (!m)
                return 0;
        kinfer_runtime_t *rt = kinfer_runtime_new(4, errstr, sizeof(errstr));
        const char *texts[4] = {"a python module for parsing files", "", "__label__x </s> two\nlines \xff\xfe",
                                "Ünïcode ﬁle 中文 <s>"};
        size_t lens[4];
        for (int i = 0; i < 4; i++)
                lens[i] = strlen(texts[i]);
        kinfer_prediction_t out[4];
        if (rt)
                kinfer_runtime_classify(rt, m, texts, lens, 4, 5, out, errstr, sizeof(errstr));
        kinfer_runtime_destroy(rt);
        kinfer_model_release(m);
        return 0;
}
