// epsim config: faults and slowdowns a scenario injects (`faults:` key, repeatable `--fault`).
//
// Each fault is KIND:TARGET:FRACTION[@STEP], several separated by ';':
//   gpu:G:F        GPU G computes at F of its speed (route, expert GEMMs, reduce take 1/F as long)
//   nic:N.R:F      node N's NIC R (both directions) at F of its rate
//   link:NAME:F    one link, named as links.csv names it (gpu-5-nvl-up, nic-3.1-down,
//                  leaf-2-spine-0, spine-0-leaf-2, ...), at F of its rate
//   switch:NAME:F  every link of a switch (leaf-L, spine-S, core-C, numbered as in links.csv)
// from step STEP on (default 0: the whole run), with 0 < F <= 1 for a GPU and 0 <= F <= 1
// for the rest. F = 0 is a part down: flows route around it (a spine or core link or
// switch: the next spine or core of the d-mod-k order; a NIC, or a leaf with its NICs: the
// GPU's traffic through a peer's NIC over NVLink); no route left is an error.
#ifndef EPSIM_SIM_CONFIG_FAULTS_H_
#define EPSIM_SIM_CONFIG_FAULTS_H_

#include <string>
#include <vector>

namespace epsim {

enum class FaultKind { kGpu, kNic, kLink, kSwitch };

struct Fault {
  FaultKind kind = FaultKind::kGpu;
  int gpu = 0;            // kGpu
  int node = 0, nic = 0;  // kNic
  std::string part;       // kLink, kSwitch: the link's or switch's name
  double fraction = 1;    // of its speed or rate
  int from_step = 0;
  std::string text;       // as written, for messages and the report
  bool ActiveAt(int step) const { return step >= from_step; }
  bool Down() const { return fraction == 0; }
};

// Whether `f` takes down a part inside the fabric (a spine or core link or switch), which
// routes must turn around; SimGrid's fat-tree routes are fixed, so only the fast path can.
// (A NIC or leaf down is routed around in the traffic, on either engine.)
bool TurnsRoutes(const Fault& f);

// Parses `text` ("none" or faults separated by ';'); throws std::invalid_argument with what
// is wrong (the caller names the file and key).
std::vector<Fault> ParseFaults(const std::string& text);
// The faults as text again ("none" when empty), in the order given.
std::string FaultsText(const std::vector<Fault>& faults);
// One fault in words: "GPU 17 at 0.9 of its speed from step 2".
std::string DescribeFault(const Fault& fault);

}  // namespace epsim

#endif  // EPSIM_SIM_CONFIG_FAULTS_H_
