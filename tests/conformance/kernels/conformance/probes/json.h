// A minimal JSON object writer for the probes' results (the test decodes them with json.loads).
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace conformance {

inline std::string json_quote(const std::string& text) {
  std::string out = "\"";
  for (const char c : text) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(static_cast<unsigned char>(c)));
          out += buf;
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

class Json {
 public:
  Json& integer(const char* key, int64_t value) { return raw(key, std::to_string(value)); }
  Json& boolean(const char* key, bool value) { return raw(key, value ? "true" : "false"); }
  Json& string(const char* key, const std::string& value) { return raw(key, json_quote(value)); }
  Json& object(const char* key, const Json& value) { return raw(key, value.str()); }
  Json& strings(const char* key, const std::vector<std::string>& values) {
    std::string list = "[";
    for (size_t i = 0; i < values.size(); ++i) {
      list += (i ? "," : "") + json_quote(values[i]);
    }
    return raw(key, list + "]");
  }
  Json& integers(const char* key, const std::vector<int64_t>& values) {
    std::string list = "[";
    for (size_t i = 0; i < values.size(); ++i) {
      list += (i ? "," : "") + std::to_string(values[i]);
    }
    return raw(key, list + "]");
  }
  Json& raw(const char* key, const std::string& json) {
    body_ += (body_.empty() ? "" : ",") + json_quote(key) + ":" + json;
    return *this;
  }
  std::string str() const { return "{" + body_ + "}"; }

 private:
  std::string body_;
};

}  // namespace conformance
