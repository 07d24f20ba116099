/* SPDX-License-Identifier: Apache-2.0 */
/* fasttext.c -- the "fasttext" featurizer mode: fastText's tokens, dictionary lookup, char
 * n-grams and word n-gram hashes (the spec is in kinfer/text/fasttext.h; it follows fastText's
 * src/dictionary.cc: readWord, getLine, addSubwords, computeSubwords, addWordNgrams, hash). */
#include "kinfer/text/fasttext.h"

#include <stdlib.h>
#include <string.h>

#define FT_EOS "</s>"
#define FT_LABEL "__label__"

uint32_t kinfer_ft_hash(const void *data, size_t len)
{
        const uint8_t *p = data;
        uint32_t h = 2166136261u;
        for (size_t i = 0; i < len; i++) {
                h ^= (uint32_t)(int32_t)(int8_t)p[i];
                h *= 16777619u;
        }
        return h;
}

static inline uint32_t rd32(const uint8_t *p)
{
        uint32_t v;
        memcpy(&v, p, 4);
        return v;
}

const char *kinfer_ft_dict_view(kinfer_ft_dict_t *d, const kinfer_featurizer_conf_t *conf,
                                const void *data, size_t size)
{
        const uint8_t *p = data;
        memset(d, 0, sizeof(*d));
        if (size < KINFER_FT_DICT_HEADER)
                return "fastText dictionary: shorter than its 32-byte header";
        uint32_t nwords = rd32(p), bucket = rd32(p + 4), tsize = rd32(p + 8), sbytes = rd32(p + 12);
        if (nwords > KINFER_FT_MAX_WORDS)
                return "fastText dictionary: nwords is over 30,000,000";
        if (bucket > KINFER_FT_MAX_BUCKET)
                return "fastText dictionary: bucket is over 2^30";
        if ((uint64_t)nwords + bucket != conf->n_buckets)
                return "fastText dictionary: nwords + bucket differs from the featurizer's n_buckets";
        if (tsize < 2 || (tsize & (tsize - 1)) || tsize <= nwords || tsize > (1u << 27))
                return "fastText dictionary: table_size is not a power of two above nwords (at most 2^27)";
        uint64_t need = KINFER_FT_DICT_HEADER + 4 * ((uint64_t)nwords + 1) + 4 * (uint64_t)nwords +
                        4 * (uint64_t)tsize + sbytes;
        if (need != size)
                return "fastText dictionary: its size does not match nwords, table_size and strings_bytes";
        d->nwords = nwords;
        d->bucket = bucket;
        d->table_mask = tsize - 1;
        d->strings_bytes = sbytes;
        d->offs = (const uint32_t *)(p + KINFER_FT_DICT_HEADER);
        d->whash = d->offs + nwords + 1;
        d->table = (const int32_t *)(d->whash + nwords);
        d->strings = (const char *)(d->table + tsize);
        d->minn = conf->minn;
        d->maxn = conf->maxn;
        d->word_ngrams = conf->word_ngrams;
        if (d->offs[0] != 0 || d->offs[nwords] != sbytes)
                return "fastText dictionary: word offsets do not span the strings";
        for (uint32_t i = 0; i < nwords; i++) {
                if (d->offs[i] > d->offs[i + 1])
                        return "fastText dictionary: word offsets decrease";
                if (d->whash[i] != kinfer_ft_hash(d->strings + d->offs[i], d->offs[i + 1] - d->offs[i]))
                        return "fastText dictionary: a word's stored hash is wrong";
        }
        uint32_t empty = 0;
        for (uint32_t i = 0; i < tsize; i++) {
                if (d->table[i] < -1 || d->table[i] >= (int32_t)nwords)
                        return "fastText dictionary: a table entry is not a word id";
                empty += d->table[i] == -1;
        }
        if (!empty) /* every probe must end */
                return "fastText dictionary: the table has no empty slot";
        if ((bucket == 0) && (conf->maxn > 0 || conf->word_ngrams > 1))
                return "fastText dictionary: n-grams without buckets (bucket 0)";
        return NULL;
}

int32_t kinfer_ft_dict_find(const kinfer_ft_dict_t *d, const char *w, size_t len, uint32_t h)
{
        for (uint32_t s = h & d->table_mask;; s = (s + 1) & d->table_mask) {
                int32_t id = d->table[s];
                if (id < 0)
                        return -1;
                uint32_t o = d->offs[id], l = d->offs[id + 1] - o;
                if (d->whash[id] == h && l == len && !memcmp(d->strings + o, w, len))
                        return id;
        }
}

