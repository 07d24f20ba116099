/* SPDX-License-Identifier: Apache-2.0 */
/* prom.c -- the worker's cumulative metrics and their Prometheus text exposition (prom.h). One
 * mutex guards the shared state; the worker thread takes it once per batch and a few times a
 * second, the HTTP thread once per scrape. */
#include "kinfer/worker/prom.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kinfer/codec/codec.h"
#include "kinfer/core/utf8.h"

#ifndef KINFER_VERSION
#define KINFER_VERSION "0.1.0"
#endif
#ifndef KINFER_GIT_SHA
#define KINFER_GIT_SHA "unknown"
#endif

_Static_assert(KINFER_PROM_DLQ_REASONS == KINFER_DLQ_NO_FEATURES + 1,
               "one dead-letter series per kinfer_dlq_reason_t");

/* bucket upper bounds (the +Inf bucket is implicit) */
static const double latency_le[KINFER_PROM_LATENCY_BUCKETS] = {
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120};
#define CLASSIFY_BUCKETS 16
static const double classify_le[CLASSIFY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10};
#define BATCH_BUCKETS 17 /* 1, 2, 4 .. 65536 (batch.max.records' maximum) */

#define LABEL_TABLE (2 * KINFER_PROM_LABELS_MAX) /* open addressing, power of two */

struct kinfer_prom_s {
        pthread_mutex_t lock; /* guards everything below */
        kinfer_model_slot_t *slot;
        kinfer_model_watch_t *watch;
        kinfer_prom_delta_t sum; /* everything published, added up */
        kinfer_prom_gauges_t g;
        int64_t batches, batch_records;
        int64_t batch_bucket[BATCH_BUCKETS + 1];
        int64_t classify_bucket[CLASSIFY_BUCKETS + 1];
        double classify_sum;
        /* result labels: series in order of first appearance, a name -> series hash table */
        char *label_name[KINFER_PROM_LABELS_MAX];
        int64_t label_count[KINFER_PROM_LABELS_MAX];
        int32_t n_label;
        int32_t label_slot[LABEL_TABLE]; /* series + 1; 0 = empty */
        int64_t label_overflow;
        kinfer_model_record_t *map_rec; /* the record label_map was made for (a reference) */
        int32_t *label_map;             /* its label index -> series, -1 = overflow */
        /* drift: the last assessed window's PSI (has_drift 0: none since the model was applied) */
        int has_drift, drift_alert;
        double psi_labels, psi_confidence;
        /* shadow (rollout.h): records both models classified, agreements, the last window's ratio */
        int64_t shadow_records, shadow_agree;
        int has_shadow;
        double shadow_ratio;
        /* lag */
        kinfer_prom_lag_t *lag;
        int n_lag, n_assigned;
};

kinfer_prom_t *kinfer_prom_new(kinfer_model_slot_t *slot, char *errstr, size_t errstr_size)
{
        kinfer_prom_t *p = calloc(1, sizeof(*p));
        if (!p || !(p->lag = calloc(KINFER_PROM_PARTITIONS_MAX, sizeof(*p->lag)))) {
                free(p);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "out of memory (metrics)");
                return NULL;
        }
        if (pthread_mutex_init(&p->lock, NULL)) {
                free(p->lag);
                free(p);
                kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM, "cannot create a mutex (metrics)");
                return NULL;
        }
        p->slot = slot;
        return p;
}

void kinfer_prom_destroy(kinfer_prom_t *p)
{
        if (!p)
                return;
        for (int32_t i = 0; i < p->n_label; i++)
                free(p->label_name[i]);
        kinfer_model_record_release(p->map_rec);
        free(p->label_map);
        free(p->lag);
        pthread_mutex_destroy(&p->lock);
        free(p);
}

/* ---- the worker's side ---------------------------------------------------------------------- */

void kinfer_prom_delta_latency(kinfer_prom_delta_t *d, int64_t us)
{
        double s = us < 0 ? 0 : (double)us / 1e6;
        int b = 0;
        while (b < KINFER_PROM_LATENCY_BUCKETS && s > latency_le[b])
                b++;
        d->latency_bucket[b]++;
        d->latency_count++;
        d->latency_sum += s;
}

