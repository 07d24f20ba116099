/* SPDX-License-Identifier: Apache-2.0 */
/* test_model.c -- the model file: byte-identical round trip, and every kind of damage refused
 * with its own message. */
#include <fcntl.h>
#include <stdio.h>
#include <unistd.h>

#include "kinfer/model/model.h"
#include "kinfer/core/sha256.h"
#include "model_util.h"
#include "test.h"

static char tmpdir[256];

static const char *tmp(const char *name)
{
        static char buf[512];
        snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
        return buf;
}

static void write_bytes(const char *path, const void *buf, size_t len)
{
        FILE *fp = fopen(path, "wb");
        fwrite(buf, 1, len, fp);
        fclose(fp);
}

static uint8_t *read_bytes(const char *path, size_t *lenp)
{
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return NULL;
        fseek(fp, 0, SEEK_END);
        long n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        uint8_t *buf = malloc((size_t)n + 1);
        *lenp = fread(buf, 1, (size_t)n, fp);
        fclose(fp);
        return buf;
}

static void test_roundtrip(void)
{
        size_t len, len2;
        uint8_t *bytes = tm_build(1, 5, 16, 8, 1, &len);
        char errstr[256];
        kinfer_model_t *m = kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "load_mem: %s", errstr);
        if (!m)
                return;
        TEST_ASSERT(kinfer_model_n_labels(m) == 5 && kinfer_model_dim(m) == 16 &&
                    kinfer_model_n_hidden(m) == 1 && kinfer_model_n_rows(m) == 512, "shapes");
        TEST_ASSERT(!strcmp(kinfer_model_label(m, 2), "gamma"), "labels");
        TEST_ASSERT(kinfer_model_label_index(m, "delta") == 3, "label index");
        /* a bucket map alone is not pruning: every trained model has one */
        TEST_ASSERT(!strcmp(kinfer_model_format(m), "f32"), "format %s", kinfer_model_format(m));
        char sha[65];
        kinfer_sha256_hex(bytes, len, sha);
        TEST_ASSERT(!strcmp(sha, kinfer_model_sha256_hex(m)), "identity = sha256 of the file");
        TEST_ASSERT(kinfer_model_save(m, tmp("a.kinf"), errstr, sizeof(errstr)) == KINFER_OK, "save: %s", errstr);
        kinfer_model_t *m2 = kinfer_model_load_file(tmp("a.kinf"), errstr, sizeof(errstr));
        TEST_ASSERT(m2 != NULL, "load_file: %s", errstr);
        if (m2) {
                TEST_ASSERT(kinfer_model_save(m2, tmp("b.kinf"), errstr, sizeof(errstr)) == KINFER_OK, "save 2");
                uint8_t *b = read_bytes(tmp("b.kinf"), &len2);
                TEST_ASSERT(b && len2 == len && !memcmp(b, bytes, len), "save/load/save is byte-identical");
                free(b);
                TEST_ASSERT(!strcmp(kinfer_model_sha256_hex(m2), sha), "same identity");
                kinfer_model_release(m2);
        }
        /* refcounting: keep + 2 releases frees once (ASan checks) */
        kinfer_model_keep(m);
        kinfer_model_release(m);
        kinfer_model_release(m);
        free(bytes);
}

/* Load damaged bytes from a file; expect refusal with @p want in the message. */
static void expect_refused(const char *what, const uint8_t *buf, size_t len, const char *want)
{
        char errstr[512] = "";
        write_bytes(tmp("bad.kinf"), buf, len);
        kinfer_model_t *m = kinfer_model_load_file(tmp("bad.kinf"), errstr, sizeof(errstr));
        TEST_ASSERT(m == NULL, "%s: accepted", what);
        TEST_ASSERT(strstr(errstr, want) != NULL, "%s: message \"%s\" lacks \"%s\"", what, errstr, want);
        TEST_ASSERT(strstr(errstr, "bad.kinf") != NULL, "%s: message names the file: %s", what, errstr);
        kinfer_model_release(m);
}

static void fix_checksum(uint8_t *buf, size_t len)
{
        kinfer_sha256(buf + 64, len - 64, buf + 24);
}

/* Index of the first tensor of @p kind in a serialized model, or -1. */
static int tensor_index(const uint8_t *bytes, uint32_t kind)
{
        uint32_t n;
        memcpy(&n, bytes + 8, 4);
        for (uint32_t i = 0; i < n; i++) {
                uint32_t k;
                memcpy(&k, bytes + 64 + 32 * i, 4);
                if (k == kind)
                        return (int)i;
        }
        return -1;
}

