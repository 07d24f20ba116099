/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_dev_broker.c -- `kinfer dev-broker`: host the dev broker (kinfer/kafka/dev_broker.h:
 * librdkafka's mock cluster on loopback) for tests and the demo, print its bootstrap list as
 * the first line on stdout, and stay up until SIGTERM or SIGINT. Topics not created with
 * --topic are auto-created on first use. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/kafka/dev_broker.h"

#define CMD "dev-broker"
#define DEV_BROKER_PORT 9092

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer dev-broker [--port PORT] [--brokers N] [--topic NAME:PARTITIONS]...\n\n"
                "Run a Kafka-protocol broker (librdkafka's mock cluster) on loopback for tests\n"
                "and demos. Prints the bootstrap list (127.0.0.1:PORT) as the first line on\n"
                "stdout, then serves until SIGTERM or SIGINT.\n\n"
                "Options:\n"
                "  -p, --port PORT          bootstrap port on 127.0.0.1 (default %d, Kafka's usual\n"
                "                           one, so a config can keep localhost:%d); 0 = any free\n"
                "                           port (tests running several brokers at once)\n"
                "  --brokers N              number of brokers (default 1, max 16)\n"
                "  --topic NAME:PARTITIONS  create a topic (repeatable; others are auto-created\n"
                "                           on first use)\n"
                "  --control                read fault-injection commands on stdin, one a line;\n"
                "                           each is answered on stdout with \"ok: ...\" or\n"
                "                           \"error: ...\" (after the bootstrap line):\n"
                "                             errors BROKER API ERROR COUNT [RTT_MS]  the next\n"
                "                               COUNT requests of type API (produce, fetch,\n"
                "                               leavegroup, ...) to broker BROKER (1..N; 0 = any\n"
                "                               broker) fail with librdkafka's ERROR (e.g.\n"
                "                               MSG_SIZE_TOO_LARGE), answered RTT_MS late (NO_ERROR\n"
                "                               with RTT_MS: they succeed, late)\n"
                "                             errors-left BROKER API   how many are left\n"
                "                             leader TOPIC PARTITION BROKER  move a leader\n"
                "                             rtt BROKER MS   answer every request to BROKER\n"
                "                               MS late (0: on time again)\n"
                "                             coordinator group|transaction ID BROKER  make\n"
                "                               BROKER the coordinator of that group or\n"
                "                               transactional id\n"
                "  -v, --verbose            log librdkafka debug output of the broker\n"
                "  -h, --help               this text\n\n"
                "Limits: about 5 MiB per partition are kept (older records are dropped\n"
                "silently); consumers need a low fetch.wait.max.ms (e.g. 10); read_committed\n"
                "is not honoured.\n",
                DEV_BROKER_PORT, DEV_BROKER_PORT);
}

/* ---- --control: fault injection from stdin ------------------------------------------------- */

/* The reader thread runs each command under ctl_lock; control_stop() takes the broker away
 * under it before the broker is destroyed, so no command runs on a destroyed broker (a reader
 * blocked in fgets() just ends with the process). */
static pthread_mutex_t ctl_lock = PTHREAD_MUTEX_INITIALIZER;
static kinfer_dev_broker_t *ctl_broker;

static int ctl_number(const char *s, long min, long max, long *out)
{
        char *end;
        errno = 0;
        long v = strtol(s, &end, 10);
        if (!*s || *end || errno || v < min || v > max)
                return -1;
        *out = v;
        return 0;
}

/* Run one command line; the answer is one line on stdout. */
static void control_run(kinfer_dev_broker_t *broker, char *line)
{
        char errstr[512] = "", echo[512], *w[8], *save = NULL;
        int n = 0;
        long x, y, z;
        kinfer_err_t err = KINFER_ERR__INVALID_ARG;
        line[strcspn(line, "\r\n")] = '\0';
        snprintf(echo, sizeof(echo), "%.500s", line);
        for (char *t = strtok_r(line, " \t", &save); t && n < 8; t = strtok_r(NULL, " \t", &save))
                w[n++] = t;
        if (n == 0)
                return;
        if (!strcmp(w[0], "errors") && (n == 5 || n == 6)) {
                z = 0;
                if (ctl_number(w[1], 0, 16, &x) || ctl_number(w[4], 1, 100000, &y) ||
                    (n == 6 && ctl_number(w[5], 0, 3600000, &z)))
                        snprintf(errstr, sizeof(errstr),
                                 "BROKER is 0..N, COUNT 1..100000, RTT_MS 0..3600000");
                else
                        err = kinfer_dev_broker_push_request_errors(broker, (int)x, w[2], w[3],
                                                                    (int)y, (int)z, errstr,
                                                                    sizeof(errstr));
        } else if (!strcmp(w[0], "errors-left") && n == 3) {
                if (ctl_number(w[1], 1, 16, &x))
                        snprintf(errstr, sizeof(errstr), "BROKER is 1..N");
                else if (!(err = kinfer_dev_broker_request_errors_left(broker, (int)x, w[2], &y,
                                                                       errstr, sizeof(errstr))))
                        snprintf(errstr, sizeof(errstr), "%ld", y);
        } else if (!strcmp(w[0], "leader") && n == 4) {
                if (ctl_number(w[2], 0, 100000, &y) || ctl_number(w[3], 1, 16, &z))
                        snprintf(errstr, sizeof(errstr), "PARTITION is a number, BROKER 1..N");
                else
                        err = kinfer_dev_broker_set_leader(broker, w[1], (int)y, (int)z, errstr,
                                                           sizeof(errstr));
        } else if (!strcmp(w[0], "rtt") && n == 3) {
                if (ctl_number(w[1], 1, 16, &x) || ctl_number(w[2], 0, 3600000, &y))
                        snprintf(errstr, sizeof(errstr), "BROKER is 1..N, MS 0..3600000");
                else
                        err = kinfer_dev_broker_set_rtt(broker, (int)x, (int)y, errstr,
                                                        sizeof(errstr));
        } else if (!strcmp(w[0], "coordinator") && n == 4) {
                if (ctl_number(w[3], 1, 16, &x))
                        snprintf(errstr, sizeof(errstr), "BROKER is 1..N");
                else
                        err = kinfer_dev_broker_set_coordinator(broker, w[1], w[2], (int)x, errstr,
                                                                sizeof(errstr));
        } else {
                snprintf(errstr, sizeof(errstr),
                         "expected: errors BROKER API ERROR COUNT [RTT_MS] | errors-left BROKER API | "
                         "leader TOPIC PARTITION BROKER | rtt BROKER MS | "
                         "coordinator group|transaction ID BROKER");
        }
        if (err)
                printf("error: %s: %s\n", echo, errstr);
        else
                printf("ok: %s%s%s\n", echo, *errstr ? " -> " : "", errstr);
        fflush(stdout);
}