void kinfer_prom_publish(kinfer_prom_t *p, kinfer_prom_delta_t *d, const kinfer_prom_gauges_t *g)
{
        pthread_mutex_lock(&p->lock);
        kinfer_prom_delta_t *s = &p->sum;
        s->records_in += d->records_in;
        s->results_out += d->results_out;
        for (int i = 0; i < KINFER_PROM_DLQ_REASONS; i++)
                s->dead_letters[i] += d->dead_letters[i];
        s->skipped += d->skipped;
        s->holds += d->holds;
        s->pauses += d->pauses;
        s->swaps += d->swaps;
        for (int i = 0; i <= KINFER_PROM_LATENCY_BUCKETS; i++)
                s->latency_bucket[i] += d->latency_bucket[i];
        s->latency_count += d->latency_count;
        s->latency_sum += d->latency_sum;
        if (g)
                p->g = *g;
        pthread_mutex_unlock(&p->lock);
        memset(d, 0, sizeof(*d));
}

static uint32_t fnv1a(const char *s)
{
        uint32_t h = 2166136261u;
        for (; *s; s++)
                h = (h ^ (unsigned char)*s) * 16777619u;
        return h;
}

/* The series of label @p name, a new one while there is room; -1 = overflow. Under the lock. */
static int32_t label_series(kinfer_prom_t *p, const char *name)
{
        uint32_t i = fnv1a(name) & (LABEL_TABLE - 1);
        for (; p->label_slot[i]; i = (i + 1) & (LABEL_TABLE - 1))
                if (!strcmp(p->label_name[p->label_slot[i] - 1], name))
                        return p->label_slot[i] - 1;
        if (p->n_label >= KINFER_PROM_LABELS_MAX || !(p->label_name[p->n_label] = strdup(name)))
                return -1;
        p->label_slot[i] = ++p->n_label;
        return p->n_label - 1;
}

/* Map @p rec's labels to series (once per record). Under the lock. */
static void map_labels(kinfer_prom_t *p, kinfer_model_record_t *rec)
{
        if (rec == p->map_rec)
                return;
        kinfer_model_record_release(p->map_rec);
        free(p->label_map);
        p->map_rec = NULL;
        p->label_map = NULL;
        if (!rec || rec->n_labels < 1 ||
            !(p->label_map = malloc((size_t)rec->n_labels * sizeof(*p->label_map))))
                return; /* no map: every label of this record counts as overflow */
        for (int32_t i = 0; i < rec->n_labels; i++)
                p->label_map[i] = label_series(p, rec->labels[i]);
        p->map_rec = kinfer_model_record_keep(rec);
}

void kinfer_prom_observe_batch(kinfer_prom_t *p, kinfer_model_record_t *rec,
                               const kinfer_prediction_t *preds, int32_t n, int64_t classify_us)
{
        pthread_mutex_lock(&p->lock);
        map_labels(p, rec);
        p->batches++;
        p->batch_records += n;
        int b = 0;
        while (b < BATCH_BUCKETS && n > (1 << b))
                b++;
        p->batch_bucket[b]++;
        double s = classify_us < 0 ? 0 : (double)classify_us / 1e6;
        for (b = 0; b < CLASSIFY_BUCKETS && s > classify_le[b]; b++)
                ;
        p->classify_bucket[b]++;
        p->classify_sum += s;
        for (int32_t i = 0; i < n; i++) {
                if (preds[i].n < 1) /* not classified: a no_features dead letter */
                        continue;
                int32_t l = preds[i].label[0];
                if (p->label_map && l >= 0 && l < p->map_rec->n_labels && p->label_map[l] >= 0)
                        p->label_count[p->label_map[l]]++;
                else
                        p->label_overflow++;
        }
        pthread_mutex_unlock(&p->lock);
}

