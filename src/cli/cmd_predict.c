/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_predict.c -- `kinfer predict MODEL [FILE] [-k K]`: stream lines through the runtime in
 * batches; a partial batch is classified as soon as input stalls, so it works interactively. */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/runtime/runtime.h"

static void usage(FILE *fp)
{
        fprintf(fp, "Usage: kinfer predict MODEL [FILE|-] [K] [-k K] [--json] [--batch N]\n\n"
                    "Classify each line of FILE (default: stdin). A line may be plain text, TSV\n"
                    "(the text is the last field) or fastText (leading __label__ tokens are skipped).\n"
                    "Prints one line per input line: LABEL<TAB>PROB for the top K labels.\n\n"
                    "  -k K          labels per line (default 1, at most %d)\n"
                    "  --json        one JSON object per line: {\"label\",\"score\",\"topk\":[...]}\n"
                    "  --batch N     records per runtime batch (default 256)\n"
                    "  --fasttext    print __label__LABEL PROB like fasttext predict-prob\n"
                    "  -h, --help    this text\n\n"
                    "As with fastText, K may also be the third argument: predict MODEL FILE K.\n",
                KINFER_TOPK_MAX);
}

typedef struct pbatch_s {
        char **lines;
        size_t *caps;
        const char **texts;
        size_t *lens;
        int32_t n;
} pbatch_t;

static const char *line_text(const char *s, size_t len, size_t *out_len)
{
        const char *tab = memrchr(s, '\t', len);
        if (tab) {
                *out_len = len - (size_t)(tab + 1 - s);
                return tab + 1;
        }
        while (len >= 9 && !strncmp(s, "__label__", 9)) {
                const char *sp = memchr(s, ' ', len);
                if (!sp) {
                        *out_len = 0;
                        return s + len;
                }
                len -= (size_t)(sp + 1 - s);
                s = sp + 1;
        }
        *out_len = len;
        return s;
}

/* printf("%.5f", p) for a probability (finite, in [0, 1]) without printf's cost, which was a
 * tenth of predict's instructions per record: p * 100000 is exact in double (24 + 17 bits), so
 * rounding it to an integer in the default mode (to nearest, ties to even, as glibc's printf
 * rounds) gives the same digits. */
static void put_prob(float p)
{
        double x = nearbyint((double)p * 100000.0);
        if (!(x >= 0 && x <= 100000)) { /* not a probability: printf's answer */
                printf("%.5f", p);
                return;
        }
        long q = (long)x;
        char s[8];
        s[0] = (char)('0' + q / 100000);
        s[1] = '.';
        for (int d = 6; d >= 2; d--, q /= 10)
                s[d] = (char)('0' + q % 10);
        fwrite_unlocked(s, 1, 7, stdout);
}

static int flush(kinfer_runtime_t *rt, const kinfer_model_t *model, pbatch_t *b, int k, int json,
                 int ft, kinfer_prediction_t *out)
{
        char errstr[256];
        if (!b->n)
                return 0;
        if (kinfer_runtime_classify(rt, model, b->texts, b->lens, b->n, k, out, errstr, sizeof(errstr))) {
                cli_error("predict", "%s", errstr);
                return -1;
        }
        for (int32_t i = 0; i < b->n; i++) {
                if (json) {
                        /* the stream's JSON field names (label, score, topk), labels through
                         * core's one escaper; scores are finite (the runtime's guarantee) */
                        kinfer_buf_t jb = {0};
                        kinfer_buf_puts(&jb, "{\"label\":");
                        kinfer_buf_json_cstr(&jb, kinfer_model_label(model, out[i].label[0]));
                        kinfer_buf_printf(&jb, ",\"score\":%.6f,\"topk\":[", (double)out[i].prob[0]);
                        for (int32_t j = 0; j < out[i].n; j++) {
                                kinfer_buf_puts(&jb, j ? ",{\"label\":" : "{\"label\":");
                                kinfer_buf_json_cstr(&jb, kinfer_model_label(model, out[i].label[j]));
                                kinfer_buf_printf(&jb, ",\"score\":%.6f}", (double)out[i].prob[j]);
                        }
                        kinfer_buf_puts(&jb, "]}\n");
                        int oom = jb.oom;
                        if (!oom)
                                fwrite(jb.data, 1, jb.len, stdout);
                        kinfer_buf_free(&jb);
                        if (oom) {
                                cli_error("predict", "out of memory");
                                return -1;
                        }
                        continue;
                }
                for (int32_t j = 0; j < out[i].n; j++) {
                        if (j)
                                putchar_unlocked(ft ? ' ' : '\t');
                        if (ft)
                                fputs_unlocked("__label__", stdout);
                        fputs_unlocked(kinfer_model_label(model, out[i].label[j]), stdout);
                        putchar_unlocked(ft ? ' ' : '\t');
                        put_prob(out[i].prob[j]);
                }
                putchar_unlocked('\n');
        }
        fflush(stdout);
        b->n = 0;
        return 0;
}

