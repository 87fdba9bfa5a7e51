# barton_add_library(NAME n SRCS ... DEPS ...): one static library per domain, alias barton::n.
# barton_add_test(NAME n SRCS ... DEPS ... LABELS ...): a GoogleTest executable whose tests are
# registered with CTest (labels: fast, slow, gpu, data).
include(GoogleTest)
set(BARTON_SANITIZE_SUITES core_test io_test data_test)

function(barton_add_library)
  cmake_parse_arguments(A "" "NAME;PCH" "SRCS;DEPS" ${ARGN})
  add_library(barton_${A_NAME} STATIC ${A_SRCS})
  add_library(barton::${A_NAME} ALIAS barton_${A_NAME})
  target_include_directories(barton_${A_NAME} PUBLIC ${PROJECT_SOURCE_DIR}/src)
  target_link_libraries(barton_${A_NAME} ${A_DEPS})
  target_compile_options(barton_${A_NAME} PRIVATE ${BARTON_WARNINGS})
  if(A_PCH AND BARTON_USE_PCH)
    target_precompile_headers(barton_${A_NAME} REUSE_FROM ${A_PCH})
  endif()
endfunction()

function(barton_add_test)
  cmake_parse_arguments(A "" "NAME;PCH" "SRCS;DEPS;LABELS" ${ARGN})
  add_executable(${A_NAME} ${A_SRCS})
  target_link_libraries(${A_NAME} PRIVATE ${A_DEPS} barton::test_support GTest::gtest_main)
  target_compile_options(${A_NAME} PRIVATE ${BARTON_WARNINGS})
  if(A_PCH AND BARTON_USE_PCH)
    target_precompile_headers(${A_NAME} REUSE_FROM ${A_PCH})
  endif()
  if(NOT A_LABELS)
    set(A_LABELS fast)
  endif()
  # The suites that `make sanitize` runs under ASan + UBSan (Makefile SAN_TARGETS builds them).
  if(A_NAME IN_LIST BARTON_SANITIZE_SUITES)
    list(APPEND A_LABELS sanitize)
  endif()
  gtest_discover_tests(${A_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    # GTEST_SKIP() is reported by ctest as "Skipped" (by name), never as "Passed".
    PROPERTIES LABELS "${A_LABELS}" SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]" ENVIRONMENT "BARTON_BIN=$<TARGET_FILE:barton>;BARTON_SOURCE_DIR=${PROJECT_SOURCE_DIR}"
    DISCOVERY_TIMEOUT 60)
endfunction()