void kinfer_prom_set_lag(kinfer_prom_t *p, const kinfer_prom_lag_t *parts, int n, int n_assigned)
{
        if (n > KINFER_PROM_PARTITIONS_MAX)
                n = KINFER_PROM_PARTITIONS_MAX;
        if (n < 0)
                n = 0;
        pthread_mutex_lock(&p->lock);
        memcpy(p->lag, parts, (size_t)n * sizeof(*parts));
        p->n_lag = n;
        p->n_assigned = n_assigned;
        pthread_mutex_unlock(&p->lock);
}

void kinfer_prom_observe_shadow(kinfer_prom_t *p, int64_t records, int64_t agree)
{
        if (records <= 0)
                return;
        pthread_mutex_lock(&p->lock);
        p->shadow_records += records;
        p->shadow_agree += agree;
        p->has_shadow = 1;
        p->shadow_ratio = (double)agree / (double)records;
        pthread_mutex_unlock(&p->lock);
}

void kinfer_prom_set_drift(kinfer_prom_t *p, double psi_labels, double psi_confidence, int alert)
{
        pthread_mutex_lock(&p->lock);
        p->has_drift = psi_labels >= 0;
        p->psi_labels = psi_labels;
        p->psi_confidence = psi_confidence;
        p->drift_alert = p->has_drift && alert;
        pthread_mutex_unlock(&p->lock);
}

void kinfer_prom_set_registry(kinfer_prom_t *p, kinfer_model_watch_t *watch)
{
        pthread_mutex_lock(&p->lock);
        p->watch = watch;
        pthread_mutex_unlock(&p->lock);
}

/* ---- the exposition ------------------------------------------------------------------------- */

void kinfer_prom_label_value(kinfer_buf_t *out, const char *s, size_t len)
{
        size_t i = 0;
        while (i < len) {
                int valid;
                size_t n = kinfer_utf8_seq(s + i, len - i, &valid);
                if (!valid)
                        kinfer_buf_puts(out, "\xEF\xBF\xBD");
                else if (s[i] == '\\')
                        kinfer_buf_puts(out, "\\\\");
                else if (s[i] == '"')
                        kinfer_buf_puts(out, "\\\"");
                else if (s[i] == '\n')
                        kinfer_buf_puts(out, "\\n");
                else
                        kinfer_buf_append(out, s + i, n);
                i += n;
        }
}

static void lv(kinfer_buf_t *out, const char *s)
{
        kinfer_prom_label_value(out, s, strlen(s));
}

