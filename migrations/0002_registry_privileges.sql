-- SPDX-License-Identifier: Apache-2.0
-- 0002_registry_privileges.sql -- every change to the registry goes through its functions.
--
-- Upgrades a registry created by 0001 in place (data kept):
--   * kinfer_operator and kinfer_worker lose every direct INSERT, UPDATE, DELETE, TRUNCATE,
--     REFERENCES and TRIGGER privilege on the registry tables; they keep SELECT;
--   * every function that writes is SECURITY DEFINER, owned by the role running this
--     migration (the owner), with search_path pinned to pg_catalog, kinfer, pg_temp (last),
--     and EXECUTE granted only to the role that needs it;
--   * the history guard no longer trusts pg_trigger_depth() alone (a trigger on the caller's
--     own temp table passes it): a history row is accepted only from the deployments trigger
--     running as the owner, i.e. inside kinfer.activate/kinfer.rollback (or the owner's own
--     statement); `who` is the session's login role (session_user);
--   * kinfer.register_model reads META and the labels from the artifact bytes itself and
--     refuses a call whose meta or labels differ, so evaluation, hyperparameters and lineage
--     cannot be made up;
--   * workers write kinfer.workers and kinfer.metrics_windows through kinfer.worker_heartbeat
--     and kinfer.metrics_insert (text bounded there), and may read kinfer.activations (the
--     worker compares the last activation id to ignore notifications that changed nothing).
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here).

-- ---- artifact parsing ----------------------------------------------------------------------
-- Little-endian unsigned integer of N bytes at OFFSET (0-based) of B.
CREATE FUNCTION kinfer.artifact_uint(b bytea, "offset" integer, n integer) RETURNS bigint
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        v bigint := 0;
BEGIN
        FOR i IN REVERSE n - 1 .. 0 LOOP
                v := v * 256 + get_byte(b, "offset" + i);
        END LOOP;
        RETURN v;
END
$$;

-- The data of the tensor of KIND in a kinfer model file (docs/model-format.md), NULL when the
-- file has none. Raises on anything that is not a well-formed header and tensor table (the
-- full verification is the loader's; this is what the registry itself reads).
CREATE FUNCTION kinfer.artifact_tensor(b bytea, kind integer) RETURNS bytea
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        len bigint := octet_length(b);
        n integer;
        e integer;
        off bigint;
        sz bigint;
BEGIN
        IF len < 64 OR substring(b FROM 1 FOR 4) <> '\x4b494e46'::bytea THEN
                RAISE EXCEPTION 'artifact is not a kinfer model (no KINF header)'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        n := kinfer.artifact_uint(b, 8, 4);
        IF kinfer.artifact_uint(b, 4, 4) <> 1 OR n > 64 OR 64 + 32 * n > len
           OR kinfer.artifact_uint(b, 16, 8) <> len THEN
                RAISE EXCEPTION 'artifact is not a kinfer model (bad header)'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        FOR i IN 0 .. n - 1 LOOP
                e := 64 + 32 * i;
                IF kinfer.artifact_uint(b, e, 4) = kind THEN
                        off := kinfer.artifact_uint(b, e + 16, 8);
                        sz := kinfer.artifact_uint(b, e + 24, 8);
                        IF off < 64 OR sz > len OR off > len - sz THEN
                                RAISE EXCEPTION 'artifact is not a kinfer model (tensor % outside the file)', kind
                                        USING ERRCODE = 'invalid_parameter_value';
                        END IF;
                        RETURN substring(b FROM off::integer + 1 FOR sz::integer);
                END IF;
        END LOOP;
        RETURN NULL;
END
$$;

-- The labels of a model file: its LABELS tensor, NUL-terminated UTF-8 strings.
CREATE FUNCTION kinfer.artifact_labels(b bytea) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE STRICT SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        t bytea := kinfer.artifact_tensor(b, 2);
        out text[] := '{}';
        p integer;
BEGIN
        WHILE t IS NOT NULL AND octet_length(t) > 0 LOOP
                p := position('\x00'::bytea IN t);
                EXIT WHEN p = 0;
                out := out || convert_from(substring(t FROM 1 FOR p - 1), 'UTF8');
                t := substring(t FROM p + 1);
        END LOOP;
        RETURN out;
END
$$;

-- ---- history: only the deployments trigger, running as the owner --------------------------
CREATE OR REPLACE FUNCTION kinfer.activations_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF TG_OP = 'INSERT' THEN
                -- Written only by kinfer.deployments_changed (depth 2), and only while running
                -- as the table's owner: inside the SECURITY DEFINER functions, or the owner's
                -- own statement. A trigger on a caller's temp table reaches depth 2 as well,
                -- but runs as the caller (who has no INSERT privilege either).
                IF pg_trigger_depth() < 2 OR current_user <>
                   (SELECT pg_get_userbyid(c.relowner) FROM pg_class c WHERE c.oid = TG_RELID) THEN
                        RAISE EXCEPTION 'kinfer.activations is written only by kinfer.activate/kinfer.rollback'
                                USING ERRCODE = 'insufficient_privilege';
                END IF;
                NEW.who := session_user;
                NEW.at := now();
                RETURN NEW;
        END IF;
        RAISE EXCEPTION 'kinfer.activations is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE OR REPLACE FUNCTION kinfer.deployments_changed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, kinfer, pg_temp AS $$
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
                NEW.active_model_id, session_user, now(),
                nullif(current_setting('kinfer.reason', true), ''));
        PERFORM pg_notify('kinfer_deployment', NEW.name);
        RETURN NULL;
