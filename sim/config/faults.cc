// epsim config: fault parsing (see faults.h).
#include "sim/config/faults.h"

#include <stdexcept>

#include "common/numbers.h"

namespace epsim {
namespace {

std::string Trim(const std::string& s) {
  const size_t begin = s.find_first_not_of(" \t");
  if (begin == std::string::npos) return "";
  return s.substr(begin, s.find_last_not_of(" \t") - begin + 1);
}

int WholeNumber(const std::string& text, const std::string& what) {
  int64_t n = 0;
  if (!ParseInt64(text, &n) || n < 0 || n > 1'000'000'000) throw std::invalid_argument(what + " '" + text + "' is not a whole number >= 0");
  return static_cast<int>(n);
}

Fault ParseOne(const std::string& text) {
  Fault f;
  f.text = text;
  std::string body = text;
  const size_t at = body.find('@');
  if (at != std::string::npos) {
    f.from_step = WholeNumber(body.substr(at + 1), "'" + text + "': the step after '@'");
    body = body.substr(0, at);
  }
  const size_t first = body.find(':'), last = body.rfind(':');
  if (first == std::string::npos || first == last)
    throw std::invalid_argument("'" + text + "': expected KIND:TARGET:FRACTION[@STEP] (KIND gpu, nic, link or switch)");
  const std::string kind = body.substr(0, first), target = body.substr(first + 1, last - first - 1),
                    fraction = body.substr(last + 1);
  if (!ParseFiniteDouble(fraction, &f.fraction) || f.fraction < 0 || f.fraction > 1)
    throw std::invalid_argument("'" + text + "': the fraction '" + fraction + "' must be a number in [0, 1] (0: down)");
  if (kind == "gpu") {
    if (f.fraction == 0)
      throw std::invalid_argument("'" + text + "': a GPU down takes its experts with it, which epsim does not model "
                                  "(run one GPU fewer); give a fraction in (0, 1]");
    f.kind = FaultKind::kGpu;
    f.gpu = WholeNumber(target, "'" + text + "': the GPU");
  } else if (kind == "nic") {
    f.kind = FaultKind::kNic;
    const size_t dot = target.find('.');
    if (dot == std::string::npos) throw std::invalid_argument("'" + text + "': a NIC is NODE.RAIL, e.g. nic:3.1:0.5");
    f.node = WholeNumber(target.substr(0, dot), "'" + text + "': the node");
    f.nic = WholeNumber(target.substr(dot + 1), "'" + text + "': the NIC");
  } else if (kind == "link" || kind == "switch") {
    f.kind = kind == "link" ? FaultKind::kLink : FaultKind::kSwitch;
    if (target.empty()) throw std::invalid_argument("'" + text + "': no " + kind + " name");
    f.part = target;
  } else {
    throw std::invalid_argument("'" + text + "': unknown kind '" + kind + "' (gpu, nic, link or switch)");
  }
  return f;
}

}  // namespace

std::vector<Fault> ParseFaults(const std::string& text) {
  std::vector<Fault> faults;
  if (Trim(text) == "none") return faults;
  size_t begin = 0;
  while (begin <= text.size()) {
    const size_t end = std::min(text.find(';', begin), text.size());
    const std::string one = Trim(text.substr(begin, end - begin));
    if (one.empty()) throw std::invalid_argument("an empty fault between ';'");
    faults.push_back(ParseOne(one));
    begin = end + 1;
  }
  return faults;
}

bool TurnsRoutes(const Fault& f) {
  if (!f.Down()) return false;
  const auto starts = [&](const char* prefix) { return f.part.rfind(prefix, 0) == 0; };
  if (f.kind == FaultKind::kSwitch) return starts("spine-") || starts("core-");
  return f.kind == FaultKind::kLink && (starts("leaf-") || starts("spine-") || starts("core-"));
}

std::string FaultsText(const std::vector<Fault>& faults) {
  if (faults.empty()) return "none";
  std::string out;
  for (const Fault& f : faults) out += (out.empty() ? "" : ";") + f.text;
  return out;
}

std::string DescribeFault(const Fault& f) {
  const std::string from = f.from_step > 0 ? " from step " + std::to_string(f.from_step) : "";
  switch (f.kind) {
    case FaultKind::kGpu: return StrFormat("GPU %d at %g of its speed", f.gpu, f.fraction) + from;
    case FaultKind::kNic:
      return StrFormat("nic-%d.%d ", f.node, f.nic) + (f.Down() ? "down" : StrFormat("at %g of its rate", f.fraction)) + from;
    case FaultKind::kLink:
      return f.part + (f.Down() ? " down" : StrFormat(" at %g of its rate", f.fraction)) + from;
    case FaultKind::kSwitch:
      return "switch " + f.part + (f.Down() ? " down" : StrFormat(" at %g of its links' rate", f.fraction)) + from;
  }
  return f.text;
}

}  // namespace epsim
