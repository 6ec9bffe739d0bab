#include "runtime/conversation/llm_openai.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstring>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "base/unique_fd.h"
#include "runtime/conversation/llm_error.h"
#include "runtime/conversation/openai_tool_names.h"
#include "runtime/conversation/openai_wire.h"
#include "telemetry/redact.h"

namespace jcs::runtime::conversation {
namespace {

// Debian's Abseil 20220623 has no StrContainsIgnoreCase.
bool ContainsIgnoreCase(absl::string_view haystack, absl::string_view needle) {
  return absl::StrContains(absl::AsciiStrToLower(haystack),
                           absl::AsciiStrToLower(needle));
}

constexpr size_t kMaxKeyFileBytes = 4096;
// What of a 4xx/5xx body is kept for the error message.
constexpr size_t kMaxErrorBodyBytes = 64 << 10;

// A key goes into an HTTP header: one line of printable ASCII, no spaces.
bool IsHeaderSafeKey(absl::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (c <= ' ' || c > '~') return false;
  }
  return true;
}

absl::StatusOr<std::string> ReadKeyFile(const std::string& path) {
  UniqueFd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK));
  struct stat st;
  if (!fd.valid() || fstat(fd.get(), &st) != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "llm_api_key_file \"", path, "\": cannot open: ", strerror(errno)));
  }
  if (!S_ISREG(st.st_mode) ||
      st.st_size > static_cast<off_t>(kMaxKeyFileBytes)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "llm_api_key_file \"", path, "\": expected a regular file of at most ",
        kMaxKeyFileBytes, " bytes"));
  }
  std::string text(kMaxKeyFileBytes + 1, '\0');
  ssize_t n = read(fd.get(), text.data(), text.size());
  if (n < 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "llm_api_key_file \"", path, "\": cannot read: ", strerror(errno)));
  }
  text.resize(n);
  return std::string(absl::StripAsciiWhitespace(text));
}

// The status with the key cut out of its message and the message redacted
// (a provider may echo what it was sent), its error kind kept.
absl::Status Scrub(const absl::Status& status, const std::string& key) {
  if (status.ok()) return status;
  std::string message(status.message());
  if (!key.empty()) {
    message = absl::StrReplaceAll(message, {{key, telemetry::kRedacted}});
  }
  message = telemetry::RedactString(message);
  absl::Status out(status.code(), message);
  std::string kind = LlmErrorKind(status);
  if (!kind.empty()) out.SetPayload(kLlmErrorPayloadUrl, absl::Cord(kind));
  return out;
}

absl::StatusCode CodeForHttpStatus(int status) {
  switch (status) {
    case 400:
      return absl::StatusCode::kInvalidArgument;
    case 401:
      return absl::StatusCode::kUnauthenticated;
    case 403:
      return absl::StatusCode::kPermissionDenied;
    case 404:
      return absl::StatusCode::kNotFound;
    case 429:
      return absl::StatusCode::kResourceExhausted;
    default:
      return status >= 500 ? absl::StatusCode::kUnavailable
                           : absl::StatusCode::kFailedPrecondition;
  }
}

}  // namespace

struct OpenAiAdapter::Call {
  uint64_t id = 0;
  UniqueFd cancel_fd;  // an eventfd, written once to cancel
  std::atomic<bool> cancelled{false};

  void Cancel() {
    cancelled = true;
    uint64_t one = 1;
    // The eventfd counter cannot overflow from one write; nothing to handle.
    (void)!write(cancel_fd.get(), &one, sizeof(one));
  }
};

// Loop-thread state, shared with the tasks the request threads post (they
// hold it weakly: after the adapter is gone they do nothing).
struct OpenAiAdapter::Core {
  EventLoop* loop = nullptr;
  struct Pending {
    std::shared_ptr<Call> call;
    std::function<void(std::string)> on_delta;
    std::function<void(absl::StatusOr<LlmResponse>)> done;
  };
  std::map<uint64_t, Pending> pending;
  std::map<uint64_t, std::thread> threads;
  uint64_t next_id = 1;
};

