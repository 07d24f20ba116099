/* SPDX-License-Identifier: Apache-2.0 */
/* make_test_models.c -- write a lineage chain of tiny valid model files for the CLI tests:
 * DIR/train.kinf -> quantize.kinf -> prune.kinf -> distill.kinf (each naming its parent's
 * sha256 in META.lineage), DIR/train2.kinf (a second version), DIR/spare.kinf (an unrelated
 * model) and DIR/corrupt.kinf (one flipped bit). Uses the core's model writer, not the trainer, so
 * it runs in milliseconds. */
#include "pg_test_util.h"

static int write_bytes(const char *dir, const char *file, const uint8_t *bytes, size_t len)
{
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", dir, file);
        FILE *fp = fopen(path, "wb");
        if (!fp || fwrite(bytes, 1, len, fp) != len) {
                perror(path);
                if (fp)
                        fclose(fp);
                return -1;
        }
        return fclose(fp);
}

int main(int argc, char **argv)
{
        (void)test_passed; /* the harness is not used here; only the model helpers are */
        (void)test_failed;
        (void)test_cur_failed;
        if (argc != 2) {
                fprintf(stderr, "usage: make_test_models DIR\n");
                return 2;
        }
        static const struct {
                const char *file, *name, *method, *params, *relation;
        } chain[] = {
            {"train.kinf", "sections", "train", "{}", NULL},
            {"quantize.kinf", "sections-int8", "quantize", "{\"block\":32}", "quantized_from"},
            {"prune.kinf", "sections-pruned", "prune", "{\"keep_buckets\":8}", "pruned_from"},
            {"distill.kinf", "sections-student", "distill", "{\"temperature\":2,\"alpha\":0.5}",
             "distilled_from"},
        };
        char sha[65] = "", prev_sha[65] = "", parents[512];
        size_t len;
        for (size_t i = 0; i < sizeof(chain) / sizeof(chain[0]); i++) {
                if (chain[i].relation)
                        snprintf(parents, sizeof(parents),
                                 "[{\"sha256\":\"%s\",\"name\":\"%s\",\"version\":1,\"relation\":"
                                 "\"%s\"}]",
                                 prev_sha, chain[i - 1].name, chain[i].relation);
                uint8_t *bytes =
                    pgt_model_bytes(chain[i].name, (int)i + 1, chain[i].method, chain[i].params,
                                    chain[i].relation ? parents : NULL, &len, sha);
                if (!bytes || write_bytes(argv[1], chain[i].file, bytes, len))
                        return 1;
                free(bytes);
                memcpy(prev_sha, sha, sizeof(sha));
        }
        uint8_t *bytes = pgt_model_bytes("spare", 12, "train", NULL, NULL, &len, sha);
        if (!bytes || write_bytes(argv[1], "spare.kinf", bytes, len))
                return 1;
        free(bytes);
        bytes = pgt_model_bytes("sections", 11, "train", NULL, NULL, &len, sha);
        if (!bytes || write_bytes(argv[1], "train2.kinf", bytes, len))
                return 1;
        bytes[len - 3] ^= 0x01;
        if (write_bytes(argv[1], "corrupt.kinf", bytes, len))
                return 1;
        free(bytes);
        return 0;
}
