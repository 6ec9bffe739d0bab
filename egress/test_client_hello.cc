#include "egress/test_client_hello.h"

#include <algorithm>
#include <cstdint>

namespace jcs::egress::testing {
namespace {

void Put16(std::string* s, size_t v) {
  s->push_back(static_cast<char>((v >> 8) & 0xff));
  s->push_back(static_cast<char>(v & 0xff));
}

void Put24(std::string* s, size_t v) {
  s->push_back(static_cast<char>((v >> 16) & 0xff));
  Put16(s, v & 0xffff);
}

}  // namespace

std::string BuildClientHello(const HelloOptions& options) {
  std::string exts;
  if (!options.server_names.empty()) {
    std::string list;
    for (const std::string& name : options.server_names) {
      list.push_back(0);  // host_name
      Put16(&list, name.size());
      list += name;
    }
    std::string ext;
    Put16(&ext, list.size());
    ext += list;
    Put16(&exts, 0);  // server_name
    Put16(&exts, ext.size());
    exts += ext;
  }
  if (options.ech) {
    Put16(&exts, 0xfe0d);
    Put16(&exts, 4);
    exts += std::string(4, '\x01');
  }
  if (options.padding > 0) {
    Put16(&exts, 21);  // padding
    Put16(&exts, options.padding);
    exts += std::string(options.padding, '\0');
  }
  std::string body;
  Put16(&body, 0x0303);
  body += std::string(32, '\x42');  // random
  body.push_back(32);               // session id
  body += std::string(32, '\x07');
  Put16(&body, 4);  // two cipher suites
  Put16(&body, 0x1301);
  Put16(&body, 0xc02f);
  body.push_back(1);  // compression: null
  body.push_back(0);
  Put16(&body, exts.size());
  body += exts;

  std::string message;
  message.push_back(1);  // client_hello
  Put24(&message, body.size());
  message += body;

  std::string out;
  const size_t step = std::max<size_t>(options.record_size, 1);
  for (size_t pos = 0; pos < message.size(); pos += step) {
    const size_t n = std::min(step, message.size() - pos);
    out.push_back(22);
    Put16(&out, 0x0301);
    Put16(&out, n);
    out.append(message, pos, n);
  }
  return out;
}

}  // namespace jcs::egress::testing
