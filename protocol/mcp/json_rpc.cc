#include "protocol/mcp/json_rpc.h"

#include <utility>

#include "absl/strings/str_cat.h"

namespace jcs::protocol::mcp {
namespace {

using nlohmann::json;

std::optional<json> ParseBounded(std::string_view text) {
  bool too_deep = false;
  json::parser_callback_t limit =
      [&too_deep](int depth, json::parse_event_t event, json&) {
        if ((event == json::parse_event_t::object_start ||
             event == json::parse_event_t::array_start) &&
            depth >= kMaxJsonDepth) {
          too_deep = true;
          return false;
        }
        return true;
      };
  json parsed = json::parse(text.begin(), text.end(), limit,
                            /*allow_exceptions=*/false);
  if (parsed.is_discarded() || too_deep) return std::nullopt;
  return parsed;
}

bool ValidId(const json& id) {
  return id.is_string() || id.is_number_integer();
}

ParseResult Error(int code, std::string message, json id = nullptr) {
  ParseResult result;
  result.error = RpcError{code, std::move(message)};
  result.error_id = std::move(id);
  return result;
}

}  // namespace

ParseResult ParseMessage(std::string_view line) {
  std::optional<json> doc = ParseBounded(line);
  if (!doc.has_value()) {
    return Error(kParseError,
                 absl::StrCat("parse error: not a JSON document (or nested "
                              "deeper than ",
                              kMaxJsonDepth, " levels)"));
  }
  if (doc->is_array()) {
    return Error(kInvalidRequest,
                 "invalid request: JSON-RPC batches are not supported; send "
                 "one message per line");
  }
  if (!doc->is_object()) {
    return Error(kInvalidRequest,
                 "invalid request: expected a JSON-RPC 2.0 object");
  }
  // The id first, so every later error can carry it.
  const auto id_it = doc->find("id");
  const bool has_id = id_it != doc->end();
  json id = has_id && ValidId(*id_it) ? *id_it : json(nullptr);
  if (has_id && !ValidId(*id_it)) {
    return Error(kInvalidRequest,
                 "invalid request: id must be a string or an integer");
  }
  const auto version = doc->find("jsonrpc");
  if (version == doc->end() || *version != "2.0") {
    return Error(kInvalidRequest, "invalid request: jsonrpc must be \"2.0\"",
                 id);
  }
  const auto method = doc->find("method");
  if (method == doc->end()) {
    const bool has_result = doc->contains("result");
    const bool has_error = doc->contains("error");
    if (has_id && has_result != has_error) {
      ParseResult result;
      result.message =
          Message{Message::Kind::kResponse, std::move(id), "", nullptr};
      return result;
    }
    return Error(kInvalidRequest,
                 "invalid request: expected a method (or, for a response, an "
                 "id and exactly one of result and error)",
                 id);
  }
  if (!method->is_string()) {
    return Error(kInvalidRequest, "invalid request: method must be a string",
                 id);
  }
  json params = nullptr;
  if (const auto it = doc->find("params"); it != doc->end()) {
    if (!it->is_object()) {
      return Error(kInvalidParams,
                   "invalid params: params must be an object (MCP methods "
                   "take named parameters)",
                   id);
    }
    params = std::move(*it);
  }
  ParseResult result;
  result.message =
      Message{has_id ? Message::Kind::kRequest : Message::Kind::kNotification,
              std::move(id), method->get<std::string>(), std::move(params)};
  return result;
}

json ResultResponse(const json& id, json result) {
  return {{"jsonrpc", "2.0"}, {"id", id}, {"result", std::move(result)}};
}

json ErrorResponse(const json& id, const RpcError& error) {
  return {{"jsonrpc", "2.0"},
          {"id", id},
          {"error", {{"code", error.code}, {"message", error.message}}}};
}

json Notification(std::string_view method, json params) {
  return {{"jsonrpc", "2.0"},
          {"method", std::string(method)},
          {"params", std::move(params)}};
}

std::string SerializeLine(const json& message) {
  std::string line =
      message.dump(-1, ' ', false, json::error_handler_t::replace);
  line += '\n';
  return line;
}

void LineReader::Feed(std::string_view bytes) {
  while (!bytes.empty()) {
    const size_t newline = bytes.find('\n');
    const std::string_view piece = bytes.substr(
        0, newline == std::string_view::npos ? bytes.size() : newline);
    if (!discarding_) {
      // One byte over the bound may be the "\r" of a line exactly at it.
      if (partial_.size() + piece.size() > max_bytes_ + 1) {
        discarding_ = true;
        partial_.clear();
        partial_.shrink_to_fit();
        ready_.push_back(Item{true, ""});
      } else {
        partial_.append(piece);
      }
    }
    if (newline == std::string_view::npos) break;
    EndLine();
    bytes.remove_prefix(newline + 1);
  }
}

void LineReader::EndLine() {
  if (discarding_) {
    discarding_ = false;
    return;
  }
  std::string line = std::move(partial_);
  partial_.clear();
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.size() > max_bytes_) {
    ready_.push_back(Item{true, ""});
    return;
  }
  if (line.find_first_not_of(" \t\r") == std::string::npos) return;
  ready_.push_back(Item{false, std::move(line)});
}

std::optional<LineReader::Item> LineReader::Next() {
  if (ready_.empty()) return std::nullopt;
  Item item = std::move(ready_.front());
  ready_.pop_front();
  return item;
}

}  // namespace jcs::protocol::mcp
