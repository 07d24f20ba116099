/* SPDX-License-Identifier: Apache-2.0 */
/* err.h -- kinfer's error codes and the errstr convention.
 *
 * Constructors return NULL and fill a caller-provided `char *errstr, size_t errstr_size`;
 * everything else returns a kinfer_err_t and fills errstr on failure. Library code never
 * exits and never prints to stdout: only src/cli/ decides to exit. */
#ifndef KINFER_ERR_H
#define KINFER_ERR_H

#include <stddef.h>

typedef enum {
        KINFER_ERR__BEGIN = -100, /* local errors are negative, double underscore */
        KINFER_ERR__NOMEM,        /* out of memory */
        KINFER_ERR__BAD_FORMAT,   /* malformed input: model file, record, data line */
        KINFER_ERR__IO,           /* file system error */
        KINFER_ERR__INVALID_ARG,  /* bad argument or configuration value */
        KINFER_ERR__TIMEOUT,      /* operation timed out */
        KINFER_ERR__KAFKA,        /* librdkafka reported an error */
        KINFER_ERR__DB,           /* PostgreSQL reported an error */
        KINFER_ERR__NOENT,        /* no such object (model, version, deployment) */
        KINFER_ERR__STATE,        /* call not valid in the current state */
        KINFER_ERR__CRYPTO,       /* libcrypto reported an error (the digest) */
        KINFER_ERR__LIMIT,        /* input over a configured limit (items, depth, size) */
        KINFER_ERR__END,
        KINFER_OK = 0,
} kinfer_err_t;

/** @returns a static, human-readable name for @p err. */
const char *kinfer_err2str(kinfer_err_t err);

/** printf into errstr (if non-NULL), always NUL-terminated. @returns @p err for chaining. */
kinfer_err_t kinfer_seterr(char *errstr, size_t errstr_size, kinfer_err_t err, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
