/* SPDX-License-Identifier: Apache-2.0 */
/* mpi.c -- kinfer/train/mpi.h: `kinfer train` as one rank of an MPI job. The one file that
 * includes <mpi.h>, compiled against it when CMake finds MPI (KINFER_HAVE_MPI); otherwise the
 * functions say that this build has no MPI. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/sha256.h"
#include "kinfer/train/mpi.h"
#include "train/train_int.h"

#ifdef KINFER_HAVE_MPI
#include <mpi.h>
#endif

int kinfer_mpi_compiled(void)
{
#ifdef KINFER_HAVE_MPI
        return 1;
#else
        return 0;
#endif
}

int kinfer_mpi_launched_size(void)
{
        static const char *const vars[] = {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", NULL};
        for (int i = 0; vars[i]; i++) {
                const char *v = getenv(vars[i]);
                if (v && *v) {
                        long n = strtol(v, NULL, 10);
                        return n > 0 && n < (1L << 24) ? (int)n : 1;
                }
        }
        return getenv("PMIX_RANK") || getenv("PMI_RANK") ? 1 : 0;
}

#ifndef KINFER_HAVE_MPI

static const char no_mpi[] = "this kinfer was built without MPI: install an MPI (Debian: "
                             "libopenmpi-dev) and build again to train across processes";

kinfer_train_comm_t *kinfer_mpi_init(int *argc, char ***argv, char *errstr, size_t errstr_size)
{
        (void)argc, (void)argv;
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", no_mpi);
        return NULL;
}
void kinfer_mpi_finalize(kinfer_train_comm_t *c) { (void)c; }
void kinfer_mpi_abort(kinfer_train_comm_t *c, int code) { (void)c, (void)code; }
kinfer_dataset_t *kinfer_mpi_load_shard(kinfer_train_comm_t *c, const char *path, char *errstr,
                                        size_t errstr_size)
{
        (void)c, (void)path;
        kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", no_mpi);
        return NULL;
}
kinfer_err_t kinfer_mpi_label_order(kinfer_train_comm_t *c, const kinfer_dataset_t *ds,
                                    const char *const **names, int32_t *n, char *errstr,
                                    size_t errstr_size)
{
        (void)c, (void)ds, (void)names, (void)n;
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", no_mpi);
}
char *kinfer_mpi_schedule(kinfer_train_comm_t *c, int32_t sync_every)
{
        (void)c, (void)sync_every;
        return NULL;
}
kinfer_err_t kinfer_mpi_agree(kinfer_train_comm_t *c, const char *sha256_hex, char *errstr,
                              size_t errstr_size)
{
        (void)c, (void)sha256_hex;
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "%s", no_mpi);
}

#else /* KINFER_HAVE_MPI */

#define CHUNK (1 << 30) /* elements per MPI call: MPI counts are int */
#define SHARDS_LISTED 256 /* the lineage lists each shard up to this many ranks (META's 1 MiB) */

typedef struct shard_s {
        int64_t offset, bytes, first_line, records;
        uint8_t sha256[32];
} shard_t;

typedef struct mpi_comm_s {
        kinfer_train_comm_t c; /* first: the public part */
        MPI_Comm comm;
        shard_t *shards;       /* size, after kinfer_mpi_load_shard */
        int64_t max_records;   /* the largest shard's records */
        char *label_block;     /* the gathered label names */
        const char **labels;
} mpi_comm_t;

static kinfer_err_t mpi_fail(char *errstr, size_t errstr_size, int rc, const char *what)
{
        char msg[MPI_MAX_ERROR_STRING] = "";
        int len = 0;
        MPI_Error_string(rc, msg, &len);
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "MPI %s: %s", what, msg);
}

