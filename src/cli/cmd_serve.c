/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_serve.c -- `kinfer serve`: read the configuration (file, -X, environment), run the
 * streaming worker until SIGTERM/SIGINT, exit 0 after a clean drain. A second signal exits at
 * once. Also prints the effective configuration or the generated configuration reference. */
#include <getopt.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/core/conf.h"
#include "kinfer/core/log.h"
#include "kinfer/http/http.h"
#include "kinfer/kafka/conf_check.h"
#include "kinfer/worker/http_classify.h"
#include "kinfer/worker/model_watch.h"
#include "kinfer/worker/worker.h"
#include "kinfer/worker/worker_registry.h"

#define CMD "serve"

extern char **environ;

static kinfer_worker_t *volatile serve_worker;
/* atomics, not volatile sig_atomic_t: a signal may be handled on any thread that does not block
 * it (the HTTP server's, the classification pool's), and the watchdog reads these on its own;
 * lock-free atomics are async-signal-safe */
static atomic_int serve_signals;
_Static_assert(ATOMIC_INT_LOCK_FREE == 2, "the signal handler needs lock-free atomic ints");

/* ---- the teardown watchdog ----------------------------------------------------------------
 * kinfer's own waits in a shutdown all end before shutdown.timeout.ms from the signal (the
 * worker's flush, commit and group leave, then the registry thread's last flush get what is
 * left of it: kinfer_worker_shutdown_left_ms, kinfer_shutdown_reserve_ms). What comes after is
 * librdkafka's rd_kafka_destroy(), which joins its threads without any bound: it waits for a
 * LeaveGroup in flight (5 s in librdkafka 2.0) and for commits in flight, and kafka_group once
 * saw a consumer destroyed in the middle of a rebalance never return. Past the deadline nothing
 * is left that a worker owes anyone: results are delivered or will be redone, offsets committed
 * or not. So a thread started before the worker waits for the first signal and, if the process
 * is still there at shutdown.timeout.ms from it, exits without the rest of the teardown:
 * status 0 when the drain had finished (every record consumed delivered, its offset committed
 * or given up: kinfer_worker_set_drained_cb; what is left is the group leave and freeing), 1
 * when it had not. A fatal error gives the teardown FATAL_TEARDOWN_S, then exits 1: a fenced
 * transactional producer's destroy can block too (kafka_real_exactly_once saw a fenced worker
 * log "stopped" and never exit). */
#define FATAL_TEARDOWN_S 10

static sem_t teardown_sem;                 /* posted by the first signal, or a fatal error */
static atomic_int teardown_fatal;            /* ... set before posting for the latter */
static atomic_int serve_drained;            /* the worker's drain finished (on_drained) */
static int teardown_timeout_ms;              /* shutdown.timeout.ms, set before the thread starts */
static atomic_int teardown_armed;            /* the semaphore and the thread exist */

static void on_signal(int sig)
{
        if (atomic_fetch_add(&serve_signals, 1) == 0) {
                if (serve_worker)
                        kinfer_worker_stop(serve_worker);
                if (teardown_armed)
                        sem_post(&teardown_sem); /* async-signal-safe */
                static const char msg[] = "kinfer serve: stopping (finishing the batch in flight, "
                                          "flushing, committing); signal again to exit at once\n";
                ssize_t n = write(STDERR_FILENO, msg, sizeof(msg) - 1);
                (void)n;
                return;
        }
        _exit(128 + sig);
}

