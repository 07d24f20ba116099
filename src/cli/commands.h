/* SPDX-License-Identifier: Apache-2.0 */
/* commands.h -- the kinfer subcommands. Each takes argv with argv[0] = the command name and
 * returns the process exit code (0 ok, 1 failure, 2 usage error). Only src/cli/ exits. */
#ifndef KINFER_CLI_COMMANDS_H
#define KINFER_CLI_COMMANDS_H

int kinfer_cmd_train(int argc, char **argv);
int kinfer_cmd_eval(int argc, char **argv);
int kinfer_cmd_test(int argc, char **argv);
int kinfer_cmd_predict(int argc, char **argv);
int kinfer_cmd_bench(int argc, char **argv);
int kinfer_cmd_inspect(int argc, char **argv);
/* compression */
int kinfer_cmd_quantize(int argc, char **argv);
int kinfer_cmd_prune(int argc, char **argv);
int kinfer_cmd_distill(int argc, char **argv);
int kinfer_cmd_import(int argc, char **argv);
/* streaming worker */
int kinfer_cmd_dev_broker(int argc, char **argv);
int kinfer_cmd_serve(int argc, char **argv);
int kinfer_cmd_produce(int argc, char **argv);
/* registry */
int kinfer_cmd_migrate(int argc, char **argv);
int kinfer_cmd_model(int argc, char **argv);
int kinfer_cmd_activate(int argc, char **argv);
int kinfer_cmd_rollback(int argc, char **argv);
int kinfer_cmd_canary(int argc, char **argv);
int kinfer_cmd_shadow(int argc, char **argv);
int kinfer_cmd_promote(int argc, char **argv);
int kinfer_cmd_abort_canary(int argc, char **argv);
int kinfer_cmd_end_shadow(int argc, char **argv);
int kinfer_cmd_deployment(int argc, char **argv);
/* `kinfer deployment drift` (cmd_drift.c): argv[0] is "drift" */
int cli_deployment_drift(int argc, char **argv);
int cli_deployment_diff(int argc, char **argv);

#endif