static kinfer_err_t mpi_allreduce(kinfer_train_comm_t *c, void *buf, size_t n, kinfer_comm_type_t type,
                                  kinfer_comm_op_t op, char *errstr, size_t errstr_size)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        MPI_Datatype t = type == KINFER_COMM_U8    ? MPI_UINT8_T
                         : type == KINFER_COMM_U32 ? MPI_UINT32_T
                         : type == KINFER_COMM_I64 ? MPI_INT64_T
                                                   : MPI_FLOAT;
        size_t es = type == KINFER_COMM_U8 ? 1 : type == KINFER_COMM_I64 ? 8 : 4;
        MPI_Op o = op == KINFER_COMM_SUM ? MPI_SUM : op == KINFER_COMM_MAX ? MPI_MAX
                   : op == KINFER_COMM_MIN ? MPI_MIN : MPI_BOR;
        char *p = buf;
        while (n) {
                int cnt = n > CHUNK ? CHUNK : (int)n;
                int rc = MPI_Allreduce(MPI_IN_PLACE, p, cnt, t, o, m->comm);
                if (rc != MPI_SUCCESS)
                        return mpi_fail(errstr, errstr_size, rc, "Allreduce");
                p += (size_t)cnt * es;
                n -= (size_t)cnt;
        }
        return KINFER_OK;
}

static kinfer_err_t mpi_bcast(kinfer_train_comm_t *c, void *buf, size_t bytes, char *errstr,
                              size_t errstr_size)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        char *p = buf;
        while (bytes) {
                int cnt = bytes > CHUNK ? CHUNK : (int)bytes;
                int rc = MPI_Bcast(p, cnt, MPI_BYTE, 0, m->comm);
                if (rc != MPI_SUCCESS)
                        return mpi_fail(errstr, errstr_size, rc, "Bcast");
                p += cnt;
                bytes -= (size_t)cnt;
        }
        return KINFER_OK;
}

kinfer_train_comm_t *kinfer_mpi_init(int *argc, char ***argv, char *errstr, size_t errstr_size)
{
        int inited = 0, provided = 0, rc;
        MPI_Initialized(&inited);
        if (!inited && (rc = MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided)) != MPI_SUCCESS) {
                mpi_fail(errstr, errstr_size, rc, "Init_thread");
                return NULL;
        }
        mpi_comm_t *m = calloc(1, sizeof(*m));
        if (!m) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        /* errors come back as return codes (the caller ends the job), not as MPI's abort */
        MPI_Comm_dup(MPI_COMM_WORLD, &m->comm);
        MPI_Comm_set_errhandler(m->comm, MPI_ERRORS_RETURN);
        MPI_Comm_rank(m->comm, &m->c.rank);
        MPI_Comm_size(m->comm, &m->c.size);
        m->c.allreduce = mpi_allreduce;
        m->c.bcast = mpi_bcast;
        m->c.ctx = m;
        return &m->c;
}

void kinfer_mpi_finalize(kinfer_train_comm_t *c)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        if (!m)
                return;
        MPI_Comm_free(&m->comm);
        free(m->shards);
        free(m->label_block);
        free(m->labels);
        free(m);
        MPI_Finalize();
}

void kinfer_mpi_abort(kinfer_train_comm_t *c, int code)
{
        (void)c;
        MPI_Abort(MPI_COMM_WORLD, code);
}

/* ---- the shard --------------------------------------------------------------------------- */

/* The sha256 of the whole file at @p path, streamed (rank 0). */
static kinfer_err_t file_sha256(const char *path, uint8_t out[32], char *errstr, size_t errstr_size)
{
        FILE *fp = fopen(path, "rb");
        if (!fp)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
        kinfer_sha256_ctx_t *h = kinfer_sha256_new(errstr, errstr_size);
        char *blk = malloc(1 << 20);
        kinfer_err_t err = !h ? KINFER_ERR__CRYPTO : !blk ? kinfer_seterr(errstr, errstr_size,
                                                                         KINFER_ERR__NOMEM, "out of memory")
                                                         : KINFER_OK;
        size_t r;
        while (!err && (r = fread(blk, 1, 1 << 20, fp)) > 0)
                err = kinfer_sha256_update(h, blk, r, errstr, errstr_size);
        if (!err && ferror(fp))
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: read error", path);
        if (!err)
                err = kinfer_sha256_final(h, out, errstr, errstr_size);
        kinfer_sha256_destroy(h);
        free(blk);
        fclose(fp);
        return err;
}

/* The lines starting in [b, e) of @p fp into *buf (malloc'd, one byte of room at the end):
 * from the first line start at or after b to the end of the line holding byte e - 1. */
