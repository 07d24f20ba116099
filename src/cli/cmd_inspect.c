/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_inspect.c -- `kinfer inspect MODEL`: verify a model file and show what it carries. */
#include <stdio.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/model/model.h"

int kinfer_cmd_inspect(int argc, char **argv)
{
        if (argc == 2 && (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h"))) {
                printf("Usage: kinfer inspect MODEL [--labels]\n\n"
                       "Verify MODEL (checksum, shapes) and print its identity, shapes, metadata\n"
                       "(hyperparameters, training data fingerprint, evaluation) and lineage.\n\n"
                       "  --labels    also list the labels\n"
                       "  -h, --help  this text\n");
                return 0;
        }
        if (argc < 2 || argc > 3 || (argc == 3 && strcmp(argv[2], "--labels"))) {
                cli_error("inspect", "expected MODEL [--labels] (see --help)");
                return 2;
        }
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(argv[1], errstr, sizeof(errstr));
        if (!model) {
                cli_error("inspect", "%s", errstr);
                return 1;
        }
        /* the shape as the hyperparameters say it: a linear model has dim 0 (its rows hold a
         * weight per label); the weights' type and the bucket map on their own lines */
        int linear = kinfer_model_is_linear(model);
        size_t map_bytes;
        const char *map = kinfer_model_bucket_map_kind(model, &map_bytes);
        int32_t n_buckets = kinfer_model_n_buckets(model), n_rows = kinfer_model_n_rows(model);
        printf("file\t%s\nsha256\t%s\nsize\t%zu\nname\t%s\nweights\t%s\nmodel\t%s\n"
               "labels\t%d\nbuckets\t%d\nrows\t%d (%.3f%% of the buckets have one)\n"
               "bucket_map\t%s (%zu bytes)\ndim\t%d\nhidden_layers\t%d\n",
               argv[1], kinfer_model_sha256_hex(model), kinfer_model_size(model),
               kinfer_model_name(model), strncmp(kinfer_model_format(model), "q8", 2) ? "f32" : "q8",
               linear ? "linear (a weight per feature row and label)"
               : kinfer_model_output_kind(model) == KINFER_OUT_FT_HS ? "embedding bag + fastText hierarchical softmax"
               : kinfer_model_output_kind(model) == KINFER_OUT_FT_SIGMOID ? "embedding bag + fastText sigmoid (ns/ova)"
                                                                            : "embedding bag + softmax",
               kinfer_model_n_labels(model), n_buckets, n_rows,
               n_buckets ? 100.0 * n_rows / n_buckets : 0.0, map, map_bytes,
               linear ? 0 : kinfer_model_dim(model), kinfer_model_n_hidden(model));
        printf("shape\t");
        if (linear)
                printf("%d rows x %d labels\n", n_rows, kinfer_model_n_labels(model));
        else
                printf("%d rows x %d dim -> %d hidden layer(s) -> %d labels\n", n_rows,
                       kinfer_model_dim(model), kinfer_model_n_hidden(model),
                       kinfer_model_n_labels(model));
        printf("temperature\t%g\nlineage\t%s\n", (double)kinfer_model_temperature(model),
               kinfer_model_lineage_method(model));
        for (int32_t i = 0; i < kinfer_model_n_parents(model); i++) {
                const kinfer_model_parent_t *p = kinfer_model_parent(model, i);
                printf("parent\t%s %s%s%.0d %s\n", p->relation, p->name, p->version ? ":" : "",
                       p->version, p->sha256);
        }
        const kinfer_model_reference_t *ref = kinfer_model_reference(model);
        if (ref)
                printf("drift_reference\t%s%s%s, %lld records\n", ref->data[0] ? ref->data : "?",
                       ref->file[0] ? " " : "", ref->file, (long long)ref->records);
        else
                printf("drift_reference\tnone (serving reports no drift)\n");
        if (argc == 3)
                for (int32_t i = 0; i < kinfer_model_n_labels(model); i++)
                        printf("label\t%d\t%s\n", i, kinfer_model_label(model, i));
        printf("meta\t%s\n", kinfer_model_meta_json(model));
        kinfer_model_release(model);
        return 0;
}
