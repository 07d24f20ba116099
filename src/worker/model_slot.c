/* SPDX-License-Identifier: Apache-2.0 */
/* model_slot.c -- the mailbox of models for the worker and the record of what it applied. */
#include "kinfer/worker/model_slot.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- records -------------------------------------------------------------------------------- */

/* One allocation: the refcount, the record, the label pointers, then the label bytes. */
struct record_box {
        atomic_int refs;
        kinfer_model_record_t rec;
        const char *labels[];
};

static struct record_box *box_of(kinfer_model_record_t *rec)
{
        return (struct record_box *)((char *)rec - offsetof(struct record_box, rec));
}

kinfer_model_record_t *kinfer_model_record_new(const kinfer_model_t *model, int64_t id,
                                               const char *name, int32_t version,
                                               const char *deployment, char *errstr,
                                               size_t errstr_size)
{
        int32_t n = kinfer_model_n_labels(model);
        if (n < 0)
                n = 0;
        size_t bytes = 0;
        for (int32_t i = 0; i < n; i++)
                bytes += strlen(kinfer_model_label(model, i)) + 1;
        const kinfer_model_reference_t *ref = kinfer_model_reference(model);
        size_t ref_bytes = ref ? (size_t)n * sizeof(double) : 0;
        struct record_box *box =
            malloc(sizeof(*box) + (size_t)n * sizeof(box->labels[0]) + ref_bytes + bytes);
        if (!box) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        memset(box, 0, sizeof(*box));
        atomic_init(&box->refs, 1);
        kinfer_model_record_t *rec = &box->rec;
        const char *own = kinfer_model_name(model);
        snprintf(rec->name, sizeof(rec->name), "%s",
                 name && *name ? name : own && *own ? own : "model");
        rec->id = id;
        rec->version = version;
        snprintf(rec->sha256, sizeof(rec->sha256), "%s", kinfer_model_sha256_hex(model));
        snprintf(rec->deployment, sizeof(rec->deployment), "%s", deployment ? deployment : "");
        char *p = (char *)&box->labels[n];
        if (ref && ref->n_labels == n) { /* the reference's label counts, then the names */
                rec->has_ref = 1;
                rec->ref = *ref;
                memcpy(p, ref->labels, ref_bytes);
                rec->ref.labels = (const double *)p;
                p += ref_bytes;
        }
        for (int32_t i = 0; i < n; i++) {
                const char *l = kinfer_model_label(model, i);
                size_t len = strlen(l) + 1;
                memcpy(p, l, len);
                box->labels[i] = p;
                p += len;
        }
        rec->n_labels = n;
        rec->labels = box->labels;
        return rec;
}

kinfer_model_record_t *kinfer_model_record_keep(kinfer_model_record_t *rec)
{
        if (rec)
                atomic_fetch_add_explicit(&box_of(rec)->refs, 1, memory_order_relaxed);
        return rec;
}

void kinfer_model_record_release(kinfer_model_record_t *rec)
{
        if (rec && atomic_fetch_sub_explicit(&box_of(rec)->refs, 1, memory_order_acq_rel) == 1)
                free(box_of(rec));
}

/* ---- the slot ------------------------------------------------------------------------------- */

struct kinfer_model_slot_s {
        pthread_mutex_t lock; /* protects everything below but `pending` */
        atomic_int pending;   /* a post waits (read without the lock by the worker's loop) */
        kinfer_model_t *post_model;
        kinfer_model_record_t *post_rec;
        uint64_t post_seq;
        kinfer_model_record_t *applied;
        kinfer_model_t *applied_model; /* kinfer_model_slot_publish_model(); NULL otherwise */
        uint64_t generation;
        kinfer_model_rollout_t post_ro; /* the candidate posted with post_model (rollouts) */
};

static void rollout_release(kinfer_model_rollout_t *ro)
{
        kinfer_model_release(ro->model);
        kinfer_model_record_release(ro->rec);
        memset(ro, 0, sizeof(*ro));
}

kinfer_model_slot_t *kinfer_model_slot_new(char *errstr, size_t errstr_size)
{
        kinfer_model_slot_t *slot = calloc(1, sizeof(*slot));
        if (!slot) {
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
                return NULL;
        }
        if (pthread_mutex_init(&slot->lock, NULL)) {
                free(slot);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__STATE, "cannot create a mutex");
                return NULL;
        }
        atomic_init(&slot->pending, 0);
        return slot;
}

void kinfer_model_slot_destroy(kinfer_model_slot_t *slot)
{
        if (!slot)
                return;
        kinfer_model_release(slot->post_model);
        kinfer_model_record_release(slot->post_rec);
        rollout_release(&slot->post_ro);
        kinfer_model_record_release(slot->applied);
        kinfer_model_release(slot->applied_model);
        pthread_mutex_destroy(&slot->lock);
        free(slot);
}

kinfer_err_t kinfer_model_slot_post(kinfer_model_slot_t *slot, kinfer_model_t *model, int64_t id,
                                    const char *name, int32_t version, const char *deployment,
                                    uint64_t *seq, char *errstr, size_t errstr_size)
{
        return kinfer_model_slot_post_rollout(slot, model, id, name, version, deployment, NULL, seq,
                                              errstr, errstr_size);
}