static kinfer_err_t read_range(FILE *fp, const char *path, int64_t b, int64_t e, int64_t *start,
                               char **buf, size_t *len, char *errstr, size_t errstr_size)
{
        int64_t s = b;
        *buf = NULL;
        *len = 0;
        if (b > 0) { /* the line holding byte b - 1 belongs to the rank before */
                if (fseeko(fp, (off_t)(b - 1), SEEK_SET))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path,
                                             strerror(errno));
                s = b - 1;
                int ch;
                while ((ch = getc(fp)) != EOF) {
                        s++;
                        if (ch == '\n')
                                break;
                }
                if (ch == EOF)
                        s = e > s ? e : s;
        }
        *start = s;
        if (s >= e)
                return KINFER_OK; /* no line starts in the range */
        size_t cap = (size_t)(e - s) + 4096;
        char *p = malloc(cap);
        if (!p)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "%s: out of memory", path);
        size_t n = fread(p, 1, (size_t)(e - s), fp);
        if (n != (size_t)(e - s)) {
                free(p);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: short read (the file "
                                     "changed while training?)", path);
        }
        int ch = n ? (unsigned char)p[n - 1] : '\n';
        while (ch != '\n' && (ch = getc(fp)) != EOF) { /* to the end of the last line */
                if (n + 1 >= cap) {
                        char *q = realloc(p, cap * 2);
                        if (!q) {
                                free(p);
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                                     "%s: out of memory", path);
                        }
                        p = q, cap *= 2;
                }
                p[n++] = (char)ch;
        }
        if (ferror(fp)) {
                free(p);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: read error", path);
        }
        *buf = p;
        *len = n;
        return KINFER_OK;
}

kinfer_dataset_t *kinfer_mpi_load_shard(kinfer_train_comm_t *c, const char *path, char *errstr,
                                        size_t errstr_size)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        const int r = c->rank, K = c->size;
        char e2[400];
        struct stat sb;
        int64_t size = -1, mine = -1;
        if (!stat(path, &sb))
                mine = (int64_t)sb.st_size;
        else if (r == 0) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
                return NULL;
        }
        size = mine;
        if (mpi_bcast(c, &size, sizeof(size), errstr, errstr_size))
                return NULL;
        if (mine != size) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO,
                              "rank %d: %s is %s here and %lld bytes on rank 0 (per-host copies of "
                              "the data must be identical)", r, path, mine < 0 ? "missing" : "of another size",
                              (long long)size);
                return NULL;
        }
        const int64_t b = size / K * r + size % K * r / K, e = size / K * (r + 1) + size % K * (r + 1) / K;
        FILE *fp = fopen(path, "rb");
        if (!fp) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path, strerror(errno));
                return NULL;
        }
        char *buf = NULL;
        size_t len = 0;
        int64_t start = 0;
        kinfer_err_t err = read_range(fp, path, b, e, &start, &buf, &len, errstr, errstr_size);
        fclose(fp);
        if (err)
                return NULL;
        /* the first line number of each shard: the newlines of the shards before it */
        int64_t nl = 0, line0 = 0;
        for (size_t i = 0; i < len; i++)
                nl += buf[i] == '\n';
        int rc = MPI_Exscan(&nl, &line0, 1, MPI_INT64_T, MPI_SUM, m->comm);
        if (r == 0)
                line0 = 0;
        uint8_t fsha[32] = {0};
        if (rc != MPI_SUCCESS)
                err = mpi_fail(errstr, errstr_size, rc, "Exscan");
        else if (r == 0)
                err = file_sha256(path, fsha, errstr, errstr_size);
        if (!err)
                err = mpi_bcast(c, fsha, sizeof(fsha), errstr, errstr_size);
        shard_t me = {start, (int64_t)len, line0 + 1, 0, {0}};
        if (!err && kinfer_sha256(buf ? buf : "", len, me.sha256))
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__CRYPTO, "cannot compute a sha256");
        if (err || line0 > INT32_MAX) {
                free(buf);
                if (!err)
                        kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT, "%s: over 2^31 lines", path);
                return NULL;
        }
        if (!buf && !(buf = malloc(1))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        kinfer_dataset_t *ds = calloc(1, sizeof(*ds));
        if (!ds) {
                free(buf);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        ds->buf = buf;
        if (!(ds = kinfer_dataset_from_buf(ds, path, len, 0, (int32_t)line0, fsha, e2, sizeof(e2)))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "rank %d of %d (bytes %lld..%lld of the file): %s", r, K, (long long)b,
                              (long long)e, e2);
                return NULL;
        }
        me.records = ds->n;
        /* every shard's format must be the file's (a shard detects it from its first line) */
        int64_t agg[4] = {ds->n, ds->n, ds->format, -(int64_t)ds->format};
        if (mpi_allreduce(c, agg, 1, KINFER_COMM_I64, KINFER_COMM_SUM, errstr, errstr_size) ||
            mpi_allreduce(c, agg + 1, 3, KINFER_COMM_I64, KINFER_COMM_MAX, errstr, errstr_size))
                goto fail;
        if (agg[2] != -agg[3]) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__BAD_FORMAT,
                              "%s: the shards' first lines are of different formats (TSV and "
                              "fastText mixed in one file)", path);
                goto fail;
        }
        c->n_records = agg[0];
        m->max_records = agg[1];
        free(m->shards);
        if (!(m->shards = malloc((size_t)K * sizeof(shard_t)))) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto fail;
        }
        if ((rc = MPI_Allgather(&me, (int)sizeof(me), MPI_BYTE, m->shards, (int)sizeof(me), MPI_BYTE,
                                m->comm)) != MPI_SUCCESS) {
                mpi_fail(errstr, errstr_size, rc, "Allgather");
                goto fail;
        }
        return ds;
