/* SPDX-License-Identifier: Apache-2.0 */
/* conf.c -- owns the property table (name, type, range, default, doc), parsing and checking
 * of values from files, -X and the environment, the kafka.* pass-through list, masked dumps
 * and the generated docs/CONFIGURATION.md. libc only. */
#include "kinfer/core/conf.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "kinfer/core/log.h"
#include "kinfer/core/utf8.h"

/* ---- the table ---------------------------------------------------------------------------- */

enum conf_type { CT_STR, CT_INT, CT_BOOL, CT_ENUM, CT_LIST };

struct conf_prop {
        const char *name;
        enum conf_type type;
        int64_t min, max;   /* CT_INT */
        const char *def;    /* default as text; NULL = unset */
        const char *values; /* CT_ENUM: "a|b|c" */
        const char *doc;
};

#define I64MAX INT64_MAX
static const struct conf_prop props[] = {
    /* -- Kafka -- */
    {"kafka.bootstrap.servers", CT_STR, 0, 0, NULL, NULL,
     "Kafka bootstrap servers (host:port,...). Required. Passed to librdkafka as bootstrap.servers; "
     "`kinfer dev-broker` prints one."},
    {"kafka.group.id", CT_STR, 0, 0, "kinfer", NULL,
     "Consumer group. Workers with the same group split the input partitions. Consumer only."},
    /* -- input -- */
    {"input.topic", CT_LIST, 0, 0, NULL, NULL,
     "Input topic(s), comma-separated. Required. A name starting with ^ is a regex subscription."},
    {"input.format", CT_ENUM, 0, 0, "json", "avro-confluent|avro|json|text",
     "How input values are encoded: `avro-confluent` (magic byte 0 + 4-byte big-endian schema id + "
     "Avro binary; the writer schema is `<input.schemas.dir>/<id>.avsc` or schema.registry.url's), "
     "`avro` (plain Avro binary "
     "written with `input.schema`), `json` (one JSON object per record), `text` (the value is the "
     "UTF-8 text)."},
    {"input.schemas.dir", CT_STR, 0, 0, NULL, NULL,
     "Directory of writer schemas `<id>.avsc` for input.format=avro-confluent, loaded on first use of "
     "an id. With schema.registry.url too, the folder is looked at first and the registry asked "
     "only for ids it does not hold."},
    /* -- Schema Registry (src/codec/sr.c; docs/operations.md) -- */
    {"schema.registry.url", CT_STR, 0, 0, NULL, NULL,
     "Confluent Schema Registry (REST API) base URL, http:// or https://, e.g. "
     "http://registry:8081 or Apicurio's http://host:8080/apis/ccompat/v7. input.format="
     "avro-confluent fetches writer-schema ids that input.schemas.dir lacks (GET /schemas/ids/{id}, "
     "cached); output.format=avro-confluent registers the result and dead-letter schemas at start "
     "under <output.topic>-value and <dlq.topic>-value and writes the ids returned (instead of "
     "output.schema.id and output.dlq.schema.id). A record whose schema the registry cannot give "
     "now waits (retried with backoff, nothing is lost); an id the registry does not know (404) "
     "is dead-lettered as undecodable."},
    {"schema.registry.basic.auth.user.info", CT_STR, 0, 0, NULL, NULL,
     "HTTP basic auth for the registry, `user:password`. Masked in dumps; prefer "
     "schema.registry.basic.auth.user.info.file or the environment."},
    {"schema.registry.basic.auth.user.info.file", CT_STR, 0, 0, NULL, NULL,
     "File whose first line is `user:password` (instead of schema.registry.basic.auth.user.info), "
     "read at start."},
    {"schema.registry.ssl.ca.location", CT_STR, 0, 0, NULL, NULL,
     "PEM CA certificate(s) to verify an https registry with (default: the system's)."},
    {"schema.registry.ssl.certificate.location", CT_STR, 0, 0, NULL, NULL,
     "PEM client certificate for mutual TLS with the registry (optional)."},
    {"schema.registry.ssl.key.location", CT_STR, 0, 0, NULL, NULL,
     "PEM private key of schema.registry.ssl.certificate.location."},
    {"schema.registry.timeout.ms", CT_INT, 100, 120000, "5000", NULL,
     "Longest one registry request may take, connecting included. The worker thread waits for it: "
     "it bounds how long a fetch of an unknown schema id holds the stream up."},
    {"schema.registry.backoff.max.ms", CT_INT, 100, 600000, "10000", NULL,
     "Longest wait between tries while the registry is unreachable (from 200 ms, doubling). "
     "Meanwhile the record waiting for its schema, and those after it, stay unconsumed."},
    {"input.schema", CT_STR, 0, 0, NULL, NULL,
     "Writer schema file (.avsc) for input.format=avro."},
    {"input.id.field", CT_STR, 0, 0, "id", NULL,
     "Field holding the record id (avro, json; string, int or long). When the record has no such "
     "field (or it is null) the id is the record key; with neither, `<topic>:<partition>:<offset>`."},
    {"input.text.field", CT_STR, 0, 0, "text", NULL,
     "Field holding the text to classify (avro, json). A record without it goes to the DLQ."},
    {"input.max.bytes", CT_INT, 1, 64 << 20, "917504", NULL,
     "Largest record value accepted; larger records go to the DLQ with reason `oversized`. "
     "Must leave 64 KiB for the dead letter's other fields under the producer's "
     "message.max.bytes (kafka.[producer.]message.max.bytes, librdkafka's default 1000000), so "
     "that an Avro dead letter carries the whole value; at most 896 KiB by default."},
    {"input.max.items", CT_INT, 1, 10000000, "100000", NULL,
     "Most array items and map entries (JSON: array items and object members) in one input "
     "record, summed over the whole record at every depth. A record with more goes to the DLQ "
     "with reason `over_limit`. Bytes do not bound this: an Avro array of null or of an empty "
     "record announces any number of items in a few bytes."},
    {"input.max.depth", CT_INT, 1, 64, "32", NULL,
     "Deepest nesting of records, arrays, maps and unions (JSON: arrays and objects) below the "
     "top-level record of an input record. A deeper record goes to the DLQ with reason "
     "`over_limit`."},
    /* -- output -- */
    {"output.topic", CT_STR, 0, 0, NULL, NULL, "Result topic. Required."},
    {"output.format", CT_ENUM, 0, 0, "avro", "avro|avro-confluent|json",
     "Result encoding: `avro` (plain Avro binary of schemas/classification.avsc, no framing), "
     "`avro-confluent` (Confluent framing with output.schema.id) or `json`. Dead letters use the "
     "same encoding with schemas/dead_letter.avsc."},
    {"output.schema.id", CT_INT, 0, INT32_MAX, "0", NULL,
     "Schema id written in the Confluent framing of results (output.format=avro-confluent); "
     "with schema.registry.url the id the registry returns for <output.topic>-value is written "
     "instead."},
    {"output.dlq.schema.id", CT_INT, 0, INT32_MAX, "0", NULL,
     "Schema id written in the Confluent framing of dead letters (output.format=avro-confluent); "
     "with schema.registry.url the id the registry returns for <dlq.topic>-value is written "
     "instead."},
    {"output.topk", CT_INT, 1, 16, "3", NULL, "Number of (label, score) pairs in each result's topk."},
    {"input.no.features", CT_ENUM, 0, 0, "dlq", "dlq|classify",
     "A text with no feature the model knows (only spaces or punctuation, or only words a pruned "
     "model dropped): `dlq` sends it to dlq.topic with reason no_features (skipped when dlq.topic "
     "is unset); `classify` classifies it from the model's bias alone, the same answer for every "
     "such text."},
    {"output.id.max.bytes", CT_INT, 16, 65536, "4096", NULL,
     "Longest id written in a result (cut at a UTF-8 character boundary) and longest Kafka key "
     "written on a result or dead letter (cut at the byte); the original key stays whole in the "
     "dead letter unless it has to be reduced (docs/streaming.md)."},
    {"delivery.refused.policy", CT_ENUM, 0, 0, "skip", "skip|fail",
     "What to do with a record when the broker refuses its dead letter for good even in the "
     "minimal form (or refuses its result and dlq.topic is unset): `skip` logs it at error level "
     "and counts it (`skipped` in the log's metrics line), and its offset counts as processed; "
     "`fail` stops the worker (a restart meets the record again)."},
    {"dlq.topic", CT_STR, 0, 0, NULL, NULL,
     "Dead-letter topic for undecodable, empty and oversized records. When unset such records are "
     "logged, counted and skipped."},
    /* -- model -- */
    {"model.path", CT_STR, 0, 0, NULL, NULL,
     "Model file to serve. Required unless `deployment` is set (then the registry provides it)."},
    {"model.name", CT_STR, 0, 0, NULL, NULL,
     "Model name written in results (default: the name in the model's metadata)."},
    {"model.version", CT_INT, 0, INT32_MAX, "0", NULL,
     "Model version written in results for a model.path model (0 = unversioned)."},
    /* -- batching -- */
    {"batch.max.records", CT_INT, 1, 65536, "256", NULL,
     "Classify a batch when it holds this many records."},
    {"batch.max.bytes", CT_INT, 1, 256 << 20, "4194304", NULL,
     "Classify a batch when its texts reach this many bytes."},
    {"batch.max.wait.ms", CT_INT, 0, 60000, "5", NULL,
     "Classify a batch at most this long after its first record arrived."},
    /* -- backpressure and shutdown -- */
    {"backpressure.max.records", CT_INT, 1, 10000000, "100000", NULL,
     "Stop taking records from the consumer when this many are consumed but not yet delivered "
     "(results + dead letters awaiting the producer's report); librdkafka's prefetch queue "
     "(kafka.consumer.queued.max.messages.kbytes) bounds what it fetches meanwhile."},
    {"backpressure.max.bytes", CT_INT, 1 << 20, (int64_t)1 << 40, "33554432", NULL,
     "Also stop taking records while the results and dead letters sent but not yet delivered "
     "hold this many bytes (keys and values); resume below half of it. The producer's local "
     "queue itself is bounded by kafka.producer.queue.buffering.max.kbytes (kinfer's default "
     "65536, i.e. 64 MiB)."},
    {"backpressure.resume.records", CT_INT, 0, 10000000, "50000", NULL,
     "Take records again (and resume paused partitions) when the records in flight fall to this "
     "many."},
    {"backpressure.pause.ms", CT_INT, 0, 3600000, "500", NULL,
     "When backpressure lasts this long, also pause every assigned partition (the consumer keeps "
     "being polled for rebalances without fetching; resuming costs a refetch)."},
    {"shutdown.timeout.ms", CT_INT, 0, 3600000, "30000", NULL,
     "On SIGTERM/SIGINT, the deadline of the whole shutdown, from the signal: `kinfer serve` "
     "is gone by then. The producer's final flush, the offset commits, leaving the group and "
     "the last metrics flush to the registry share it, ending a quarter of it (at most 1 s) "
     "early; librdkafka's destroy gets the rest, and past the deadline the process exits "
     "without it (status 0 when every record consumed was delivered). Records not delivered "
     "by then are redone by the next worker; 0 exits at once (docs/streaming.md, Shutdown)."},
    /* -- observability -- */
    {"log.level", CT_ENUM, 0, 0, "info", "err|warn|notice|info|debug", "Log level (stderr)."},
    {"metrics.interval.ms", CT_INT, 0, 3600000, "10000", NULL,
     "Length of a metrics window (records, batches, DLQ, latency percentiles, label counts); "
     "0 disables the windows."},
    {"drift.psi.warn", CT_STR, 0, 0, "0.2", NULL,
     "Drift threshold: a metrics window whose PSI of the top-1 labels or of the top-1 scores "
     "against the model's training-time reference (docs/operations.md, Drift) is above it logs a "
     "warning and sets kinfer_drift_alert to 1. A number in (0, 100]; PSI < 0.1 is read as no "
     "change, 0.1 to 0.25 as moderate, > 0.25 as major."},
    {"drift.min.records", CT_INT, 1, I64MAX, "1000", NULL,
     "Records a metrics window needs before its drift PSI is computed; a smaller window gets "
     "none (its PSI would be noise). The label PSI of n records drawn from the reference's own "
     "distribution is about (labels - 1) * (1/n + 1/reference records): 0.08 for 51 labels, "
     "1000 records and a reference of 1600 (0.14 at 500); raise it with many labels."},
    {"worker.threads", CT_INT, 1, 16, "1", NULL,
     "Classification threads: each batch is split across them (the worker thread plus "
     "worker.threads - 1 helpers, batches of 64 records or more). Worth raising when cores are "
     "free besides the worker thread and librdkafka's threads."},
    {"worker.arena.max.bytes", CT_INT, 1 << 20, (int64_t)1 << 36, "67108864", NULL,
     "Bytes each classification thread's arena may take for a batch: its features (8 bytes per "
     "hashed n-gram, 3/4 of it) and activations (1/4). A batch, or a thread's share of one, that "
     "would need more is classified in parts, with the same answers. One record takes what it "
     "needs (at most 2^20 features, 8 MiB); the featurizer's buffers for one record (at most 28 "
     "MiB per thread) come on top."},
    {"worker.id", CT_STR, 0, 0, NULL, NULL,
     "This worker's id in logs and the registry (default: <hostname>-<pid>). Required with "
     "processing.guarantee=exactly_once, where it names the producer's transactional.id "
     "(`kinfer.<kafka.group.id>.<worker.id>`): keep it stable across restarts of the same worker "
     "and unique among the group's workers."},
    /* -- delivery guarantee (docs/streaming.md) -- */
    {"processing.guarantee", CT_ENUM, 0, 0, "at_least_once", "at_least_once|exactly_once",
     "`at_least_once`: an input offset is committed once its result or dead letter is delivered; "
     "a crash redoes what was not committed, so results can be duplicated. `exactly_once`: "
     "results, dead letters and input offsets of a window are committed in one Kafka "
     "transaction; readers of the output and DLQ topics must set isolation.level=read_committed. "
     "Needs worker.id and Kafka brokers with transactions (not the dev broker)."},
    {"transaction.interval.ms", CT_INT, 1, 600000, "100", NULL,
     "With processing.guarantee=exactly_once, the length of a transaction window: results appear "
     "to read_committed readers at most this much later (plus the commit), and a failure redoes "
     "at most one window."},
    /* -- registry (PostgreSQL; see the registry issue) -- */
    {"pg.conninfo", CT_STR, 0, 0, NULL, NULL,
     "libpq connection string of the model registry. When unset, libpq's PG* environment "
     "variables apply. Its password is masked in dumps."},
    {"deployment", CT_STR, 0, 0, NULL, NULL,
     "Registry deployment to serve. When set, the active model comes from PostgreSQL instead of "
     "model.path."},
    /* -- HTTP (src/http; docs/operations.md) -- */
    {"http.listen", CT_STR, 0, 0, "127.0.0.1:8080", NULL,
     "Address of the HTTP server (/healthz, /readyz, /metrics, POST /v1/classify): HOST:PORT, "
     "[IPV6]:PORT, or PORT alone for the loopback address 127.0.0.1:PORT (port 0: any free "
     "port, logged). The default is the loopback address; when its port is taken (several "
     "workers on one host), that worker logs a warning and serves without HTTP, while an "
     "address that was set and cannot be bound stops the start. Empty: no HTTP server. "
     "0.0.0.0:PORT serves every interface: set http.auth.token or http.auth.token.file then."},
    {"http.only", CT_BOOL, 0, 0, "false", NULL,
     "Serve the model over HTTP alone, with no Kafka (`kinfer serve --http-only`): needs "
     "http.listen and model.path or deployment; the kafka.*, input.* and output.* keys are not "
     "used."},
    {"http.auth.token", CT_STR, 0, 0, NULL, NULL,
     "Bearer token that /metrics and /v1/classify require (`Authorization: Bearer <token>`; "
     "401 otherwise); /healthz and /readyz stay open for probes. Empty: no authentication. "
     "Masked in dumps; prefer http.auth.token.file or the environment."},
    {"http.auth.token.file", CT_STR, 0, 0, NULL, NULL,
     "File whose first line is the bearer token (instead of http.auth.token), read at start."},
    {"http.tls.cert.file", CT_STR, 0, 0, NULL, NULL,
     "PEM certificate (chain) file: with http.tls.key.file the server speaks HTTPS only."},
    {"http.tls.key.file", CT_STR, 0, 0, NULL, NULL, "PEM private key file of http.tls.cert.file."},
    {"http.max.body.bytes", CT_INT, 1024, 1 << 20, "1048576", NULL,
     "Largest request body accepted, at most 1 MiB (the bound of kinfer's JSON reader); a larger "
     "one gets 413 (a Content-Length over it is refused before the body is read)."},
    {"http.max.connections", CT_INT, 1, 4096, "256", NULL,
     "Concurrent HTTP connections (one thread each); more are refused when accepted."},
    {"http.timeout.ms", CT_INT, 1000, 3600000, "30000", NULL,
     "An idle HTTP connection is closed after this long (rounded up to whole seconds)."},
    {"http.classify.max.texts", CT_INT, 1, 65536, "256", NULL,
     "Most texts in one /v1/classify request (`texts`); more gets 413."},
    {"http.classify.max.text.bytes", CT_INT, 1, 1 << 20, "65536", NULL,
     "Longest text (UTF-8 bytes) in a /v1/classify request; a longer one gets 413."},
    {"http.batch.max.records", CT_INT, 1, 65536, "256", NULL,
     "Most texts the HTTP classification thread classifies in one batch, across requests "
     "(a request's texts are never split)."},
    {"http.batch.max.wait.ms", CT_INT, 0, 1000, "0", NULL,
     "How long the HTTP classification thread waits for more requests after the first one of a "
     "batch. 0: classify at once; requests that arrive meanwhile form the next batch."},
    {"http.queue.max.records", CT_INT, 1, 10000000, "8192", NULL,
     "Texts waiting for the HTTP classification thread; a request that would pass it gets 503 "
     "(overloaded) at once."},
};
#define N_PROPS (sizeof(props) / sizeof(props[0]))

