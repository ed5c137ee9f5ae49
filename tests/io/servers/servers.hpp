// Real servers for the store tests, on loopback: nginx serving a directory, the fault-injecting
// server (fault_server.py) and moto_server (an S3-API server, see moto_setup.py).
//
// Each runs as a child process in its own process group, on a free port, with its output in a
// log file under its work directory. Start-up waits are bounded (the port must answer within
// kStartLimit, else the test fails quoting the log); the guard kills the group when it dies, and
// the child dies with the test process (PR_SET_PDEATHSIG), so no server outlives a test run.
#pragma once

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "sfm/core/error.hpp"

extern char** environ;

namespace sfm::test {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

inline std::string read_text(const fs::path& path) {
  std::ifstream in(path);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Waits up to `limit` for child `pid` to end and returns its wait status. A child still there
// then is killed (SIGKILL; to its process group too when `group`) and reaped, and the result is
// nullopt: the wait for a child never lasts much longer than `limit`.
inline std::optional<int> reap_within(pid_t pid, std::chrono::duration<double> limit, bool group = false) {
  int status = 0;
  for (const auto deadline = std::chrono::steady_clock::now() + limit; std::chrono::steady_clock::now() < deadline;) {
    if (::waitpid(pid, &status, WNOHANG) != 0) return status;
    std::this_thread::sleep_for(20ms);
  }
  if (::waitpid(pid, &status, WNOHANG) != 0) return status;
  ::kill(group ? -pid : pid, SIGKILL);
  ::waitpid(pid, &status, 0);  // bounded: SIGKILL cannot be ignored
  return std::nullopt;
}

// A child process (argv[0] a path), killed with its process group when the guard dies.
class ChildProcess {
 public:
  ChildProcess(const std::vector<std::string>& argv, const fs::path& log,
               const std::vector<std::string>& extra_env = {}) {
    // Everything the child needs is built before fork: after it only async-signal-safe calls.
    std::vector<char*> args;
    for (const std::string& arg : argv) args.push_back(const_cast<char*>(arg.c_str()));
    args.push_back(nullptr);
    std::vector<char*> env(extra_env.size());
    for (size_t i = 0; i < extra_env.size(); ++i) env[i] = const_cast<char*>(extra_env[i].c_str());
    for (char** e = environ; *e; ++e) env.push_back(*e);
    env.push_back(nullptr);
    const std::string log_path = log.string();
    const pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) fail("fork failed for ", argv.at(0));
    if (pid_ == 0) {
      ::setpgid(0, 0);
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(127);
      const int fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
      if (fd >= 0) {
        ::dup2(fd, STDOUT_FILENO);
        ::dup2(fd, STDERR_FILENO);
      }
      ::execve(args[0], args.data(), env.data());
      ::_exit(127);
    }
    ::setpgid(pid_, pid_);  // also here, so that stop() never races the child's own setpgid
  }

  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;
  ~ChildProcess() { stop(); }

  // True while the child runs; once it has ended, its exit status is in status().
  bool running() {
    if (pid_ <= 0) return false;
    if (::waitpid(pid_, &status_, WNOHANG) == 0) return true;
    pid_ = -1;
    return false;
  }

  // SIGTERM to the group, SIGKILL if it is still there after 5 s.
  void stop() {
    if (!running()) return;
    ::kill(-pid_, SIGTERM);
    status_ = reap_within(pid_, 5s, /*group=*/true).value_or(status_);
    pid_ = -1;
  }

  int status() const { return status_; }

 private:
  pid_t pid_ = -1;
  int status_ = 0;
};

// A TCP port on 127.0.0.1 that refuses connections for as long as the guard lives: the guard's
// socket is bound to it but never listens, so connecting gets ECONNREFUSED, and no other socket can
// bind the port meanwhile (unlike a port found free and released, which anyone may take).
class ClosedPort {
 public:
  ClosedPort() : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t size = sizeof address;
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&address), size) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&address), &size) != 0) {
      if (fd_ >= 0) ::close(fd_);
      fail("cannot bind a port on 127.0.0.1");
    }
    port_ = ntohs(address.sin_port);
  }
  ClosedPort(const ClosedPort&) = delete;
  ClosedPort& operator=(const ClosedPort&) = delete;
  ~ClosedPort() { ::close(fd_); }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_;
  int port_ = 0;
};

// A port that was free on 127.0.0.1 a moment ago (the servers below retry when it was taken since).
inline int free_port() { return ClosedPort().port(); }

