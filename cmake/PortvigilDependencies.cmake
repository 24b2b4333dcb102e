find_package(Threads REQUIRED)
find_package(PkgConfig REQUIRED)

# Standalone Asio (libasio-dev) is header-only and ships no CMake config.
find_path(ASIO_INCLUDE_DIR asio.hpp REQUIRED)
add_library(portvigil_asio INTERFACE)
add_library(portvigil::asio ALIAS portvigil_asio)
target_include_directories(portvigil_asio SYSTEM INTERFACE ${ASIO_INCLUDE_DIR})
target_compile_definitions(portvigil_asio INTERFACE ASIO_STANDALONE ASIO_NO_DEPRECATED)
target_link_libraries(portvigil_asio INTERFACE Threads::Threads)
