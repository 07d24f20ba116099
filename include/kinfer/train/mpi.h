/* SPDX-License-Identifier: Apache-2.0 */
/* mpi.h -- `kinfer train` as one rank of an MPI job (mpirun -np K kinfer train ...): the
 * binding of train.h's kinfer_train_comm_t to MPI's collectives, a rank's shard of the input
 * file, the label set of all shards, and the final check that every rank built the same model.
 *
 * src/train/mpi.c is compiled against <mpi.h> when CMake finds MPI (KINFER_HAVE_MPI); without
 * it, kinfer_mpi_compiled() is 0 and kinfer_mpi_init fails with a message saying so. Every
 * function taking a comm is collective (all ranks call it, in the same order). They return
 * errors; only the CLI ends the job (kinfer_mpi_abort), so that a failure on one rank stops
 * every rank instead of leaving them waiting in a collective. */
#ifndef KINFER_TRAIN_MPI_H
#define KINFER_TRAIN_MPI_H

#include <stddef.h>
#include <stdint.h>

#include "kinfer/core/err.h"
#include "kinfer/train/train.h"

/** 1 when this build has MPI. */
int kinfer_mpi_compiled(void);
/** The number of processes a launcher (mpirun, srun, PMI/PMIx) started this one among, from
 * its environment, or 0 when no launcher did. */
int kinfer_mpi_launched_size(void);

/** MPI_Init (threads: funneled; only the calling thread talks to MPI) and the communicator.
 * @returns the comm, or NULL (see errstr). */
kinfer_train_comm_t *kinfer_mpi_init(int *argc, char ***argv, char *errstr, size_t errstr_size);
/** MPI_Finalize and free @p c. */
void kinfer_mpi_finalize(kinfer_train_comm_t *c);
/** End every rank of the job with @p code (MPI_Abort). For the CLI, after it printed why. */
void kinfer_mpi_abort(kinfer_train_comm_t *c, int code);

/**
 * @brief This rank's shard of @p path: the lines that start in its byte range
 * [size * rank / K, size * (rank + 1) / K) of the file, read from there (no rank reads the
 * file beyond its range and the end of the line that crosses it; rank 0 also streams the whole
 * file through sha256, the dataset's fingerprint). Records keep their file line numbers in
 * errors. Sets c->n_records (all shards) and remembers the shard table for the lineage.
 * A rank whose range holds no record fails (use fewer ranks than lines).
 */
kinfer_dataset_t *kinfer_mpi_load_shard(kinfer_train_comm_t *c, const char *path, char *errstr,
                                        size_t errstr_size);

/** The labels of every shard, by frequency (desc) then name, as kinfer_train's own order:
 * for opts->label_order. The names live until kinfer_mpi_finalize. */
kinfer_err_t kinfer_mpi_label_order(kinfer_train_comm_t *c, const kinfer_dataset_t *ds,
                                    const char *const **names, int32_t *n, char *errstr,
                                    size_t errstr_size);

/** Set c->syncs_per_epoch from @p sync_every (records per rank between averagings; 0 = once
 * per epoch) and the largest shard, and return the lineage parameters of the run as JSON
 * object text ({"distributed": {"engine", "ranks", "sync_every", "syncs_per_epoch", "shards":
 * [...]}}), malloc'd, or NULL on out of memory. */
char *kinfer_mpi_schedule(kinfer_train_comm_t *c, int32_t sync_every);

/** Every rank's model sha256 against rank 0's. @returns KINFER_OK when all agree, else
 * KINFER_ERR__STATE naming how many ranks differ (on every rank). */
kinfer_err_t kinfer_mpi_agree(kinfer_train_comm_t *c, const char *sha256_hex, char *errstr,
                              size_t errstr_size);

#endif
