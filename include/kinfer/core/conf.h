/* SPDX-License-Identifier: Apache-2.0 */
/* conf.h -- kinfer's configuration: one property table (name, type, range, default, doc),
 * loaded from a file of key=value lines, then -X key=value overrides, then the environment
 * (each later source overrides the earlier ones).
 *
 *   - Every table key NAME has an environment variable KINFER_<NAME upper-cased, '.' and '-'
 *     replaced by '_'>: input.topic -> KINFER_INPUT_TOPIC, batch.max.wait.ms ->
 *     KINFER_BATCH_MAX_WAIT_MS.
 *   - kafka.<prop> is passed to librdkafka as <prop> unchanged (both the consumer and the
 *     producer); kafka.consumer.<prop> / kafka.producer.<prop> go to one of them only.
 *     From the environment, KINFER_KAFKA_SASL_PASSWORD sets kafka.sasl.password (each '_'
 *     after KINFER_KAFKA_ becomes '.').
 *   - Any other key is an error that names the key (and file:line for a file).
 *
 * kinfer_conf_dump() prints the effective configuration with secrets masked: keys containing
 * "password" or "secret", kafka sasl.* and ssl.key*, and the password in pg.conninfo.
 */
#ifndef KINFER_CONF_H
#define KINFER_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "kinfer/core/err.h"

/** Room a dead letter needs besides the record's value (its other fields, a capped key, the
 *  leading original headers): input.max.bytes + this must fit the producer's
 *  message.max.bytes (kinfer_conf_check). */
#define KINFER_CONF_DLQ_ENVELOPE 65536

typedef struct kinfer_conf_s kinfer_conf_t;

/** @name Life cycle
 * @{ */
/** @returns a configuration holding every default, or NULL when out of memory (see @p errstr). */
kinfer_conf_t *kinfer_conf_new(char *errstr, size_t errstr_size);
/** @returns a copy of @p conf (values and their sources), or NULL when out of memory (see
 *  @p errstr). */
kinfer_conf_t *kinfer_conf_dup(const kinfer_conf_t *conf, char *errstr, size_t errstr_size);
void kinfer_conf_destroy(kinfer_conf_t *conf);
/** @} */

/** @name Setting values
 * @{ */
/**
 * @brief Set @p name to @p value after checking its type and range.
 * @param source where the value came from, shown by kinfer_conf_dump() ("file:3", "-X", "env").
 * @returns KINFER_OK, KINFER_ERR__INVALID_ARG naming the key (unknown key, bad value), or
 *          KINFER_ERR__NOMEM (the configuration is left unchanged).
 */
kinfer_err_t kinfer_conf_set(kinfer_conf_t *conf, const char *name, const char *value,
                             const char *source, char *errstr, size_t errstr_size);
/** Parse "key=value" (as given to -X). */
kinfer_err_t kinfer_conf_set_kv(kinfer_conf_t *conf, const char *kv, const char *source,
                                char *errstr, size_t errstr_size);
/** Read a file of key=value lines ('#' starts a comment line; blank lines ignored; spaces
 *  around the key and value trimmed). Errors name file:line. */
kinfer_err_t kinfer_conf_load_file(kinfer_conf_t *conf, const char *path, char *errstr,
                                   size_t errstr_size);
/** Apply KINFER_* variables from @p envp (NULL-terminated, as `environ`). A variable one or
 *  two typos (edits) away from a key's variable is an error naming both, like an unknown key
 *  in a file; other names that map to no key are ignored (KINFER_BIN etc. belong to other
 *  tools), and KINFER_KAFKA_* that is no table key passes through as kafka.*. */
kinfer_err_t kinfer_conf_load_env(kinfer_conf_t *conf, char *const *envp, char *errstr,
                                  size_t errstr_size);
/** Check that the whole configuration is usable by `kinfer serve` (required keys, keys that
 *  depend on each other). */
kinfer_err_t kinfer_conf_check(const kinfer_conf_t *conf, char *errstr, size_t errstr_size);
/** @} */

/** @name Reading values (names must be table keys; a wrong name is a programmer error)
 * @{ */
/** @returns the value ("" when unset and no default). Borrowed: valid until the next set. */
const char *kinfer_conf_get(const kinfer_conf_t *conf, const char *name);
int64_t kinfer_conf_get_int(const kinfer_conf_t *conf, const char *name);
int kinfer_conf_get_bool(const kinfer_conf_t *conf, const char *name);
/** @returns 1 when @p name was never set (file, environment, -X or the API): its value is the
 *  table's default. */
int kinfer_conf_is_default(const kinfer_conf_t *conf, const char *name);
/** Number of kafka.* pass-through properties, and the i-th one. @p scope is "" (both
 *  clients), "consumer" or "producer"; @p name is the librdkafka property name. */
size_t kinfer_conf_kafka_count(const kinfer_conf_t *conf);
void kinfer_conf_kafka_get(const kinfer_conf_t *conf, size_t i, const char **scope,
                           const char **name, const char **value);
/** @} */

/** @name Documentation
 * @{ */
/** Write the effective configuration as key=value lines (with "# source" comments),
 *  secrets masked. The output is a valid config file. */
void kinfer_conf_dump(const kinfer_conf_t *conf, FILE *fp);
/** Write docs/CONFIGURATION.md (Markdown) generated from the table. */
void kinfer_conf_dump_doc(FILE *fp);
/** Environment variable for key @p name, in @p buf. */
const char *kinfer_conf_env_name(const char *name, char *buf, size_t size);
/** @returns 1 if @p name (a table or kafka.* key) holds a secret that dumps must mask. */
int kinfer_conf_is_secret(const char *name);
/**
 * @brief Copy libpq conninfo @p in to @p out (truncated to @p size, always terminated) with
 * every secret replaced by "******": the password of a postgres:// or postgresql:// URI's
 * user:password@, its ?password= / &sslpassword= query parameters, and password= /
 * sslpassword= of the key=value form (quoted values included). Use it wherever a conninfo
 * is printed or logged.
 */
void kinfer_conf_mask_conninfo(const char *in, char *out, size_t size);
/** @} */

#endif