fail:
        kinfer_dataset_destroy(ds);
        return NULL;
}

/* ---- labels ------------------------------------------------------------------------------ */

typedef struct lab_s {
        const char *name;
        int64_t count;
} lab_t;

static int cmp_name(const void *a, const void *b)
{
        return strcmp(((const lab_t *)a)->name, ((const lab_t *)b)->name);
}
static int cmp_count(const void *a, const void *b)
{
        const lab_t *x = a, *y = b;
        if (x->count != y->count)
                return x->count > y->count ? -1 : 1;
        return strcmp(x->name, y->name);
}

/* Sort by name and merge equal names, summing counts. @returns the distinct count. */
static size_t merge(lab_t *l, size_t n)
{
        qsort(l, n, sizeof(*l), cmp_name);
        size_t u = 0;
        for (size_t i = 0; i < n; i++) {
                if (u && !strcmp(l[u - 1].name, l[i].name))
                        l[u - 1].count += l[i].count;
                else
                        l[u++] = l[i];
        }
        return u;
}

kinfer_err_t kinfer_mpi_label_order(kinfer_train_comm_t *c, const kinfer_dataset_t *ds,
                                    const char *const **names, int32_t *n_out, char *errstr,
                                    size_t errstr_size)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        const int K = c->size;
        size_t n = ds->labels ? (size_t)ds->n : 0;
        lab_t *l = malloc((n ? n : 1) * sizeof(*l));
        int *sizes = malloc((size_t)K * sizeof(int)), *displs = malloc((size_t)K * sizeof(int));
        kinfer_buf_t pk = {0};
        char *all = NULL;
        lab_t *al = NULL;
        kinfer_err_t err = KINFER_OK;
        int rc;
        if (!l || !sizes || !displs) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                goto done;
        }
        for (size_t i = 0; i < n; i++)
                l[i] = (lab_t){ds->labels[i], 1};
        size_t u = merge(l, n);
        for (size_t i = 0; i < u; i++) { /* count (8 bytes), name, NUL */
                kinfer_buf_append(&pk, &l[i].count, sizeof(int64_t));
                kinfer_buf_append(&pk, l[i].name, strlen(l[i].name) + 1);
        }
        if (pk.oom || pk.len > INT32_MAX) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (labels)");
                goto done;
        }
        int mine = (int)pk.len;
        if ((rc = MPI_Allgather(&mine, 1, MPI_INT, sizes, 1, MPI_INT, m->comm)) != MPI_SUCCESS) {
                err = mpi_fail(errstr, errstr_size, rc, "Allgather");
                goto done;
        }
        int64_t total = 0;
        for (int k = 0; k < K; k++)
                displs[k] = (int)total, total += sizes[k];
        if (total > INT32_MAX) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__LIMIT,
                                    "the label sets of the shards add up to over 2 GB");
                goto done;
        }
        if (!(all = malloc(total ? (size_t)total : 1))) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (labels)");
                goto done;
        }
        if ((rc = MPI_Allgatherv(pk.data ? pk.data : "", mine, MPI_BYTE, all, sizes, displs, MPI_BYTE,
                                 m->comm)) != MPI_SUCCESS) {
                err = mpi_fail(errstr, errstr_size, rc, "Allgatherv");
                goto done;
        }
        size_t na = 0, cap = 64;
        al = malloc(cap * sizeof(*al));
        for (int64_t at = 0; al && at < total;) {
                if (na == cap) {
                        lab_t *q = realloc(al, cap * 2 * sizeof(*al));
                        if (!q)
                                break;
                        al = q, cap *= 2;
                }
                memcpy(&al[na].count, all + at, sizeof(int64_t));
                al[na].name = all + at + sizeof(int64_t);
                at += (int64_t)sizeof(int64_t) + (int64_t)strlen(al[na].name) + 1;
                na++;
        }
        const char **out = NULL;
        size_t nu = al ? merge(al, na) : 0;
        if (al)
                qsort(al, nu, sizeof(*al), cmp_count);
        if (!al || !(out = malloc((nu ? nu : 1) * sizeof(char *)))) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (labels)");
                goto done;
        }
        for (size_t i = 0; i < nu; i++)
                out[i] = al[i].name;
        free(m->label_block);
        free(m->labels);
        m->label_block = all, all = NULL;
        m->labels = out;
        *names = out;
        *n_out = (int32_t)nu;
