// Text and the parts of libstdc++ that keep global state (locale facets, iostream objects,
// random_device sources): ostringstream/istringstream, ofstream/ifstream, the same from
// at::parallel_for workers at once, std::cout/std::cerr, std::random_device tokens, std::regex,
// std::to_chars(double), plus a description of how the library was compiled.
#include <atomic>
#include <charconv>
#include <cinttypes>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <mutex>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include <ATen/Parallel.h>

#include "json.h"
#include "probes.h"

namespace conformance {
namespace {

// What a parallel_streams task writes; the same text from snprintf to compare with.
std::string task_text(int64_t task) {
  std::ostringstream os;
  os << "task " << task << ' ' << std::setprecision(17) << task * 0.1 << ' ' << std::hex << task;
  return os.str();
}

std::string task_text_c(int64_t task) {
  char buf[96];
  std::snprintf(buf, sizeof buf, "task %" PRId64 " %.17g %" PRIx64, task, task * 0.1, static_cast<uint64_t>(task));
  return buf;
}

}  // namespace

std::string format_probe() {
  std::ostringstream os;
  os << "int=" << 42 << " neg=" << -7 << " big=" << 1234567890123LL << " dbl=" << 3.5
     << " pi=" << std::setprecision(10) << 3.14159265358979 << " sci=" << std::scientific
     << std::setprecision(3) << 12345.678 << " fixed=" << std::fixed << std::setprecision(2)
     << 2.0 / 3.0 << " hex=" << std::hex << std::showbase << 255 << std::dec << std::noshowbase
     << " w=[" << std::setw(6) << std::setfill('*') << 42 << "] bool=" << std::boolalpha << true;
  std::ostringstream many;
  for (int i = 0; i < 1000; ++i) many << i * 0.25 << ',';
  return Json()
      .string("formatted", os.str())
      .integer("many_length", static_cast<int64_t>(many.str().size()))
      .string("to_string", std::to_string(-12) + "," + std::to_string(0.5))
      .str();
}

std::string istringstream_probe() {
  // From a const std::string&: the constructor every standard has.
  const std::string text = "17 2.5 word -3e2";
  std::istringstream lvalue(text);
  int64_t i = 0;
  double d = 0, e = 0;
  std::string word;
  lvalue >> i >> d >> word >> e;
  std::ostringstream parsed;
  parsed << i << '|' << d << '|' << word << '|' << e << '|' << (lvalue.fail() ? "fail" : "ok");
  // From a std::string&&: the C++20 overload (basic_istringstream(string&&, openmode)).
  std::string moved = text;
  std::istringstream rvalue(std::move(moved));
  i = 0;
  word.clear();
  rvalue >> i >> d >> word >> e;
  std::ostringstream parsed_rvalue;
  parsed_rvalue << i << '|' << d << '|' << word << '|' << e << '|' << (rvalue.fail() ? "fail" : "ok");
  return Json().string("lvalue", parsed.str()).string("rvalue", parsed_rvalue.str()).str();
}

std::string file_roundtrip(const std::string& path, int64_t lines) {
  Json out;
  {
    std::ofstream file(path);
    for (int64_t i = 0; i < lines; ++i) {
      file << "line " << i << ": " << i * i << ' ' << std::setprecision(17) << i / 7.0 << '\n';
    }
    file.close();
    out.boolean("write_ok", !file.fail());
  }
  std::ifstream file(path);
  int64_t read = 0, exact = 0;
  std::string word;
  int64_t index = 0, square = 0;
  char colon = 0;
  double seventh = 0;
  while (file >> word >> index >> colon >> square >> seventh) {
    ++read;
    exact += word == "line" && colon == ':' && index == read - 1 && square == index * index && seventh == index / 7.0;
  }
  std::ifstream sized(path, std::ios::binary | std::ios::ate);
  return out.integer("read", read).integer("exact", exact).integer("bytes", static_cast<int64_t>(sized.tellg())).str();
}

std::string parallel_streams(const std::string& directory, int64_t tasks) {
  std::mutex mutex;
  std::set<std::thread::id> threads;
  std::vector<std::string> failures;
  std::set<unsigned> random_values;
  std::atomic<int64_t> ok{0};
  at::parallel_for(0, tasks, 1, [&](int64_t begin, int64_t end) {
    for (int64_t task = begin; task < end; ++task) {
      std::string problem;
      const std::string text = task_text(task);
      if (text != task_text_c(task)) problem = "ostringstream gave '" + text + "', snprintf '" + task_text_c(task) + "'";
      const std::string path = directory + "/task-" + std::to_string(task) + ".txt";
      {
        std::ofstream file(path);
        file << text << '\n';
      }
      std::ifstream file(path);
      std::string back;
      std::getline(file, back);
      if (problem.empty() && back != text) problem = "file gave '" + back + "', wrote '" + text + "'";
      std::random_device device;
      const unsigned value = device();
      std::lock_guard<std::mutex> guard(mutex);
      threads.insert(std::this_thread::get_id());
      random_values.insert(value);
      if (problem.empty()) {
        ++ok;
      } else if (failures.size() < 5) {
        failures.push_back("task " + std::to_string(task) + ": " + problem);
      }
    }
  });
  return Json()
      .integer("tasks", tasks)
      .integer("ok", ok)
      .integer("threads", static_cast<int64_t>(threads.size()))
      .integer("distinct_random", static_cast<int64_t>(random_values.size()))
      .strings("failures", failures)
      .str();
}

void print_streams(const std::string& text) {
  std::cout << "cout: " << text << std::endl;
  std::cerr << "cerr: " << text << std::endl;
  std::clog << "clog: " << text << '\n' << std::flush;
}

std::string random_device_probe(int64_t draws) {
  Json out;
  for (const char* token : {"default", "rdrand", "rdseed", "hw", "getentropy", "arc4random", "/dev/urandom", "/dev/random", "no-such-token"}) {
    Json result;
    try {
      std::random_device device(token);
      std::set<unsigned> values;
      for (int64_t i = 0; i < draws; ++i) values.insert(device());
      result.boolean("ok", true).integer("distinct", static_cast<int64_t>(values.size()));
    } catch (const std::exception& e) {
      result.boolean("ok", false).string("error", e.what());
    }
    out.object(token, result);
  }
  return out.str();
}

std::string regex_probe() {
  Json out;
  std::smatch match;
  const std::string text = "key_42=Value-7";
  const bool matched = std::regex_match(text, match, std::regex(R"((\w+?)_(\d+)=([A-Za-z]+)-(\d))"));
  std::vector<std::string> groups;
  for (size_t i = 1; i < match.size(); ++i) groups.push_back(match[i].str());
  out.boolean("matched", matched).strings("groups", groups);
  out.string("replaced", std::regex_replace(std::string("a1b22c333d"), std::regex(R"(\d+)"), "<$&>"));
  out.boolean("icase", std::regex_search(std::string("Hello WORLD"), std::regex("world", std::regex::icase)));
  out.boolean("posix_class", std::regex_match(std::string("12345"), std::regex("[[:digit:]]+", std::regex::extended)));
  out.boolean("collate", std::regex_match(std::string("b"), std::regex("[a-c]", std::regex::collate)));
  std::vector<std::string> words;
  const std::string sentence = "one, two;three  four";
  const std::regex separator(R"([,;\s]+)");
  for (std::sregex_token_iterator it(sentence.begin(), sentence.end(), separator, -1), end; it != end; ++it) words.push_back(*it);
  out.strings("split", words);
  try {
    std::regex bad("(unclosed");
    out.string("bad_pattern", "accepted");
  } catch (const std::regex_error& e) {
    out.string("bad_pattern", e.code() == std::regex_constants::error_paren ? "error_paren" : "other");
  }
  return out.str();
}

std::string to_chars_probe(c10::ArrayRef<double> values) {
  // Per value "<shortest>|<shortest scientific>": std::to_chars without a format picks the
  // shorter of fixed and scientific; with chars_format::scientific the digits are those of the
  // shortest round trip, as in Python's repr.
  std::string out;
  for (const double value : values) {
    char plain[64], scientific[64];
    const auto a = std::to_chars(plain, plain + sizeof plain, value);
    const auto b = std::to_chars(scientific, scientific + sizeof scientific, value, std::chars_format::scientific);
    if (!out.empty()) out += ' ';
    out += a.ec == std::errc() ? std::string(plain, a.ptr) : std::string("error");
    out += '|';
    out += b.ec == std::errc() ? std::string(scientific, b.ptr) : std::string("error");
  }
  return out;
}

std::string info() {
  return Json()
      .integer("cplusplus", __cplusplus)
      .integer("glibcxx", __GLIBCXX__)
      .integer("cxx11_abi", _GLIBCXX_USE_CXX11_ABI)
      .integer("uncaught_exceptions", std::uncaught_exceptions())
#if defined(CUDA_KERNEL)
      .string("backend", "cuda")
#else
      .string("backend", "cpu")
#endif
      .str();
}

}  // namespace conformance