static void head(kinfer_buf_t *o, const char *name, const char *type, const char *help)
{
        kinfer_buf_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void one(kinfer_buf_t *o, const char *name, const char *type, const char *help, int64_t v)
{
        head(o, name, type, help);
        kinfer_buf_printf(o, "%s %" PRId64 "\n", name, v);
}

/* buckets[0..n] are per-bucket counts (n: the +Inf one); written cumulative */
static void histogram(kinfer_buf_t *o, const char *name, const char *help, const double *le,
                      int n, const int64_t *buckets, double sum, int64_t count)
{
        head(o, name, "histogram", help);
        int64_t cum = 0;
        for (int i = 0; i < n; i++) {
                cum += buckets[i];
                kinfer_buf_printf(o, "%s_bucket{le=\"%g\"} %" PRId64 "\n", name, le[i], cum);
        }
        cum += buckets[n];
        kinfer_buf_printf(o, "%s_bucket{le=\"+Inf\"} %" PRId64 "\n", name, cum);
        kinfer_buf_printf(o, "%s_sum %.17g\n%s_count %" PRId64 "\n", name, sum, name, count);
}

static void render(kinfer_prom_t *p, kinfer_buf_t *o)
{
        const kinfer_prom_delta_t *s = &p->sum;
        head(o, "kinfer_build_info", "gauge",
             "The kinfer version and the git commit it was configured from (always 1).");
        kinfer_buf_puts(o, "kinfer_build_info{version=\"");
        lv(o, KINFER_VERSION);
        kinfer_buf_puts(o, "\",git_sha=\"");
        lv(o, KINFER_GIT_SHA);
        kinfer_buf_puts(o, "\"} 1\n");

        one(o, "kinfer_records_in_total", "counter",
            "Records consumed from the input topics, bad ones included.", s->records_in);
        one(o, "kinfer_results_out_total", "counter", "Results handed to the producer.",
            s->results_out);
        head(o, "kinfer_dead_letters_total", "counter",
             "Records sent to the dead-letter topic (or skipped without dlq.topic), by reason.");
        for (int i = 0; i < KINFER_PROM_DLQ_REASONS; i++)
                kinfer_buf_printf(o, "kinfer_dead_letters_total{reason=\"%s\"} %" PRId64 "\n",
                                  kinfer_dlq_reason_str((kinfer_dlq_reason_t)i), s->dead_letters[i]);
        one(o, "kinfer_records_skipped_total", "counter",
            "Records given up without a result or dead letter (delivery.refused.policy=skip).",
            s->skipped);
        one(o, "kinfer_batches_total", "counter", "Batches classified.", p->batches);

        double ble[BATCH_BUCKETS];
        for (int i = 0; i < BATCH_BUCKETS; i++)
                ble[i] = (double)(1 << i);
        histogram(o, "kinfer_batch_size_records", "Records per classified batch.", ble,
                  BATCH_BUCKETS, p->batch_bucket, (double)p->batch_records, p->batches);
        histogram(o, "kinfer_classify_duration_seconds",
                  "Time to classify one batch (featurize, embed, dense layers, top-k).",
                  classify_le, CLASSIFY_BUCKETS, p->classify_bucket, p->classify_sum, p->batches);
        histogram(o, "kinfer_record_latency_seconds",
                  "From consuming a record to the delivery report of its result or dead letter.",
                  latency_le, KINFER_PROM_LATENCY_BUCKETS, s->latency_bucket, s->latency_sum,
                  s->latency_count);

        head(o, "kinfer_consumer_lag_records", "gauge",
             "Records in the partition past the consumer's position (high watermark - position), "
             "per assigned partition, refreshed every second; absent until known.");
        for (int i = 0; i < p->n_lag; i++) {
                if (p->lag[i].lag < 0)
                        continue;
                kinfer_buf_puts(o, "kinfer_consumer_lag_records{topic=\"");
                lv(o, p->lag[i].topic);
                kinfer_buf_printf(o, "\",partition=\"%d\"} %" PRId64 "\n", (int)p->lag[i].partition,
                                  p->lag[i].lag);
        }
        one(o, "kinfer_consumer_lag_partitions_omitted", "gauge",
            "Assigned partitions beyond the lag series' bound (1024).",
            p->n_assigned > p->n_lag ? p->n_assigned - p->n_lag : 0);
        one(o, "kinfer_partitions_assigned", "gauge", "Input partitions assigned to this worker.",
            p->g.partitions);
        one(o, "kinfer_records_in_flight", "gauge",
            "Records consumed whose result or dead letter is not delivered yet.", p->g.in_flight);
        one(o, "kinfer_producer_in_flight_bytes", "gauge",
            "Bytes handed to the producer and not delivered yet.", p->g.bytes_in_flight);
        one(o, "kinfer_backpressure_state", "gauge",
            "0: flowing; 1: holding (not taking records); 2: holding with the partitions paused.",
            p->g.backpressure);
        one(o, "kinfer_backpressure_holds_total", "counter", "Backpressure holds begun.", s->holds);
        one(o, "kinfer_backpressure_pauses_total", "counter",
            "Backpressure holds that lasted backpressure.pause.ms and paused the partitions.",
            s->pauses);
        one(o, "kinfer_ready", "gauge", "1 while the worker has a model and partitions.",
            p->g.ready);

        head(o, "kinfer_model_info", "gauge",
             "The model classifying now (always 1; absent before the first model).");
        kinfer_model_record_t *rec = p->slot ? kinfer_model_slot_applied(p->slot) : NULL;
        if (rec) {
                kinfer_buf_puts(o, "kinfer_model_info{name=\"");
                lv(o, rec->name);
                kinfer_buf_printf(o, "\",version=\"%d\",sha256=\"", (int)rec->version);
                lv(o, rec->sha256);
                kinfer_buf_puts(o, "\"} 1\n");
        }
        kinfer_model_record_release(rec);
        one(o, "kinfer_model_swaps_total", "counter",
            "Models applied in place of another one (activations, rollbacks).", s->swaps);
        kinfer_model_watch_stats_t ws = {0};
        if (p->watch)
                kinfer_model_watch_stats(p->watch, &ws);
        one(o, "kinfer_model_swap_failures_total", "counter",
            "Activated models refused by the registry thread (corrupt, sha256 mismatch, failed "
            "warm-up): the worker kept its model.", ws.load_failures);
        one(o, "kinfer_registry_configured", "gauge",
            "1 when the model comes from a registry deployment (deployment=).", p->watch != NULL);
        one(o, "kinfer_registry_connected", "gauge",
            "1 while the registry thread's PostgreSQL connection is up.", ws.connected);
        one(o, "kinfer_registry_reconnects_total", "counter",
            "Successful reconnects to PostgreSQL.", ws.reconnects);
        one(o, "kinfer_registry_metrics_windows_buffered", "gauge",
            "Metrics windows waiting for PostgreSQL.", ws.metrics_buffered);
        one(o, "kinfer_registry_metrics_windows_dropped_total", "counter",
            "Metrics windows dropped because the ring was full while PostgreSQL was away.",
            ws.metrics_dropped);

        head(o, "kinfer_results_by_label_total", "counter",
             "Classified records by top-1 label (the labels of the models applied, up to 4096).");
        for (int32_t i = 0; i < p->n_label; i++) {
                kinfer_buf_puts(o, "kinfer_results_by_label_total{label=\"");
                lv(o, p->label_name[i]);
                kinfer_buf_printf(o, "\"} %" PRId64 "\n", p->label_count[i]);
        }
        one(o, "kinfer_results_label_overflow_total", "counter",
            "Classified records whose label found no series (over 4096 distinct labels).",
            p->label_overflow);

        one(o, "kinfer_shadow_records_total", "counter",
            "Records classified by both the active model and a shadow candidate.",
            p->shadow_records);
        one(o, "kinfer_shadow_agreements_total", "counter",
            "Shadow records whose candidate gave the active model's top-1 label.", p->shadow_agree);
        head(o, "kinfer_shadow_agreement_ratio", "gauge",
             "Agreement (same top-1 label) of the last closed shadow window; absent until one.");
        if (p->has_shadow)
                kinfer_buf_printf(o, "kinfer_shadow_agreement_ratio %.6g\n", p->shadow_ratio);

        head(o, "kinfer_drift_psi", "gauge",
             "PSI of the last metrics window with enough records (drift.min.records) against the "
             "model's training-time reference: kind=labels (top-1 labels) or confidence (top-1 "
             "scores); absent until such a window closed for the current model.");
        if (p->has_drift)
                kinfer_buf_printf(o, "kinfer_drift_psi{kind=\"labels\"} %.6g\n", p->psi_labels);
        if (p->has_drift && p->psi_confidence >= 0) /* none against a training-data reference */
                kinfer_buf_printf(o, "kinfer_drift_psi{kind=\"confidence\"} %.6g\n",
                                  p->psi_confidence);
        one(o, "kinfer_drift_alert", "gauge",
            "1 when the last assessed window's PSI (labels or confidence) was above "
            "drift.psi.warn, else 0.", p->drift_alert);
}

kinfer_err_t kinfer_prom_render(kinfer_prom_t *p, kinfer_buf_t *out, char *errstr,
                                size_t errstr_size)
{
        pthread_mutex_lock(&p->lock);
        render(p, out);
        pthread_mutex_unlock(&p->lock);
        if (out->oom)
                return kinfer_seterr(errstr, errstr_size, KINFER_ERR__NOMEM,
                                     "out of memory rendering the metrics");
        return KINFER_OK;
}

kinfer_err_t kinfer_prom_metrics_fn(void *opaque, kinfer_buf_t *out, char *errstr,
                                    size_t errstr_size)
{
        return kinfer_prom_render(opaque, out, errstr, errstr_size);
}