absl::StatusOr<OpenAiOptions> OpenAiOptionsFromRuntime(
    const ValidatedOptions& options,
    const std::function<const char*(const char*)>& getenv_fn) {
  OpenAiOptions out;
  out.base_url = options.llm_base_url;
  out.stream = options.llm_stream;
  out.default_model = options.llm_model.value_or("");
  absl::StatusOr<HttpUrl> url = ParseBaseUrl(out.base_url);
  if (!url.ok()) return url.status();
  std::string source;
  if (options.llm_api_key_file.has_value()) {
    absl::StatusOr<std::string> key = ReadKeyFile(*options.llm_api_key_file);
    if (!key.ok()) return key.status();
    out.api_key = *std::move(key);
    source =
        absl::StrCat("llm_api_key_file \"", *options.llm_api_key_file, "\"");
  } else {
    const char* value = getenv_fn(options.llm_api_key_env.c_str());
    out.api_key =
        value != nullptr ? std::string(absl::StripAsciiWhitespace(value)) : "";
    source = absl::StrCat("the environment variable ", options.llm_api_key_env,
                          " (llm_api_key_env)");
  }
  if (out.api_key.empty() && !IsLoopbackHost(url->host)) {
    return absl::FailedPreconditionError(
        absl::StrCat("llm_adapter openai: no API key in ", source,
                     ": set the variable in the daemon's environment or point "
                     "llm_api_key_file at a file holding the key"));
  }
  if (!out.api_key.empty() && !IsHeaderSafeKey(out.api_key)) {
    return absl::FailedPreconditionError(
        absl::StrCat("llm_adapter openai: the API key in ", source,
                     " is not one line of printable ASCII without spaces"));
  }
  return out;
}

absl::StatusOr<std::unique_ptr<OpenAiAdapter>> OpenAiAdapter::Create(
    EventLoop* loop, OpenAiOptions options) {
  absl::StatusOr<HttpUrl> url = ParseBaseUrl(options.base_url);
  if (!url.ok()) return url.status();
  if (!options.api_key.empty() && !IsHeaderSafeKey(options.api_key)) {
    return absl::InvalidArgumentError(
        "the API key is not one line of printable ASCII without spaces");
  }
  if (options.max_concurrent < 1 || options.max_response_bytes < 1) {
    return absl::InvalidArgumentError(
        "max_concurrent and max_response_bytes must be positive");
  }
  return std::unique_ptr<OpenAiAdapter>(
      new OpenAiAdapter(loop, std::move(options), *std::move(url)));
}

OpenAiAdapter::OpenAiAdapter(EventLoop* loop, OpenAiOptions options,
                             HttpUrl url)
    : options_(std::move(options)),
      url_(std::move(url)),
      core_(std::make_shared<Core>()) {
  core_->loop = loop;
}

OpenAiAdapter::~OpenAiAdapter() {
  CancelAll();
  // A thread inside getaddrinfo ends when the resolver gives up; every other
  // wait of a request ends at once on its cancel descriptor.
  for (auto& [id, thread] : core_->threads) thread.join();
  core_->threads.clear();
}

size_t OpenAiAdapter::running() const { return core_->threads.size(); }

nlohmann::json OpenAiAdapter::Describe() const {
  return {{"provider", "openai"},
          {"base_url", options_.base_url},
          {"stream", options_.stream},
          {"auth", options_.api_key.empty() ? "none" : "bearer"}};
}

void OpenAiAdapter::CancelAll() {
  for (auto& [id, pending] : core_->pending) pending.call->Cancel();
  core_->pending.clear();
}

void OpenAiAdapter::Complete(
    LlmRequest request, std::function<void(std::string delta)> on_delta,
    std::function<void(absl::StatusOr<LlmResponse>)> done) {
  // Errors found here are reported from a posted task too: `done` never
  // runs inside Complete().
  auto fail = [this, &done](absl::Status status) {
    absl::Status posted = core_->loop->Post(
        [done = std::move(done), status = std::move(status)]() mutable {
          done(std::move(status));
        });
    (void)posted;  // a full loop queue drops the call: nothing else can run
  };
  if (core_->threads.size() >= static_cast<size_t>(options_.max_concurrent)) {
    return fail(LlmError(absl::StatusCode::kResourceExhausted, kLlmOverloaded,
                         absl::StrCat(options_.max_concurrent,
                                      " model requests are already running")));
  }
  std::vector<std::string> tool_names;
  for (const LlmToolSpec& tool : request.tools) tool_names.push_back(tool.name);
  auto names = std::make_shared<ToolNameMap>(tool_names);
  if (request.model.empty()) request.model = options_.default_model;
  absl::StatusOr<nlohmann::json> body =
      BuildChatRequestBody(request, *names, options_.stream);
  if (!body.ok()) return fail(body.status());

  auto call = std::make_shared<Call>();
  call->id = core_->next_id++;
  call->cancel_fd.Reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!call->cancel_fd.valid()) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("llm request: eventfd: ", strerror(errno))));
  }
  HttpCall http;
  http.url = url_;
  // url_.path is "" or starts with '/' (ParseBaseUrl).
  http.target = absl::StrCat(url_.path, "/chat/completions");
  http.headers = {
      {"Content-Type", "application/json"},
      {"Accept", options_.stream ? "text/event-stream" : "application/json"},
      {"User-Agent", "jcs"}};
  if (!options_.api_key.empty()) {
    http.headers.push_back(
        {"Authorization", absl::StrCat("Bearer ", options_.api_key)});
  }
  http.body =
      body->dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  http.deadline =
      absl::Now() +
      absl::Milliseconds(request.timeout_ms > 0 ? request.timeout_ms : 30000);
  http.cancel_fd = call->cancel_fd.get();
  http.max_body_bytes = options_.max_response_bytes;

  try {
    std::thread thread(&OpenAiAdapter::Run, core_, call, std::move(http),
                       options_.stream, std::move(names), options_.api_key);
    core_->threads.emplace(call->id, std::move(thread));
  } catch (const std::system_error& e) {
    return fail(absl::ResourceExhaustedError(
        absl::StrCat("llm request: cannot start a thread: ", e.what())));
  }
  core_->pending[call->id] = {call, std::move(on_delta), std::move(done)};
}

