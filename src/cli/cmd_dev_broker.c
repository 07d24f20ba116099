/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_dev_broker.c -- `kinfer dev-broker`: host librdkafka's mock cluster (a Kafka-protocol
 * broker in this process, listening on loopback) for tests and the demo, print its bootstrap
 * list as the first line on stdout, and stay up until SIGTERM or SIGINT.
 *
 * Separate client processes (kcat, python, kinfer serve) connect to the printed list. The mock
 * cluster's limits (librdkafka 2.0): about 5 MiB / 100k messages kept per partition (older data
 * is dropped silently), no read_committed isolation, and a live consumer needs a low
 * fetch.wait.max.ms. Topics not created with --topic are auto-created on first use. */
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>

#include "cli/cli_util.h"
#include "cli/commands.h"

#define CMD "dev-broker"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer dev-broker [--brokers N] [--topic NAME:PARTITIONS]...\n\n"
                "Run a Kafka-protocol broker (librdkafka's mock cluster) on loopback for tests\n"
                "and demos. Prints the bootstrap list as the first line on stdout, then serves\n"
                "until SIGTERM or SIGINT.\n\n"
                "Options:\n"
                "  --brokers N              number of brokers (default 1, max 16)\n"
                "  --topic NAME:PARTITIONS  create a topic (repeatable; others are auto-created\n"
                "                           on first use)\n"
                "  -v, --verbose            log librdkafka debug output of the broker\n"
                "  -h, --help               this text\n\n"
                "Limits: about 5 MiB per partition are kept (older records are dropped\n"
                "silently); consumers need a low fetch.wait.max.ms (e.g. 10); read_committed\n"
                "is not honoured.\n");
}

int kinfer_cmd_dev_broker(int argc, char **argv)
{
        static const struct option opts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"topic", required_argument, NULL, 't'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        long brokers = 1;
        int verbose = 0;
        char **topics = calloc((size_t)argc + 1, sizeof(*topics));
        int n_topics = 0, c;
        if (!topics)
                return 1;
        optind = 1;
        while ((c = getopt_long(argc, argv, "b:t:vh", opts, NULL)) != -1) {
                switch (c) {
                case 'b':
                        if (cli_parse_int(CMD, "--brokers", optarg, 1, 16, &brokers)) {
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

        /* Block the signals before librdkafka starts its threads, so they inherit the mask and
         * only sigwait() below sees SIGTERM/SIGINT. */
        sigset_t set;
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        pthread_sigmask(SIG_BLOCK, &set, NULL);

        char errstr[512];
        rd_kafka_conf_t *conf = rd_kafka_conf_new();
        if (verbose)
                rd_kafka_conf_set(conf, "debug", "mock,broker", errstr, sizeof(errstr));
        rd_kafka_conf_set(conf, "log_level", verbose ? "7" : "4", errstr, sizeof(errstr));
        rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, errstr, sizeof(errstr));
        if (!rk) {
                cli_error(CMD, "cannot create the client handle: %s", errstr);
                free(topics);
                return 1;
        }
        rd_kafka_mock_cluster_t *mcluster = rd_kafka_mock_cluster_new(rk, (int)brokers);
        if (!mcluster) {
                cli_error(CMD, "cannot create the mock cluster");
                rd_kafka_destroy(rk);
                free(topics);
                return 1;
        }
        int status = 0;
        for (int i = 0; i < n_topics; i++) {
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
                rd_kafka_resp_err_t err =
                    rd_kafka_mock_topic_create(mcluster, name, (int)parts, (int)(brokers < 3 ? brokers : 3));
                if (err) {
                        cli_error(CMD, "cannot create topic %s: %s", name, rd_kafka_err2str(err));
                        status = 1;
                        break;
                }
        }
        free(topics);
        if (status == 0) {
                printf("%s\n", rd_kafka_mock_cluster_bootstraps(mcluster));
                fflush(stdout);
                fprintf(stderr, "kinfer dev-broker: %ld broker(s) at %s; SIGTERM or Ctrl-C stops\n",
                        brokers, rd_kafka_mock_cluster_bootstraps(mcluster));
                int sig = 0;
                while (sigwait(&set, &sig) != 0)
                        ;
                fprintf(stderr, "kinfer dev-broker: signal %d, stopping\n", sig);
        }
        rd_kafka_mock_cluster_destroy(mcluster);
        rd_kafka_destroy(rk);
        return status;
}
