// epsim tests: runs a function in a child process and returns the numbers it produced.
//
// SimGrid keeps one engine per process (a second engine does not reset the clock), so
// every test that replays steps runs its simulation in a fork.
#ifndef EPSIM_TESTS_SIM_FORK_RUNNER_H_
#define EPSIM_TESTS_SIM_FORK_RUNNER_H_

#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

namespace epsim::testing {

inline std::vector<double> RunInChild(const std::function<std::vector<double>()>& body) {
  int fds[2];
  if (pipe(fds) != 0) throw std::runtime_error("pipe failed");
  std::fflush(nullptr);
  pid_t pid = fork();
  if (pid == 0) {
    close(fds[0]);
    int status = 0;
    try {
      std::vector<double> out = body();
      size_t n = out.size();
      if (write(fds[1], &n, sizeof(n)) != sizeof(n)) status = 3;
      if (n > 0 && write(fds[1], out.data(), n * sizeof(double)) != static_cast<ssize_t>(n * sizeof(double)))
        status = 3;
    } catch (const std::exception& e) {
      std::fprintf(stderr, "child failed: %s\n", e.what());
      status = 4;
    }
    close(fds[1]);
    _exit(status);
  }
  close(fds[1]);
  size_t n = 0;
  std::vector<double> out;
  if (read(fds[0], &n, sizeof(n)) == sizeof(n)) {
    out.resize(n);
    size_t got = 0;
    while (got < n * sizeof(double)) {
      ssize_t r = read(fds[0], reinterpret_cast<char*>(out.data()) + got, n * sizeof(double) - got);
      if (r <= 0) break;
      got += static_cast<size_t>(r);
    }
  }
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    throw std::runtime_error("simulation child failed with status " + std::to_string(status));
  return out;
}

}  // namespace epsim::testing

#endif  // EPSIM_TESTS_SIM_FORK_RUNNER_H_