void OpenAiAdapter::Run(std::shared_ptr<Core> core_ref,
                        std::shared_ptr<Call> call, HttpCall http, bool stream,
                        std::shared_ptr<ToolNameMap> names,
                        std::string api_key) {
  EventLoop* loop = core_ref->loop;
  std::weak_ptr<Core> weak = core_ref;
  // The thread must not own the loop-side state: the last reference to it
  // would then drop here, destroying callbacks off the loop.
  core_ref.reset();
  const uint64_t id = call->id;

  // Deltas are a preview; the final response carries every chunk, so a
  // delta dropped on a full loop queue loses nothing.
  auto post_delta = [loop, weak, id](std::string delta) {
    (void)loop->Post([weak, id, delta = std::move(delta)]() mutable {
      std::shared_ptr<Core> core = weak.lock();
      if (!core) return;
      auto it = core->pending.find(id);
      if (it != core->pending.end() && it->second.on_delta) {
        it->second.on_delta(std::move(delta));
      }
    });
  };

  int http_status = 0;
  bool event_stream = false;
  std::string body;
  StreamAssembler assembler(*names, post_delta);
  SseDecoder decoder(
      [&assembler](std::string data) { return assembler.OnEvent(data); });
  // Returned by on_body to stop reading a long error body; not an error.
  const absl::Status enough = absl::AbortedError("error body read");

  absl::Status status = HttpExchange(
      http,
      [&](const HttpResponseHead& head) {
        http_status = head.status;
        // A server that ignores `stream: true` answers with one JSON body.
        event_stream = stream && head.status / 100 == 2 &&
                       ContainsIgnoreCase(head.Header("content-type"),
                                          "text/event-stream");
        return absl::OkStatus();
      },
      [&](absl::string_view bytes) -> absl::Status {
        if (http_status / 100 != 2) {
          absl::string_view keep =
              bytes.substr(0, kMaxErrorBodyBytes - body.size());
          body.append(keep.data(), keep.size());
          return body.size() >= kMaxErrorBodyBytes ? enough : absl::OkStatus();
        }
        if (event_stream) {
          if (absl::Status s = decoder.Feed(bytes); !s.ok()) return s;
          // Stop reading at [DONE]: a server may keep the connection open.
          return assembler.done() ? enough : absl::OkStatus();
        }
        body.append(bytes.data(), bytes.size());
        return absl::OkStatus();
      });

  absl::StatusOr<LlmResponse> result;
  if (!status.ok() && status != enough) {
    result = status;
  } else if (http_status / 100 != 2) {
    result = LlmError(CodeForHttpStatus(http_status), kLlmHttpError,
                      absl::StrCat("the provider answered HTTP ", http_status,
                                   ": ", ProviderErrorMessage(body)));
  } else if (event_stream) {
    result = assembler.Finish();
  } else {
    result = ParseChatCompletion(body, *names);
  }
  if (!result.ok()) result = Scrub(result.status(), api_key);

  // The result must arrive exactly once: retry while the loop's queue is
  // full, until the request is cancelled (then nobody waits for it).
  auto deliver = [weak, id, result = std::move(result)]() mutable {
    std::shared_ptr<Core> core = weak.lock();
    if (!core) return;
    // The thread posted this as its last act; joining waits for it to
    // return, which takes microseconds.
    auto thread = core->threads.find(id);
    if (thread != core->threads.end()) {
      thread->second.join();
      core->threads.erase(thread);
    }
    auto it = core->pending.find(id);
    if (it == core->pending.end()) return;
    auto done = std::move(it->second.done);
    core->pending.erase(it);
    done(std::move(result));
  };
  auto task = std::make_shared<decltype(deliver)>(std::move(deliver));
  while (!loop->Post([task] { (*task)(); }).ok()) {
    pollfd pfd = {call->cancel_fd.get(), POLLIN, 0};
    if (call->cancelled || poll(&pfd, 1, 10) > 0) break;
  }
}

}  // namespace jcs::runtime::conversation
