# Install rules: `cmake --install BUILD [--prefix DIR]`.
#
#   <prefix>/bin/portvigil
#   <prefix>/lib/systemd/system/portvigil.service      (PORTVIGIL_SYSTEMD_UNIT_DIR)
#   <prefix>/share/doc/portvigil/portvigil.example.toml, operations.md, config.md
#   <prefix>/share/portvigil/monitoring/alerts/portvigil.rules.yml, portvigil.fleet.rules.yml
#   <prefix>/share/portvigil/monitoring/dashboards/portvigil.json
#   <prefix>/share/portvigil/monitoring/prometheus.example.yml, alertmanager.example.yml
#   <prefix>/share/man/man8/portvigil.8, man5/portvigil.toml.5   (generated; needs python3)
#   <prefix>/share/bash-completion/completions/portvigil          (generated; needs python3)
#
# Packages configure with -DCMAKE_INSTALL_PREFIX=/usr and install with DESTDIR=staging:
# the unit's ExecStart= is the configure-time ${CMAKE_INSTALL_FULL_BINDIR}/portvigil
# (/usr/bin/portvigil for prefix /usr), not the --prefix given to `cmake --install`.
# The configuration itself is never installed: /etc/portvigil/portvigil.toml is the
# administrator's (start from the example). Included from the top-level CMakeLists.txt after
# the targets are defined.
include(GNUInstallDirs)

set(PORTVIGIL_SYSTEMD_UNIT_DIR "lib/systemd/system" CACHE STRING
    "Where the systemd unit is installed, relative to the install prefix")
set(PORTVIGIL_MONITORING_DIR "${CMAKE_INSTALL_DATADIR}/portvigil/monitoring")

install(TARGETS portvigil RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT agent)

# The unit names /usr/bin/portvigil; point it at where this build installs the binary.
file(READ "${PROJECT_SOURCE_DIR}/systemd/portvigil.service" _portvigil_unit)
string(REPLACE "ExecStart=/usr/bin/portvigil " "ExecStart=${CMAKE_INSTALL_FULL_BINDIR}/portvigil "
       _portvigil_unit "${_portvigil_unit}")
string(REPLACE "file:/usr/share/doc/portvigil/" "file:${CMAKE_INSTALL_FULL_DOCDIR}/"
       _portvigil_unit "${_portvigil_unit}")
file(CONFIGURE OUTPUT "${PROJECT_BINARY_DIR}/systemd/portvigil.service"
     CONTENT "${_portvigil_unit}" @ONLY)
set_property(DIRECTORY "${PROJECT_SOURCE_DIR}" APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS
             "${PROJECT_SOURCE_DIR}/systemd/portvigil.service")
install(FILES "${PROJECT_BINARY_DIR}/systemd/portvigil.service"
        DESTINATION ${PORTVIGIL_SYSTEMD_UNIT_DIR} COMPONENT agent)

install(FILES
          "${PROJECT_SOURCE_DIR}/config/portvigil.example.toml"
          "${PROJECT_SOURCE_DIR}/docs/operations.md"
          "${PROJECT_SOURCE_DIR}/docs/config.md"
        DESTINATION ${CMAKE_INSTALL_DOCDIR} COMPONENT agent)

# Monitoring: the prometheus.example.yml loads the rules from
# /usr/share/portvigil/monitoring/alerts/, i.e. this directory for prefix /usr.
install(FILES "${PROJECT_SOURCE_DIR}/monitoring/alerts/portvigil.rules.yml"
              "${PROJECT_SOURCE_DIR}/monitoring/alerts/portvigil.fleet.rules.yml"
        DESTINATION ${PORTVIGIL_MONITORING_DIR}/alerts COMPONENT monitoring)
install(FILES "${PROJECT_SOURCE_DIR}/monitoring/dashboards/portvigil.json"
        DESTINATION ${PORTVIGIL_MONITORING_DIR}/dashboards COMPONENT monitoring)
install(FILES
          "${PROJECT_SOURCE_DIR}/monitoring/prometheus.example.yml"
          "${PROJECT_SOURCE_DIR}/monitoring/alertmanager.example.yml"
        DESTINATION ${PORTVIGIL_MONITORING_DIR} COMPONENT monitoring)

# Man pages, generated at build time from the binary's --help texts and docs/config.md by
# docs/man/make_man.py, so that they cannot drift from either (tests/docs checks them).
find_package(Python3 COMPONENTS Interpreter)
if(Python3_Interpreter_FOUND)
  set(_man "${PROJECT_BINARY_DIR}/man")
  add_custom_command(
    OUTPUT "${_man}/portvigil.8" "${_man}/portvigil.toml.5" "${_man}/portvigil.bash-completion"
    COMMAND ${CMAKE_COMMAND} -E make_directory "${_man}"
    COMMAND Python3::Interpreter "${PROJECT_SOURCE_DIR}/docs/man/make_man.py" portvigil
            $<TARGET_FILE:portvigil> "${_man}/portvigil.8"
    COMMAND Python3::Interpreter "${PROJECT_SOURCE_DIR}/docs/man/make_man.py" config
            "${PROJECT_SOURCE_DIR}/docs/config.md" "${_man}/portvigil.toml.5"
    COMMAND Python3::Interpreter "${PROJECT_SOURCE_DIR}/docs/man/make_man.py" completion
            $<TARGET_FILE:portvigil> "${_man}/portvigil.bash-completion"
    DEPENDS portvigil "${PROJECT_SOURCE_DIR}/docs/man/make_man.py"
            "${PROJECT_SOURCE_DIR}/docs/config.md"
    COMMENT "Generating portvigil.8, portvigil.toml.5 and the bash completion"
    VERBATIM)
  add_custom_target(man ALL DEPENDS "${_man}/portvigil.8" "${_man}/portvigil.toml.5"
                                    "${_man}/portvigil.bash-completion")
  install(FILES "${_man}/portvigil.bash-completion" RENAME portvigil
          DESTINATION ${CMAKE_INSTALL_DATADIR}/bash-completion/completions COMPONENT agent)
  install(FILES "${_man}/portvigil.8" DESTINATION ${CMAKE_INSTALL_MANDIR}/man8 COMPONENT agent)
  install(FILES "${_man}/portvigil.toml.5" DESTINATION ${CMAKE_INSTALL_MANDIR}/man5
          COMPONENT agent)
else()
  message(WARNING "python3 not found: the man pages are not generated or installed")
endif()
