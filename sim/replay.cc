// epsim: step replay on SimGrid (see replay.h).
#include "sim/replay.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>

namespace sg4 = simgrid::s4u;

namespace epsim {
namespace {

// One all-to-all of one step, shared by the GPU actors and their lanes.
class Exchange {
 public:
  Exchange(const Platform& platform, const std::vector<Flow>& flows, FlowIssue issue)
      : platform_(platform), flows_(flows), issue_(issue) {
    const int p = platform.num_gpus();
    out_flows_.resize(p);
    in_flows_.resize(p);
    entered_at_.assign(p, -1.0);
    pending_.assign(p, 0);
    done_at_.assign(p, 0.0);
    flow_start_.assign(flows.size(), 0.0);
    flow_arrival_.assign(flows.size(), 0.0);
    for (int i = 0; i < static_cast<int>(flows.size()); ++i) {
      out_flows_[flows[i].src].push_back(i);
      in_flows_[flows[i].dst].push_back(i);
      ++pending_[flows[i].src];
      ++pending_[flows[i].dst];
    }
    for (int g = 0; g < p; ++g) wake_.push_back(sg4::Semaphore::create(0));
  }

  // Called by GPU g's actor: starts every flow whose peer is already in the phase, then
  // blocks until all of g's flows have arrived. Returns when g may leave the phase.
  void Run(int g) {
    const double now = sg4::Engine::get_clock();
    entered_at_[g] = now;
    done_at_[g] = now;
    if (issue_ == FlowIssue::kMailboxPerFlow) {
      RunMailbox(g);
    } else {
      std::vector<int> to_start;
      for (int f : out_flows_[g])
        if (entered_at_[flows_[f].dst] >= 0) to_start.push_back(f);
      for (int f : in_flows_[g])
        if (entered_at_[flows_[f].src] >= 0) to_start.push_back(f);
      for (size_t first = 0; first < to_start.size(); first += kFlowsPerLane) {
        size_t last = std::min(to_start.size(), first + kFlowsPerLane);
        std::vector<int> lane(to_start.begin() + first, to_start.begin() + last);
        sg4::Actor::create("lane", sg4::this_actor::get_host(),
                           [this, lane = std::move(lane)]() { RunLane(lane); });
      }
      const bool has_flows = !out_flows_[g].empty() || !in_flows_[g].empty();
      if (has_flows) wake_[g]->acquire();
    }
    if (done_at_[g] > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(done_at_[g]);
  }

  // Seconds during which GPU g had at least one of its flows in flight.
  double BusyTimeS(int g) const {
    std::vector<std::pair<double, double>> spans;
    for (int f : out_flows_[g]) spans.emplace_back(flow_start_[f], flow_arrival_[f]);
    for (int f : in_flows_[g]) spans.emplace_back(flow_start_[f], flow_arrival_[f]);
    std::sort(spans.begin(), spans.end());
    double busy = 0, open_start = 0, open_end = -1;
    for (const auto& [start, end] : spans) {
      if (start > open_end) {
        if (open_end > open_start) busy += open_end - open_start;
        open_start = start;
        open_end = end;
      } else {
        open_end = std::max(open_end, end);
      }
    }
    if (open_end > open_start) busy += open_end - open_start;
    return busy;
  }

  // Flow start and arrival times relative to `origin`.
  void FlowTimes(double origin, std::vector<double>& start, std::vector<double>& end) const {
    start.resize(flows_.size());
    end.resize(flows_.size());
    for (size_t f = 0; f < flows_.size(); ++f) {
      start[f] = flow_start_[f] - origin;
      end[f] = flow_arrival_[f] - origin;
    }
  }

  double BytesSent(int g) const {
    double bytes = 0;
    for (int f : out_flows_[g]) bytes += flows_[f].bytes;
    return bytes;
  }
  double BytesReceived(int g) const {
    double bytes = 0;
    for (int f : in_flows_[g]) bytes += flows_[f].bytes;
    return bytes;
  }

 private:
  // The plain replay: GPU g posts a put for each of its sends and a get for each of its
  // receives on the pair's mailbox, from an actor on the host where the flow leaves or
  // arrives (the GPU for NVLink flows, its NIC for fabric flows); SimGrid starts a
  // transfer when both sides have posted, which is NCCL's rendezvous.
  void RunMailbox(int g) {
    std::map<sg4::Host*, std::vector<std::pair<int, bool>>> by_host;  // (flow, is_send)
    for (int f : out_flows_[g])
      by_host[platform_.Path(flows_[f].src, flows_[f].dst, flows_[f].via_fabric).src].push_back({f, true});
    for (int f : in_flows_[g])
      by_host[platform_.Path(flows_[f].src, flows_[f].dst, flows_[f].via_fabric).dst].push_back({f, false});
    if (by_host.empty()) return;
    sg4::SemaphorePtr finished = sg4::Semaphore::create(0);
    for (auto& [host, side] : by_host) {
      sg4::Actor::create("flows-" + std::to_string(g), host, [this, side = side, finished]() {
        static char payload;
        std::vector<sg4::CommPtr> comms;
        void* received = nullptr;
        for (const auto& [f, is_send] : side) {
          sg4::Mailbox* mailbox = sg4::Mailbox::by_name(
              std::to_string(flows_[f].src) + ">" + std::to_string(flows_[f].dst));
          if (is_send)
            comms.push_back(mailbox->put_async(&payload, static_cast<uint64_t>(std::ceil(flows_[f].bytes))));
          else
            comms.push_back(mailbox->get_async<void>(&received));
        }
        sg4::Comm::wait_all(comms);
        for (size_t i = 0; i < side.size(); ++i) {
          const auto& [f, is_send] = side[i];
          const Flow& flow = flows_[f];
          const double latency = platform_.Path(flow.src, flow.dst, flow.via_fabric).latency_s;
          flow_start_[f] = comms[i]->get_start_time();
          flow_arrival_[f] = comms[i]->get_finish_time() + latency;
          const int gpu = is_send ? flow.src : flow.dst;
          done_at_[gpu] = std::max(done_at_[gpu], flow_arrival_[f]);
        }
        finished->release();
      });
    }
    for (size_t i = 0; i < by_host.size(); ++i) finished->acquire();
  }

  void RunLane(const std::vector<int>& lane) {
    const double now = sg4::Engine::get_clock();
    std::vector<sg4::CommPtr> comms;
    std::vector<int> comm_flow;
    std::vector<double> latency;
    for (int f : lane) {
      FlowPath path = platform_.Path(flows_[f].src, flows_[f].dst, flows_[f].via_fabric);
      flow_start_[f] = now;
      auto bytes = static_cast<uint64_t>(std::ceil(flows_[f].bytes));
      comms.push_back(sg4::Comm::sendto_init(path.src, path.dst)->set_payload_size(bytes));
      comms.back()->start();
      comm_flow.push_back(f);
      latency.push_back(path.latency_s);
    }
    while (!comms.empty()) {
      ssize_t i = sg4::Comm::wait_any(comms);
      const int f = comm_flow[i];
      const double arrival = sg4::Engine::get_clock() + latency[i];
      flow_arrival_[f] = arrival;
      Arrived(flows_[f].src, arrival);
      Arrived(flows_[f].dst, arrival);
      comms[i] = comms.back();
      comms.pop_back();
      comm_flow[i] = comm_flow.back();
      comm_flow.pop_back();
      latency[i] = latency.back();
      latency.pop_back();
    }
  }

  void Arrived(int g, double arrival) {
    done_at_[g] = std::max(done_at_[g], arrival);
    if (--pending_[g] == 0) wake_[g]->release();
  }

  const Platform& platform_;
  const std::vector<Flow>& flows_;
  const FlowIssue issue_;
  std::vector<std::vector<int>> out_flows_, in_flows_;
  std::vector<double> entered_at_;
  std::vector<int> pending_;
  std::vector<double> done_at_;
  std::vector<double> flow_start_, flow_arrival_;
  std::vector<sg4::SemaphorePtr> wake_;
};

// Everything the GPU actors of one replay share.
struct ReplayState {
  const Platform* platform = nullptr;
  FlowIssue issue = FlowIssue::kLanes;
  int num_steps = 0;
  std::function<StepWork(int)> make_step;
  std::function<void(int, const StepWork&, const StepTimeline&)> on_step;
  sg4::BarrierPtr barrier;
  // Current step.
  StepWork work;
  std::unique_ptr<Exchange> dispatch, combine;
  double step_start = 0;
  StepTimeline timeline;
};

void PrepareStep(ReplayState& state, int step) {
  state.work = state.make_step(step);
  state.dispatch = std::make_unique<Exchange>(*state.platform, state.work.dispatch, state.issue);
  state.combine = std::make_unique<Exchange>(*state.platform, state.work.combine, state.issue);
  state.timeline = StepTimeline();
  state.timeline.gpus.resize(state.platform->num_gpus());
}

void FinishStep(ReplayState& state, int step) {
  StepTimeline& timeline = state.timeline;
  timeline.step_time_s = 0;
  for (int g = 0; g < state.platform->num_gpus(); ++g) {
    GpuTimeline& gpu = timeline.gpus[g];
    gpu.dispatch_comm_s = state.dispatch->BusyTimeS(g);
    gpu.combine_comm_s = state.combine->BusyTimeS(g);
    gpu.dispatch_sent_bytes = state.dispatch->BytesSent(g);
    gpu.combine_sent_bytes = state.combine->BytesSent(g);
    gpu.dispatch_recv_bytes = state.dispatch->BytesReceived(g);
    gpu.combine_recv_bytes = state.combine->BytesReceived(g);
    timeline.step_time_s = std::max(timeline.step_time_s, gpu.end);
  }
  state.dispatch->FlowTimes(state.step_start, timeline.dispatch_flow_start, timeline.dispatch_flow_end);
  state.combine->FlowTimes(state.step_start, timeline.combine_flow_start, timeline.combine_flow_end);
  state.on_step(step, state.work, timeline);
}

void GpuActor(ReplayState* state, int g) {
  for (int step = 0; step < state->num_steps; ++step) {
    if (g == 0) {
      PrepareStep(*state, step);
      state->step_start = sg4::Engine::get_clock();
    }
    state->barrier->wait();
    const double t0 = state->step_start;
    GpuTimeline& me = state->timeline.gpus[g];
    sg4::this_actor::sleep_for(state->work.route_s[g]);
    me.route_end = sg4::Engine::get_clock() - t0;
    state->dispatch->Run(g);
    me.dispatch_end = sg4::Engine::get_clock() - t0;
    sg4::this_actor::sleep_for(state->work.expert_s[g]);
    me.expert_end = sg4::Engine::get_clock() - t0;
    state->combine->Run(g);
    me.combine_end = sg4::Engine::get_clock() - t0;
    sg4::this_actor::sleep_for(state->work.reduce_s[g]);
    me.end = sg4::Engine::get_clock() - t0;
    state->barrier->wait();
    if (g == 0) FinishStep(*state, step);
  }
}

}  // namespace

void ReplaySteps(sg4::Engine& engine, const Platform& platform, int num_steps,
                 const std::function<StepWork(int step)>& make_step,
                 const std::function<void(int step, const StepWork&, const StepTimeline&)>&
                     on_step,
                 FlowIssue issue) {
  ReplayState state;
  state.platform = &platform;
  state.issue = issue;
  state.num_steps = num_steps;
  state.make_step = make_step;
  state.on_step = on_step;
  state.barrier = sg4::Barrier::create(platform.num_gpus());
  for (int g = 0; g < platform.num_gpus(); ++g) {
    sg4::Actor::create("gpu-" + std::to_string(g), platform.GpuHost(g),
                       [&state, g]() { GpuActor(&state, g); });
  }
  engine.run();
}

}  // namespace epsim
