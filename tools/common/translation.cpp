#include "translation.hpp"

#include <clocale>
#include <cstddef>
#include <cstdlib>
#include <filesystem>
#include <string_view>
#include <system_error>

#ifdef DISTDB_ENABLE_NLS
#include <libintl.h>
#endif

namespace distdb::tools {

namespace {

constexpr const char* kTextDomain = "distdb";

const char* non_empty_env(const char* name) {
  const char* value = std::getenv(name);
  return value != nullptr && value[0] != '\0' ? value : nullptr;
}

// The locale name that setlocale(LC_MESSAGES, "") would have used, as POSIX
// orders the variables.
std::string_view requested_messages_locale() {
  for (const char* name : {"LC_ALL", "LC_MESSAGES", "LANG"}) {
    if (const char* value = non_empty_env(name)) return value;
  }
  return {};
}

// "pt_BR.UTF-8@euro" -> "pt_BR": what gettext's LANGUAGE list expects.
std::string language_of(std::string_view locale_name) {
  const auto end = locale_name.find_first_of(".@");
  return std::string(locale_name.substr(0, end));
}

}  // namespace

std::string catalog_directory() {
  if (const char* dir = non_empty_env("DISTDB_LOCALEDIR")) return dir;
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    const auto relocated = exe.parent_path().parent_path() / "share" / "locale";
    if (std::filesystem::is_directory(relocated, ec)) return relocated.string();
  }
#ifdef DISTDB_LOCALEDIR
  return DISTDB_LOCALEDIR;
#else
  return {};
#endif
}

void init_translation() {
#ifdef DISTDB_ENABLE_NLS
  const bool ctype_ok = std::setlocale(LC_CTYPE, "") != nullptr;
  const bool messages_ok = std::setlocale(LC_MESSAGES, "") != nullptr;
  const std::string language = language_of(requested_messages_locale());
  if (!messages_ok && !language.empty() && language != "C" && language != "POSIX") {
    // gettext ignores LANGUAGE under the "C" locale, but not under C.UTF-8,
    // which also makes the translations come out as UTF-8.
    if (!ctype_ok) (void)std::setlocale(LC_CTYPE, "C.UTF-8");
    if (std::setlocale(LC_MESSAGES, "C.UTF-8") != nullptr) (void)setenv("LANGUAGE", language.c_str(), 0);
  }
  const std::string dir = catalog_directory();
  if (!dir.empty()) (void)bindtextdomain(kTextDomain, dir.c_str());
#endif
}

std::string fill_placeholders(std::string_view pattern, const std::vector<std::string>& args) {
  std::string out;
  out.reserve(pattern.size() + 16);
  for (std::size_t i = 0; i < pattern.size(); ++i) {
    const char c = pattern[i];
    if (c == '{' && i + 2 < pattern.size() && pattern[i + 2] == '}' && pattern[i + 1] >= '0' && pattern[i + 1] <= '9') {
      const auto index = static_cast<std::size_t>(pattern[i + 1] - '0');
      if (index < args.size()) out += args[index];
      i += 2;
      continue;
    }
    out += c;
  }
  return out;
}

const char* translate(const char* english) {
#ifdef DISTDB_ENABLE_NLS
  return dgettext(kTextDomain, english);
#else
  return english;
#endif
}

}  // namespace distdb::tools
