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

// One all-to-all of one micro-batch: the flows `members` of the step's `flows`. Flow start
// and arrival times (absolute) go to the step's per-flow vectors.
class Exchange {
 public:
  Exchange(const Platform& platform, const std::vector<Flow>& flows, const std::vector<int>& members,
           FlowIssue issue, std::vector<double>& flow_start, std::vector<double>& flow_arrival)
      : platform_(platform), flows_(flows), issue_(issue), flow_start_(flow_start),
        flow_arrival_(flow_arrival) {
    const int p = platform.num_gpus();
    out_flows_.resize(p);
    in_flows_.resize(p);
    entered_at_.assign(p, -1.0);
    pending_.assign(p, 0);
    done_at_.assign(p, 0.0);
    for (int i : members) {
      out_flows_[flows[i].src].push_back(i);
      in_flows_[flows[i].dst].push_back(i);
      ++pending_[flows[i].src];
      ++pending_[flows[i].dst];
    }
    for (int g = 0; g < p; ++g) wake_.push_back(sg4::Semaphore::create(0));
  }

  // Called by GPU g's communication actor: starts every flow whose peer is already in the
  // phase, then blocks until all of g's flows have arrived. Returns when g may leave.
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
  std::vector<double>& flow_start_;
  std::vector<double>& flow_arrival_;
  std::vector<std::vector<int>> out_flows_, in_flows_;
  std::vector<double> entered_at_;
  std::vector<int> pending_;
  std::vector<double> done_at_;
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
  // Current step: one exchange per micro-batch and all-to-all.
  StepWork work;
  std::vector<std::unique_ptr<Exchange>> dispatch, combine;
  double step_start = 0;
  StepTimeline timeline;
};

void PrepareStep(ReplayState& state, int step) {
  state.work = state.make_step(step);
  const StepWork& work = state.work;
  StepTimeline& t = state.timeline;
  t = StepTimeline();
  t.gpus.resize(state.platform->num_gpus());
  t.dispatch_flow_start.assign(work.dispatch.size(), 0);
  t.dispatch_flow_end.assign(work.dispatch.size(), 0);
  t.combine_flow_start.assign(work.combine.size(), 0);
  t.combine_flow_end.assign(work.combine.size(), 0);
  std::vector<std::vector<int>> dispatch_of(work.micro_batches), combine_of(work.micro_batches);
  for (int f = 0; f < static_cast<int>(work.dispatch.size()); ++f)
    dispatch_of[work.dispatch[f].micro_batch].push_back(f);
  for (int f = 0; f < static_cast<int>(work.combine.size()); ++f)
    combine_of[work.combine[f].micro_batch].push_back(f);
  state.dispatch.clear();
  state.combine.clear();
  for (int m = 0; m < work.micro_batches; ++m) {
    state.dispatch.push_back(std::make_unique<Exchange>(*state.platform, work.dispatch, dispatch_of[m],
                                                        state.issue, t.dispatch_flow_start, t.dispatch_flow_end));
    state.combine.push_back(std::make_unique<Exchange>(*state.platform, work.combine, combine_of[m],
                                                       state.issue, t.combine_flow_start, t.combine_flow_end));
  }
}

void FinishStep(ReplayState& state, int step) {
  StepTimeline& t = state.timeline;
  t.step_time_s = 0;
  for (const GpuTimeline& gpu : t.gpus) t.step_time_s = std::max(t.step_time_s, gpu.end);
  for (auto* times : {&t.dispatch_flow_start, &t.dispatch_flow_end, &t.combine_flow_start, &t.combine_flow_end})
    for (double& time : *times) time -= state.step_start;
  FillFlowTotals(state.work, t);
  state.on_step(step, state.work, t);
}

// GPU g's two streams (step_work.h): this actor is the compute stream; it starts a
// communication-stream actor per step. Semaphores carry the dependencies between them.
void GpuActor(ReplayState* state, int g) {
  for (int step = 0; step < state->num_steps; ++step) {
    if (g == 0) {
      PrepareStep(*state, step);
      state->step_start = sg4::Engine::get_clock();
    }
    state->barrier->wait();
    const double t0 = state->step_start;
    const StepWork& work = state->work;
    const int mbs = work.micro_batches;
    GpuTimeline& me = state->timeline.gpus[g];
    auto make = [mbs]() {
      std::vector<sg4::SemaphorePtr> v;
      for (int m = 0; m < mbs; ++m) v.push_back(sg4::Semaphore::create(0));
      return v;
    };
    const std::vector<sg4::SemaphorePtr> routed = make(), dispatched = make(), computed = make(), combined = make();
    auto span = [&me, mbs, t0](const char* name, int m, bool comm, double start) {
      if (mbs > 1) me.tasks.push_back({name, m, comm, start - t0, sg4::Engine::get_clock() - t0});
    };
    sg4::Actor::create("comm-" + std::to_string(g), sg4::this_actor::get_host(), [=, &me]() {
      for (int m = 0; m < mbs; ++m) {
        routed[m]->acquire();
        const double enter = sg4::Engine::get_clock();
        state->dispatch[m]->Run(g);
        span("dispatch", m, true, enter);
        if (m == mbs - 1) me.dispatch_end = sg4::Engine::get_clock() - t0;
        dispatched[m]->release();
      }
      for (int m = 0; m < mbs; ++m) {
        computed[m]->acquire();
        const double enter = sg4::Engine::get_clock();
        state->combine[m]->Run(g);
        span("combine", m, true, enter);
        if (m == mbs - 1) me.combine_end = sg4::Engine::get_clock() - t0;
        combined[m]->release();
      }
    });
    for (int m = 0; m < mbs; ++m) {
      const double start = sg4::Engine::get_clock();
      sg4::this_actor::sleep_for(work.RouteS(m, g));
      span("route", m, false, start);
      routed[m]->release();
    }
    me.route_end = sg4::Engine::get_clock() - t0;
    for (int m = 0; m < mbs; ++m) {
      dispatched[m]->acquire();
      const double start = sg4::Engine::get_clock();
      sg4::this_actor::sleep_for(work.ExpertS(m, g));
      span("expert", m, false, start);
      computed[m]->release();
    }
    me.expert_end = sg4::Engine::get_clock() - t0;
    for (int m = 0; m < mbs; ++m) {
      combined[m]->acquire();
      const double start = sg4::Engine::get_clock();
      sg4::this_actor::sleep_for(work.ReduceS(m, g));
      span("reduce", m, false, start);
    }
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
