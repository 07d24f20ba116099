/* SPDX-License-Identifier: Apache-2.0 */
/* model_write.h -- serialise a model: collect tensors, then write the file format of model.h
 * (64-byte aligned tensors, content sha256 in the header). Used by train, quantize, prune,
 * distill and the tests. */
#ifndef KINFER_MODEL_WRITE_H
#define KINFER_MODEL_WRITE_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/model/model.h"

typedef struct kinfer_model_builder_s kinfer_model_builder_t;

kinfer_model_builder_t *kinfer_model_builder_new(void);
void kinfer_model_builder_destroy(kinfer_model_builder_t *mb);

/**
 * @brief Add a tensor. The bytes are copied.
 * @returns KINFER_OK, or KINFER_ERR__NOMEM / __INVALID_ARG (too many tensors).
 */
kinfer_err_t kinfer_model_builder_add(kinfer_model_builder_t *mb, uint32_t kind, uint32_t dtype,
                                      uint32_t rows, uint32_t cols, const void *data, size_t size);

/** Copy every tensor of @p model except those whose kind is in @p skip (n_skip entries). */
kinfer_err_t kinfer_model_builder_copy(kinfer_model_builder_t *mb, const kinfer_model_t *model,
                                       const uint32_t *skip, int n_skip);

/**
 * @brief Serialise into a malloc'd buffer (*bufp, *lenp; the caller frees it).
 */
kinfer_err_t kinfer_model_builder_serialize(const kinfer_model_builder_t *mb, uint8_t **bufp,
                                            size_t *lenp, char *errstr, size_t errstr_size);

/** Serialise and load the result as a model (what training, quantize and prune return).
 *  @returns the model, or NULL (see @p errstr). */
kinfer_model_t *kinfer_model_builder_load(const kinfer_model_builder_t *mb, char *errstr,
                                          size_t errstr_size);

/** Serialise and write to @p path atomically (write to path.tmp, fsync, rename). */
kinfer_err_t kinfer_model_builder_write(const kinfer_model_builder_t *mb, const char *path,
                                        char *errstr, size_t errstr_size);

/** Labels tensor bytes: n NUL-terminated strings back to back (malloc'd; caller frees). */
uint8_t *kinfer_labels_pack(const char *const *labels, int32_t n, size_t *sizep);

/** Build META JSON text for a derived model: every member of @p parent's META (when given) in
 * its order except "version" and "evaluation"; "name" (when @p name is given), "created_at"
 * (now, UTC) and "lineage" = {method, params (the JSON object text @p params_json, {} if it does
 * not parse), parents: [parent, more parents...]} replaced in place or appended; then
 * "evaluation" (the JSON object text @p evaluation_json, or none). Written in jansson's
 * JSON_INDENT(2) layout by kinfer_json_write() (kinfer/core/json.h), as META always was.
 * @returns a malloc'd string, or NULL on out of memory. */
char *kinfer_meta_derive(const kinfer_model_t *parent, const char *name, const char *method,
                         const char *relation, const char *params_json,
                         const kinfer_model_t *const *more_parents, int n_more,
                         const char *evaluation_json);

/** META text @p meta with member @p key set to the JSON text @p value_json (an object or
 * array): replaced in place (the whole META then rewritten in kinfer_json_write()'s layout) or
 * appended before the closing brace (the rest of the text kept as it is).
 * @returns a malloc'd string, or NULL (out of memory, or @p meta / @p value_json not JSON). */
char *kinfer_meta_set(const char *meta, const char *key, const char *value_json);

/** Write @p model's bytes to @p path atomically (path.tmp, fsync, rename). */
kinfer_err_t kinfer_model_save(const kinfer_model_t *model, const char *path, char *errstr,
                               size_t errstr_size);
#endif
