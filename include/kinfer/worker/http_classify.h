/* SPDX-License-Identifier: Apache-2.0 */
/* http_classify.h -- POST /v1/classify: synchronous classification over HTTP with the model the
 * worker serves (its slot, model_slot.h), batched across connections.
 *
 *   HTTP connection threads:  parse + check the JSON body -> queue -> wait for the answer
 *   the classification thread: take up to http.batch.max.records texts of whole requests
 *                              (waiting at most http.batch.max.wait.ms for more), classify
 *                              them in one kinfer_runtime_classify() with the slot's current
 *                              model, answer every request of the batch
 *
 * In Kafka mode the worker thread applies posted models (kinfer_model_slot_publish_model), so
 * a hot swap reaches Kafka and HTTP at the same batch boundary of the worker; in HTTP-only mode
 * (own_slot = 1) the classification thread applies them itself, between two batches.
 *
 * Request: {"text": "..."} or {"texts": ["...", ...]}, optional "k" (1..16, default
 * output.topk). Response 200:
 *   {"model": {"name": N, "version": V, "sha256": S},
 *    "label": L, "score": P, "topk": [{"label": L, "score": P}, ...]}          for "text"
 *   {"model": {...}, "results": [{"label": L, "score": P, "topk": [...]}, ...]} for "texts"
 * Scores are the softmax probabilities as "%.9g" (a float's exact value).
 * Errors (JSON body {"error": ..., "status": ...}): 400 malformed JSON or fields (unknown
 * members, a text that is not a string, "k" out of range, both or neither of text/texts, an
 * empty texts array); 413 more texts than http.classify.max.texts or a text longer than
 * http.classify.max.text.bytes; 503 no model loaded yet, the queue full
 * (http.queue.max.records), or shutting down; 500 a runtime error.
 */
#ifndef KINFER_HTTP_CLASSIFY_H
#define KINFER_HTTP_CLASSIFY_H

#include <stddef.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"
#include "kinfer/worker/model_slot.h"

typedef struct kinfer_classify_svc_s kinfer_classify_svc_t;

/**
 * @brief Create the service and start its classification thread.
 * @param conf      http.classify.*, http.batch.*, http.queue.max.records, output.topk,
 *                  worker.arena.max.bytes (read now)
 * @param slot      the model slot (borrowed; must outlive the service)
 * @param own_slot  1: this service applies posts (HTTP-only mode); 0: the worker does
 * @returns the service, or NULL (see @p errstr).
 */
kinfer_classify_svc_t *kinfer_classify_svc_new(const kinfer_conf_t *conf,
                                               kinfer_model_slot_t *slot, int own_slot,
                                               char *errstr, size_t errstr_size);

/** The kinfer_http_classify_fn of POST /v1/classify (@p opaque: the service). */
int kinfer_classify_svc_http(void *opaque, const char *body, size_t len, kinfer_buf_t *out);

/** A kinfer_http_ready_fn for HTTP-only mode: ready while a model is loaded (@p opaque: the
 *  service). */
int kinfer_classify_svc_ready(void *opaque, char *why, size_t why_size);

/** Stop taking requests (503 from now on), answer those queued, stop the thread. Idempotent;
 *  call before stopping the HTTP server, so no connection thread waits on the service. */
void kinfer_classify_svc_stop(kinfer_classify_svc_t *svc);

/** Stop (if not yet) and free. NULL is a no-op. */
void kinfer_classify_svc_destroy(kinfer_classify_svc_t *svc);

#endif
