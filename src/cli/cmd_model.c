/* SPDX-License-Identifier: Apache-2.0 */
/* cmd_model.c -- `kinfer model push|ls|show|lineage|pull`: register model files in the
 * PostgreSQL registry, list and inspect them, print their lineage as a tree, download them. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/cli_registry.h"
#include "cli/cli_util.h"
#include "cli/commands.h"
#include "kinfer/model/model.h"
#include "kinfer/registry/registry.h"

static void model_usage(FILE *fp)
{
        fprintf(fp,
                "Usage: kinfer model <command> [--pg CONNINFO] ...\n\n"
                "The model registry in PostgreSQL (run `kinfer migrate` once first).\n\n"
                "  push FILE [--name NAME]      register a model file; the version is assigned\n"
                "                               (next of NAME); lineage edges come from the\n"
                "                               file's metadata, parents resolved by sha256\n"
                "                               (NAME defaults to the name in the file)\n"
                "  ls [NAME]                    list registered models\n"
                "  show NAME[:VERSION]          details of one model (default: latest version)\n"
                "  lineage NAME[:VERSION] [--descendants] [--params]\n"
                "                               the model's ancestors as a tree (or the models\n"
                "                               derived from it); --params adds how each model\n"
                "                               was made (its lineage.params)\n"
                "  pull NAME[:VERSION] --output FILE\n"
                "                               download and verify the artifact\n\n"
                "  --pg CONNINFO   libpq connection string or URI (default: PG* environment)\n"
                "  -h, --help      this help\n");
}

/* Options common to every model subcommand. */
struct model_opts {
        const char *conninfo;
        const char *name;
        const char *output;
        int descendants;
        int params;
};

static int model_parse(int argc, char **argv, struct model_opts *o)
{
        static const struct option opts[] = {{"pg", required_argument, NULL, 'p'},
                                             {"name", required_argument, NULL, 'n'},
                                             {"output", required_argument, NULL, 'o'},
                                             {"descendants", no_argument, NULL, 'D'},
                                             {"params", no_argument, NULL, 'P'},
                                             {"help", no_argument, NULL, 'h'},
                                             {NULL, 0, NULL, 0}};
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "ho:n:", opts, NULL)) != -1) {
                switch (c) {
                case 'p':
                        o->conninfo = optarg;
                        break;
                case 'n':
                        o->name = optarg;
                        break;
                case 'o':
                        o->output = optarg;
                        break;
                case 'D':
                        o->descendants = 1;
                        break;
                case 'P':
                        o->params = 1;
                        break;
                case 'h':
                        model_usage(stdout);
                        return 0;
                default:
                        model_usage(stderr);
                        return 2;
                }
        }
        return -1;
}

/* ---- push ----------------------------------------------------------------------------------- */

