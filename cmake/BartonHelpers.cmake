# barton_add_library(NAME n SRCS ... DEPS ...): one static library per domain, alias barton::n.
# barton_add_test(NAME n SRCS ... DEPS ... LABELS ...): a GoogleTest executable whose tests are
# registered with CTest (labels: fast, slow, gpu, data).
include(GoogleTest)
set(BARTON_SANITIZE_SUITES core_test io_test)

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
  # BARTON_BIN is a plain path: $<TARGET_FILE:barton> here would make every test executable depend
  # on the whole binary (tests that run it say so with add_dependencies).
  gtest_discover_tests(${A_NAME}
    WORKING_DIRECTORY ${PROJECT_SOURCE_DIR}
    # GTEST_SKIP() is reported by ctest as "Skipped" (by name), never as "Passed".
    PROPERTIES SKIP_REGULAR_EXPRESSION "\\[  SKIPPED \\]"
    DISCOVERY_TIMEOUT 60)
  # gtest_discover_tests writes PROPERTIES unquoted, so a list value (several labels, several
  # environment variables) would keep only its first element. Lists are set from a file that
  # ctest includes after the discovered tests (<target>_TESTS is their list).
  set(props ${CMAKE_CURRENT_BINARY_DIR}/${A_NAME}_properties.cmake)
  file(WRITE ${props}
       "if(${A_NAME}_TESTS)\n"
       "  set_tests_properties(\${${A_NAME}_TESTS} PROPERTIES LABELS \"${A_LABELS}\"\n"
       "    ENVIRONMENT \"BARTON_BIN=${PROJECT_BINARY_DIR}/barton;BARTON_SOURCE_DIR=${PROJECT_SOURCE_DIR}\")\n"
       "endif()\n")
  set_property(DIRECTORY APPEND PROPERTY TEST_INCLUDE_FILES ${props})
endfunction()
