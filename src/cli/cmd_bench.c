/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_bench.c -- `kinfer bench runtime MODEL DATA`: records/s by batch size and threads.
 * Each thread owns a runtime and classifies consecutive batches of DATA's texts (cycling) for
 * a fixed time; the model is shared. */
#include <getopt.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/train/train.h"

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer bench [runtime] MODEL DATA [options]\n\n"
                    "Measure classification throughput (records/s) of MODEL on the texts of DATA\n"
                    "(TSV, fastText or plain lines) for each batch size and thread count.\n\n"
                    "  --batches LIST   batch sizes (default 1,16,64,256,1024)\n"
                    "  --threads LIST   thread counts (default 1,2)\n"
                    "  --seconds S      time per measurement (default 2)\n"
                    "  -k K             top-k per record (default 1)\n"
                    "  --json           one JSON object per measurement\n"
                    "  -h, --help       this text\n");
}

typedef struct bench_job_s {
        const kinfer_model_t *model;
        const kinfer_dataset_t *ds;
        int32_t batch, k, start;
        double seconds;
        atomic_int *go;
        long long records;
        int failed;
} bench_job_t;

static void *bench_thread(void *arg)
{
        bench_job_t *j = arg;
        char errstr[256];
        kinfer_runtime_t *rt = kinfer_runtime_new(j->batch, errstr, sizeof(errstr));
        kinfer_prediction_t *out = calloc((size_t)j->batch, sizeof(*out));
        const char **texts = calloc((size_t)j->batch, sizeof(char *));
        size_t *lens = calloc((size_t)j->batch, sizeof(size_t));
        if (!rt || !out || !texts || !lens) {
                j->failed = 1;
                goto done;
        }
        while (!atomic_load(j->go))
                ;
        int32_t pos = j->start;
        double t0 = cli_now(), t;
        do {
                for (int32_t i = 0; i < j->batch; i++) {
                        texts[i] = j->ds->texts[pos];
                        lens[i] = j->ds->lens[pos];
                        if (++pos == j->ds->n)
                                pos = 0;
                }
                if (kinfer_runtime_classify(rt, j->model, texts, lens, j->batch, j->k, out, errstr,
                                            sizeof(errstr))) {
                        j->failed = 1;
                        break;
                }
                j->records += j->batch;
                t = cli_now();
        } while (t - t0 < j->seconds);
done:
        kinfer_runtime_destroy(rt);
        free(out);
        free(texts);
        free(lens);
        return NULL;
}

static int parse_list(const char *s, long *out, int max)
{
        int n = 0;
        char *end;
        while (*s && n < max) {
                long v = strtol(s, &end, 10);
                if (end == s || v < 1 || v > 65536)
                        return -1;
                out[n++] = v;
                s = *end == ',' ? end + 1 : end;
                if (*end && *end != ',')
                        return -1;
        }
        return n;
}

int kinfer_cmd_bench(int argc, char **argv)
{
        static const struct option lo[] = {{"batches", 1, 0, 'b'}, {"threads", 1, 0, 't'}, {"seconds", 1, 0, 's'},
                                           {"json", 0, 0, 'j'}, {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
        long batches[16] = {1, 16, 64, 256, 1024}, threads[16] = {1, 2}, k = 1;
        int nb = 5, nt = 2, json = 0, c;
        double seconds = 2;
        optind = 1;
        while ((c = getopt_long(argc, argv, "b:t:s:k:jh", lo, NULL)) != -1) {
                switch (c) {
                case 'b': if ((nb = parse_list(optarg, batches, 16)) <= 0) { cli_error("bench", "--batches: expected a list like 1,16,256"); return 2; } break;
                case 't': if ((nt = parse_list(optarg, threads, 16)) <= 0) { cli_error("bench", "--threads: expected a list like 1,2"); return 2; } break;
                case 's': if (cli_parse_double("bench", "--seconds", optarg, 0.01, 3600, &seconds)) return 2; break;
                case 'k': if (cli_parse_int("bench", "-k", optarg, 1, KINFER_TOPK_MAX, &k)) return 2; break;
                case 'j': json = 1; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        /* `bench runtime MODEL DATA` (the word is optional: the runtime is all it measures) */
        if (argc - optind == 3 && !strcmp(argv[optind], "runtime"))
                optind++;
        if (argc - optind != 2) {
                cli_error("bench", "expected MODEL DATA (see --help)");
                return 2;
        }
        const char *model_path = argv[optind], *data_path = argv[optind + 1];
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(model_path, errstr, sizeof(errstr));
        if (!model) {
                cli_error("bench", "%s", errstr);
                return 1;
        }
        kinfer_dataset_t *ds = cli_dataset_load("bench", data_path, 1, errstr, sizeof(errstr));
        if (!ds) {
                cli_error("bench", "%s", errstr);
                kinfer_model_release(model);
                return 1;
        }
        if (!json)
                printf("model %s (%s, %.1f MB), data %s (%d records)\n%8s %8s %14s %12s\n",
                       model_path, kinfer_model_format(model), (double)kinfer_model_size(model) / 1e6,
                       data_path, ds->n, "threads", "batch", "records/s", "us/record");
        int rc = 0;
        for (int ti = 0; ti < nt && !rc; ti++) {
                for (int bi = 0; bi < nb && !rc; bi++) {
                        int T = (int)threads[ti];
                        bench_job_t jobs[16];
                        pthread_t tids[16];
                        atomic_int go;
                        atomic_init(&go, 0);
                        for (int t = 0; t < T; t++) {
                                jobs[t] = (bench_job_t){.model = model, .ds = ds, .batch = (int32_t)batches[bi],
                                                        .k = (int32_t)k, .seconds = seconds, .go = &go,
                                                        .start = (int32_t)((int64_t)ds->n * t / T)};
                                pthread_create(&tids[t], NULL, bench_thread, &jobs[t]);
                        }
                        double t0 = cli_now();
                        atomic_store(&go, 1);
                        long long recs = 0;
                        for (int t = 0; t < T; t++) {
                                pthread_join(tids[t], NULL);
                                recs += jobs[t].records;
                                rc |= jobs[t].failed;
                        }
                        double secs = cli_now() - t0;
                        /* finite numbers only (JSON has no Inf): no record or no time is 0 */
                        double rps = secs > 0 && recs > 0 ? (double)recs / secs : 0;
                        double us = rps > 0 ? 1e6 * T / rps : 0;
                        if (json)
                                printf("{\"threads\": %d, \"batch\": %ld, \"records_per_sec\": %.0f, "
                                       "\"us_per_record\": %.3f, \"model_bytes\": %zu}\n",
                                       T, batches[bi], rps, us, kinfer_model_size(model));
                        else
                                printf("%8d %8ld %14.0f %12.3f\n", T, batches[bi], rps, us);
                        fflush(stdout);
                }
        }
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        if (!json)
                printf("peak RSS %.1f MB\n", (double)ru.ru_maxrss / 1024.0);
        if (rc)
                cli_error("bench", "classification failed");
        kinfer_dataset_destroy(ds);
        kinfer_model_release(model);
        return rc;
}