uint8_t *kinfer_ft_dict_pack(const char *const *words, const uint32_t *lens, uint32_t nwords,
                             uint32_t bucket, size_t *sizep)
{
        if (nwords > KINFER_FT_MAX_WORDS || bucket > KINFER_FT_MAX_BUCKET)
                return NULL;
        uint64_t sbytes = 0;
        for (uint32_t i = 0; i < nwords; i++)
                sbytes += lens[i];
        if (sbytes > 0xffffffffu)
                return NULL;
        uint32_t tsize = 2;
        while (tsize < 2 * (uint64_t)nwords + 1)
                tsize *= 2;
        size_t size = KINFER_FT_DICT_HEADER + 4 * ((size_t)nwords + 1) + 4 * (size_t)nwords +
                      4 * (size_t)tsize + (size_t)sbytes;
        uint8_t *buf = calloc(1, size);
        if (!buf)
                return NULL;
        uint32_t hdr[8] = {nwords, bucket, tsize, (uint32_t)sbytes, 0, 0, 0, 0};
        memcpy(buf, hdr, sizeof(hdr));
        uint32_t *offs = (uint32_t *)(buf + KINFER_FT_DICT_HEADER), *whash = offs + nwords + 1;
        int32_t *table = (int32_t *)(whash + nwords);
        char *strings = (char *)(table + tsize);
        memset(table, 0xff, 4 * (size_t)tsize);
        uint32_t o = 0;
        for (uint32_t i = 0; i < nwords; i++) {
                offs[i] = o;
                memcpy(strings + o, words[i], lens[i]);
                o += lens[i];
                whash[i] = kinfer_ft_hash(words[i], lens[i]);
        }
        offs[nwords] = o;
        kinfer_ft_dict_t d = {.nwords = nwords, .bucket = bucket, .table_mask = tsize - 1,
                              .strings_bytes = o, .offs = offs, .whash = whash, .table = table,
                              .strings = strings};
        for (uint32_t i = 0; i < nwords; i++) {
                uint32_t s = whash[i] & d.table_mask;
                while (table[s] >= 0) {
                        int32_t id = table[s];
                        if (whash[id] == whash[i] && lens[id] == lens[i] &&
                            !memcmp(strings + offs[id], words[i], lens[i]))
                                break; /* a duplicate: the later word takes the slot */
                        s = (s + 1) & d.table_mask;
                }
                table[s] = (int32_t)i;
        }
        *sizep = size;
        return buf;
}

size_t kinfer_ft_featurize_estimate(const kinfer_ft_dict_t *d, size_t len)
{
        size_t k = d->maxn >= d->minn && d->maxn ? (size_t)(d->maxn - (d->minn ? d->minn : 1) + 1) : 0;
        return (len + 2) * (d->word_ngrams + 1) + (len + 4) * k + 16;
}

/* The output cursor: counts every id, writes those that fit. */
typedef struct ft_out_s {
        uint32_t *ids;
        size_t cap, n;
} ft_out_t;

static inline void emit(ft_out_t *o, uint32_t id)
{
        if (o->n < o->cap)
                o->ids[o->n] = id;
        o->n++;
}

/* computeSubwords over "<" tok ">" (the brackets are virtual). */
static void subwords(const kinfer_ft_dict_t *d, const uint8_t *tok, size_t len, ft_out_t *o)
{
        const size_t W = len + 2;
        for (size_t i = 0; i < W; i++) {
                uint8_t ci = i == 0 ? '<' : i == W - 1 ? '>' : tok[i - 1];
                if ((ci & 0xC0) == 0x80)
                        continue;
                uint32_t h = 2166136261u;
                size_t j = i;
                for (uint32_t n = 1; j < W && n <= d->maxn; n++) {
                        do {
                                uint8_t c = j == 0 ? '<' : j == W - 1 ? '>' : tok[j - 1];
                                h = (h ^ (uint32_t)(int32_t)(int8_t)c) * 16777619u;
                                j++;
                        } while (j < W && ((j == W - 1 ? '>' : tok[j - 1]) & 0xC0) == 0x80);
                        if (n >= d->minn && !(n == 1 && (i == 0 || j == W)))
                                emit(o, d->nwords + h % d->bucket);
                }
        }
}

static inline int is_space(uint8_t c)
{
        return c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\v' || c == '\f' || c == '\0';
}

/* A token waiting in the pipeline below: its bytes and its hash. */
typedef struct ft_tok_s {
        const uint8_t *t;
        size_t len;
        uint32_t h;
        int eos; /* "</s>": no subwords, and the line's word n-gram window ends after it */
} ft_tok_t;

/* The dictionary is a few MB of arrays (the probe table, hashes, offsets, strings) that the
 * embedding rows of the bag keep pushing out of the caches, and each lookup is a chain of
 * three dependent misses: table slot -> word's hash and offset -> its string. So tokens go
 * through a pipeline: each step of the chain is prefetched FT_STEP tokens before the next one
 * needs it, and a token is looked up 3 * FT_STEP tokens after it was read (the order of the
 * ids is unchanged). */
#define FT_STEP 4
#define FT_RING 16 /* a power of two > 3 * FT_STEP */