static void *teardown_watchdog(void *arg)
{
        (void)arg;
        while (sem_wait(&teardown_sem) != 0)
                ;
        int fatal = teardown_fatal;
        int64_t ms = fatal ? FATAL_TEARDOWN_S * 1000 : teardown_timeout_ms;
        struct timespec left = {.tv_sec = (time_t)(ms / 1000), .tv_nsec = (long)(ms % 1000) * 1000000L};
        while (nanosleep(&left, &left) != 0) /* a signal: sleep what is left */
                ;
        /* write(2) only: a thread stuck in the teardown may hold the log's lock */
        int drained = !fatal && atomic_load(&serve_drained);
        const char *msg =
            fatal ? "kinfer serve: the teardown after the fatal error did not finish in 10 s; "
                    "exiting without it\n"
            : drained ? "kinfer serve: shutdown.timeout.ms is over and the teardown (the group "
                        "leave, librdkafka's destroy) has not finished; exiting without it: the "
                        "drain had finished\n"
                      : "kinfer serve: shutdown.timeout.ms is over before the drain finished; "
                        "exiting: records past the committed offsets are redone by the next "
                        "owner\n";
        ssize_t n = write(STDERR_FILENO, msg, strlen(msg)); /* both async-signal-safe */
        (void)n;
        _exit(drained ? 0 : 1);
        return NULL;
}

static void on_drained(void *opaque)
{
        (void)opaque;
        atomic_store(&serve_drained, 1);
}

/* After a fatal error the process is done, and its supervisor must see it exit: the watchdog
 * gives the teardown FATAL_TEARDOWN_S (unless a signal started its clock already). */
static void teardown_after_fatal(void)
{
        if (serve_signals || !teardown_armed)
                return;
        teardown_fatal = 1;
        sem_post(&teardown_sem);
}

/* GET /readyz: a model and assigned partitions */
static int serve_ready(void *opaque, char *why, size_t why_size)
{
        if (kinfer_worker_ready(opaque))
                return 1;
        snprintf(why, why_size, "no model loaded or no partition assigned");
        return 0;
}

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer serve --config FILE [-X key=value]... [--http-only] [--dump-config]\n\n"
                "Classify records from Kafka: consume input.topic, classify in micro-batches, produce\n"
                "results to output.topic and bad records to dlq.topic (at-least-once).\n\n"
                "Options:\n"
                "  -c, --config FILE     key=value configuration file\n"
                "  -X key=value          set a configuration key (repeatable; kafka.* goes to\n"
                "                        librdkafka unchanged)\n"
                "      --http-only       serve the model over HTTP only, no Kafka (http.only=true;\n"
                "                        needs http.listen and model.path or deployment)\n"
                "      --dump-config     print the effective configuration (secrets masked), exit\n"
                "      --dump-config-doc print the configuration reference (Markdown), exit\n"
                "  -h, --help            this text\n\n"
                "Environment variables override the file and -X: KINFER_<KEY> with '.' and '-' as\n"
                "'_', e.g. KINFER_INPUT_TOPIC; KINFER_KAFKA_SASL_PASSWORD sets kafka.sasl.password.\n"
                "See docs/CONFIGURATION.md and docs/streaming.md.\n\n"
                "SIGTERM or SIGINT: finish the batch in flight, flush, commit, leave the group, exit 0.\n"
                "A second signal exits at once.\n");
}

/* `kinfer serve --http-only` (http.only=true): the model over HTTP alone, no Kafka. The model
 * comes from model.path or, with deployment=, from the registry (swaps follow activations as in
 * the worker); the classification thread applies posted models itself. */
/* What both modes do once the configuration is checked: the log level, then SIGTERM and
 * SIGINT to on_signal. */
static void serve_setup(const kinfer_conf_t *conf)
{
        int level = kinfer_log_level_parse(kinfer_conf_get(conf, "log.level"));
        if (level >= 0)
                kinfer_log_level = level;
        teardown_timeout_ms = (int)kinfer_conf_get_int(conf, "shutdown.timeout.ms");
        pthread_t wd;
        if (sem_init(&teardown_sem, 0, 0) == 0 &&
            pthread_create(&wd, NULL, teardown_watchdog, NULL) == 0) {
                pthread_detach(wd);
                teardown_armed = 1;
        } else /* then a stuck teardown is left to the supervisor's SIGKILL, as before */
                kinfer_log(KINFER_LOG_WARN, "SERVE", "cannot start the teardown watchdog");
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
}

