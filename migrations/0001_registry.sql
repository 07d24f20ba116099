-- SPDX-License-Identifier: Apache-2.0
-- 0001_registry.sql -- the registry schema `kinfer`: models (artifact bytes), lineage edges,
-- deployments, the append-only activation history, workers, metrics windows; the roles
-- kinfer_worker and kinfer_operator; kinfer.register_model, kinfer.activate,
-- kinfer.rollback and kinfer.deployment_create.
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here). Objects are
-- owned by the role that runs the migration (the owner). Roles are cluster-wide, so they
-- are created only when missing.

-- ---- roles ---------------------------------------------------------------------------------
-- Created only when missing (so an owner without CREATEROLE works once a DBA created them).
-- Two databases of one cluster may be migrated at the same time (the advisory lock is per
-- database), so a concurrent CREATE ROLE is tolerated.
DO $$
DECLARE
        r text;
BEGIN
        FOREACH r IN ARRAY ARRAY['kinfer_worker', 'kinfer_operator'] LOOP
                IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = r) THEN
                        BEGIN
                                EXECUTE format('CREATE ROLE %I NOLOGIN', r);
                        EXCEPTION WHEN duplicate_object OR unique_violation THEN
                                NULL;
                        END;
                END IF;
        END LOOP;
END
$$;

REVOKE ALL ON SCHEMA kinfer FROM PUBLIC;
GRANT USAGE ON SCHEMA kinfer TO kinfer_worker, kinfer_operator;

