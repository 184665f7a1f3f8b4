// VTK XML unstructured grid (.vtu, ASCII) export of a solution. Nodes are written once per
// region so that recovered fields (flux, strain, stress, von Mises), which jump across
// material interfaces, are exact point data on both sides; cell data carries the region
// index and the cell-average von Mises stress.
#pragma once

#include <filesystem>
#include <ostream>

#include "kernels/fem/fem_model.hpp"
#include "kernels/solvers/scenario_batch.hpp"

namespace doppel {

void write_vtu(const FemModel& model, const FieldSnapshot& fields, const std::filesystem::path& file);
// The same document into a stream (the service answers it from memory, no temporary file).
void write_vtu(const FemModel& model, const FieldSnapshot& fields, std::ostream& out);

}  // namespace doppel