struct kafka_prop {
        char *scope; /* "", "consumer", "producer" */
        char *name;  /* librdkafka name */
        char *value;
        char *source;
};

struct kinfer_conf_s {
        char *val[N_PROPS];    /* NULL = unset (use default) */
        char *source[N_PROPS]; /* NULL = default */
        int64_t ival[N_PROPS]; /* parsed CT_INT / CT_BOOL */
        struct kafka_prop *kafka;
        size_t n_kafka, cap_kafka;
};

/* ---- helpers ------------------------------------------------------------------------------ */

/* strdup of @p s (NULL: ""); NULL when out of memory */
static char *xstrdup(const char *s)
{
        return strdup(s ? s : "");
}

static kinfer_err_t nomem(char *errstr, size_t errstr_size)
{
        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory");
}

static int prop_index(const char *name)
{
        for (size_t i = 0; i < N_PROPS; i++)
                if (!strcmp(props[i].name, name))
                        return (int)i;
        return -1;
}

static int enum_has(const char *values, const char *v)
{
        size_t n = strlen(v);
        for (const char *p = values; p && *p;) {
                const char *bar = strchr(p, '|');
                size_t len = bar ? (size_t)(bar - p) : strlen(p);
                if (len == n && !strncmp(p, v, n))
                        return 1;
                p = bar ? bar + 1 : NULL;
        }
        return 0;
}

