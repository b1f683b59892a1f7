// epsim engine: step replay on SimGrid (see replay.h).
#include "sim/engine/replay.h"

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
//
// Each flow is one mailbox put/get pair: GPU g posts a put for each of its sends and a get
// for each of its receives on the pair's mailbox, from an actor on the host where the flow
// leaves or arrives (the GPU for NVLink flows, its NIC for fabric flows). SimGrid starts a
// transfer once both sides have posted: NCCL's rendezvous. Later all-to-alls reuse the
// pair's mailbox safely: a GPU enters the next one only once all its flows of this one
// have arrived, so the puts and gets of two exchanges never meet. (Host-to-host Comm::sendto
// comms held by helper actors gave the same times to 1e-6 but ran 1.5-2.6x slower at 128
// GPUs on SimGrid 3.32.)
//
// The call's cost (step_work.h) comes first: with a barrier, every GPU waits until all have
// entered; then each sleeps its overhead before posting, so that a flow starts once both of
// its GPUs are ready, as in the analytic engine.
class Exchange {
 public:
  // `link_down`: the step's links that are down (StepWork::link_down); a GPU with several
  // NICs stripes its fabric flows over the ones that are up.
  Exchange(const Platform& platform, const std::vector<Flow>& flows, const std::vector<int>& members,
           const std::vector<char>& link_down, const CallCost& cost, std::vector<double>& flow_start,
           std::vector<double>& flow_arrival)
      : platform_(platform), flows_(flows), cost_(cost), flow_start_(flow_start), flow_arrival_(flow_arrival),
        barrier_(cost.barrier ? sg4::Barrier::create(platform.num_gpus()) : nullptr) {
    const int p = platform.num_gpus();
    out_flows_.resize(p);
    in_flows_.resize(p);
    parts_seen_.assign(flows.size(), 0);
    stripes_used_.assign(flows.size(), 0);
    for (int i : members) {
      const Flow& f = flows[i];
      stripes_used_[i] = platform.layout().ForEachStripe(f.src, f.dst, f.via_fabric, &link_down, [&](int s, int) {
        out_flows_[f.src].push_back({i, s});
        in_flows_[f.dst].push_back({i, s});
      });
    }
  }

  // Called by GPU g's communication actor when g enters the all-to-all; returns when all of
  // g's flows have arrived (route latency included).
  void Run(int g) {
    if (barrier_) barrier_->wait();
    if (cost_.OverheadS(g) > 0) sg4::this_actor::sleep_for(cost_.OverheadS(g));
    double done_at = sg4::Engine::get_clock();
    std::map<sg4::Host*, std::vector<std::pair<Part, bool>>> by_host;  // (flow stripe, is_send)
    for (const Part& part : out_flows_[g]) by_host[Path(part).src].push_back({part, true});
    for (const Part& part : in_flows_[g]) by_host[Path(part).dst].push_back({part, false});
    const sg4::SemaphorePtr finished = sg4::Semaphore::create(0);
    for (const auto& [host, side] : by_host) {
      sg4::Actor::create("flows-" + std::to_string(g), host, [this, side = side, finished, &done_at]() {
        static char payload;
        void* received = nullptr;
        std::vector<sg4::CommPtr> comms;
        for (const auto& [part, is_send] : side) {
          const Flow& flow = flows_[part.first];
          sg4::Mailbox* mailbox = sg4::Mailbox::by_name(std::to_string(flow.src) + ">" + std::to_string(flow.dst) +
                                                        (part.second > 0 ? "/" + std::to_string(part.second) : ""));
          if (is_send)
            comms.push_back(
                mailbox->put_async(&payload, static_cast<uint64_t>(std::ceil(flow.bytes / stripes_used_[part.first]))));
          else
            comms.push_back(mailbox->get_async<void>(&received));
        }
        sg4::Comm::wait_all(comms);
        for (size_t i = 0; i < side.size(); ++i) {
          // A flow starts with its first stripe and arrives with its last; both ends record it.
          const auto [f, stripe] = side[i].first;
          const double start = comms[i]->get_start_time();
          const double arrival = comms[i]->get_finish_time() + Path(side[i].first).latency_s;
          flow_start_[f] = parts_seen_[f] == 0 ? start : std::min(flow_start_[f], start);
          flow_arrival_[f] = parts_seen_[f] == 0 ? arrival : std::max(flow_arrival_[f], arrival);
          ++parts_seen_[f];
          done_at = std::max(done_at, arrival);
        }
        finished->release();
      });
    }
    for (size_t i = 0; i < by_host.size(); ++i) finished->acquire();
    if (done_at > sg4::Engine::get_clock()) sg4::this_actor::sleep_until(done_at);
  }

 private:
  using Part = std::pair<int, int>;  // (flow, stripe)
  FlowPath Path(const Part& part) const {
    const Flow& f = flows_[part.first];
    return platform_.Path(f.src, f.dst, f.via_fabric, part.second);
  }

