-- SPDX-License-Identifier: Apache-2.0
-- 0004_imported_from.sql -- a model imported from another framework records its source file as
-- its parent (issue 14): `kinfer import fasttext MODEL.bin --output M.kinf` writes the lineage
-- edge {sha256 of MODEL.bin, name, relation "imported_from"} into META, and `kinfer model push`
-- registers META's lineage edges. The parent is a file, not a kinfer model, so its parent_id
-- stays NULL (as for any parent not registered) and the edge keeps the file's sha256 and name.
--
-- Applied by `kinfer migrate` inside one transaction (no BEGIN/COMMIT here).

ALTER TABLE kinfer.lineage DROP CONSTRAINT lineage_relation_check;
ALTER TABLE kinfer.lineage ADD CONSTRAINT lineage_relation_check
        CHECK (relation IN ('trained_from', 'quantized_from', 'pruned_from', 'distilled_from',
                            'imported_from'));