static int parse_bool(const char *v)
{
        if (!strcmp(v, "true") || !strcmp(v, "1") || !strcmp(v, "yes") || !strcmp(v, "on"))
                return 1;
        if (!strcmp(v, "false") || !strcmp(v, "0") || !strcmp(v, "no") || !strcmp(v, "off"))
                return 0;
        return -1;
}

static kinfer_err_t check_value(const struct conf_prop *p, const char *value, int64_t *ival,
                                char *errstr, size_t errstr_size)
{
        switch (p->type) {
        case CT_INT: {
                char *end;
                errno = 0;
                long long v = strtoll(value, &end, 10);
                if (errno || end == value || *end || v < p->min || v > p->max)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "%s: expected a whole number in [%lld, %lld], got \"%s\"",
                                             p->name, (long long)p->min, (long long)p->max, value);
                *ival = v;
                return KINFER_OK;
        }
        case CT_BOOL: {
                int b = parse_bool(value);
                if (b < 0)
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "%s: expected true or false, got \"%s\"", p->name, value);
                *ival = b;
                return KINFER_OK;
        }
        case CT_ENUM:
                if (!enum_has(p->values, value))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "%s: expected one of %s, got \"%s\"", p->name, p->values,
                                             value);
                return KINFER_OK;
        case CT_STR:
        case CT_LIST:
                return KINFER_OK;
        }
        return KINFER_OK;
}

