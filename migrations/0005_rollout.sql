-- SPDX-License-Identifier: Apache-2.0
-- 0005_rollout.sql -- canary and shadow rollouts (issue 15, parts 1 and 2).
--
-- A deployment may have one candidate model beside its active one:
--   * mode 'canary': the records whose key hashes below candidate_percent go to the
--     candidate (the worker's rule: docs/registry.md), the others to the active model;
--   * mode 'shadow': every record is classified by both; only the active model's result is
--     published; the workers write the comparison per metrics window to kinfer.shadow_windows.
--
-- kinfer.canary(), kinfer.shadow(), kinfer.promote(), kinfer.abort_canary() and
-- kinfer.end_shadow() change the candidate; each step is a row of kinfer.activations
-- (actions 'canary', 'shadow', 'promote', 'abort', 'end_shadow') and a NOTIFY
-- kinfer_deployment, like activate and rollback, with the same privilege rules (SECURITY
-- DEFINER, EXECUTE for kinfer_operator only). Promote is an activation of the candidate (the
-- active model becomes the previous one, so kinfer.rollback goes back to it).
-- abort_canary ends either mode; end_shadow ends a shadow only. A plain activate or rollback
-- while a candidate is set ends the candidate too: an 'abort' row (reason 'ended by
-- activate' / 'ended by rollback') precedes the activation's own row.
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here).

-- ---- the candidate ---------------------------------------------------------------------------
ALTER TABLE kinfer.deployments
        ADD COLUMN candidate_model_id bigint REFERENCES kinfer.models (id),
        ADD COLUMN candidate_mode text CHECK (candidate_mode IN ('canary', 'shadow')),
        -- canary share in percent, two decimals (the worker's unit is 1/10000)
        ADD COLUMN candidate_percent numeric(5, 2)
                CHECK (candidate_percent > 0 AND candidate_percent < 100),
        ADD CONSTRAINT deployments_candidate_whole CHECK (
                (candidate_model_id IS NULL AND candidate_mode IS NULL AND candidate_percent IS NULL)
                OR (candidate_model_id IS NOT NULL AND candidate_mode = 'shadow'
                    AND candidate_percent IS NULL)
                OR (candidate_model_id IS NOT NULL AND candidate_mode = 'canary'
                    AND candidate_percent IS NOT NULL));

ALTER TABLE kinfer.activations DROP CONSTRAINT activations_action_check;
ALTER TABLE kinfer.activations ADD CONSTRAINT activations_action_check
        CHECK (action IN ('activate', 'rollback', 'update', 'canary', 'shadow', 'promote', 'abort',
                          'end_shadow'));
-- canary rows: the share routed to the candidate (to_model_id)
ALTER TABLE kinfer.activations ADD COLUMN percent numeric(5, 2);

-- A change of the active model ends the candidate (whatever made it: activate, rollback,
-- promote, the owner's own UPDATE).
CREATE FUNCTION kinfer.deployments_end_candidate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF NEW.active_model_id IS DISTINCT FROM OLD.active_model_id THEN
                NEW.candidate_model_id := NULL;
                NEW.candidate_mode := NULL;
                NEW.candidate_percent := NULL;
        END IF;
        RETURN NEW;
END
$$;
CREATE TRIGGER deployments_end_candidate BEFORE UPDATE ON kinfer.deployments
        FOR EACH ROW EXECUTE FUNCTION kinfer.deployments_end_candidate();

-- History and NOTIFY for every change of the active model or of the candidate.
CREATE OR REPLACE FUNCTION kinfer.deployments_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        v_action text := coalesce(nullif(current_setting('kinfer.action', true), ''), 'update');
        v_reason text := nullif(current_setting('kinfer.reason', true), '');
        v_active_changed boolean;
        v_candidate_changed boolean;
BEGIN
        IF TG_OP = 'INSERT' THEN
                IF NEW.active_model_id IS NULL THEN
                        RETURN NULL;
                END IF;
                INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id, who, at, reason)
                VALUES (NEW.name, v_action, NULL, NEW.active_model_id, session_user, now(), v_reason);
                PERFORM pg_notify('kinfer_deployment', NEW.name);
                RETURN NULL;
        END IF;
        v_active_changed := NEW.active_model_id IS DISTINCT FROM OLD.active_model_id;
        v_candidate_changed := NEW.candidate_model_id IS DISTINCT FROM OLD.candidate_model_id
                OR NEW.candidate_mode IS DISTINCT FROM OLD.candidate_mode
                OR NEW.candidate_percent IS DISTINCT FROM OLD.candidate_percent;
        IF NOT v_active_changed AND NOT v_candidate_changed THEN
                RETURN NULL;
        END IF;
        IF v_active_changed THEN
                -- a candidate ended by a change of the active model other than its promotion
                IF OLD.candidate_model_id IS NOT NULL AND v_action <> 'promote' THEN
                        INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id,
                                                        who, at, reason)
                        VALUES (NEW.name, CASE OLD.candidate_mode WHEN 'shadow' THEN 'end_shadow'
                                                                  ELSE 'abort' END,
                                OLD.candidate_model_id, OLD.active_model_id, session_user, now(),
                                'ended by ' || v_action);
                END IF;
                INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id, who, at, reason)
                VALUES (NEW.name, v_action, OLD.active_model_id, NEW.active_model_id, session_user,
                        now(), v_reason);
        ELSIF NEW.candidate_model_id IS NOT NULL THEN
                -- canary / shadow (or a new share): from the active model to the candidate
                INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id, who,
                                                at, reason, percent)
                VALUES (NEW.name, v_action, NEW.active_model_id, NEW.candidate_model_id, session_user,
                        now(), v_reason, NEW.candidate_percent);
        ELSE
                -- abort / end_shadow: from the candidate back to the active model alone
                INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id, who, at, reason)
                VALUES (NEW.name, v_action, OLD.candidate_model_id, NEW.active_model_id, session_user,
                        now(), v_reason);
        END IF;
        PERFORM pg_notify('kinfer_deployment', NEW.name);
        RETURN NULL;