kinfer_err_t kinfer_model_slot_post_rollout(kinfer_model_slot_t *slot, kinfer_model_t *model,
                                            int64_t id, const char *name, int32_t version,
                                            const char *deployment,
                                            const kinfer_model_rollout_t *candidate, uint64_t *seq,
                                            char *errstr, size_t errstr_size)
{
        kinfer_model_rollout_t ro = {0};
        if (candidate && candidate->mode != KINFER_ROLLOUT_NONE) {
                ro = *candidate; /* its model reference is ours now */
                if (!ro.model || kinfer_model_n_labels(ro.model) < 1 ||
                    (ro.mode == KINFER_ROLLOUT_CANARY &&
                     (ro.basis_points < 1 || ro.basis_points > 9999))) {
                        kinfer_model_release(ro.model);
                        kinfer_model_release(model);
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "candidate: no model, no labels or a share outside "
                                             "1..9999 / 10000");
                }
                ro.rec = kinfer_model_record_new(ro.model, candidate->id, candidate->name,
                                                 candidate->version, deployment, errstr,
                                                 errstr_size);
                if (!ro.rec) {
                        kinfer_model_release(ro.model);
                        kinfer_model_release(model);
                        return KINFER_ERR__NOMEM;
                }
        }
        if (!model) {
                rollout_release(&ro);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG, "no model");
        }
        if (kinfer_model_n_labels(model) < 1) {
                kinfer_model_release(model);
                rollout_release(&ro);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "the model has no labels");
        }
        kinfer_model_record_t *rec =
            kinfer_model_record_new(model, id, name, version, deployment, errstr, errstr_size);
        if (!rec) {
                kinfer_model_release(model);
                rollout_release(&ro);
                return KINFER_ERR__NOMEM;
        }
        pthread_mutex_lock(&slot->lock);
        kinfer_model_t *old_model = slot->post_model;
        kinfer_model_record_t *old_rec = slot->post_rec;
        kinfer_model_rollout_t old_ro = slot->post_ro;
        rec->post_seq = ++slot->post_seq;
        if (ro.rec)
                ro.rec->post_seq = rec->post_seq;
        if (seq)
                *seq = rec->post_seq;
        slot->post_model = model;
        slot->post_rec = rec;
        slot->post_ro = ro;
        atomic_store(&slot->pending, 1);
        pthread_mutex_unlock(&slot->lock);
        kinfer_model_release(old_model); /* never taken: the newer post replaces it */
        kinfer_model_record_release(old_rec);
        rollout_release(&old_ro);
        return KINFER_OK;
}

int kinfer_model_slot_pending(kinfer_model_slot_t *slot)
{
        return atomic_load(&slot->pending);
}

kinfer_model_t *kinfer_model_slot_take(kinfer_model_slot_t *slot, kinfer_model_record_t **rec)
{
        kinfer_model_rollout_t ro;
        kinfer_model_t *model = kinfer_model_slot_take_rollout(slot, rec, &ro);
        rollout_release(&ro);
        return model;
}

kinfer_model_t *kinfer_model_slot_take_rollout(kinfer_model_slot_t *slot,
                                               kinfer_model_record_t **rec,
                                               kinfer_model_rollout_t *candidate)
{
        pthread_mutex_lock(&slot->lock);
        kinfer_model_t *model = slot->post_model;
        *rec = slot->post_rec;
        *candidate = slot->post_ro;
        memset(&slot->post_ro, 0, sizeof(slot->post_ro));
        slot->post_model = NULL;
        slot->post_rec = NULL;
        atomic_store(&slot->pending, 0);
        pthread_mutex_unlock(&slot->lock);
        return model;
}

void kinfer_model_rollout_release(kinfer_model_rollout_t *candidate)
{
        if (candidate)
                rollout_release(candidate);
}

static void publish(kinfer_model_slot_t *slot, kinfer_model_t *model, int with_model,
                    kinfer_model_record_t *rec)
{
        struct timespec wall, mono;
        clock_gettime(CLOCK_REALTIME, &wall);
        clock_gettime(CLOCK_MONOTONIC, &mono);
        rec->applied_at_ms = (int64_t)wall.tv_sec * 1000 + wall.tv_nsec / 1000000;
        rec->applied_mono_us = (int64_t)mono.tv_sec * 1000000 + mono.tv_nsec / 1000;
        pthread_mutex_lock(&slot->lock);
        rec->generation = ++slot->generation;
        kinfer_model_record_t *old = slot->applied;
        kinfer_model_t *old_model = NULL;
        slot->applied = rec;
        if (with_model) {
                old_model = slot->applied_model;
                slot->applied_model = model ? kinfer_model_keep(model) : NULL;
        }
        pthread_mutex_unlock(&slot->lock);
        kinfer_model_record_release(old);
        kinfer_model_release(old_model);
}

void kinfer_model_slot_publish(kinfer_model_slot_t *slot, kinfer_model_record_t *rec)
{
        publish(slot, NULL, 0, rec);
}

void kinfer_model_slot_publish_model(kinfer_model_slot_t *slot, kinfer_model_t *model,
                                     kinfer_model_record_t *rec)
{
        publish(slot, model, 1, rec);
}

kinfer_model_t *kinfer_model_slot_current(kinfer_model_slot_t *slot, kinfer_model_record_t **rec)
{
        pthread_mutex_lock(&slot->lock);
        kinfer_model_t *model =
            slot->applied_model ? kinfer_model_keep(slot->applied_model) : NULL;
        *rec = model ? kinfer_model_record_keep(slot->applied) : NULL;
        pthread_mutex_unlock(&slot->lock);
        return model;
}

kinfer_model_record_t *kinfer_model_slot_applied(kinfer_model_slot_t *slot)
{
        pthread_mutex_lock(&slot->lock);
        kinfer_model_record_t *rec = kinfer_model_record_keep(slot->applied);
        pthread_mutex_unlock(&slot->lock);
        return rec;
}
