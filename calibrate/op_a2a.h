// epsim calibration: the MPI world shared by the CLI and the all-to-all sweep.
#ifndef EPSIM_CALIBRATE_OP_A2A_H_
#define EPSIM_CALIBRATE_OP_A2A_H_

#include "kernels/all_to_all.h"

namespace epsim {
namespace calib {

// The process's MPI communicator when it was started by mpirun and built with MPI;
// otherwise null (then everything runs as one process).
kernels::MpiAllToAll* SharedMpi();

}  // namespace calib
}  // namespace epsim

#endif  // EPSIM_CALIBRATE_OP_A2A_H_
