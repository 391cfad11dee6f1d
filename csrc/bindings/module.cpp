// pyrnn._core: the pybind11 module. Converts and checks arguments, releases the GIL and calls
// the active ISA's kernels. Shapes arrive already checked by pyrnn/layers.py; the checks here
// are the last line of defence so that no call, however wrong, can reach a kernel.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "bindings/math_testing.h"
#include "common/aligned_buffer.h"
#include "common/threads.h"
#include "dispatch/registry.h"

namespace py = pybind11;

namespace pyrnn {
void bind_gemm_testing(py::module_& m);  // bindings/gemm_testing.cpp

namespace {

// Arguments arrive C-contiguous and aligned, converted (copied) when they are not: the kernels
// read them as T*, which a misaligned array (np.frombuffer can give one) does not allow.
template <typename T>
using Array = py::array_t<T, py::array::c_style | py::array::forcecast | py::detail::npy_api::NPY_ARRAY_ALIGNED_>;

// A new output array for a kernel to fill. Sanitizer builds fill it with NaN (0xFF bytes), so an
// element a kernel forgets to write shows up in the tests; other builds leave it uninitialised.
template <typename T>
Array<T> output_array(std::vector<index_t> shape) {
  Array<T> array(std::move(shape));
#ifdef PYRNN_POISON_UNINITIALISED
  if (array.size() > 0) std::memset(static_cast<void*>(array.mutable_data()), 0xFF, sizeof(T) * array.size());
#endif
  return array;
}

std::string shape_text(const std::vector<index_t>& shape) {
  std::ostringstream out;
  out << "(";
  for (std::size_t i = 0; i < shape.size(); ++i) out << (i ? ", " : "") << shape[i];
  out << (shape.size() == 1 ? ",)" : ")");
  return out.str();
}

template <typename A>
void require_shape(const A& array, const std::vector<index_t>& expected, const char* name) {
  std::vector<index_t> actual(array.shape(), array.shape() + array.ndim());
  if (actual != expected)
    throw py::value_error(std::string(name) + ": expected shape " + shape_text(expected) + ", got " +
                          shape_text(actual));
}

Cell parse_cell(const std::string& name) {
  if (name == "lstm") return Cell::lstm;
  if (name == "gru") return Cell::gru;
  if (name == "rnn_tanh") return Cell::rnn_tanh;
  if (name == "rnn_relu") return Cell::rnn_relu;
  throw py::value_error("cell: expected 'lstm', 'gru', 'rnn_tanh' or 'rnn_relu', got '" + name + "'");
}

// What a training forward hands to Python: the layer it ran (so backward uses those weights even if
// the model has changed since) and the recorded activations.
template <typename T>
struct Tape {
  std::shared_ptr<const PackedLayer<T>> layer;
  LayerTape<T> record;
};

// C-contiguous and aligned (np.frombuffer can give a misaligned array: C++ may not read its elements).
template <typename T>
bool is_kernel_array(py::handle a) {
  return py::isinstance<py::array_t<T, py::array::c_style>>(a) &&
         (py::reinterpret_borrow<py::array>(a).flags() & py::detail::npy_api::NPY_ARRAY_ALIGNED_) != 0;
}

template <typename T>
bool has_kernel_shape(py::handle a, index_t d0, index_t d1, index_t d2) {
  if (!is_kernel_array<T>(a)) return false;
  const auto array = py::reinterpret_borrow<py::array>(a);
  return array.ndim() == 3 && array.shape(0) == d0 && array.shape(1) == d1 && array.shape(2) == d2;
}

template <typename T>
class NativeLayer {
 public:
  NativeLayer(const std::string& cell, index_t input_size, index_t hidden_size, index_t proj_size,
              index_t directions, bool has_bias, const std::vector<Array<T>>& w_ih,
              const std::vector<Array<T>>& w_hh, const std::vector<Array<T>>& b_ih,
              const std::vector<Array<T>>& b_hh, const std::vector<Array<T>>& w_hr) {
    LayerSpec s{parse_cell(cell), input_size, hidden_size, proj_size, directions, has_bias};
    if (input_size < 1 || hidden_size < 1 || proj_size < 0 || (directions != 1 && directions != 2))
      throw py::value_error("layer sizes must be positive and directions 1 or 2");
    if (proj_size > 0 && (s.cell != Cell::lstm || proj_size >= hidden_size))
      throw py::value_error("proj_size must be 0, or in [1, hidden_size) for an LSTM");
    const auto count = static_cast<std::size_t>(directions);
    if (w_ih.size() != count || w_hh.size() != count || (has_bias && (b_ih.size() != count || b_hh.size() != count)) ||
        (proj_size > 0 && w_hr.size() != count))
      throw py::value_error("expected one weight array per direction for every parameter");
    std::vector<DirectionWeights<T>> weights(count);
    for (std::size_t d = 0; d < count; ++d) {
      require_shape(w_ih[d], {s.gate_rows(), input_size}, "weight_ih");
      require_shape(w_hh[d], {s.gate_rows(), s.out_size()}, "weight_hh");
      weights[d] = {w_ih[d].data(), w_hh[d].data(), nullptr, nullptr, nullptr};
      if (has_bias) {
        require_shape(b_ih[d], {s.gate_rows()}, "bias_ih");
        require_shape(b_hh[d], {s.gate_rows()}, "bias_hh");
        weights[d].b_ih = b_ih[d].data();
        weights[d].b_hh = b_hh[d].data();
      }
      if (proj_size > 0) {
        require_shape(w_hr[d], {proj_size, hidden_size}, "weight_hr");
        weights[d].w_hr = w_hr[d].data();
      }
    }
    auto packed = std::make_shared<PackedLayer<T>>();
    packed->spec = s;
    packed->isa = &active_isa();
    {
      py::gil_scoped_release release;  // the arrays stay alive: the caller holds them
      fill_plain_weights(*packed, weights.data());
      kernels_of<T>(*packed->isa).pack(*packed);
    }
    layer_ = std::move(packed);
  }