-- ---- models --------------------------------------------------------------------------------
-- One row per registered artifact. sha256 is the sha256 of the whole model file (the
-- model's identity); the CHECK makes PostgreSQL itself refuse bytes that do not match it.
CREATE TABLE kinfer.models (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        name            text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
        version         integer NOT NULL CHECK (version > 0),
        sha256          text NOT NULL UNIQUE CHECK (sha256 ~ '^[0-9a-f]{64}$'),
        size            bigint NOT NULL CHECK (size > 0),
        format          text NOT NULL,          -- "f32", "q8", "+pruned" suffix (model.h)
        labels          text[] NOT NULL,
        method          text NOT NULL DEFAULT '', -- meta.lineage.method: train|quantize|prune|distill
        hyperparameters jsonb NOT NULL DEFAULT '{}',
        train_data      jsonb,
        evaluation      jsonb,
        meta            jsonb NOT NULL,         -- the whole META tensor of the file
        artifact        bytea NOT NULL,
        created_by      text NOT NULL DEFAULT current_user,
        created_at      timestamptz NOT NULL DEFAULT now(),
        UNIQUE (name, version),
        CONSTRAINT models_artifact_size CHECK (octet_length(artifact) = size),
        CONSTRAINT models_artifact_sha256 CHECK (encode(sha256(artifact), 'hex') = sha256)
);
-- Model files are dense floats or int8: compression costs time and saves little.
ALTER TABLE kinfer.models ALTER COLUMN artifact SET STORAGE EXTERNAL;
COMMENT ON TABLE kinfer.models IS 'Registered model artifacts; version is assigned per name by kinfer.register_model';

-- ---- lineage -------------------------------------------------------------------------------
-- One edge per parent listed in the child's META lineage. parent_id is NULL while the parent
-- (known by its sha256) is not registered; registering it later resolves the edge.
CREATE TABLE kinfer.lineage (
        child_id        bigint NOT NULL REFERENCES kinfer.models (id) ON DELETE CASCADE,
        parent_sha256   text NOT NULL CHECK (parent_sha256 ~ '^[0-9a-f]{64}$'),
        parent_id       bigint REFERENCES kinfer.models (id) ON DELETE SET NULL,
        relation        text NOT NULL CHECK (relation IN ('trained_from', 'quantized_from',
                                                          'pruned_from', 'distilled_from')),
        params          jsonb NOT NULL DEFAULT '{}',   -- meta.lineage.params of the child
        parent_name     text,   -- as written in the file (a hint when the parent is unknown)
        parent_version  integer,
        PRIMARY KEY (child_id, parent_sha256, relation)
);
CREATE INDEX lineage_parent_idx ON kinfer.lineage (parent_id);
CREATE INDEX lineage_parent_sha_idx ON kinfer.lineage (parent_sha256) WHERE parent_id IS NULL;

-- ---- deployments ---------------------------------------------------------------------------
CREATE TABLE kinfer.deployments (
        name            text PRIMARY KEY CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
        input_topic     text,
        output_topic    text,
        active_model_id bigint REFERENCES kinfer.models (id),
        previous_model_id bigint REFERENCES kinfer.models (id),
        created_at      timestamptz NOT NULL DEFAULT now(),
        updated_at      timestamptz NOT NULL DEFAULT now(),
        updated_by      text NOT NULL DEFAULT current_user
);

-- ---- activation history (append-only) ------------------------------------------------------
-- Written only by the trigger on kinfer.deployments, so every change of a deployment's active
-- model is recorded, whichever way it was made. UPDATE, DELETE and TRUNCATE are refused to
-- everyone, the owner included.
CREATE TABLE kinfer.activations (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        deployment      text NOT NULL REFERENCES kinfer.deployments (name),
        action          text NOT NULL CHECK (action IN ('activate', 'rollback', 'update')),
        from_model_id   bigint REFERENCES kinfer.models (id),
        to_model_id     bigint REFERENCES kinfer.models (id),
        who             text NOT NULL,
        at              timestamptz NOT NULL,
        reason          text
);
CREATE INDEX activations_deployment_idx ON kinfer.activations (deployment, id);

CREATE FUNCTION kinfer.activations_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
        IF TG_OP = 'INSERT' THEN
                -- only the deployments trigger writes history; who/at are never forged
                IF pg_trigger_depth() < 2 THEN
                        RAISE EXCEPTION 'kinfer.activations is written only by kinfer.activate/kinfer.rollback'
                                USING ERRCODE = 'insufficient_privilege';
                END IF;
                NEW.who := current_user;
                NEW.at := now();
                RETURN NEW;
        END IF;
        RAISE EXCEPTION 'kinfer.activations is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
END
$$;
CREATE TRIGGER activations_append_only BEFORE INSERT OR UPDATE OR DELETE ON kinfer.activations
        FOR EACH ROW EXECUTE FUNCTION kinfer.activations_guard();
CREATE TRIGGER activations_no_truncate BEFORE TRUNCATE ON kinfer.activations
        FOR EACH STATEMENT EXECUTE FUNCTION kinfer.activations_guard();

-- Every change of active_model_id appends history and notifies the workers: channel
-- 'kinfer_deployment', payload = the deployment name. NOTIFY is delivered at commit.
CREATE FUNCTION kinfer.deployments_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
        IF TG_OP = 'UPDATE' AND NEW.active_model_id IS NOT DISTINCT FROM OLD.active_model_id THEN
                RETURN NULL;
        END IF;
        IF TG_OP = 'INSERT' AND NEW.active_model_id IS NULL THEN
                RETURN NULL;
        END IF;
        INSERT INTO kinfer.activations (deployment, action, from_model_id, to_model_id, who, at, reason)
        VALUES (NEW.name,
                coalesce(nullif(current_setting('kinfer.action', true), ''), 'update'),
                CASE WHEN TG_OP = 'UPDATE' THEN OLD.active_model_id END,
                NEW.active_model_id, current_user, now(),
                nullif(current_setting('kinfer.reason', true), ''));
        PERFORM pg_notify('kinfer_deployment', NEW.name);
        RETURN NULL;
END
$$;
CREATE TRIGGER deployments_changed AFTER INSERT OR UPDATE ON kinfer.deployments
        FOR EACH ROW EXECUTE FUNCTION kinfer.deployments_changed();

-- ---- workers -------------------------------------------------------------------------------
CREATE TABLE kinfer.workers (
        worker_id       text PRIMARY KEY,       -- host:pid:start, chosen by the worker
        host            text NOT NULL,
        pid             integer NOT NULL,
        deployment      text,
        model_id        bigint,                 -- the loaded model (no FK: a worker may run
        model_name      text,                   -- a model that was deleted since)
        model_version   integer,
        model_sha256    text,
        status          text NOT NULL DEFAULT 'running',
        last_error      text,
        last_error_at   timestamptz,
        started_at      timestamptz NOT NULL DEFAULT now(),
        heartbeat_at    timestamptz NOT NULL DEFAULT now()
);

-- ---- metrics windows -----------------------------------------------------------------------
-- One row per worker, deployment, model and window (metrics.interval.ms). The unique key
-- makes re-sending a buffered window after a reconnect harmless.
CREATE TABLE kinfer.metrics_windows (
        id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        worker_id       text NOT NULL,
        deployment      text,
        model_name      text,
        model_version   integer,
        model_sha256    text,
        window_start    timestamptz NOT NULL,
        window_end      timestamptz NOT NULL,
        records         bigint NOT NULL,
        batches         bigint NOT NULL,
        mean_batch_size double precision,
        dlq             bigint NOT NULL,
        latency_p50_ms  double precision,
        latency_p95_ms  double precision,
        latency_p99_ms  double precision,
        label_counts    jsonb NOT NULL DEFAULT '{}',
        mean_confidence double precision,
        inserted_at     timestamptz NOT NULL DEFAULT now(),
        UNIQUE (worker_id, window_start, model_sha256)
);
CREATE INDEX metrics_windows_deployment_idx ON kinfer.metrics_windows (deployment, window_start);

-- ---- functions -----------------------------------------------------------------------------
-- Register an artifact under NAME with the next version of that name (serialised per name by
-- an advisory lock), record its lineage edges from meta.lineage.parents (resolved by
-- sha256), and resolve the edges of already registered children that name it as parent.
CREATE FUNCTION kinfer.register_model(p_name text, p_artifact bytea, p_format text,
                                      p_labels text[], p_meta jsonb,
                                      OUT model_id bigint, OUT version integer)
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
        v_sha text := encode(sha256(p_artifact), 'hex');
        v_existing record;
BEGIN
        SELECT m.name, m.version INTO v_existing FROM kinfer.models m WHERE m.sha256 = v_sha;
        IF FOUND THEN
                RAISE EXCEPTION 'model %:% already has sha256 %', v_existing.name, v_existing.version, v_sha
                        USING ERRCODE = 'unique_violation';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('kinfer.models:' || p_name, 0));
        SELECT coalesce(max(m.version), 0) + 1 INTO version FROM kinfer.models m WHERE m.name = p_name;
        INSERT INTO kinfer.models (name, version, sha256, size, format, labels, method,
                                   hyperparameters, train_data, evaluation, meta, artifact)
        VALUES (p_name, version, v_sha, octet_length(p_artifact), p_format, p_labels,
                coalesce(p_meta #>> '{lineage,method}', ''),
                coalesce(p_meta -> 'hyperparameters', '{}'), p_meta -> 'train_data',
                p_meta -> 'evaluation', p_meta, p_artifact)
        RETURNING id INTO model_id;

        INSERT INTO kinfer.lineage (child_id, parent_sha256, parent_id, relation, params,
                                    parent_name, parent_version)
        SELECT model_id, lower(p ->> 'sha256'),
               (SELECT m.id FROM kinfer.models m WHERE m.sha256 = lower(p ->> 'sha256')),
               p ->> 'relation', coalesce(p_meta #> '{lineage,params}', '{}'),
               nullif(p ->> 'name', ''), nullif((p ->> 'version')::integer, 0)
        FROM jsonb_array_elements(coalesce(p_meta #> '{lineage,parents}', '[]')) AS p
        ON CONFLICT DO NOTHING;

        UPDATE kinfer.lineage l SET parent_id = model_id
        WHERE l.parent_sha256 = v_sha AND l.parent_id IS NULL;
END
$$;

-- Create a deployment (or set its topics). activate() also creates a missing deployment.
CREATE FUNCTION kinfer.deployment_create(p_deployment text, p_input_topic text DEFAULT NULL,
                                         p_output_topic text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
BEGIN
        INSERT INTO kinfer.deployments AS d (name, input_topic, output_topic)
        VALUES (p_deployment, p_input_topic, p_output_topic)
        ON CONFLICT (name) DO UPDATE
                SET input_topic = coalesce(EXCLUDED.input_topic, d.input_topic),
                    output_topic = coalesce(EXCLUDED.output_topic, d.output_topic),
                    updated_at = now(), updated_by = current_user;
        RETURN p_deployment;
END
$$;

-- Make NAME:VERSION the active model of DEPLOYMENT (created when missing). The active model
-- becomes the previous one. Activating the model that is already active changes nothing.
-- Returns a one-line summary, e.g. 'sections: sections:1 -> sections-int8:3'.
CREATE FUNCTION kinfer.activate(p_deployment text, p_model_name text, p_version integer,
                                p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
        v_model bigint;
        v_dep kinfer.deployments%ROWTYPE;
        v_from text;
BEGIN
        SELECT m.id INTO v_model FROM kinfer.models m
        WHERE m.name = p_model_name AND m.version = p_version;
        IF NOT FOUND THEN
                RAISE EXCEPTION 'model %:% is not registered', p_model_name, p_version
                        USING ERRCODE = 'no_data_found';
        END IF;
        INSERT INTO kinfer.deployments (name) VALUES (p_deployment) ON CONFLICT (name) DO NOTHING;
        SELECT * INTO v_dep FROM kinfer.deployments d WHERE d.name = p_deployment FOR UPDATE;
        SELECT m.name || ':' || m.version INTO v_from FROM kinfer.models m WHERE m.id = v_dep.active_model_id;
        IF v_dep.active_model_id = v_model THEN
                RAISE NOTICE 'deployment %: %:% is already active', p_deployment, p_model_name, p_version;
                RETURN format('%s: %s:%s (already active)', p_deployment, p_model_name, p_version);
        END IF;
        PERFORM set_config('kinfer.action', 'activate', true);
        PERFORM set_config('kinfer.reason', coalesce(p_reason, ''), true);
        UPDATE kinfer.deployments d
        SET previous_model_id = d.active_model_id, active_model_id = v_model,
            updated_at = now(), updated_by = current_user
        WHERE d.name = p_deployment;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        RETURN format('%s: %s -> %s:%s', p_deployment, coalesce(v_from, '(none)'), p_model_name, p_version);
END
$$;

-- Swap DEPLOYMENT's active and previous models (a second rollback undoes the first, like
-- `kubectl rollout undo`). An error when there is no previous model.
CREATE FUNCTION kinfer.rollback(p_deployment text, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SET search_path = pg_catalog, pg_temp AS $$
DECLARE
        v_dep kinfer.deployments%ROWTYPE;
        v_from text;
        v_to text;
BEGIN
        SELECT * INTO v_dep FROM kinfer.deployments d WHERE d.name = p_deployment FOR UPDATE;
        IF NOT FOUND THEN
                RAISE EXCEPTION 'deployment % does not exist', p_deployment USING ERRCODE = 'no_data_found';
        END IF;
        IF v_dep.previous_model_id IS NULL THEN
                RAISE EXCEPTION 'deployment % has no previous model to roll back to', p_deployment
                        USING ERRCODE = 'object_not_in_prerequisite_state';
        END IF;
        SELECT m.name || ':' || m.version INTO v_from FROM kinfer.models m WHERE m.id = v_dep.active_model_id;
        SELECT m.name || ':' || m.version INTO v_to FROM kinfer.models m WHERE m.id = v_dep.previous_model_id;
        PERFORM set_config('kinfer.action', 'rollback', true);
        PERFORM set_config('kinfer.reason', coalesce(p_reason, ''), true);
        UPDATE kinfer.deployments d
        SET active_model_id = v_dep.previous_model_id, previous_model_id = v_dep.active_model_id,
            updated_at = now(), updated_by = current_user
        WHERE d.name = p_deployment;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        RETURN format('%s: %s -> %s', p_deployment, coalesce(v_from, '(none)'), v_to);
END
$$;

-- ---- views for operators and analysts ------------------------------------------------------
CREATE VIEW kinfer.deployment_status AS
SELECT d.name AS deployment, d.input_topic, d.output_topic,
       a.name AS active_model, a.version AS active_version, a.sha256 AS active_sha256,
       p.name AS previous_model, p.version AS previous_version,
       d.updated_at, d.updated_by
FROM kinfer.deployments d
LEFT JOIN kinfer.models a ON a.id = d.active_model_id
LEFT JOIN kinfer.models p ON p.id = d.previous_model_id;

CREATE VIEW kinfer.activation_log AS
SELECT h.id, h.deployment, h.action, h.at, h.who,
       f.name || ':' || f.version AS from_model, t.name || ':' || t.version AS to_model, h.reason
FROM kinfer.activations h
LEFT JOIN kinfer.models f ON f.id = h.from_model_id
LEFT JOIN kinfer.models t ON t.id = h.to_model_id;

-- ---- privileges ----------------------------------------------------------------------------
REVOKE ALL ON ALL TABLES IN SCHEMA kinfer FROM PUBLIC;
REVOKE ALL ON FUNCTION kinfer.register_model(text, bytea, text, text[], jsonb) FROM PUBLIC;
REVOKE ALL ON FUNCTION kinfer.deployment_create(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kinfer.activate(text, text, integer, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION kinfer.rollback(text, text) FROM PUBLIC;
-- The history is append-only for everyone (the guard trigger refuses it too).
REVOKE UPDATE, DELETE, TRUNCATE ON kinfer.activations FROM PUBLIC, kinfer_operator, kinfer_worker;

-- workers: read models and deployments, write their own rows and metrics.
GRANT SELECT ON kinfer.models, kinfer.lineage, kinfer.deployments, kinfer.deployment_status
        TO kinfer_worker;
GRANT SELECT, INSERT, UPDATE ON kinfer.workers TO kinfer_worker;
GRANT SELECT, INSERT ON kinfer.metrics_windows TO kinfer_worker;

-- operators: register, activate, roll back; read everything.
GRANT SELECT ON ALL TABLES IN SCHEMA kinfer TO kinfer_operator;
GRANT INSERT ON kinfer.models, kinfer.lineage TO kinfer_operator;
GRANT UPDATE (parent_id) ON kinfer.lineage TO kinfer_operator;
GRANT INSERT, UPDATE ON kinfer.deployments TO kinfer_operator;
GRANT INSERT ON kinfer.activations TO kinfer_operator;
GRANT EXECUTE ON FUNCTION kinfer.register_model(text, bytea, text, text[], jsonb),
        kinfer.deployment_create(text, text, text),
        kinfer.activate(text, text, integer, text),
        kinfer.rollback(text, text) TO kinfer_operator;
