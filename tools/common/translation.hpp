// Translated messages for distdb's tools (gettext, text domain "distdb").
//
// The prototype's users speak Portuguese: under a Portuguese locale the
// tools speak it too, from the catalogs in po/ that Meson's i18n module
// compiles and installs. English is the source language, so an untranslated
// or missing catalog only means English.
//
// Strings meant for translation are written N_("...") where they are
// defined (xgettext finds them by that marker) and looked up with
// translate() where they are used.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#define N_(text) text

namespace distdb::tools {

// Sets the locale's message and character categories from the environment
// (never LC_NUMERIC: numbers are printed and parsed the C way everywhere) and
// binds the text domain. Call once, first thing in main().
//
// A locale that the system has not generated (LANG=pt_BR.UTF-8 on a machine
// with only C.UTF-8, common in containers) would silently mean English; the
// language named in the environment is then still honoured, over C.UTF-8.
void init_translation();

// The catalog's translation of `english`, or `english` itself.
const char* translate(const char* english);

// Replaces {0}, {1}, ... (up to {9}) in `pattern` by the arguments; a
// placeholder without an argument becomes empty, other text is kept as is.
// Numbered placeholders let a translation reorder them, which printf-style
// formats could not.
std::string fill_placeholders(std::string_view pattern, const std::vector<std::string>& args);

// Where the catalogs are looked up: $DISTDB_LOCALEDIR when set; else
// <executable's dir>/../share/locale when it exists (a relocated install);
// else the directory configured at build time.
std::string catalog_directory();

}  // namespace distdb::tools
