/* SPDX-License-Identifier: Apache-2.0 */
/* fasttext_import.c -- a fastText .bin/.ftz (supervised) read with bounds on every count and
 * turned into a kinfer model (kinfer/train/fasttext.h). The layout read here is fastText's
 * (version 12, and 11: no char n-grams): magic, version, Args::load, Dictionary::load, the input
 * matrix (DenseMatrix or QuantMatrix), qout, the output matrix. */
#include "kinfer/train/fasttext.h"

#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/json.h"
#include "kinfer/core/sha256.h"
#include "kinfer/core/utf8.h"
#include "kinfer/model/model_write.h"
#include "kinfer/text/fasttext.h"

#define FT_LABEL "__label__"
#define KSUB 256

typedef struct rd_s {
        const uint8_t *p;
        size_t len, off;
        const char *file;
        char *errstr;
        size_t errstr_size;
        kinfer_err_t err;
} rd_t;

static int fail(rd_t *r, kinfer_err_t code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
static int fail(rd_t *r, kinfer_err_t code, const char *fmt, ...)
{
        char msg[400];
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg, sizeof(msg), fmt, ap);
        va_end(ap);
        kinfer_seterr(r->errstr, r->errstr_size, code, "%s: %s", r->file, msg);
        r->err = code;
        return -1;
}

static size_t left(const rd_t *r)
{
        return r->len - r->off;
}

/* Read @p n bytes of field @p what. */
static int get(rd_t *r, void *out, size_t n, const char *what)
{
        if (left(r) < n)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "truncated: %s at offset %zu needs %zu bytes, %zu left", what, r->off, n,
                            left(r));
        memcpy(out, r->p + r->off, n);
        r->off += n;
        return 0;
}

static int get_i32(rd_t *r, int32_t *v, const char *what)
{
        return get(r, v, 4, what);
}

static int get_i64(rd_t *r, int64_t *v, const char *what)
{
        return get(r, v, 8, what);
}

/* A bool as fastText writes it: one byte, 0 or 1. */
static int get_bool(rd_t *r, int *v, const char *what)
{
        uint8_t b = 0;
        size_t at = r->off;
        if (get(r, &b, 1, what))
                return -1;
        if (b > 1)
                return fail(r, KINFER_ERR__BAD_FORMAT, "%s at offset %zu is %u, not a bool", what, at, b);
        *v = b;
        return 0;
}

typedef struct pq_s {
        int32_t dim, nsubq, dsub, lastdsub;
        const uint8_t *centroids; /* dim * 256 floats (unaligned: read with memcpy) */
} pq_t;

static int get_pq(rd_t *r, pq_t *pq, int32_t want_dim, const char *what)
{
        size_t at = r->off;
        if (get_i32(r, &pq->dim, what) || get_i32(r, &pq->nsubq, what) || get_i32(r, &pq->dsub, what) ||
            get_i32(r, &pq->lastdsub, what))
                return -1;
        if (pq->dim != want_dim || pq->dsub < 1 || pq->dsub > pq->dim)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "%s at offset %zu: dim %d, dsub %d (expected dim %d, 1 <= dsub <= dim)", what,
                            at, pq->dim, pq->dsub, want_dim);
        int32_t nsubq = pq->dim / pq->dsub + (pq->dim % pq->dsub ? 1 : 0);
        int32_t last = pq->dim % pq->dsub ? pq->dim % pq->dsub : pq->dsub;
        if (pq->nsubq != nsubq || pq->lastdsub != last)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "%s at offset %zu: nsubq %d, lastdsub %d do not follow from dim %d, dsub %d",
                            what, at, pq->nsubq, pq->lastdsub, pq->dim, pq->dsub);
        size_t n = (size_t)pq->dim * KSUB * 4;
        if (left(r) < n)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "truncated: %s centroids at offset %zu need %zu bytes, %zu left", what,
                            r->off, n, left(r));
        pq->centroids = r->p + r->off;
        r->off += n;
        return 0;
}

/* ProductQuantizer::get_centroids(m, i)[j] */
static float pq_c(const pq_t *pq, int32_t m, uint8_t i, int32_t j)
{
        size_t idx = m == pq->nsubq - 1 ? (size_t)m * KSUB * pq->dsub + (size_t)i * pq->lastdsub + j
                                        : ((size_t)m * KSUB + i) * pq->dsub + j;
        float v;
        memcpy(&v, pq->centroids + 4 * idx, 4);
        return v;
}