END
$$;

-- ---- registration: metadata comes from the bytes ------------------------------------------
CREATE OR REPLACE FUNCTION kinfer.register_model(p_name text, p_artifact bytea, p_format text,
                                                 p_labels text[], p_meta jsonb,
                                                 OUT model_id bigint, OUT version integer)
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
DECLARE
        v_sha text := encode(sha256(p_artifact), 'hex');
        v_existing record;
        v_meta_bytes bytea;
        v_meta jsonb;
        v_labels text[];
BEGIN
        IF p_format IS NULL OR p_format !~ '^[a-z0-9]{1,16}(\+[a-z0-9]{1,16}){0,3}$' THEN
                RAISE EXCEPTION 'format % is not a model format', p_format
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_meta_bytes := kinfer.artifact_tensor(p_artifact, 1);
        IF v_meta_bytes IS NULL THEN
                RAISE EXCEPTION 'artifact has no META tensor' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        BEGIN
                v_meta := convert_from(v_meta_bytes, 'UTF8')::jsonb;
        EXCEPTION WHEN OTHERS THEN
                RAISE EXCEPTION 'artifact META is not JSON: %', SQLERRM
                        USING ERRCODE = 'invalid_parameter_value';
        END;
        IF jsonb_typeof(v_meta) <> 'object' THEN
                RAISE EXCEPTION 'artifact META is not a JSON object' USING ERRCODE = 'invalid_parameter_value';
        END IF;
        v_labels := kinfer.artifact_labels(p_artifact);
        IF p_meta IS DISTINCT FROM v_meta THEN
                RAISE EXCEPTION 'meta does not match the META of the artifact (sha256 %)', v_sha
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_labels IS DISTINCT FROM v_labels THEN
                RAISE EXCEPTION 'labels do not match the LABELS of the artifact (sha256 %)', v_sha
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT m.name, m.version INTO v_existing FROM kinfer.models m WHERE m.sha256 = v_sha;
        IF FOUND THEN
                RAISE EXCEPTION 'model %:% already has sha256 %', v_existing.name, v_existing.version, v_sha
                        USING ERRCODE = 'unique_violation';
        END IF;
        PERFORM pg_advisory_xact_lock(hashtextextended('kinfer.models:' || p_name, 0));
        SELECT coalesce(max(m.version), 0) + 1 INTO version FROM kinfer.models m WHERE m.name = p_name;
        INSERT INTO kinfer.models (name, version, sha256, size, format, labels, method,
                                   hyperparameters, train_data, evaluation, meta, artifact,
                                   created_by)
        VALUES (p_name, version, v_sha, octet_length(p_artifact), p_format, v_labels,
                coalesce(v_meta #>> '{lineage,method}', ''),
                coalesce(v_meta -> 'hyperparameters', '{}'), v_meta -> 'train_data',
                v_meta -> 'evaluation', v_meta, p_artifact, session_user)
        RETURNING id INTO model_id;

        INSERT INTO kinfer.lineage (child_id, parent_sha256, parent_id, relation, params,
                                    parent_name, parent_version)
        SELECT model_id, lower(p ->> 'sha256'),
               (SELECT m.id FROM kinfer.models m WHERE m.sha256 = lower(p ->> 'sha256')),
               p ->> 'relation', coalesce(v_meta #> '{lineage,params}', '{}'),
               nullif(p ->> 'name', ''), nullif((p ->> 'version')::integer, 0)
        FROM jsonb_array_elements(coalesce(v_meta #> '{lineage,parents}', '[]')) AS p
        ON CONFLICT DO NOTHING;

        UPDATE kinfer.lineage l SET parent_id = model_id
        WHERE l.parent_sha256 = v_sha AND l.parent_id IS NULL;
END
$$;

-- ---- deployments -----------------------------------------------------------------------------
CREATE OR REPLACE FUNCTION kinfer.deployment_create(p_deployment text, p_input_topic text DEFAULT NULL,
                                                    p_output_topic text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        INSERT INTO kinfer.deployments AS d (name, input_topic, output_topic, updated_by)
        VALUES (p_deployment, p_input_topic, p_output_topic, session_user)
        ON CONFLICT (name) DO UPDATE
                SET input_topic = coalesce(EXCLUDED.input_topic, d.input_topic),
                    output_topic = coalesce(EXCLUDED.output_topic, d.output_topic),
                    updated_at = now(), updated_by = session_user;
        RETURN p_deployment;
END
$$;

CREATE OR REPLACE FUNCTION kinfer.activate(p_deployment text, p_model_name text, p_version integer,
                                           p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
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
        INSERT INTO kinfer.deployments (name, updated_by) VALUES (p_deployment, session_user)
        ON CONFLICT (name) DO NOTHING;
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
            updated_at = now(), updated_by = session_user
        WHERE d.name = p_deployment;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        RETURN format('%s: %s -> %s:%s', p_deployment, coalesce(v_from, '(none)'), p_model_name, p_version);
END
$$;

CREATE OR REPLACE FUNCTION kinfer.rollback(p_deployment text, p_reason text DEFAULT NULL)
RETURNS text
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
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
            updated_at = now(), updated_by = session_user
        WHERE d.name = p_deployment;
        PERFORM set_config('kinfer.action', '', true);
        PERFORM set_config('kinfer.reason', '', true);
        RETURN format('%s: %s -> %s', p_deployment, coalesce(v_from, '(none)'), v_to);
END
$$;

-- ---- workers: heartbeat and metrics through functions -----------------------------------------
-- Text a worker sends is bounded here (a compromised worker cannot fill the registry).
CREATE FUNCTION kinfer.worker_heartbeat(p_worker_id text, p_host text, p_pid integer,
                                        p_deployment text, p_model_id bigint, p_model_name text,
                                        p_model_version integer, p_model_sha256 text,
                                        p_status text, p_last_error text)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF p_worker_id IS NULL OR octet_length(p_worker_id) > 255 THEN
                RAISE EXCEPTION 'worker_id is missing or longer than 255 bytes'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO kinfer.workers AS w (worker_id, host, pid, deployment, model_id, model_name,
                                         model_version, model_sha256, status, last_error,
                                         last_error_at)
        VALUES (p_worker_id, left(coalesce(p_host, ''), 255), coalesce(p_pid, 0),
                left(p_deployment, 128), nullif(p_model_id, 0), left(p_model_name, 128),
                nullif(p_model_version, 0), left(p_model_sha256, 64),
                left(coalesce(p_status, 'running'), 32), nullif(left(p_last_error, 2048), ''),
                CASE WHEN coalesce(p_last_error, '') <> '' THEN now() END)
        ON CONFLICT (worker_id) DO UPDATE SET host = EXCLUDED.host,
                pid = EXCLUDED.pid, deployment = EXCLUDED.deployment,
                model_id = EXCLUDED.model_id, model_name = EXCLUDED.model_name,
                model_version = EXCLUDED.model_version, model_sha256 = EXCLUDED.model_sha256,
                status = EXCLUDED.status,
                last_error = CASE WHEN p_last_error IS NULL THEN w.last_error
                                  ELSE EXCLUDED.last_error END,
                last_error_at = CASE WHEN p_last_error IS NULL THEN w.last_error_at
                                     ELSE EXCLUDED.last_error_at END,
                heartbeat_at = now();
END
$$;

CREATE FUNCTION kinfer.metrics_insert(p_worker_id text, p_deployment text, p_model_name text,
                                      p_model_version integer, p_model_sha256 text,
                                      p_window_start timestamptz, p_window_end timestamptz,
                                      p_records bigint, p_batches bigint,
                                      p_mean_batch_size double precision, p_dlq bigint,
                                      p_latency_p50_ms double precision,
                                      p_latency_p95_ms double precision,
                                      p_latency_p99_ms double precision, p_label_counts jsonb,
                                      p_mean_confidence double precision)
RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, kinfer, pg_temp AS $$
BEGIN
        IF p_worker_id IS NULL OR octet_length(p_worker_id) > 255 THEN
                RAISE EXCEPTION 'worker_id is missing or longer than 255 bytes'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF p_label_counts IS NOT NULL AND (jsonb_typeof(p_label_counts) <> 'object'
                                           OR octet_length(p_label_counts::text) > 1048576) THEN
                RAISE EXCEPTION 'label_counts is not a JSON object of at most 1 MiB'
                        USING ERRCODE = 'invalid_parameter_value';
        END IF;
        INSERT INTO kinfer.metrics_windows (worker_id, deployment, model_name, model_version,
                                            model_sha256, window_start, window_end, records,
                                            batches, mean_batch_size, dlq, latency_p50_ms,
                                            latency_p95_ms, latency_p99_ms, label_counts,
                                            mean_confidence)
        VALUES (p_worker_id, left(p_deployment, 128), left(p_model_name, 128),
                nullif(p_model_version, 0), left(p_model_sha256, 64), p_window_start,
                p_window_end, p_records, p_batches, p_mean_batch_size, p_dlq, p_latency_p50_ms,
                p_latency_p95_ms, p_latency_p99_ms, coalesce(p_label_counts, '{}'),
                p_mean_confidence)
        ON CONFLICT (worker_id, window_start, model_sha256) DO NOTHING;
END
$$;

-- ---- privileges ------------------------------------------------------------------------------
-- No direct writes for anyone but the owner; SELECT as before.
REVOKE ALL ON ALL TABLES IN SCHEMA kinfer FROM PUBLIC, kinfer_operator, kinfer_worker;
GRANT SELECT ON ALL TABLES IN SCHEMA kinfer TO kinfer_operator;
GRANT SELECT ON kinfer.models, kinfer.lineage, kinfer.deployments, kinfer.deployment_status,
        kinfer.activations, kinfer.workers, kinfer.metrics_windows TO kinfer_worker;

-- Functions are executable by PUBLIC when created: revoke, then grant by role.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA kinfer FROM PUBLIC, kinfer_operator, kinfer_worker;
GRANT EXECUTE ON FUNCTION kinfer.register_model(text, bytea, text, text[], jsonb),
        kinfer.deployment_create(text, text, text),
        kinfer.activate(text, text, integer, text),
        kinfer.rollback(text, text) TO kinfer_operator;
GRANT EXECUTE ON FUNCTION
        kinfer.worker_heartbeat(text, text, integer, text, bigint, text, integer, text, text, text),
        kinfer.metrics_insert(text, text, text, integer, text, timestamptz, timestamptz, bigint,
                              bigint, double precision, bigint, double precision,
                              double precision, double precision, jsonb, double precision)
        TO kinfer_worker;
-- A later migration that creates a function must REVOKE it FROM PUBLIC itself (PostgreSQL
-- grants EXECUTE to PUBLIC on creation, and a per-schema default cannot take that away).
