-- SPDX-License-Identifier: Apache-2.0
-- 0003_label_checks.sql -- labels are names (issue 16), in the registry as in kinfer itself.
--
-- The model loader and `kinfer train` accept a label only when it is 1..256 bytes of UTF-8
-- with no control character (U+0000..U+001F, U+007F..U+009F) and no line or paragraph
-- separator (U+2028, U+2029): kinfer_label_check in include/kinfer/core/utf8.h. A model row
-- whose labels break that rule cannot have come from a file kinfer loads; this CHECK makes
-- PostgreSQL refuse it too (PostgreSQL text is already valid UTF-8 without NUL).
--
-- Upgrading a registry that holds data: the constraint is added NOT VALID (new and updated
-- rows are checked at once) and then validated only when every existing row passes, so an
-- upgrade never fails on old rows; a registry holding a row that fails gets a WARNING naming
-- it and keeps the constraint unvalidated (`ALTER TABLE kinfer.models VALIDATE CONSTRAINT
-- models_labels_valid` after removing that model).
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here).

CREATE FUNCTION kinfer.label_valid(l text) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
        SELECT octet_length(l) BETWEEN 1 AND 256
           AND l !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]'
$$;
COMMENT ON FUNCTION kinfer.label_valid(text) IS
        'A label is 1..256 bytes of UTF-8 without control characters or U+2028/U+2029 (kinfer_label_check)';

CREATE FUNCTION kinfer.labels_valid(ls text[]) RETURNS boolean
LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE SET search_path = pg_catalog, pg_temp AS $$
        SELECT cardinality(ls) >= 1
           AND NOT EXISTS (SELECT 1 FROM unnest(ls) AS x WHERE x IS NULL OR NOT kinfer.label_valid(x))
$$;
COMMENT ON FUNCTION kinfer.labels_valid(text[]) IS
        'Every label of a model valid (kinfer.label_valid), at least one';

ALTER TABLE kinfer.models
        ADD CONSTRAINT models_labels_valid CHECK (kinfer.labels_valid(labels)) NOT VALID;

DO $$
DECLARE
        bad text;
BEGIN
        SELECT string_agg(format('%s:%s', name, version), ', ' ORDER BY name, version)
          INTO bad
          FROM kinfer.models
         WHERE NOT kinfer.labels_valid(labels);
        IF bad IS NULL THEN
                ALTER TABLE kinfer.models VALIDATE CONSTRAINT models_labels_valid;
        ELSE
                RAISE WARNING 'kinfer.models: labels that kinfer no longer loads in %; '
                              'models_labels_valid stays NOT VALID until they are removed', bad;
        END IF;
END
$$;