  // -> (y, h_n, c_n or None, tape or None)
  py::tuple forward(const Array<T>& x, const Array<T>& h0, const std::optional<Array<T>>& c0,
                    const std::optional<Array<std::int64_t>>& lengths, bool training) const {
    const LayerSpec& s = layer_->spec;
    if (x.ndim() != 3) throw py::value_error("x: expected a (T, B, I) array, got ndim " + std::to_string(x.ndim()));
    const index_t steps = x.shape(0), batch = x.shape(1), D = s.directions;
    require_shape(x, {steps, batch, s.input_size}, "x");
    require_shape(h0, {D, batch, s.out_size()}, "h0");
    if (s.has_cell_state() != c0.has_value()) throw py::value_error("c0: given exactly when the cell is an LSTM");
    if (c0) require_shape(*c0, {D, batch, s.hidden_size}, "c0");
    if (lengths) {
      require_shape(*lengths, {batch}, "lengths");
      for (index_t b = 0; b < batch; ++b)
        if (lengths->data()[b] < 0 || lengths->data()[b] > steps)
          throw py::value_error("lengths: expected values in [0, T=" + std::to_string(steps) + "], got " +
                                std::to_string(lengths->data()[b]));
    }
    Outputs out = run(steps, batch, x.data(), h0.data(), c0 ? c0->data() : nullptr,
                      lengths ? lengths->data() : nullptr, training);
    py::object c_out = out.c_n ? py::object(*out.c_n) : py::none();
    py::object tape_out = out.tape ? py::cast(std::move(out.tape)) : py::none();
    return py::make_tuple(out.y, out.h_n, c_out, tape_out);
  }

  const std::shared_ptr<const PackedLayer<T>>& packed() const { return layer_; }

 private:
  struct Outputs {
    Array<T> y, h_n;
    std::optional<Array<T>> c_n;
    std::unique_ptr<Tape<T>> tape;
  };