/* Offset of the data of tensor @p i. */
static uint64_t tensor_offset(const uint8_t *bytes, int i)
{
        uint64_t off;
        memcpy(&off, bytes + 64 + 32 * i + 16, 8);
        return off;
}

static void test_corrupt(void)
{
        size_t len;
        uint8_t *good = tm_build(2, 4, 0, 0, 1, &len);
        uint8_t *b = malloc(len + 16);

        expect_refused("empty", good, 0, "truncated: 0 bytes");
        expect_refused("short header", good, 40, "truncated: 40 bytes");
        expect_refused("truncated", good, len / 2, "truncated: header says");

        memcpy(b, good, len);
        b[0] = 'X';
        expect_refused("magic", b, len, "bad magic");

        memcpy(b, good, len);
        b[4] = 2;
        expect_refused("version", b, len, "unsupported format version 2");

        memcpy(b, good, len);
        b[len - 100] ^= 0x40;
        expect_refused("bit flip", b, len, "checksum mismatch");

        memcpy(b, good, len);
        b[len] = 0;
        expect_refused("trailing", b, len + 1, "trailing data");

        /* tensor 0's offset points past the end (checksum made valid again) */
        memcpy(b, good, len);
        uint64_t off = (uint64_t)len + 64;
        memcpy(b + 64 + 16, &off, 8);
        fix_checksum(b, len);
        expect_refused("tensor offset", b, len, "lies outside the file");

        /* find the EMBED entry and lie about its shape */
        int embed = tensor_index(good, KINFER_T_EMBED), map = tensor_index(good, KINFER_T_BUCKET_MAP);
        TEST_ASSERT(embed >= 0 && map >= 0, "tensors found");
        memcpy(b, good, len);
        uint32_t cols = 3;
        memcpy(b + 64 + 32 * embed + 12, &cols, 4);
        fix_checksum(b, len);
        expect_refused("shape", b, len, "its shape");

        /* a bucket map entry pointing past the table */
        memcpy(b, good, len);
        uint64_t moff = tensor_offset(good, map);
        int32_t bad_row = 1 << 20;
        memcpy(b + moff + 4 * 6, &bad_row, 4);
        fix_checksum(b, len);
        expect_refused("bucket map", b, len, "bucket map entry 6 points at row");

        /* a crafted label count must not make the loader allocate gigabytes (fuzzer finding) */
        int arch_i = tensor_index(good, KINFER_T_ARCH);
        memcpy(b, good, len);
        uint64_t aoff = tensor_offset(good, arch_i);
        int32_t huge = 1000000000;
        memcpy(b + aoff + 8, &huge, 4);
        fix_checksum(b, len);
        expect_refused("label count", b, len, "architecture out of range");

        /* a model of an older featurizer (another token hash) is refused, not misread */
        int feat_i = tensor_index(good, KINFER_T_FEATURIZER);
        memcpy(b, good, len);
        uint64_t foff = tensor_offset(good, feat_i);
        uint32_t v1 = 1;
        memcpy(b + foff, &v1, 4);
        fix_checksum(b, len);
        expect_refused("featurizer version", b, len, "featurizer version 1");

        /* unknown tensor kind */
        memcpy(b, good, len);
        uint32_t kind = 999;
        memcpy(b + 64, &kind, 4);
        fix_checksum(b, len);
        expect_refused("kind", b, len, "unknown kind 999");

        char errstr[256];
        TEST_ASSERT(!kinfer_model_load_file(tmp("does-not-exist.kinf"), errstr, sizeof(errstr)) &&
                    strstr(errstr, "does-not-exist.kinf: No such file"), "missing file: %s", errstr);
        free(b);
        free(good);
}