/* ---- life cycle --------------------------------------------------------------------------- */

kinfer_conf_t *kinfer_conf_new(char *errstr, size_t errstr_size)
{
        kinfer_conf_t *conf = calloc(1, sizeof(*conf));
        if (!conf) {
                nomem(errstr, errstr_size);
                return NULL;
        }
        for (size_t i = 0; i < N_PROPS; i++) {
                if (!props[i].def)
                        continue;
                kinfer_err_t err = check_value(&props[i], props[i].def, &conf->ival[i], NULL, 0);
                assert(err == KINFER_OK && "a default must pass its own check");
                (void)err;
        }
        return conf;
}

kinfer_conf_t *kinfer_conf_dup(const kinfer_conf_t *conf, char *errstr, size_t errstr_size)
{
        kinfer_conf_t *d = kinfer_conf_new(errstr, errstr_size);
        if (!d)
                return NULL;
        for (size_t i = 0; i < N_PROPS; i++) {
                if ((conf->val[i] && !(d->val[i] = xstrdup(conf->val[i]))) ||
                    (conf->source[i] && !(d->source[i] = xstrdup(conf->source[i])))) {
                        nomem(errstr, errstr_size);
                        kinfer_conf_destroy(d);
                        return NULL;
                }
                d->ival[i] = conf->ival[i];
        }
        for (size_t i = 0; i < conf->n_kafka; i++) {
                const struct kafka_prop *k = &conf->kafka[i];
                char full[512];
                snprintf(full, sizeof(full), "kafka.%s%s%s", k->scope, *k->scope ? "." : "", k->name);
                if (kinfer_conf_set(d, full, k->value, k->source, errstr, errstr_size)) {
                        kinfer_conf_destroy(d);
                        return NULL;
                }
        }
        return d;
}

void kinfer_conf_destroy(kinfer_conf_t *conf)
{
        if (!conf)
                return;
        for (size_t i = 0; i < N_PROPS; i++) {
                free(conf->val[i]);
                free(conf->source[i]);
        }
        for (size_t i = 0; i < conf->n_kafka; i++) {
                free(conf->kafka[i].scope);
                free(conf->kafka[i].name);
                free(conf->kafka[i].value);
                free(conf->kafka[i].source);
        }
        free(conf->kafka);
        free(conf);
}

/* ---- setting ------------------------------------------------------------------------------ */

static kinfer_err_t set_kafka(kinfer_conf_t *conf, const char *name, const char *value,
                              const char *source, char *errstr, size_t errstr_size)
{
        const char *scope = "", *prop = name + strlen("kafka.");
        if (!strncmp(prop, "consumer.", 9)) {
                scope = "consumer";
                prop += 9;
        } else if (!strncmp(prop, "producer.", 9)) {
                scope = "producer";
                prop += 9;
        }
        if (!*prop)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "%s: missing librdkafka property name", name);
        /* new strings first: on failure the configuration is left as it was */
        char *v = xstrdup(value), *src = xstrdup(source);
        if (!v || !src)
                goto oom;
        for (size_t i = 0; i < conf->n_kafka; i++) {
                struct kafka_prop *k = &conf->kafka[i];
                if (!strcmp(k->scope, scope) && !strcmp(k->name, prop)) {
                        free(k->value);
                        free(k->source);
                        k->value = v;
                        k->source = src;
                        return KINFER_OK;
                }
        }
        if (conf->n_kafka == conf->cap_kafka) {
                size_t cap = conf->cap_kafka ? conf->cap_kafka * 2 : 8;
                struct kafka_prop *k = realloc(conf->kafka, cap * sizeof(*k));
                if (!k)
                        goto oom;
                conf->kafka = k;
                conf->cap_kafka = cap;
        }
        struct kafka_prop k = {.scope = xstrdup(scope), .name = xstrdup(prop), .value = v,
                               .source = src};
        if (!k.scope || !k.name) {
                free(k.scope);
                free(k.name);
                goto oom;
        }
        conf->kafka[conf->n_kafka++] = k;
        return KINFER_OK;
oom:
        free(v);
        free(src);
        return nomem(errstr, errstr_size);
}