done:
        free(l);
        free(al);
        free(all);
        free(sizes);
        free(displs);
        kinfer_buf_free(&pk);
        return err;
}

/* ---- the schedule, the lineage and the final check ---------------------------------------- */

char *kinfer_mpi_schedule(kinfer_train_comm_t *c, int32_t sync_every)
{
        mpi_comm_t *m = (mpi_comm_t *)c;
        int64_t syncs = sync_every > 0 ? (m->max_records + sync_every - 1) / sync_every : 1;
        c->syncs_per_epoch = (int32_t)(syncs < 1 ? 1 : syncs > INT32_MAX ? INT32_MAX : syncs);
        kinfer_buf_t b = {0};
        kinfer_buf_printf(&b,
                          "{\"distributed\": {\"engine\": \"mpi\", \"ranks\": %d, \"sync_every\": %d, "
                          "\"syncs_per_epoch\": %d, \"sync\": \"MPI_Allreduce mean of the replicas: "
                          "the rows any rank touched, or all parameters when smaller\", \"shard_rule\": "
                          "\"rank r reads the lines starting in bytes [size*r/K, size*(r+1)/K)\"",
                          c->size, sync_every, c->syncs_per_epoch);
        if (m->shards && c->size <= SHARDS_LISTED) {
                kinfer_buf_puts(&b, ", \"shards\": [");
                for (int k = 0; k < c->size; k++) {
                        const shard_t *s = &m->shards[k];
                        char hex[65];
                        kinfer_hex(s->sha256, 32, hex);
                        kinfer_buf_printf(&b,
                                          "%s{\"rank\": %d, \"offset\": %lld, \"bytes\": %lld, "
                                          "\"first_line\": %lld, \"records\": %lld, \"sha256\": \"%s\"}",
                                          k ? ", " : "", k, (long long)s->offset, (long long)s->bytes,
                                          (long long)s->first_line, (long long)s->records, hex);
                }
                kinfer_buf_puts(&b, "]");
        }
        kinfer_buf_puts(&b, "}}");
        return kinfer_buf_detach(&b);
}

kinfer_err_t kinfer_mpi_agree(kinfer_train_comm_t *c, const char *sha256_hex, char *errstr,
                              size_t errstr_size)
{
        char root[65] = {0};
        snprintf(root, sizeof(root), "%s", sha256_hex);
        kinfer_err_t err = mpi_bcast(c, root, sizeof(root), errstr, errstr_size);
        if (err)
                return err;
        int64_t differ = strcmp(root, sha256_hex) != 0;
        if ((err = mpi_allreduce(c, &differ, 1, KINFER_COMM_I64, KINFER_COMM_SUM, errstr, errstr_size)))
                return err;
        if (differ)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE,
                                     "the model of %lld of %d ranks differs from rank 0's (sha256 "
                                     "%.16s...; this rank's %.16s...): the replicas diverged",
                                     (long long)differ, c->size, root, sha256_hex);
        return KINFER_OK;
}

#endif /* KINFER_HAVE_MPI */
