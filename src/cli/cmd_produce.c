/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_produce.c -- `kinfer produce`: turn lines (or TSV rows) of a file or stdin into input
 * records (avro-confluent, avro, json or text) with keys, and produce them -- for tests, the
 * demo and benchmarks. Optionally repeats the input up to a count and paces to a rate. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/codec/codec.h"
#include "kinfer/core/conf.h"
#include "kinfer/core/log.h"
#include "kinfer/kafka/producer.h"

#define CMD "produce"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer produce -b BROKERS -t TOPIC [options] [FILE]\n\n"
                "Produce one input record per line of FILE (or stdin) for `kinfer serve`.\n\n"
                "Options:\n"
                "  -b, --brokers LIST      bootstrap servers\n"
                "  -t, --topic NAME        topic to produce to\n"
                "  -f, --format FMT        avro-confluent | avro | json | text (default json)\n"
                "      --schema FILE       writer schema for --format avro\n"
                "      --schemas-dir DIR   <id>.avsc files for --format avro-confluent\n"
                "      --schema-id N       schema id for --format avro-confluent (default 1)\n"
                "      --schema-registry URL  fetch that id's schema from a Schema Registry when\n"
                "                          --schemas-dir lacks it (http://user:password@host/ for\n"
                "                          basic auth)\n"
                "      --tsv               lines are TAB-separated; the text is the last column\n"
                "      --id-prefix P       record ids are P<n>, n = 0, 1, ... (default \"r\")\n"
                "      --no-id             do not write an id field (the worker uses the key)\n"
                "      --no-key            produce with a null key (default: key = id)\n"
                "  -n, --count N           produce N records, repeating the input as needed\n"
                "                          (default: each line once)\n"
                "      --rate N            at most N records per second\n"
                "  -X key=value            librdkafka property for the producer (e.g. linger.ms=20)\n"
                "  -q, --quiet             no summary line\n"
                "  -h, --help              this text\n\n"
                "Prints \"produced N records in S s (R/s)\" on stderr; exit 0 when every record was\n"
                "delivered.\n");
}

struct produce_state {
        long delivered, failed;
};

static void on_dr(void *opaque, uint64_t token, kinfer_err_t err, const char *reason)
{
        struct produce_state *st = opaque;
        if (err) {
                if (st->failed++ == 0)
                        fprintf(stderr, "kinfer produce: delivery failed: %s\n", reason);
        } else {
                st->delivered++;
        }
}

