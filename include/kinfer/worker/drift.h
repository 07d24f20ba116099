/* SPDX-License-Identifier: Apache-2.0 */
/* drift.h -- the drift signal: per closed metrics window, the population stability index (PSI)
 * of the live top-1 labels and top-1 scores against the reference the model carries from
 * training (model.h: kinfer_model_reference), with a warning above drift.psi.warn.
 *
 *   PSI = sum over bins i of (p_i - q_i) * ln(p_i / q_i)
 *
 * p = the window's proportions, q = the reference's, each proportion raised to at least
 * KINFER_DRIFT_EPSILON first (so an empty bin on either side adds a bounded term instead of
 * an infinite one). Computed only for a window of at least drift.min.records records and a
 * model with a reference: fewer records give no PSI for that window, not a noisy one. The
 * usual reading: < 0.1 no change, 0.1 to 0.25 moderate, > 0.25 major (docs/operations.md).
 */
#ifndef KINFER_DRIFT_H
#define KINFER_DRIFT_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/worker/metrics.h"

/** The floor of a proportion in the PSI (an empty bin counts as this share). */
#define KINFER_DRIFT_EPSILON 1e-4

typedef struct kinfer_drift_conf_s {
        double psi_warn;     /* drift.psi.warn */
        int64_t min_records; /* drift.min.records */
} kinfer_drift_conf_t;

/** Read drift.psi.warn and drift.min.records from @p conf.
 *  @returns KINFER_OK or KINFER_ERR__INVALID_ARG (see @p errstr). */
kinfer_err_t kinfer_drift_conf_init(kinfer_drift_conf_t *dc, const kinfer_conf_t *conf,
                                    char *errstr, size_t errstr_size);

/** Parse a PSI threshold: a finite number in (0, 100]. @returns 0 and *@p out, or -1. */
int kinfer_drift_parse_psi(const char *s, double *out);

/**
 * @brief The PSI of @p live (n counts) against @p ref (n non-negative weights), proportions
 *        floored at KINFER_DRIFT_EPSILON.
 * @returns the PSI (>= 0), or -1 when either side sums to 0 or n < 1.
 */
double kinfer_drift_psi(const int64_t *live, const double *ref, int32_t n);

/**
 * @brief Assess closed window @p win against its model's reference: sets psi_assessed,
 *        psi_labels and psi_confidence when the model has a reference and the window at least
 *        dc->min_records records. psi_confidence is -1 (none) for a reference computed on the
 *        training data ("data": "train"), whose confidence histogram is biased high.
 * @returns 1 when assessed and either PSI is above dc->psi_warn (the caller warns), 0 when
 *          assessed and below, -1 when not assessed.
 */
int kinfer_drift_assess(const kinfer_drift_conf_t *dc, kinfer_metrics_window_t *win);

#endif