static int model_push(kinfer_registry_t *reg, const char *path, const char *name)
{
        char errstr[512];
        kinfer_model_t *model = kinfer_model_load_file(path, errstr, sizeof(errstr));
        if (!model) {
                cli_error("model push", "refused: %s", errstr); /* errstr names the file */
                return 1;
        }
        if (!name || !*name)
                name = kinfer_model_name(model);
        if (!name || !*name) {
                cli_error("model push", "%s: the file names no model; use --name NAME", path);
                kinfer_model_release(model);
                return 2;
        }
        int32_t n_labels = kinfer_model_n_labels(model);
        const char **labels = calloc((size_t)(n_labels > 0 ? n_labels : 1), sizeof(*labels));
        if (!labels) {
                cli_error("model push", "out of memory");
                kinfer_model_release(model);
                return 1;
        }
        for (int32_t i = 0; i < n_labels; i++)
                labels[i] = kinfer_model_label(model, i);
        size_t len;
        const void *bytes = kinfer_model_bytes(model, &len);
        kinfer_registry_push_t push = {
            .name = name,
            .bytes = bytes,
            .len = len,
            .sha256 = kinfer_model_sha256_hex(model),
            .format = kinfer_model_format(model),
            .labels = labels,
            .n_labels = n_labels,
            .meta_json = kinfer_model_meta_json(model),
        };
        int64_t id;
        int32_t version;
        kinfer_err_t err =
            kinfer_registry_model_push(reg, &push, &id, &version, errstr, sizeof(errstr));
        free(labels);
        int rc = 0;
        if (err == KINFER_ERR__STATE && version > 0) {
                printf("%s:%d already registered (sha256 %s)\n", name, (int)version,
                       kinfer_model_sha256_hex(model));
        } else if (err) {
                cli_error("model push", "%s as %s: %s", path, name, errstr);
                rc = 1;
        } else {
                printf("registered %s:%d sha256=%s size=%zu format=%s\n", name, (int)version,
                       kinfer_model_sha256_hex(model), len, kinfer_model_format(model));
                kinfer_registry_lineage_node_t *nodes;
                size_t n;
                if (kinfer_registry_model_lineage(reg, name, version, 0, &nodes, &n, errstr,
                                                  sizeof(errstr)) == KINFER_OK) {
                        for (size_t i = 0; i < n; i++) {
                                if (nodes[i].depth != 1)
                                        continue;
                                if (nodes[i].registered)
                                        printf("  %s %s:%d\n", nodes[i].relation, nodes[i].name,
                                               (int)nodes[i].version);
                                else
                                        printf("  %s sha256=%.12s (not registered%s%s)\n",
                                               nodes[i].relation, nodes[i].sha256,
                                               nodes[i].name[0] ? "; file says " : "",
                                               nodes[i].name);
                        }
                        kinfer_registry_lineage_free(nodes, n);
                }
        }
        kinfer_model_release(model);
        return rc;
}

/* ---- ls / show ------------------------------------------------------------------------------ */

static int model_ls(kinfer_registry_t *reg, const char *name)
{
        char errstr[512];
        kinfer_registry_model_t *models;
        size_t n;
        if (kinfer_registry_model_ls(reg, name, &models, &n, errstr, sizeof(errstr))) {
                cli_error("model ls", "%s", errstr);
                return 1;
        }
        printf("%-28s %7s  %-12s %-12s %-9s %10s  %s\n", "NAME", "VERSION", "SHA256", "FORMAT",
               "METHOD", "SIZE", "CREATED");
        for (size_t i = 0; i < n; i++)
                printf("%-28s %7d  %-12.12s %-12s %-9s %10lld  %s %s\n", models[i].name,
                       (int)models[i].version, models[i].sha256, models[i].format,
                       models[i].method[0] ? models[i].method : "-", (long long)models[i].size,
                       models[i].created_at, models[i].created_by);
        if (n == 0 && name)
                fprintf(stderr, "kinfer model ls: no model named %s\n", name);
        kinfer_registry_models_free(models, n);
        return 0;
}

static void print_indented(const char *label, const char *text)
{
        printf("%s", label);
        if (!text) {
                printf(" -\n");
                return;
        }
        printf("\n");
        for (const char *p = text; *p;) {
                const char *nl = strchr(p, '\n');
                size_t len = nl ? (size_t)(nl - p) : strlen(p);
                printf("  %.*s\n", (int)len, p);
                p += len + (nl ? 1 : 0);
        }
}