  const Platform& platform_;
  const std::vector<Flow>& flows_;
  const CallCost& cost_;
  std::vector<double>& flow_start_;
  std::vector<double>& flow_arrival_;
  std::vector<std::vector<Part>> out_flows_, in_flows_;
  std::vector<int> parts_seen_;    // per flow: stripes recorded so far (by either end)
  std::vector<int> stripes_used_;  // per flow: its stripes (each 1 / used of its bytes)
  sg4::BarrierPtr barrier_;
};

// Everything the GPU actors of one replay share.
struct ReplayState {
  Platform* platform = nullptr;
  int num_steps = 0;
  std::function<StepWork(int)> make_step;
  std::function<void(int, const StepWork&, const StepTimeline&)> on_step;
  sg4::BarrierPtr barrier;
  // Current step: one exchange per micro-batch and all-to-all.
  StepWork work;
  std::vector<std::unique_ptr<Exchange>> dispatch, combine;
  std::unique_ptr<Exchange> moves;  // the weights beside the step; null: none
  CallCost no_cost;
  double step_start = 0;
  StepTimeline timeline;
};

void PrepareStep(ReplayState& state, int step) {
  state.work = state.make_step(step);
  const StepWork& work = state.work;
  state.platform->SetLinkRates(work.link_rate);  // faults: before any of the step's flows start
  StepTimeline& t = state.timeline;
  t = StepTimeline();
  t.gpus.resize(state.platform->num_gpus());
  t.dispatch_flow_start.assign(work.dispatch.size(), 0);
  t.dispatch_flow_end.assign(work.dispatch.size(), 0);
  t.combine_flow_start.assign(work.combine.size(), 0);
  t.combine_flow_end.assign(work.combine.size(), 0);
  t.moves_flow_start.assign(work.moves.size(), 0);
  t.moves_flow_end.assign(work.moves.size(), 0);
  const std::vector<std::vector<int>> dispatch_of = FlowsByMicroBatch(work.dispatch, work.micro_batches);
  const std::vector<std::vector<int>> combine_of = FlowsByMicroBatch(work.combine, work.micro_batches);
  state.dispatch.clear();
  state.combine.clear();
  for (int m = 0; m < work.micro_batches; ++m) {
    state.dispatch.push_back(std::make_unique<Exchange>(*state.platform, work.dispatch, dispatch_of[m], work.link_down,
                                                        work.DispatchCost(m), t.dispatch_flow_start,
                                                        t.dispatch_flow_end));
    state.combine.push_back(std::make_unique<Exchange>(*state.platform, work.combine, combine_of[m], work.link_down,
                                                       work.CombineCost(m), t.combine_flow_start,
                                                       t.combine_flow_end));
  }
  state.moves.reset();
  if (!work.moves.empty()) {
    std::vector<int> all(work.moves.size());
    for (size_t i = 0; i < all.size(); ++i) all[i] = static_cast<int>(i);
    state.moves = std::make_unique<Exchange>(*state.platform, work.moves, all, work.link_down, state.no_cost,
                                             t.moves_flow_start, t.moves_flow_end);
  }
}

void FinishStep(ReplayState& state, int step) {
  StepTimeline& t = state.timeline;
  t.step_time_s = 0;
  for (const GpuTimeline& gpu : t.gpus) t.step_time_s = std::max(t.step_time_s, gpu.end);
  for (auto* times : {&t.dispatch_flow_start, &t.dispatch_flow_end, &t.combine_flow_start, &t.combine_flow_end,
                      &t.moves_flow_start, &t.moves_flow_end})
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
      // All-to-all m of a kind waits for its input, then lets its consumer go.
      auto exchanges = [&](const char* name, const std::vector<std::unique_ptr<Exchange>>& exchange,
                           const std::vector<sg4::SemaphorePtr>& input,
                           const std::vector<sg4::SemaphorePtr>& output, double& last_end) {
        for (int m = 0; m < mbs; ++m) {
          input[m]->acquire();
          const double enter = sg4::Engine::get_clock();
          exchange[m]->Run(g);
          span(name, m, true, enter);
          output[m]->release();
        }
        last_end = sg4::Engine::get_clock() - t0;
      };
      exchanges("dispatch", state->dispatch, routed, dispatched, me.dispatch_end);
      if (state->moves) {  // the weights beside the step, while the experts compute
        const double enter = sg4::Engine::get_clock();
        state->moves->Run(g);
        span("weights", 0, true, enter);
        me.moves_end = sg4::Engine::get_clock() - t0;
      }
      exchanges("combine", state->combine, computed, combined, me.combine_end);
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

void ReplaySteps(sg4::Engine& engine, Platform& platform, int num_steps,
                 const std::function<StepWork(int step)>& make_step,
                 const std::function<void(int step, const StepWork&, const StepTimeline&)>&
                     on_step) {
  ReplayState state;
  state.platform = &platform;
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