/* A matrix of the file: dense (m x n f32) or quantized (decoded into f32 here). */
typedef struct mat_s {
        int64_t m, n;
        const uint8_t *dense; /* m*n floats in the file, or NULL */
        int quant, qnorm;
        const uint8_t *codes, *norm_codes;
        pq_t pq, npq;
} mat_t;

static int get_matrix(rd_t *r, mat_t *mt, int quant, int32_t dim, const char *what)
{
        memset(mt, 0, sizeof(*mt));
        mt->quant = quant;
        char f[64];
        if (quant) {
                snprintf(f, sizeof(f), "%s qnorm", what);
                if (get_bool(r, &mt->qnorm, f))
                        return -1;
        }
        size_t at = r->off;
        snprintf(f, sizeof(f), "%s shape", what);
        if (get_i64(r, &mt->m, f) || get_i64(r, &mt->n, f))
                return -1;
        if (mt->m < 0 || mt->m > INT32_MAX || mt->n != dim)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "%s at offset %zu is %" PRId64 " x %" PRId64 " (expected rows in [0, 2^31), %d columns)",
                            what, at, mt->m, mt->n, dim);
        if (!quant) {
                uint64_t bytes = (uint64_t)mt->m * (uint64_t)mt->n * 4;
                if (left(r) < bytes)
                        return fail(r, KINFER_ERR__BAD_FORMAT,
                                    "truncated: %s data at offset %zu needs %" PRIu64 " bytes, %zu left",
                                    what, r->off, bytes, left(r));
                mt->dense = r->p + r->off;
                r->off += bytes;
                return 0;
        }
        int32_t codesize = 0;
        at = r->off;
        snprintf(f, sizeof(f), "%s codesize", what);
        if (get_i32(r, &codesize, f))
                return -1;
        if (codesize < 0 || (size_t)codesize > left(r))
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "%s codesize %d at offset %zu is negative or past the end of the file (%zu left)",
                            what, codesize, at, left(r));
        mt->codes = r->p + r->off;
        r->off += (size_t)codesize;
        snprintf(f, sizeof(f), "%s product quantizer", what);
        if (get_pq(r, &mt->pq, dim, f))
                return -1;
        if ((int64_t)codesize != mt->m * mt->pq.nsubq)
                return fail(r, KINFER_ERR__BAD_FORMAT,
                            "%s codesize %d at offset %zu is not rows %" PRId64 " x nsubq %d", what, codesize,
                            at, mt->m, mt->pq.nsubq);
        if (mt->qnorm) {
                if (left(r) < (uint64_t)mt->m)
                        return fail(r, KINFER_ERR__BAD_FORMAT,
                                    "truncated: %s norm codes at offset %zu need %" PRId64 " bytes, %zu left",
                                    what, r->off, mt->m, left(r));
                mt->norm_codes = r->p + r->off;
                r->off += (size_t)mt->m;
                snprintf(f, sizeof(f), "%s norm quantizer", what);
                if (get_pq(r, &mt->npq, 1, f))
                        return -1;
        }
        return 0;
}

/* Row @p t of @p mt as f32 (QuantMatrix::addRowToVector's values: norm * centroid). */
static void mat_row(const mat_t *mt, int64_t t, float *out)
{
        if (!mt->quant) {
                memcpy(out, mt->dense + (size_t)t * (size_t)mt->n * 4, (size_t)mt->n * 4);
                return;
        }
        float norm = 1.0f;
        if (mt->qnorm)
                norm = pq_c(&mt->npq, 0, mt->norm_codes[t], 0);
        const uint8_t *code = mt->codes + (size_t)mt->pq.nsubq * (size_t)t;
        for (int32_t m = 0; m < mt->pq.nsubq; m++) {
                int32_t d = m == mt->pq.nsubq - 1 ? mt->pq.lastdsub : mt->pq.dsub;
                for (int32_t j = 0; j < d; j++)
                        out[m * mt->pq.dsub + j] = norm * pq_c(&mt->pq, m, code[m], j);
        }
}