static inline void ft_prefetch_entry(const kinfer_ft_dict_t *d, const ft_tok_t *k)
{
        int32_t id = d->table[k->h & d->table_mask];
        if (id >= 0) {
                __builtin_prefetch(&d->whash[id], 0, 3);
                __builtin_prefetch(&d->offs[id], 0, 3);
        }
}

static inline void ft_prefetch_string(const kinfer_ft_dict_t *d, const ft_tok_t *k)
{
        int32_t id = d->table[k->h & d->table_mask];
        if (id >= 0 && d->whash[id] == k->h)
                __builtin_prefetch(d->strings + d->offs[id], 0, 3);
}

/* One token of the current line (labels were dropped before). */
static void token(const kinfer_ft_dict_t *d, const ft_tok_t *k, int32_t *hs, size_t *nh, ft_out_t *o)
{
        const uint32_t h = k->h;
        int32_t wid = kinfer_ft_dict_find(d, (const char *)k->t, k->len, h);
        if (wid >= 0)
                emit(o, (uint32_t)wid);
        if (!k->eos && d->maxn > 0 && d->bucket > 0)
                subwords(d, k->t, k->len, o);
        /* word n-grams ending at this token (fastText adds them after the line; the bag is a
         * sum, so only the order of ids differs) */
        const size_t N = d->word_ngrams;
        if (N > 1 && d->bucket > 0) {
                size_t m = *nh < N - 1 ? *nh : N - 1; /* earlier tokens in the window */
                for (size_t s = m; s >= 1; s--) {
                        uint64_t g = (uint64_t)(int64_t)hs[(*nh - s) % (N - 1)];
                        for (size_t j = s - 1; j >= 1; j--)
                                g = g * 116049371u + (uint64_t)(int64_t)hs[(*nh - j) % (N - 1)];
                        g = g * 116049371u + (uint64_t)(int64_t)(int32_t)h;
                        emit(o, d->nwords + (uint32_t)(g % d->bucket));
                }
                hs[*nh % (N - 1)] = (int32_t)h;
        }
        (*nh)++;
        if (k->eos)
                *nh = 0; /* the next token starts a line */
}

typedef struct ft_pipe_s {
        ft_tok_t ring[FT_RING];
        size_t in, out; /* tokens read, tokens looked up */
        int32_t hs[KINFER_FT_MAX_NGRAM]; /* ring of the last word_ngrams - 1 word hashes */
        size_t nh;                        /* tokens in the current line */
} ft_pipe_t;

static inline void pipe_push(const kinfer_ft_dict_t *d, ft_pipe_t *p, const uint8_t *t, size_t len,
                             int eos, ft_out_t *o)
{
        ft_tok_t *k = &p->ring[p->in % FT_RING];
        k->t = t;
        k->len = len;
        k->h = kinfer_ft_hash(t, len);
        k->eos = eos;
        __builtin_prefetch(&d->table[k->h & d->table_mask], 0, 3);
        p->in++;
        const size_t ahead = p->in - p->out;
        if (ahead > FT_STEP)
                ft_prefetch_entry(d, &p->ring[(p->in - 1 - FT_STEP) % FT_RING]);
        if (ahead > 2 * FT_STEP)
                ft_prefetch_string(d, &p->ring[(p->in - 1 - 2 * FT_STEP) % FT_RING]);
        if (ahead > 3 * FT_STEP)
                token(d, &p->ring[p->out++ % FT_RING], p->hs, &p->nh, o);
}

size_t kinfer_ft_featurize(const kinfer_ft_dict_t *d, const char *text, size_t len, uint32_t *ids,
                           size_t cap)
{
        ft_out_t o = {ids, ids ? cap : 0, 0};
        const uint8_t *p = (const uint8_t *)text;
        ft_pipe_t pipe;
        pipe.in = pipe.out = pipe.nh = 0;
        int open = 1; /* the current line still needs its "</s>" */
        size_t i = 0;
        while (i < len) {
                if (is_space(p[i])) {
                        if (p[i] == '\n') {
                                pipe_push(d, &pipe, (const uint8_t *)FT_EOS, 4, 1, &o);
                                open = 0;
                        }
                        i++;
                        continue;
                }
                size_t s = i;
                while (i < len && !is_space(p[i]))
                        i++;
                int eos = i - s == 4 && !memcmp(p + s, FT_EOS, 4);
                open = !eos;
                if (i - s >= sizeof(FT_LABEL) - 1 && !memcmp(p + s, FT_LABEL, sizeof(FT_LABEL) - 1))
                        continue; /* a label: no id, no place in the word n-grams */
                pipe_push(d, &pipe, p + s, i - s, eos, &o);
        }
        if (open || len == 0)
                pipe_push(d, &pipe, (const uint8_t *)FT_EOS, 4, 1, &o);
        while (pipe.out < pipe.in)
                token(d, &pipe.ring[pipe.out++ % FT_RING], pipe.hs, &pipe.nh, &o);
        return o.n;
}
