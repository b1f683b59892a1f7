// epsim cli: the epsim commands, each a thin layer over a library call: parse the command
// line (common/command_line.h: `--flag value` or `--flag=value`), call, print. Each
// returns the exit status: 0 done, 1 the run failed, 2 bad input (one line on stderr).
#ifndef EPSIM_SIM_CLI_COMMANDS_H_
#define EPSIM_SIM_CLI_COMMANDS_H_

namespace epsim {

// `epsim [simulate] [SCENARIO] [--flag VALUE ...] [--out DIR] [--trace FILE]`: one run
// (RunSimulation). Also what each run of a sweep calls in its child process.
int RunSimulateCommand(int argc, char** argv);
// `epsim sweep SWEEP.yaml --out DIR [--jobs N] [--dry-run]` (sim/sweep/sweep_runner.h).
int RunSweepCommand(int argc, char** argv);
// `epsim compare [SCENARIO] --vary FLAG=V1,V2 ... [--FLAG VALUE ...]` (sim/sweep/compare.h).
int RunCompareCommand(int argc, char** argv);
// `epsim fabric-check --profile PROFILE --topology TOPOLOGY` (sim/report/fabric_check.h).
int RunFabricCheckCommand(int argc, char** argv);
// `epsim cost --profile PROFILE --op gemm|expert|route|permute|combine SHAPE...` or
// `--csv CASES.csv` (sim/report/cost_report.h).
int RunCostCommand(int argc, char** argv);

}  // namespace epsim

#endif  // EPSIM_SIM_CLI_COMMANDS_H_