static void test_lineage_meta(void)
{
        size_t len;
        uint8_t *bytes = tm_build(3, 4, 0, 0, 0, &len);
        char errstr[256];
        kinfer_model_t *parent = kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr));
        TEST_ASSERT(parent != NULL, "%s", errstr);
        if (!parent)
                return;
        char *meta = kinfer_meta_derive(parent, "child", "quantize", "quantized_from", "{\"bits\": 8}", NULL, 0, NULL);
        TEST_ASSERT(meta && strstr(meta, kinfer_model_sha256_hex(parent)), "parent sha in meta");
        /* a model carrying that meta exposes the parent through the accessors */
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        uint32_t skip = KINFER_T_META;
        kinfer_model_builder_copy(mb, parent, &skip, 1);
        kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta), meta, strlen(meta));
        uint8_t *cb;
        size_t clen;
        kinfer_model_builder_serialize(mb, &cb, &clen, errstr, sizeof(errstr));
        kinfer_model_t *child = kinfer_model_load_mem(cb, clen, errstr, sizeof(errstr));
        TEST_ASSERT(child != NULL, "%s", errstr);
        if (child) {
                TEST_ASSERT(!strcmp(kinfer_model_name(child), "child"), "name %s", kinfer_model_name(child));
                TEST_ASSERT(!strcmp(kinfer_model_lineage_method(child), "quantize"), "method");
                TEST_ASSERT(kinfer_model_n_parents(child) == 1, "one parent");
                const kinfer_model_parent_t *p = kinfer_model_parent(child, 0);
                TEST_ASSERT(p && !strcmp(p->sha256, kinfer_model_sha256_hex(parent)) &&
                            !strcmp(p->relation, "quantized_from") && !strcmp(p->name, "tiny"), "parent fields");
                TEST_ASSERT(strcmp(kinfer_model_sha256_hex(child), kinfer_model_sha256_hex(parent)), "new identity");
        }
        kinfer_model_release(child);
        kinfer_model_builder_destroy(mb);
        free(cb);
        free(meta);
        kinfer_model_release(parent);
        free(bytes);
}

/* @p base with its META replaced by @p meta (@p len bytes), loaded; NULL with errstr if refused */
static kinfer_model_t *with_meta(const kinfer_model_t *base, const char *meta, size_t len, char *errstr,
                                 size_t errstr_size)
{
        kinfer_model_builder_t *mb = kinfer_model_builder_new();
        uint32_t skip = KINFER_T_META;
        kinfer_model_builder_copy(mb, base, &skip, 1);
        kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)len, meta, len);
        uint8_t *b = NULL;
        size_t blen = 0;
        kinfer_model_t *m = NULL;
        if (!kinfer_model_builder_serialize(mb, &b, &blen, errstr, errstr_size))
                m = kinfer_model_load_mem(b, blen, errstr, errstr_size);
        free(b);
        kinfer_model_builder_destroy(mb);
        return m;
}

/* META is read strictly (a bad one is refused with a clear message) and derived META keeps
 * jansson's JSON_INDENT(2) layout byte for byte. */
