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
                "  -v, --verbose            log librdkafka debug output of the broker\n"
                "  -h, --help               this text\n\n"
                "Limits: about 5 MiB per partition are kept (older records are dropped\n"
                "silently); consumers need a low fetch.wait.max.ms (e.g. 10); read_committed\n"
                "is not honoured.\n",
                DEV_BROKER_PORT, DEV_BROKER_PORT);
}

int kinfer_cmd_dev_broker(int argc, char **argv)
{
        static const struct option opts[] = {
            {"brokers", required_argument, NULL, 'b'},
            {"port", required_argument, NULL, 'p'},
            {"topic", required_argument, NULL, 't'},
            {"verbose", no_argument, NULL, 'v'},
            {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        long brokers = 1, port = DEV_BROKER_PORT;
        int verbose = 0;
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
                int sig = 0;
                while (sigwait(&set, &sig) != 0)
                        ;
                fprintf(stderr, "kinfer dev-broker: signal %d, stopping\n", sig);
        }
        kinfer_dev_broker_destroy(broker);
        return status;
}
