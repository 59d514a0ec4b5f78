//! NumPy arrays in and out of the event-study kernels (`aftershock.event_study`):
//! those take and fill plain arrays the study allocates, not frames, so they use
//! the buffer protocol. Frames (bars, orders, engine output) cross as Arrow
//! (`arrow.rs`).

use pyo3::buffer::{Element, PyBuffer};
use pyo3::prelude::*;
use pyo3::types::PyDict;

/// Borrows a C-contiguous buffer as a slice for as long as `buf` lives.
pub(crate) fn view<'a, T: Element>(buf: &'a PyBuffer<T>, name: &str) -> PyResult<&'a [T]> {
    if !buf.is_c_contiguous() {
        return Err(pyo3::exceptions::PyValueError::new_err(format!(
            "{name}: buffer must be C-contiguous"
        )));
    }
    // SAFETY: the buffer is contiguous with items of type T (checked by PyBuffer::get),
    // and `buf` keeps the exporting object alive and its memory pinned while the
    // slice is borrowed. The engine only reads it.
    Ok(unsafe { std::slice::from_raw_parts(buf.buf_ptr() as *const T, buf.item_count()) })
}

pub(crate) fn get<'py, T: Element>(d: &Bound<'py, PyDict>, key: &str) -> PyResult<PyBuffer<T>> {
    let obj = d
        .get_item(key)?
        .ok_or_else(|| pyo3::exceptions::PyKeyError::new_err(key.to_string()))?;
    PyBuffer::<T>::get(&obj)
}

/// An output column handed to Python without a copy: it owns the engine's vector
/// and exports it read-only through the buffer protocol (`np.frombuffer` views it;
/// the views keep it alive). Immutable (`frozen`), so the exported memory never moves.
#[pyclass(frozen, module = "aftershock._engine")]
pub(crate) struct Column {
    pub(crate) data: ColumnData,
}

pub(crate) enum ColumnData {
    Int(Vec<i64>),
    Float(Vec<f64>),
}

#[pymethods]
impl Column {
    /// # Safety
    /// Called by Python's buffer protocol with a valid `view`.
    unsafe fn __getbuffer__(
        slf: Bound<'_, Self>,
        view: *mut pyo3::ffi::Py_buffer,
        flags: std::ffi::c_int,
    ) -> PyResult<()> {
        if flags & pyo3::ffi::PyBUF_WRITABLE == pyo3::ffi::PyBUF_WRITABLE {
            return Err(pyo3::exceptions::PyBufferError::new_err(
                "engine output columns are read-only",
            ));
        }
        let (ptr, bytes) = match &slf.get().data {
            ColumnData::Int(v) => (v.as_ptr().cast::<std::ffi::c_void>(), size_of_val(&v[..])),
            ColumnData::Float(v) => (v.as_ptr().cast::<std::ffi::c_void>(), size_of_val(&v[..])),
        };
        // SAFETY: `ptr` points at `bytes` initialized bytes owned by this frozen
        // object, which the view keeps alive (FillInfo takes a reference to it);
        // the buffer is exported read-only.
        let rc = unsafe {
            pyo3::ffi::PyBuffer_FillInfo(
                view,
                slf.as_ptr(),
                ptr.cast_mut(),
                bytes as pyo3::ffi::Py_ssize_t,
                1,
                flags,
            )
        };
        if rc == 0 {
            Ok(())
        } else {
            Err(PyErr::fetch(slf.py()))
        }
    }
}