static int serve_http_only(kinfer_conf_t *conf)
{
        char errstr[1024];
        if (!*kinfer_conf_get(conf, "http.listen")) {
                cli_error(CMD, "--http-only (http.only=true) needs http.listen, e.g. -X "
                               "http.listen=127.0.0.1:8080 (it is empty)");
                kinfer_conf_destroy(conf);
                return 2;
        }
        const char *path = kinfer_conf_get(conf, "model.path");
        const char *deployment = kinfer_conf_get(conf, "deployment");
        if (!*path && !*deployment) {
                cli_error(CMD, "--http-only needs model.path or deployment");
                kinfer_conf_destroy(conf);
                return 2;
        }
        serve_setup(conf);

        int rc = 1;
        kinfer_model_slot_t *slot = kinfer_model_slot_new(errstr, sizeof(errstr));
        kinfer_model_watch_t *watch = NULL;
        kinfer_classify_svc_t *csvc = NULL;
        kinfer_http_t *http = NULL;
        kinfer_prom_t *prom = NULL; /* /metrics: build, model, readiness, registry series */
        if (!slot)
                goto fail;
        if (*deployment) {
                kinfer_model_watch_conf_t wconf = {
                    .conninfo = *kinfer_conf_get(conf, "pg.conninfo")
                                    ? kinfer_conf_get(conf, "pg.conninfo")
                                    : NULL,
                    .deployment = deployment,
                    .worker_id = *kinfer_conf_get(conf, "worker.id")
                                     ? kinfer_conf_get(conf, "worker.id")
                                     : NULL,
                };
                char why[512];
                if (!(watch = kinfer_model_watch_new(&wconf, slot, why, sizeof(why)))) {
                        snprintf(errstr, sizeof(errstr), "deployment %s: %s", deployment, why);
                        goto fail;
                }
                if (kinfer_model_watch_start(watch, errstr, sizeof(errstr)))
                        goto fail;
        } else {
                kinfer_model_t *model = kinfer_model_load_file(path, errstr, sizeof(errstr));
                if (!model ||
                    kinfer_model_slot_post(slot, model, 0, kinfer_conf_get(conf, "model.name"),
                                           (int32_t)kinfer_conf_get_int(conf, "model.version"),
                                           NULL, NULL, errstr, sizeof(errstr)))
                        goto fail;
        }
        if (!(csvc = kinfer_classify_svc_new(conf, slot, 1, errstr, sizeof(errstr))) ||
            !(prom = kinfer_prom_new(slot, errstr, sizeof(errstr))))
                goto fail;
        kinfer_prom_set_registry(prom, watch);
        if (!(http = kinfer_http_new(conf, errstr, sizeof(errstr)))) {
                rc = 2; /* http.* configuration: a file, the address */
                goto fail;
        }
        kinfer_http_set_ready(http, kinfer_classify_svc_ready, csvc);
        kinfer_http_set_classify(http, kinfer_classify_svc_http, csvc);
        kinfer_http_set_metrics(http, kinfer_prom_metrics_fn, prom);
        if (kinfer_http_start(http, errstr, sizeof(errstr)))
                goto fail;
        kinfer_log(KINFER_LOG_NOTICE, "HTTP", "HTTP-only mode: model from %s%s",
                   *deployment ? "deployment " : "", *deployment ? deployment : path);
        /* the signal handler counts; nothing else to do here until it does */
        while (!serve_signals) {
                struct timespec ts = {0, 50 * 1000000};
                nanosleep(&ts, NULL);
                char why[256]; /* kinfer_ready in /metrics says what /readyz says */
                kinfer_prom_delta_t none = {0};
                kinfer_prom_gauges_t g = {.ready = kinfer_classify_svc_ready(csvc, why, sizeof(why))};
                kinfer_prom_publish(prom, &none, &g);
        }
        rc = 0;
        atomic_store(&serve_drained, 1); /* nothing to drain but what HTTP has queued (below) */
        goto done;
fail:
        cli_error(CMD, "%s", errstr);
done:
        kinfer_classify_svc_stop(csvc); /* answers what is queued: no connection waits */
        kinfer_http_destroy(http);
        kinfer_prom_destroy(prom);
        kinfer_classify_svc_destroy(csvc);
        int timeout_ms = (int)kinfer_conf_get_int(conf, "shutdown.timeout.ms");
        kinfer_model_watch_destroy(watch, timeout_ms - kinfer_shutdown_reserve_ms(timeout_ms));
        kinfer_model_slot_destroy(slot);
        kinfer_conf_destroy(conf);
        return rc;
}