int kinfer_cmd_predict(int argc, char **argv)
{
        static const struct option lo[] = {{"json", 0, 0, 'j'}, {"batch", 1, 0, 'b'}, {"fasttext", 0, 0, 'f'},
                                           {"help", 0, 0, 'h'}, {0, 0, 0, 0}};
        long k = 1, batch = 256;
        int json = 0, ft = 0, k_set = 0, c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "k:jb:h", lo, NULL)) != -1) {
                switch (c) {
                case 'k': if (cli_parse_int("predict", "-k", optarg, 1, KINFER_TOPK_MAX, &k)) return 2; k_set = 1; break;
                case 'j': json = 1; break;
                case 'f': ft = 1; break;
                case 'b': if (cli_parse_int("predict", "--batch", optarg, 1, 65536, &batch)) return 2; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        /* fastText's order: predict MODEL FILE K */
        if (argc - optind == 3) {
                if (k_set) {
                        cli_error("predict", "K given twice: -k and a third argument (see --help)");
                        return 2;
                }
                if (cli_parse_int("predict", "K", argv[optind + 2], 1, KINFER_TOPK_MAX, &k))
                        return 2;
                argc--;
        }
        if (argc - optind < 1 || argc - optind > 2) {
                cli_error("predict", "expected MODEL [FILE|-] [K] (see --help)");
                return 2;
        }
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(argv[optind], errstr, sizeof(errstr));
        if (!model) {
                cli_error("predict", "%s", errstr);
                return 1;
        }
        const char *path = argc - optind == 2 ? argv[optind + 1] : "-";
        FILE *fp = strcmp(path, "-") ? fopen(path, "r") : stdin;
        if (!fp) {
                cli_error("predict", "%s: %s", path, strerror(errno));
                kinfer_model_release(model);
                return 1;
        }
        kinfer_runtime_t *rt = kinfer_runtime_new((int32_t)batch, errstr, sizeof(errstr));
        pbatch_t b = {0};
        b.lines = calloc((size_t)batch, sizeof(char *));
        b.caps = calloc((size_t)batch, sizeof(size_t));
        b.texts = calloc((size_t)batch, sizeof(char *));
        b.lens = calloc((size_t)batch, sizeof(size_t));
        kinfer_prediction_t *out = calloc((size_t)batch, sizeof(*out));
        int rc = 0;
        if (!rt || !b.lines || !b.caps || !b.texts || !b.lens || !out) {
                cli_error("predict", "out of memory");
                rc = 1;
                goto done;
        }
        for (;;) {
                ssize_t n = getline(&b.lines[b.n], &b.caps[b.n], fp);
                if (n < 0)
                        break;
                size_t len = (size_t)n;
                while (len && (b.lines[b.n][len - 1] == '\n' || b.lines[b.n][len - 1] == '\r'))
                        len--;
                b.texts[b.n] = line_text(b.lines[b.n], len, &b.lens[b.n]);
                b.n++;
                /* classify when the batch is full, or when no more input is waiting (stdin's
                 * buffer is empty -- glibc's FILE fields -- and poll() says the fd is idle),
                 * so an interactive or slow producer gets its answers line by line */
                struct pollfd pfd = {.fd = fileno(fp), .events = POLLIN};
                int stalled = fp == stdin && fp->_IO_read_ptr >= fp->_IO_read_end && poll(&pfd, 1, 0) == 0;
                if (b.n == batch || stalled) {
                        if (flush(rt, model, &b, (int)k, json, ft, out)) {
                                rc = 1;
                                break;
                        }
                }
        }
        if (ferror(fp)) {
                cli_error("predict", "%s: read error", path);
                rc = 1;
        }
        if (!rc && flush(rt, model, &b, (int)k, json, ft, out))
                rc = 1;
done:
        if (b.lines)
                for (long i = 0; i < batch; i++)
                        free(b.lines[i]);
        free(b.lines);
        free(b.caps);
        free(b.texts);
        free(b.lens);
        free(out);
        kinfer_runtime_destroy(rt);
        if (fp != stdin)
                fclose(fp);
        kinfer_model_release(model);
        return rc;
}
