# Finds sfm's dependencies and sets SFM_HAVE_<X> for the optional ones. Included by the project's
# CMakeLists.txt and by the installed sfmConfig.cmake, so a consumer's find_package(sfm) sees the
# same libraries the library was configured with.
include(CMakeFindDependencyMacro)

find_dependency(Eigen3 3.3 NO_MODULE)
find_dependency(nlohmann_json 3)
find_dependency(Threads)
find_dependency(OpenMP COMPONENTS CXX)

# A plain C library found by header and library name, wrapped in an imported target sfm_dep::<name>.
function(sfm_find_c_library name header library)
  if(TARGET sfm_dep::${name})
    set(SFM_HAVE_${name} ON PARENT_SCOPE)
    return()
  endif()
  # NCCL and cuDNN usually sit beside the CUDA toolkit.
  find_path(SFM_${name}_INCLUDE_DIR ${header} HINTS /usr/local/cuda/include)
  find_library(SFM_${name}_LIBRARY ${library} HINTS /usr/local/cuda/lib64)
  if(SFM_${name}_INCLUDE_DIR AND SFM_${name}_LIBRARY)
    add_library(sfm_dep::${name} UNKNOWN IMPORTED)
    set_target_properties(sfm_dep::${name} PROPERTIES
      IMPORTED_LOCATION "${SFM_${name}_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${SFM_${name}_INCLUDE_DIR}")
    set(SFM_HAVE_${name} ON PARENT_SCOPE)
  else()
    set(SFM_HAVE_${name} OFF PARENT_SCOPE)
  endif()
endfunction()

sfm_find_c_library(blosc blosc.h blosc)
sfm_find_c_library(zstd zstd.h zstd)
sfm_find_c_library(lz4 lz4.h lz4)
sfm_find_c_library(zlib zlib.h z)
sfm_find_c_library(png png.h png)
sfm_find_c_library(nccl nccl.h nccl)
sfm_find_c_library(cudnn cudnn.h cudnn)
# oneDNN's sgemm for the CPU backend's fp32 GEMMs (kernels/cpu/gemm.hpp); SFM_WITH_ONEDNN=OFF keeps
# Eigen's (the sanitizer build does: libdnnl runs on GNU OpenMP, clang's code on LLVM's).
if(NOT SFM_WITH_ONEDNN STREQUAL "OFF")
  sfm_find_c_library(onednn dnnl.h dnnl)
else()
  set(SFM_HAVE_onednn OFF)
endif()

find_package(CURL QUIET)
set(SFM_HAVE_curl ${CURL_FOUND})
find_package(OpenSSL QUIET COMPONENTS Crypto)  # SHA-256 / HMAC for S3 request signing
set(SFM_HAVE_openssl ${OpenSSL_FOUND})
find_package(MPI QUIET COMPONENTS CXX)
set(SFM_HAVE_mpi ${MPI_CXX_FOUND})
