// What a recurrent layer is: its cell, sizes and directions. Shared by every layer above common/.
#pragma once

#include "common/aligned_buffer.h"

namespace pyrnn {

enum class Cell { rnn_tanh, rnn_relu, lstm, gru };

struct LayerSpec {
  Cell cell = Cell::lstm;
  index_t input_size = 0;   // I
  index_t hidden_size = 0;  // H
  index_t proj_size = 0;    // P, LSTM only; 0 = no projection
  index_t directions = 1;   // D, 1 or 2
  bool has_bias = true;

  // G: gate blocks stacked along the rows of W_ih and W_hh.
  index_t gates() const {
    switch (cell) {
      case Cell::lstm: return 4;
      case Cell::gru: return 3;
      default: return 1;
    }
  }
  index_t gate_rows() const { return gates() * hidden_size; }     // G*H, one direction
  index_t out_size() const { return proj_size > 0 ? proj_size : hidden_size; }  // Hout
  bool has_cell_state() const { return cell == Cell::lstm; }
};

}  // namespace pyrnn