  // The forward on checked arguments: new output arrays, and a tape when training.
  Outputs run(index_t steps, index_t batch, const T* x, const T* h0, const T* c0, const std::int64_t* lengths,
              bool training) const {
    const LayerSpec& s = layer_->spec;
    const index_t D = s.directions;
    Outputs out{output_array<T>({steps, batch, D * s.out_size()}), output_array<T>({D, batch, s.out_size()}),
                std::nullopt, nullptr};
    if (c0 != nullptr) out.c_n = output_array<T>({D, batch, s.hidden_size});
    if (training) out.tape.reset(new Tape<T>{layer_, LayerTape<T>(s, steps, batch)});

    ForwardArgs<T> args;
    args.steps = steps;
    args.batch = batch;
    args.x = x;
    args.h0 = h0;
    args.c0 = c0;
    args.lengths = lengths;
    args.y = out.y.mutable_data();
    args.h_n = out.h_n.mutable_data();
    args.c_n = out.c_n ? out.c_n->mutable_data() : nullptr;
    args.threads = num_threads();
    {
      py::gil_scoped_release release;
      kernels_of<T>(*layer_->isa).forward(*layer_, args, out.tape ? &out.tape->record : nullptr);
    }
    return out;
  }

  std::shared_ptr<const PackedLayer<T>> layer_;
};

// Streaming's path: a whole model's inference in one native call, its layers one after another,
// when x and `state` are as the kernels take them: C-contiguous aligned arrays of dtype T, x of
// shape (T >= 1, B, I) (with batch_first (B, T, I), taken only when T or B is 1, where its memory
// is the time-major array's), and the state None (zeros) or as the model's inference returns it:
// h_n, or the tuple (h_n, c_n) for an LSTM, (L*D, B, size) each. Then forward's checks and
// conversions (in Python) could neither fail nor change anything, and they cost more than a step
// of a small layer. Anything else -> None, and the caller takes the checked way, with its
// conversions and messages. Same kernels, same inputs: the same bits as that way.
template <typename T>
class NativeStack {
 public:
  NativeStack(const std::vector<const NativeLayer<T>*>& layers, bool batch_first) : batch_first_(batch_first) {
    if (layers.empty()) throw py::value_error("a model has at least one layer");
    for (const NativeLayer<T>* layer : layers) {
      if (layer == nullptr) throw py::type_error("layers: expected Layer objects, got None");
      layers_.push_back(layer->packed());
    }
    for (std::size_t l = 1; l < layers_.size(); ++l) {
      const LayerSpec &below = layers_[l - 1]->spec, &s = layers_[l]->spec;
      if (s.cell != below.cell || s.directions != below.directions || s.hidden_size != below.hidden_size ||
          s.proj_size != below.proj_size || s.input_size != below.directions * below.out_size())
        throw py::value_error("stacked layers must share cell, sizes and directions, each taking the one below's y");
    }
  }