static int model_show(kinfer_registry_t *reg, const char *ref)
{
        char name[129], errstr[512];
        int32_t version;
        if (cli_parse_model_ref("model show", ref, 1, name, sizeof(name), &version))
                return 2;
        kinfer_registry_model_t m;
        if (kinfer_registry_model_get(reg, name, version, 0, &m, errstr, sizeof(errstr))) {
                cli_error("model show", "%s", errstr);
                return 1;
        }
        printf("model:        %s:%d\n", m.name, (int)m.version);
        printf("sha256:       %s\n", m.sha256);
        printf("size:         %lld bytes\n", (long long)m.size);
        printf("format:       %s\n", m.format);
        printf("method:       %s\n", m.method[0] ? m.method : "-");
        printf("created:      %s by %s\n", m.created_at, m.created_by);
        printf("deployments:  %s\n", m.deployments ? m.deployments : "-");
        printf("labels (%d):  %s\n", (int)m.n_labels, m.labels ? m.labels : "");
        kinfer_registry_lineage_node_t *nodes;
        size_t n;
        if (kinfer_registry_model_lineage(reg, m.name, m.version, 0, &nodes, &n, errstr,
                                          sizeof(errstr)) == KINFER_OK) {
                int any = 0;
                for (size_t i = 0; i < n; i++) {
                        if (nodes[i].depth != 1)
                                continue;
                        printf("%s %s ",
                               any ? "             " : "parents:     ", nodes[i].relation);
                        if (nodes[i].registered)
                                printf("%s:%d", nodes[i].name, (int)nodes[i].version);
                        else
                                printf("sha256=%.12s (not registered)", nodes[i].sha256);
                        printf("\n");
                        any = 1;
                }
                if (!any)
                        printf("parents:      -\n");
                if (n > 0 && nodes[0].params)
                        printf("made with:    %s %s\n", m.method[0] ? m.method : "-",
                               nodes[0].params);
                kinfer_registry_lineage_free(nodes, n);
        }
        print_indented("hyperparameters:", m.hyperparameters);
        print_indented("evaluation:", m.evaluation);
        kinfer_registry_model_term(&m);
        return 0;
}

/* ---- lineage -------------------------------------------------------------------------------- */

static int model_lineage(kinfer_registry_t *reg, const char *ref, int descendants, int params)
{
        char name[129], errstr[512];
        int32_t version;
        if (cli_parse_model_ref("model lineage", ref, 1, name, sizeof(name), &version))
                return 2;
        if (version == 0) { /* the latest */
                kinfer_registry_model_t m;
                if (kinfer_registry_model_get(reg, name, 0, 0, &m, errstr, sizeof(errstr))) {
                        cli_error("model lineage", "%s", errstr);
                        return 1;
                }
                version = m.version;
                kinfer_registry_model_term(&m);
        }
        kinfer_registry_lineage_node_t *nodes;
        size_t n;
        if (kinfer_registry_model_lineage(reg, name, version, descendants, &nodes, &n, errstr,
                                          sizeof(errstr))) {
                cli_error("model lineage", "%s", errstr);
                return 1;
        }
        /* last[d]: the node printed last at depth d has no later sibling. */
        int last[65] = {0};
        for (size_t i = 0; i < n; i++) {
                int d = nodes[i].depth > 64 ? 64 : nodes[i].depth;
                int is_last = 1;
                for (size_t j = i + 1; j < n && nodes[j].depth >= d; j++)
                        if (nodes[j].depth == d) {
                                is_last = 0;
                                break;
                        }
                last[d] = is_last;
                for (int k = 1; k < d; k++)
                        printf("%s", last[k] ? "    " : "\u2502   ");
                if (d > 0)
                        printf("%s%s ", is_last ? "\u2514\u2500\u2500 " : "\u251c\u2500\u2500 ",
                               nodes[i].relation);
                if (nodes[i].registered)
                        printf("%s:%d", nodes[i].name, (int)nodes[i].version);
                else if (nodes[i].name[0])
                        printf("(not registered; file says %s%s%.0d)", nodes[i].name,
                               nodes[i].version ? ":" : "", (int)nodes[i].version);
                else
                        printf("(not registered)");
                printf("  sha256=%.12s", nodes[i].sha256);
                if (nodes[i].method[0])
                        printf("  %s", nodes[i].method);
                if (nodes[i].format[0])
                        printf("  %s", nodes[i].format);
                if (params && nodes[i].params && strcmp(nodes[i].params, "{}"))
                        printf("  %s", nodes[i].params);
                printf("\n");
        }
        kinfer_registry_lineage_free(nodes, n);
        return 0;
}