static void test_meta_json(void)
{
        size_t len;
        uint8_t *bytes = tm_build(3, 4, 0, 0, 0, &len);
        char errstr[256];
        kinfer_model_t *base = kinfer_model_load_mem(bytes, len, errstr, sizeof(errstr));
        TEST_ASSERT(base != NULL, "%s", errstr);
        if (!base) {
                free(bytes);
                return;
        }
        static const char *bad[] = {
            "[1]", "\"name\"", "", "{\"name\": \"x\",}", "{\"name\": \"x\"} trailing",
            "{\"name\": \"\\ud800\"}", "{\"name\": \"a\", \"name\": \"b\"}", "{\"v\": 1e999}",
            "{\"v\": 99999999999999999999}", "{\"name\": \"\\q\"}", "{\"name\": \"\xc0\xaf\"}",
        };
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                kinfer_model_t *m = with_meta(base, bad[i], strlen(bad[i]), errstr, sizeof(errstr));
                TEST_ASSERT(!m && strstr(errstr, "metadata is not a JSON object"), "bad[%zu] %s: %s", i, bad[i],
                            m ? "accepted" : errstr);
                kinfer_model_release(m);
        }
        char deep[300];
        memset(deep, 0, sizeof(deep));
        for (int i = 0; i < 70; i++)
                memcpy(deep + 4 * i, "{\"\":", 4);
        kinfer_model_t *m = with_meta(base, deep, strlen(deep), errstr, sizeof(errstr));
        TEST_ASSERT(!m && strstr(errstr, "metadata is not a JSON object") && strstr(errstr, "deeper"), "%s", errstr);
        kinfer_model_release(m);
        TEST_ASSERT(!with_meta(base, "{}\0", 3, errstr, sizeof(errstr)), "NUL after the object");

        const char *pmeta = "{\"name\": \"p\", \"version\": 3, \"hyperparameters\": {\"lr\": 0.2, \"dim\": 0, "
                            "\"dense\": []}, \"evaluation\": {\"a\": 1}, \"lineage\": {\"method\": \"train\"}}";
        kinfer_model_t *parent = with_meta(base, pmeta, strlen(pmeta), errstr, sizeof(errstr));
        TEST_ASSERT(parent != NULL, "%s", errstr);
        if (parent) {
                char *meta = kinfer_meta_derive(parent, "child", "quantize", "quantized_from", "{\"bits\": 8}",
                                                NULL, 0, "{\"acc\": 0.5}");
                char want[1024];
                snprintf(want, sizeof(want),
                         "{\n"
                         "  \"name\": \"child\",\n"
                         "  \"hyperparameters\": {\n"
                         "    \"lr\": 0.20000000000000001,\n"
                         "    \"dim\": 0,\n"
                         "    \"dense\": []\n"
                         "  },\n"
                         "  \"lineage\": {\n"
                         "    \"method\": \"quantize\",\n"
                         "    \"params\": {\n"
                         "      \"bits\": 8\n"
                         "    },\n"
                         "    \"parents\": [\n"
                         "      {\n"
                         "        \"sha256\": \"%s\",\n"
                         "        \"name\": \"p\",\n"
                         "        \"version\": 3,\n"
                         "        \"relation\": \"quantized_from\"\n"
                         "      }\n"
                         "    ]\n"
                         "  },\n"
                         "  \"created_at\": \"YYYY-MM-DDTHH:MM:SSZ\",\n"
                         "  \"evaluation\": {\n"
                         "    \"acc\": 0.5\n"
                         "  }\n"
                         "}",
                         kinfer_model_sha256_hex(parent));
                char *ts = meta ? strstr(meta, "\"created_at\": \"") : NULL;
                TEST_ASSERT(ts && strlen(ts) > 35 && ts[35] == '"', "created_at: %s", meta);
                if (ts && strlen(ts) > 35)
                        memcpy(ts + 15, "YYYY-MM-DDTHH:MM:SSZ", 20);
                TEST_ASSERT(meta && !strcmp(meta, want), "derived META:\n%s\n---- want\n%s", meta, want);
                free(meta);
                /* no parent, bad params: lineage with {} params and no parents */
                meta = kinfer_meta_derive(NULL, NULL, "train", "trained_from", "not json", NULL, 0, NULL);
                TEST_ASSERT(meta && !strncmp(meta, "{\n  \"created_at\": \"", 18) &&
                                strstr(meta, "\",\n  \"lineage\": {\n    \"method\": \"train\",\n    \"params\": {},\n"
                                             "    \"parents\": []\n  }\n}"),
                            "no parent: %s", meta);
                free(meta);
        }
        kinfer_model_release(parent);
        kinfer_model_release(base);
        free(bytes);
}

/* Non-finite weights and bad labels are refused at load, naming the tensor or the label's
 * index (issue 16: a diverged training run's NaN model used to load and crash kinfer eval). */
static void test_nonfinite_and_labels(void)
{
        static const struct { int poison, D, H; const char *want; } cases[] = {
            {TM_POISON_EMBED_NAN, 0, 0, "embedding table: the value at row 3, column 1"},
            {TM_POISON_EMBED_NAN, 8, 4, "embedding table: the value at row 3, column 1"},
            {TM_POISON_BIAS_INF, 8, 0, "bias: the value at row 0, column 7"},
            {TM_POISON_HIDDEN_NAN, 8, 4, "hidden layer 0: the value at row 1, column 2"},
            {TM_POISON_OUT_B_INF, 8, 4, "output layer bias: the value at row 0, column 0"},
        };
        char errstr[256];
        for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
                size_t len;
                uint8_t *b = tm_build_ex(3, 4, cases[i].D, cases[i].H, 0, NULL, cases[i].poison, &len);
                errstr[0] = '\0';
                kinfer_model_t *m = kinfer_model_load_mem(b, len, errstr, sizeof(errstr));
                TEST_ASSERT(!m && strstr(errstr, cases[i].want) && strstr(errstr, "not a finite number"),
                            "case %zu: %s", i, m ? "loaded" : errstr);
                kinfer_model_release(m);
                free(b);
        }
        const char *bad[][4] = {
            {"ok", "two\nlines", "c", "d"},
            {"ok", "b", "tab\there", "d"},
            {"ok", "b", "c", "\x1b[2Jclear"},
            {"ok", "bad\xff", "c", "d"},
            {"ok", "", "c", "d"},
        };
        const int bad_index[] = {1, 2, 3, 1, 1};
        for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
                size_t len;
                uint8_t *b = tm_build_ex(3, 4, 0, 0, 0, bad[i], TM_POISON_NONE, &len);
                errstr[0] = '\0';
                kinfer_model_t *m = kinfer_model_load_mem(b, len, errstr, sizeof(errstr));
                char want[32];
                snprintf(want, sizeof(want), "label %d:", bad_index[i]);
                TEST_ASSERT(!m && strstr(errstr, want), "bad label set %zu: %s", i, m ? "loaded" : errstr);
                kinfer_model_release(m);
                free(b);
        }
        const char *good[4] = {"a\"b\\c", "caf\xc3\xa9", "two words", "d"};
        size_t len;
        uint8_t *b = tm_build_ex(3, 4, 0, 0, 0, good, TM_POISON_NONE, &len);
        kinfer_model_t *m = kinfer_model_load_mem(b, len, errstr, sizeof(errstr));
        TEST_ASSERT(m && !strcmp(kinfer_model_label(m, 0), "a\"b\\c"), "good labels: %s", m ? "" : errstr);
        kinfer_model_release(m);
        free(b);
}

