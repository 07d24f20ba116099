/* SPDX-License-Identifier: Apache-2.0 */
/* embed_classify.c -- what an application that only classifies needs: the runtime and nothing
 * else. Linked with kinfer_runtime alone; tests/unit/test_layering.sh checks its link line
 * (no Kafka, Avro, JSON, PostgreSQL or model writer) and that it answers as `kinfer predict`.
 *
 *   embed_classify MODEL < texts     one "LABEL<TAB>SCORE" line per input line
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/model/model.h"
#include "kinfer/runtime/runtime.h"

int main(int argc, char **argv)
{
        if (argc != 2) {
                fprintf(stderr, "usage: embed_classify MODEL < texts\n");
                return 2;
        }
        char err[512];
        kinfer_model_t *model = kinfer_model_load_file(argv[1], err, sizeof(err));
        if (!model) {
                fprintf(stderr, "embed_classify: %s\n", err);
                return 1;
        }
        kinfer_runtime_t *rt = kinfer_runtime_new(1, err, sizeof(err));
        if (!rt) {
                fprintf(stderr, "embed_classify: %s\n", err);
                kinfer_model_release(model);
                return 1;
        }
        char *line = NULL;
        size_t cap = 0;
        ssize_t len;
        int status = 0;
        while ((len = getline(&line, &cap, stdin)) >= 0) {
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        len--;
                const char *text = line;
                size_t n = (size_t)len;
                kinfer_prediction_t pred;
                if (kinfer_runtime_classify(rt, model, &text, &n, 1, 1, &pred, err, sizeof(err))) {
                        fprintf(stderr, "embed_classify: %s\n", err);
                        status = 1;
                        break;
                }
                printf("%s\t%.6f\n", kinfer_model_label(model, pred.label[0]), pred.prob[0]);
        }
        free(line);
        kinfer_runtime_destroy(rt);
        kinfer_model_release(model);
        return status;
}