  // -> (y, state), or None when x or the state is not as the kernels take them.
  py::object forward_ready(py::handle x, py::handle state) const {
    const LayerSpec& s = layers_.front()->spec;
    if (!is_kernel_array<T>(x)) return py::none();
    const auto x_array = py::reinterpret_borrow<py::array>(x);
    if (x_array.ndim() != 3 || x_array.shape(2) != s.input_size) return py::none();
    index_t steps = x_array.shape(0), batch = x_array.shape(1);
    if (batch_first_) {
      std::swap(steps, batch);
      if (steps != 1 && batch != 1) return py::none();
    }
    if (steps < 1) return py::none();
    const index_t layers = index_t(layers_.size()), D = s.directions, rows = layers * D;
    const index_t out = s.out_size(), H = s.hidden_size, y_width = D * out;
    const bool zero_state = state.is_none();
    py::handle h0 = state, c0;
    if (s.has_cell_state() && !zero_state) {
      if (!PyTuple_CheckExact(state.ptr()) || PyTuple_GET_SIZE(state.ptr()) != 2) return py::none();
      h0 = PyTuple_GET_ITEM(state.ptr(), 0);
      c0 = PyTuple_GET_ITEM(state.ptr(), 1);
      if (!has_kernel_shape<T>(c0, rows, batch, H)) return py::none();
    }
    if (!zero_state && !has_kernel_shape<T>(h0, rows, batch, out)) return py::none();
    const auto data = [](py::handle a) { return static_cast<const T*>(py::reinterpret_borrow<py::array>(a).data()); };
    // No state: every layer starts from zeros, h (out <= H values a row) and c alike: the kernels
    // only read them.
    AlignedBuffer<T> zeros;
    if (zero_state) {
      zeros = AlignedBuffer<T>(checked_mul(rows * batch, H));
      std::fill(zeros.data(), zeros.data() + zeros.size(), T(0));
    }

    Array<T> y = batch_first_ ? output_array<T>({batch, steps, y_width}) : output_array<T>({steps, batch, y_width});
    Array<T> h_n = output_array<T>({rows, batch, out});
    std::optional<Array<T>> c_n;
    if (s.has_cell_state()) c_n = output_array<T>({rows, batch, H});
    // The layers below the top write their y here, alternating: a layer reads the one below's.
    AlignedBuffer<T> between[2];
    for (index_t l = 0; l + 1 < layers && l < 2; ++l)
      between[l] = AlignedBuffer<T>(checked_mul(steps * batch, y_width));

    // Every pointer taken while the GIL is held (reading a Python object's data touches its count).
    const T* const h0_data = zero_state ? zeros.data() : data(h0);
    const T* const c0_data = !s.has_cell_state() ? nullptr : zero_state ? zeros.data() : data(c0);
    T* const y_data = y.mutable_data();
    T* const h_n_data = h_n.mutable_data();
    T* const c_n_data = c_n ? c_n->mutable_data() : nullptr;
    ForwardArgs<T> args;
    args.steps = steps;
    args.batch = batch;
    args.x = data(x);
    args.threads = num_threads();
    {
      py::gil_scoped_release release;
      for (index_t l = 0; l < layers; ++l) {
        const PackedLayer<T>& layer = *layers_[l];
        args.h0 = h0_data + l * D * batch * out;
        args.c0 = c0_data ? c0_data + l * D * batch * H : nullptr;
        args.y = l + 1 == layers ? y_data : between[l % 2].data();
        args.h_n = h_n_data + l * D * batch * out;
        args.c_n = c_n_data ? c_n_data + l * D * batch * H : nullptr;
        kernels_of<T>(*layer.isa).forward(layer, args, nullptr);
        args.x = args.y;
      }
    }
    if (!c_n) return py::make_tuple(y, h_n);
    return py::make_tuple(y, py::make_tuple(h_n, *c_n));
  }