/* ---- pull ----------------------------------------------------------------------------------- */

static int model_pull(kinfer_registry_t *reg, const char *ref, const char *output)
{
        char name[129], errstr[512];
        int32_t version;
        if (!output) {
                cli_error("model pull", "--output FILE is required");
                return 2;
        }
        if (cli_parse_model_ref("model pull", ref, 1, name, sizeof(name), &version))
                return 2;
        kinfer_registry_model_t m;
        if (kinfer_registry_model_get(reg, name, version, 1, &m, errstr, sizeof(errstr))) {
                cli_error("model pull", "%s", errstr);
                return 1;
        }
        /* Verify before writing: the registry's bytes must be the model it claims. */
        kinfer_model_t *model = kinfer_model_load_mem(m.bytes, m.len, errstr, sizeof(errstr));
        if (!model || strcmp(kinfer_model_sha256_hex(model), m.sha256)) {
                cli_error("model pull", "%s:%d: the stored artifact is corrupt: %s", m.name,
                          (int)m.version, model ? "sha256 mismatch" : errstr);
                kinfer_model_release(model);
                kinfer_registry_model_term(&m);
                return 1;
        }
        kinfer_model_release(model);
        char tmp[4096];
        snprintf(tmp, sizeof(tmp), "%s.tmp", output);
        FILE *fp = fopen(tmp, "wb");
        int ok = fp && fwrite(m.bytes, 1, m.len, fp) == m.len;
        if (fp && fclose(fp) != 0)
                ok = 0;
        if (!ok || rename(tmp, output) != 0) {
                cli_error("model pull", "%s: %s", output, strerror(errno));
                unlink(tmp);
                kinfer_registry_model_term(&m);
                return 1;
        }
        printf("%s:%d -> %s (%zu bytes, sha256 %s)\n", m.name, (int)m.version, output, m.len,
               m.sha256);
        kinfer_registry_model_term(&m);
        return 0;
}

/* ---- dispatch ------------------------------------------------------------------------------- */

int kinfer_cmd_model(int argc, char **argv)
{
        if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
                model_usage(argc < 2 ? stderr : stdout);
                return argc < 2 ? 2 : 0;
        }
        const char *sub = argv[1];
        struct model_opts o = {0};
        int rc = model_parse(argc - 1, argv + 1, &o);
        if (rc >= 0)
                return rc;
        int nargs = argc - 1 - optind;
        char **args = argv + 1 + optind;
        char cmd[32];
        snprintf(cmd, sizeof(cmd), "model %s", sub);

        int want = !strcmp(sub, "ls") ? -1 : 1;
        if (strcmp(sub, "push") && strcmp(sub, "ls") && strcmp(sub, "show") &&
            strcmp(sub, "lineage") && strcmp(sub, "pull")) {
                cli_error("model", "unknown command \"%s\" (push, ls, show, lineage, pull)", sub);
                return 2;
        }
        if ((want == 1 && nargs != 1) || (want == -1 && nargs > 1)) {
                cli_error(cmd, "wrong number of arguments (see kinfer model --help)");
                return 2;
        }
        kinfer_registry_t *reg = cli_registry_connect(cmd, o.conninfo);
        if (!reg)
                return 1;
        if (!strcmp(sub, "push"))
                rc = model_push(reg, args[0], o.name);
        else if (!strcmp(sub, "ls"))
                rc = model_ls(reg, nargs ? args[0] : NULL);
        else if (!strcmp(sub, "show"))
                rc = model_show(reg, args[0]);
        else if (!strcmp(sub, "lineage"))
                rc = model_lineage(reg, args[0], o.descendants, o.params);
        else
                rc = model_pull(reg, args[0], o.output);
        kinfer_registry_destroy(reg);
        return rc;
}
