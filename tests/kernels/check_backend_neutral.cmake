# cmake -DSFM_SOURCE_DIR=<repo> -P check_backend_neutral.cmake: fails (and lists the lines) when a
# header above the kernels includes a backend's kernels (sfm/kernels/cpu/, sfm/kernels/cuda/) or
# tests __CUDACC__. Those layers are generic over the backend contract (kernels/backend.hpp).
set(offenders "")
foreach(layer model mae optim parallel train)
  file(GLOB_RECURSE headers "${SFM_SOURCE_DIR}/include/sfm/${layer}/*")
  foreach(header IN LISTS headers)
    file(STRINGS "${header}" lines REGEX "#[ \t]*include[ \t]*[<\"]sfm/kernels/(cpu|cuda)/|__CUDACC__")
    foreach(line IN LISTS lines)
      file(RELATIVE_PATH relative "${SFM_SOURCE_DIR}" "${header}")
      string(APPEND offenders "  ${relative}: ${line}\n")
    endforeach()
  endforeach()
endforeach()
if(offenders)
  message(FATAL_ERROR "backend-specific code above the kernels:\n${offenders}")
endif()
message(STATUS "model/, mae/, optim/, parallel/, train/: no backend header, no __CUDACC__")