kinfer_err_t kinfer_conf_set(kinfer_conf_t *conf, const char *name, const char *value,
                             const char *source, char *errstr, size_t errstr_size)
{
        int i = prop_index(name);
        if (i < 0) {
                if (!strncmp(name, "kafka.", 6))
                        return set_kafka(conf, name, value, source ? source : "api", errstr,
                                         errstr_size);
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "unknown configuration key \"%s\"", name);
        }
        int64_t iv = 0;
        kinfer_err_t err = check_value(&props[i], value, &iv, errstr, errstr_size);
        if (err)
                return err;
        char *v = xstrdup(value), *src = xstrdup(source ? source : "api");
        if (!v || !src) {
                free(v);
                free(src);
                return nomem(errstr, errstr_size);
        }
        free(conf->val[i]);
        free(conf->source[i]);
        conf->val[i] = v;
        conf->source[i] = src;
        conf->ival[i] = iv;
        return KINFER_OK;
}

static char *trim(char *s)
{
        while (isspace((unsigned char)*s))
                s++;
        char *e = s + strlen(s);
        while (e > s && isspace((unsigned char)e[-1]))
                *--e = '\0';
        return s;
}

kinfer_err_t kinfer_conf_set_kv(kinfer_conf_t *conf, const char *kv, const char *source,
                                char *errstr, size_t errstr_size)
{
        char *dup = xstrdup(kv);
        if (!dup)
                return nomem(errstr, errstr_size);
        char *eq = strchr(dup, '=');
        kinfer_err_t err;
        if (!eq) {
                err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                    "expected key=value, got \"%s\"", kv);
        } else {
                *eq = '\0';
                err = kinfer_conf_set(conf, trim(dup), trim(eq + 1), source, errstr, errstr_size);
        }
        free(dup);
        return err;
}

kinfer_err_t kinfer_conf_load_file(kinfer_conf_t *conf, const char *path, char *errstr,
                                   size_t errstr_size)
{
        FILE *fp = fopen(path, "r");
        if (!fp)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__IO, "%s: %s", path,
                                     strerror(errno));
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0;
        kinfer_err_t err = KINFER_OK;
        ssize_t got;
        while ((got = getline(&line, &cap, fp)) != -1) {
                lineno++;
                /* a NUL would silently cut the value, invalid UTF-8 would reach logs and
                 * librdkafka: both are errors naming the line */
                if (memchr(line, '\0', (size_t)got)) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                            "%s:%d: a NUL byte in the line", path, lineno);
                        break;
                }
                if (!kinfer_utf8_valid(line, (size_t)got)) {
                        err = kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                            "%s:%d: the line is not valid UTF-8", path, lineno);
                        break;
                }
                char *s = trim(line);
                if (!*s || *s == '#')
                        continue;
                char src[512], e[512];
                snprintf(src, sizeof(src), "%s:%d", path, lineno);
                if ((err = kinfer_conf_set_kv(conf, s, src, e, sizeof(e)))) {
                        kinfer_seterr(errstr, errstr_size, err, "%s: %s", src, e);
                        break;
                }
        }
        if (!err && !feof(fp))
                err = kinfer_seterr(errstr, errstr_size, errno == ENOMEM ? KINFER_ERR__NOMEM
                                                                         : KINFER_ERR__IO,
                                    "%s: line %d: %s", path, lineno + 1, strerror(errno));
        free(line);
        fclose(fp);
        return err;
}

const char *kinfer_conf_env_name(const char *name, char *buf, size_t size)
{
        size_t o = (size_t)snprintf(buf, size, "KINFER_");
        for (const char *p = name; *p && o + 1 < size; p++)
                buf[o++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
        buf[o < size ? o : size - 1] = '\0';
        return buf;
}

/* Edit distance of a[0..na) and b[0..nb), or 3 if it is more than 2 (a typo is one or two
 * edits: a letter dropped, doubled, swapped or replaced). */
static int typo_distance(const char *a, size_t na, const char *b, size_t nb)
{
        if (na > 64 || nb > 64 || (na > nb ? na - nb : nb - na) > 2)
                return 3;
        int d[65][65];
        for (size_t i = 0; i <= na; i++)
                d[i][0] = (int)i;
        for (size_t j = 0; j <= nb; j++)
                d[0][j] = (int)j;
        for (size_t i = 1; i <= na; i++)
                for (size_t j = 1; j <= nb; j++) {
                        int v = d[i - 1][j - 1] + (a[i - 1] != b[j - 1]);
                        if (d[i - 1][j] + 1 < v)
                                v = d[i - 1][j] + 1;
                        if (d[i][j - 1] + 1 < v)
                                v = d[i][j - 1] + 1;
                        if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] &&
                            d[i - 2][j - 2] + 1 < v)
                                v = d[i - 2][j - 2] + 1; /* two letters swapped */
                        d[i][j] = v;
                }
        return d[na][nb] < 3 ? d[na][nb] : 3;
}

/* KINFER_ names that belong to kinfer's scripts, build and tests, not to the configuration:
 * exact names, and prefixes ending in '_' (docs/CONFIGURATION.md lists them) */
static const char *const env_not_config_names[] = {
    "KINFER_BIN",          "KINFER_MAN",           "KINFER_MIGRATIONS_DIR", "KINFER_KAFKA_CACHE",
    "KINFER_KAFKA_HEAP",   "KINFER_KAFKA_VERSION", "KINFER_PG_DIR",         "KINFER_PG_CA",
    "KINFER_PG_PORT",      "KINFER_EXAMPLES_CACHE", "KINFER_SOURCE_DIR",    "KINFER_EMBED_CLASSIFY",
    "KINFER_SWAP_LIMIT_MS", "KINFER_MAKE_TEST_MODELS", "KINFER_TEST_",      "KINFER_SKIP_",
    "KINFER_BENCH_",       "KINFER_FUZZ_",          "KINFER_FAULT_",
};
#define ENV_NOT_CONFIG_DOC                                                                         \
        "KINFER_BIN, KINFER_MAN, KINFER_MIGRATIONS_DIR, KINFER_KAFKA_CACHE, KINFER_KAFKA_HEAP, "  \
        "KINFER_KAFKA_VERSION, KINFER_PG_DIR, KINFER_PG_CA, KINFER_PG_PORT, "                     \
        "KINFER_EXAMPLES_CACHE, KINFER_SOURCE_DIR, KINFER_EMBED_CLASSIFY, KINFER_SWAP_LIMIT_MS, "  \
        "KINFER_MAKE_TEST_MODELS, KINFER_TEST_*, KINFER_SKIP_*, KINFER_BENCH_*, KINFER_FUZZ_*, "   \
        "KINFER_FAULT_*"