 private:
  std::vector<std::shared_ptr<const PackedLayer<T>>> layers_;
  bool batch_first_;
};

// -> (dx, dh0, dc0 or None, dw_ih, dw_hh, db_ih or None, db_hh or None, dw_hr or None)
template <typename T>
py::tuple tape_backward(const Tape<T>& tape, const Array<T>& x, const Array<T>& dy,
                        const std::optional<Array<T>>& dh_n, const std::optional<Array<T>>& dc_n) {
  const LayerSpec& s = tape.layer->spec;
  const index_t steps = tape.record.steps, batch = tape.record.batch, D = s.directions;
  const index_t DGH = D * s.gate_rows(), P = s.proj_size;
  require_shape(x, {steps, batch, s.input_size}, "x");
  require_shape(dy, {steps, batch, D * s.out_size()}, "dy");
  if (dh_n) require_shape(*dh_n, {D, batch, s.out_size()}, "dh_n");
  if (dc_n) {
    if (!s.has_cell_state()) throw py::value_error("dc_n: only an LSTM has a cell state");
    require_shape(*dc_n, {D, batch, s.hidden_size}, "dc_n");
  }
  Array<T> dx = output_array<T>({steps, batch, s.input_size}), dh0 = output_array<T>({D, batch, s.out_size()});
  Array<T> dw_ih = output_array<T>({DGH, s.input_size}), dw_hh = output_array<T>({DGH, s.out_size()});
  std::optional<Array<T>> dc0, db_ih, db_hh, dw_hr;
  if (s.has_cell_state()) dc0 = output_array<T>({D, batch, s.hidden_size});
  if (s.has_bias) {
    db_ih = output_array<T>({DGH});
    db_hh = output_array<T>({DGH});
  }
  if (P > 0) dw_hr = output_array<T>({D * P, s.hidden_size});

  BackwardArgs<T> args;
  args.x = x.data();
  args.dy = dy.data();
  args.dh_n = dh_n ? dh_n->data() : nullptr;
  args.dc_n = dc_n ? dc_n->data() : nullptr;
  args.dx = dx.mutable_data();
  args.dh0 = dh0.mutable_data();
  args.dc0 = dc0 ? dc0->mutable_data() : nullptr;
  args.dw_ih = dw_ih.mutable_data();
  args.dw_hh = dw_hh.mutable_data();
  args.db_ih = db_ih ? db_ih->mutable_data() : nullptr;
  args.db_hh = db_hh ? db_hh->mutable_data() : nullptr;
  args.dw_hr = dw_hr ? dw_hr->mutable_data() : nullptr;
  args.threads = num_threads();
  {
    py::gil_scoped_release release;
    kernels_of<T>(*tape.layer->isa).backward(*tape.layer, tape.record, args);
  }
  const auto or_none = [](const std::optional<Array<T>>& a) { return a ? py::object(*a) : py::object(py::none()); };
  return py::make_tuple(dx, dh0, or_none(dc0), dw_ih, dw_hh, or_none(db_ih), or_none(db_hh), or_none(dw_hr));
}

template <typename T>
void bind_dtype(py::module_& m, const char* suffix) {
  py::class_<Tape<T>>(m, (std::string("Tape") + suffix).c_str(),
                      "What a training forward of one layer kept for its backward (opaque).")
      .def_property_readonly("nbytes", [](const Tape<T>& t) { return t.record.nbytes(); })
      .def("backward", &tape_backward<T>, py::arg("x"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"));

  py::class_<NativeLayer<T>>(m, (std::string("Layer") + suffix).c_str(),
                             "One recurrent layer, all directions, with weights packed for the active ISA.")
      .def(py::init<const std::string&, index_t, index_t, index_t, index_t, bool, const std::vector<Array<T>>&,
                    const std::vector<Array<T>>&, const std::vector<Array<T>>&, const std::vector<Array<T>>&,
                    const std::vector<Array<T>>&>(),
           py::arg("cell"), py::arg("input_size"), py::arg("hidden_size"), py::arg("proj_size"),
           py::arg("directions"), py::arg("bias"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
           py::arg("b_hh"), py::arg("w_hr"))
      .def("forward", &NativeLayer<T>::forward, py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("lengths"),
           py::arg("training"));

  py::class_<NativeStack<T>>(m, (std::string("Stack") + suffix).c_str(),
                             "A model's stacked layers, for streaming's one-call inference (forward_ready).")
      .def(py::init<const std::vector<const NativeLayer<T>*>&, bool>(), py::arg("layers"), py::arg("batch_first"))
      .def("forward_ready", &NativeStack<T>::forward_ready, py::arg("x"), py::arg("state"));
}

}  // namespace
}  // namespace pyrnn

PYBIND11_MODULE(_core, m) {
  using namespace pyrnn;
  m.doc() = "pyrnn native kernels (private; use the pyrnn package).";
  bind_dtype<float>(m, "F32");
  bind_dtype<double>(m, "F64");
  bind_gemm_testing(m);

  m.def("set_num_threads", [](long long n) {
    // libgomp aborts the process when it cannot create a thread: refuse absurd counts here.
    const long long most = std::max(256, 4 * omp_get_num_procs());
    if (n < 1 || n > most)
      throw py::value_error("set_num_threads: expected 1 <= n <= " + std::to_string(most) + ", got " +
                            std::to_string(n));
    set_num_threads(static_cast<int>(n));
  });
  m.def("get_num_threads", &num_threads);
  m.def("active_isa", [] { return std::string(active_isa().name); });
  m.def("select_isa", &select_isa, py::arg("name"));
  m.def("available_isas", &available_isas);
  bind_math_testing(m);
  m.def("build_info", [] {
    py::dict info;
    info["compiler"] = PYRNN_COMPILER;
    info["openmp"] = PYRNN_OPENMP_VERSION;
    info["sanitized"] = static_cast<bool>(PYRNN_SANITIZED);
    info["compiled_isas"] = compiled_isas();
    info["available_isas"] = available_isas();
    info["active_isa"] = std::string(active_isa().name);
    info["max_threads"] = num_threads();
    return info;
  });
  active_isa();  // an invalid PYRNN_ISA fails the import with its message
}
