# Test wiring.
#
#  tests/<area>/test_*.c  Criterion suites, one executable each. Criterion
#                         cannot run under ThreadSanitizer (Snaipe/Criterion
#                         #274), so they are not built in a thread build.
#  tests/stress/*.c       plain executables (no Criterion) hammering the
#                         concurrency primitives; they run in every build and
#                         are what ThreadSanitizer checks.
#  tests/e2e/*.sh         the real sluice binary on real files; every build.

# tests/support/*.c: helpers the tests share (the loopback HTTP server on
# libmicrohttpd), one static library linked into every test executable.
pkg_check_modules(MHD REQUIRED IMPORTED_TARGET libmicrohttpd)
file(GLOB SLUICE_TEST_SUPPORT CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/support/*.c)
add_library(sluice_test_support STATIC ${SLUICE_TEST_SUPPORT})
target_include_directories(sluice_test_support PRIVATE ${CMAKE_SOURCE_DIR}/tests)
target_link_libraries(sluice_test_support PUBLIC PkgConfig::MHD Threads::Threads)

set(SLUICE_TSAN OFF)
if(SLUICE_SANITIZE MATCHES "thread")
  set(SLUICE_TSAN ON)
endif()

set(SLUICE_TEST_ENV
  "SLUICE_SOURCE_DIR=${CMAKE_SOURCE_DIR}"
  "SLUICE_BIN=${CMAKE_BINARY_DIR}/sluice"
  "ASAN_OPTIONS=detect_leaks=1:abort_on_error=1"
  "UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1"
  "TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1"
  "SLUICE_SANITIZE=${SLUICE_SANITIZE}")

if(NOT SLUICE_TSAN)
  pkg_check_modules(CRITERION REQUIRED IMPORTED_TARGET criterion)
  file(GLOB SLUICE_CRITERION_TESTS CONFIGURE_DEPENDS
    ${CMAKE_SOURCE_DIR}/tests/engine/test_*.c
    ${CMAKE_SOURCE_DIR}/tests/stages/test_*.c
    ${CMAKE_SOURCE_DIR}/tests/metrics/test_*.c
    ${CMAKE_SOURCE_DIR}/tests/e2e/test_*.c)
  foreach(src ${SLUICE_CRITERION_TESTS})
    get_filename_component(name ${src} NAME_WE)
    get_filename_component(dir ${src} DIRECTORY)
    get_filename_component(area ${dir} NAME)
    add_executable(${name} ${src})
    target_link_libraries(${name} PRIVATE sluice_lib sluice_test_support PkgConfig::CRITERION)
    target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/tests)
    # --jobs 2: the machine has two cores; Criterion forks a process per test.
    add_test(NAME ${area}/${name} COMMAND ${name} --jobs 2)
    set_tests_properties(${area}/${name} PROPERTIES
      ENVIRONMENT "${SLUICE_TEST_ENV}" LABELS ${area} TIMEOUT 300)
    if(area STREQUAL "e2e" AND TARGET sluice)
      add_dependencies(${name} sluice)
    endif()
  endforeach()
endif()

file(GLOB SLUICE_STRESS_TESTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/stress/stress_*.c)
foreach(src ${SLUICE_STRESS_TESTS})
  get_filename_component(name ${src} NAME_WE)
  add_executable(${name} ${src})
  target_link_libraries(${name} PRIVATE sluice_lib sluice_test_support)
  target_include_directories(${name} PRIVATE ${CMAKE_SOURCE_DIR} ${CMAKE_SOURCE_DIR}/tests)
  add_test(NAME stress/${name} COMMAND ${name})
  set_tests_properties(stress/${name} PROPERTIES
    ENVIRONMENT "${SLUICE_TEST_ENV}" LABELS stress TIMEOUT 300)
endforeach()

if(TARGET sluice)
  file(GLOB SLUICE_E2E_SCRIPTS CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/tests/e2e/*.sh)
  foreach(script ${SLUICE_E2E_SCRIPTS})
    get_filename_component(name ${script} NAME_WE)
    add_test(NAME e2e/${name} COMMAND bash ${script})
    set_tests_properties(e2e/${name} PROPERTIES
      ENVIRONMENT "${SLUICE_TEST_ENV}" LABELS e2e TIMEOUT 600)
  endforeach()
endif()