static int env_not_config(const char *name, size_t nlen)
{
        for (size_t i = 0; i < sizeof(env_not_config_names) / sizeof(*env_not_config_names); i++) {
                const char *n = env_not_config_names[i];
                size_t l = strlen(n);
                if (n[l - 1] == '_' ? nlen > l && !strncmp(name, n, l)
                                    : nlen == l && !strncmp(name, n, l))
                        return 1;
        }
        return 0;
}

kinfer_err_t kinfer_conf_load_env(kinfer_conf_t *conf, char *const *envp, char *errstr,
                                  size_t errstr_size)
{
        if (!envp)
                return KINFER_OK;
        /* Table keys first (exact names), then KINFER_KAFKA_* pass-through that matched none. */
        for (char *const *e = envp; *e; e++) {
                if (strncmp(*e, "KINFER_", 7))
                        continue;
                const char *eq = strchr(*e, '=');
                if (!eq)
                        continue;
                size_t nlen = (size_t)(eq - *e);
                char envname[256];
                int matched = 0;
                for (size_t i = 0; i < N_PROPS; i++) {
                        kinfer_conf_env_name(props[i].name, envname, sizeof(envname));
                        if (strlen(envname) == nlen && !strncmp(envname, *e, nlen)) {
                                char src[300];
                                snprintf(src, sizeof(src), "env %s", envname);
                                kinfer_err_t err =
                                    kinfer_conf_set(conf, props[i].name, eq + 1, src, errstr, errstr_size);
                                if (err)
                                        return err;
                                matched = 1;
                                break;
                        }
                }
                if (matched)
                        continue;
                /* a KINFER_ variable one or two typos away from a key's variable is refused
                 * naming that key (KINFER_INPUT_TOPC, KINFER_KAFKA_BOOTSTRAP_SERVER) */
                for (size_t i = 0; i < N_PROPS; i++) {
                        kinfer_conf_env_name(props[i].name, envname, sizeof(envname));
                        if (typo_distance(*e, nlen, envname, strlen(envname)) <= 2)
                                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                                     "unknown configuration variable %.*s (did you "
                                                     "mean %s, for %s?)", (int)(nlen > 200 ? 200 : nlen),
                                                     *e, envname, props[i].name);
                }
                /* the documented names of kinfer's scripts and tests are not configuration */
                if (env_not_config(*e, nlen))
                        continue;
                /* any other KINFER_ name but the KINFER_KAFKA_ pass-through is refused like an
                 * unknown key: a setting that silently does nothing is worse than an error */
                if (strncmp(*e, "KINFER_KAFKA_", 13))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "unknown configuration variable %.*s: not the "
                                             "variable of a key (KINFER_<KEY>, see "
                                             "docs/CONFIGURATION.md), nor KINFER_KAFKA_<property>, "
                                             "nor one of the names kinfer leaves alone (%s)",
                                             (int)(nlen > 200 ? 200 : nlen), *e, ENV_NOT_CONFIG_DOC);
                if (strncmp(*e, "KINFER_KAFKA_", 13) || nlen >= sizeof(envname))
                        continue;
                char key[300];
                size_t o = (size_t)snprintf(key, sizeof(key), "kafka.");
                for (const char *p = *e + 13; p < eq && o + 1 < sizeof(key); p++)
                        key[o++] = *p == '_' ? '.' : (char)tolower((unsigned char)*p);
                key[o] = '\0';
                char src[300];
                snprintf(src, sizeof(src), "env %.*s", (int)nlen, *e);
                kinfer_err_t err = kinfer_conf_set(conf, key, eq + 1, src, errstr, errstr_size);
                if (err)
                        return err;
        }
        return KINFER_OK;
}

/* ---- reading ------------------------------------------------------------------------------ */

int kinfer_conf_is_default(const kinfer_conf_t *conf, const char *name)
{
        int i = prop_index(name);
        assert(i >= 0 && "kinfer_conf_is_default: not a table key");
        return i < 0 || !conf->val[i];
}

const char *kinfer_conf_get(const kinfer_conf_t *conf, const char *name)
{
        int i = prop_index(name);
        assert(i >= 0 && "kinfer_conf_get: not a table key");
        if (i < 0)
                return "";
        if (conf->val[i])
                return conf->val[i];
        /* kafka.bootstrap.servers and kafka.group.id may also have come in via the pass-through
         * spelling of another scope; the table value wins. */
        return props[i].def ? props[i].def : "";
}

int64_t kinfer_conf_get_int(const kinfer_conf_t *conf, const char *name)
{
        int i = prop_index(name);
        assert(i >= 0 && (props[i].type == CT_INT || props[i].type == CT_BOOL));
        return i < 0 ? 0 : conf->ival[i];
}

int kinfer_conf_get_bool(const kinfer_conf_t *conf, const char *name)
{
        return kinfer_conf_get_int(conf, name) != 0;
}

size_t kinfer_conf_kafka_count(const kinfer_conf_t *conf)
{
        return conf->n_kafka;
}

void kinfer_conf_kafka_get(const kinfer_conf_t *conf, size_t i, const char **scope,
                           const char **name, const char **value)
{
        assert(i < conf->n_kafka);
        *scope = conf->kafka[i].scope;
        *name = conf->kafka[i].name;
        *value = conf->kafka[i].value;
}

