# One INTERFACE target carries the language level, warnings, hardening and sanitizers so
# every module is built the same way.
add_library(portvigil_settings INTERFACE)
add_library(portvigil::settings ALIAS portvigil_settings)
target_compile_features(portvigil_settings INTERFACE cxx_std_20)
target_compile_options(portvigil_settings INTERFACE
  -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wno-sign-conversion
  $<$<BOOL:${PORTVIGIL_WERROR}>:-Werror>
  # GCC 12.1/12.2 (Debian 12) report a false -Wrestrict inside std::string concatenation at
  # -O2 and above (GCC bug 105329): with -Werror it broke Release builds. Off for GCC < 13.
  $<$<AND:$<CXX_COMPILER_ID:GNU>,$<VERSION_LESS:$<CXX_COMPILER_VERSION>,13>>:-Wno-restrict>
  -fstack-protector-strong)
target_compile_definitions(portvigil_settings INTERFACE
  $<$<NOT:$<CONFIG:Debug>>:_FORTIFY_SOURCE=2>)
target_link_options(portvigil_settings INTERFACE -Wl,-z,relro -Wl,-z,now)

if(PORTVIGIL_SANITIZE)
  target_compile_options(portvigil_settings INTERFACE
    -fsanitize=${PORTVIGIL_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  target_link_options(portvigil_settings INTERFACE -fsanitize=${PORTVIGIL_SANITIZE})
  if(PORTVIGIL_SANITIZE MATCHES "thread")
    # ThreadSanitizer does not model standalone fences, which Asio's handler invocation uses
    # (GCC's -Wtsan says so); without them Asio synchronises through its mutexes, which
    # TSan does model, so the build reports races in our code, not in Asio's fences.
    target_compile_definitions(portvigil_settings INTERFACE ASIO_DISABLE_FENCED_BLOCK)
  endif()
endif()
