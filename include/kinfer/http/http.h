/* SPDX-License-Identifier: Apache-2.0 */
/* http.h -- kinfer's embedded HTTP server (libmicrohttpd): the operations routes of
 * `kinfer serve`. It knows nothing of models, Kafka or PostgreSQL: what a route answers comes
 * from hooks its embedder (the worker, the CLI) sets before kinfer_http_start().
 *
 *   GET  /healthz      200 {"status":"ok"} while the process serves HTTP (no hook, no auth)
 *   GET  /readyz       200 {"status":"ready"} / 503 {"status":"not_ready","reason":...}
 *                      from the ready hook (no auth; 503 "no ready hook" when none is set)
 *   GET  /metrics      the metrics hook's Prometheus text, Content-Type
 *                      "text/plain; version=0.0.4; charset=utf-8" (404 when no hook)
 *   POST /v1/classify  the classify hook: the request body in, a status and a JSON body out
 *                      (404 when no hook)
 *
 * Every other path is 404, another method on a known path 405 (with Allow). Every 4xx/5xx
 * this module writes has a JSON body {"error": "<message>", "status": <code>}.
 *
 * Configuration (kinfer/core/conf.h, docs/CONFIGURATION.md):
 *   http.listen            HOST:PORT, [IPv6]:PORT or PORT (= 127.0.0.1:PORT); "" = no server
 *   http.auth.token        bearer token for /metrics and /v1/classify ("" = no auth)
 *   http.auth.token.file   ... or read from this file (its first line)
 *   http.tls.cert.file, http.tls.key.file   PEM files: serve HTTPS only
 *   http.max.body.bytes    largest request body (413 beyond; Content-Length checked first)
 *   http.max.connections   concurrent connections (more are refused at accept)
 *   http.timeout.ms        idle connection timeout (rounded up to whole seconds)
 * Request headers are bounded by libmicrohttpd's per-connection memory (32 KiB: a larger
 * header block gets 431/413 from libmicrohttpd itself).
 *
 * Threads: one thread per connection (libmicrohttpd's), so a hook may block (the classify
 * hook waits for its batch). Hooks run on those threads: whatever they read must be
 * thread-safe. Set hooks before kinfer_http_start(); they do not change afterwards.
 */
#ifndef KINFER_HTTP_H
#define KINFER_HTTP_H

#include <stddef.h>

#include "kinfer/core/buf.h"
#include "kinfer/core/conf.h"
#include "kinfer/core/err.h"

typedef struct kinfer_http_s kinfer_http_t;

/** Content-Type of /metrics (Prometheus text exposition format 0.0.4). */
#define KINFER_HTTP_METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

/**
 * @brief Fill @p out with the Prometheus text exposition (appended to an empty buffer).
 * @returns KINFER_OK (200 with @p out), or an error: 500 with @p errstr as the JSON message.
 * @locality any HTTP connection thread, possibly several at once.
 */
typedef kinfer_err_t(kinfer_http_metrics_fn)(void *opaque, kinfer_buf_t *out, char *errstr,
                                             size_t errstr_size);

/**
 * @brief Is the process ready for traffic? @returns 1 if ready; 0 if not, with a short reason
 *        in @p why (a JSON string's content: it is escaped by the server).
 * @locality any HTTP connection thread.
 */
typedef int(kinfer_http_ready_fn)(void *opaque, char *why, size_t why_size);

/**
 * @brief Handle one POST /v1/classify: @p body (@p len bytes, at most http.max.body.bytes,
 *        not NUL-terminated) in; the JSON response body appended to @p out.
 * @returns the HTTP status (200, 4xx, 5xx). On 4xx/5xx @p out must hold the JSON error body
 *          (kinfer_http_error_body() writes one). An @p out left with oom set is answered 500.
 * @locality any HTTP connection thread; may block (the server has a thread per connection).
 */
typedef int(kinfer_http_classify_fn)(void *opaque, const char *body, size_t len,
                                     kinfer_buf_t *out);

/**
 * @brief Create a server from the http.* keys of @p conf (read now; @p conf may go after).
 *        Reads the token file and the TLS files; binds nothing yet.
 * @returns the server, or NULL (see @p errstr: http.listen empty or malformed, a file that
 *          cannot be read, TLS asked of a libmicrohttpd built without it).
 */
kinfer_http_t *kinfer_http_new(const kinfer_conf_t *conf, char *errstr, size_t errstr_size);

/** Set the /metrics hook (NULL: /metrics is 404). Call before kinfer_http_start(). */
void kinfer_http_set_metrics(kinfer_http_t *h, kinfer_http_metrics_fn *fn, void *opaque);
/** Set the /readyz hook. Call before kinfer_http_start(). */
void kinfer_http_set_ready(kinfer_http_t *h, kinfer_http_ready_fn *fn, void *opaque);
/** Set the POST /v1/classify hook (NULL: 404). Call before kinfer_http_start(). */
void kinfer_http_set_classify(kinfer_http_t *h, kinfer_http_classify_fn *fn, void *opaque);

/**
 * @brief Bind http.listen and start serving (libmicrohttpd's threads).
 * @returns KINFER_OK, or KINFER_ERR__IO naming the address (in use, not permitted, ...).
 */
kinfer_err_t kinfer_http_start(kinfer_http_t *h, char *errstr, size_t errstr_size);

/** The port bound (useful with port 0: the kernel picks one), or 0 before start. */
int kinfer_http_port(const kinfer_http_t *h);

/** The scheme served: "https" with TLS, else "http". */
const char *kinfer_http_scheme(const kinfer_http_t *h);

/**
 * @brief Stop accepting, wait for the connection threads (a request in a hook finishes
 *        first: unblock blocking hooks before) and free. NULL is a no-op.
 */
void kinfer_http_destroy(kinfer_http_t *h);

/** Append the JSON error body {"error": @p msg, "status": @p status} to @p out. */
void kinfer_http_error_body(kinfer_buf_t *out, int status, const char *msg);

#endif