static void *control_main(void *arg)
{
        (void)arg;
        char line[1024];
        while (fgets(line, sizeof(line), stdin)) {
                pthread_mutex_lock(&ctl_lock);
                if (ctl_broker)
                        control_run(ctl_broker, line);
                pthread_mutex_unlock(&ctl_lock);
        }
        return NULL;
}

static void control_start(kinfer_dev_broker_t *broker)
{
        pthread_t th;
        ctl_broker = broker;
        if (pthread_create(&th, NULL, control_main, NULL) == 0)
                pthread_detach(th);
        else
                fprintf(stderr, "kinfer dev-broker: cannot start the --control reader\n");
}

static void control_stop(void)
{
        pthread_mutex_lock(&ctl_lock);
        ctl_broker = NULL;
        pthread_mutex_unlock(&ctl_lock);
}

int kinfer_cmd_dev_broker(int argc, char **argv)
{
        static const struct option opts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"port", required_argument, NULL, 'p'},
            {"topic", required_argument, NULL, 't'},
            {"verbose", no_argument, NULL, 'v'},
            {"control", no_argument, NULL, 'C'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        long brokers = 1, port = DEV_BROKER_PORT;
        int verbose = 0, control = 0;
        char **topics = calloc((size_t)argc + 1, sizeof(*topics));
        int n_topics = 0, c;
        if (!topics)
                return 1;
        optind = 1;
        while ((c = getopt_long(argc, argv, "b:p:t:vh", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (cli_parse_int(CMD, "--brokers", optarg, 1, 16, &brokers)) {
                                free(topics);
                                return 2;
                        }
                        break;
                case 'p':
                        if (cli_parse_int(CMD, "--port", optarg, 0, 65535, &port)) {
                                free(topics);
                                return 2;
                        }
                        break;
                case 't':
                        topics[n_topics++] = optarg;
                        break;
                case 'v':
                        verbose = 1;
                        break;
                case 'C':
                        control = 1;
                        break;
                case 'h':
                        usage(stdout);
                        free(topics);
                        return 0;
                default:
                        usage(stderr);
                        free(topics);
                        return 2;
                }
        }
        if (optind < argc) {
                cli_error(CMD, "unexpected argument \"%s\"", argv[optind]);
                free(topics);
                return 2;
        }

        /* Block the signals before the dev broker starts its threads, so they inherit the mask
         * and only sigwait() below sees SIGTERM/SIGINT. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        char errstr[512];
        kinfer_dev_broker_t *broker = kinfer_dev_broker_new((int)brokers, verbose, errstr,
                                                            sizeof(errstr));
        if (!broker) {
                cli_error(CMD, "%s", errstr);
                free(topics);
                return 1;
        }
        int status = 0;
        if (port && kinfer_dev_broker_listen(broker, (int)port, errstr, sizeof(errstr))) {
                cli_error(CMD, "%s", errstr);
                status = 1;
        }
        for (int i = 0; i < n_topics && !status; i++) {
                char name[256];
                const char *colon = strrchr(topics[i], ':');
                long parts = 1;
                size_t nlen = colon ? (size_t)(colon - topics[i]) : strlen(topics[i]);
                if (nlen == 0 || nlen >= sizeof(name) ||
                    (colon && cli_parse_int(CMD, "--topic", colon + 1, 1, 100000, &parts))) {
                        cli_error(CMD, "--topic: expected NAME:PARTITIONS, got \"%s\"", topics[i]);
                        status = 2;
                        break;
                }
                memcpy(name, topics[i], nlen);
                name[nlen] = '\0';
                if (kinfer_dev_broker_create_topic(broker, name, (int)parts, errstr,
                                                   sizeof(errstr))) {
                        cli_error(CMD, "%s", errstr);
                        status = 1;
                        break;
                }
        }
        free(topics);
        if (status == 0) {
                const char *bootstraps = kinfer_dev_broker_bootstraps(broker);
                printf("%s\n", bootstraps);
                fflush(stdout);
                fprintf(stderr, "kinfer dev-broker: %ld broker(s) at %s; SIGTERM or Ctrl-C stops\n",
                        brokers, bootstraps);
                if (control)
                        control_start(broker);
                int sig = 0;
                while (sigwait(&set, &sig) != 0)
                        ;
                fprintf(stderr, "kinfer dev-broker: signal %d, stopping\n", sig);
                control_stop();
        }
        kinfer_dev_broker_destroy(broker);
        return status;
}