inline bool port_answers(int port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(uint16_t(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  ::close(fd);
  return ok;
}

// How long a server may take to answer on its port. Servers answer within a second or two on an
// idle machine, but Python ones (moto imports boto3, flask, …) take far longer while builds and
// other tests hold every core; a server that has not answered in this long never will.
inline constexpr std::chrono::seconds kStartLimit{60};

// A server child on a free port: launch(port) starts it; retried on another port if it exits
// before its port answers (the port was taken meanwhile), failing after three tries or once it
// has run kStartLimit without answering.
class Server {
 public:
  template <class Launch>
  Server(const std::string& name, const fs::path& log, Launch launch) {
    for (int attempt = 0; attempt < 3 && !process_; ++attempt) {
      port_ = free_port();
      process_ = launch(port_);
      const auto deadline = std::chrono::steady_clock::now() + kStartLimit;
      while (!port_answers(port_)) {
        if (!process_->running()) {  // exited: perhaps the port was taken; try another
          process_.reset();
          break;
        }
        if (std::chrono::steady_clock::now() > deadline)
          fail(name, " did not answer on port ", port_, " within ", kStartLimit.count(), " s; its log (",
               log.string(), "):\n", read_text(log));
        std::this_thread::sleep_for(50ms);
      }
    }
    if (!process_) fail(name, " did not start; its log (", log.string(), "):\n", read_text(log));
  }

  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  int port_ = 0;
  std::unique_ptr<ChildProcess> process_;
};

// nginx serving `root` (range requests included) on a free port; its files live in `work`.
inline Server start_nginx(const fs::path& root, const fs::path& work) {
  return Server("nginx", work / "nginx.log", [&](int port) {
    const fs::path conf = work / "nginx.conf";
    std::ofstream(conf) << "daemon off;\nmaster_process off;\n"
                        << "pid " << (work / "nginx.pid").string() << ";\n"
                        << "error_log " << (work / "nginx.log").string() << " warn;\n"
                        << "events { worker_connections 1024; }\n"
                        << "http {\n  access_log off;\n  keepalive_requests 100000;\n"
                        << "  client_body_temp_path " << (work / "body").string() << ";\n"
                        << "  proxy_temp_path " << (work / "proxy").string() << ";\n"
                        << "  fastcgi_temp_path " << (work / "fastcgi").string() << ";\n"
                        << "  uwsgi_temp_path " << (work / "uwsgi").string() << ";\n"
                        << "  scgi_temp_path " << (work / "scgi").string() << ";\n"
                        << "  server {\n    listen 127.0.0.1:" << port << ";\n"
                        << "    root " << fs::absolute(root).string() << ";\n  }\n}\n";
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{"/usr/sbin/nginx", "-e", (work / "nginx.log").string(), "-c", conf.string(),
                                 "-p", work.string()},
        work / "nginx.stdout.log");
  });
}

inline std::string servers_dir() { return std::string(SFM_SOURCE_DIR) + "/tests/io/servers"; }

// fault_server.py (see its header for the paths it answers) on a free port.
inline Server start_fault_server(const fs::path& work) {
  return Server("fault_server.py", work / "fault_server.log", [&](int port) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{SFM_VENV_PYTHON, servers_dir() + "/fault_server.py", std::to_string(port)},
        work / "fault_server.log");
  });
}

// moto_server (the venv's moto[server]) on a free port; authentication starts off.
inline Server start_moto(const fs::path& work) {
  return Server("moto_server", work / "moto.log", [&](int port) {
    return std::make_unique<ChildProcess>(
        std::vector<std::string>{SFM_VENV_PYTHON, "-m", "moto.server", "-H", "127.0.0.1", "-p", std::to_string(port)},
        work / "moto.log");
  });
}

// Runs argv (argv[0] a path) to its end within `limit`, its output going to `log`; fails if it
// exits non-zero or overruns.
inline void run_program(const std::vector<std::string>& argv, const fs::path& log, std::chrono::seconds limit = 60s) {
  std::string command;
  for (const std::string& arg : argv) command += (command.empty() ? "" : " ") + arg;
  ChildProcess process(argv, log);
  const auto deadline = std::chrono::steady_clock::now() + limit;
  while (process.running()) {
    if (std::chrono::steady_clock::now() > deadline) fail(command, " ran past ", limit.count(), " s:\n", read_text(log));
    std::this_thread::sleep_for(20ms);
  }
  if (!WIFEXITED(process.status()) || WEXITSTATUS(process.status()) != 0) fail(command, " failed:\n", read_text(log));
}

// The access key moto_setup.py created for a bucket.
struct S3Key {
  std::string access_key_id, secret_access_key;
};

// Creates `bucket` on a moto server, uploads the files under `dir` to bucket/prefix, and returns
// the access key it made (moto_setup.py setup; its log and key file go to `work`).
inline S3Key setup_moto_bucket(const Server& moto, const std::string& bucket, const std::string& prefix,
                               const fs::path& dir, const fs::path& work) {
  run_program({SFM_VENV_PYTHON, servers_dir() + "/moto_setup.py", moto.url(), "setup", bucket, prefix, dir.string(),
               (work / "credentials.json").string()},
              work / "moto_setup.log");
  const auto key = nlohmann::json::parse(read_text(work / "credentials.json"));
  return {key.at("access_key_id").get<std::string>(), key.at("secret_access_key").get<std::string>()};
}

}  // namespace sfm::test