/* Resident kB of this process's mappings of @p path (/proc/self/smaps), or -1. */
static long mapping_rss_kb(const char *path)
{
        FILE *fp = fopen("/proc/self/smaps", "r");
        if (!fp)
                return -1;
        char line[1024];
        long rss = -1;
        int in = 0;
        unsigned long a, b;
        while (fgets(line, sizeof(line), fp)) {
                long kb;
                if (sscanf(line, "%lx-%lx ", &a, &b) == 2)
                        in = strstr(line, path) != NULL;
                else if (in && sscanf(line, "Rss: %ld kB", &kb) == 1)
                        rss = (rss < 0 ? 0 : rss) + kb;
        }
        fclose(fp);
        return rss;
}

/* Write @p path back and drop it from the page cache, so that the load reads it as a server
 * reads a model file written some time before. A file just written can sit in the page cache
 * as 2 MiB folios that are mapped whole; on this machine's kernel (6.18) one of them was mapped
 * back during the rest of the load, which made the count below depend on the page cache, not on
 * the loader. */
static void evict(const char *path)
{
        int fd = open(path, O_RDONLY);
        if (fd < 0)
                return;
        if (fdatasync(fd) || posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED)) {
        }
        close(fd);
}

/* A dense bucket map is read once at load, to derive the rank index: a mapped model gives its
 * pages back (a 4 MiB map here), and reading it again later gives the same bytes. */
static void test_map_pages_released(void)
{
        size_t len, len2;
        uint8_t *bytes = tm_build_sized(5, 3, 0, 0, 1, NULL, TM_POISON_NONE, 1 << 20, &len);
        TEST_ASSERT(bytes != NULL, "build");
        if (!bytes)
                return;
        write_bytes(tmp("map.kinf"), bytes, len);
        evict(tmp("map.kinf"));
        char errstr[256];
        kinfer_model_t *m = kinfer_model_load_file(tmp("map.kinf"), errstr, sizeof(errstr));
        TEST_ASSERT(m != NULL, "load_file: %s", errstr);
        if (m) {
                long rss = mapping_rss_kb(tmp("map.kinf")), map_kb = (4L << 20) / 1024;
                TEST_ASSERT(rss >= 0 && rss <= (long)(len / 1024) - map_kb + 8,
                            "resident %ld kB of a %zu kB file with a %ld kB bucket map", rss, len / 1024,
                            map_kb);
                /* saving writes the blob, so it reads the released pages again */
                TEST_ASSERT(kinfer_model_save(m, tmp("map2.kinf"), errstr, sizeof(errstr)) == KINFER_OK,
                            "save: %s", errstr);
                uint8_t *b = read_bytes(tmp("map2.kinf"), &len2);
                TEST_ASSERT(b && len2 == len && !memcmp(b, bytes, len), "released pages read back the same");
                free(b);
                kinfer_model_release(m);
        }
        free(bytes);
}

int main(void)
{
        snprintf(tmpdir, sizeof(tmpdir), "/tmp/kinfer-test-model.XXXXXX");
        if (!mkdtemp(tmpdir))
                return 1;
        TEST_RUN(test_roundtrip);
        TEST_RUN(test_corrupt);
        TEST_RUN(test_lineage_meta);
        TEST_RUN(test_meta_json);
        TEST_RUN(test_nonfinite_and_labels);
        TEST_RUN(test_map_pages_released);
        char cmd[300];
        snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
        if (system(cmd)) {
        }
        return TEST_DONE();
}
