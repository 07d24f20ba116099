/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_train_mpi.c -- `kinfer train` started by an MPI launcher (mpirun -np K kinfer train ...):
 * each rank reads its shard of --input, the ranks agree on the label set, the featurizer
 * settings and the timestamp, train with their replicas averaged (kinfer_train with
 * opts->comm), check that they built the same model (sha256), and rank 0 writes it. Progress
 * comes from rank 0 only. Any error on any rank is printed by that rank and ends every rank
 * (kinfer_mpi_abort, MPI_Abort): no rank is left waiting in a collective. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli/cli_train_mpi.h"
#include "cli/cli_util.h"
#include "kinfer/model/model_write.h"
#include "kinfer/train/mpi.h"
#include "kinfer/train/train.h"

/* Every rank the same META timestamp (SOURCE_DATE_EPOCH, rank 0's clock unless the user set
 * it): the model's sha256 covers META, and the ranks' models must be identical. */
static int agree_time(kinfer_train_comm_t *c, char *errstr, size_t errstr_size)
{
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        int64_t t = sde && *sde ? strtoll(sde, NULL, 10) : (int64_t)time(NULL);
        if (c->bcast(c, &t, sizeof(t), errstr, errstr_size))
                return -1;
        char s[32];
        snprintf(s, sizeof(s), "%" PRId64, t);
        return setenv("SOURCE_DATE_EPOCH", s, 1);
}

/* cmd_train.c's looks_unspaced over all shards: words average more than 24 bytes. */
static int unspaced(kinfer_train_comm_t *c, const kinfer_dataset_t *ds, int *out, char *errstr,
                    size_t errstr_size)
{
        int64_t v[2] = {0, 0};
        for (int32_t i = 0; i < ds->n; i++)
                v[0] += (int64_t)ds->lens[i], v[1] += ds->words[i];
        if (c->allreduce(c, v, 2, KINFER_COMM_I64, KINFER_COMM_SUM, errstr, errstr_size))
                return -1;
        *out = v[1] > 0 && (double)v[0] / (double)v[1] > 24.0;
        return 0;
}

static int run(kinfer_train_comm_t *c, kinfer_train_opts_t *o, const cli_train_mpi_args_t *a)
{
        char errstr[1024], defname[256];
        const int r = c->rank, K = c->size;
        kinfer_dataset_t *ds = NULL, *dv = NULL;
        kinfer_model_t *model = NULL;
        char *lineage = NULL;
        int rc = 1, un = 0;
        double t0 = cli_now();
        if (agree_time(c, errstr, sizeof(errstr)) ||
            !(ds = kinfer_mpi_load_shard(c, a->input, errstr, sizeof(errstr))))
                goto fail;
        if (a->dev && !(dv = kinfer_dataset_load(a->dev, 0, errstr, sizeof(errstr))))
                goto fail;
        if (!a->char_set) {
                if (unspaced(c, ds, &un, errstr, sizeof(errstr)))
                        goto fail;
                if (un) {
                        o->feat.minn = 1;
                        o->feat.maxn = 3;
                        if (r == 0)
                                fprintf(stderr, "kinfer train: %s has few spaces: using char n-grams 1..3\n",
                                        a->input);
                }
        }
        if (kinfer_mpi_label_order(c, ds, &o->label_order, &o->n_label_order, errstr, sizeof(errstr)))
                goto fail;
        if (!(lineage = kinfer_mpi_schedule(c, o->sync_every))) {
                snprintf(errstr, sizeof(errstr), "out of memory");
                goto fail;
        }
        o->lineage_params_json = lineage;
        o->comm = c;
        o->name = a->name ? a->name : cli_default_name(a->output, defname, sizeof(defname));
        o->dev = dv;
        o->progress = r == 0 && !a->quiet ? cli_train_progress : NULL;
        if (r == 0 && !a->quiet)
                fprintf(stderr, "Read %" PRId64 " records from %s (%s) in %d shards of about %" PRId64
                                " (%.1fs), %d labels; averaging %d times per epoch%s%s\n",
                        c->n_records, a->input, ds->format == KINFER_DATA_TSV ? "TSV" : "fastText", K,
                        c->n_records / K, cli_now() - t0, o->n_label_order, c->syncs_per_epoch,
                        dv ? ", dev " : "", dv ? a->dev : "");
        kinfer_train_result_t res;
        if (!(model = kinfer_train(ds, o, &res, errstr, sizeof(errstr))))
                goto fail;
        const char *sha = kinfer_model_sha256_hex(model);
        if (kinfer_mpi_agree(c, sha, errstr, sizeof(errstr)))
                goto fail;
        if (r == 0 && kinfer_model_save(model, a->output, errstr, sizeof(errstr)))
                goto fail;
        if (r == 0 && !a->quiet) {
                double eps = c->epochs_seconds > 0 ? c->epochs_seconds : 1e-9;
                int32_t ep = res.epochs_run > 0 ? res.epochs_run : 1;
                fprintf(stderr, "Trained in %.1fs: %d epochs, %d labels, %d feature rows", res.seconds,
                        res.epochs_run, kinfer_model_n_labels(model), res.n_rows);
                if (res.dev_accuracy >= 0)
                        fprintf(stderr, ", best dev accuracy %.4f (epoch %d), score temperature %.3f",
                                res.dev_accuracy, res.best_epoch, (double)res.temperature);
                fprintf(stderr,
                        "\nMPI: %d ranks, %.0f records/s in the epochs (%.1fs), %" PRId64 " averagings "
                        "(%" PRId64 " sparse), %.3f MB per rank per epoch averaged (all parameters: "
                        "%.3f MB per averaging)\n",
                        K, (double)c->n_records * ep / eps, c->epochs_seconds, c->syncs, c->sparse_syncs,
                        (double)c->sync_bytes / ep / 1e6, (double)c->dense_bytes / 1e6);
                fprintf(stderr, "All %d ranks built sha256 %s\nWrote %s (%.1f MB)\n", K, sha, a->output,
                        (double)kinfer_model_size(model) / 1e6);
        }
        rc = 0;
        goto done;
fail:
        cli_error("train", "rank %d of %d: %s", r, K, errstr);
done:
        kinfer_model_release(model);
        kinfer_dataset_destroy(ds);
        kinfer_dataset_destroy(dv);
        free(lineage);
        return rc;
}

int cli_train_mpi(kinfer_train_opts_t *o, const cli_train_mpi_args_t *a)
{
        char errstr[512];
        int launched = kinfer_mpi_launched_size();
        kinfer_train_comm_t *c = kinfer_mpi_init(NULL, NULL, errstr, sizeof(errstr));
        if (!c) {
                cli_error("train", "started by an MPI launcher as one of %d processes, but %s", launched,
                          errstr);
                return 1;
        }
        int rc = run(c, o, a);
        if (rc) { /* every rank ends: the others may be waiting in a collective */
                fflush(stderr);
                kinfer_mpi_abort(c, rc);
        }
        kinfer_mpi_finalize(c);
        return rc;
}
