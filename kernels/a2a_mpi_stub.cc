// epsim kernels: stand-in for a2a_mpi.cc when the build found no mpi.h (or was asked to
// leave MPI out, as for the GPU bundle): every entry point says MPI is missing.
#include <cstdlib>
#include <string>
#include <vector>

#include "kernels/all_to_all.h"
#include "kernels/ep_ops.h"

namespace epsim {
namespace kernels {
namespace {
const char kWhy[] =
    "built without MPI (install libopenmpi-dev and openmpi-bin, then rebuild; the GPU bundle "
    "leaves MPI out on purpose)";
}  // namespace

bool MpiAllToAll::Available(std::string* why) {
  if (why) *why = kWhy;
  return false;
}
bool MpiAllToAll::LaunchedByMpirun() {
  return std::getenv("OMPI_COMM_WORLD_SIZE") != nullptr || std::getenv("PMI_SIZE") != nullptr;
}
MpiAllToAll::MpiAllToAll() { throw KernelError(std::string("a2a (mpi): ") + kWhy); }
std::vector<int64_t> MpiAllToAll::ExchangeCounts(const std::vector<int64_t>&) { return {}; }
void MpiAllToAll::AllToAllV(const void*, const int64_t*, void*, const int64_t*) {}
void MpiAllToAll::Barrier() {}
double MpiAllToAll::MaxOverRanks(double value) { return value; }
std::string MpiAllToAll::Version() { return ""; }

}  // namespace kernels
}  // namespace epsim
