/* SPDX-License-Identifier: Apache-2.0 */
/* cli_train_mpi.h -- `kinfer train` under an MPI launcher (cmd_train_mpi.c). */
#ifndef KINFER_CLI_TRAIN_MPI_H
#define KINFER_CLI_TRAIN_MPI_H

#include "kinfer/train/train.h"

typedef struct cli_train_mpi_args_s {
        const char *input, *output, *dev, *name;
        int quiet, char_set;
} cli_train_mpi_args_t;

/* Train as one rank of the job with the parsed options @p o. @returns the exit code (on an
 * error the job is aborted, so the code is seen only without MPI). */
int cli_train_mpi(kinfer_train_opts_t *o, const cli_train_mpi_args_t *a);

#endif