kinfer_err_t kinfer_conf_check(const kinfer_conf_t *conf, char *errstr, size_t errstr_size)
{
        static const char *required[] = {"kafka.bootstrap.servers", "input.topic", "output.topic"};
        for (size_t i = 0; i < sizeof(required) / sizeof(required[0]); i++)
                if (!*kinfer_conf_get(conf, required[i]))
                        return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                             "%s is required", required[i]);
        if (!*kinfer_conf_get(conf, "model.path") && !*kinfer_conf_get(conf, "deployment"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "model.path (or deployment) is required");
        const char *fmt = kinfer_conf_get(conf, "input.format");
        if (!strcmp(fmt, "avro-confluent") && !*kinfer_conf_get(conf, "input.schemas.dir") &&
            !*kinfer_conf_get(conf, "schema.registry.url"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "input.format=avro-confluent needs input.schemas.dir or "
                                     "schema.registry.url");
        if (!strcmp(fmt, "avro") && !*kinfer_conf_get(conf, "input.schema"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "input.format=avro needs input.schema");
        if (kinfer_conf_get_int(conf, "backpressure.resume.records") >
            kinfer_conf_get_int(conf, "backpressure.max.records"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "backpressure.resume.records must not exceed "
                                     "backpressure.max.records");
        if (!strcmp(kinfer_conf_get(conf, "processing.guarantee"), "exactly_once") &&
            !*kinfer_conf_get(conf, "worker.id"))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "processing.guarantee=exactly_once needs worker.id (it names "
                                     "the transactional.id, stable across restarts)");
        const char *psi = kinfer_conf_get(conf, "drift.psi.warn");
        char *psi_end;
        double psi_v = strtod(psi, &psi_end);
        if (!*psi || *psi_end || !(psi_v > 0 && psi_v <= 100))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "drift.psi.warn=%s: expected a number in (0, 100]", psi);
        if (!strcmp(kinfer_conf_get(conf, "output.topic"), kinfer_conf_get(conf, "dlq.topic")))
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "dlq.topic must differ from output.topic");
        /* the producer's message.max.bytes (the producer's scope wins) must hold a dead letter
         * with a whole value of input.max.bytes */
        int64_t mmb = 1000000; /* librdkafka's default */
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < kinfer_conf_kafka_count(conf); i++) {
                        const char *sc, *name, *value;
                        kinfer_conf_kafka_get(conf, i, &sc, &name, &value);
                        if (!strcmp(name, "message.max.bytes") &&
                            !strcmp(sc, pass == 0 ? "" : "producer"))
                                mmb = strtoll(value, NULL, 10);
                }
        int64_t imb = kinfer_conf_get_int(conf, "input.max.bytes");
        if (imb + KINFER_CONF_DLQ_ENVELOPE > mmb)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__INVALID_ARG,
                                     "input.max.bytes=%lld does not fit the producer's "
                                     "message.max.bytes=%lld with the dead letter's %d bytes of "
                                     "other fields: lower input.max.bytes to at most %lld or raise "
                                     "kafka.producer.message.max.bytes (and the topics' "
                                     "max.message.bytes) to at least %lld",
                                     (long long)imb, (long long)mmb, KINFER_CONF_DLQ_ENVELOPE,
                                     (long long)(mmb - KINFER_CONF_DLQ_ENVELOPE),
                                     (long long)(imb + KINFER_CONF_DLQ_ENVELOPE));
        return KINFER_OK;
}

/* ---- dumps and docs ----------------------------------------------------------------------- */

int kinfer_conf_is_secret(const char *name)
{
        const char *p = name;
        if (!strncmp(p, "kafka.", 6)) {
                p += 6;
                if (!strncmp(p, "consumer.", 9) || !strncmp(p, "producer.", 9))
                        p += 9;
                if (!strncmp(p, "sasl.", 5) || !strncmp(p, "ssl.key", 7))
                        return 1;
        }
        return strstr(name, "password") || strstr(name, "secret") ||
               !strcmp(name, "http.auth.token") ||
               !strcmp(name, "schema.registry.basic.auth.user.info");
}

/* Conninfo keys whose values are secrets (libpq's key=value form and URI query parameters). */
static int conninfo_secret_key(const char *k, size_t n)
{
        return (n == 8 && !strncmp(k, "password", 8)) || (n == 11 && !strncmp(k, "sslpassword", 11));
}

/* Append @p n bytes of @p s to out (bounded, always terminated). */
static void mask_put(char *out, size_t size, size_t *o, const char *s, size_t n)
{
        while (n-- && *o + 1 < size)
                out[(*o)++] = *s++;
        out[*o < size ? *o : size - 1] = '\0';
}

void kinfer_conf_mask_conninfo(const char *in, char *out, size_t size)
{
        size_t o = 0;
        if (!size)
                return;
        out[0] = '\0';
        if (!in)
                return;
        if (!strncmp(in, "postgresql://", 13) || !strncmp(in, "postgres://", 11)) {
                /* URI: user:PASSWORD@ in the authority, ?password=/&sslpassword= in the query */
                const char *auth = strstr(in, "://") + 3;
                size_t alen = strcspn(auth, "/?#");
                const char *at = NULL;
                for (const char *q = auth; q < auth + alen; q++)
                        if (*q == '@')
                                at = q;
                const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
                if (colon) {
                        mask_put(out, size, &o, in, (size_t)(colon + 1 - in));
                        mask_put(out, size, &o, "******", 6);
                        in = at;
                } else {
                        mask_put(out, size, &o, in, (size_t)(auth + alen - in));
                        in = auth + alen;
                }
                while (*in) {
                        size_t n = strcspn(in, "?&#");
                        mask_put(out, size, &o, in, n);
                        in += n;
                        if (!*in)
                                break;
                        mask_put(out, size, &o, in, 1); /* the separator */
                        in++;
                        size_t klen = strcspn(in, "=&#");
                        if (in[klen] == '=' && conninfo_secret_key(in, klen)) {
                                mask_put(out, size, &o, in, klen + 1);
                                mask_put(out, size, &o, "******", 6);
                                in += klen + 1;
                                in += strcspn(in, "&#");
                        }
                }
                return;
        }
        /* key = value pairs separated by blanks; a value is 'quoted' (\' and \\ escapes) or
         * runs to the next blank (backslash escapes too) */
        const char *p = in;
        while (*p) {
                const char *ws = p;
                while (isspace((unsigned char)*p))
                        p++;
                const char *key = p;
                while (*p && *p != '=' && !isspace((unsigned char)*p))
                        p++;
                size_t klen = (size_t)(p - key);
                while (isspace((unsigned char)*p))
                        p++;
                if (*p != '=') { /* not a pair: copy what was read and go on */
                        mask_put(out, size, &o, ws, (size_t)(p - ws));
                        if (*p)
                                mask_put(out, size, &o, p++, 1);
                        continue;
                }
                p++;
                while (isspace((unsigned char)*p))
                        p++;
                const char *val = p;
                if (*p == '\'') {
                        for (p++; *p && *p != '\''; p++)
                                if (*p == '\\' && p[1])
                                        p++;
                        if (*p)
                                p++;
                } else {
                        for (; *p && !isspace((unsigned char)*p); p++)
                                if (*p == '\\' && p[1])
                                        p++;
                }
                mask_put(out, size, &o, ws, (size_t)(val - ws));
                if (conninfo_secret_key(key, klen))
                        mask_put(out, size, &o, "******", 6);
                else
                        mask_put(out, size, &o, val, (size_t)(p - val));
        }
}