int kinfer_cmd_serve(int argc, char **argv)
{
        static const struct option opts[] = {
            {"config", required_argument, NULL, 'c'},
            {"dump-config", no_argument, NULL, 'D'},
            {"dump-config-doc", no_argument, NULL, 'O'},
            {"http-only", no_argument, NULL, 'H'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *config = NULL;
        int dump = 0, dump_doc = 0, http_only = 0, c;
        char errstr[1024];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        /* -X is applied after the file: collect first */
        char **xs = calloc((size_t)argc + 1, sizeof(*xs));
        if (!conf || !xs) {
                cli_error(CMD, "out of memory");
                free(xs);
                kinfer_conf_destroy(conf);
                return 1;
        }
        int n_xs = 0;
        optind = 1;
        while ((c = getopt_long(argc, argv, "c:X:h", opts, NULL)) != -1) {
                switch (c) {
                case 'c': config = optarg; break;
                case 'X': xs[n_xs++] = optarg; break;
                case 'D': dump = 1; break;
                case 'O': dump_doc = 1; break;
                case 'H': http_only = 1; break;
                case 'h':
                        usage(stdout);
                        free(xs);
                        kinfer_conf_destroy(conf);
                        return 0;
                default:
                        usage(stderr);
                        free(xs);
                        kinfer_conf_destroy(conf);
                        return 2;
                }
        }
        if (dump_doc) {
                kinfer_conf_dump_doc(stdout);
                free(xs);
                kinfer_conf_destroy(conf);
                return 0;
        }
        int status = 0;
        if (optind < argc) {
                cli_error(CMD, "unexpected argument \"%s\"", argv[optind]);
                status = 2;
        } else if (config && kinfer_conf_load_file(conf, config, errstr, sizeof(errstr))) {
                cli_error(CMD, "%s", errstr);
                status = 2;
        }
        for (int i = 0; i < n_xs && !status; i++)
                if (kinfer_conf_set_kv(conf, xs[i], "-X", errstr, sizeof(errstr))) {
                        cli_error(CMD, "-X %s: %s", xs[i], errstr);
                        status = 2;
                }
        free(xs);
        if (!status && kinfer_conf_load_env(conf, environ, errstr, sizeof(errstr))) {
                cli_error(CMD, "environment: %s", errstr);
                status = 2;
        }
        if (!status && http_only &&
            kinfer_conf_set(conf, "http.only", "true", "--http-only", errstr, sizeof(errstr))) {
                cli_error(CMD, "%s", errstr);
                status = 1;
        }
        if (status) {
                kinfer_conf_destroy(conf);
                return status;
        }
        if (dump) {
                kinfer_conf_dump(conf, stdout);
                kinfer_conf_destroy(conf);
                return 0;
        }
        if (kinfer_conf_get_bool(conf, "http.only"))
                return serve_http_only(conf);
        /* every configuration error exits 2 here, before a model is loaded or a broker
         * contacted: kinfer's own keys, then the kafka.* properties as librdkafka reads them */
        if (kinfer_conf_check(conf, errstr, sizeof(errstr)) ||
            kinfer_kafka_conf_check(conf, errstr, sizeof(errstr))) {
                if (config || n_xs)
                        cli_error(CMD, "%s", errstr);
                else
                        cli_error(CMD, "%s (no --config FILE given: kinfer serve --config "
                                       "kinfer.conf, or -X key=value; see --help)", errstr);
                kinfer_conf_destroy(conf);
                return 2;
        }
        serve_setup(conf);

        kinfer_worker_t *w = kinfer_worker_new(conf, errstr, sizeof(errstr));
        if (!w) {
                cli_error(CMD, "%s", errstr);
                kinfer_conf_destroy(conf);
                return 1;
        }
        /* registry: with `deployment` set, the model comes from PostgreSQL (worker_registry.h) */
        kinfer_worker_registry_t *wreg = NULL;
        if (*kinfer_conf_get(kinfer_worker_conf(w), "deployment") &&
            !(wreg = kinfer_worker_registry_attach(w, errstr, sizeof(errstr)))) {
                cli_error(CMD, "%s", errstr);
                kinfer_worker_destroy(w);
                return 1;
        }
        /* /metrics renders the registry thread's state too (connection, refused models) */
        if (wreg)
                kinfer_prom_set_registry(kinfer_worker_prom(w), kinfer_worker_registry_watch(wreg));
        /* the HTTP server (http.listen): probes, /metrics, /v1/classify */
        kinfer_http_t *http = NULL;
        kinfer_classify_svc_t *csvc = NULL;
        if (*kinfer_conf_get(kinfer_worker_conf(w), "http.listen")) {
                if (!(http = kinfer_http_new(kinfer_worker_conf(w), errstr, sizeof(errstr)))) {
                        cli_error(CMD, "%s", errstr);
                        kinfer_worker_registry_detach(wreg, 0);
                        kinfer_worker_destroy(w);
                        return 2;
                }
                kinfer_http_set_ready(http, serve_ready, w);
                /* POST /v1/classify: the worker's model, through its slot */
                if (!(csvc = kinfer_classify_svc_new(kinfer_worker_conf(w),
                                                     kinfer_worker_model_slot(w), 0, errstr,
                                                     sizeof(errstr)))) {
                        cli_error(CMD, "%s", errstr);
                        kinfer_http_destroy(http);
                        kinfer_worker_registry_detach(wreg, 0);
                        kinfer_worker_destroy(w);
                        return 1;
                }
                kinfer_http_set_classify(http, kinfer_classify_svc_http, csvc);
                kinfer_http_set_metrics(http, kinfer_prom_metrics_fn, kinfer_worker_prom(w));
                if (kinfer_http_start(http, errstr, sizeof(errstr))) {
                        kinfer_http_destroy(http);
                        kinfer_classify_svc_destroy(csvc);
                        http = NULL;
                        csvc = NULL;
                        if (!kinfer_conf_is_default(kinfer_worker_conf(w), "http.listen")) {
                                cli_error(CMD, "%s", errstr);
                                kinfer_worker_registry_detach(wreg, 0);
                                kinfer_worker_destroy(w);
                                return 1;
                        }
                        /* the default address: another worker on this host may hold it */
                        kinfer_log(KINFER_LOG_WARN, "HTTP",
                                   "%s; serving without HTTP (set http.listen to an address of "
                                   "this worker's own, or empty for none)",
                                   errstr);
                }
        }
        kinfer_worker_set_drained_cb(w, on_drained, NULL);
        serve_worker = w;
        if (serve_signals) /* a signal before the worker existed */
                kinfer_worker_stop(w);
        kinfer_err_t err = kinfer_worker_run(w, errstr, sizeof(errstr));
        serve_worker = NULL;
        if (err) {
                cli_error(CMD, "%s", errstr);
                teardown_after_fatal();
        }
        kinfer_classify_svc_stop(csvc); /* answers what is queued: no connection waits */
        kinfer_http_destroy(http); /* before the worker its hooks read */
        kinfer_classify_svc_destroy(csvc);
        kinfer_prom_set_registry(kinfer_worker_prom(w), NULL); /* the watch goes now */
        /* what is left of shutdown.timeout.ms after the Kafka drain: one deadline for both */
        kinfer_worker_registry_detach(wreg, kinfer_worker_shutdown_left_ms(w));
        kinfer_worker_destroy(w);
        return err ? 1 : 0;
}
