/* SPDX-License-Identifier: Apache-2.0 */
/* rollout.h -- (private to src/worker) canary routing and shadow comparison (issue 15).
 *
 * Canary: a record goes to the candidate when kinfer_rollout_bucket(key) < the share in
 * basis points (percent x 100). The key is the record's Kafka key; a record without one uses
 * its id (input.id.field), and one without either its text. The bucket is
 * splitmix64's finaliser of FNV-1a-64 over the key bytes, mod 10000: the same key always lands
 * in the same bucket, so it always gets the same version while the share holds, and a larger
 * share keeps every key of the smaller one on the candidate.
 *
 * Shadow: per metrics window, the records both models classified, how many got the same top-1
 * label (by name), the (active label, candidate label) pairs (at most KINFER_SHADOW_PAIRS distinct pairs,
 * the agreeing ones included; records of further pairs are counted in `other`, so pairs plus
 * other sum to the records), the sum of (candidate top-1 score - active top-1 score), and each
 * model's classification time. */
#ifndef KINFER_WORKER_ROLLOUT_H
#define KINFER_WORKER_ROLLOUT_H
#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/buf.h"
#include "kinfer/runtime/runtime.h"
#include "kinfer/worker/model_slot.h"

#define KINFER_SHADOW_PAIRS 64

/** The canary bucket of @p key (0..9999). */
int32_t kinfer_rollout_bucket(const void *key, size_t len);

typedef struct kinfer_shadow_acc_s {
        int64_t start_us; /* wall clock, Unix us; 0: nothing counted yet */
        int64_t records, agree, other;
        double score_diff_sum;
        int64_t active_us, candidate_us; /* classification time of each model */
        int32_t n_pairs;
        struct {
                int32_t active, candidate;
                int64_t n;
        } pairs[KINFER_SHADOW_PAIRS];
} kinfer_shadow_acc_t;

/** Count @p n records classified by both models (@p pa active, @p pc candidate). Records with
 *  no prediction (n == 0) are not counted. */
void kinfer_shadow_acc_add(kinfer_shadow_acc_t *acc, const kinfer_model_record_t *active,
                           const kinfer_model_record_t *candidate, const kinfer_prediction_t *pa,
                           const kinfer_prediction_t *pc, int32_t n, int64_t active_us,
                           int64_t candidate_us);

/** The pairs as JSON [[active label, candidate label, count], ...], labels by the records'
 *  names (escaped by core's JSON escaper). @returns 0, or -1 out of memory. */
int kinfer_shadow_acc_confusion_json(const kinfer_shadow_acc_t *acc,
                                     const kinfer_model_record_t *active,
                                     const kinfer_model_record_t *candidate, kinfer_buf_t *out);
#endif
