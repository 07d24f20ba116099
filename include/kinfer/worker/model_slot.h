/* SPDX-License-Identifier: Apache-2.0 */
/* model_slot.h -- the one place that says which model a worker serves.
 *
 * A slot is a one-slot mailbox from whoever supplies models (the registry thread,
 * model_watch.h, or an embedder through kinfer_worker_swap_model()) to the worker thread,
 * plus the record of what the worker applied:
 *
 *   supplier:  load, verify, warm up  ->  kinfer_model_slot_post()     (any thread)
 *   worker:    between two batches    ->  kinfer_model_slot_take()
 *                                         kinfer_model_slot_publish()  (the worker thread)
 *   readers:   heartbeats, metrics    ->  kinfer_model_slot_applied()  (any thread)
 *
 * A post that the worker has not taken yet is replaced (and released) by a newer one. The
 * worker applies a post without testing it again: the supplier has already checked it. What
 * the worker applied is published as an immutable, refcounted kinfer_model_record_t; it is
 * the only answer to "which model is current", and it changes only when the worker swapped.
 */
#ifndef KINFER_MODEL_SLOT_H
#define KINFER_MODEL_SLOT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"

/** A model's identity as results, heartbeats and metrics carry it. Immutable once published
 *  (kinfer_model_slot_publish); refcounted (kinfer_model_record_keep / _release). It holds no
 *  reference to the model itself, so metrics windows may outlive the model. */
typedef struct kinfer_model_record_s {
        int64_t id;               /* registry model id; 0 outside the registry */
        char name[129];           /* written in results */
        int32_t version;          /* written in results */
        char sha256[65];          /* of the model file */
        char deployment[129];     /* "" outside a registry deployment */
        int32_t n_labels;
        const char *const *labels; /* n_labels names (owned by the record) */
        int has_ref;              /* the model carries a drift reference (model.h) */
        kinfer_model_reference_t ref; /* a copy of it (ref.labels owned by the record) */
        uint64_t post_seq;        /* the post it came in (kinfer_model_slot_post); 0: none */
        /* set when the worker applied it (0 before): */
        uint64_t generation;      /* 1 for the first model the worker applied, +1 per swap */
        int64_t applied_at_ms;    /* wall clock, Unix ms */
        int64_t applied_mono_us;  /* the same moment on CLOCK_MONOTONIC (for latencies) */
} kinfer_model_record_t;

/**
 * @brief A record for @p model: its sha256 and labels, with @p name (NULL or "": the model's
 *        own name, else "model"), @p version, registry @p id and @p deployment (NULL: "").
 * @returns the record (one reference), or NULL (see @p errstr: out of memory).
 */
kinfer_model_record_t *kinfer_model_record_new(const kinfer_model_t *model, int64_t id,
                                               const char *name, int32_t version,
                                               const char *deployment, char *errstr,
                                               size_t errstr_size);
/** One more reference. @returns @p rec. NULL is a no-op. @locality any thread. */
kinfer_model_record_t *kinfer_model_record_keep(kinfer_model_record_t *rec);
/** Drop one reference. NULL is a no-op. @locality any thread. */
void kinfer_model_record_release(kinfer_model_record_t *rec);

typedef struct kinfer_model_slot_s kinfer_model_slot_t;

kinfer_model_slot_t *kinfer_model_slot_new(char *errstr, size_t errstr_size);
/** Release the post (if any) and the applied record. NULL is a no-op. */
void kinfer_model_slot_destroy(kinfer_model_slot_t *slot);

/**
 * @brief Post @p model for the worker to apply between two batches, replacing (and releasing)
 *        a post it has not taken yet.
 * Takes ownership of one reference of @p model, also on failure. The identity arguments are
 * as for kinfer_model_record_new().
 * @param seq  set to the post's sequence number (1, 2, ...; see record->post_seq); may be NULL
 * @returns KINFER_OK, KINFER_ERR__INVALID_ARG (no model, a model without labels) or
 *          KINFER_ERR__NOMEM.
 * @locality any thread.
 */
kinfer_err_t kinfer_model_slot_post(kinfer_model_slot_t *slot, kinfer_model_t *model, int64_t id,
                                    const char *name, int32_t version, const char *deployment,
                                    uint64_t *seq, char *errstr, size_t errstr_size);

