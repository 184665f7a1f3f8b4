# CHOLMOD from SuiteSparse. Debian 12 ships no CMake package for it, so find it by hand and
# expose an imported target doppel::cholmod.
find_path(CHOLMOD_INCLUDE_DIR cholmod.h PATH_SUFFIXES suitesparse REQUIRED)
find_library(CHOLMOD_LIBRARY cholmod REQUIRED)
find_library(SUITESPARSE_CONFIG_LIBRARY suitesparseconfig REQUIRED)
foreach(lib amd camd colamd ccolamd)
  find_library(SS_${lib}_LIBRARY ${lib} REQUIRED)
  list(APPEND CHOLMOD_EXTRA ${SS_${lib}_LIBRARY})
endforeach()
add_library(doppel::cholmod INTERFACE IMPORTED)
target_include_directories(doppel::cholmod INTERFACE ${CHOLMOD_INCLUDE_DIR})
target_link_libraries(doppel::cholmod INTERFACE ${CHOLMOD_LIBRARY} ${CHOLMOD_EXTRA} ${SUITESPARSE_CONFIG_LIBRARY})
message(STATUS "doppel: CHOLMOD ${CHOLMOD_LIBRARY}")