/* HierarchicalSoftmaxLoss::buildTree from the label counts: children of internal nodes. */
static int32_t *build_tree(const int64_t *counts, int32_t osz)
{
        int32_t nn = 2 * osz - 1;
        int64_t *cnt = malloc((size_t)nn * sizeof(int64_t));
        int32_t *kids = malloc((size_t)(osz > 1 ? osz - 1 : 1) * 2 * sizeof(int32_t));
        if (!cnt || !kids) {
                free(cnt);
                free(kids);
                return NULL;
        }
        for (int32_t i = 0; i < nn; i++)
                cnt[i] = i < osz ? counts[i] : (int64_t)1e15;
        int32_t leaf = osz - 1, node = osz;
        for (int32_t i = osz; i < nn; i++) {
                int32_t mini[2] = {0, 0};
                for (int j = 0; j < 2; j++) {
                        /* node < i: a node not built yet is never taken (fastText reads
                         * its 1e15 sentinel; counts are bounded below it at import) */
                        if (leaf >= 0 && (node >= i || cnt[leaf] < cnt[node]))
                                mini[j] = leaf--;
                        else
                                mini[j] = node++;
                }
                kids[2 * (i - osz)] = mini[0];
                kids[2 * (i - osz) + 1] = mini[1];
                cnt[i] = cnt[mini[0]] + cnt[mini[1]];
        }
        free(cnt);
        return kids;
}

static const char *loss_name(int32_t loss)
{
        switch (loss) {
        case 1: return "hs";
        case 2: return "ns";
        case 3: return "softmax";
        case 4: return "ova";
        default: return "?";
        }
}

static void stage(const kinfer_ft_import_opts_t *o, const char *what, const rd_t *r)
{
        if (o && o->progress)
                o->progress(o->opaque, what, r->off, r->len);
}