/** A rollout's mode (kinfer.deployments.candidate_mode, migration 0005). */
typedef enum {
        KINFER_ROLLOUT_NONE = 0,
        KINFER_ROLLOUT_CANARY, /* a share of the keys goes to the candidate */
        KINFER_ROLLOUT_SHADOW  /* the candidate scores every record; its results are not published */
} kinfer_rollout_mode_t;

/** The candidate posted beside the active model (canary or shadow). */
typedef struct kinfer_model_rollout_s {
        kinfer_rollout_mode_t mode;
        int32_t basis_points;        /* canary: share of the keys in 1/10000 (1..9999) */
        kinfer_model_t *model;       /* one reference; NULL with KINFER_ROLLOUT_NONE */
        kinfer_model_record_t *rec;  /* set by the slot (take); one reference */
        int64_t id;                  /* identity, as for kinfer_model_record_new() (post) */
        const char *name;
        int32_t version;
} kinfer_model_rollout_t;

/**
 * @brief kinfer_model_slot_post() with a candidate: the worker applies the active model and
 *        the candidate (or none: NULL or mode NONE) together, between two batches.
 * Takes ownership of the references of @p model and @p candidate->model, also on failure.
 * @returns as kinfer_model_slot_post(); KINFER_ERR__INVALID_ARG also for a candidate without a
 *          model or labels, or a canary share outside 1..9999.
 * @locality any thread.
 */
kinfer_err_t kinfer_model_slot_post_rollout(kinfer_model_slot_t *slot, kinfer_model_t *model,
                                            int64_t id, const char *name, int32_t version,
                                            const char *deployment,
                                            const kinfer_model_rollout_t *candidate, uint64_t *seq,
                                            char *errstr, size_t errstr_size);
/** kinfer_model_slot_take() with the candidate posted with it (mode NONE when none); release
 *  it with kinfer_model_rollout_release(). @locality the worker thread. */
kinfer_model_t *kinfer_model_slot_take_rollout(kinfer_model_slot_t *slot,
                                               kinfer_model_record_t **rec,
                                               kinfer_model_rollout_t *candidate);
/** Release a candidate's references and zero it. NULL is a no-op. */
void kinfer_model_rollout_release(kinfer_model_rollout_t *candidate);

/** @returns 1 when a post waits to be taken (one atomic load). @locality any thread. */
int kinfer_model_slot_pending(kinfer_model_slot_t *slot);

/**
 * @brief Take the post: the model (one reference) and its record (one reference, in @p rec),
 *        or NULL when there is none.
 * @locality the worker thread.
 */
kinfer_model_t *kinfer_model_slot_take(kinfer_model_slot_t *slot, kinfer_model_record_t **rec);

/**
 * @brief Publish @p rec as what the worker applied now: stamps its generation and applied
 *        times, then replaces (and releases) the previous record. Takes @p rec's reference.
 * @locality the worker thread (the only writer of the record).
 */
void kinfer_model_slot_publish(kinfer_model_slot_t *slot, kinfer_model_record_t *rec);

/** @returns what the worker applied last (one reference for the caller), or NULL before it
 *  applied any model. @locality any thread. */
kinfer_model_record_t *kinfer_model_slot_applied(kinfer_model_slot_t *slot);

/**
 * @brief kinfer_model_slot_publish() that also keeps the model it applied (one more reference),
 *        so that other classifiers (the HTTP /v1/classify thread, http_classify.h) serve the
 *        very model the worker serves. The previous model's slot reference is released.
 * @locality the worker thread.
 */
void kinfer_model_slot_publish_model(kinfer_model_slot_t *slot, kinfer_model_t *model,
                                     kinfer_model_record_t *rec);

/**
 * @brief The model applied last with kinfer_model_slot_publish_model() (one reference for the
 *        caller) and its record (one reference, in @p rec), or NULL (and *@p rec = NULL) before
 *        any. A batch holds its references while it runs: a swap meanwhile does not free it.
 * @locality any thread.
 */
kinfer_model_t *kinfer_model_slot_current(kinfer_model_slot_t *slot, kinfer_model_record_t **rec);

#endif