int kinfer_cmd_produce(int argc, char **argv)
{
        static const struct option opts[] = {
            {"brokers", required_argument, NULL, 'b'}, {"topic", required_argument, NULL, 't'},
            {"format", required_argument, NULL, 'f'}, {"schema", required_argument, NULL, 'S'},
            {"schemas-dir", required_argument, NULL, 'D'}, {"schema-id", required_argument, NULL, 'I'},
            {"schema-registry", required_argument, NULL, 'R'},
            {"tsv", no_argument, NULL, 'T'}, {"id-prefix", required_argument, NULL, 'P'},
            {"no-id", no_argument, NULL, 'N'}, {"no-key", no_argument, NULL, 'K'},
            {"count", required_argument, NULL, 'n'}, {"rate", required_argument, NULL, 'r'},
            {"quiet", no_argument, NULL, 'q'}, {"help", no_argument, NULL, 'h'},
            {NULL, 0, NULL, 0},
        };
        const char *brokers = NULL, *topic = NULL, *format = "json", *schema = "", *schemas_dir = "";
        const char *prefix = "r", *registry = "";
        long schema_id = 1, count = -1, rate = 0;
        int tsv = 0, no_id = 0, no_key = 0, quiet = 0, c;
        char errstr[1024];
        kinfer_conf_t *conf = kinfer_conf_new(errstr, sizeof(errstr));
        if (!conf) {
                cli_error(CMD, "%s", errstr);
                return 1;
        }
        int status = 0;
        optind = 1;
        while (!status && (c = getopt_long(argc, argv, "b:t:f:n:X:qh", opts, NULL)) != -1) {
                switch (c) {
                case 'b': brokers = optarg; break;
                case 't': topic = optarg; break;
                case 'f': format = optarg; break;
                case 'S': schema = optarg; break;
                case 'D': schemas_dir = optarg; break;
                case 'R': registry = optarg; break;
                case 'I': if (cli_parse_int(CMD, "--schema-id", optarg, 0, INT32_MAX, &schema_id)) status = 2; break;
                case 'T': tsv = 1; break;
                case 'P': prefix = optarg; break;
                case 'N': no_id = 1; break;
                case 'K': no_key = 1; break;
                case 'n': if (cli_parse_int(CMD, "--count", optarg, 0, 1L << 40, &count)) status = 2; break;
                case 'r': if (cli_parse_int(CMD, "--rate", optarg, 1, 100000000, &rate)) status = 2; break;
                case 'q': quiet = 1; break;
                case 'X': {
                        char kv[1024];
                        snprintf(kv, sizeof(kv), "kafka.producer.%s", optarg);
                        if (kinfer_conf_set_kv(conf, kv, "-X", errstr, sizeof(errstr))) {
                                cli_error(CMD, "-X %s: %s", optarg, errstr);
                                status = 2;
                        }
                        break;
                }
                case 'h': usage(stdout); kinfer_conf_destroy(conf); return 0;
                default: usage(stderr); status = 2;
                }
        }
        int in_format = kinfer_input_format_parse(format);
        if (!status && (!brokers || !topic)) {
                cli_error(CMD, "--brokers and --topic are required");
                status = 2;
        } else if (!status && in_format < 0) {
                cli_error(CMD, "--format: expected avro-confluent, avro, json or text, got \"%s\"", format);
                status = 2;
        } else if (!status && argc - optind > 1) {
                cli_error(CMD, "at most one input file");
                status = 2;
        }
        if (status) {
                kinfer_conf_destroy(conf);
                return status;
        }
        const char *path = optind < argc ? argv[optind] : "-";
        FILE *in = strcmp(path, "-") ? fopen(path, "r") : stdin;
        if (!in) {
                cli_error(CMD, "%s: cannot open", path);
                kinfer_conf_destroy(conf);
                return 1;
        }
        /* read every line once (repeating needs them in memory anyway) */
        char **lines = NULL;
        size_t n_lines = 0, cap_lines = 0;
        char *line = NULL;
        size_t lcap = 0;
        ssize_t len;
        while ((len = getline(&line, &lcap, in)) != -1) {
                while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                        line[--len] = '\0';
                if (n_lines == cap_lines) {
                        cap_lines = cap_lines ? cap_lines * 2 : 1024;
                        char **nl = realloc(lines, cap_lines * sizeof(*nl));
                        if (!nl)
                                break;
                        lines = nl;
                }
                char *text = line;
                if (tsv) {
                        char *tab = strrchr(line, '\t');
                        if (tab)
                                text = tab + 1;
                }
                lines[n_lines++] = strdup(text);
        }
        free(line);
        if (in != stdin)
                fclose(in);
        if (count < 0)
                count = (long)n_lines;
        if (n_lines == 0 && count > 0) {
                cli_error(CMD, "no input lines");
                kinfer_conf_destroy(conf);
                free(lines);
                return 1;
        }

        kinfer_codec_conf_t cc = {.in_format = (kinfer_input_format_t)in_format, .schemas_dir = schemas_dir,
                                  .schema_path = schema, .id_field = "id", .text_field = "text",
                                  .sr_url = registry};
        kinfer_codec_t *codec = kinfer_codec_new(&cc, errstr, sizeof(errstr));
        struct produce_state st = {0};
        kinfer_producer_t *prod = NULL;
        int tp = -1;
        if (!codec) {
                cli_error(CMD, "%s", errstr);
                status = 1;
        } else if (kinfer_conf_set(conf, "kafka.bootstrap.servers", brokers, "--brokers", errstr, sizeof(errstr)) ||
                   !(prod = kinfer_producer_new(conf, 1000000, on_dr, &st, errstr, sizeof(errstr))) ||
                   (tp = kinfer_producer_topic(prod, topic, errstr, sizeof(errstr))) < 0) {
                cli_error(CMD, "%s", errstr);
                status = 1;
        }
        double t0 = cli_now();
        kinfer_buf_t buf = {0};
        long sent = 0;
        double value_bytes = 0;
        for (long i = 0; i < count && !status; i++) {
                const char *text = lines[(size_t)i % n_lines];
                char id[128];
                snprintf(id, sizeof(id), "%s%ld", prefix, i);
                buf.len = 0;
                if (kinfer_codec_encode_input(codec, (int32_t)schema_id, no_id ? NULL : id, text,
                                              strlen(text), &buf, errstr, sizeof(errstr))) {
                        cli_error(CMD, "line %zu: %s", (size_t)i % n_lines + 1, errstr);
                        status = 1;
                        break;
                }
                if (kinfer_producer_send(prod, tp, no_key ? NULL : id, strlen(id), buf.data, buf.len,
                                         NULL, 0, (uint64_t)i + 1, errstr, sizeof(errstr))) {
                        cli_error(CMD, "%s", errstr);
                        status = 1;
                        break;
                }
                sent++;
                value_bytes += (double)buf.len;
                if ((i & 1023) == 0)
                        kinfer_producer_poll(prod, 0);
                if (rate > 0 && (i & 63) == 63) {
                        double ahead = (double)sent / (double)rate - (cli_now() - t0);
                        if (ahead > 0.001)
                                usleep((useconds_t)(ahead * 1e6));
                }
        }
        if (prod && kinfer_producer_flush(prod, 60000, errstr, sizeof(errstr))) {
                cli_error(CMD, "%s", errstr);
                status = 1;
        }
        double secs = cli_now() - t0;
        if (!quiet && prod)
                fprintf(stderr,
                        "kinfer produce: produced %ld records in %.2f s (%.0f/s), %ld failed, "
                        "mean value %.0f bytes\n",
                        st.delivered, secs, secs > 0 ? (double)st.delivered / secs : 0, st.failed,
                        sent ? value_bytes / (double)sent : 0);
        if (st.failed || st.delivered != sent)
                status = status ? status : 1;
        kinfer_buf_free(&buf);
        kinfer_producer_destroy(prod);
        kinfer_codec_destroy(codec);
        kinfer_conf_destroy(conf);
        for (size_t i = 0; i < n_lines; i++)
                free(lines[i]);
        free(lines);
        return status;
}
