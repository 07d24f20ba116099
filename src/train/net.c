/* SPDX-License-Identifier: Apache-2.0 */
/* net.c -- the network being trained, one record at a time: embedding bag (+ ReLU hidden
 * layer) (+ output layer), softmax cross-entropy gradients and the SGD update. The parameter
 * layout is in train_int.h (kinfer_net_t). */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "runtime/ops.h"
#include "train/train_int.h"

double kinfer_now_sec(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

uint64_t kinfer_rng_next(uint64_t *s)
{
        uint64_t x = *s;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        *s = x;
        return x * 0x2545f4914f6cdd1dULL;
}

static float rng_uniform(uint64_t *s) /* [-1, 1) */
{
        return (float)((double)(kinfer_rng_next(s) >> 11) * (1.0 / 9007199254740992.0) * 2.0 - 1.0);
}

void kinfer_net_layout(kinfer_net_t *net)
{
        net->Wd = net->H ? net->H : net->D;
        net->off_be = (size_t)net->n_rows * net->D;
        net->off_w1 = net->off_be + (size_t)net->D;
        net->off_b1 = net->off_w1 + (size_t)net->H * net->D;
        net->off_wo = net->off_b1 + (size_t)net->H;
        net->off_bo = net->off_wo + (net->linear ? 0 : (size_t)net->L * net->Wd);
        net->n_params = net->off_bo + (net->linear ? 0 : (size_t)net->L);
}

int kinfer_net_scratch_init(kinfer_net_scratch_t *s, const kinfer_net_t *net)
{
        size_t m = (size_t)(net->D > net->L ? net->D : net->L);
        if ((size_t)net->H > m)
                m = (size_t)net->H;
        float *blk = calloc(6 * m, sizeof(float));
        if (!blk)
                return -1;
        s->h0 = blk;
        s->h1 = blk + m;
        s->z = blk + 2 * m;
        s->g = blk + 3 * m;
        s->gh = blk + 4 * m;
        s->gh0 = blk + 5 * m;
        return 0;
}

void kinfer_net_scratch_term(kinfer_net_scratch_t *s)
{
        free(s->h0); /* the one block */
        memset(s, 0, sizeof(*s));
}

void kinfer_net_forward(const kinfer_net_t *net, const float *P, const int32_t *rows, const float *w,
                        int64_t nf, kinfer_net_scratch_t *s)
{
        const int32_t D = net->D;
        memcpy(s->h0, P + net->off_be, sizeof(float) * (size_t)D);
        for (int64_t i = 0; i < nf; i++) {
                const float *e = P + (size_t)rows[i] * D;
                const float wi = w[i];
                for (int32_t j = 0; j < D; j++)
                        s->h0[j] += wi * e[j];
        }
        if (net->linear) {
                memcpy(s->z, s->h0, sizeof(float) * (size_t)D);
                return;
        }
        const float *h = s->h0;
        if (net->H) {
                const float *W1 = P + net->off_w1, *b1 = P + net->off_b1;
                for (int32_t o = 0; o < net->H; o++) {
                        float a = b1[o];
                        for (int32_t j = 0; j < D; j++)
                                a += W1[(size_t)o * D + j] * s->h0[j];
                        s->h1[o] = a > 0 ? a : 0;
                }
                h = s->h1;
        }
        const float *Wo = P + net->off_wo, *bo = P + net->off_bo;
        for (int32_t o = 0; o < net->L; o++) {
                float a = bo[o];
                for (int32_t j = 0; j < net->Wd; j++)
                        a += Wo[(size_t)o * net->Wd + j] * h[j];
                s->z[o] = a;
        }
}

/* Backward through the output (and hidden) layer, updating them: @returns the gradient at
 * the bag (h0). */
static const float *backward_dense(const kinfer_net_t *net, float *P, kinfer_net_scratch_t *s,
                                   float lr)
{
        const int32_t D = net->D;
        const float *h = net->H ? s->h1 : s->h0;
        float *Wo = P + net->off_wo, *bo = P + net->off_bo;
        memset(s->gh, 0, sizeof(float) * (size_t)net->Wd);
        for (int32_t o = 0; o < net->L; o++) {
                const float go = s->g[o];
                float *wr = Wo + (size_t)o * net->Wd;
                for (int32_t j = 0; j < net->Wd; j++) {
                        s->gh[j] += go * wr[j];
                        wr[j] -= lr * go * h[j];
                }
                bo[o] -= lr * go;
        }
        if (!net->H)
                return s->gh;
        float *W1 = P + net->off_w1, *b1 = P + net->off_b1;
        memset(s->gh0, 0, sizeof(float) * (size_t)D);
        for (int32_t o = 0; o < net->H; o++) {
                if (s->h1[o] <= 0)
                        continue;
                const float go = s->gh[o];
                float *wr = W1 + (size_t)o * D;
                for (int32_t j = 0; j < D; j++) {
                        s->gh0[j] += go * wr[j];
                        wr[j] -= lr * go * s->h0[j];
                }
                b1[o] -= lr * go;
        }
        return s->gh0;
}

void kinfer_net_backward(const kinfer_net_t *net, float *P, const int32_t *rows, const float *w,
                         int64_t nf, kinfer_net_scratch_t *s, float lr, float l2, uint8_t *dirty)
{
        const int32_t D = net->D;
        const float *gh0 = net->linear ? s->g : backward_dense(net, P, s, lr);
        float *be = P + net->off_be;
        for (int32_t j = 0; j < D; j++)
                be[j] -= lr * gh0[j];
        const float decay = 1.0f - lr * l2;
        for (int64_t i = 0; i < nf; i++) {
                float *e = P + (size_t)rows[i] * D;
                const float a = lr * w[i];
                if (l2 > 0)
                        for (int32_t j = 0; j < D; j++)
                                e[j] = e[j] * decay - a * gh0[j];
                else
                        for (int32_t j = 0; j < D; j++)
                                e[j] -= a * gh0[j];
                if (dirty)
                        dirty[rows[i]] = 1;
        }
}

/* Parameters from a model (prune --retrain and friends). */
static kinfer_err_t init_from_model(const kinfer_net_t *net, const kinfer_model_t *im, float *P)
{
        for (int64_t r = 0; r < net->n_rows; r++) {
                const uint8_t *row = im->embed + (size_t)r * im->embed_stride;
                if (im->embed_dtype == KINFER_DTYPE_Q8)
                        kinfer_q8_row_dequant(row, net->D, P + (size_t)r * net->D);
                else
                        memcpy(P + (size_t)r * net->D, row, sizeof(float) * (size_t)net->D);
        }
        if (im->bias)
                memcpy(P + net->off_be, im->bias, sizeof(float) * (size_t)net->D);
        if (net->H) {
                kinfer_dense_to_f32(&im->hidden[0], P + net->off_w1);
                if (im->hidden[0].b)
                        memcpy(P + net->off_b1, im->hidden[0].b, sizeof(float) * (size_t)net->H);
        }
        if (!net->linear) {
                if (im->out.in != net->Wd)
                        return KINFER_ERR__INVALID_ARG;
                kinfer_dense_to_f32(&im->out, P + net->off_wo);
                if (im->out.b)
                        memcpy(P + net->off_bo, im->out.b, sizeof(float) * (size_t)net->L);
        }
        return KINFER_OK;
}

kinfer_err_t kinfer_net_init(const kinfer_net_t *net, uint64_t seed, const kinfer_model_t *im,
                             float *P)
{
        memset(P, 0, net->n_params * sizeof(float));
        if (!net->linear) {
                uint64_t rs = seed * 0x9e3779b97f4a7c15ULL + 77;
                float a = 1.0f / (float)net->D;
                for (size_t i = 0; i < (size_t)net->n_rows * net->D; i++)
                        P[i] = a * rng_uniform(&rs);
                float b1 = net->H ? sqrtf(6.0f / (float)net->D) : 0;
                for (size_t i = 0; i < (size_t)net->H * net->D; i++)
                        P[net->off_w1 + i] = b1 * rng_uniform(&rs);
        }
        return im ? init_from_model(net, im, P) : KINFER_OK;
}
