// epsim report: Trace Event Format writer (see trace.h).
#include "sim/report/trace.h"

#include <algorithm>
#include <cstdio>
#include <limits>

#include "common/json.h"

namespace epsim {
namespace {

std::string Us(double seconds) {
  char buffer[40];
  std::snprintf(buffer, sizeof(buffer), "%.4f", seconds * 1e6);
  return buffer;
}

}  // namespace

TraceWriter::TraceWriter(const Topology& topology, int num_gpus, int layers)
    : topology_(topology), num_gpus_(num_gpus), layers_(layers) {
  const int nodes = (num_gpus + topology.gpus_per_node - 1) / topology.gpus_per_node;
  for (int node = 0; node < nodes; ++node) {
    events_ += "{\"name\":\"process_name\",\"ph\":\"M\",\"pid\":" + std::to_string(node) +
               ",\"tid\":0,\"args\":{\"name\":" + JsonString("node " + std::to_string(node)) +
               "}},\n";
  }
  for (int gpu = 0; gpu < num_gpus; ++gpu) {
    events_ += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" +
               std::to_string(topology.NodeOf(gpu)) + ",\"tid\":" + std::to_string(gpu) +
               ",\"args\":{\"name\":" + JsonString("gpu " + std::to_string(gpu)) + "}},\n";
  }
}

void TraceWriter::Slice(int gpu, const std::string& name, double start_s, double end_s,
                        const std::string& args) {
  if (end_s < start_s) end_s = start_s;
  events_ += "{\"name\":" + JsonString(name) + ",\"ph\":\"X\",\"pid\":" +
             std::to_string(topology_.NodeOf(gpu)) + ",\"tid\":" + std::to_string(gpu) +
             ",\"ts\":" + Us(offset_s_ + start_s) + ",\"dur\":" + Us(end_s - start_s) +
             (args.empty() ? "" : ",\"args\":{" + args + "}") + "},\n";
}

void TraceWriter::CommSlice(int gpu, const std::string& name, double start_s, double end_s) {
  const int tid = num_gpus_ + gpu;  // the GPU's communication stream, a row of its own
  if (comm_rows_.insert(gpu).second) {
    events_ += "{\"name\":\"thread_name\",\"ph\":\"M\",\"pid\":" +
               std::to_string(topology_.NodeOf(gpu)) + ",\"tid\":" + std::to_string(tid) +
               ",\"args\":{\"name\":" + JsonString("gpu " + std::to_string(gpu) + " comm") + "}},\n";
  }
  if (end_s < start_s) end_s = start_s;
  events_ += "{\"name\":" + JsonString(name) + ",\"ph\":\"X\",\"pid\":" +
             std::to_string(topology_.NodeOf(gpu)) + ",\"tid\":" + std::to_string(tid) +
             ",\"ts\":" + Us(offset_s_ + start_s) + ",\"dur\":" + Us(end_s - start_s) + "},\n";
}

void TraceWriter::Flows(int step, const std::string& phase, const std::vector<Flow>& flows,
                        const std::vector<double>& start, const std::vector<double>& end) {
  for (size_t f = 0; f < flows.size() && f < start.size(); ++f) {
    const std::string common = "\"cat\":" + JsonString(phase) + ",\"id\":" +
                               std::to_string(next_flow_id_++) + ",\"pid\":" +
                               std::to_string(topology_.NodeOf(flows[f].src)) + ",\"tid\":" +
                               std::to_string(flows[f].src);
    const std::string name = JsonString(phase + " to gpu " + std::to_string(flows[f].dst));
    events_ += "{\"name\":" + name + ",\"ph\":\"b\"," + common + ",\"ts\":" +
               Us(offset_s_ + start[f]) + ",\"args\":{\"step\":" + std::to_string(step) +
               ",\"dst_gpu\":" + std::to_string(flows[f].dst) + ",\"bytes\":" +
               JsonNumber(flows[f].bytes) + "}},\n";
    events_ += "{\"name\":" + name + ",\"ph\":\"e\"," + common + ",\"ts\":" +
               Us(offset_s_ + std::max(start[f], end[f])) + "},\n";
  }
}

void TraceWriter::AddStep(int step, int layer, Pass pass, const StepWork& work, const StepTimeline& t) {
  auto name = [pass](const char* slot) { return SlotName(pass, slot); };
  const std::string step_name = "step " + std::to_string(step) +
                                (pass == Pass::kRebalance ? " rebalance"
                                 : layers_ > 1            ? " layer " + std::to_string(layer)
                                                          : "") +
                                (pass == Pass::kBackward ? " backward" : "");
  // First flow start per GPU and phase: before it, the GPU waited for its peers to enter.
  auto first_starts = [&](const std::vector<Flow>& flows, const std::vector<double>& start) {
    std::vector<double> first(num_gpus_, std::numeric_limits<double>::infinity());
    for (size_t f = 0; f < flows.size() && f < start.size(); ++f)
      for (int g : {flows[f].src, flows[f].dst}) first[g] = std::min(first[g], start[f]);
    return first;
  };
  const std::vector<double> dispatch_first = first_starts(work.dispatch, t.dispatch_flow_start);
  const std::vector<double> combine_first = first_starts(work.combine, t.combine_flow_start);
  int slowest = 0;
  for (int g = 0; g < num_gpus_; ++g)
    if (t.gpus[g].end > t.gpus[slowest].end) slowest = g;

  for (int g = 0; g < num_gpus_; ++g) {
    const GpuTimeline& x = t.gpus[g];
    if (!x.tasks.empty()) {  // micro-batches: compute on the GPU's row, all-to-alls on its comm row
      Slice(g, step_name, 0, t.step_time_s);
      for (const TaskSpan& task : x.tasks) {
        const std::string task_name =
            SlotName(MicroBatchPass(pass, task.micro_batch), task.name) + " " + std::to_string(task.micro_batch);
        if (task.communication)
          CommSlice(g, task_name, task.start, task.end);
        else
          Slice(g, task_name, task.start, task.end);
      }
      continue;
    }
    Slice(g, step_name, 0, t.step_time_s);
    Slice(g, name("route"), 0, x.route_end);
    Slice(g, name("dispatch"), x.route_end, x.dispatch_end,
          "\"sent_bytes\":" + JsonNumber(x.dispatch_sent_bytes) +
              ",\"recv_bytes\":" + JsonNumber(x.dispatch_recv_bytes));
    // Before a call's first flow: waiting (for peers, or the call's barrier), then the
    // call's own costs, which end where the first flow starts (as the attribution has it).
    auto before_first_flow = [&](double enter, double first, double leave, double overhead, const std::string& why) {
      if (!(first > enter && first <= leave)) return;
      const double costs_start = std::max(enter, first - overhead);
      if (costs_start > enter) Slice(g, "wait", enter, costs_start, why);
      if (first > costs_start)
        Slice(g, "call costs", costs_start, first, "\"what\":\"the call's fixed and per-message costs\"");
    };
    before_first_flow(x.route_end, dispatch_first[g], x.dispatch_end, work.DispatchCost(0).OverheadS(g),
                      "\"reason\":\"peers still in " + name("route") + ", or the call's barrier: no " + name("dispatch") +
                          " flow can start\"");
    Slice(g, name("expert"), x.dispatch_end, x.expert_end);
    // An overlapped rebalance's weights, on the communication stream while the experts compute.
    if (!work.moves.empty() && x.moves_end > x.dispatch_end) CommSlice(g, "expert weights", x.dispatch_end, x.moves_end);
    Slice(g, name("combine"), x.expert_end, x.combine_end,
          "\"sent_bytes\":" + JsonNumber(x.combine_sent_bytes) +
              ",\"recv_bytes\":" + JsonNumber(x.combine_recv_bytes));
    before_first_flow(std::max(x.expert_end, x.moves_end), combine_first[g], x.combine_end, work.CombineCost(0).OverheadS(g),
                      "\"reason\":\"peers still in " + name("expert") + ", or the call's barrier: no " + name("combine") +
                          " flow can start\"");
    Slice(g, name("reduce"), x.combine_end, x.end);
    if (t.step_time_s > x.end) {
      Slice(g, "wait", x.end, t.step_time_s,
            "\"reason\":\"step done here; waiting for the slowest GPU\",\"slowest_gpu\":" +
                std::to_string(slowest));
    }
  }
  Flows(step, name("dispatch"), work.dispatch, t.dispatch_flow_start, t.dispatch_flow_end);
  Flows(step, name("combine"), work.combine, t.combine_flow_start, t.combine_flow_end);
  Flows(step, "expert weights", work.moves, t.moves_flow_start, t.moves_flow_end);
  offset_s_ += t.step_time_s;
}

std::string TraceWriter::Json() const {
  std::string body = events_;
  if (body.size() >= 2) body.erase(body.size() - 2);  // the last ",\n"
  return "{\"displayTimeUnit\":\"ms\",\"traceEvents\":[\n" + body + "\n]}\n";
}

}  // namespace epsim
