-- SPDX-License-Identifier: Apache-2.0
-- 0006_drift.sql -- the drift signal (issue 15, part 3): per metrics window, the PSI of the
-- worker's top-1 labels and top-1 scores against the reference its model carries from training
-- (docs/operations.md, Drift), and the window's top-1 score histogram, so that the trend can be
-- recomputed against any reference. NULL: not computed (the model has no reference, the window
-- had fewer than drift.min.records records, or no confidence PSI against a training-data
-- reference), or a worker older than this migration.
--
-- Workers write the columns through kinfer.metrics_drift, after kinfer.metrics_insert wrote the
-- row: a separate function keeps kinfer.metrics_insert's signature as it is. Both are
-- idempotent, so a window re-sent after a reconnect lands once.
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here).

ALTER TABLE kinfer.metrics_windows
        ADD COLUMN psi_labels double precision,
        ADD COLUMN psi_confidence double precision,
        ADD COLUMN confidence_hist bigint[];

CREATE FUNCTION kinfer.metrics_drift(p_worker_id text, p_window_start timestamptz,
                                     p_model_sha256 text, p_psi_labels double precision,
                                     p_psi_confidence double precision,
                                     p_confidence_hist bigint[])
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF p_confidence_hist IS NOT NULL AND (cardinality(p_confidence_hist) > 100
                                              OR array_ndims(p_confidence_hist) > 1) THEN
                RAISE EXCEPTION 'confidence_hist has more than 100 bins'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF (p_psi_labels IS NOT NULL AND NOT (p_psi_labels >= 0 AND p_psi_labels < 'Infinity'))
           OR (p_psi_confidence IS NOT NULL
               AND NOT (p_psi_confidence >= 0 AND p_psi_confidence < 'Infinity')) THEN
                RAISE EXCEPTION 'a PSI must be a finite number >= 0'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        UPDATE kinfer.metrics_windows
           SET psi_labels = p_psi_labels, psi_confidence = p_psi_confidence,
               confidence_hist = p_confidence_hist
         WHERE worker_id = p_worker_id AND window_start = p_window_start
           AND model_sha256 IS NOT DISTINCT FROM left(p_model_sha256, 64);
END
$$;

REVOKE ALL ON FUNCTION kinfer.metrics_drift(text, timestamptz, text, double precision,
                                            double precision, bigint[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION kinfer.metrics_drift(text, timestamptz, text, double precision,
                                               double precision, bigint[]) TO kinfer_worker;
