/* SPDX-License-Identifier: Apache-2.0 */
/* rollout.c -- canary routing and shadow comparison (rollout.h). */
#include "worker/rollout.h"

#include <inttypes.h>
#include <string.h>

#include "kinfer/core/json.h"

int32_t kinfer_rollout_bucket(const void *key, size_t len)
{
        const unsigned char *p = key;
        uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a 64 */
        for (size_t i = 0; i < len; i++) {
                h ^= p[i];
                h *= 0x100000001b3ULL;
        }
        h ^= h >> 30; /* splitmix64's finaliser: every bit of h reaches the low digits */
        h *= 0xbf58476d1ce4e5b9ULL;
        h ^= h >> 27;
        h *= 0x94d049bb133111ebULL;
        h ^= h >> 31;
        return (int32_t)(h % 10000);
}

void kinfer_shadow_acc_add(kinfer_shadow_acc_t *acc, const kinfer_model_record_t *active,
                           const kinfer_model_record_t *candidate, const kinfer_prediction_t *pa,
                           const kinfer_prediction_t *pc, int32_t n, int64_t active_us,
                           int64_t candidate_us)
{
        acc->active_us += active_us;
        acc->candidate_us += candidate_us;
        for (int32_t i = 0; i < n; i++) {
                if (pa[i].n < 1 || pc[i].n < 1)
                        continue;
                int32_t a = pa[i].label[0], c = pc[i].label[0];
                acc->records++;
                acc->score_diff_sum += (double)pc[i].prob[0] - (double)pa[i].prob[0];
                int32_t j = 0;
                while (j < acc->n_pairs && (acc->pairs[j].active != a || acc->pairs[j].candidate != c))
                        j++;
                if (j == acc->n_pairs && j < KINFER_SHADOW_PAIRS) {
                        acc->pairs[j].active = a;
                        acc->pairs[j].candidate = c;
                        acc->pairs[j].n = 0;
                        acc->n_pairs++;
                }
                if (j < acc->n_pairs)
                        acc->pairs[j].n++;
                else
                        acc->other++;
                /* agreement: the same top-1 label name (the two models' label orders may differ) */
                acc->agree += a >= 0 && a < active->n_labels && c >= 0 &&
                               c < candidate->n_labels &&
                               !strcmp(active->labels[a], candidate->labels[c]);
        }
}

int kinfer_shadow_acc_confusion_json(const kinfer_shadow_acc_t *acc,
                                     const kinfer_model_record_t *active,
                                     const kinfer_model_record_t *candidate, kinfer_buf_t *out)
{
        if (kinfer_buf_putc(out, '['))
                return -1;
        for (int32_t j = 0; j < acc->n_pairs; j++) {
                int32_t a = acc->pairs[j].active, c = acc->pairs[j].candidate;
                const char *la = a >= 0 && a < active->n_labels ? active->labels[a] : "";
                const char *lc = c >= 0 && c < candidate->n_labels ? candidate->labels[c] : "";
                if ((j && kinfer_buf_putc(out, ',')) || kinfer_buf_putc(out, '[') ||
                    kinfer_buf_json_cstr(out, la) || kinfer_buf_putc(out, ',') ||
                    kinfer_buf_json_cstr(out, lc) ||
                    kinfer_buf_printf(out, ",%" PRId64 "]", acc->pairs[j].n))
                        return -1;
        }
        return kinfer_buf_putc(out, ']') ? -1 : 0;
}