static void dump_value(FILE *fp, const char *name, const char *value, const char *source)
{
        char masked[1024];
        if (kinfer_conf_is_secret(name) && *value)
                value = "******";
        else if (!strcmp(name, "pg.conninfo")) {
                kinfer_conf_mask_conninfo(value, masked, sizeof(masked));
                value = masked;
        }
        /* the source on a comment line of its own: a value may hold '#', so the dump stays a
         * configuration file that loads back as it is */
        if (source)
                fprintf(fp, "# %s: %s\n", name, source);
        fprintf(fp, "%s=%s\n", name, value);
}

void kinfer_conf_dump(const kinfer_conf_t *conf, FILE *fp)
{
        fprintf(fp, "# kinfer effective configuration (secrets masked); each value's source is on the\n"
                    "# line before it. This is a configuration file: kinfer serve --config FILE\n");
        for (size_t i = 0; i < N_PROPS; i++) {
                if (!conf->val[i] && !props[i].def) {
                        fprintf(fp, "#%s=\n", props[i].name);
                        continue;
                }
                dump_value(fp, props[i].name, kinfer_conf_get(conf, props[i].name),
                           conf->source[i] ? conf->source[i] : "default");
        }
        for (size_t i = 0; i < conf->n_kafka; i++) {
                const struct kafka_prop *k = &conf->kafka[i];
                char full[512];
                snprintf(full, sizeof(full), "kafka.%s%s%s", k->scope, *k->scope ? "." : "", k->name);
                dump_value(fp, full, k->value, k->source);
        }
}

static const char *type_name(const struct conf_prop *p)
{
        switch (p->type) {
        case CT_STR: return "string";
        case CT_INT: return "integer";
        case CT_BOOL: return "boolean";
        case CT_ENUM: return "enum";
        case CT_LIST: return "list";
        }
        return "?";
}

void kinfer_conf_dump_doc(FILE *fp)
{
        fprintf(fp,
                "<!-- Generated by `kinfer serve --dump-config-doc` from the table in src/core/conf.c. "
                "Do not edit. -->\n"
                "# kinfer configuration\n\n"
                "`kinfer serve --config FILE [-X key=value]...` reads, in this order (later wins):\n\n"
                "1. the defaults below;\n"
                "2. FILE: `key=value` lines, `#` comment lines, blank lines ignored (UTF-8; a NUL "
                "byte or invalid UTF-8 in a line is an error naming `file:line`);\n"
                "3. `-X key=value` options, in order;\n"
                "4. environment variables: key `a.b-c` is `KINFER_A_B_C` (upper case, `.` and `-` "
                "become `_`), e.g. `KINFER_INPUT_TOPIC`, `KINFER_BATCH_MAX_WAIT_MS`.\n\n"
                "An unknown key is an error naming the key (and `file:line`). So is an unknown "
                "`KINFER_*` variable (exit 2): one a typo or two away from a key's variable "
                "names that key; the only other `KINFER_*` names allowed are `KINFER_KAFKA_*` "
                "(below) and those of kinfer's scripts and tests, which `serve` leaves alone: "
                ENV_NOT_CONFIG_DOC ".\n\n"
                "## librdkafka pass-through\n\n"
                "Any `kafka.<property>` is passed to librdkafka unchanged as `<property>` (both the "
                "consumer and the producer), so TLS and SASL need no kinfer option: "
                "`kafka.security.protocol=SASL_SSL`, `kafka.sasl.mechanisms=PLAIN`, "
                "`kafka.sasl.username=...`. `kafka.consumer.<property>` and "
                "`kafka.producer.<property>` reach only one client. From the environment, "
                "`KINFER_KAFKA_SASL_PASSWORD` sets `kafka.sasl.password` (every `_` after "
                "`KINFER_KAFKA_` becomes `.`). See librdkafka's CONFIGURATION.md for the properties.\n\n"
                "kinfer sets these itself (a `kafka.*` value overrides them, except the first two "
                "which at-least-once delivery depends on): consumer `enable.auto.offset.store=false`, "
                "producer `enable.idempotence=true`; consumer `enable.auto.commit=true`, "
                "`auto.commit.interval.ms=1000`, `auto.offset.reset=earliest`, `fetch.wait.max.ms=10`, "
                "`queued.max.messages.kbytes=8192` (an 8 MiB prefetch queue instead of librdkafka's "
                "64 MiB: the worker's peak RSS, docs/benchmarks.md; it also caps `fetch.max.bytes`), "
                "with librdkafka >= 2.2 `fetch.queue.backoff.ms=10` (before 2.2 the consumer wakes "
                "a fetcher stalled by the full queue itself: docs/streaming.md); "
                "producer `linger.ms=5`.\n\n"
                "`kinfer serve --dump-config` prints the effective configuration with secrets masked "
                "(keys containing `password` or `secret`, `kafka.sasl.*`, `kafka.ssl.key*`, and the "
                "password inside `pg.conninfo`).\n\n"
                "## Properties\n\n"
                "| key | type | range / values | default | environment | description |\n"
                "|---|---|---|---|---|---|\n");
        for (size_t i = 0; i < N_PROPS; i++) {
                const struct conf_prop *p = &props[i];
                char range[128] = "", env[128];
                if (p->type == CT_INT)
                        snprintf(range, sizeof(range), "%lld .. %lld", (long long)p->min,
                                 (long long)p->max);
                else if (p->type == CT_ENUM) {
                        size_t o = 0;
                        for (const char *c = p->values; *c && o + 4 < sizeof(range); c++) {
                                if (*c == '|') {
                                        memcpy(range + o, ", ", 2);
                                        o += 2;
                                } else
                                        range[o++] = *c;
                        }
                        range[o] = '\0';
                }
                fprintf(fp, "| `%s` | %s | %s | %s%s%s | `%s` | %s |\n", p->name, type_name(p), range,
                        p->def ? "`" : "", p->def ? p->def : "", p->def ? "`" : "",
                        kinfer_conf_env_name(p->name, env, sizeof(env)), p->doc);
        }
}
