# barton_own_headers_first(TARGET "TORCH_INCLUDE_DIRS"):
# A LibTorch 2.x distribution (pip wheel, libtorch archive) ships copies of fmt and protobuf headers
# in its include root (fmt 12 and protobuf 3.13 for torch 2.11). On the compiler's command line that
# root comes before /usr/include, so spdlog, ONNX's generated protobuf code and Barton would compile
# against the vendored versions and fail. For each such library that the system also has, this
# makes a folder of symbolic links to the system's headers and puts it ahead of the torch include
# root on TARGET's interface. Debian's LibTorch vendors none of them: nothing changes there.
function(barton_own_headers_first target torch_dirs)
  set(libs fmt spdlog google/protobuf onnx nlohmann)
  set(shim "${PROJECT_BINARY_DIR}/own-headers")
  # Where the project's own copies live: the include paths of the packages found, then the
  # compiler's implicit ones (/usr/include on Debian).
  set(roots ${BARTON_OWN_HEADER_ROOTS} ${CMAKE_CXX_IMPLICIT_INCLUDE_DIRECTORIES} /usr/include)
  # Only a distribution's own include root can vendor: the system folders are where the own copies are.
  set(vendor_dirs "")
  foreach(dir IN LISTS torch_dirs)
    if(NOT dir IN_LIST roots)
      list(APPEND vendor_dirs "${dir}")
    endif()
  endforeach()
  set(linked "")
  foreach(lib IN LISTS libs)
    set(vendored FALSE)
    foreach(dir IN LISTS vendor_dirs)
      if(EXISTS "${dir}/${lib}")
        set(vendored TRUE)
      endif()
    endforeach()
    if(NOT vendored)
      continue()
    endif()
    set(own "")
    foreach(root IN LISTS roots)
      if(NOT own AND EXISTS "${root}/${lib}" AND NOT root IN_LIST vendor_dirs)
        set(own "${root}/${lib}")
      endif()
    endforeach()
    if(NOT own)
      message(STATUS "barton: LibTorch vendors ${lib} and the system has none; using LibTorch's")
      continue()
    endif()
    get_filename_component(parent "${shim}/${lib}" DIRECTORY)
    file(MAKE_DIRECTORY "${parent}")
    file(REMOVE "${shim}/${lib}")
    file(CREATE_LINK "${own}" "${shim}/${lib}" SYMBOLIC)
    list(APPEND linked "${lib} -> ${own}")
  endforeach()
  if(linked)
    message(STATUS "barton: headers LibTorch also vendors, taken from the system first: ${linked}")
    target_include_directories(${target} SYSTEM BEFORE INTERFACE "${shim}")
  endif()
endfunction()
