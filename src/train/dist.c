/* SPDX-License-Identifier: Apache-2.0 */
/* dist.c -- averaging the replicas of ranks (train.h: kinfer_train_comm_t): w = 1/K sum_k w_k
 * over the collectives of the caller's comm (MPI in mpi.c), with no MPI type in sight.
 *
 * The embedding rows (n_rows x D: millions of rows for a linear model over hashed n-grams) are
 * most of the parameters, and a sync interval touches few of them. Rows no rank touched since
 * the last sync are equal on every rank already, so a sync sends either
 *   sparse: a bitmap of the touched rows (n_rows / 8 bytes, OR-reduced), then those rows and
 *           the dense layers (U x D + tail floats, sum-reduced), or
 *   dense:  the whole parameter vector (n_params floats, sum-reduced),
 * whichever is smaller. The choice is made from the sum of the ranks' touched-row counts (one
 * 8-byte reduction, an upper bound of the union), so every rank makes the same choice and the
 * same calls. */
#include <stdlib.h>
#include <string.h>

#include "train/train_int.h"

kinfer_err_t kinfer_dist_sync(kinfer_train_comm_t *c, const kinfer_net_t *net, float *P,
                              uint8_t *dirty, char *errstr, size_t errstr_size)
{
        const int64_t R = net->n_rows;
        const size_t D = (size_t)net->D, tail = net->n_params - net->off_be;
        const float inv = 1.0f / (float)c->size;
        c->dense_bytes = net->n_params * sizeof(float);
        if (c->size == 1) { /* one rank: its replica is the mean */
                memset(dirty, 0, (size_t)R);
                return KINFER_OK;
        }
        int64_t touched = 0;
        for (int64_t r = 0; r < R; r++)
                touched += dirty[r] != 0;
        kinfer_err_t err = c->allreduce(c, &touched, 1, KINFER_COMM_I64, KINFER_COMM_SUM, errstr,
                                        errstr_size);
        if (err)
                return err;
        c->sync_bytes += sizeof(touched);
        c->syncs++;
        const size_t bit_bytes = (size_t)(R + 7) / 8;
        const double sparse_cost = (double)bit_bytes + ((double)touched * (double)D + (double)tail) * 4;
        if (sparse_cost >= (double)net->n_params * 4) { /* dense */
                if ((err = c->allreduce(c, P, net->n_params, KINFER_COMM_F32, KINFER_COMM_SUM, errstr,
                                        errstr_size)))
                        return err;
                c->sync_bytes += net->n_params * 4;
                for (size_t i = 0; i < net->n_params; i++)
                        P[i] *= inv;
                memset(dirty, 0, (size_t)R);
                return KINFER_OK;
        }
        uint8_t *bits = calloc(bit_bytes ? bit_bytes : 1, 1);
        if (!bits)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory while averaging the ranks' parameters");
        for (int64_t r = 0; r < R; r++)
                if (dirty[r])
                        bits[r >> 3] |= (uint8_t)(1u << (r & 7));
        if ((err = c->allreduce(c, bits, bit_bytes, KINFER_COMM_U8, KINFER_COMM_BOR, errstr,
                                errstr_size))) {
                free(bits);
                return err;
        }
        c->sync_bytes += bit_bytes;
        int64_t U = 0;
        for (size_t i = 0; i < bit_bytes; i++)
                U += __builtin_popcount(bits[i]);
        const size_t n = (size_t)U * D + tail;
        float *pack = malloc(n * sizeof(float));
        if (!pack) {
                free(bits);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory while averaging the ranks' parameters");
        }
        size_t at = 0;
        for (int64_t r = 0; r < R; r++)
                if (bits[r >> 3] & (1u << (r & 7))) {
                        memcpy(pack + at, P + (size_t)r * D, D * sizeof(float));
                        at += D;
                }
        memcpy(pack + at, P + net->off_be, tail * sizeof(float));
        err = c->allreduce(c, pack, n, KINFER_COMM_F32, KINFER_COMM_SUM, errstr, errstr_size);
        if (!err) {
                c->sync_bytes += n * sizeof(float);
                c->sparse_syncs++;
                at = 0;
                for (int64_t r = 0; r < R; r++)
                        if (bits[r >> 3] & (1u << (r & 7))) {
                                float *e = P + (size_t)r * D;
                                for (size_t j = 0; j < D; j++)
                                        e[j] = pack[at + j] * inv;
                                at += D;
                        }
                for (size_t j = 0; j < tail; j++)
                        P[net->off_be + j] = pack[at + j] * inv;
                memset(dirty, 0, (size_t)R);
        }
        free(pack);
        free(bits);
        return err;
}