kinfer_err_t kinfer_fasttext_import(const void *buf, size_t len, const kinfer_ft_import_opts_t *opts,
                                    uint8_t **outp, size_t *outlenp, char *errstr,
                                    size_t errstr_size)
{
        kinfer_ft_import_opts_t defaults = {0};
        const kinfer_ft_import_opts_t *o = opts ? opts : &defaults;
        rd_t rr = {buf, len, 0, o->source_name ? o->source_name : "model", errstr, errstr_size, KINFER_OK};
        rd_t *r = &rr;
        const uint64_t max_bytes = o->max_bytes ? o->max_bytes : (uint64_t)16 << 30;
        const char **words = NULL;
        uint32_t *wlens = NULL;
        int64_t *lcounts = NULL;
        char **labels = NULL;
        int32_t *bmap = NULL, *tree = NULL;
        float *embed = NULL, *outw = NULL;
        uint8_t *dict = NULL, *lab = NULL;
        char *meta = NULL;
        kinfer_model_builder_t *mb = NULL;
        int32_t size = 0, nwords = 0, nlabels = 0;
        *outp = NULL;
        *outlenp = 0;

        /* ---- header and Args ---- */
        stage(o, "header", r);
        int32_t magic = 0, version = 0;
        if (get_i32(r, &magic, "magic"))
                goto out;
        if (magic != KINFER_FT_MAGIC) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "not a fastText model: magic %d at offset 0 (fastText's is %d)", magic, KINFER_FT_MAGIC);
                goto out;
        }
        if (get_i32(r, &version, "version"))
                goto out;
        if (version != 11 && version != 12) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "unsupported fastText version %d at offset 4 (kinfer reads versions 11 and 12)", version);
                goto out;
        }
        int32_t a[12] = {0};
        double t_sample = 0;
        static const char *const arg_names[12] = {"dim", "ws", "epoch", "minCount", "neg", "wordNgrams",
                                                  "loss", "model", "bucket", "minn", "maxn",
                                                  "lrUpdateRate"};
        for (int i = 0; i < 12; i++) {
                char f[48];
                snprintf(f, sizeof(f), "args.%s", arg_names[i]);
                if (get_i32(r, &a[i], f))
                        goto out;
        }
        if (get(r, &t_sample, 8, "args.t"))
                goto out;
        int32_t dim = a[0], word_ngrams = a[5], loss = a[6], mtype = a[7], bucket = a[8], minn = a[9],
                maxn = a[10];
        if (version == 11)
                maxn = 0; /* fastText: old supervised models have no char n-grams */
        if (mtype != 3) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "args.model at offset 36 is %d (%s): only supervised classifiers can be imported", mtype,
                     mtype == 1 ? "cbow" : mtype == 2 ? "skipgram" : "unknown");
                goto out;
        }
        if (loss < 1 || loss > 4) {
                fail(r, KINFER_ERR__BAD_FORMAT, "args.loss at offset 32 is %d (hs 1, ns 2, softmax 3, ova 4)", loss);
                goto out;
        }
        if (dim < 1 || dim > 65536) {
                fail(r, KINFER_ERR__BAD_FORMAT, "args.dim at offset 8 is %d (1 to 65536)", dim);
                goto out;
        }
        if (word_ngrams < 0 || word_ngrams > KINFER_FT_MAX_NGRAM || maxn < 0 || maxn > KINFER_FT_MAX_NGRAM ||
            (maxn > 0 && (minn < 0 || minn > KINFER_FT_MAX_NGRAM))) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "args.wordNgrams %d, minn %d, maxn %d (offsets 28, 44, 48) out of range (0 to %d)",
                     word_ngrams, minn, maxn, KINFER_FT_MAX_NGRAM);
                goto out;
        }
        if (maxn == 0)
                minn = 0;
        if (bucket < 0 || (uint32_t)bucket > KINFER_FT_MAX_BUCKET) {
                fail(r, KINFER_ERR__BAD_FORMAT, "args.bucket at offset 40 is %d (0 to 2^30)", bucket);
                goto out;
        }
        if (bucket == 0 && (maxn > 0 || word_ngrams > 1)) {
                fail(r, KINFER_ERR__BAD_FORMAT, "args.bucket is 0 but the model has n-grams (wordNgrams %d, maxn %d)",
                     word_ngrams, maxn);
                goto out;
        }

        /* ---- Dictionary ---- */
        stage(o, "dictionary", r);
        int64_t ntokens = 0, pruneidx_size = 0;
        size_t dict_at = r->off;
        if (get_i32(r, &size, "dictionary size") || get_i32(r, &nwords, "dictionary nwords") ||
            get_i32(r, &nlabels, "dictionary nlabels") || get_i64(r, &ntokens, "dictionary ntokens") ||
            get_i64(r, &pruneidx_size, "dictionary pruneidx_size"))
                goto out;
        if (nwords < 0 || (uint32_t)nwords > KINFER_FT_MAX_WORDS || nlabels < 1 || nlabels > 65536 ||
            (int64_t)size != (int64_t)nwords + nlabels) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "dictionary at offset %zu: size %d, nwords %d, nlabels %d (need size = nwords + nlabels, "
                     "nwords up to 30,000,000, 1 to 65536 labels)",
                     dict_at, size, nwords, nlabels);
                goto out;
        }
        if ((uint64_t)size * 10 > left(r)) { /* an entry is at least 10 bytes: bound before allocating */
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "truncated: %d dictionary entries at offset %zu need at least %" PRIu64 " bytes, %zu left",
                     size, r->off, (uint64_t)size * 10, left(r));
                goto out;
        }
        if ((uint64_t)nwords + (uint64_t)bucket == 0) {
                fail(r, KINFER_ERR__BAD_FORMAT, "the model has no words and no buckets: no input at all");
                goto out;
        }
        words = calloc((size_t)nwords + 1, sizeof(*words));
        wlens = calloc((size_t)nwords + 1, sizeof(*wlens));
        lcounts = calloc((size_t)nlabels, sizeof(*lcounts));
        labels = calloc((size_t)nlabels, sizeof(*labels));
        if (!words || !wlens || !lcounts || !labels) {
                fail(r, KINFER_ERR__NOMEM, "out of memory (dictionary of %d entries)", size);
                goto out;
        }
        for (int32_t i = 0; i < size; i++) {
                size_t at = r->off;
                const uint8_t *z = memchr(r->p + r->off, 0, left(r));
                if (!z) {
                        fail(r, KINFER_ERR__BAD_FORMAT,
                             "truncated: dictionary entry %d at offset %zu has no terminating NUL", i, at);
                        goto out;
                }
                const char *w = (const char *)(r->p + r->off);
                size_t wl = (size_t)(z - (r->p + r->off));
                r->off += wl + 1;
                int64_t count = 0;
                uint8_t type = 0;
                if (get_i64(r, &count, "dictionary entry count") || get(r, &type, 1, "dictionary entry type"))
                        goto out;
                if (type != (i < nwords ? 0 : 1)) {
                        fail(r, KINFER_ERR__BAD_FORMAT,
                             "dictionary entry %d at offset %zu has type %u: words (0) come first, then labels (1)",
                             i, at, type);
                        goto out;
                }
                if (i < nwords) {
                        if (wl > UINT32_MAX) {
                                fail(r, KINFER_ERR__BAD_FORMAT, "dictionary entry %d is over 4 GiB", i);
                                goto out;
                        }
                        words[i] = w;
                        wlens[i] = (uint32_t)wl;
                        continue;
                }
                int32_t li = i - nwords;
                if (count < 0 || count > 10000000000LL) { /* the tree's sums stay below 1e15 */
                        fail(r, KINFER_ERR__BAD_FORMAT,
                             "label %d (dictionary entry %d at offset %zu) has count %" PRId64 " (0 to 10^10)",
                             li, i, at, count);
                        goto out;
                }
                lcounts[li] = count;
                if (wl > strlen(FT_LABEL) && !memcmp(w, FT_LABEL, strlen(FT_LABEL))) {
                        w += strlen(FT_LABEL);
                        wl -= strlen(FT_LABEL);
                }
                const char *bad = kinfer_label_check(w, wl);
                if (bad) {
                        fail(r, KINFER_ERR__BAD_FORMAT, "label %d (dictionary entry %d at offset %zu): %s", li, i,
                             at, bad);
                        goto out;
                }
                if (!(labels[li] = strndup(w, wl))) {
                        fail(r, KINFER_ERR__NOMEM, "out of memory");
                        goto out;
                }
        }
        const int pruned = pruneidx_size >= 0;
        if (pruneidx_size < -1 || pruneidx_size > bucket || (pruned && (uint64_t)pruneidx_size * 8 > left(r))) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "dictionary pruneidx_size %" PRId64 " at offset %zu is out of range (-1 to bucket %d, "
                     "8 bytes each in the file)", pruneidx_size, dict_at + 20, bucket);
                goto out;
        }
        const uint8_t *pidx = r->p + r->off;
        size_t pidx_at = r->off;
        if (pruned)
                r->off += (size_t)pruneidx_size * 8;

        /* ---- matrices ---- */
        int quant_input = 0, qout = 0;
        if (get_bool(r, &quant_input, "quant_input"))
                goto out;
        if (!quant_input && pruned) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "a pruned dictionary (pruneidx_size %" PRId64 ") with a dense input matrix: fastText "
                     "refuses such a file too (its issue #332)", pruneidx_size);
                goto out;
        }
        stage(o, "input matrix", r);
        mat_t in, outm;
        size_t in_at = r->off;
        if (get_matrix(r, &in, quant_input, dim, "input matrix"))
                goto out;
        if (pruned ? in.m < nwords : in.m != (int64_t)nwords + bucket) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "input matrix at offset %zu has %" PRId64 " rows, the dictionary needs %s%" PRId64, in_at,
                     in.m, pruned ? "at least " : "", (int64_t)nwords + (pruned ? 0 : bucket));
                goto out;
        }
        if (get_bool(r, &qout, "qout"))
                goto out;
        stage(o, "output matrix", r);
        size_t out_at = r->off;
        if (get_matrix(r, &outm, quant_input && qout, dim, "output matrix"))
                goto out;
        if (outm.m != nlabels) {
                fail(r, KINFER_ERR__BAD_FORMAT,
                     "output matrix at offset %zu has %" PRId64 " rows for %d labels", out_at, outm.m, nlabels);
                goto out;
        }
        if (left(r)) {
                fail(r, KINFER_ERR__BAD_FORMAT, "%zu bytes after the output matrix (offset %zu): not a fastText model",
                     left(r), r->off);
                goto out;
        }

        /* ---- the kinfer model ---- */
        const uint64_t n_buckets = (uint64_t)nwords + (uint64_t)bucket;
        uint64_t need = (uint64_t)in.m * (uint64_t)dim * 4 + (uint64_t)nlabels * (uint64_t)dim * 4 +
                        (pruned ? n_buckets * 4 : 0);
        if (need > max_bytes) {
                fail(r, KINFER_ERR__INVALID_ARG,
                     "the imported model needs %" PRIu64 " bytes of tensors, over the limit of %" PRIu64,
                     need, max_bytes);
                goto out;
        }
        stage(o, "decoding", r);
        embed = malloc((size_t)in.m * (size_t)dim * 4 + 4);
        outw = malloc((size_t)nlabels * (size_t)dim * 4);
        if (!embed || !outw) {
                fail(r, KINFER_ERR__NOMEM, "out of memory (%" PRIu64 " bytes of tensors)", need);
                goto out;
        }
        for (int64_t i = 0; i < in.m; i++)
                mat_row(&in, i, embed + (size_t)i * (size_t)dim);
        for (int64_t i = 0; i < nlabels; i++)
                mat_row(&outm, i, outw + (size_t)i * (size_t)dim);
        for (size_t i = 0; i < (size_t)in.m * (size_t)dim; i++)
                if (!isfinite(embed[i])) {
                        fail(r, KINFER_ERR__BAD_FORMAT, "input matrix row %zu, column %zu is not a finite number",
                             i / (size_t)dim, i % (size_t)dim);
                        goto out;
                }
        for (size_t i = 0; i < (size_t)nlabels * (size_t)dim; i++)
                if (!isfinite(outw[i])) {
                        fail(r, KINFER_ERR__BAD_FORMAT, "output matrix row %zu, column %zu is not a finite number",
                             i / (size_t)dim, i % (size_t)dim);
                        goto out;
                }
        if (pruned) {
                if (!(bmap = malloc(n_buckets * 4))) {
                        fail(r, KINFER_ERR__NOMEM, "out of memory (bucket map)");
                        goto out;
                }
                for (uint64_t i = 0; i < n_buckets; i++)
                        bmap[i] = i < (uint64_t)nwords ? (int32_t)i : -1;
                for (int64_t i = 0; i < pruneidx_size; i++) {
                        int32_t pr[2];
                        memcpy(pr, pidx + 8 * i, 8);
                        if (pr[0] < 0 || pr[0] >= bucket || pr[1] < 0 || pr[1] >= in.m - nwords) {
                                fail(r, KINFER_ERR__BAD_FORMAT,
                                     "pruneidx entry %" PRId64 " at offset %zu maps n-gram %d to row %d (n-grams 0 to "
                                     "%d, rows 0 to %" PRId64 ")", i, pidx_at + 8 * (size_t)i, pr[0], pr[1],
                                     bucket - 1, in.m - nwords - 1);
                                goto out;
                        }
                        bmap[(uint64_t)nwords + (uint64_t)pr[0]] = nwords + pr[1]; /* the last one wins */
                }
        }
        const int32_t out_kind = loss == 1 ? KINFER_OUT_FT_HS : loss == 3 ? KINFER_OUT_SOFTMAX : KINFER_OUT_FT_SIGMOID;
        if (out_kind == KINFER_OUT_FT_HS && !(tree = build_tree(lcounts, nlabels))) {
                fail(r, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        size_t dict_size = 0;
        if (!(dict = kinfer_ft_dict_pack(words, wlens, (uint32_t)nwords, (uint32_t)bucket, &dict_size))) {
                fail(r, KINFER_ERR__NOMEM, "out of memory (dictionary)");
                goto out;
        }
        size_t lab_size = 0;
        if (!(lab = kinfer_labels_pack((const char *const *)labels, nlabels, &lab_size))) {
                fail(r, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        kinfer_featurizer_conf_t fc;
        memset(&fc, 0, sizeof(fc));
        fc.version = KINFER_FEATURIZER_VERSION;
        fc.mode = KINFER_FEAT_MODE_FASTTEXT;
        fc.n_buckets = (uint32_t)n_buckets;
        fc.word_ngrams = (uint8_t)word_ngrams;
        fc.minn = (uint8_t)minn;
        fc.maxn = (uint8_t)maxn;
        fc.bag_mean = 1;
        int32_t arch[8] = {dim, 0, nlabels, 0, out_kind, 0, 0, 0};

        /* META: name, created_at, hyperparameters, lineage (imported_from the file's sha256) */
        char sha[65], ts[32];
        if (kinfer_sha256_hex(buf, len, sha)) {
                fail(r, KINFER_ERR__NOMEM, "sha256 of the file failed");
                goto out;
        }
        time_t now = time(NULL);
        struct tm tmv;
        gmtime_r(&now, &tmv);
        strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%SZ", &tmv);
        kinfer_buf_t mj = {0};
        kinfer_buf_puts(&mj, "{\n  \"name\": ");
        kinfer_buf_json_cstr(&mj, o->name ? o->name : "fasttext");
        kinfer_buf_printf(&mj, ",\n  \"created_at\": \"%s\",\n  \"hyperparameters\": {\"featurizer\": \"fasttext\", "
                          "\"dim\": %d, \"loss\": \"%s\", \"word_ngrams\": %d, \"minn\": %d, \"maxn\": %d, "
                          "\"bucket\": %d, \"nwords\": %d, \"epoch\": %d, \"min_count\": %d, \"quantized\": %s, "
                          "\"qnorm\": %s, \"qout\": %s, \"pruned_ngrams\": %" PRId64 "},\n",
                          ts, dim, loss_name(loss), word_ngrams, minn, maxn, bucket, nwords, a[2], a[3],
                          quant_input ? "true" : "false", in.qnorm ? "true" : "false",
                          quant_input && qout ? "true" : "false", pruned ? pruneidx_size : -1);
        kinfer_buf_printf(&mj, "  \"lineage\": {\"method\": \"import\", \"params\": {\"format\": \"fasttext\", "
                          "\"fasttext_version\": %d, \"source\": ", version);
        kinfer_buf_json_cstr(&mj, r->file);
        kinfer_buf_printf(&mj, ", \"source_bytes\": %zu}, \"parents\": [{\"sha256\": \"%s\", \"name\": ", len, sha);
        kinfer_buf_json_cstr(&mj, r->file);
        kinfer_buf_puts(&mj, ", \"relation\": \"imported_from\"}]}\n}");
        if (mj.oom) {
                kinfer_buf_free(&mj);
                fail(r, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        meta = kinfer_buf_detach(&mj);

        stage(o, "writing", r);
        if (!(mb = kinfer_model_builder_new())) {
                fail(r, KINFER_ERR__NOMEM, "out of memory");
                goto out;
        }
        kinfer_err_t e = KINFER_OK;
        e |= kinfer_model_builder_add(mb, KINFER_T_META, KINFER_DTYPE_BYTES, 1, (uint32_t)strlen(meta), meta,
                                      strlen(meta));
        e |= kinfer_model_builder_add(mb, KINFER_T_LABELS, KINFER_DTYPE_BYTES, 1, (uint32_t)lab_size, lab, lab_size);
        e |= kinfer_model_builder_add(mb, KINFER_T_FEATURIZER, KINFER_DTYPE_BYTES, 1, sizeof(fc), &fc, sizeof(fc));
        e |= kinfer_model_builder_add(mb, KINFER_T_ARCH, KINFER_DTYPE_I32, 1, 8, arch, sizeof(arch));
        e |= kinfer_model_builder_add(mb, KINFER_T_FT_DICT, KINFER_DTYPE_BYTES, 1, (uint32_t)dict_size, dict,
                                      dict_size);
        if (tree)
                e |= kinfer_model_builder_add(mb, KINFER_T_FT_TREE, KINFER_DTYPE_I32, (uint32_t)nlabels - 1, 2, tree,
                                              (size_t)(nlabels - 1) * 8);
        if (bmap)
                e |= kinfer_model_builder_add(mb, KINFER_T_BUCKET_MAP, KINFER_DTYPE_I32, 1, (uint32_t)n_buckets, bmap,
                                              n_buckets * 4);
        e |= kinfer_model_builder_add(mb, KINFER_T_EMBED, KINFER_DTYPE_F32, (uint32_t)in.m, (uint32_t)dim, embed,
                                      (size_t)in.m * (size_t)dim * 4);
        e |= kinfer_model_builder_add(mb, KINFER_T_OUT_W, KINFER_DTYPE_F32, (uint32_t)nlabels, (uint32_t)dim, outw,
                                      (size_t)nlabels * (size_t)dim * 4);
        if (e) {
                fail(r, KINFER_ERR__NOMEM, "out of memory while building the model");
                goto out;
        }
        free(embed); /* the builder holds a copy */
        embed = NULL;
        if (kinfer_model_builder_serialize(mb, outp, outlenp, errstr, errstr_size))
                r->err = KINFER_ERR__NOMEM;
out:
        if (labels)
                for (int32_t i = 0; i < nlabels; i++)
                        free(labels[i]);
        free(labels);
        free(words);
        free(wlens);
        free(lcounts);
        free(bmap);
        free(tree);
        free(embed);
        free(outw);
        free(dict);
        free(lab);
        free(meta);
        kinfer_model_builder_destroy(mb);
        return r->err;
}
