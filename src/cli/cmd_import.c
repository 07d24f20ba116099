/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_import.c -- `kinfer import fasttext MODEL.bin|MODEL.ftz --output M.kinf`: a fastText
 * supervised model as a kinfer model that gives fastText's predictions (docs/fasttext.md). */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/model/model_write.h"
#include "kinfer/train/fasttext.h"

static void usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer import fasttext MODEL.bin|MODEL.ftz --output M.kinf [options]\n\n"
                "Convert a fastText supervised model (softmax, hs, ns or ova loss; word n-grams;\n"
                "char n-grams; a quantized .ftz, pruned or not) into a kinfer model that gives\n"
                "fastText's predictions: the featurizer runs in mode \"fasttext\" (fastText's\n"
                "tokens, dictionary and hashes, stored in the model), a .ftz's product-quantized\n"
                "rows are decoded to f32 (run kinfer quantize afterwards for int8). The model's\n"
                "lineage records the source file's sha256 (relation imported_from), which\n"
                "kinfer model push registers. A truncated or corrupt file, another magic or an\n"
                "unsupported version is refused with the field and its byte offset.\n"
                "See docs/fasttext.md for what differs from fastText.\n\n"
                "  -o, --output OUT     model file to write (required)\n"
                "      --name NAME      model name stored in OUT (default: the file's base name)\n"
                "      --max-mb N       refuse a model whose decoded tensors need more than N MB\n"
                "                       (default 16384)\n"
                "  -q, --quiet          no progress or summary on stderr\n"
                "  -h, --help           this text\n");
}

static void progress(void *opaque, const char *stage, uint64_t offset, uint64_t size)
{
        (void)opaque;
        fprintf(stderr, "import: %-14s at byte %llu of %llu\n", stage, (unsigned long long)offset,
                (unsigned long long)size);
}

int kinfer_cmd_import(int argc, char **argv)
{
        static const struct option lo[] = {{"output", 1, 0, 'o'}, {"help", 0, 0, 'h'},
                                           {"quiet", 0, 0, 'q'}, {"name", 1, 0, 1},
                                           {"max-mb", 1, 0, 2}, {0, 0, 0, 0}};
        const char *output = NULL, *name = NULL;
        long max_mb = 16384;
        int quiet = 0, c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "o:qh", lo, NULL)) != -1) {
                switch (c) {
                case 'o': output = optarg; break;
                case 'q': quiet = 1; break;
                case 'h': usage(stdout); return 0;
                case 1: name = optarg; break;
                case 2: {
                        char *end;
                        max_mb = strtol(optarg, &end, 10);
                        if (*end || max_mb < 1 || max_mb > (1L << 30)) {
                                cli_error("import", "--max-mb: expected a number of MB (1 to 2^30), got '%s'", optarg);
                                return 2;
                        }
                        break;
                }
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc && !strcmp(argv[optind], "help")) {
                usage(stdout);
                return 0;
        }
        if (optind != argc - 2 || strcmp(argv[optind], "fasttext") || !output) {
                cli_error("import", "expected: import fasttext MODEL.bin|MODEL.ftz --output OUT (see --help)");
                return 2;
        }
        const char *input = argv[optind + 1];
        int fd = open(input, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd < 0 || fstat(fd, &st) || !S_ISREG(st.st_mode)) {
                cli_error("import", "%s: %s", input, fd < 0 ? strerror(errno) : "not a regular file");
                if (fd >= 0)
                        close(fd);
                return 1;
        }
        size_t len = (size_t)st.st_size;
        void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : NULL;
        close(fd);
        if (len && map == MAP_FAILED) {
                cli_error("import", "%s: mmap: %s", input, strerror(errno));
                return 1;
        }
        char *dup = strdup(input);
        const char *base = dup ? basename(dup) : input;
        char defname[128];
        if (!name) { /* the base name without its extension */
                snprintf(defname, sizeof(defname), "%s", base);
                char *dot = strrchr(defname, '.');
                if (dot && dot != defname)
                        *dot = '\0';
                name = defname;
        }
        kinfer_ft_import_opts_t o = {.name = name, .source_name = base,
                                     .max_bytes = (uint64_t)max_mb << 20,
                                     .progress = quiet ? NULL : progress};
        char errstr[512];
        uint8_t *buf = NULL;
        size_t blen = 0;
        kinfer_err_t err = kinfer_fasttext_import(len ? map : "", len, &o, &buf, &blen, errstr, sizeof(errstr));
        if (len)
                munmap(map, len);
        int rc = 0;
        if (err) {
                cli_error("import", "%s", errstr);
                rc = 1;
        } else {
                /* verify what was built exactly as serving will load it, then write it */
                kinfer_model_t *m = kinfer_model_load_mem(buf, blen, errstr, sizeof(errstr));
                free(buf);
                if (!m) {
                        cli_error("import", "%s: the converted model does not load: %s", input, errstr);
                        rc = 1;
                } else if (kinfer_model_save(m, output, errstr, sizeof(errstr))) {
                        cli_error("import", "%s", errstr);
                        rc = 1;
                } else if (!quiet) {
                        fprintf(stderr, "Imported %s (%.1f MB) -> %s (%.1f MB, %d labels, %d rows x %d, sha256 %.16s...)\n",
                                input, (double)len / 1e6, output, (double)kinfer_model_size(m) / 1e6,
                                kinfer_model_n_labels(m), kinfer_model_n_rows(m), kinfer_model_dim(m),
                                kinfer_model_sha256_hex(m));
                }
                kinfer_model_release(m);
        }
        free(dup);
        return rc;
}