END
$$;

-- ---- the functions ---------------------------------------------------------------------------
-- The one place that sets a candidate. Returns a one-line summary. Not executable by any
-- role (only through kinfer.canary / kinfer.shadow); SECURITY DEFINER like every writer.
CREATE FUNCTION kinfer.rollout_set(p_deployment text, p_model_name text, p_version integer,
                                   p_mode text, p_percent numeric, p_reason text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        v_model bigint;
        v_dep kinfer.deployments%ROWTYPE;
        v_active text;
BEGIN
        IF p_mode = 'canary' AND (p_percent IS NULL OR p_percent <= 0 OR p_percent >= 100
                                  OR p_percent <> round(p_percent, 2)) THEN
                RAISE EXCEPTION 'canary percent % is not in (0, 100) with at most two decimals', p_percent
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT m.id INTO v_model FROM kinfer.models m
        WHERE m.name = p_model_name AND m.version = p_version;
        IF NOT FOUND THEN
                RAISE EXCEPTION 'model %:% is not registered', p_model_name, p_version
                        USING ERRCODE = 'no_data_found';
        END IF;
        SELECT * INTO v_dep FROM kinfer.deployments d WHERE d.name = p_deployment FOR UPDATE;
        IF NOT FOUND THEN
                RAISE EXCEPTION 'deployment % does not exist', p_deployment USING ERRCODE = 'no_data_found';
        END IF;
        IF v_dep.active_model_id IS NULL THEN
                RAISE EXCEPTION 'deployment % has no active model (activate one first)', p_deployment
                        USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        IF v_dep.active_model_id = v_model THEN
                RAISE EXCEPTION 'deployment %: %:% is the active model, not a candidate', p_deployment,
                        p_model_name, p_version USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT m.name || ':' || m.version INTO v_active FROM kinfer.models m WHERE m.id = v_dep.active_model_id;
        IF v_dep.candidate_model_id IS NOT DISTINCT FROM v_model
           AND v_dep.candidate_mode IS NOT DISTINCT FROM p_mode
           AND v_dep.candidate_percent IS NOT DISTINCT FROM p_percent THEN
                RETURN format('%s: %s with %s %s:%s (unchanged)', p_deployment, v_active, p_mode,
                              p_model_name, p_version);
        END IF;
        PERFORM set_config('kinfer.action', p_mode, true);
        PERFORM set_config('kinfer.reason', coalesce(p_reason, ''), true);
        UPDATE kinfer.deployments d
        SET candidate_model_id = v_model, candidate_mode = p_mode,
            candidate_percent = CASE WHEN p_mode = 'canary' THEN p_percent END,
            updated_at = now(), updated_by = session_user
        WHERE d.name = p_deployment;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        IF p_mode = 'canary' THEN
                RETURN format('%s: %s, canary %s:%s on %s%% of keys', p_deployment, v_active,
                              p_model_name, p_version, p_percent);
        END IF;
        RETURN format('%s: %s, shadow %s:%s', p_deployment, v_active, p_model_name, p_version);
END
$$;

-- Route PERCENT (0 < p < 100, two decimals) of DEPLOYMENT's records, chosen by a hash of the
-- record key, to NAME:VERSION. Replaces a candidate already set (e.g. 10% -> 50%).
CREATE FUNCTION kinfer.canary(p_deployment text, p_model_name text, p_version integer,
                              p_percent numeric, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
        SELECT kinfer.rollout_set(p_deployment, p_model_name, p_version, 'canary', p_percent, p_reason)
$$;

-- Score every record of DEPLOYMENT with NAME:VERSION beside the active model; publish only
-- the active model's results.
CREATE FUNCTION kinfer.shadow(p_deployment text, p_model_name text, p_version integer,
                              p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
        SELECT kinfer.rollout_set(p_deployment, p_model_name, p_version, 'shadow', NULL, p_reason)
$$;

-- End DEPLOYMENT's candidate (P_ONLY_MODE: only when it is in that mode).
CREATE FUNCTION kinfer.rollout_end(p_deployment text, p_action text, p_only_mode text,
                                   p_reason text)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        v_dep kinfer.deployments%ROWTYPE;
        v_cand text;
        v_active text;
BEGIN
        SELECT * INTO v_dep FROM kinfer.deployments d WHERE d.name = p_deployment FOR UPDATE;
        IF NOT FOUND THEN
                RAISE EXCEPTION 'deployment % does not exist', p_deployment USING ERRCODE = 'no_data_found';
        END IF;
        IF v_dep.candidate_model_id IS NULL
           OR (p_only_mode IS NOT NULL AND v_dep.candidate_mode <> p_only_mode) THEN
                RAISE EXCEPTION 'deployment % has no % candidate', p_deployment,
                        coalesce(p_only_mode, 'canary or shadow')
                        USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        SELECT m.name || ':' || m.version INTO v_cand FROM kinfer.models m WHERE m.id = v_dep.candidate_model_id;
        SELECT m.name || ':' || m.version INTO v_active FROM kinfer.models m WHERE m.id = v_dep.active_model_id;
        PERFORM set_config('kinfer.action', p_action, true);
        PERFORM set_config('kinfer.reason', coalesce(p_reason, ''), true);
        IF p_action = 'promote' THEN
                UPDATE kinfer.deployments d
                SET previous_model_id = d.active_model_id, active_model_id = d.candidate_model_id,
                    updated_at = now(), updated_by = session_user
                WHERE d.name = p_deployment;
        ELSE
                UPDATE kinfer.deployments d
                SET candidate_model_id = NULL, candidate_mode = NULL, candidate_percent = NULL,
                    updated_at = now(), updated_by = session_user
                WHERE d.name = p_deployment;
        END IF;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        IF p_action = 'promote' THEN
                RETURN format('%s: %s -> %s (promoted %s)', p_deployment, v_active, v_cand,
                              v_dep.candidate_mode);
        END IF;
        RETURN format('%s: %s %s ended, %s serves all', p_deployment, v_dep.candidate_mode, v_cand,
                      v_active);
END
$$;

-- The candidate (canary or shadow) becomes the active model: an activation of it.
CREATE FUNCTION kinfer.promote(p_deployment text, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
        SELECT kinfer.rollout_end(p_deployment, 'promote', NULL, p_reason)
$$;

-- End the candidate, canary or shadow: the active model serves every record again.
CREATE FUNCTION kinfer.abort_canary(p_deployment text, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
        SELECT kinfer.rollout_end(p_deployment, 'abort', NULL, p_reason)
$$;

-- End a shadow (an error when the candidate is a canary).
CREATE FUNCTION kinfer.end_shadow(p_deployment text, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
        SELECT kinfer.rollout_end(p_deployment, 'end_shadow', 'shadow', p_reason)
$$;

-- ---- shadow windows --------------------------------------------------------------------------
-- One row per worker, candidate and metrics window while a shadow runs: how the candidate
-- compares with the active model on the very same records. confusion: the most frequent
-- (active label, candidate label) pairs of disagreement, [[active, candidate, count], ...],
-- at most 64 pairs (the worker's bound); disagreements beyond them are counted in
-- confusion_other.
CREATE TABLE kinfer.shadow_windows (
        id                      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        worker_id               text NOT NULL,
        deployment              text,
        active_name             text,
        active_version          integer,
        candidate_name          text,
        candidate_version       integer,
        candidate_sha256        text,
        window_start            timestamptz NOT NULL,
        window_end              timestamptz NOT NULL,
        records                 bigint NOT NULL CHECK (records >= 0),
        agree                   bigint NOT NULL CHECK (agree >= 0 AND agree <= records),
        confusion               jsonb NOT NULL DEFAULT '[]',
        confusion_other         bigint NOT NULL DEFAULT 0,
        mean_score_diff         double precision, -- candidate top-1 score - active top-1 score
        active_classify_us      double precision, -- per record
        candidate_classify_us   double precision, -- per record
        inserted_at             timestamptz NOT NULL DEFAULT now(),
        UNIQUE (worker_id, window_start, candidate_sha256)
);
CREATE INDEX shadow_windows_deployment_idx ON kinfer.shadow_windows (deployment, window_start);

CREATE FUNCTION kinfer.shadow_insert(p_worker_id text, p_deployment text, p_active_name text,
                                     p_active_version integer, p_candidate_name text,
                                     p_candidate_version integer, p_candidate_sha256 text,
                                     p_window_start timestamptz, p_window_end timestamptz,
                                     p_records bigint, p_agree bigint, p_confusion jsonb,
                                     p_confusion_other bigint, p_mean_score_diff double precision,
                                     p_active_classify_us double precision,
                                     p_candidate_classify_us double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF p_worker_id IS NULL OR octet_length(p_worker_id) > 255 THEN
                RAISE EXCEPTION 'worker_id is missing or longer than 255 bytes'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_confusion IS NOT NULL AND (jsonb_typeof(p_confusion) <> 'array'
                                        OR jsonb_array_length(p_confusion) > 64
                                        OR octet_length(p_confusion::text) > 65536) THEN
                RAISE EXCEPTION 'confusion is not a JSON array of at most 64 pairs and 64 KiB'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO kinfer.shadow_windows (worker_id, deployment, active_name, active_version,
                                           candidate_name, candidate_version, candidate_sha256,
                                           window_start, window_end, records, agree, confusion,
                                           confusion_other, mean_score_diff, active_classify_us,
                                           candidate_classify_us)
        VALUES (p_worker_id, left(p_deployment, 128), left(p_active_name, 128),
                nullif(p_active_version, 0), left(p_candidate_name, 128),
                nullif(p_candidate_version, 0), left(p_candidate_sha256, 64), p_window_start,
                p_window_end, p_records, p_agree, coalesce(p_confusion, '[]'),
                coalesce(p_confusion_other, 0), p_mean_score_diff, p_active_classify_us,
                p_candidate_classify_us)
        ON CONFLICT (worker_id, window_start, candidate_sha256) DO NOTHING;
END
$$;

-- ---- views -----------------------------------------------------------------------------------
CREATE OR REPLACE VIEW kinfer.deployment_status AS
SELECT d.name AS deployment, d.input_topic, d.output_topic,
       a.name AS active_model, a.version AS active_version, a.sha256 AS active_sha256,
       p.name AS previous_model, p.version AS previous_version,
       d.updated_at, d.updated_by,
       c.name AS candidate_model, c.version AS candidate_version, d.candidate_mode,
       d.candidate_percent
FROM kinfer.deployments d
LEFT JOIN kinfer.models a ON a.id = d.active_model_id
LEFT JOIN kinfer.models p ON p.id = d.previous_model_id
LEFT JOIN kinfer.models c ON c.id = d.candidate_model_id;

CREATE OR REPLACE VIEW kinfer.activation_log AS
SELECT h.id, h.deployment, h.action, h.at, h.who,
       f.name || ':' || f.version AS from_model, t.name || ':' || t.version AS to_model, h.reason,
       h.percent
FROM kinfer.activations h
LEFT JOIN kinfer.models f ON f.id = h.from_model_id
LEFT JOIN kinfer.models t ON t.id = h.to_model_id;

-- ---- privileges (as 0002: revoke from PUBLIC, grant by role) ---------------------------------
REVOKE ALL ON kinfer.shadow_windows FROM PUBLIC, kinfer_operator, kinfer_worker;
GRANT SELECT ON kinfer.shadow_windows TO kinfer_operator, kinfer_worker;
GRANT SELECT ON kinfer.deployment_status, kinfer.activation_log TO kinfer_operator;
GRANT SELECT ON kinfer.deployment_status TO kinfer_worker;
REVOKE ALL ON FUNCTION kinfer.deployments_end_candidate(),
        kinfer.rollout_set(text, text, integer, text, numeric, text),
        kinfer.rollout_end(text, text, text, text),
        kinfer.canary(text, text, integer, numeric, text),
        kinfer.shadow(text, text, integer, text),
        kinfer.promote(text, text),
        kinfer.abort_canary(text, text),
        kinfer.end_shadow(text, text),
        kinfer.shadow_insert(text, text, text, integer, text, integer, text, timestamptz,
                             timestamptz, bigint, bigint, jsonb, bigint, double precision,
                             double precision, double precision)
        FROM PUBLIC, kinfer_operator, kinfer_worker;
GRANT EXECUTE ON FUNCTION kinfer.canary(text, text, integer, numeric, text),
        kinfer.shadow(text, text, integer, text),
        kinfer.promote(text, text),
        kinfer.abort_canary(text, text),
        kinfer.end_shadow(text, text) TO kinfer_operator;
GRANT EXECUTE ON FUNCTION
        kinfer.shadow_insert(text, text, text, integer, text, integer, text, timestamptz,
                             timestamptz, bigint, bigint, jsonb, bigint, double precision,
                             double precision, double precision)
        TO kinfer_worker;
